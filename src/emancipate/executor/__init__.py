"""The executor: call targets in the router's order; retry, fail over, break circuits.

Streams may fail over only until their first chunk is in hand; after that the target is
committed and a break reaches the client as an error event, never as a quiet truncation.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from emancipate.config import GatewayConfig, Retries
from emancipate.context import Attempt, RequestContext, Target
from emancipate.health import HealthBoard, TargetHealth
from emancipate.protocol import OpenAIError
from emancipate.providers import ChatChunks, Provider, ProviderError
from emancipate.tracing import OFF, Tracer

BodyFor = Callable[[Target], dict[str, Any]]
ProviderCall = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]  # (body, model)
T = TypeVar("T")

# Errors worth a second try on the same target; the others fail over at once.
_RETRY_SAME = {"rate_limited", "upstream_5xx", "connect", "bad_response", "stream_cut"}


class Executor:
    def __init__(
        self, cfg: GatewayConfig, providers: dict[str, Provider], health: HealthBoard,
        observe: Callable[[Attempt], None] | None = None, tracer: Tracer = OFF,
    ) -> None:
        self.cfg = cfg
        self.providers = providers
        self.health = health
        self.observe = observe or (lambda attempt: None)
        self.rng = random.Random()
        self.tracer = tracer  # a span per attempt, its trace context sent upstream

    # --- public ------------------------------------------------------------------------------

    async def complete(
        self, ctx: RequestContext, targets: list[Target], body_for: BodyFor
    ) -> tuple[dict[str, Any], Target]:
        """A non-streaming answer from the first target that gives one."""
        return await self.call(ctx, targets, body_for, self._bounded(lambda p: p.chat))

    async def embed(
        self, ctx: RequestContext, targets: list[Target], body_for: BodyFor
    ) -> tuple[dict[str, Any], Target]:
        """Embeddings from the first target that gives them."""
        return await self.call(ctx, targets, body_for, self._bounded(lambda p: p.embeddings))

    def _bounded(self, method: Callable[[Provider], ProviderCall]
                 ) -> Callable[[Target, dict[str, Any]], Awaitable[dict[str, Any]]]:
        """`method` of the target's provider, within the provider's total timeout."""

        async def call(target: Target, body: dict[str, Any]) -> dict[str, Any]:
            pcfg = self.cfg.providers[target.provider]
            return await _within(method(self.providers[target.provider])(body, target.model),
                                 pcfg.timeouts.total)

        return call

    async def stream(
        self, ctx: RequestContext, targets: list[Target], body_for: BodyFor
    ) -> tuple[ChatChunks, Target]:
        """A stream whose first chunk has arrived; failover happens only before that."""

        async def call(target: Target, body: dict[str, Any],
                       ) -> tuple[dict[str, Any], ChatChunks, float]:
            pcfg = self.cfg.providers[target.provider]
            deadline = asyncio.get_running_loop().time() + pcfg.timeouts.total
            gen = self.providers[target.provider].chat_stream(body, target.model)
            try:
                first = await _within(anext(gen),
                                      min(pcfg.timeouts.first_token, pcfg.timeouts.total))
            except StopAsyncIteration:
                raise ProviderError(
                    "bad_response", f"provider {target.provider!r} sent an empty stream"
                ) from None
            except BaseException:
                await gen.aclose()
                raise
            return first, gen, deadline

        (first, gen, deadline), target = await self.call(ctx, targets, body_for, call)
        return self._follow(ctx, target, first, gen, deadline), target

    async def _follow(
        self, ctx: RequestContext, target: Target, first: dict[str, Any],
        rest: ChatChunks, deadline: float,
    ) -> ChatChunks:
        """The committed stream: first chunk, then the rest within the total deadline.

        A break after commit is charged to the target (attempt outcome, breaker) and re-raised
        for the api to turn into an error event.
        """
        health = self.health[target.id]
        health.inflight += 1
        # One timer for the whole stream instead of an `asyncio.timeout_at` scope per chunk
        # (a Timeout object, a timer handle and Python-level bookkeeping per event). The timer
        # cancels the task only while it waits for the upstream, never while the consumer
        # holds a chunk (a scope spanning a yield would cancel the client).
        waiting: list[Any] = [None, 0]  # [task waiting on the upstream, its cancelling()]
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if waiting[0] is not None:
                waiting[0].cancel()

        timer = asyncio.get_running_loop().call_at(deadline, expire)
        try:
            yield first
            task = asyncio.current_task()  # the consumer's task (the request's, throughout)
            while True:
                if expired:
                    raise TimeoutError
                waiting[0], waiting[1] = task, task.cancelling() if task is not None else 0
                try:
                    chunk = await anext(rest)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    if expired and task is not None and task.uncancel() <= waiting[1]:
                        raise TimeoutError from None
                    raise
                finally:
                    waiting[0] = None
                yield chunk
        except (TimeoutError, ProviderError) as exc:
            err = exc if isinstance(exc, ProviderError) else ProviderError(
                "timeout", f"provider {target.provider!r} exceeded its total timeout mid-stream")
            attempt = ctx.attempts[-1]
            attempt.outcome, attempt.error = err.kind, err.message
            _strike(health, err)
            raise err from None
        finally:
            timer.cancel()
            health.inflight -= 1
            await rest.aclose()

    # --- the walk ----------------------------------------------------------------------------

    async def call(self, ctx: RequestContext, targets: list[Target], body_for: BodyFor,
                   invoke: Callable[[Target, dict[str, Any]], Awaitable[T]]) -> tuple[T, Target]:
        """`invoke(target, body_for(target))` on each target in order until one answers:
        retries on the same target for transient errors, then fails over; open circuits are
        skipped. Waits between attempts stop at `server.retry_budget` seconds in all.

        Raises `OpenAIError`: the client's own mistake at once (4xx), else when every target
        failed (429 when every failure was a rate limit, with the smallest Retry-After).
        """
        last: ProviderError | None = None
        tried_any = False
        limited: list[float] = []  # Retry-After of each rate-limited failure (1 s if none)
        only_limits = True
        waited, budget = 0.0, self.cfg.server.retry_budget
        for target in targets:
            health = self.health[target.id]
            pcfg = self.cfg.providers[target.provider]
            body = body_for(target)
            for n in range(pcfg.retries.attempts):
                if not health.allows():
                    break
                tried_any = True
                health.inflight += 1
                started = time.perf_counter()
                with self.tracer.attempt(ctx, target):  # ends after the attempt is recorded
                    try:
                        result = await invoke(target, body)
                    except TimeoutError:
                        err = ProviderError("timeout", f"provider {target.provider!r} timed out")
                    except ProviderError as exc:
                        err = exc
                    except asyncio.CancelledError:
                        health.release_probe()
                        self._record(ctx, target, "cancelled", started, None, "client went away")
                        raise
                    else:
                        latency = self._record(ctx, target, "ok", started, None, None)
                        health.success(latency)
                        ctx.served_by = target
                        return result, target
                    finally:
                        health.inflight -= 1
                    self._record(ctx, target, err.kind, started, err.status, err.message)
                if not err.retryable:
                    health.release_probe()
                    raise _client_error(err)
                _strike(health, err)
                last = err
                if err.kind == "rate_limited":
                    limited.append(err.retry_after if err.retry_after is not None else 1.0)
                else:
                    only_limits = False
                if err.kind not in _RETRY_SAME or n + 1 >= pcfg.retries.attempts:
                    break
                wait = self._backoff(pcfg.retries, n, err.retry_after)
                if wait is None or waited + wait > budget:
                    break  # longer than we may wait: fail over now
                waited += wait
                await asyncio.sleep(wait)
        if tried_any and only_limits and limited:
            return_after = max(1, math.ceil(min(limited)))
            raise OpenAIError(
                429, f"Every target of model '{ctx.route}' is rate limited by its vendor "
                f"({', '.join(t.id for t in targets)}). Retry after {return_after} s.",
                type="rate_limit_error", code="upstream_rate_limited",
                headers={"Retry-After": str(return_after)})
        raise self._exhausted(ctx, targets, last, tried_any)

    def _backoff(self, retries: Retries, n: int, retry_after: float | None) -> float | None:
        if retry_after is not None:
            return retry_after if retry_after <= retries.max_retry_after else None
        base = min(retries.backoff_max, retries.backoff_initial * (2.0**n))
        return base * (0.5 + self.rng.random() / 2)  # "equal jitter"

    def _record(self, ctx: RequestContext, target: Target, outcome: str, started: float,
                status: int | None, error: str | None) -> float:
        latency = (time.perf_counter() - started) * 1000
        attempt = Attempt(
            target=target.id, vendor=target.vendor, ownership=target.ownership,
            outcome=outcome, latency_ms=latency, status=status, error=error,
        )
        ctx.attempts.append(attempt)
        self.observe(attempt)
        return latency

    def _exhausted(self, ctx: RequestContext, targets: list[Target],
                   last: ProviderError | None, tried_any: bool) -> OpenAIError:
        names = ", ".join(t.id for t in targets)
        if not tried_any or last is None:
            return OpenAIError(
                503,
                f"No healthy target for model '{ctx.route}': every circuit is open ({names}). "
                "Retry shortly; an operator can see target health at /readyz.",
                type="server_error", code="no_healthy_target", headers={"Retry-After": "1"},
            )
        detail = f"All targets for model '{ctx.route}' failed ({names}). Last error: {last.message}"
        if last.kind == "timeout":
            return OpenAIError(504, detail, type="server_error", code="upstream_timeout")
        if last.kind in ("rate_limited", "unavailable"):  # some targets failed otherwise
            headers = {"Retry-After": str(int(last.retry_after or 1))}
            return OpenAIError(503, detail, type="server_error", code="upstream_unavailable",
                               headers=headers)
        return OpenAIError(502, detail, type="server_error", code="upstream_error")


async def _within(work: Awaitable[T], seconds: float) -> T:
    """`await work`, or TimeoutError after `seconds`: `asyncio.timeout` without its Timeout
    object and Python-level bookkeeping (one timer handle; the same cancel/uncancel rules)."""
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    fired = False

    def fire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(seconds, fire)
    try:
        return await work
    except asyncio.CancelledError:
        if fired and task.uncancel() <= cancelling:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


def _strike(health: TargetHealth, err: ProviderError) -> None:
    """Count a failure against the target's circuit, unless the request caused it: an answer
    over `server.max_upstream_body_bytes` says nothing about the target's health, and a client
    asking for huge answers must not open the circuit for everyone."""
    if err.kind == "too_large":
        health.release_probe()
    else:
        health.failure()


def _client_error(err: ProviderError) -> OpenAIError:
    status = err.status if err.status and 400 <= err.status < 500 else 400
    return OpenAIError(status, err.message, param=err.param, code=err.code or "upstream_rejected")
