"""Azure OpenAI: OpenAI's wire on a resource's deployments, with an `api-key` or Entra ID.

The body and the answers are OpenAI's own, so the `openai-compatible` adapter does the work;
this one only says where a deployment lives
(`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`, the
deployment being the target's `model`) and how to authenticate: the `api-key` header, or
`Authorization: Bearer` with a token from Microsoft Entra ID (`providers/entra.py`): a
service principal's, or the host's managed identity's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from emancipate.config import AzureOpenAIProvider, OpenAICompatibleProvider
from emancipate.providers.base import ChatChunks, ProviderError
from emancipate.providers.entra import (
    ENTRA_REFUSED,
    BearerTokens,
    EntraTokens,
    ManagedIdentityTokens,
)
from emancipate.providers.http import DEFAULT_MAX_BODY
from emancipate.providers.openai_compatible import OpenAICompatible

# Keys the two configs share: the rest of an `azure-openai` entry is said differently.
_SHARED = ("ownership", "vendor", "price", "prices", "timeouts", "retries", "breaker",
           "max_concurrency", "context_window", "headers", "supports", "api_key_env")


def compatible_config(cfg: AzureOpenAIProvider) -> OpenAICompatibleProvider:
    """The `openai-compatible` form of an Azure entry: `api-key` header, `api-version` query."""
    shared = {key: getattr(cfg, key) for key in _SHARED}
    return OpenAICompatibleProvider(
        kind="openai-compatible", base_url=f"{cfg.endpoint}/openai", auth_header="api-key",
        auth_scheme="", query={"api-version": cfg.api_version}, **shared)


class AzureOpenAI(OpenAICompatible):
    def __init__(self, name: str, cfg: AzureOpenAIProvider,
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(name, compatible_config(cfg), max_body)
        self.azure = cfg
        self.tokens: BearerTokens | None = None
        if cfg.entra:
            self.tokens = EntraTokens(name, cfg.entra, self.http)
        elif cfg.managed_identity:
            self.tokens = ManagedIdentityTokens(name, cfg.managed_identity, self.http)

    def url_for(self, endpoint: str, model: str) -> str:
        return f"{self.cfg.base_url}/deployments/{quote(model, safe='')}/{endpoint}"

    async def headers_for(self) -> dict[str, str]:
        if self.tokens is None:
            return self.headers
        return {**self.headers, "Authorization": "Bearer " + await self.tokens.bearer()}

    def _stale(self, err: ProviderError) -> bool:
        """Azure refused our bearer token (revoked, or expired early: clock skew): drop it.
        True when a fresh token is worth one more try (the token endpoint's own refusals,
        which carry no fresh token, are not)."""
        if self.tokens is None or err.kind != "upstream_auth" or err.status != 401:
            return False
        if err.code == ENTRA_REFUSED:
            return False
        self.tokens.invalidate()
        return True

    async def chat(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        try:
            return await super().chat(body, model)
        except ProviderError as err:
            if not self._stale(err):
                raise
        return await super().chat(body, model)

    async def chat_stream(self, body: dict[str, Any], model: str) -> ChatChunks:
        for last_try in (False, True):
            stream = super().chat_stream(body, model)
            try:
                async for chunk in stream:
                    yield chunk
                return
            except ProviderError as err:
                # A refused token fails at the POST, before any chunk: safe to try again.
                if last_try or not self._stale(err):
                    raise
            finally:
                await stream.aclose()

    async def embeddings(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        try:
            return await super().embeddings(body, model)
        except ProviderError as err:
            if not self._stale(err):
                raise
        return await super().embeddings(body, model)

    def stats(self) -> dict[str, float]:
        return {"entra_token_fetches": float(self.tokens.fetches)} if self.tokens else {}
