"""Anthropic's Messages API as the vendor speaks it: headers it insists on, content blocks,
tool use, the named-event SSE stream, and `{"type": "error", ...}` errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emancipate.testing.common import (
    Answer,
    ReplyFn,
    count_tokens,
    dumps,
    generate,
    new_id,
    retry_after_header,
    split_pieces,
    stops_of,
    text_of,
    tool_arguments,
)

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

_STOP_REASONS = {"end": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind, default = _ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}"))
    return {"type": "error", "error": {"type": kind, "message": message or default}}


def _event(name: str, obj: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + dumps(obj) + b"\n\n"


class AnthropicWire:
    """Answers one request the way api.anthropic.com would (deterministic simulated model)."""

    def __init__(self, name: str, api_key: str | None, reply: ReplyFn | None,
                 chunks: int | None) -> None:
        self.name = name
        self.api_key = api_key
        self.reply = reply
        self.chunks = chunks

    # --- errors and broken bodies -------------------------------------------------------------

    def error(self, status: int, message: str | None = None, *,
              retry_after: float | None = None) -> Answer:
        return Answer(status, body=_error_body(status, message),
                      headers=retry_after_header(retry_after))

    def garbage_body(self) -> bytes:
        return (b'{"id":"msg_garbage","type":"message","role":"assistant","content":'
                b'[{"type":"text","text":"this answer stops sh')

    def garbage_event(self) -> bytes:
        return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                b'"delta":{"type":"text_de\n\n')

    def error_event(self, status: int) -> bytes:
        return _event("error", _error_body(status))

    def request_id_header(self) -> dict[str, str]:
        return {"request-id": new_id("req_")}

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        if self.api_key is not None:
            given = headers.get("x-api-key")
            if not given:
                return self.error(401, "x-api-key header is required")
            if given != self.api_key:
                return self.error(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        route = (method, path.rstrip("/"))
        if route == ("GET", "/v1/models"):
            ids = [f"{self.name}-opus", f"{self.name}-haiku"]
            return Answer(200, body={"data": [
                {"type": "model", "id": i, "display_name": i,
                 "created_at": "2025-01-01T00:00:00Z"} for i in ids],
                "has_more": False, "first_id": ids[0], "last_id": ids[-1]})
        if route != ("POST", "/v1/messages"):
            return self.error(404, f"Not found: {method} {path}")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "There was an issue with your request body: invalid JSON")
        return self._messages(body)

    def _messages(self, body: dict[str, Any]) -> Answer:
        for required in ("model", "max_tokens", "messages"):
            if body.get(required) is None:
                return self.error(400, f"{required}: Field required")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return self.error(400, "max_tokens: Input should be a valid positive integer")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self.error(400, "messages: at least one message is required")
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                return self.error(400, f"messages.{i}.role: Unexpected role {role!r}. The "
                                  "Messages API accepts a top-level `system` parameter, not "
                                  "\"system\" as an input message role.")
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, int | float)
                                            and 0 <= temperature <= 1):
            return self.error(400, "temperature: range: 0..1")
        last = _last_user_text(messages)
        input_tokens = count_tokens(_system_text(body.get("system"))) + sum(
            count_tokens(_all_text(m.get("content"))) for m in messages)
        message_id, model = new_id("msg_"), body["model"]
        tool = _tool_to_call(body, messages)
        if tool is not None:
            arguments = tool_arguments(last)
            block: dict[str, Any] = {"type": "tool_use", "id": new_id("toolu_"), "name": tool,
                                     "input": json.loads(arguments)}
            pieces, stop_reason, stop_sequence = split_pieces(arguments, self.chunks), "tool_use", \
                None
            output_tokens = count_tokens(arguments)
        else:
            text = self.reply(body) if self.reply else f"{self.name} says: {last}"
            gen = generate(text, max_tokens=max_tokens, stops=stops_of(body.get("stop_sequences")),
                           chunks=self.chunks)
            block = {"type": "text", "text": gen.text}
            pieces, stop_reason, stop_sequence = gen.pieces, _STOP_REASONS[gen.finish], \
                gen.stop_sequence
            output_tokens = gen.tokens
        usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": output_tokens}
        if body.get("stream"):
            start = {"id": message_id, "type": "message", "role": "assistant", "model": model,
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {**usage, "output_tokens": 1}}
            events = [_event("message_start", {"type": "message_start", "message": start})]
            empty = {**block, "input": {}} if block["type"] == "tool_use" else \
                {"type": "text", "text": ""}
            events.append(_event("content_block_start", {
                "type": "content_block_start", "index": 0, "content_block": empty}))
            events.append(_event("ping", {"type": "ping"}))
            for piece in pieces:
                delta = {"type": "text_delta", "text": piece} if block["type"] == "text" else \
                    {"type": "input_json_delta", "partial_json": piece}
                events.append(_event("content_block_delta", {
                    "type": "content_block_delta", "index": 0, "delta": delta}))
            events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(_event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens}}))
            events.append(_event("message_stop", {"type": "message_stop"}))
            return Answer(200, events=events, pieces=len(pieces))
        return Answer(200, pieces=len(pieces), body={
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [block], "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": usage,
        })


def _system_text(system: Any) -> str:
    return text_of(system)


def _all_text(content: Any) -> str:
    """Every text a message carries, tool results included (they count as input tokens)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return " ".join(parts)


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message that has text (tool-result-only turns are skipped)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = text_of(message.get("content"))
            if text or not _is_tool_result(message):
                return text
    return ""


def _tool_to_call(body: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice") or {}
    if not isinstance(tools, list) or not tools or choice.get("type") == "none":
        return None
    if _is_tool_result(messages[-1]):  # the tool answered: now the model answers in text
        return None
    if choice.get("type") == "tool" and choice.get("name"):
        return str(choice["name"])
    first = tools[0] if isinstance(tools[0], dict) else {}
    return str(first.get("name", "tool"))
