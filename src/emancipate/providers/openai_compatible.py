"""OpenAI and every endpoint that speaks its protocol (Azure, Mistral, Groq, vLLM, Ollama...)."""

from __future__ import annotations

from typing import Any

import orjson

from emancipate.config import OpenAICompatibleProvider
from emancipate.protocol import ChatCompletionRequest
from emancipate.providers.base import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    check_token_limit,
)
from emancipate.providers.http import DEFAULT_MAX_BODY, HTTPUpstream, read_secret

# Parameters a request may carry that a restricted target must declare in `supports`.
_OPTIONAL_PARAMS = ("tools", "tool_choice", "response_format", "seed", "n", "stop", "logprobs",
                    "functions", "function_call")


class OpenAICompatible(Provider):
    def __init__(self, name: str, cfg: OpenAICompatibleProvider,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.http = HTTPUpstream(name, cfg.timeouts, cfg.max_concurrency, max_body)
        key = read_secret(cfg.api_key_env)
        self.headers = {"Content-Type": "application/json", **cfg.headers}
        if key:
            prefix = f"{cfg.auth_scheme} " if cfg.auth_scheme else ""
            self.headers[cfg.auth_header] = prefix + key

    def url_for(self, endpoint: str, model: str) -> str:
        """Where `chat/completions` or `embeddings` for `model` is posted (Azure names the
        deployment in the path)."""
        return f"{self.cfg.base_url}/{endpoint}"

    async def headers_for(self) -> dict[str, str]:
        """The request headers; an adapter with expiring credentials refreshes them here."""
        return self.headers

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        check_token_limit(request, self.cfg.context_window, f"provider {self.name!r}")
        supported = self.cfg.supports
        if supported is None:
            return
        fields = request.model_fields_set | set(request.model_extra or ())
        for param in _OPTIONAL_PARAMS:
            if param in fields and param not in supported:
                if param == "n" and request.n == 1:
                    continue
                raise Unsupported(param, f"provider {self.name!r} does not support '{param}'")

    def _payload(self, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        payload = dict(body)
        payload["model"] = model
        if stream:
            payload["stream"] = True
            # Usage is always asked for: the ledger needs it even when the client does not.
            options = body.get("stream_options") or {}
            payload["stream_options"] = {**options, "include_usage": True}
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        resp = await self.http.post(self.url_for("chat/completions", model),
                                    self._payload(body, model, False), await self.headers_for(),
                                    self.cfg.query)
        data = await self.http.read_json(resp)
        if not isinstance(data.get("choices"), list):
            raise ProviderError(
                "bad_response", f"provider {self.name!r} answered without `choices`"
            )
        return data

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        resp = await self.http.post(self.url_for("chat/completions", model),
                                    self._payload(body, model, True), await self.headers_for(),
                                    self.cfg.query)
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise ProviderError(
                "bad_response", f"provider {self.name!r} did not answer with an event stream"
            )
        done = False
        events = self.http.sse_events(resp)
        async for _event, data in events:
            if data == b"[DONE]":
                done = True
                await events.aclose()  # now: the connection goes back to the pool sooner
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise ProviderError(
                    "bad_response", f"provider {self.name!r} sent an invalid stream event"
                ) from exc
            if not isinstance(chunk, dict):
                raise ProviderError("bad_response", f"provider {self.name!r} sent a non-object")
            if "error" in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {}
                raise ProviderError(
                    "upstream_5xx",
                    f"provider {self.name!r} reported an error mid-stream: "
                    f"{str(err.get('message', ''))[:300]}",
                )
            yield chunk
        if not done:
            raise ProviderError(
                "stream_cut", f"provider {self.name!r} ended the stream before it was complete"
            )

    def serves_embeddings(self, model: str) -> bool:
        return True

    async def embeddings(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        payload = dict(body)
        payload["model"] = model
        resp = await self.http.post(self.url_for("embeddings", model), payload,
                                    await self.headers_for(), self.cfg.query)
        data = await self.http.read_json(resp)
        if not isinstance(data.get("data"), list):
            raise ProviderError("bad_response", f"provider {self.name!r} answered without `data`")
        return data

    async def aclose(self) -> None:
        await self.http.aclose()
