"""OpenAI chat completions ⇄ Amazon Bedrock's Converse API.

Pure functions and one stream-state class, no I/O: `providers/bedrock.py` posts what
`converse_request` builds (signed) and hands what comes back to `completion_from` or, one
decoded event-stream message at a time, to a `ConverseStream`. Tested directly
(`tests/test_bedrock.py`).

Request side:
- `system` / `developer` messages → `system` text blocks; `user` / `assistant` → `messages`
  with content blocks (consecutive turns of one role merged: Converse wants them alternating).
- `assistant.tool_calls` → `toolUse` blocks (`arguments` parsed to `input`); `tool` messages
  → `toolResult` blocks in a `user` turn (a JSON object result as a `json` block, anything
  else as `text`).
- `image_url` parts: `data:` URLs → `image` blocks (`png`, `jpeg`, `gif`, `webp`); Converse
  takes no image URLs, so the adapter refuses them before translation (`image_refusal`).
- `max_tokens`/`max_completion_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`
  `maxTokens`, `temperature`, `topP`, `stopSequences`. `seed` and the penalties have no
  Converse field and are dropped.
- `tools` → `toolConfig.tools[].toolSpec` (`inputSchema.json`); `tool_choice` `auto` /
  `required` / a named function → `toolChoice` `auto` / `any` / `tool`. Converse has no
  `none`: the tools are then left out, unless the history holds tool blocks (Converse refuses
  those without a `toolConfig`), in which case they are sent without a `toolChoice`.
- `response_format` `json_schema` / `json_object`: Converse has no JSON mode, so the answer is
  asked for as a forced tool call (`providers/structured.py`, shared with `anthropic`): one
  tool whose `inputSchema.json` is the schema (`{"type": "object"}` for `json_object`) and
  `toolChoice: {"tool": …}`. A tool's
  input is JSON that the model was made to shape after the schema. Combined with the client's
  own `tools` it is refused by the adapter (forcing one tool would silence the others).

Answer side: with a forced structured-output tool, its `input` is the `content` (JSON text),
`finish_reason: stop`, and any text around it is left out; otherwise `text` blocks →
`content`, `toolUse` blocks → `tool_calls`, reasoning blocks left out; `stopReason` →
`finish_reason`; `usage` → `usage` (cache reads and writes count as prompt tokens, as OpenAI
counts cached tokens). A guardrail or content filter that stops the answer
before any text is a `ProviderError("client_error", code="content_filter")`, as the `gemini`
kind reports a safety block.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import orjson

from emancipate.protocol import chat_chunk, chat_completion, usage
from emancipate.providers.base import ProviderError, text_of
from emancipate.providers.structured import structured_spec

ChatBody = dict[str, Any]
BedrockBody = dict[str, Any]

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                 "image/gif": "gif", "image/webp": "webp"}


# --- request ---------------------------------------------------------------------------------


def converse_request(body: ChatBody) -> BedrockBody:
    """The Converse body for an OpenAI chat request (the model id goes in the URL)."""
    system: list[dict[str, str]] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for msg in body["messages"]:
        role = msg["role"]
        if role in ("system", "developer"):
            text = text_of(msg.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _blocks(msg.get("content"))
            blocks += [_tool_use(call) for call in msg.get("tool_calls") or ()]
            add("assistant", blocks)
        elif role in ("tool", "function"):
            add("user", [_tool_result(msg)])
    out: BedrockBody = {"messages": messages}
    if system:
        out["system"] = system
    config = _inference_config(body)
    if config:
        out["inferenceConfig"] = config
    tools = _structured_config(body) or _tool_config(body, messages)
    if tools:
        out["toolConfig"] = tools
    return out


def _inference_config(body: ChatBody) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxTokens"] = limit
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _tool_config(body: ChatBody, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not body.get("tools"):
        return None
    choice = body.get("tool_choice")
    history = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if choice == "none" and not history:
        return None
    config: dict[str, Any] = {"tools": [_tool_spec(t) for t in body["tools"]]}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


def _structured_config(body: ChatBody) -> dict[str, Any] | None:
    spec = structured_spec(body)
    if spec is None:
        return None
    tool = {"name": spec.name, "inputSchema": {"json": spec.schema},
            "description": spec.description}
    return {"tools": [{"toolSpec": tool}], "toolChoice": {"tool": {"name": spec.name}}}


def _tool_spec(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool["function"]
    params = fn.get("parameters")
    schema = params if isinstance(params, dict) and params else {"type": "object",
                                                                 "properties": {}}
    spec: dict[str, Any] = {"name": fn["name"], "inputSchema": {"json": schema}}
    if fn.get("description"):
        spec["description"] = fn["description"]
    return {"toolSpec": spec}


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    fn = call["function"]
    try:
        args = orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        args = {"arguments": fn.get("arguments")}
    return {"toolUse": {"toolUseId": call["id"], "name": fn["name"],
                        "input": args if isinstance(args, dict) else {"value": args}}}


def _tool_result(msg: dict[str, Any]) -> dict[str, Any]:
    text = text_of(msg.get("content"))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    block = {"json": value} if isinstance(value, dict) else {"text": text or " "}
    return {"toolResult": {"toolUseId": msg.get("tool_call_id") or "", "content": [block],
                           "status": "success"}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Content blocks of a message; empty text is left out (Converse refuses blank text)."""
    if not content:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        text = part.get("text") or part.get("refusal") if part.get("type") in (
            "text", "refusal") else None
        if text:
            blocks.append({"text": text})
        elif part.get("type") == "image_url":
            blocks.append(_image((part.get("image_url") or {}).get("url", "")))
    return blocks


