"""The legacy completions API, `POST /v1/completions`, on the one chat pipeline.

The prompt becomes one user message, the chat answer's text the completion's `text`; the
stream's chat chunks become `text_completion` chunks ending with `data: [DONE]`. The mapping
table, what is refused and why: docs/api-completions.md.

Decisions (the docs page says why):
- One prompt per request: a list of one string is that string; a longer list is refused
  (400) rather than answered by several pipeline calls under one request id, which the ledger,
  budgets and failover could not account for as one request.
- `max_tokens` defaults to 16, as on OpenAI's and vLLM's completions endpoints.
- `echo` prepends the prompt to the text (first in a stream); `suffix`, `logprobs`,
  `best_of` > 1 and token-id prompts are refused: no chat target can honour them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from emancipate.api.wire import Events, Wire
from emancipate.context import RequestContext
from emancipate.protocol import OpenAIError

ChatBody = dict[str, Any]

DEFAULT_MAX_TOKENS = 16  # OpenAI's (and vLLM's) default on this endpoint
_PROMPT = "completions_prompt"  # ctx.extra: the prompt, for `echo`

# Passed to the chat request unchanged.
_PASSED = ("model", "max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
           "frequency_penalty", "seed", "user", "stream", "stream_options", "logit_bias")
_REFUSED = {
    "suffix": "no chat target fills in the middle; put the text after the gap in the prompt",
    "logprobs": "log probabilities are not offered through this gateway",
}

_KNOWN = {*_PASSED, *_REFUSED, "prompt", "echo", "best_of"}


def _unsupported(param: str, reason: str) -> OpenAIError:
    return OpenAIError(400, f"'{param}' is not supported by this gateway: {reason}.",
                       param=param, code="unsupported_parameter")


def prompt_of(value: Any) -> str:
    """The one prompt of a request (raises `OpenAIError` for anything else)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, str):
        return value
    if value is None:
        raise OpenAIError(400, "Missing required parameter: 'prompt'.", param="prompt",
                          code="missing_required_parameter")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        raise _unsupported("prompt", f"a list of {len(value)} prompts; send one request per "
                           "prompt (each is routed, guarded and billed on its own)")
    raise _unsupported("prompt", "token-id prompts cannot be guarded or sent to chat "
                       "targets; send the prompt as a string")


def chat_request(data: dict[str, Any]) -> ChatBody:
    """The chat request for a completions request (pure; raises `OpenAIError`)."""
    for name in data:
        if name not in _KNOWN:
            raise OpenAIError(400, f"Unknown parameter: '{name}'. The completions API has no "
                              "such field; see docs/api-completions.md for what is accepted.",
                              param=name, code="unknown_parameter")
    for name, reason in _REFUSED.items():
        if data.get(name) not in (None, "", 0):  # 0 and False: none asked for
            raise _unsupported(name, reason)
    if data.get("best_of") not in (None, 1):
        raise _unsupported("best_of", "the gateway returns the target's answer as is; use `n` "
                           "for several answers")
    chat = {name: data[name] for name in _PASSED if data.get(name) is not None}
    chat["messages"] = [{"role": "user", "content": prompt_of(data.get("prompt"))}]
    chat.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return chat


class CompletionsWire(Wire):
    """text_completion ⇄ chat completion."""

    endpoint = "completions"

    def request(self, data: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        chat = chat_request(data)
        if data.get("echo") is True:
            ctx.extra[_PROMPT] = chat["messages"][0]["content"]
        elif data.get("echo") not in (None, False):
            raise OpenAIError(400, "Invalid value for 'echo': expected true or false.",
                              param="echo", code="invalid_value")
        return chat

    def answer(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        echo = ctx.extra.get(_PROMPT, "")
        choices = [
            {"text": echo + ((c.get("message") or {}).get("content") or ""),
             "index": c.get("index", i), "logprobs": None,
             "finish_reason": c.get("finish_reason")}
            for i, c in enumerate(body.get("choices") or ())]
        return {"id": _completion_id(ctx), "object": "text_completion",
                "created": body.get("created") or int(ctx.started_at),
                "model": body.get("model") or ctx.route, "choices": choices,
                "usage": body.get("usage"),
                **({"system_fingerprint": body["system_fingerprint"]}
                   if body.get("system_fingerprint") else {})}

    async def stream(self, events: Events, ctx: RequestContext) -> AsyncIterator[bytes]:
        echo: str | None = ctx.extra.get(_PROMPT)
        echoed: set[int] = set()  # choices whose text already began with the prompt
        try:
            async for chunk in events:
                if "error" in chunk:
                    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
                    return
                out = self._chunk(chunk, ctx)
                if echo is not None:  # the prompt leads each choice's first text
                    for choice in out["choices"]:
                        if choice["index"] not in echoed:
                            echoed.add(choice["index"])
                            choice["text"] = echo + choice["text"]
                if out["choices"] or "usage" in out:
                    yield b"data: " + orjson.dumps(out) + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    def _chunk(self, chunk: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """A chat chunk as a text_completion chunk (no choices for a role-only chunk)."""
        choices = []
        for c in chunk.get("choices") or ():
            text = (c.get("delta") or {}).get("content") or ""
            if text or c.get("finish_reason"):
                choices.append({"text": text, "index": c.get("index", 0), "logprobs": None,
                                "finish_reason": c.get("finish_reason")})
        out: dict[str, Any] = {"id": _completion_id(ctx), "object": "text_completion",
                               "created": chunk.get("created") or int(ctx.started_at),
                               "model": chunk.get("model") or ctx.route, "choices": choices}
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        return out


def _completion_id(ctx: RequestContext) -> str:
    return "cmpl-" + ctx.request_id.removeprefix("req_")


COMPLETIONS = CompletionsWire()

__all__ = ["COMPLETIONS", "CompletionsWire", "chat_request", "prompt_of"]
