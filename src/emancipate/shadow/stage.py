"""The shadow stage: replay a sampled share of traffic on the other side, judge, record.

A request served by an external target is, with probability `routes.<name>.shadow_rate`,
sent again to an in-house target of the same route (and, with `direction: both`, a request
served in-house to an external one), after the client has its answer, in a background task.
The two answers are compared (exact match or a judge route) and the verdict is written to
the ledger's `shadow_verdicts` table, keyed by the request id.

Never on the hot path: sampling is one random draw; the work is a bounded set of tasks and a
sampled request that finds them all busy is dropped (and counted), never queued. Never
outside the policy: the shadow target must be one the request's `PolicyPlan` made eligible,
and it receives `plan.body_for(target, data)` (redacted when the plan says so); the judge's
request goes through the guard and the policy like any other request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from emancipate.context import RequestContext, Target
from emancipate.protocol import OpenAIError
from emancipate.routing import Independence
from emancipate.shadow.config import ShadowConfig
from emancipate.shadow.judge import (
    Verdict,
    answer_text,
    exact_applies,
    exact_verdict,
    judge_messages,
    pairwise_verdict,
    parse_verdict,
)

if TYPE_CHECKING:
    from emancipate.ledger import Ledger
    from emancipate.pipeline import Pipeline, Prepared, Route

log = logging.getLogger("emancipate.shadow")

EXACT = "exact"
OUTCOMES = ("sampled", "dropped", "no_eligible_target", "no_text", "recorded", "error",
            "cancelled")


class ShadowJob:
    """One sampled request: collects the primary answer (streamed or not), then runs."""

    __slots__ = ("_parts", "ctx", "prepared", "route", "shadow", "target")

    def __init__(self, shadow: Shadow, ctx: RequestContext, prepared: Prepared,
                 target: Target) -> None:
        self.shadow = shadow
        self.ctx = ctx
        self.prepared = prepared  # what the guard, policy and router made of the request
        self.route: Route = prepared.route
        self.target = target
        self._parts: list[str] = []

    def feed(self, chunk: dict[str, Any]) -> None:
        """Collect the text of one (restored) stream chunk, first choice only."""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                content = (choice.get("delta") or {}).get("content")
                if isinstance(content, str):
                    self._parts.append(content)

    def finish(self, text: str | None = None) -> None:
        """The primary answer is complete (`text`, or the streamed chunks): start the work."""
        self.shadow._spawn(self, "".join(self._parts) if text is None else text)


class Shadow:
    """Samples requests per route, and runs and records their shadow evaluations."""

    def __init__(self, cfg: ShadowConfig, pipeline: Pipeline, ledger: Ledger, *, guard_on: bool,
                 rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.pipeline = pipeline  # the serving gateway's guard, policy, routes and executor
        self.ledger = ledger
        self.guard_on = guard_on
        self.rng = rng or random.Random()
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._metric = _counter(pipeline.registry)

    @classmethod
    def from_config(cls, cfg: Any, pipeline: Pipeline, ledger: Ledger) -> Shadow | None:
        """The stage for this gateway config, or None when no route has a shadow rate.

        Replays and the judge go through `pipeline` like any request; `ledger` provides
        `record_shadow`. The judge and directions were resolved by `config.resolve_config`.
        """
        if not any(r.shadow_rate > 0 for r in cfg.routes.values()):
            return None
        scfg: ShadowConfig = cfg.shadow
        return cls(scfg, pipeline, ledger, guard_on=bool(cfg.guard.enabled))

    # --- the hot path: one draw, no I/O ------------------------------------------------------

    def begin(self, ctx: RequestContext, prepared: Prepared) -> ShadowJob | None:
        """Sample this answered request; a job to `feed`/`finish`, or None (not shadowed).

        The shadow target is picked only among `prepared.targets`, the ones the request was
        eligible for (capable and allowed by the policy).
        """
        route = prepared.route
        rate = route.shadow_rate
        served = ctx.served_by
        if rate <= 0.0 or served is None or self._closing:
            return None
        if rate < 1.0 and self.rng.random() >= rate:
            return None
        if served.ownership == "external":
            want = "in-house"
        elif self.cfg.directions.get(route.name, self.cfg.direction) == "both":
            want = "external"
        else:
            return None
        self._count(route.name, "sampled")
        target = next((t for t in prepared.targets if t.ownership == want and t.id != served.id),
                      None)
        if target is None:  # none of that side is eligible (policy, capability) or declared
            self._count(route.name, "no_eligible_target")
            return None
        if len(self._tasks) >= self.cfg.max_concurrent:
            self._count(route.name, "dropped")
            return None
        return ShadowJob(self, ctx, prepared, target)

    def maybe(self, ctx: RequestContext, prepared: Prepared, answer: str | dict[str, Any]
              ) -> None:
        """`begin` + `finish` for an answer already complete (its text or its body)."""
        job = self.begin(ctx, prepared)
        if job is not None:
            job.finish(answer if isinstance(answer, str) else answer_text(answer))

    def _spawn(self, job: ShadowJob, answer: str) -> None:
        if self._closing:
            return
        if not answer.strip():  # a tool call or an empty answer: no text to compare
            self._count(job.route.name, "no_text")
            return
        if len(self._tasks) >= self.cfg.max_concurrent:  # filled up while the job streamed
            self._count(job.route.name, "dropped")
            return
        task = asyncio.ensure_future(self._run(job, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle ---------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        """Let evaluations in flight finish for `shutdown_timeout`, then cancel the rest."""
        self._closing = True
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=self.cfg.shutdown_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        dropped = self.counts.get("dropped", 0)
        if self.counts:
            log.info("shadow: %s", ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))
        if dropped:
            log.warning("shadow: %d sampled requests were dropped (max_concurrent %d reached)",
                        dropped, self.cfg.max_concurrent)

    # --- the background work -----------------------------------------------------------------

    async def _run(self, job: ShadowJob, primary_answer: str) -> None:
        started = time.perf_counter()
        latency = 0.0
        judge = self.cfg.judge
        spend: dict[str, Any] = {}  # filled by each call that answered, even if a later fails
        try:
            async with asyncio.timeout(self.cfg.timeout):
                shadow_answer, latency = await self._shadow_answer(job, spend)
                if job.target.ownership == "in-house":
                    external, inhouse = primary_answer, shadow_answer
                else:
                    external, inhouse = shadow_answer, primary_answer
                judge, verdict, ok = await self._judge(job, external, inhouse, spend)
        except asyncio.CancelledError:
            self._count(job.route.name, "cancelled")
            raise
        except Exception as exc:  # an upstream failure, a timeout, a blocked judge...
            log.warning("shadow evaluation of %s failed: %s", job.ctx.request_id,
                        getattr(exc, "message", None) or exc.__class__.__name__)
            verdict, ok = "error", False
            latency = latency or (time.perf_counter() - started) * 1000
        await self._record(job, judge, verdict, ok, latency, spend)

    def _spent(self, ctx: RequestContext, target: Target, result: dict[str, Any]
               ) -> tuple[str, int, float]:
        """(vendor, tokens, cost) of one answered call, priced as the gateway prices requests."""
        usage = result.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        price = self.pipeline.price(ctx, target, prompt_tokens, completion_tokens)
        return target.vendor, prompt_tokens + completion_tokens, price

    async def _shadow_answer(self, job: ShadowJob, spend: dict[str, Any]) -> tuple[str, float]:
        """The shadow target's answer (restored if its body was redacted) and its latency."""
        prepared = job.prepared
        body = {k: v for k, v in prepared.body_for(job.target).items()
                if k not in ("stream", "stream_options")}
        sctx = RequestContext(request_id=job.ctx.request_id, endpoint="shadow",
                              principal=job.ctx.principal, route=job.route.name)
        result, _ = await self.pipeline.executor.complete(sctx, [job.target], lambda _t: body)
        spend["shadow_vendor"], spend["shadow_tokens"], spend["shadow_cost"] = self._spent(
            sctx, job.target, result)
        text = answer_text(result)
        restorer = prepared.restorer_for(job.target)
        if restorer is not None:
            text = restorer.restore(text)
        latency = sctx.attempts[-1].latency_ms if sctx.attempts else 0.0
        return text, latency

    async def _judge(self, job: ShadowJob, external: str, inhouse: str,
                     spend: dict[str, Any]) -> tuple[str, Verdict, bool]:
        """(judge name, verdict, inhouse_ok): exact match where it applies, else the judge."""
        name = self.cfg.judge
        if name == EXACT or exact_applies(external, inhouse, self.cfg.exact_max_chars):
            verdict, ok = exact_verdict(external, inhouse)
            return EXACT, verdict, ok
        inhouse_is_a = self.rng.random() < 0.5  # against position bias
        a, b = (inhouse, external) if inhouse_is_a else (external, inhouse)
        reply = await self._ask_judge(job, judge_messages(job.prepared.prompt, a, b), spend)
        verdict, ok = pairwise_verdict(parse_verdict(reply), inhouse_is_a)
        if verdict == "error":
            log.warning("shadow: the judge's reply for %s could not be read: %.80r",
                        job.ctx.request_id, reply)
        return name, verdict, ok

    async def _ask_judge(self, job: ShadowJob, messages: list[dict[str, Any]],
                         spend: dict[str, Any]) -> str:
        """Call the judge route like a client would: guard, policy, strategy, executor."""
        route = self.pipeline.routes[self.cfg.judge]
        data = {"model": route.name, "messages": messages, "temperature": 0,
                "max_tokens": self.cfg.judge_max_tokens}
        jctx = RequestContext(request_id=job.ctx.request_id, endpoint="shadow-judge",
                              principal=job.ctx.principal, route=route.name)
        try:  # never hand a judge what the guard could not read or the policy keeps back
            prepared = await self.pipeline.prepare(jctx, route, data, route.targets,
                                                   prompt=messages[-1]["content"])
        except OpenAIError as exc:
            raise _JudgeBlocked(f"the judge may not see this exchange ({exc.message})") from None
        result, target = await self.pipeline.complete(jctx, prepared)
        spend["judge_target"] = target.id
        spend["judge_vendor"], spend["judge_tokens"], spend["judge_cost"] = self._spent(
            jctx, target, result)
        return answer_text(result)

    async def _record(self, job: ShadowJob, judge: str, verdict: Verdict, ok: bool,
                      latency: float, spend: dict[str, Any]) -> None:
        ctx, served = job.ctx, job.ctx.served_by
        assert served is not None
        keep = self.cfg.keep_prompts and self.guard_on and not ctx.findings
        row = {
            "request_id": ctx.request_id,
            "created_at": ctx.started_at,  # the request's time: joins and trends line up
            "route": job.route.name,
            "primary_target": served.id,
            "primary_ownership": served.ownership,
            "shadow_target": job.target.id,
            "shadow_ownership": job.target.ownership,
            "judge": judge,
            "inhouse_ok": bool(ok),
            "verdict": verdict,
            "router_score": ctx.router_score,
            "prompt": job.prepared.prompt if keep else None,
            "latency_ms": float(latency),
            **spend,
        }
        if verdict != "error" and isinstance(job.route.strategy, Independence):
            job.route.strategy.observe(job.prepared.prompt, bool(ok))  # the online estimate
        try:
            await asyncio.to_thread(self.ledger.record_shadow, row)
        except Exception as exc:
            log.error("shadow: could not store the verdict of %s (%s)", ctx.request_id,
                      exc.__class__.__name__)
            self._count(job.route.name, "error")
            return
        self._count(job.route.name, "error" if verdict == "error" else "recorded")

    def _count(self, route: str, outcome: str) -> None:
        self.counts[outcome] += 1
        if self._metric is not None:
            self._metric.labels(route, outcome).inc()


class _JudgeBlocked(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _counter(registry: Any) -> Any:
    """`emancipate_shadow_total{route, outcome}` on the gateway's registry, when it has one."""
    if registry is None:
        return None
    from prometheus_client import Counter as PromCounter

    return PromCounter("emancipate_shadow", "Shadow evaluations by outcome",
                       ["route", "outcome"], registry=registry)