def _image(url: str) -> dict[str, Any]:
    mime, data = url[5:].split(";base64,", 1)
    return {"image": {"format": IMAGE_FORMATS[mime.lower()], "source": {"bytes": data}}}


def image_refusal(url: str) -> str | None:
    """Why Converse cannot take this image, or None when it can (a base64 `data:` URL of a
    format it reads)."""
    if not url.startswith("data:") or ";base64," not in url:
        return "takes images as base64 data: URLs only, not links"
    mime = url[5:].split(";base64,", 1)[0].lower()
    if mime not in IMAGE_FORMATS:
        return f"reads png, jpeg, gif and webp images, not {mime or 'this type'}"
    return None


# --- answer ----------------------------------------------------------------------------------


def usage_from(raw: dict[str, Any] | None) -> dict[str, int]:
    raw = raw or {}
    prompt = sum(int(raw.get(k) or 0) for k in (
        "inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"))
    return usage(prompt, int(raw.get("outputTokens") or 0))


def content_filter(who: str, reason: str) -> ProviderError:
    return ProviderError(
        "client_error", f"{who} stopped the answer ({reason}): a guardrail or content filter "
        "refused this request; rephrase it or ask another model", status=400,
        param="messages", code="content_filter")


def completion_from(data: dict[str, Any], model: str, who: str,
                    structured: str | None = None) -> ChatBody:
    """A `chat.completion` for a Converse answer; `structured` names the forced tool whose
    input is the answer (`providers.structured.structured_tool`)."""
    message = (data.get("output") or {}).get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise ProviderError("bad_response", f"{who} answered without output.message.content")
    blocks = [b for b in message["content"] if isinstance(b, dict)]
    text = "".join(str(b["text"]) for b in blocks if "text" in b)
    calls = [_tool_call(b["toolUse"]) for b in blocks if isinstance(b.get("toolUse"), dict)]
    reason = str(data.get("stopReason") or "end_turn")
    finish = STOP_REASONS.get(reason, "stop")
    if structured is not None:
        text, calls, finish = _structured_answer(blocks, structured, finish)
    if finish == "content_filter" and not text and not calls:
        raise content_filter(who, reason)
    answer: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        answer["tool_calls"] = calls
        answer["content"] = text or None
        finish = "tool_calls" if finish == "stop" else finish
    return chat_completion(
        id="chatcmpl-" + uuid.uuid4().hex, model=model, usage=usage_from(data.get("usage")),
        choices=[{"index": 0, "message": answer, "logprobs": None, "finish_reason": finish}])


