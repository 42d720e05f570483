"""OpenAI's wire protocol as a vendor speaks it: chat completions (plain and SSE), embeddings,
models, and errors in OpenAI's shape. Faithful enough that the official SDK accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
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

FINGERPRINT = "fp_simulated"
EMBEDDING_DIMENSIONS = 8

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", None, "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to use this resource."),
    404: ("invalid_request_error", None, "The requested resource does not exist."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


def _error_body(status: int, message: str | None = None, *, param: str | None = None,
                code: str | None = None) -> dict[str, Any]:
    kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None,
                 f"HTTP {status}"))
    return {"error": {"message": message or default_message, "type": kind, "param": param,
                      "code": code if code is not None else default_code}}


class OpenAIWire:
    """Answers one request the way api.openai.com would (deterministic simulated model)."""

    content_type = "application/json"

    def __init__(self, name: str, api_key: str | None, reply: ReplyFn | None,
                 chunks: int | None) -> None:
        self.name = name
        self.api_key = api_key
        self.reply = reply
        self.chunks = chunks

    # --- errors and broken bodies -------------------------------------------------------------

    def error(self, status: int, message: str | None = None, *, param: str | None = None,
              code: str | None = None, retry_after: float | None = None) -> Answer:
        return Answer(status, body=_error_body(status, message, param=param, code=code),
                      headers=retry_after_header(retry_after))

    def garbage_body(self) -> bytes:
        return (b'{"id":"chatcmpl-garbage","object":"chat.completion","choices":[{"index":0,'
                b'"message":{"role":"assistant","content":"this answer stops sh')

    def garbage_event(self) -> bytes:
        return b'data: {"id":"chatcmpl-garbage","choices":[{"delta":{"content":"oops\n\n'

    def error_event(self, status: int) -> bytes:
        return b"data: " + dumps(_error_body(status)) + b"\n\n"

    def request_id_header(self) -> dict[str, str]:
        return {"x-request-id": new_id("req_")}

    # --- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
               query: Mapping[str, str] | None = None) -> Answer:
        denied = self._check_key(headers)
        if denied is not None:
            return denied
        route = (method, path.rstrip("/"))
        if route == ("GET", "/v1/models"):
            return self._models()
        if route not in {("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")}:
            return self.error(404, f"Invalid URL ({method} {path})")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "We could not parse the JSON body of your request. (HINT: "
                              "This likely means you aren't using your HTTP library correctly.)")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.error(400, "you must provide a model parameter")
        if route[1] == "/v1/embeddings":
            return self._embeddings(body)
        return self._chat(body)

    def _check_key(self, headers: Mapping[str, str]) -> Answer | None:
        if self.api_key is None:
            return None
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else headers.get("api-key")
        if not given:
            return self.error(401, "You didn't provide an API key. You need to provide your API "
                              "key in an Authorization header using Bearer auth.")
        if given != self.api_key:
            return self.error(401, "Incorrect API key provided. You can find your API key at "
                              "https://platform.openai.com/account/api-keys.",
                              code="invalid_api_key")
        return None

    # --- endpoints ----------------------------------------------------------------------------

    def _models(self) -> Answer:
        ids = [f"{self.name}-chat", f"{self.name}-embed"]
        return Answer(200, body={"object": "list", "data": [
            {"id": i, "object": "model", "created": 1_700_000_000, "owned_by": self.name}
            for i in ids]})

    def _embeddings(self, body: dict[str, Any]) -> Answer:
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs
                                       and all(isinstance(i, int) for i in inputs)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self.error(400, "'input' is a required property", param="input")
        dims = body.get("dimensions") or EMBEDDING_DIMENSIONS
        if not isinstance(dims, int) or dims < 1:
            return self.error(400, "dimensions must be a positive integer", param="dimensions")
        encoding = body.get("encoding_format") or "float"
        if encoding not in {"float", "base64"}:
            return self.error(400, f"Invalid encoding_format: {encoding!r}",
                              param="encoding_format")
        data, tokens = [], 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else json.dumps(item)
            tokens += count_tokens(text) if isinstance(item, str) else len(item)
            vector = embedding_vector(text, dims)
            value: Any = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": value})
        return Answer(200, body={"object": "list", "data": data, "model": body["model"],
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _chat(self, body: dict[str, Any]) -> Answer:
        messages = body.get("messages")
        if messages is None:
            return self.error(400, "Missing required parameter: 'messages'.", param="messages",
                              code="missing_required_parameter")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            return self.error(400, "Invalid 'messages': expected a non-empty array of messages "
                              "with a 'role'.", param="messages")
        n = 1 if body.get("n") is None else body["n"]
        if not isinstance(n, int) or not 1 <= n <= 128:
            return self.error(400, f"Invalid 'n': {n!r}; expected an integer in [1, 128].",
                              param="n")
        limit_param = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
            else "max_tokens"
        max_tokens = body.get(limit_param)
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return self.error(400, f"Invalid '{limit_param}': expected a positive integer.",
                              param=limit_param)
        last = last_user_text(messages)
        prompt_tokens = sum(count_tokens(_message_text(m)) for m in messages)
        stream = bool(body.get("stream"))
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        reply = _Reply.build(self, body, messages, last, max_tokens)
        completion_tokens = reply.tokens * n
        usage = {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        }
        head = {"id": new_id("chatcmpl-"), "created": int(time.time()), "model": body["model"]}
        if stream:
            events = _stream_events(head, reply, n, usage if include_usage else None,
                                    include_usage)
            return Answer(200, events=events, pieces=len(reply.pieces))
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None,
                                   "annotations": []}
        if reply.tool_call is not None:
            message = {"role": "assistant", "content": None,
                       "tool_calls": [reply.tool_call], "refusal": None, "annotations": []}
        return Answer(200, pieces=len(reply.pieces), body={
            "id": head["id"], "object": "chat.completion", "created": head["created"],
            "model": head["model"],
            "choices": [{"index": i, "message": message, "logprobs": None,
                         "finish_reason": reply.finish_reason} for i in range(n)],
            "usage": usage, "service_tier": "default", "system_fingerprint": FINGERPRINT,
        })


class _Reply:
    """The simulated model's answer to a chat request: text, or a call to a tool."""

    def __init__(self, text: str | None, pieces: list[str], finish_reason: str, tokens: int,
                 tool_call: dict[str, Any] | None = None) -> None:
        self.text = text
        self.pieces = pieces
        self.finish_reason = finish_reason
        self.tokens = tokens
        self.tool_call = tool_call

    @classmethod
    def build(cls, wire: OpenAIWire, body: dict[str, Any], messages: list[dict[str, Any]],
              last: str, max_tokens: int | None) -> _Reply:
        tool = _tool_to_call(body, messages)
        if tool is not None:
            arguments = tool_arguments(last)
            call = {"id": new_id("call_"), "type": "function",
                    "function": {"name": tool, "arguments": arguments}}
            return cls(None, split_pieces(arguments, wire.chunks), "tool_calls",
                       count_tokens(arguments), call)
        text = wire.reply(body) if wire.reply else f"{wire.name} says: {last}"
        if (body.get("response_format") or {}).get("type") == "json_object":
            text = json.dumps({"answer": text})
        gen = generate(text, max_tokens=max_tokens, stops=stops_of(body.get("stop")),
                       chunks=wire.chunks)
        finish = "length" if gen.finish == "length" else "stop"
        return cls(gen.text, gen.pieces, finish, gen.tokens)


