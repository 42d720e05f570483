"""OpenTelemetry traces: one span per request, a child per stage, exported over OTLP.

    POST /v1/chat/completions ─ chat <route>                (SERVER, api/app.py Endpoint)
                                ├─ emancipate.auth          (Gateway.authenticate)
                                ├─ emancipate.guard         (Pipeline.prepare)
                                ├─ emancipate.policy        (Pipeline.prepare)
                                ├─ emancipate.routing       (Pipeline.prepare)
                                ├─ chat <upstream model>    (CLIENT, one per attempt: Executor.call)
                                └─ emancipate.ledger        (Gateway.answered / finish)

Off (the default), `Gateway.tracer` is a `Tracer`: every method returns at once, the stage
context manager is one shared do-nothing object, and OpenTelemetry is never imported. On,
it is an `OTelTracer`: the SDK with a batch processor, whose exporter (OTLP/HTTP or gRPC)
runs in the SDK's own thread, never on the event loop. What it costs per request:
`bench/tracing_bench.py`, docs/benchmarks.md "Tracing".

Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`) plus
emancipate's own (`emancipate.*`). What no span holds, by construction: prompt or answer
text (unless `tracing.capture_content`, and then masked as the ledger masks it), a value
the guard detected (findings are counted by class), an error message from an upstream (it
may quote the prompt: only the error kind and the HTTP status), a model name the client
made up (only configured routes are named).

W3C trace context (`traceparent`, `tracestate`) from the client is the request span's
parent; each upstream attempt sends its own (`UPSTREAM_TRACE`, added to the request by
`providers/http.py`), to the upstreams `tracing.propagate` allows. Baggage is neither read
nor sent: it would carry the client's data to vendors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from random import getrandbits
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from emancipate.config import ConfigError, GatewayConfig, TracingConfig
from emancipate.context import RequestContext, Target

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Span, SpanContext, SpanKind

Stage = Literal["auth", "guard", "policy", "routing", "ledger"]

# The trace context headers of the upstream attempt running in this task (set by
# `OTelTracer.attempt`, read by `HTTPUpstream.post`); None when tracing is off.
UPSTREAM_TRACE: ContextVar[dict[str, str] | None] = ContextVar("upstream_trace", default=None)

_SPAN = "trace_span"  # in ctx.extra: the request span
_PARENT = "trace_context"  # in ctx.extra: the request span as a parent context, if sampled
_UNSAMPLED = "trace_unsampled"  # in ctx.extra: the trace context headers of a sampled-out one
_CONTENT = "trace_content"  # in ctx.extra: the masked exchange, under capture_content

# gen_ai.operation.name per API (`Wire.endpoint`): every chat-like API is one chat call.
_OPERATIONS = {"embeddings": "embeddings", "completions": "text_completion"}
# gen_ai.provider.name of each provider kind the conventions name; others: the vendor.
_PROVIDER_NAMES = {"anthropic": "anthropic", "azure-openai": "azure.ai.openai",
                   "bedrock": "aws.bedrock", "gemini": "gcp.gemini", "vertex": "gcp.vertex_ai"}
# Request parameters copied to gen_ai.request.* (numbers only: no client text).
_PARAMETERS = (("max_completion_tokens", "gen_ai.request.max_tokens"),
               ("max_tokens", "gen_ai.request.max_tokens"),
               ("temperature", "gen_ai.request.temperature"),
               ("top_p", "gen_ai.request.top_p"),
               ("frequency_penalty", "gen_ai.request.frequency_penalty"),
               ("presence_penalty", "gen_ai.request.presence_penalty"),
               ("seed", "gen_ai.request.seed"),
               ("n", "gen_ai.request.choice.count"),
               ("dimensions", "gen_ai.embeddings.dimension.count"))
# The strongest policy action of a request names it (`emancipate.policy.action`).
_ACTION_RANK = {"allow": 0, "redact": 1, "in-house-only": 2, "block": 3}


@dataclass(frozen=True, slots=True)
class TraceSettings:
    """`tracing` with every unset key resolved from the environment."""

    on: bool
    protocol: Literal["http", "grpc"] = "http"
    endpoint: str | None = None  # None: the exporter reads OTEL_EXPORTER_OTLP_*ENDPOINT
    headers: dict[str, str] | None = None  # None: the exporter reads OTEL_EXPORTER_OTLP_HEADERS
    sample_ratio: float | None = None  # None: the SDK reads OTEL_TRACES_SAMPLER
    service_name: str = "emancipate"
    capture_content: bool = False
    propagate: Literal["all", "in-house", "none"] = "all"

    @classmethod
    def resolve(cls, cfg: TracingConfig, env: Mapping[str, str]) -> TraceSettings:
        """The settings `serve` will use; `ConfigError` naming the key or the variable."""
        if not _enabled(cfg, env):
            return cls(on=False)
        headers = dict(cfg.headers)
        for name, var in cfg.headers_env.items():
            value = env.get(var)
            if not value:
                raise ConfigError("<config>", f"tracing.headers_env.{name}",
                                  f"the environment variable {var} is not set")
            headers[name] = value
        return cls(
            on=True, protocol=cfg.protocol or _protocol_from(env),
            endpoint=cfg.endpoint, headers=headers or None, sample_ratio=cfg.sample_ratio,
            service_name=cfg.service_name or env.get("OTEL_SERVICE_NAME") or "emancipate",
            capture_content=cfg.capture_content, propagate=cfg.propagate)


def _enabled(cfg: TracingConfig, env: Mapping[str, str]) -> bool:
    if cfg.enabled is not None:
        return cfg.enabled
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _protocol_from(env: Mapping[str, str]) -> Literal["http", "grpc"]:
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = env.get(var, "").strip()
        if not value:
            continue
        if value == "grpc":
            return "grpc"
        if value == "http/protobuf":
            return "http"
        raise ConfigError("<config>", "tracing.protocol", f"the environment variable {var} "
                          f"is {value[:40]!r}; the gateway exports http/protobuf or grpc "
                          "(set tracing.protocol, or the variable to one of them)")
    return "http"


class _Noop:
    """The stage span when tracing is off, or outside a traced request."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NOOP = _Noop()