def _structured_answer(blocks: list[dict[str, Any]], name: str,
                       finish: str) -> tuple[str, list[dict[str, Any]], str]:
    """The forced tool's input as the content; `tool_use` (the tool was called, as forced)
    is a plain `stop`. Without that call (a filter, a length stop) the text is kept."""
    for block in blocks:
        use = block.get("toolUse")
        if isinstance(use, dict) and use.get("name") == name:
            return (orjson.dumps(use.get("input") or {}).decode(), [],
                    "stop" if finish == "tool_calls" else finish)
    text = "".join(str(b["text"]) for b in blocks if "text" in b)
    return text, [], "stop" if finish == "tool_calls" else finish


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(block.get("toolUseId") or "call_" + uuid.uuid4().hex[:24]),
            "type": "function", "function": {
                "name": str(block.get("name", "")),
                "arguments": orjson.dumps(block.get("input") or {}).decode()}}


class ConverseStream:
    """Turns ConverseStream events (`:event-type`, JSON payload) into `chat.completion.chunk`
    dicts.

    `contentBlockStart` opens a tool call (id, name), `contentBlockDelta` carries text or a
    piece of a tool call's JSON input, `messageStop` the stop reason, and `metadata`, last,
    the usage. The answer is `complete` once `messageStop` came; `final` is the usage chunk.
    With `structured` (the forced tool of `providers.structured`), that tool's input pieces are
    content deltas and text around it is left out, as in `completion_from`.
    """

    def __init__(self, model: str, who: str, structured: str | None = None) -> None:
        self.model = model
        self.who = who
        self.structured = structured
        self.answer_block: int | None = None  # contentBlockIndex of the structured answer
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.started = False
        self.complete = False
        self.text = False
        self.tools: dict[int, int] = {}  # contentBlockIndex -> tool call index
        self.usage: dict[str, Any] | None = None

    def chunks(self, event_type: str, payload: dict[str, Any]) -> list[ChatBody]:
        if event_type == "contentBlockStart":
            return self._block_start(payload)
        if event_type == "contentBlockDelta":
            return self._delta(payload)
        if event_type == "messageStop":
            return self._stop(str(payload.get("stopReason") or "end_turn"))
        if event_type == "metadata":
            self.usage = payload.get("usage")
        return []  # messageStart, contentBlockStop, and what a later API version adds

    def _block_start(self, payload: dict[str, Any]) -> list[ChatBody]:
        tool = (payload.get("start") or {}).get("toolUse")
        if not isinstance(tool, dict):
            return []
        if self.structured is not None:
            if tool.get("name") == self.structured:
                self.answer_block = int(payload.get("contentBlockIndex", 0))
            return []
        index = len(self.tools)
        self.tools[int(payload.get("contentBlockIndex", index))] = index
        return self._send({"tool_calls": [{
            "index": index, "id": str(tool.get("toolUseId") or "call_" + uuid.uuid4().hex[:24]),
            "type": "function", "function": {"name": str(tool.get("name", "")),
                                             "arguments": ""}}]})

    def _delta(self, payload: dict[str, Any]) -> list[ChatBody]:
        delta = payload.get("delta") or {}
        if self.structured is not None:
            return self._structured_delta(payload, delta)
        if isinstance(delta.get("text"), str) and delta["text"]:
            self.text = True
            return self._send({"content": delta["text"]})
        tool = delta.get("toolUse")
        block = payload.get("contentBlockIndex")
        if isinstance(tool, dict) and isinstance(block, int) and block in self.tools:
            return self._send({"tool_calls": [{"index": self.tools[block], "function": {
                "arguments": str(tool.get("input", ""))}}]})
        return []  # reasoning content, or an empty piece

    def _structured_delta(self, payload: dict[str, Any],
                          delta: dict[str, Any]) -> list[ChatBody]:
        piece = (delta.get("toolUse") or {}).get("input")
        if (self.answer_block is None or payload.get("contentBlockIndex") != self.answer_block
                or not isinstance(piece, str) or not piece):
            return []
        self.text = True
        return self._send({"content": piece})

    def _stop(self, reason: str) -> list[ChatBody]:
        finish = STOP_REASONS.get(reason, "stop")
        if self.structured is not None and finish == "tool_calls":
            finish = "stop"  # the forced tool was called: that is the answer
        if finish == "content_filter" and not self.text and not self.tools:
            raise content_filter(self.who, reason)
        if finish == "stop" and self.tools:
            finish = "tool_calls"
        self.complete = True
        out = [] if self.started else self._send({})
        out.append(chat_chunk(id=self.id, model=self.model, created=self.created,
                              finish_reason=finish))
        return out

    def _send(self, delta: dict[str, Any]) -> list[ChatBody]:
        if not self.started:  # the role rides on the first real delta
            self.started = True
            content = None if "tool_calls" in delta else ""
            delta = {"role": "assistant", "content": content, **delta}
        return [chat_chunk(id=self.id, model=self.model, created=self.created, delta=delta)]

    def final(self) -> ChatBody:
        """The closing usage chunk (empty `choices`), as OpenAI sends with `include_usage`."""
        return chat_chunk(id=self.id, model=self.model, created=self.created,
                          empty_choices=True, usage=usage_from(self.usage))


