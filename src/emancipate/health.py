"""What the executor observes about each target, read by the router and shown to operators.

A circuit breaker, a moving window of latency, and the count of requests in flight.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from emancipate.config import Breaker

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass
class TargetHealth:
    target_id: str
    breaker: Breaker
    state: str = CLOSED
    failures: deque[float] = field(default_factory=deque)
    opened_at: float = 0.0
    probing: bool = False
    inflight: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    successes: int = 0
    errors: int = 0

    def allows(self, now: float | None = None) -> bool:
        """May a request go to this target now? (half-open lets exactly one probe through)"""
        if self.state == CLOSED:
            return True
        now = time.monotonic() if now is None else now
        if self.state == OPEN and now - self.opened_at >= self.breaker.cooldown:
            self.state = HALF_OPEN
            self.probing = False
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self, latency_ms: float) -> None:
        self.successes += 1
        self.latencies.append(latency_ms)
        if self.state != CLOSED:
            self.state = CLOSED
            self.failures.clear()
        self.probing = False

    def failure(self, now: float | None = None) -> None:
        self.errors += 1
        now = time.monotonic() if now is None else now
        if self.state == HALF_OPEN:
            self._open(now)
            return
        self.failures.append(now)
        horizon = now - self.breaker.window
        while self.failures and self.failures[0] < horizon:
            self.failures.popleft()
        if len(self.failures) >= self.breaker.failures:
            self._open(now)

    def release_probe(self) -> None:
        """A probe that ended without a verdict (client gone, client error) frees the slot."""
        self.probing = False

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened_at = now
        self.probing = False
        self.failures.clear()

    def latency(self) -> float | None:
        return sum(self.latencies) / len(self.latencies) if self.latencies else None

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def snapshot(self) -> dict[str, Any]:
        total = self.successes + self.errors
        return {
            "target": self.target_id,
            "state": self.state,
            "inflight": self.inflight,
            "latency_ms_avg": self.latency(),
            "latency_ms_p50": self.percentile(0.5),
            "latency_ms_p99": self.percentile(0.99),
            "successes": self.successes,
            "errors": self.errors,
            "error_rate": (self.errors / total) if total else 0.0,
        }


class HealthBoard:
    """Every target's health, keyed by target id (provider/model)."""

    def __init__(self) -> None:
        self._by_id: dict[str, TargetHealth] = {}

    def register(self, target_id: str, breaker: Breaker) -> TargetHealth:
        if target_id not in self._by_id:
            self._by_id[target_id] = TargetHealth(target_id, breaker)
        return self._by_id[target_id]

    def __getitem__(self, target_id: str) -> TargetHealth:
        return self._by_id[target_id]

    def snapshot(self) -> list[dict[str, Any]]:
        return [h.snapshot() for h in self._by_id.values()]

    def any_available(self, target_ids: list[str]) -> bool:
        now = time.monotonic()
        for tid in target_ids:
            h = self._by_id[tid]
            if h.state == CLOSED or (h.state == OPEN and now - h.opened_at >= h.breaker.cooldown):
                return True
            if h.state == HALF_OPEN and not h.probing:
                return True
        return False
