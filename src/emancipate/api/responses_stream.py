"""The Response object and its typed event stream, built from the chat pipeline's answer.

The event sequence is OpenAI's, which the openai SDK's `responses.stream()` helper checks:

    response.created, response.in_progress
    per text answer:    response.output_item.added (message), response.content_part.added,
                        response.output_text.delta…, response.output_text.done,
                        response.content_part.done, response.output_item.done
    per function call:  response.output_item.added (function_call),
                        response.function_call_arguments.delta…,
                        response.function_call_arguments.done, response.output_item.done
    response.completed (or response.incomplete when max_output_tokens cut the answer)

A break after commit ends the stream with `error`, then `response.failed` holding what had
arrived (items marked incomplete). Every event carries `sequence_number`, from 0; each is
framed as `event: <type>` and `data: <json>`; there is no `[DONE]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from emancipate.context import RequestContext

if TYPE_CHECKING:
    from emancipate.api.responses import ResponsesCall

Item = dict[str, Any]
ResponseBody = dict[str, Any]
ChatMessage = dict[str, Any]


# --- builders -------------------------------------------------------------------------------


def response_id(ctx: RequestContext) -> str:
    """`resp_` and the request id's digits: the ledger's record of a response is findable."""
    return "resp_" + ctx.request_id.removeprefix("req_")


def response_object(call: ResponsesCall, ctx: RequestContext, *, status: str,
                    output: list[Item], usage: dict[str, Any] | None = None,
                    error: dict[str, Any] | None = None,
                    incomplete: dict[str, Any] | None = None) -> ResponseBody:
    """The Response object, with the request's settings echoed as OpenAI does."""
    reasoning = call.echo("reasoning", {})
    return {
        "id": response_id(ctx), "object": "response", "created_at": int(ctx.started_at),
        "status": status, "background": False, "error": error,
        "incomplete_details": incomplete, "instructions": call.echo("instructions"),
        "max_output_tokens": call.echo("max_output_tokens"), "max_tool_calls": None,
        "model": ctx.route or call.echo("model", ""), "output": output,
        "parallel_tool_calls": call.echo("parallel_tool_calls", True),
        "previous_response_id": call.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "service_tier": "default", "store": call.store,
        "temperature": call.echo("temperature", 1.0),
        "text": {"format": (call.echo("text", {}).get("format") or {"type": "text"})},
        "tool_choice": call.echo("tool_choice", "auto"), "tools": call.echo("tools", []),
        "top_p": call.echo("top_p", 1.0), "truncation": call.echo("truncation", "disabled"),
        "usage": usage, "user": call.echo("user"), "metadata": call.echo("metadata", {}),
    }


def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"input_tokens": prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens}


