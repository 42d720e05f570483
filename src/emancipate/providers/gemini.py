"""Google's `generateContent` wire: the Gemini API (API key) and, sharing it, Vertex AI.

Transport only: translation is `providers/gemini_translate.py`. Non-streamed answers come from
`models/{model}:generateContent`, streamed ones from `:streamGenerateContent?alt=sse` (one
`GenerateContentResponse` per event, no terminator: the answer is complete once each candidate
has its `finishReason`, and a stream that ends before is `stream_cut`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from emancipate.config import GeminiProvider
from emancipate.protocol import ChatCompletionRequest
from emancipate.providers.base import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    check_legacy,
    check_parts,
    check_token_limit,
    retry_after_seconds,
)
from emancipate.providers.embeddings import (
    EmbeddingBody,
    batches,
    each_of,
    embedding_list,
    estimated_tokens,
    texts_of,
    unit,
)
from emancipate.providers.gemini_translate import (
    GEMINI_PARTS,
    GeminiStream,
    completion_from,
    embed_request,
    error_for,
    file_refusal,
    generate_request,
    vectors_from,
)
from emancipate.providers.http import DEFAULT_MAX_BODY, HTTPUpstream, read_secret

# `batchEmbedContents` takes at most 100 requests; a longer input goes in several calls.
GEMINI_EMBED_BATCH = 100


class GoogleUpstream(HTTPUpstream):
    """HTTPUpstream whose errors are read as Google API errors (`RetryInfo`, `ErrorInfo`)."""

    async def error_from(self, resp: aiohttp.ClientResponse) -> ProviderError:
        raw = await self.read_error_body(resp)
        return error_for(resp.status, raw, retry_after_seconds(resp.headers.get("retry-after")),
                         f"provider {self.provider!r}")


class GenerateContent(Provider):
    """What the Gemini API and Vertex AI share: the body, the answers, the stream."""

    http: GoogleUpstream
    context_window: int | None = None

    @abstractmethod
    def url_for(self, model: str, method: str) -> str:
        """The URL of `generateContent` or `streamGenerateContent` for `model`."""

    @abstractmethod
    async def headers_for(self) -> dict[str, str]:
        """The request headers, credentials included."""

    def check(self, request: ChatCompletionRequest, model: str) -> None:
        check_token_limit(request, self.context_window, f"provider {self.name!r}")
        if (request.model_extra or {}).get("logprobs"):
            raise Unsupported("logprobs", f"provider {self.name!r} (Gemini) returns no logprobs")
        check_legacy(request, f"provider {self.name!r} (Gemini)")
        check_parts(request, f"provider {self.name!r} (Gemini)", GEMINI_PARTS, file_refusal)

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        resp = await self.http.post(self.url_for(model, "generateContent"),
                                    generate_request(body), await self.headers_for())
        data = await self.http.read_json(resp)
        return completion_from(data, model, f"provider {self.name!r}")

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        resp = await self.http.post(self.url_for(model, "streamGenerateContent"),
                                    generate_request(body), await self.headers_for(),
                                    {"alt": "sse"})
        if "text/event-stream" not in resp.headers.get("content-type", ""):
            resp.release()
            raise ProviderError(
                "bad_response", f"provider {self.name!r} did not answer with an event stream")
        state = GeminiStream(model, f"provider {self.name!r}")
        events = self.http.sse_events(resp)
        try:
            async for _event, data in events:
                for chunk in state.chunks(self._event(data)):
                    yield chunk
        finally:
            await events.aclose()
        if not state.complete:
            raise ProviderError(
                "stream_cut", f"provider {self.name!r} ended the stream before it was complete")
        yield state.final()

    def serves_embeddings(self, model: str) -> bool:
        """Google's embedding models say so in their name (`gemini-embedding-001`,
        `text-embedding-005`, `text-multilingual-embedding-002`)."""
        return "embedding" in model.rsplit("/", 1)[-1]

    def _event(self, data: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                "bad_response", f"provider {self.name!r} sent an invalid stream event") from exc
        if not isinstance(event, dict):
            raise ProviderError("bad_response", f"provider {self.name!r} sent a non-object")
        if "error" in event:  # an error after the 200: classified by its own code
            err = event["error"] if isinstance(event["error"], dict) else {}
            code = err.get("code")
            status = code if isinstance(code, int) else 500
            raise error_for(status, data, None, f"provider {self.name!r} (mid-stream)")
        return event

    async def aclose(self) -> None:
        await self.http.aclose()


class Gemini(GenerateContent):
    """generativelanguage.googleapis.com with an API key in `x-goog-api-key`."""

    def __init__(self, name: str, cfg: GeminiProvider, max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.context_window = cfg.context_window
        self.http = GoogleUpstream(name, cfg.timeouts, cfg.max_concurrency, max_body)
        self.headers = {"Content-Type": "application/json", **cfg.headers}
        key = read_secret(cfg.api_key_env)
        if key:
            self.headers["x-goog-api-key"] = key

    def model_name(self, model: str) -> str:
        return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"

    def url_for(self, model: str, method: str) -> str:
        name = quote(self.model_name(model), safe="/")
        return f"{self.cfg.base_url}/{self.cfg.api_version}/{name}:{method}"

    async def headers_for(self) -> dict[str, str]:
        return self.headers

    async def embeddings(self, body: EmbeddingBody, model: str) -> EmbeddingBody:
        """`batchEmbedContents`, whose answer counts no tokens: `usage` is estimated."""
        who = f"provider {self.name!r}"
        texts = texts_of(body, who)
        dimensions = body.get("dimensions")
        url, name = self.url_for(model, "batchEmbedContents"), self.model_name(model)

        async def batch(part: list[str]) -> list[list[float]]:
            resp = await self.http.post(url, embed_request(part, name, dimensions),
                                        await self.headers_for())
            return vectors_from(await self.http.read_json(resp), len(part), who)

        parts = await each_of(batches(texts, GEMINI_EMBED_BATCH), batch)
        vectors = [unit(v) if dimensions else v for part in parts for v in part]
        return embedding_list(vectors, model, estimated_tokens(texts),
                              body.get("encoding_format"))