def _stream_events(head: dict[str, Any], reply: _Reply, n: int, usage: dict[str, Any] | None,
                   include_usage: bool) -> list[bytes]:
    """The chunk sequence OpenAI streams: role, deltas, finish, optional usage, [DONE]."""

    def chunk(choices: list[dict[str, Any]], final_usage: dict[str, Any] | None = None) -> bytes:
        obj = {"id": head["id"], "object": "chat.completion.chunk", "created": head["created"],
               "model": head["model"], "service_tier": "default",
               "system_fingerprint": FINGERPRINT, "choices": choices}
        if include_usage:
            obj["usage"] = final_usage
        return b"data: " + dumps(obj) + b"\n\n"

    def choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = []
    call = reply.tool_call
    for i in range(n):
        first: dict[str, Any]
        if call is None:
            first = {"role": "assistant", "content": "", "refusal": None}
        else:
            first = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
                "index": 0, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}]}
        events.append(chunk([choice(i, first)]))
    for piece in reply.pieces:
        for i in range(n):
            delta: dict[str, Any] = {"content": piece} if call is None else {
                "tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            events.append(chunk([choice(i, delta)]))
    for i in range(n):
        events.append(chunk([choice(i, {}, reply.finish_reason)]))
    if include_usage:
        events.append(chunk([], usage))
    events.append(b"data: [DONE]\n\n")
    return events


def _tool_to_call(body: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """Name of the tool the model calls, or None when it should answer in text."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    if messages[-1].get("role") == "tool":  # a tool result came back: now answer in text
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return str(choice["function"].get("name"))
    first = tools[0] if isinstance(tools[0], dict) else {}
    return str((first.get("function") or {}).get("name", "tool"))


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message: what the default reply echoes."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def embedding_vector(text: str, dims: int) -> list[float]:
    """A unit vector derived from a hash of the text: same input, same vector, everywhere."""
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(int.from_bytes(digest[i:i + 4], "little") / 2**31 - 1.0
                      for i in range(0, 32, 4))
        counter += 1
    values = values[:dims]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