class Tracer:
    """Tracing off: every call returns at once (the pipeline's hooks cost a method call)."""

    on = False
    capture_content = False

    @staticmethod
    def from_config(cfg: GatewayConfig) -> Tracer:
        """`OTelTracer` when `tracing` (or the environment) turns tracing on, else `OFF`."""
        settings = TraceSettings.resolve(cfg.tracing, os.environ)
        if not settings.on:
            return OFF
        return OTelTracer(settings, {name: _PROVIDER_NAMES.get(p.kind, p.vendor)
                                     for name, p in cfg.providers.items()},
                          set(cfg.routes))

    def begin(self, ctx: RequestContext, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Open the request span of `ctx`, child of the client's `traceparent` if any."""

    def read(self, ctx: RequestContext, data: dict[str, Any]) -> None:
        """Note the request's model and sampling parameters (the internal chat body)."""

    def span(self, ctx: RequestContext, stage: Stage) -> _Noop | _StageSpan:
        """A context manager timing `stage` of the request as a child span."""
        return _NOOP

    def attempt(self, ctx: RequestContext, target: Target) -> _Noop | _AttemptSpan | _Forward:
        """A context manager timing one upstream attempt; its trace context goes upstream."""
        return _NOOP

    def content(self, ctx: RequestContext, row: dict[str, Any]) -> None:
        """Keep the masked exchange (`ledger.content.content_row`) for the request span."""

    def end(self, ctx: RequestContext) -> None:
        """Close the request span with what the request became."""

    def shutdown(self) -> None:
        """Export what is pending (blocking: call it off the event loop)."""


OFF = Tracer()


class OTelTracer(Tracer):
    """Tracing on: the OpenTelemetry SDK, this gateway's own provider (not the global one)."""

    on = True

    def __init__(self, settings: TraceSettings, provider_names: dict[str, str],
                 routes: set[str]) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from emancipate import __version__

        self.settings = settings
        self.capture_content = settings.capture_content
        self.provider, self.processor = _provider(settings)
        self.tracer = self.provider.get_tracer("emancipate", __version__)
        self.scope = InstrumentationScope("emancipate", __version__)
        self.propagator = TraceContextTextMapPropagator()
        self.in_context = trace.set_span_in_context
        self.kinds = trace.SpanKind
        self.readable = ReadableSpan
        self.span_context = SpanContext
        self.ok = Status(StatusCode.UNSET)
        self.status, self.error_code = Status, StatusCode.ERROR
        self.provider_names = provider_names
        self.routes = routes

    def begin(self, ctx: RequestContext, headers: Iterable[tuple[bytes, bytes]]) -> None:
        carrier = {}
        for name, value in headers:
            if name == b"traceparent" or name == b"tracestate":
                carrier[name.decode()] = value.decode("latin-1")
        parent = self.propagator.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            ctx.endpoint, context=parent, kind=self.kinds.SERVER,
            attributes={"emancipate.api": ctx.endpoint, "emancipate.request_id": ctx.request_id,
                        "gen_ai.operation.name": _operation(ctx)})
        ctx.extra[_SPAN] = span
        if span.is_recording():
            ctx.extra[_PARENT] = span.get_span_context()
        else:  # sampled out: no child spans, only its context (sampled=0) goes upstream
            headers_out: dict[str, str] = {}
            self.propagator.inject(headers_out, context=self.in_context(span))
            ctx.extra[_UNSAMPLED] = headers_out

    def read(self, ctx: RequestContext, data: dict[str, Any]) -> None:
        span: Span | None = ctx.extra.get(_SPAN)
        if span is None:
            return
        attrs: dict[str, Any] = {}
        model = data.get("model")
        if isinstance(model, str):  # a name the client made up is not repeated
            attrs["gen_ai.request.model"] = model if model in self.routes else "other"
        for key, attribute in _PARAMETERS:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[attribute] = value
        if data.get("stream") is True:
            attrs["emancipate.stream"] = True
        span.set_attributes(attrs)  # one lock and one check, not one per attribute

    def span(self, ctx: RequestContext, stage: Stage) -> _Noop | _StageSpan:
        parent = ctx.extra.get(_PARENT)
        return _NOOP if parent is None else _StageSpan(self, ctx, stage, parent)

    def attempt(self, ctx: RequestContext, target: Target) -> _Noop | _AttemptSpan | _Forward:
        parent = ctx.extra.get(_PARENT)
        if parent is not None:
            return _AttemptSpan(self, ctx, target, parent)
        unsampled = ctx.extra.get(_UNSAMPLED)
        if unsampled is not None and self.propagates_to(target):
            return _Forward(unsampled)
        return _NOOP

    def propagates_to(self, target: Target) -> bool:
        """Whether `tracing.propagate` lets `target` receive the trace context."""
        propagate = self.settings.propagate
        return propagate == "all" or (propagate == "in-house" and target.ownership == "in-house")

    def content(self, ctx: RequestContext, row: dict[str, Any]) -> None:
        if self.capture_content:
            ctx.extra[_CONTENT] = row

    def end(self, ctx: RequestContext) -> None:
        span: Span | None = ctx.extra.pop(_SPAN, None)
        if span is None:
            return
        ctx.extra.pop(_UNSAMPLED, None)
        if ctx.extra.pop(_PARENT, None) is None:  # sampled out: nothing to record
            span.end()
            return
        operation = _operation(ctx)
        route = ctx.route if ctx.route in self.routes else None
        span.update_name(f"{operation} {route}" if route else operation)
        span.set_attributes(self._outcome(ctx))
        content = ctx.extra.pop(_CONTENT, None)
        if content is not None:
            span.set_attribute("gen_ai.input.messages", content["messages"])
            if content.get("answer") is not None:
                span.set_attribute("gen_ai.output.messages", _output_messages(content["answer"]))
        if ctx.status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, ctx.error_code or str(ctx.status)))
        span.end()

    def _outcome(self, ctx: RequestContext) -> dict[str, Any]:
        """The request span's closing attributes: numbers, configured names, closed sets."""
        attrs: dict[str, Any] = {
            "http.response.status_code": ctx.status, "emancipate.attempts": len(ctx.attempts),
            "emancipate.key_id": ctx.principal.key_id}
        if ctx.principal.team:
            attrs["emancipate.team"] = ctx.principal.team
        if ctx.error_code:
            attrs["error.type"] = ctx.error_code
        served = ctx.served_by
        if served is not None:
            attrs.update({
                "gen_ai.response.model": served.model,
                "gen_ai.provider.name": self.provider_names.get(served.provider, served.vendor),
                "gen_ai.system": self.provider_names.get(served.provider, served.vendor),
                "emancipate.target": served.id, "emancipate.vendor": served.vendor,
                "emancipate.ownership": served.ownership,
                "gen_ai.usage.input_tokens": ctx.prompt_tokens,
                "gen_ai.usage.output_tokens": ctx.completion_tokens,
                "emancipate.cost": ctx.cost})
        if ctx.attempts:
            attrs["emancipate.attempt.outcome"] = ctx.attempts[-1].outcome
        if ctx.extra.get("usage_estimated"):
            attrs["emancipate.usage_estimated"] = True
        cache = ctx.extra.get("cache")
        if isinstance(cache, str):
            attrs["emancipate.cache"] = cache
        attrs.update(_policy(ctx))
        attrs.update(_findings(ctx))
        return attrs

    def shutdown(self) -> None:
        self.provider.shutdown()


