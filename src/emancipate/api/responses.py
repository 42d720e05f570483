"""The Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

A thin translation onto the one chat pipeline (`Gateway.chat`): the request's input items
become chat messages, its function tools chat tools, `text.format` a `response_format`; the
chat completion (or its chunks) becomes a Response object (or the typed event stream). Guard,
policy, routing, failover, keys, budgets, ledger and shadow see an ordinary chat request, so
a secret in an input item or a `function_call_output` meets exactly the rules it would meet
in a chat message. The mapping table, what is refused and why: docs/api-responses.md.

    POST /v1/responses ─▶ ResponsesWire.request ─▶ Responses.create (previous_response_id)
        ─▶ Gateway.chat ─▶ Response object | event stream, stored first (`store`) by
           ResponseWriter (ledger/responses.py: one writer thread, group commits)

Errors (all OpenAI-shaped, `param` named in the Responses request's terms):
    400 unsupported_parameter       a field or tool type the gateway does not offer
    400 unknown_parameter           a field the Responses API does not have
    400 invalid_value               a field of the wrong shape
    400 previous_response_not_found no stored response with that id for this key
    404 not_found                   GET/DELETE of an id this key did not store
    503 store_unavailable           the database did not answer in time
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emancipate.api.responses_stream import (
    ResponseEvents,
    assistant_message,
    call_item,
    ending,
    message_item,
    response_object,
    usage_of,
)
from emancipate.api.wire import Events, Wire
from emancipate.auth.blocking import DaemonPool
from emancipate.context import RequestContext
from emancipate.gateway import Answer, Gateway, StreamAnswer
from emancipate.ledger.responses import (
    ChatMessage,
    ResponseStore,
    ResponseWriter,
    StoredResponse,
)
from emancipate.protocol import OpenAIError

log = logging.getLogger("emancipate.api")

ChatBody = dict[str, Any]
ResponseBody = dict[str, Any]
Item = dict[str, Any]

STORE_TIMEOUT = 10.0  # seconds a store read or write may take before the client gets 503
_CALL = "responses_call"  # ctx.extra: the translated request (`ResponsesCall`)
_RESPONSE = "responses_response"  # ctx.extra: the Response object already built

# Accepted and translated or echoed; anything else is refused by name.
_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
    "temperature", "top_p", "metadata", "user", "parallel_tool_calls", "stream", "store",
    "previous_response_id", "reasoning", "include", "truncation", "service_tier",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
    "stream_options",
}
# Fields of the Responses API this gateway does not offer, and what to do instead.
_REFUSED = {
    "background": "background responses are not offered; send the request without it and "
                  "wait for the answer (or stream it)",
    "conversation": "conversations are not stored; chain responses with "
                    "`previous_response_id` instead",
    "prompt": "stored prompt templates are not offered; send the text in `input`",
    "max_tool_calls": "the gateway cannot bound built-in tool calls; leave it out",
    "top_logprobs": "log probabilities are not offered through the Responses API",
    "context_management": "server-side compaction is not offered; leave it out",
    "background_options": "background responses are not offered; leave it out",
    "moderation": "moderation of the answer is not offered; the leak guard and the policy "
                  "apply to every request (docs/guard-and-policy.md)",
    "image": "image generation is not offered; leave it out",
    "access_programs": "OpenAI's access programs do not apply to this gateway; leave it out",
}
# The chat request's parameter names, as the client knows them (errors name the latter).
_PARAMS = {"messages": "input", "max_completion_tokens": "max_output_tokens",
           "max_tokens": "max_output_tokens", "response_format": "text.format",
           "reasoning_effort": "reasoning.effort"}


def _unsupported(param: str, reason: str) -> OpenAIError:
    return OpenAIError(400, f"'{param}' is not supported by this gateway: {reason}.",
                       param=param, code="unsupported_parameter")


def _invalid(param: str, expected: str) -> OpenAIError:
    return OpenAIError(400, f"Invalid value for '{param}': expected {expected}.", param=param,
                       code="invalid_value")


# --- the request ----------------------------------------------------------------------------


@dataclass(slots=True)
class ResponsesCall:
    """One `POST /v1/responses`: the chat request it becomes and what its answer echoes."""

    body: dict[str, Any]  # the client's request (echoed fields are read from it)
    chat: ChatBody
    head: int  # leading chat messages made from `instructions` (not stored, not continued)
    store: bool = True
    previous_response_id: str | None = None

    def echo(self, name: str, default: Any = None) -> Any:
        value = self.body.get(name)
        return default if value is None else value


def responses_call(data: dict[str, Any]) -> ResponsesCall:
    """The chat request for a Responses request (pure; raises `OpenAIError`)."""
    for name, value in data.items():
        if name in _REFUSED and value not in (None, False, 0):
            raise _unsupported(name, _REFUSED[name])
        if name not in _FIELDS and name not in _REFUSED:
            raise OpenAIError(400, f"Unknown parameter: '{name}'. The Responses API has no "
                              "such field; see docs/api-responses.md for what is accepted.",
                              param=name, code="unknown_parameter")
    previous = data.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise _invalid("previous_response_id", "a string")
    if data.get("input") is None and previous is None:
        raise OpenAIError(400, "Missing required parameter: 'input'.", param="input",
                          code="missing_required_parameter")
    head = _instructions(data.get("instructions"))
    chat: ChatBody = {"model": data.get("model"),
                      "messages": head + input_messages(data.get("input"))}
    _sampling(data, chat)
    _tools(data, chat)
    _text_format(data.get("text"), chat)
    _reasoning(data.get("reasoning"), chat)
    _include(data.get("include"))
    if data.get("stream") is not None:
        chat["stream"] = data["stream"]
        if data["stream"] is True:  # usage arrives as the last chunk: the Response reports it
            chat["stream_options"] = {"include_usage": True}
    store = data.get("store", True)
    if not isinstance(store, bool):
        raise _invalid("store", "true or false")
    return ResponsesCall(data, chat, len(head), store, previous)


def _instructions(value: Any) -> list[ChatMessage]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise _invalid("instructions", "a string")
    return [{"role": "system", "content": value}]


def _sampling(data: dict[str, Any], chat: ChatBody) -> None:
    for name, target in (("max_output_tokens", "max_completion_tokens"),
                         ("temperature", "temperature"), ("top_p", "top_p"), ("user", "user")):
        if data.get(name) is not None:
            chat[target] = data[name]
    if data.get("user") is None and isinstance(data.get("safety_identifier"), str):
        chat["user"] = data["safety_identifier"]
    metadata = data.get("metadata")
    if metadata is not None and not (
            isinstance(metadata, dict) and len(metadata) <= 16
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise _invalid("metadata", "an object of at most 16 string values")
    if data.get("truncation") not in (None, "auto", "disabled"):
        raise _invalid("truncation", "'auto' or 'disabled'")


def _tools(data: dict[str, Any], chat: ChatBody) -> None:
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools", "an array of tools")
        if tools:
            chat["tools"] = [_chat_tool(tool, i) for i, tool in enumerate(tools)]
            if data.get("parallel_tool_calls") is not None:
                chat["parallel_tool_calls"] = data["parallel_tool_calls"]
    choice = data.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise _invalid("tool_choice", "'auto', 'none', 'required' or a function")
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str):
            raise _invalid("tool_choice.name", "the name of a function tool")
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        kind = choice.get("type") if isinstance(choice, dict) else None
        raise _unsupported("tool_choice", f"a tool choice of type {kind!r} names a built-in "
                           "tool or a tool set; only function tools are offered")


def _chat_tool(tool: Any, index: int) -> dict[str, Any]:
    """A Responses function tool (flat) as a chat tool (nested under `function`)."""
    param = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise _invalid(param, "a tool object")
    if tool.get("type") != "function":
        raise _unsupported(f"{param}.type", f"the built-in tool {tool.get('type')!r} runs on "
                           "OpenAI's servers; only `function` tools are offered (run the tool "
                           "in your application and pass its result as function_call_output)")
    if not isinstance(tool.get("name"), str):
        raise _invalid(f"{param}.name", "the function's name")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _text_format(text: Any, chat: ChatBody) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise _invalid("text", "an object with `format`")
    if text.get("verbosity") not in (None, "medium"):
        raise _unsupported("text.verbosity", "no target takes a verbosity; say it in the "
                           "instructions")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        raise _invalid("text.format.type", "'text', 'json_object' or 'json_schema'")
    if fmt["type"] == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    if not isinstance(fmt.get("schema"), dict) or not isinstance(fmt.get("name"), str):
        raise _invalid("text.format", "a json_schema format with `name` and `schema`")
    schema = {k: fmt[k] for k in ("name", "schema", "description", "strict")
              if fmt.get(k) is not None}
    chat["response_format"] = {"type": "json_schema", "json_schema": schema}


def _reasoning(reasoning: Any, chat: ChatBody) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise _invalid("reasoning", "an object")
    for name in ("summary", "generate_summary"):
        if reasoning.get(name) is not None:
            raise _unsupported(f"reasoning.{name}", "reasoning summaries are not offered; "
                               "only `reasoning.effort` passes to the target")
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]


# What `include` may ask for: nothing the gateway would have to produce (no reasoning items
# and no logprobs are ever output, so an encrypted reasoning copy is simply absent).
_INCLUDABLE = {"reasoning.encrypted_content"}


def _include(include: Any) -> None:
    if include is None:
        return
    if not isinstance(include, list):
        raise _invalid("include", "an array")
    for i, value in enumerate(include):
        if not isinstance(value, str):
            raise _invalid(f"include[{i}]", "a string")
        if value not in _INCLUDABLE:
            raise _unsupported(f"include[{i}]", f"{value!r} names output this gateway does "
                               "not produce")


# --- input items → chat messages ------------------------------------------------------------


def input_messages(value: Any) -> list[ChatMessage]:
    """`input` (a string, or a list of items) as chat messages, in order."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise _invalid("input", "a string or an array of input items")
    messages: list[ChatMessage] = []
    for index, item in enumerate(value):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise _invalid(param, "an input item object")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            _function_call(item, param, messages)
        elif kind == "function_call_output":
            messages.append(_function_output(item, param))
        elif kind == "reasoning":
            continue  # opaque reasoning of an earlier OpenAI answer: no target can read it
        else:
            raise _unsupported(f"{param}.type", f"input items of type {kind!r} belong to "
                               "built-in tools or stored items; send messages, function_call "
                               "and function_call_output items")
    return messages