def message_item(item_id: str, text: str, status: str = "completed") -> Item:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status,
            "content": [text_part(text)]}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(item_id: str, call_id: str, name: str, arguments: str,
              status: str = "completed") -> Item:
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def ending(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """The Response status (and incomplete details) for a chat finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def assistant_message(text: str | None, calls: list[dict[str, Any]]) -> ChatMessage:
    message: ChatMessage = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {"id": c.get("id"), "type": "function",
             "function": {"name": (c.get("function") or {}).get("name"),
                          "arguments": (c.get("function") or {}).get("arguments") or ""}}
            for c in calls]
    return message


# --- the stream -----------------------------------------------------------------------------


class ResponseEvents:
    """The event translator of one streamed response: `feed` each chat chunk; at the end
    `close`, `final` and `completed`, or `failed` when the upstream broke."""

    def __init__(self, call: ResponsesCall, ctx: RequestContext) -> None:
        self.call = call
        self.ctx = ctx
        self.seq = 0
        self.digits = ctx.request_id.removeprefix("req_")
        self.output: list[Item] = []
        self.text: list[str] | None = None  # the open message item's text, if one is open
        self.text_index = -1
        self.calls: dict[int, int] = {}  # chat tool-call index → output index
        self.open_call: int | None = None  # output index of the call receiving arguments
        self.finish: str | None = None
        self.started = False

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = orjson.dumps({"type": kind, "sequence_number": self.seq, **fields})
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"

    def _start(self) -> Iterator[bytes]:
        if not self.started:
            self.started = True
            response = response_object(self.call, self.ctx, status="in_progress", output=[])
            yield self._event("response.created", response=response)
            yield self._event("response.in_progress", response=response)

    def feed(self, chunk: dict[str, Any]) -> Iterator[bytes]:
        """The events one chat chunk makes (none for a role-only or usage chunk)."""
        yield from self._start()
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # the Responses API has one answer; `n` is never asked for
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                yield from self._text(content)
            for call in delta.get("tool_calls") or ():
                yield from self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _text(self, content: str) -> Iterator[bytes]:
        if self.text is None:
            yield from self._close_call()
            yield from self._open_text()
        assert self.text is not None
        self.text.append(content)
        yield self._event("response.output_text.delta", item_id=self._message_id(),
                          output_index=self.text_index, content_index=0, delta=content,
                          logprobs=[])

    def _open_text(self) -> Iterator[bytes]:
        self.text, self.text_index = [], len(self.output)
        item = {**message_item(self._message_id(), "", "in_progress"), "content": []}
        self.output.append(item)
        yield self._event("response.output_item.added", output_index=self.text_index,
                          item=item)
        yield self._event("response.content_part.added", item_id=item["id"],
                          output_index=self.text_index, content_index=0, part=text_part(""))

    def _call(self, call: dict[str, Any]) -> Iterator[bytes]:
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self.calls:
            yield from self._close_text()
            yield from self._close_call()
            position = len(self.output)
            self.calls[index] = self.open_call = position
            item = call_item(f"fc_{self.digits}_{index}", str(call.get("id") or ""),
                             str(function.get("name") or ""), "", "in_progress")
            self.output.append(item)
            yield self._event("response.output_item.added", output_index=position,
                              item=dict(item))
        position = self.calls[index]
        item = self.output[position]
        if call.get("id") and not item["call_id"]:  # some servers name the call late
            item["call_id"] = str(call["id"])
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            yield self._event("response.function_call_arguments.delta", item_id=item["id"],
                              output_index=position, delta=arguments)

    def _message_id(self) -> str:
        return f"msg_{self.digits}"

    def _close_text(self) -> Iterator[bytes]:
        if self.text is None:
            return
        text, position = "".join(self.text), self.text_index
        self.text = None
        item = self.output[position]
        yield self._event("response.output_text.done", item_id=item["id"],
                          output_index=position, content_index=0, text=text, logprobs=[])
        yield self._event("response.content_part.done", item_id=item["id"],
                          output_index=position, content_index=0, part=text_part(text))
        item.update(status="completed", content=[text_part(text)])
        yield self._event("response.output_item.done", output_index=position, item=item)

    def _close_call(self) -> Iterator[bytes]:
        position, self.open_call = self.open_call, None
        if position is None:
            return
        item = self.output[position]
        yield self._event("response.function_call_arguments.done", item_id=item["id"],
                          output_index=position, name=item["name"],
                          arguments=item["arguments"])
        item["status"] = "completed"
        yield self._event("response.output_item.done", output_index=position, item=item)

    def close(self) -> Iterator[bytes]:
        """The answer is whole: close the open item (an empty answer is one empty message)."""
        yield from self._start()
        if not self.output:
            yield from self._open_text()
        yield from self._close_text()
        yield from self._close_call()

    def final(self) -> tuple[ResponseBody, ChatMessage]:
        """After `close`: the Response object and the assistant message to store."""
        status, incomplete = ending(self.finish)
        usage = usage_of(self.ctx.prompt_tokens, self.ctx.completion_tokens)
        response = response_object(self.call, self.ctx, status=status, output=self.output,
                                   usage=usage, incomplete=incomplete)
        texts = [part["text"] for item in self.output if item["type"] == "message"
                 for part in item["content"]]
        calls = [{"id": item["call_id"],
                  "function": {"name": item["name"], "arguments": item["arguments"]}}
                 for item in self.output if item["type"] == "function_call"]
        return response, assistant_message("".join(texts) if texts else None, calls)

    def completed(self, response: ResponseBody) -> bytes:
        kind = "response.completed" if response["status"] == "completed" else \
            "response.incomplete"
        return self._event(kind, response=response)

    def failed(self, error: dict[str, Any]) -> Iterator[bytes]:
        """`error`, then `response.failed` with what arrived (the upstream broke mid-way)."""
        yield from self._start()
        message = str(error.get("message") or "The answer was interrupted.")
        yield self._event("error", code=error.get("code") or "server_error", message=message,
                          param=error.get("param"))
        output = [{**item, "status": "incomplete"} for item in self.output]
        if self.text is not None:
            output[self.text_index]["content"] = [text_part("".join(self.text))]
        yield self._event("response.failed", response=response_object(
            self.call, self.ctx, status="failed", output=output,
            error={"code": "server_error", "message": message}))


__all__ = ["ResponseEvents", "assistant_message", "call_item", "ending", "message_item",
           "response_id", "response_object", "text_part", "usage_of"]