class _Child:
    """A span under the request span, built as a finished `ReadableSpan` when it ends and
    handed to the batch processor, instead of the SDK's `Span` (sampler, lock, attribute
    checks, context objects): a failover request's hooks went from 723 to 381 µs of CPU,
    export included (`bench/tracing_bench.py --hooks`, docs/benchmarks.md "Tracing"). Safe
    because the request span was sampled (children follow it) and every attribute is a
    number or a name set by this module."""

    __slots__ = ("tracer", "ctx", "parent", "span_id", "start")

    def __init__(self, tracer: OTelTracer, ctx: RequestContext, parent: SpanContext) -> None:
        self.tracer, self.ctx, self.parent = tracer, ctx, parent
        self.span_id = _span_id()
        self.start = 0

    def emit(self, name: str, kind: SpanKind, attributes: dict[str, Any],
             error: str | None) -> None:
        tracer, parent = self.tracer, self.parent
        tracer.processor.on_end(tracer.readable(
            name, context=tracer.span_context(parent.trace_id, self.span_id, False,
                                              parent.trace_flags, parent.trace_state),
            parent=parent, resource=tracer.provider.resource, attributes=attributes,
            kind=kind, instrumentation_scope=tracer.scope,
            status=tracer.ok if error is None else tracer.status(tracer.error_code, error),
            start_time=self.start, end_time=time_ns()))