def _message(item: Item, param: str) -> ChatMessage:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _invalid(f"{param}.role", "'user', 'assistant', 'system' or 'developer'")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _invalid(f"{param}.content", "a string or an array of content parts")
    parts = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    if role != "user":  # only user messages may hold images: the others are text
        texts = [p["text"] for p in parts if p["type"] == "text"]
        if len(texts) != len(parts):
            raise _unsupported(f"{param}.content", f"a {role} message holds text only")
        return {"role": role, "content": "".join(texts)}
    return {"role": role, "content": parts}


def _part(part: Any, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _invalid(param, "a content part object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "refusal"):
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{param}.text", "a string")
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _unsupported(f"{param}.file_id", "images are sent by `image_url` (a URL or "
                               "a data: URL); there is no files API")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") not in (None, "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _unsupported(f"{param}.type", f"content parts of type {kind!r} are not offered; "
                       "send input_text or input_image")


def _function_call(item: Item, param: str, messages: list[ChatMessage]) -> None:
    """A function_call item joins the assistant message just before it (parallel calls)."""
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise _invalid(f"{param}.{name}", "a string")
    call = {"id": item["call_id"], "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and isinstance(
            last.get("content"), str | None):
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: Item, param: str) -> ChatMessage:
    if not isinstance(item.get("call_id"), str):
        raise _invalid(f"{param}.call_id", "the call_id of the function_call it answers")
    output = item.get("output")
    if isinstance(output, list):  # text parts (images in a tool result: no chat equivalent)
        output = "".join(_part(p, f"{param}.output[{i}]").get("text", "")
                         for i, p in enumerate(output))
    if not isinstance(output, str):
        raise _invalid(f"{param}.output", "a string")
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output}


