"""The request pipeline: one object that owns every stage and passes a request through them.

    auth ─▶ validate ─▶ guard ─▶ policy ─▶ routing ─▶ executor ─▶ answer ─▶ ledger, shadow

The api package only speaks HTTP; everything a request meets happens here, in this order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from emancipate.cache.stage import Assembler, stream_of
from emancipate.config import GatewayConfig
from emancipate.context import Decision, Principal, RequestContext, Target
from emancipate.executor import Executor
from emancipate.health import HealthBoard
from emancipate.ledger.prices import cost
from emancipate.metrics import Metrics
from emancipate.pipeline import Pipeline, Prepared, Route
from emancipate.protocol import (
    ChatCompletionRequest,
    EmbeddingRequest,
    OpenAIError,
    pydantic_error_to_openai,
)
from emancipate.protocol.depth import check_depth, too_deep
from emancipate.providers import (
    ChatChunks,
    Provider,
    ProviderError,
    Unsupported,
    build_providers,
)
from emancipate.routing import build_strategy
from emancipate.tracing import Tracer

if TYPE_CHECKING:
    from emancipate.auth import Access
    from emancipate.cache import Lookup, ResponseCache
    from emancipate.guard import Guard
    from emancipate.guard.offload import GuardRunner
    from emancipate.ledger import Ledger
    from emancipate.policy import Policy
    from emancipate.policy.redact import Restorer
    from emancipate.shadow import Shadow, ShadowJob

# In `ctx.extra`: the ledger has the request's record (`Gateway.answered`).
RECORDED = "ledger_recorded"


@dataclass
class Answer:
    """A finished non-streaming answer."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class StreamAnswer:
    """A committed stream: headers are final, chat chunks follow (`Gateway._events`); the
    last is `{"error": …}` when the stream broke after commit. Each API serialises them."""

    events: ChatChunks
    headers: dict[str, str]
    ctx: RequestContext = field(repr=False, default_factory=RequestContext)