class _StageSpan(_Child):
    """One stage of a traced request; its attributes are read from `ctx` when it ends."""

    __slots__ = ("stage",)

    def __init__(self, tracer: OTelTracer, ctx: RequestContext, stage: Stage,
                 parent: SpanContext) -> None:
        super().__init__(tracer, ctx, parent)
        self.stage = stage

    def __enter__(self) -> None:
        self.start = time_ns()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ctx = self.ctx
        attrs: dict[str, Any] = {}
        if self.stage == "guard":
            attrs = _findings(ctx)
        elif self.stage == "policy":
            attrs = _policy(ctx)
        elif self.stage == "routing" and ctx.router_score is not None:
            attrs = {"emancipate.routing.score": ctx.router_score}
        error = None if exc is None else _error_of(exc)
        if error is not None:
            attrs["error.type"] = error
        self.emit(f"emancipate.{self.stage}", self.tracer.kinds.INTERNAL, attrs, error)


class _AttemptSpan(_Child):
    """One upstream attempt (a GenAI client span); its trace context goes to the upstream
    while it runs, when `tracing.propagate` allows this target."""

    __slots__ = ("target", "token", "before")

    def __init__(self, tracer: OTelTracer, ctx: RequestContext, target: Target,
                 parent: SpanContext) -> None:
        super().__init__(tracer, ctx, parent)
        self.target = target
        self.token: Token[dict[str, str] | None] | None = None

    def __enter__(self) -> None:
        self.before = len(self.ctx.attempts)
        parent = self.parent
        if self.tracer.propagates_to(self.target):
            headers = {"traceparent": f"00-{parent.trace_id:032x}-{self.span_id:016x}-"
                                      f"{parent.trace_flags:02x}"}
            if parent.trace_state:
                headers["tracestate"] = parent.trace_state.to_header()
            self.token = UPSTREAM_TRACE.set(headers)
        self.start = time_ns()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.token is not None:
            UPSTREAM_TRACE.reset(self.token)
        tracer, target, attempts = self.tracer, self.target, self.ctx.attempts
        operation = "embeddings" if self.ctx.endpoint == "embeddings" else "chat"
        provider = tracer.provider_names.get(target.provider, target.vendor)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.request.model": target.model,
            "gen_ai.provider.name": provider, "gen_ai.system": provider,
            "emancipate.target": target.id, "emancipate.vendor": target.vendor,
            "emancipate.ownership": target.ownership, "emancipate.attempt": self.before + 1}
        error = None
        if len(attempts) > self.before:  # the executor recorded how it ended
            attempt = attempts[-1]
            attrs["emancipate.attempt.outcome"] = attempt.outcome
            if attempt.status is not None:
                attrs["http.response.status_code"] = attempt.status
            if attempt.outcome != "ok":
                error = attempt.outcome
        elif exc is not None:
            error = _error_of(exc)
        if error is not None:
            attrs["error.type"] = error
        self.emit(f"{operation} {target.model}", tracer.kinds.CLIENT, attrs, error)