# --- embeddings ------------------------------------------------------------------------------

# InvokeModel bodies of the two embedding families Bedrock sells (each model's own format).
EmbeddingFamily = Literal["titan", "cohere"]
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V1_DIMENSIONS = 1536
COHERE_V3_DIMENSIONS = 1024
COHERE_BATCH = 96  # texts per call
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


def embedding_family(model: str) -> EmbeddingFamily | None:
    """Which body a model id (or inference profile, or ARN ending in one) takes, if any."""
    if "amazon.titan-embed-text-" in model:
        return "titan"
    if "cohere.embed-english-v3" in model or "cohere.embed-multilingual-v3" in model:
        return "cohere"
    return None


def titan_request(text: str, model: str, dimensions: int | None) -> BedrockBody:
    """One Titan Text Embeddings body (one text a call). v2 shortens to 256 or 512 and is
    asked to normalise, as OpenAI's vectors are; v1 has 1536 dimensions and no options."""
    if "titan-embed-text-v1" in model:
        if dimensions not in (None, TITAN_V1_DIMENSIONS):
            raise _dimensions_refused(model, (TITAN_V1_DIMENSIONS,))
        return {"inputText": text}
    if dimensions is not None and dimensions not in TITAN_V2_DIMENSIONS:
        raise _dimensions_refused(model, TITAN_V2_DIMENSIONS)
    out: BedrockBody = {"inputText": text, "normalize": True}
    if dimensions:
        out["dimensions"] = dimensions
    return out


def cohere_request(texts: list[str], input_type: Any, model: str,
                   dimensions: int | None) -> BedrockBody:
    """One Cohere Embed v3 body (up to 96 texts). `input_type` is Cohere's own request field,
    passed through when the client sends it (`extra_body`), `search_document` otherwise."""
    if dimensions not in (None, COHERE_V3_DIMENSIONS):
        raise _dimensions_refused(model, (COHERE_V3_DIMENSIONS,))
    if input_type is not None and input_type not in COHERE_INPUT_TYPES:
        raise ProviderError("client_error", f"input_type must be one of "
                            f"{', '.join(COHERE_INPUT_TYPES)} for {model}", status=400,
                            param="input_type", code="invalid_value")
    return {"texts": texts, "input_type": input_type or "search_document"}


def _dimensions_refused(model: str, allowed: tuple[int, ...]) -> ProviderError:
    return ProviderError("client_error", f"{model} returns vectors of "
                         f"{' or '.join(str(d) for d in allowed)} dimensions: ask for one of "
                         "those, or leave `dimensions` out", status=400, param="dimensions",
                         code="invalid_value")