# --- chat answer → Response -----------------------------------------------------------------


def answer_items(body: ChatBody, ctx: RequestContext,
                 ) -> tuple[list[Item], ChatMessage, str | None]:
    """The output items of a chat completion, its assistant message, and its finish reason."""
    choices = body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    digits = ctx.request_id.removeprefix("req_")
    items: list[Item] = []
    text = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(text, str) and (text or not calls):
        items.append(message_item(f"msg_{digits}", text))
    for n, call in enumerate(calls):
        function = call.get("function") or {}
        items.append(call_item(f"fc_{digits}_{n}", str(call.get("id")),
                               str(function.get("name")), str(function.get("arguments") or "")))
    assistant = assistant_message(text if isinstance(text, str) else None, calls)
    return items, assistant, choices[0].get("finish_reason")


# --- the wire -------------------------------------------------------------------------------


class ResponsesWire(Wire):
    """Responses ⇄ chat; `responses` stores what `store` asks to keep."""

    endpoint = "responses"

    def __init__(self, responses: Responses) -> None:
        self.responses = responses

    def request(self, data: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        call = responses_call(data)
        ctx.extra[_CALL] = call
        return call.chat

    def answer(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        built = ctx.extra.get(_RESPONSE)
        return built if built is not None else self.responses.build(body, ctx)[0]

    async def stream(self, events: Events, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        translator = ResponseEvents(ctx.extra[_CALL], ctx)
        try:
            async for chunk in events:
                if "error" in chunk:
                    for event in translator.failed(chunk["error"]):
                        yield event
                    return
                for event in translator.feed(chunk):
                    yield event
            for event in translator.close():
                yield event
            final, assistant = translator.final()
            await self.responses.keep(ctx, final, assistant)  # before the client learns the id
            yield translator.completed(final)
        finally:
            await events.aclose()

    def error(self, err: OpenAIError) -> tuple[int, dict[str, Any]]:
        body = err.body()
        param = body["error"]["param"]
        if isinstance(param, str):
            head, dot, rest = param.partition(".")
            name, bracket, index = head.partition("[")
            if name in _PARAMS:
                body["error"]["param"] = _PARAMS[name] + bracket + index + dot + rest
        return err.status, body


# --- the endpoints --------------------------------------------------------------------------


class Responses:
    """The Responses API of one gateway: create (through the pipeline), retrieve, delete."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.store = ResponseStore(gateway.stages.ledger.engine, gateway.stages.guard)
        self.writer = ResponseWriter(self.store)
        self.pool = DaemonPool(size=4, name="responses-db")  # reads and deletes
        self.wire = ResponsesWire(self)

    async def create(self, ctx: RequestContext, data: dict[str, Any]) -> Answer | StreamAnswer:
        """The pipeline handler: continue a stored response if asked, answer, store."""
        call: ResponsesCall = ctx.extra[_CALL]
        if call.previous_response_id is not None:
            prior = await self._db(self.store.get, call.previous_response_id,
                                   ctx.principal.key_id)
            if prior is None:
                raise OpenAIError(
                    400, f"Previous response with id '{call.previous_response_id[:80]}' not "
                    "found: it was never stored (store: false), was deleted, or belongs to "
                    "another key.", param="previous_response_id",
                    code="previous_response_not_found")
            messages = data["messages"]  # `call.chat`'s: what `keep` stores is this too
            data["messages"] = messages[:call.head] + prior.context + messages[call.head:]
            if len(data["messages"]) == call.head:
                raise OpenAIError(400, "Missing required parameter: 'input'.", param="input",
                                  code="missing_required_parameter")
        answer = await self.gateway.chat(ctx, data)
        if isinstance(answer, StreamAnswer):
            return answer
        response, assistant = self.build(answer.body, ctx)
        await self.keep(ctx, response, assistant)
        ctx.extra[_RESPONSE] = response
        return Answer(response, answer.headers)

    def build(self, body: ChatBody, ctx: RequestContext) -> tuple[ResponseBody, ChatMessage]:
        """The Response object of a chat completion, and the assistant message to store."""
        call: ResponsesCall = ctx.extra[_CALL]
        items, assistant, finish = answer_items(body, ctx)
        status, incomplete = ending(finish)
        u = body.get("usage") or {}
        usage = usage_of(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        return response_object(call, ctx, status=status, output=items, usage=usage,
                               incomplete=incomplete), assistant

    async def keep(self, ctx: RequestContext, response: ResponseBody,
                   assistant: ChatMessage) -> None:
        """Store `response` when the request asked to (`store`, true by default).

        The conversation kept for a continuation is the one the model saw (previous context
        and this input, instructions excluded as OpenAI does) and its answer. A store that
        fails is logged and the answer still goes out: the client paid for it, and only a
        later continuation or GET will miss it.
        """
        call: ResponsesCall = ctx.extra[_CALL]
        if not call.store:
            return
        messages = call.chat["messages"]
        context = messages[call.head:] + [assistant]
        # The guard read this whole request (the stored history included) and found nothing:
        # only the answer is new to it. A request kept in-house unscanned (over the scan
        # budget) carries a guard decision, and is masked whole.
        read_clean = not ctx.findings and not any(d.stage == "guard" for d in ctx.decisions)
        stored = StoredResponse(response["id"], ctx.principal.key_id, ctx.started_at,
                                response, context, ctx.request_id, call.previous_response_id,
                                scanned_clean=len(context) - 1 if read_clean else 0)
        try:
            await self.writer.save(stored, STORE_TIMEOUT)
        except TimeoutError:
            log.error("response %s of request %s not stored: the database did not answer",
                      response["id"], ctx.request_id)
        except Exception as exc:  # the answer still leaves: see the docstring
            log.error("response %s of request %s not stored (%s)", response["id"],
                      ctx.request_id, exc.__class__.__name__)

    async def retrieve(self, request: Request) -> Response:
        """`GET /v1/responses/{id}`: the stored response, texts masked as stored."""
        try:
            key_id = await self._key(request)
            if request.query_params.get("stream") in ("true", "1"):
                raise _unsupported("stream", "a stored response is returned whole; retrieve "
                                   "it without `stream`")
            stored = await self._db(self.store.get, request.path_params["id"], key_id)
            if stored is None:
                raise _not_found(request.path_params["id"])
        except OpenAIError as err:
            return _error(err)
        return JSONResponse(stored.response)

    async def delete(self, request: Request) -> Response:
        """`DELETE /v1/responses/{id}`."""
        response_id = request.path_params["id"]
        try:
            key_id = await self._key(request)
            if not await self._db(self.store.delete, response_id, key_id):
                raise _not_found(response_id)
        except OpenAIError as err:
            return _error(err)
        return JSONResponse({"id": response_id, "object": "response", "deleted": True})

    async def _key(self, request: Request) -> str:
        ctx = RequestContext(endpoint="responses")
        principal = await self.gateway.authenticate(ctx, request.headers.get("authorization"))
        return principal.key_id

    async def _db(self, fn: Any, *args: Any) -> Any:
        try:
            return await self.pool.run(STORE_TIMEOUT, fn, *args)
        except TimeoutError:
            raise OpenAIError(503, "The response store did not answer in time; retry shortly.",
                              type="server_error", code="store_unavailable") from None


def _not_found(response_id: str) -> OpenAIError:
    return OpenAIError(404, f"No response with id '{response_id[:80]}' is stored for this key.",
                       param="response_id", code="not_found")


def _error(err: OpenAIError) -> Response:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def routes(gateway: Gateway) -> list[BaseRoute]:
    """`POST /v1/responses` through the pipeline, `GET`/`DELETE /v1/responses/{id}`."""
    from emancipate.api.app import Endpoint

    responses = Responses(gateway)
    return [
        Route("/v1/responses", Endpoint(gateway, responses.create, responses.wire),
              methods=["POST"]),
        Route("/v1/responses/{id}", responses.retrieve, methods=["GET"]),
        Route("/v1/responses/{id}", responses.delete, methods=["DELETE"]),
    ]


__all__ = ["Responses", "ResponsesCall", "ResponsesWire", "input_messages", "response_object",
           "responses_call", "routes"]