class _Forward:
    """The attempt of a sampled-out request: no span, its trace context still goes upstream
    (with the sampled flag off, so the upstream does not record it either)."""

    __slots__ = ("headers", "token")

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def __enter__(self) -> None:
        self.token = UPSTREAM_TRACE.set(self.headers)

    def __exit__(self, *exc: object) -> None:
        UPSTREAM_TRACE.reset(self.token)


def _error_of(exc: BaseException) -> str:
    """What failed, by the exception's code or class, never its message (an upstream's
    message may quote the prompt)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else type(exc).__name__


def _span_id() -> int:
    """A random non-zero span id, as the SDK's `RandomIdGenerator` makes them."""
    while True:
        span_id = getrandbits(64)
        if span_id:
            return span_id


def _operation(ctx: RequestContext) -> str:
    return _OPERATIONS.get(ctx.endpoint, "chat")


def _findings(ctx: RequestContext) -> dict[str, int]:
    """Guard findings counted by class: `emancipate.guard.findings.secret` = 2."""
    counts: dict[str, int] = {}
    for finding in ctx.findings:
        key = f"emancipate.guard.findings.{finding.cls}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _policy(ctx: RequestContext) -> dict[str, Any]:
    """The strongest policy action and the rules that took it (configured names)."""
    decisions = [d for d in ctx.decisions if d.stage == "policy"]
    if not decisions:
        return {}
    action = max((d.action for d in decisions), key=lambda a: _ACTION_RANK.get(a, 0))
    rules = sorted({d.rule for d in decisions if d.rule})
    attrs: dict[str, Any] = {"emancipate.policy.action": action}
    if rules:
        attrs["emancipate.policy.rules"] = rules
    return attrs


def _output_messages(answer: str) -> str:
    import orjson

    return orjson.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
                        ).decode()


def _provider(settings: TraceSettings) -> tuple[TracerProvider, BatchSpanProcessor]:
    """The SDK's provider with a batch processor and the OTLP exporter of `settings`."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from emancipate import __version__

    exporter: Any
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.endpoint, headers=settings.headers)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        endpoint = settings.endpoint + "/v1/traces" if settings.endpoint else None
        exporter = HTTPSpanExporter(endpoint=endpoint, headers=settings.headers)
    sampler = (None if settings.sample_ratio is None
               else ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    resource = Resource.create({"service.name": settings.service_name,
                                "service.version": __version__})
    provider = TracerProvider(resource=resource, sampler=sampler)
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider, processor


__all__ = ["OFF", "UPSTREAM_TRACE", "OTelTracer", "Stage", "TraceSettings", "Tracer"]
