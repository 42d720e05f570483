"""The one pipeline every API and the shadow stage send requests through.

    prepare:  guard ─▶ policy ─▶ routing      (what may go where, in which order, as what)
    call:     executor                        (retries, failover, breakers)

`Pipeline.prepare` returns a `Prepared` request: the targets the policy allows, in the
router's order, and for each target the body it may receive and the restorer of its answer.
Chat completions, embeddings, the shadow replay and its judge all go through it, so a rule
of the guard or the policy holds for every one of them by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from emancipate.config import GatewayConfig
from emancipate.context import RequestContext, Target
from emancipate.executor import Executor
from emancipate.ledger.prices import cost
from emancipate.protocol import OpenAIError
from emancipate.routing import Strategy
from emancipate.tracing import OFF, Tracer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from emancipate.cache import RouteCache
    from emancipate.guard.offload import GuardRunner
    from emancipate.policy import Policy, PolicyPlan
    from emancipate.policy.redact import Restorer


@dataclass
class Route:
    """A public model name: its targets and the strategy that orders them."""

    name: str
    targets: list[Target]
    strategy: Strategy
    shadow_rate: float = 0.0
    cache: RouteCache | None = None  # `routes.<name>.cache`


@dataclass(slots=True)
class Prepared:
    """One request after the guard, the policy and the router."""

    route: Route
    data: dict[str, Any]  # the body as the guard read it (normalised)
    prompt: str  # the text the router and the shadow judge read
    plan: PolicyPlan | None  # None when the policy is off
    targets: list[Target]  # the targets this request may go to
    ordered: list[Target]  # the same, in the order to try them

    def body_for(self, target: Target) -> dict[str, Any]:
        """The body `target` may receive (redacted where the policy says so)."""
        return self.plan.body_for(target, self.data) if self.plan is not None else self.data

    def restorer_for(self, target: Target) -> Restorer | None:
        """Puts redacted values back into `target`'s answer; None when nothing was redacted."""
        return self.plan.restorer_for(target) if self.plan is not None else None


class Pipeline:
    """Guard, policy, routing and the executor, owned by the `Gateway`."""

    def __init__(self, cfg: GatewayConfig, routes: Mapping[str, Route], executor: Executor,
                 runner: GuardRunner | None, policy: Policy | None,
                 registry: CollectorRegistry | None = None, tracer: Tracer = OFF) -> None:
        self.cfg = cfg
        self.routes = routes
        self.executor = executor
        self.runner = runner
        self.policy = policy
        self.registry = registry
        self.tracer = tracer  # a span per stage: guard, policy, routing

    async def prepare(
        self, ctx: RequestContext, route: Route, data: dict[str, Any], targets: list[Target], *,
        kind: Literal["chat", "embeddings"] = "chat", prompt: str = "", redacted_ok: bool = True,
    ) -> Prepared:
        """Guard `data`, let the policy decide, order the allowed targets.

        Adds the guard's findings and every decision to `ctx`. Raises `OpenAIError` 403
        `policy_blocked` when no target may receive the request (with `redacted_ok=False`,
        also when each allowed target would receive a redacted body: an embedding of
        placeholders is no embedding of the text).
        """
        param = "messages" if kind == "chat" else "input"
        if self.runner is not None:  # off the event loop when the body is large
            with self.tracer.span(ctx, "guard"):  # the span counts the findings
                scanned = await self.runner.scan(data, targets, kind)
                ctx.findings = scanned.findings
            data, targets = scanned.body, scanned.targets
            ctx.decisions.extend(scanned.decisions)
        plan = None
        if self.policy is not None:
            with self.tracer.span(ctx, "policy"):
                plan, targets = self._plan(ctx, route, data, targets, param, redacted_ok)
        with self.tracer.span(ctx, "routing"):
            ordered = route.strategy.order(targets, ctx, prompt)
        return Prepared(route, data, prompt, plan, targets, ordered)

    def _plan(self, ctx: RequestContext, route: Route, data: dict[str, Any],
              targets: list[Target], param: str, redacted_ok: bool,
              ) -> tuple[PolicyPlan, list[Target]]:
        """The policy's plan and the targets it allows; raises 403 `policy_blocked`."""
        assert self.policy is not None
        plan = self.policy.plan(data, ctx.findings, targets, ctx.principal)
        ctx.decisions.extend(plan.decisions)
        if plan.blocked is not None:
            raise OpenAIError(
                403, f"Blocked by policy rule '{plan.blocked.rule}': {plan.blocked.reason} "
                "No target this request may be sent to is configured for this model.",
                type="permission_error", param=param, code="policy_blocked")
        targets = plan.targets
        if not redacted_ok:
            targets = [t for t in targets if plan.restorer_for(t) is None]
            if not targets:
                raise OpenAIError(
                    403, "This input holds data the policy only lets in-house targets see, "
                    f"and model '{route.name}' has no in-house target for it.",
                    type="permission_error", param=param, code="policy_blocked")
        return plan, targets

    async def complete(self, ctx: RequestContext, prepared: Prepared
                       ) -> tuple[dict[str, Any], Target]:
        """A chat completion from the first target that answers, restored."""
        body, target = await self.executor.complete(ctx, prepared.ordered, prepared.body_for)
        restorer = prepared.restorer_for(target)
        if restorer is not None:
            restore_message(body, restorer)
        return body, target

    def price(self, ctx: RequestContext, target: Target, prompt_tokens: int,
              completion_tokens: int) -> float:
        """What a call that `target` answered cost; it held the target for the last attempt."""
        held = ctx.attempts[-1].latency_ms / 1000 if ctx.attempts else 0.0
        return cost(self.cfg.providers[target.provider], target.model, prompt_tokens,
                    completion_tokens, held)

    def estimated_cost(self, route: Route, prompt_tokens: int, completion_tokens: int) -> float:
        """What a request of this size may cost on the priciest target of `route`: held
        against the key's budget at admission, until the real cost is known."""
        return max((cost(self.cfg.providers[t.provider], t.model, prompt_tokens,
                         completion_tokens) for t in route.targets), default=0.0)


def restore_message(body: dict[str, Any], restorer: Restorer) -> None:
    """Put redacted values back into a chat completion's messages, tool calls (function
    arguments, custom tool input) and legacy `function_call` arguments."""
    for choice in body.get("choices") or ():
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            msg["content"] = restorer.restore(msg["content"])
        calls = [call.get("function") or {} for call in msg.get("tool_calls") or ()]
        calls.append(msg.get("function_call") or {})
        for fn in calls:
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = restorer.restore(fn["arguments"])
        for call in msg.get("tool_calls") or ():
            custom = call.get("custom") or {}
            if isinstance(custom.get("input"), str):
                custom["input"] = restorer.restore(custom["input"])


__all__ = ["Pipeline", "Prepared", "Route", "restore_message"]
