"""The routing strategies a route can name in config."""

from __future__ import annotations

import logging
import math
import random
from typing import Any, Protocol

from emancipate.config import RouteConfig
from emancipate.context import Decision, RequestContext, Target
from emancipate.health import HealthBoard
from emancipate.routing.online import OnlineEstimate

log = logging.getLogger("emancipate.routing")


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
    """In-house first when the learned router says the external model is not needed.

    The trained router's score is corrected per route by an `OnlineEstimate` learned from
    this route's shadow verdicts (`observe`), so that after some verdicts the decisions
    reflect the organisation's own traffic. A router whose held-out estimate is not better
    than the prompt-length rule has no calibration that applies: it is logged at start-up
    and shown by `status()` (in /readyz).
    """

    def __init__(self, route: RouteConfig) -> None:
        from emancipate.routing.learned import IndependenceRouter

        if not route.router:
            raise ValueError("strategy independence needs `router:` (a trained router file)")
        self.path = route.router
        self.router = IndependenceRouter.load(route.router)
        if route.threshold is not None:
            self.threshold = route.threshold
        else:
            self.threshold = self.router.threshold_for(
                quality_floor=route.quality_floor, inhouse_share=route.inhouse_share
            )
        self.online = OnlineEstimate(idf=self.router.word_idf())
        self.calibrated = self.router.calibration_applies()
        if not self.calibrated:
            log.warning("router %s: %s", self.path, self.warning())

    def warning(self) -> str | None:
        """Why the router's calibration does not apply, or None when it does."""
        return self.router.calibration_warning()

    def order(self, targets: list[Target], ctx: RequestContext, prompt: str) -> list[Target]:
        parts = self.router.parts(prompt)
        z = self.online.logit(parts["logit"], parts["words"])
        score = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
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

    def observe(self, prompt: str, inhouse_ok: bool) -> None:
        """Learn from one shadow verdict of this route (called when it is recorded)."""
        parts = self.router.parts(prompt)
        self.online.observe(parts["logit"], parts["words"], inhouse_ok, len(prompt))

    def status(self) -> dict[str, Any]:
        """The router's calibration, its held-out estimate and what live verdicts measured."""
        h = self.router.heldout
        est = self.router.estimate(self.threshold)
        return {
            "router": self.path,
            "calibrated": self.calibrated,
            "warning": self.warning(),
            "threshold": None if math.isinf(self.threshold) else round(self.threshold, 4),
            "heldout": {"apgr": h.get("apgr"), "length_apgr": h.get("length_apgr"),
                        "cpt50": h.get("cpt50"), "method": h.get("method"),
                        "inhouse_share": round(est["inhouse_share"], 4),
                        "gap_recovered": round(est["gap_recovered"], 4)},
            "live": self.online.live(self.threshold),
        }


def router_status(strategies: dict[str, Strategy]) -> dict[str, dict[str, Any]]:
    """`status()` of every route using the independence strategy, by route name."""
    return {name: s.status() for name, s in strategies.items() if isinstance(s, Independence)}


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
