"""Provider adapters: the only place that knows a vendor's wire protocol."""

from __future__ import annotations

from emancipate.config import (
    AnthropicProvider,
    AzureOpenAIProvider,
    BedrockProvider,
    EmbeddedProvider,
    GatewayConfig,
    GeminiProvider,
    OpenAICompatibleProvider,
    VertexProvider,
)
from emancipate.providers.base import ChatChunks, Provider, ProviderError, Unsupported

__all__ = ["ChatChunks", "Provider", "ProviderError", "Unsupported", "build_providers"]


def build_providers(cfg: GatewayConfig) -> dict[str, Provider]:
    """One adapter per configured provider; nothing connects until the first request."""
    out: dict[str, Provider] = {}
    for name, pcfg in cfg.providers.items():
        if isinstance(pcfg, EmbeddedProvider):
            from emancipate.providers.embedded import Embedded  # llama.cpp only when used

            out[name] = Embedded(name, pcfg)
        elif isinstance(pcfg, OpenAICompatibleProvider):
            from emancipate.providers.openai_compatible import OpenAICompatible

            out[name] = OpenAICompatible(name, pcfg, cfg.server.max_upstream_body_bytes)
        elif isinstance(pcfg, AnthropicProvider):
            from emancipate.providers.anthropic import Anthropic

            out[name] = Anthropic(name, pcfg, cfg.server.max_upstream_body_bytes)
        elif isinstance(pcfg, AzureOpenAIProvider):
            from emancipate.providers.azure_openai import AzureOpenAI

            out[name] = AzureOpenAI(name, pcfg, cfg.server.max_upstream_body_bytes)
        elif isinstance(pcfg, GeminiProvider):
            from emancipate.providers.gemini import Gemini

            out[name] = Gemini(name, pcfg, cfg.server.max_upstream_body_bytes)
        elif isinstance(pcfg, BedrockProvider):
            from emancipate.providers.bedrock import Bedrock  # botocore only when used

            out[name] = Bedrock(name, pcfg, cfg.server.max_upstream_body_bytes)
        elif isinstance(pcfg, VertexProvider):
            from emancipate.providers.vertex import Vertex  # google-auth only when used

            out[name] = Vertex(name, pcfg, cfg.server.max_upstream_body_bytes)
    return out