def titan_vector(data: dict[str, Any], who: str) -> tuple[list[float], int]:
    """A Titan answer's vector and `inputTextTokenCount`."""
    vector = data.get("embedding")
    if not isinstance(vector, list) or not vector:
        raise ProviderError("bad_response", f"{who} answered without an embedding")
    return [float(v) for v in vector], int(data.get("inputTextTokenCount") or 0)


def cohere_vectors(data: dict[str, Any], count: int, who: str) -> list[list[float]]:
    """A Cohere answer's vectors: `embeddings` is a list of vectors (`embeddings_floats`) or,
    when types were asked for, `{"float": [...]}`."""
    embeddings = data.get("embeddings")
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or len(embeddings) != count or not all(
            isinstance(v, list) and v for v in embeddings):
        raise ProviderError("bad_response", f"{who} answered without one embedding per text")
    return [[float(x) for x in v] for v in embeddings]


# --- errors ----------------------------------------------------------------------------------

# Error type (the `x-amzn-ErrorType` header, or an exception message's `:exception-type`,
# either case) -> fault kind. Bedrock's statuses are listed in each operation's "Errors".
_ERROR_KINDS = {
    "throttlingexception": "rate_limited",  # 429
    "servicequotaexceededexception": "rate_limited",  # 400: the account's quota, not the request
    "serviceunavailableexception": "upstream_5xx",  # 503
    "modelnotreadyexception": "upstream_5xx",  # 429: the model is being loaded
    "internalserverexception": "upstream_5xx",  # 500
    "modelerrorexception": "upstream_5xx",  # 424
    "modeltimeoutexception": "upstream_5xx",  # 408
    "modelstreamerrorexception": "upstream_5xx",  # 424, mid-stream
    "accessdeniedexception": "upstream_auth",  # 403: no access to the model or the account
    "unrecognizedclientexception": "upstream_auth",  # 403: unknown access key id
    "invalidsignatureexception": "upstream_auth",  # 403: wrong secret
    "expiredtokenexception": "upstream_auth",  # 403: temporary credentials ran out
    "incompletesignatureexception": "upstream_auth",
    "missingauthenticationtokenexception": "upstream_auth",
    "validationexception": "client_error",  # 400
    "resourcenotfoundexception": "client_error",  # 404
}


def error_kind(error_type: str, status: int) -> str:
    """The fault kind of an AWS error, by its type name first, its status otherwise."""
    name = error_type.split(":", 1)[0].split("#")[-1].strip().lower()
    if name in _ERROR_KINDS:
        return _ERROR_KINDS[name]
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "upstream_auth"
    if status >= 500 or status in (408, 409, 424):
        return "upstream_5xx"
    return "client_error"


def error_for(status: int, error_type: str, raw: bytes, who: str) -> ProviderError:
    """An AWS JSON error (`x-amzn-ErrorType` header, `{"message": …}` body) classified for the
    executor. AWS sends no `Retry-After`: throttling is retried with the provider's backoff."""
    message = ""
    try:
        data = orjson.loads(raw)
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("Message") or "")
            error_type = error_type or str(data.get("__type") or "")
    except orjson.JSONDecodeError:
        message = raw[:200].decode("utf-8", "replace")
    name = error_type.split(":", 1)[0].split("#")[-1]
    kind = error_kind(error_type, status)
    text = f"{who} answered HTTP {status}" + (f" {name}" if name else "")
    if kind == "upstream_auth":
        text += (" (check the AWS credentials, the region and the account's access to the "
                 "model)")
    elif message:
        text += f": {message[:500]}"
    return ProviderError(kind, text, status=status, code=name or None)


def stream_error_for(message_type: str, error_type: str, payload: bytes,
                     who: str) -> ProviderError:
    """An `exception` (or `error`) message inside a ConverseStream answer."""
    kind = error_kind(error_type, 500)
    status = {"rate_limited": 429, "upstream_auth": 403, "client_error": 400}.get(kind, 500)
    return error_for(status, error_type, payload, f"{who} (mid-stream {message_type})")