def parse_json(raw: bytes, max_depth: int = 64) -> dict[str, Any]:
    """The body as a dict, nested at most `max_depth` levels (see `protocol.depth`)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):  # orjson stops at 1024 levels
            raise too_deep(max_depth) from None
        raise OpenAIError(
            400,
            f"The request body is not valid JSON ({exc.args[0] if exc.args else exc}). "
            "Send a JSON object with Content-Type: application/json.",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "The request body must be a JSON object.", code="invalid_json")
    # Fewer brackets than levels cannot nest too deep: the walk is for the rare large body.
    if raw.count(b"[") + raw.count(b"{") >= max_depth:
        check_depth(data, max_depth)
    return data


class Gateway:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.providers: dict[str, Provider] = build_providers(cfg)
        self.health = HealthBoard()
        self.metrics = Metrics(self.health, self.providers, cfg.routes)
        self.tracer = Tracer.from_config(cfg)  # `tracing.OFF` unless tracing is on
        self.executor = Executor(cfg, self.providers, self.health, observe=self.metrics.attempt,
                                 tracer=self.tracer)
        self.routes: dict[str, Route] = {}
        for name, rcfg in cfg.routes.items():
            targets = []
            for t in rcfg.targets:
                p = cfg.providers[t.provider]
                target = Target(t.provider, t.model, p.vendor, p.ownership, t.weight)
                self.health.register(target.id, p.breaker)
                targets.append(target)
            self.routes[name] = Route(
                name, targets, build_strategy(rcfg, self.health), rcfg.shadow_rate, rcfg.cache
            )
        self.stages = Stages.build(cfg)
        self.pipeline = Pipeline(cfg, self.routes, self.executor, self.stages.runner,
                                 self.stages.policy, self.metrics.registry, self.tracer)
        # the exchange is masked and kept for the ledger, the request span, or both
        self.keep_content = cfg.ledger.log_content or self.tracer.capture_content
        if any(r.shadow_rate > 0 for r in cfg.routes.values()):
            from emancipate.shadow import Shadow  # replays and judges through the pipeline

            self.stages.shadow = Shadow.from_config(cfg, self.pipeline, self.stages.ledger)
        if self.stages.cache is not None:  # semantic routes embed with in-house targets
            self.stages.cache.embed = self.embed_text
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for provider in self.providers.values():
            await provider.start()
        await self.stages.start()

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.stages.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        if self.tracer.on:  # the last spans leave (bounded by the exporter's timeout)
            await asyncio.to_thread(self.tracer.shutdown)

    def ready(self) -> dict[str, Any]:
        providers = {name: p.ready for name, p in self.providers.items()}
        targets = self.health.snapshot()
        routes = {
            name: self.health.any_available([t.id for t in r.targets])
            for name, r in self.routes.items()
        }
        ok = all(providers.values()) and all(routes.values())
        state = {"ready": ok, "providers": providers, "routes": routes, "targets": targets}
        from emancipate.routing import router_status  # independence routes: calibration, live

        if routers := router_status({n: r.strategy for n, r in self.routes.items()}):
            state["routers"] = routers
        return state

    def model_ids(self, principal: Principal | None = None) -> list[str]:
        """The public model names, or only those `principal`'s scopes cover."""
        return sorted(r for r in self.routes if principal is None or principal.may_use(r))

    # --- chat completions --------------------------------------------------------------------

    async def authenticate(self, ctx: RequestContext, authorization: str | None) -> Principal:
        with self.tracer.span(ctx, "auth"):
            principal = await self.stages.authenticate(authorization)
        ctx.principal = principal
        return principal

    async def chat(self, ctx: RequestContext, data: dict[str, Any]) -> Answer | StreamAnswer:
        """Validate, guard, route and execute one chat completion."""
        try:
            request = ChatCompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise pydantic_error_to_openai(exc.errors()) from None
        ctx.route = request.model
        ctx.stream = request.stream
        route = self._route(request.model, ctx.principal)
        prompt = request.prompt_text()
        estimate = len(prompt) // 4 + (request.token_limit or 0)
        completion = (request.token_limit or self.cfg.auth.reserve_completion_tokens) * request.n
        await self.stages.admit(ctx.principal, route.name, estimate, ctx,
                                lambda: self.pipeline.estimated_cost(route, len(prompt) // 4,
                                                                     completion))
        targets = self._capable(route, request)
        prepared = await self.pipeline.prepare(ctx, route, data, targets, prompt=prompt)
        data = prepared.data
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        lookup = None
        if route.cache is not None and self.stages.cache is not None:
            lookup = await self.stages.cache.lookup(ctx, route.cache, prepared)
            ctx.extra["cache"] = lookup.status
            if lookup.similarity is not None:
                ctx.extra["cache_similarity"] = lookup.similarity
            if lookup.entry is not None:
                return self._from_cache(ctx, lookup.entry, request.stream, include_usage)
        shadow = self.stages.shadow
        if request.stream:
            chunks, target = await self.executor.stream(ctx, prepared.ordered,
                                                        prepared.body_for)
            # shadow: sampled here, collects the streamed text
            job = shadow.begin(ctx, prepared) if shadow is not None else None
            keep = None
            if lookup is not None and lookup.key is not None:
                keep = self._keeper(route, lookup, target)
            return StreamAnswer(
                self._events(ctx, chunks, include_usage, prepared.restorer_for(target), job,
                             len(prompt) // 4, data, keep),
                self._headers(ctx), ctx
            )
        body, target = await self.pipeline.complete(ctx, prepared)
        if lookup is not None and lookup.key is not None:
            self._keeper(route, lookup, target)(body)
        u = body.get("usage") or {}
        self._account(ctx, int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        if self.keep_content:
            self._log_content(ctx, data, "\n".join(
                (c.get("message") or {}).get("content") or "" for c in body.get("choices") or ()))
        if shadow is not None:  # shadow: one draw; the replay runs in background
            shadow.maybe(ctx, prepared, body)
        return Answer(body, self._headers(ctx))

    async def _events(
        self, ctx: RequestContext, chunks: AsyncIterator[dict[str, Any]],
        include_usage: bool, restorer: Restorer | None, shadow: ShadowJob | None = None,
        prompt_estimate: int = 0, data: dict[str, Any] | None = None,
        keep: Callable[[dict[str, Any]], None] | None = None,
    ) -> ChatChunks:
        """The committed stream as chat chunks, restored; a break after commit ends it with
        one `{"error": …}` event. Every API's stream is a translation of these events.

        Tokens are charged however the stream ends: a client that leaves early, a vendor
        that breaks or sends no usage are charged an estimate (one token per event). The
        request is recorded after the last chunk, before the API's closing event leaves.
        """
        prompt_tokens = completion_tokens = events = 0
        parts: list[str] | None = [] if self.keep_content else None
        whole = Assembler() if keep is not None else None  # the response cache keeps it
        ended = False
        try:
            async for chunk in chunks:
                events += 1
                if "usage" in chunk:  # the gateway always asks upstreams for usage
                    u = chunk["usage"]
                    if u:
                        prompt_tokens = int(u.get("prompt_tokens") or 0)
                        completion_tokens = int(u.get("completion_tokens") or 0)
                        if not chunk.get("choices"):
                            if include_usage:
                                yield chunk
                            continue
                    if not include_usage:  # as OpenAI: no `usage` key unless asked for
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                if restorer is not None:  # per choice and per tool call: cut placeholders too
                    restorer.restore_chunk(chunk)
                if shadow is not None:  # shadow job: collect the answer's text
                    shadow.feed(chunk)
                if parts is not None:
                    parts.extend((c.get("delta") or {}).get("content") or ""
                                 for c in chunk.get("choices") or ())
                if whole is not None:
                    whole.feed(chunk)
                yield chunk
            if restorer is not None:
                tail = restorer.flush()
                if tail:
                    last = _tail_chunk(ctx, tail)
                    if shadow is not None:
                        shadow.feed(last)
                    if whole is not None:
                        whole.feed(last)
                    yield last
            ended = True  # the answer is whole: recorded before its closing event leaves
            self._end_stream(ctx, prompt_tokens, completion_tokens, prompt_estimate, events,
                             parts, data)
            self.answered(ctx)
            if shadow is not None:  # the answer is complete: start the shadow replay
                shadow.finish()
            if keep is not None and whole is not None:
                body = whole.body()
                if body is not None:
                    keep(body)
        except ProviderError as exc:
            ctx.status = 502
            ctx.error_code = "stream_interrupted"
            if not ended:
                ended = True
                self._end_stream(ctx, prompt_tokens, completion_tokens, prompt_estimate, events,
                                 parts, data)
                self.answered(ctx)
            yield {"error": {
                "message": f"The answer was interrupted: {exc.message}. The text received "
                "so far is incomplete; retry the request.",
                "type": "server_error", "param": None, "code": "stream_interrupted",
            }}
        finally:
            if not ended:  # the client left mid-way: charged here, recorded by `finish`
                self._end_stream(ctx, prompt_tokens, completion_tokens, prompt_estimate, events,
                                 parts, data)

    def _keeper(self, route: Route, lookup: Lookup, target: Target
                ) -> Callable[[dict[str, Any]], None]:
        """Stores an answer of `target` under the lookup's key (and, on a semantic route,
        with its partition and vector) in the response cache."""
        cache, rcfg, key = self.stages.cache, route.cache, lookup.key
        assert cache is not None and rcfg is not None and key is not None
        return lambda body: cache.store(key, route.name, rcfg.ttl, body, target,
                                        lookup.partition, lookup.vector)

    async def embed_text(self, route_name: str, text: str) -> list[float]:
        """`text`'s vector from `route_name`'s targets (in-house only: the config checked),
        for the semantic cache. Part of the request that asked: no ledger record of its own,
        no key charged, its time in the request's latency."""
        route = self.routes[route_name]
        body = {"model": route_name, "input": text, "encoding_format": "float"}
        answer, _ = await self.executor.embed(RequestContext(endpoint="embeddings"),
                                              route.targets, lambda target: body)
        return list(answer["data"][0]["embedding"])

    def _from_cache(self, ctx: RequestContext, entry: dict[str, Any], stream: bool,
                    include_usage: bool) -> Answer | StreamAnswer:
        """A hit: the cached answer, under this request's id, as a body or a stream. No
        vendor was called: no tokens are charged; the ledger records the call it avoided."""
        body = entry["body"]
        body["id"] = ctx.request_id
        usage = body.get("usage") or {}
        ctx.extra["saved_tokens"] = (int(usage.get("prompt_tokens") or 0)
                                     + int(usage.get("completion_tokens") or 0))
        provider = self.cfg.providers.get(entry.get("provider") or "")
        if provider is not None and entry.get("ownership") == "external":
            ctx.extra["cache_vendor"] = entry.get("vendor")
            ctx.extra["saved_cost"] = cost(provider, entry.get("model") or "",
                                           int(usage.get("prompt_tokens") or 0),
                                           int(usage.get("completion_tokens") or 0))
        if not stream:
            return Answer(body, self._headers(ctx))
        return StreamAnswer(self._replay(ctx, stream_of(body, include_usage)),
                            self._headers(ctx), ctx)

    async def _replay(self, ctx: RequestContext, chunks: list[dict[str, Any]]
                      ) -> ChatChunks:
        for chunk in chunks:
            yield chunk
        self.answered(ctx)

    def _end_stream(self, ctx: RequestContext, prompt_tokens: int, completion_tokens: int,
                    prompt_estimate: int, events: int, parts: list[str] | None,
                    data: dict[str, Any] | None) -> None:
        """Charge a stream however it ended (an estimate when the vendor sent no usage: one
        token per event), and keep its content under `ledger.log_content`."""
        if not (prompt_tokens or completion_tokens):
            prompt_tokens, completion_tokens = prompt_estimate, events
            ctx.extra["usage_estimated"] = True
        self._account(ctx, prompt_tokens, completion_tokens)
        if parts is not None and data is not None:
            self._log_content(ctx, data, "".join(parts))

    def _log_content(self, ctx: RequestContext, data: dict[str, Any], answer: str) -> None:
        """`ledger.log_content`, `tracing.capture_content`: keep the exchange, with every
        detected value masked."""
        from emancipate.ledger.content import content_row

        row = content_row(data.get("messages"), answer, self.stages.guard)
        if self.cfg.ledger.log_content:
            ctx.extra["content"] = row
        self.tracer.content(ctx, row)

    def _account(self, ctx: RequestContext, prompt_tokens: int, completion_tokens: int) -> None:
        ctx.prompt_tokens, ctx.completion_tokens = prompt_tokens, completion_tokens
        target = ctx.served_by
        if target is not None:
            ctx.cost = self.pipeline.price(ctx, target, prompt_tokens, completion_tokens)

    # --- embeddings --------------------------------------------------------------------------

    async def embeddings(self, ctx: RequestContext, data: dict[str, Any]) -> Answer:
        ctx.endpoint = "embeddings"
        try:
            request = EmbeddingRequest.model_validate(data)
        except ValidationError as exc:
            raise pydantic_error_to_openai(exc.errors()) from None
        ctx.route = request.model
        route = self._route(request.model, ctx.principal)
        targets = [t for t in route.targets
                   if self.providers[t.provider].serves_embeddings(t.model)]
        if not targets:
            raise OpenAIError(
                400, f"The model '{request.model}' does not serve embeddings.", param="model",
                code="model_not_supported",
            )
        texts = request.input if isinstance(request.input, list) else [request.input]
        # Every string (input, user, unknown fields) is scanned; token ids stay in-house.
        prepared = await self.pipeline.prepare(ctx, route, data, targets, kind="embeddings",
                                               redacted_ok=False)
        prompt_tokens = sum(len(t) // 4 if isinstance(t, str) else len(t) if isinstance(t, list)
                            else 1 for t in texts)
        await self.stages.admit(ctx.principal, route.name, 0, ctx,
                                lambda: self.pipeline.estimated_cost(route, prompt_tokens, 0))
        body, target = await self.executor.embed(ctx, prepared.ordered, prepared.body_for)
        u = body.get("usage") or {}
        self._account(ctx, int(u.get("prompt_tokens") or 0), 0)
        return Answer(body, self._headers(ctx))

    # --- helpers -----------------------------------------------------------------------------

    def _route(self, model: str, principal: Principal) -> Route:
        route = self.routes.get(model)
        if route is None:
            raise model_not_found(model, self.model_ids(principal))
        return route

    def _capable(self, route: Route, request: ChatCompletionRequest) -> list[Target]:
        capable, reasons = [], []
        for target in route.targets:
            try:
                self.providers[target.provider].check(request, target.model)
            except Unsupported as exc:
                reasons.append(exc)
                continue
            capable.append(target)
        if not capable:
            first = reasons[0]
            raise OpenAIError(
                400,
                f"No target of model '{route.name}' can honour '{first.param}': {first.reason}. "
                f"Remove '{first.param}' or choose a model whose targets support it.",
                param=first.param, code="unsupported_parameter",
            )
        return capable

    def _headers(self, ctx: RequestContext) -> dict[str, str]:
        served = ctx.served_by
        headers = {
            "x-request-id": ctx.request_id,
            "x-emancipate-attempts": str(len(ctx.attempts)),
        }
        cache = ctx.extra.get("cache")
        if cache is not None:
            headers["x-emancipate-cache"] = cache
            similarity = ctx.extra.get("cache_similarity")
            if similarity is not None:  # a semantic hit: a paraphrase's answer
                headers["x-emancipate-cache-match"] = "semantic"
                headers["x-emancipate-cache-similarity"] = f"{similarity:.4f}"
        if served is not None:
            headers["x-emancipate-provider"] = served.provider
            headers["x-emancipate-model"] = served.model
            headers["x-emancipate-ownership"] = served.ownership
        return headers

    def answered(self, ctx: RequestContext) -> None:
        """The answer is complete and its last bytes are about to leave: record it now.

        The ledger journals the record before returning (`ledger.journal`), so a request
        whose client saw a whole answer is in the ledger even if the process dies the next
        instant. Its latency is measured here, before the last write.
        """
        ctx.latency_ms = (time.time() - ctx.started_at) * 1000
        ctx.extra[RECORDED] = True
        with self.tracer.span(ctx, "ledger"):
            self.stages.record(ctx)

    def finish(self, ctx: RequestContext) -> None:
        """After the answer left (or the client did): metrics, limits, and the ledger record
        unless `answered` made it already; never blocks."""
        ctx.latency_ms = (time.time() - ctx.started_at) * 1000
        self.metrics.request(ctx)
        if not ctx.extra.get(RECORDED):
            with self.tracer.span(ctx, "ledger"):
                self.stages.record(ctx)
        settle = self.stages.settle(ctx)
        if settle is not None:
            task = asyncio.ensure_future(settle)
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self.tracer.end(ctx)


def model_not_found(model: str, usable: list[str]) -> OpenAIError:
    """404 naming only the models the caller may use: a scoped key learns no other route."""
    shown = model if len(model) <= 100 else model[:100] + "..."
    return OpenAIError(
        404, f"The model '{shown}' does not exist on this gateway. Models you may use: "
        f"{', '.join(usable) or 'none'}.", param="model", code="model_not_found")


def _tail_chunk(ctx: RequestContext, text: str) -> dict[str, Any]:
    return {
        "id": ctx.request_id, "object": "chat.completion.chunk", "created": int(ctx.started_at),
        "model": ctx.served_by.model if ctx.served_by else "",
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None,
                     "finish_reason": None}],
    }


