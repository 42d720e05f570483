"""Faults a simulated vendor can inject, and the thread-safe plan that decides when they fire.

Each fault mirrors a way real vendors fail, so resilience code is proven against the failure
itself rather than against a mock of it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


class Fault:
    """Base class of every injectable fault."""


@dataclass(frozen=True)
class RateLimit(Fault):
    """429 with a vendor-shaped error body; `Retry-After` (seconds) when `retry_after` is set."""

    retry_after: float | None = None


@dataclass(frozen=True)
class Status(Fault):
    """An error status (500/502/503, 529 overloaded, or a 4xx) with a vendor-shaped body."""

    code: int
    retry_after: float | None = None


@dataclass(frozen=True)
class HangBeforeHeaders(Fault):
    """Wait `seconds` before sending anything, then answer normally (a stalled vendor)."""

    seconds: float


@dataclass(frozen=True)
class HangMidStream(Fault):
    """Send `after_events` stream events, stall `seconds`, then finish the stream.

    On a non-streaming answer: headers go out, then the stall, then the body.
    """

    after_events: int
    seconds: float


@dataclass(frozen=True)
class Reset(Fault):
    """Reset the TCP connection (RST) before any response byte is sent."""


@dataclass(frozen=True)
class GarbageJSON(Fault):
    """A 200 whose body is not JSON; on a stream, event number `after_events` is not JSON.

    After the garbage event the stream ends cleanly (no terminator event).
    """

    after_events: int = 0


@dataclass(frozen=True)
class CutStream(Fault):
    """Send `after_events` stream events then close the connection mid-body (no terminator).

    On a non-streaming answer: headers and half the body, then the connection closes.
    """

    after_events: int = 0


@dataclass(frozen=True)
class SlowTokens(Fault):
    """Sleep `delay` seconds between stream events (non-streaming: `delay` per token piece)."""

    delay: float


@dataclass(frozen=True)
class ErrorEvent(Fault):
    """Send `after_events` events, then the vendor's in-stream error event, then end cleanly.

    This is how vendors report overload once a stream has started (Anthropic `event: error`,
    OpenAI `data: {"error": ...}`). On a non-streaming request it behaves as `Status(code)`.
    """

    after_events: int = 0
    code: int = 500


@dataclass(frozen=True)
class HugeBody(Fault):
    """A 200 whose answer carries `size` more bytes: a `padding` field in the JSON body, or, on
    a stream, one extra event before the first. With `chunked` the body has no Content-Length
    (its size is known only by reading it)."""

    size: int
    chunked: bool = False


@dataclass
class _Rule:
    fault: Fault
    remaining: int | None
    probability: float | None


class FaultPlan:
    """Ordered injection rules; the first rule that fires decides a request's fate."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._rng = random.Random(seed)

    def add(self, fault: Fault, times: int | None, probability: float | None) -> None:
        if not isinstance(fault, Fault):
            raise TypeError(f"not a Fault: {fault!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self._lock:
            self._rules.append(_Rule(fault, times, probability))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pick(self) -> Fault | None:
        """The fault for the request being served now (or None), consuming `times` budgets."""
        with self._lock:
            for rule in self._rules:
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule.fault
        return None
