"""The routing strategies a route can name in config."""

from __future__ import annotations

import random
from typing import Protocol

from emancipate.config import RouteConfig
from emancipate.context import Decision, RequestContext, Target
from emancipate.health import HealthBoard


class Strategy(Protocol):
    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        """Return `targets` in the order the executor should try them."""
        ...


class Fallback:
    """Ordered priority: the first target unless it fails."""

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        return targets


class Weighted:
    """Random by weight (without replacement, so failover still visits every target)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        pool = list(targets)
        out: list[Target] = []
        while pool:
            pick = self.rng.choices(range(len(pool)), weights=[t.weight for t in pool])[0]
            out.append(pool.pop(pick))
        return out


class LeastLatency:
    """Fastest observed first; targets never measured are tried first to learn them."""

    def __init__(self, health: HealthBoard) -> None:
        self.health = health

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        def key(t: Target) -> float:
            lat = self.health[t.id].latency()
            return -1.0 if lat is None else lat

        return sorted(targets, key=key)


class LeastBusy:
    """Fewest requests in flight first (ties keep the configured order)."""

    def __init__(self, health: HealthBoard) -> None:
        self.health = health

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        return sorted(targets, key=lambda t: self.health[t.id].inflight)


class Independence:
    """In-house first when the learned router says the external model is not needed."""

    def __init__(self, route: RouteConfig) -> None:
        from emancipate.routing.learned import IndependenceRouter

        if not route.router:
            raise ValueError("strategy independence needs `router:` (a trained router file)")
        self.router = IndependenceRouter.load(route.router)
        if route.threshold is not None:
            self.threshold = route.threshold
        else:
            self.threshold = self.router.threshold_for(
                quality_floor=route.quality_floor, inhouse_share=route.inhouse_share
            )

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        score = self.router.score(prompt)
        ctx.router_score = score
        inhouse = [t for t in targets if t.ownership == "in-house"]
        external = [t for t in targets if t.ownership != "in-house"]
        keep_home = score < self.threshold
        ctx.decisions.append(Decision(
            stage="routing",
            action="in-house" if keep_home else "external",
            reason=f"score {score:.3f} {'<' if keep_home else '>='} threshold {self.threshold:.3f}",
        ))
        return inhouse + external if keep_home else external + inhouse


def build_strategy(route: RouteConfig, health: HealthBoard) -> Strategy:
    if route.strategy == "weighted":
        return Weighted()
    if route.strategy == "least-latency":
        return LeastLatency(health)
    if route.strategy == "least-busy":
        return LeastBusy(health)
    if route.strategy == "independence":
        return Independence(route)
    return Fallback()
