"""The legacy completions API, `POST /v1/completions`, on the one chat pipeline.

The prompt becomes one user message, the chat answer's text the completion's `text`; the
stream's chat chunks become `text_completion` chunks ending with `data: [DONE]`. The mapping
table, what is refused and why: docs/api-completions.md.

Decisions (the docs page says why):
- A list of prompts is answered by one pipeline call per prompt (at most `MAX_PROMPTS`,
  `PROMPTS_AT_ONCE` at a time), each with its own request id, admission, guard, routing,
  failover and ledger record; the first prompt's is the request's own. Choices are numbered
  as on OpenAI (prompt k's i-th choice is `k * n + i`) and usage is summed. Streamed, a
  list of several prompts is refused: interleaving several streams is not worth its cost.
- `max_tokens` defaults to 16, as on OpenAI's and vLLM's completions endpoints.
- `echo` prepends the prompt to the text (first in a stream); `suffix`, `logprobs`,
  `best_of` > 1 and token-id prompts are refused: no chat target can honour them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.routing import BaseRoute, Route

from emancipate.api.wire import Events, Wire
from emancipate.context import RequestContext
from emancipate.gateway import Answer, Gateway, StreamAnswer
from emancipate.protocol import OpenAIError

ChatBody = dict[str, Any]

DEFAULT_MAX_TOKENS = 16  # OpenAI's (and vLLM's) default on this endpoint
MAX_PROMPTS = 64  # prompts in one request (frameworks batch 20)
PROMPTS_AT_ONCE = 8  # pipeline calls of one request in flight together
_PROMPTS = "completions_prompts"  # ctx.extra: the prompts
_ECHO = "completions_echo"  # ctx.extra: True when `echo` asks for the prompt first

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


def prompts_of(value: Any) -> list[str]:
    """The prompts of a request, one or more (raises `OpenAIError` for anything else)."""
    if isinstance(value, str):
        return [value]
    if value is None:
        raise OpenAIError(400, "Missing required parameter: 'prompt'.", param="prompt",
                          code="missing_required_parameter")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(value) > MAX_PROMPTS:
            raise OpenAIError(400, f"Invalid value for 'prompt': at most {MAX_PROMPTS} "
                              f"prompts per request (got {len(value)}); split the list.",
                              param="prompt", code="invalid_value")
        return list(value)
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
    prompts = prompts_of(data.get("prompt"))
    if len(prompts) > 1 and data.get("stream"):
        raise _unsupported("prompt", f"a list of {len(prompts)} prompts with `stream`; stream "
                           "one prompt per request, or send the list without `stream`")
    chat = {name: data[name] for name in _PASSED if data.get(name) is not None}
    chat["messages"] = [{"role": "user", "content": prompts[0]}]
    chat.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return chat


class CompletionsWire(Wire):
    """text_completion ⇄ chat completion."""

    endpoint = "completions"

    def request(self, data: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        chat = chat_request(data)
        ctx.extra[_PROMPTS] = prompts_of(data["prompt"])
        if data.get("echo") not in (None, False, True):
            raise OpenAIError(400, "Invalid value for 'echo': expected true or false.",
                              param="echo", code="invalid_value")
        ctx.extra[_ECHO] = data.get("echo") is True
        return chat

    def answer(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        prompts: list[str] = ctx.extra.get(_PROMPTS) or [""]
        n = max(1, len(body.get("choices") or ()) // len(prompts))
        echo = bool(ctx.extra.get(_ECHO))
        choices = []
        for i, c in enumerate(body.get("choices") or ()):
            index = c.get("index", i)
            head = prompts[min(index // n, len(prompts) - 1)] if echo else ""
            choices.append({"text": head + ((c.get("message") or {}).get("content") or ""),
                            "index": index, "logprobs": None,
                            "finish_reason": c.get("finish_reason")})
        return {"id": _completion_id(ctx), "object": "text_completion",
                "created": body.get("created") or int(ctx.started_at),
                "model": body.get("model") or ctx.route, "choices": choices,
                "usage": body.get("usage"),
                **({"system_fingerprint": body["system_fingerprint"]}
                   if body.get("system_fingerprint") else {})}

    async def stream(self, events: Events, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        echo: str | None = ctx.extra[_PROMPTS][0] if ctx.extra.get(_ECHO) else None
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
            await events.aclose()

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


class Completions:
    """The pipeline handler of `POST /v1/completions`: one call per prompt."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def create(self, ctx: RequestContext, data: dict[str, Any]) -> Answer | StreamAnswer:
        prompts: list[str] = ctx.extra[_PROMPTS]
        if len(prompts) == 1:
            return await self.gateway.chat(ctx, data)
        gate = asyncio.Semaphore(PROMPTS_AT_ONCE)

        async def one(k: int) -> Answer | StreamAnswer:
            async with gate:
                if k == 0:  # the first prompt is the request's own record
                    return await self.gateway.chat(ctx, data)
                body = {**data, "messages": [{"role": "user", "content": prompts[k]}]}
                return await self._call(ctx, body)

        try:
            async with asyncio.TaskGroup() as group:  # one failure cancels the rest
                tasks = [group.create_task(one(k)) for k in range(len(prompts))]
        except BaseExceptionGroup as failed:  # the client sees the first prompt's error
            first: BaseException = next(
                (e for e in failed.exceptions if isinstance(e, OpenAIError)),
                failed.exceptions[0])
            raise first from None
        answers = [task.result() for task in tasks]
        return Answer(_merged([a.body for a in answers if isinstance(a, Answer)]),
                      answers[0].headers)

    async def _call(self, parent: RequestContext, body: dict[str, Any]) -> Answer | StreamAnswer:
        """One more prompt: a request of its own (id, admission, ledger record)."""
        from emancipate.api.app import new_request_id  # app imports this module

        ctx = RequestContext(request_id=new_request_id(), endpoint=parent.endpoint,
                             principal=parent.principal)
        try:
            answer = await self.gateway.chat(ctx, body)
            self.gateway.answered(ctx)
            return answer
        except OpenAIError as err:
            ctx.status, ctx.error_code = err.status, err.code
            self.gateway.answered(ctx)
            raise
        except asyncio.CancelledError:  # the client left, or another prompt failed
            ctx.status, ctx.error_code = 499, "client_closed_request"
            raise
        finally:
            self.gateway.finish(ctx)


def _merged(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """One chat completion of several: choices renumbered in prompt order, usage summed."""
    choices: list[dict[str, Any]] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for body in bodies:
        for choice in body.get("choices") or ():
            choices.append({**choice, "index": len(choices)})
        for name in usage:
            usage[name] += int((body.get("usage") or {}).get(name) or 0)
    return {**bodies[0], "choices": choices, "usage": usage}


def _completion_id(ctx: RequestContext) -> str:
    return "cmpl-" + ctx.request_id.removeprefix("req_")


COMPLETIONS = CompletionsWire()


def routes(gateway: Gateway) -> list[BaseRoute]:
    """`POST /v1/completions` through the pipeline, one call per prompt."""
    from emancipate.api.app import Endpoint  # app imports this module

    return [Route("/v1/completions", Endpoint(gateway, Completions(gateway).create, COMPLETIONS),
                  methods=["POST"])]

__all__ = ["COMPLETIONS", "Completions", "CompletionsWire", "chat_request", "prompts_of",
           "routes"]
