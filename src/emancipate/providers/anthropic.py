"""Anthropic's Messages API, translated to and from OpenAI chat completions.

`response_format` `json_schema` / `json_object`: the Messages API has no JSON mode, so the
answer is asked for as a forced tool whose `input_schema` is the schema
(`providers/structured.py`, shared with `bedrock`); that tool's input comes back as the
`content` (JSON text) with `finish_reason: stop`, streamed as content deltas.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from emancipate.config import AnthropicProvider
from emancipate.protocol import (
    ChatCompletionRequest,
    ContentPart,
    FilePart,
    chat_chunk,
    chat_completion,
    usage,
)
from emancipate.providers.base import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    check_legacy,
    check_parts,
    check_token_limit,
    data_url_parts,
    text_of,
)
from emancipate.providers.http import DEFAULT_MAX_BODY, HTTPUpstream, read_secret
from emancipate.providers.structured import STRUCTURED_WITH_TOOLS, structured_spec, structured_tool

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
# `file` parts go as `document` blocks: base64 PDFs only (`_document_refusal`).
ANTHROPIC_PARTS = frozenset({"text", "image_url", "file", "refusal"})


class Anthropic(Provider):
    def __init__(self, name: str, cfg: AnthropicProvider,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.http = HTTPUpstream(name, cfg.timeouts, cfg.max_concurrency, max_body)
        self.headers = {
            "Content-Type": "application/json",
            "anthropic-version": cfg.anthropic_version,
            **cfg.headers,
        }
        key = read_secret(cfg.api_key_env)
        if key:
            self.headers["x-api-key"] = key
        self.url = f"{cfg.base_url}/v1/messages"

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        check_token_limit(request, self.cfg.context_window, f"provider {self.name!r}")
        if request.n != 1:
            raise Unsupported("n", f"provider {self.name!r} (Anthropic) returns one choice only")
        if (request.response_format is not None and request.response_format.type != "text"
                and request.tools):
            raise Unsupported("response_format",
                              f"provider {self.name!r} (Anthropic) {STRUCTURED_WITH_TOOLS}")
        check_legacy(request, f"provider {self.name!r} (Anthropic)")
        check_parts(request, f"provider {self.name!r} (Anthropic)", ANTHROPIC_PARTS,
                    _document_refusal)
        if request.temperature is not None and request.temperature > 1:
            raise Unsupported(
                "temperature", f"provider {self.name!r} (Anthropic) accepts temperature 0 to 1"
            )

    # --- request translation -----------------------------------------------------------------

    def to_messages_request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        system: list[str] = []
        messages: list[dict[str, Any]] = []

        def add(role: str, blocks: list[dict[str, Any]]) -> None:
            # The Messages API wants alternating roles: merge consecutive same-role turns.
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": role, "content": blocks})

        for msg in body["messages"]:
            role = msg["role"]
            if role in ("system", "developer"):
                system.append(text_of(msg.get("content")))
            elif role == "user":
                add("user", _blocks(msg.get("content")))
            elif role == "assistant":
                blocks = _blocks(msg.get("content")) if msg.get("content") else []
                for call in msg.get("tool_calls") or ():
                    fn = call["function"]
                    try:
                        args = orjson.loads(fn.get("arguments") or "{}")
                    except orjson.JSONDecodeError:
                        args = {"arguments": fn.get("arguments")}
                    blocks.append(
                        {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": args}
                    )
                add("assistant", blocks)
            elif role in ("tool", "function"):
                add("user", [{
                    "type": "tool_result",
                    "tool_use_id": msg.get("tool_call_id") or msg.get("name") or "",
                    "content": text_of(msg.get("content")),
                }])
        out: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": body.get("max_completion_tokens")
            or body.get("max_tokens")
            or self.cfg.default_max_tokens,
        }
        if system:
            out["system"] = "\n\n".join(system)
        if body.get("temperature") is not None:
            out["temperature"] = body["temperature"]
        if body.get("top_p") is not None:
            out["top_p"] = body["top_p"]
        stop = body.get("stop")
        if stop:
            out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        spec = structured_spec(body)
        if spec is not None:
            out["tools"] = [{"name": spec.name, "description": spec.description,
                             "input_schema": spec.schema}]
            out["tool_choice"] = {"type": "tool", "name": spec.name}
        elif body.get("tools"):
            out["tools"] = [
                {
                    "name": t["function"]["name"],
                    "description": t["function"].get("description") or "",
                    "input_schema": t["function"].get("parameters")
                    or {"type": "object", "properties": {}},
                }
                for t in body["tools"]
            ]
            choice = _tool_choice(body.get("tool_choice"))
            if choice is not None:
                out["tool_choice"] = choice
        if body.get("user"):
            out["metadata"] = {"user_id": str(body["user"])}
        return out

    # --- calls -------------------------------------------------------------------------------

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        resp = await self.http.post(self.url, self.to_messages_request(body, model), self.headers)
        data = await self.http.read_json(resp)
        if data.get("type") == "error":
            raise ProviderError("upstream_5xx", f"provider {self.name!r} answered an error")
        content = data.get("content")
        if not isinstance(content, list):
            raise ProviderError("bad_response", f"provider {self.name!r} answered without content")
        text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
        calls = [
            {
                "id": b["id"],
                "type": "function",
                "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()},
            }
            for b in content
            if b.get("type") == "tool_use"
        ]
        reason = STOP_REASONS.get(data.get("stop_reason") or "end_turn", "stop")
        structured = structured_tool(body)
        if structured is not None:
            text, calls, reason = _structured_answer(content, structured, text, reason)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        elif not text:
            message["content"] = ""
        u = data.get("usage") or {}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
        _name_stop(choice, data)
        return chat_completion(
            id="chatcmpl-" + str(data.get("id", "")).removeprefix("msg_"),
            model=data.get("model", model),
            choices=[choice],
            usage=usage(int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0))),
        )

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        request = self.to_messages_request(body, model)
        request["stream"] = True
        resp = await self.http.post(self.url, request, self.headers)
        created = int(time.time())
        chunk_id = "chatcmpl-"
        prompt_tokens = completion_tokens = 0
        tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        structured = structured_tool(body)
        answer_block: int | None = None  # the block of the forced structured-output tool
        finished = False
        async for event, data in self.http.sse_events(resp):
            try:
                ev = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise ProviderError(
                    "bad_response", f"provider {self.name!r} sent an invalid stream event"
                ) from exc
            kind = ev.get("type", event) if isinstance(ev, dict) else None
            if kind == "message_start":
                msg = ev.get("message") or {}
                chunk_id = "chatcmpl-" + str(msg.get("id", "")).removeprefix("msg_")
                prompt_tokens = int((msg.get("usage") or {}).get("input_tokens", 0))
                yield chat_chunk(id=chunk_id, model=model, created=created,
                                 delta={"role": "assistant", "content": ""})
            elif kind == "content_block_start":
                block = ev.get("content_block") or {}
                if block.get("type") == "tool_use" and structured is not None:
                    if block.get("name") == structured:  # its input is the answer's content
                        answer_block = ev.get("index", 0)
                elif block.get("type") == "tool_use":
                    n = tool_index.setdefault(ev.get("index", 0), len(tool_index))
                    yield chat_chunk(id=chunk_id, model=model, created=created, delta={
                        "tool_calls": [{
                            "index": n, "id": block.get("id"), "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""},
                        }]
                    })
            elif kind == "content_block_delta":
                delta = ev.get("delta") or {}
                if delta.get("type") == "text_delta":
                    yield chat_chunk(id=chunk_id, model=model, created=created,
                                     delta={"content": delta.get("text", "")})
                elif delta.get("type") == "input_json_delta" and structured is not None:
                    if ev.get("index", 0) == answer_block and delta.get("partial_json"):
                        yield chat_chunk(id=chunk_id, model=model, created=created,
                                         delta={"content": delta["partial_json"]})
                elif delta.get("type") == "input_json_delta":
                    n = tool_index.get(ev.get("index", 0), 0)
                    yield chat_chunk(id=chunk_id, model=model, created=created, delta={
                        "tool_calls": [{
                            "index": n, "function": {"arguments": delta.get("partial_json", "")}
                        }]
                    })
            elif kind == "message_delta":
                delta = ev.get("delta") or {}
                completion_tokens = int((ev.get("usage") or {}).get("output_tokens", 0))
                reason = STOP_REASONS.get(delta.get("stop_reason") or "end_turn", "stop")
                if structured is not None and reason == "tool_calls":
                    reason = "stop"  # the forced tool was called: that is the answer
                chunk = chat_chunk(id=chunk_id, model=model, created=created,
                                   finish_reason=reason)
                _name_stop(chunk["choices"][0], delta)
                yield chunk
            elif kind == "message_stop":
                finished = True
                yield chat_chunk(id=chunk_id, model=model, created=created, empty_choices=True,
                                 usage=usage(prompt_tokens, completion_tokens))
                break
            elif kind == "error":
                err = ev.get("error") or {}
                etype = err.get("type", "")
                raise ProviderError(
                    "rate_limited" if etype == "rate_limit_error" else "upstream_5xx",
                    f"provider {self.name!r} reported {etype or 'an error'} mid-stream",
                )
        if not finished:
            raise ProviderError(
                "stream_cut", f"provider {self.name!r} ended the stream before it was complete"
            )

    async def aclose(self) -> None:
        await self.http.aclose()


def _name_stop(choice: dict[str, Any], answer: dict[str, Any]) -> None:
    """The chat form says only "stop": name the matched stop sequence in the choice's
    `stop_reason`, as vLLM does, so that the Messages API (`api/messages.py`) can answer
    `stop_reason: stop_sequence` with it."""
    if answer.get("stop_reason") == "stop_sequence" and isinstance(
            answer.get("stop_sequence"), str):
        choice["stop_reason"] = answer["stop_sequence"]


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") in ("text", "refusal"):
            blocks.append({"type": "text", "text": part.get("text") or part.get("refusal") or ""})
        elif part.get("type") == "file":
            inline = data_url_parts((part.get("file") or {}).get("file_data") or "")
            if inline is not None:  # checked: a PDF (`_document_refusal`)
                blocks.append({"type": "document", "source": {
                    "type": "base64", "media_type": inline[0], "data": inline[1]}})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                blocks.append({"type": "image",
                               "source": {"type": "base64", "media_type": media, "data": data}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def _structured_answer(content: list[dict[str, Any]], name: str, text: str, reason: str
                       ) -> tuple[str, list[dict[str, Any]], str]:
    """The forced tool's input as the content; `tool_use` (the tool was called, as forced)
    is a plain `stop`. Without that call (a refusal, a length stop) the text is kept."""
    finish = "stop" if reason == "tool_calls" else reason
    for block in content:
        if block.get("type") == "tool_use" and block.get("name") == name:
            return orjson.dumps(block.get("input") or {}).decode(), [], finish
    return text, [], finish


def _document_refusal(part: ContentPart) -> str | None:
    """Why this part cannot be a `document` block, or None (not a file, or a base64 PDF)."""
    if not isinstance(part, FilePart):
        return None
    inline = data_url_parts(part.file.file_data or "")
    if inline is None:
        return ("takes files inline only (`file_data` as a base64 data: URL), not by an "
                "OpenAI `file_id`")
    if inline[0] != "application/pdf":
        return f"takes PDF files only, not {inline[0]}"
    return None


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if choice == "auto" else None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    return None