class Stages:
    """The optional stages (auth, guard, policy, ledger, shadow), each with one small call.

    Built from config; a stage that is switched off is None and costs one attribute check
    per request.
    """

    def __init__(self, ledger: Ledger, keys: Access) -> None:
        self.ledger = ledger
        self.keys = keys  # the key store, for the admin API even when auth is off
        self.access: Access | None = None  # None when auth is off
        self.guard: Guard | None = None
        self.runner: GuardRunner | None = None  # the guard off the loop, with its budget
        self.policy: Policy | None = None
        self.shadow: Shadow | None = None  # set by the gateway: it needs the pipeline
        self.cache: ResponseCache | None = None  # None unless a route has `cache:`

    @classmethod
    def build(cls, cfg: GatewayConfig) -> Stages:
        """Open the database (migrated to head), then each stage the config switches on.

        The database is opened even with the ledger off: virtual keys live there.
        """
        from emancipate.auth import Access
        from emancipate.ledger import Ledger

        ledger = Ledger.open(cfg.server.database_url, cfg.ledger)
        stages = cls(ledger, Access.open(cfg, ledger))  # Access refuses auth-off off loopback
        if cfg.auth.enabled:
            stages.access = stages.keys
        if cfg.guard.enabled:
            from emancipate.guard import Guard
            from emancipate.guard.offload import GuardRunner

            stages.guard = Guard.from_config(cfg.guard)
            stages.runner = GuardRunner(stages.guard, cfg.policy.enabled)
        if cfg.policy.enabled:
            from emancipate.policy import Policy

            stages.policy = Policy.from_config(cfg)
        if any(r.cache is not None for r in cfg.routes.values()):
            from emancipate.cache import ResponseCache

            stages.cache = ResponseCache.from_config(cfg, ledger.engine, stages.guard)
        return stages

    async def start(self) -> None:
        self.ledger.start()
        if self.runner is not None:
            self.runner.start()

    async def aclose(self) -> None:
        if self.shadow is not None:  # first: its verdicts go to the ledger
            await self.shadow.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        if self.runner is not None:  # scans in flight finish (bounded by the budget)
            await asyncio.to_thread(self.runner.close)
        await self.keys.aclose()
        await self.ledger.aclose()

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.access is None:
            from emancipate.context import ANONYMOUS

            return ANONYMOUS
        return await self.access.authenticate(authorization)

    async def admit(self, principal: Principal, route: str, estimated_tokens: int,
                    ctx: RequestContext, estimated_cost: Callable[[], float] | None = None,
                    ) -> None:
        if self.access is not None:
            await self.access.admit(principal, route, estimated_tokens, ctx, estimated_cost)

    def record(self, ctx: RequestContext) -> None:
        self.ledger.record(ctx)

    def settle(self, ctx: RequestContext) -> Any:
        if self.access is not None and ctx.principal.key_id != "anonymous":
            return self.access.settle(ctx.principal, ctx)
        return None


__all__ = ["Answer", "Decision", "Gateway", "Prepared", "Route", "StreamAnswer", "model_not_found",
           "parse_json"]
