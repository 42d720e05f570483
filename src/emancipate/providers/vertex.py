"""Gemini on Vertex AI: the `generateContent` wire of `providers/gemini.py` under a project and
a location, authenticated with Google OAuth 2.0 tokens (`providers/google_auth.py`).

`POST {base}/{api_version}/projects/{project}/locations/{location}/publishers/google/models/
{model}:generateContent` (and `:streamGenerateContent?alt=sse`); a target `model` that starts
with `projects/` (a tuned model's endpoint) is used as the whole resource name. The body,
the answers, the stream and the errors are the Gemini API's: the translation is shared.

A 401 from Vertex (a revoked token, a clock that was wrong) drops the cached token, so the
next request fetches a fresh one; the failed one is failed over as any auth failure.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from emancipate.config import VertexProvider
from emancipate.providers.base import ChatChunks, ProviderError
from emancipate.providers.embeddings import (
    EmbeddingBody,
    batches,
    each_of,
    embedding_list,
    texts_of,
    unit,
)
from emancipate.providers.gemini import GenerateContent, GoogleUpstream
from emancipate.providers.gemini_translate import predict_request, predictions_from
from emancipate.providers.google_auth import GoogleTokens
from emancipate.providers.http import DEFAULT_MAX_BODY

# Vertex caps a `:predict` call at 250 texts and 20,000 tokens; a text counts up to 2,048
# tokens (longer ones are truncated), so 8 texts always fit. `gemini-embedding-*` models
# take one text a call.
VERTEX_EMBED_BATCH = 8


def host_for(cfg: VertexProvider) -> str:
    if cfg.base_url:
        return cfg.base_url
    if cfg.location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{cfg.location}-aiplatform.googleapis.com"


class Vertex(GenerateContent):
    def __init__(self, name: str, cfg: VertexProvider, max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.context_window = cfg.context_window
        self.http = GoogleUpstream(name, cfg.timeouts, cfg.max_concurrency, max_body)
        self.tokens = GoogleTokens(name, cfg)
        self.root = f"{host_for(cfg)}/{cfg.api_version}"
        self.headers = {"Content-Type": "application/json", **cfg.headers}

    def url_for(self, model: str, method: str) -> str:
        if model.startswith("projects/"):
            name = model
        else:
            name = (f"projects/{self.cfg.project}/locations/{self.cfg.location}"
                    f"/publishers/google/models/{model}")
        return f"{self.root}/{quote(name, safe='/')}:{method}"

    async def headers_for(self) -> dict[str, str]:
        return {**self.headers, "Authorization": "Bearer " + await self.tokens.bearer()}

    def _forget_refused_token(self, err: ProviderError) -> None:
        if err.kind == "upstream_auth" and err.status == 401:
            self.tokens.invalidate()

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        try:
            return await super().chat(body, model)
        except ProviderError as err:
            self._forget_refused_token(err)
            raise

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        stream = super().chat_stream(body, model)
        try:
            async for chunk in stream:
                yield chunk
        except ProviderError as err:
            self._forget_refused_token(err)
            raise
        finally:
            await stream.aclose()

    async def embeddings(self, body: EmbeddingBody, model: str) -> EmbeddingBody:
        """`:predict` on a text-embedding model; `usage` is the sum of the token counts of
        each prediction's `statistics`."""
        who = f"provider {self.name!r}"
        texts = texts_of(body, who)
        dimensions = body.get("dimensions")
        size = 1 if "gemini-embedding" in model else VERTEX_EMBED_BATCH

        async def batch(part: list[str]) -> tuple[list[list[float]], int]:
            resp = await self.http.post(self.url_for(model, "predict"),
                                        predict_request(part, dimensions),
                                        await self.headers_for())
            return predictions_from(await self.http.read_json(resp), len(part), who)

        try:
            parts = await each_of(batches(texts, size), batch)
        except ProviderError as err:
            self._forget_refused_token(err)
            raise
        vectors = [unit(v) if dimensions else v for part, _ in parts for v in part]
        return embedding_list(vectors, model, sum(tokens for _, tokens in parts),
                              body.get("encoding_format"))

    def stats(self) -> dict[str, float]:
        return {"google_token_fetches": float(self.tokens.fetches)}
