"""Prometheus metrics: one registry per gateway, so tests can run several in one process.

Label values come only from the configuration (route, target, provider and vendor names,
guard classes, our own status codes), never from what a client sent: a request for a model
that is not configured counts under the route ``other``. Anything else would let any caller
grow the exposition without bound, and put request text on the scrape (issue 17, §3).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from emancipate.context import Attempt, RequestContext
from emancipate.health import HealthBoard
from emancipate.providers import Provider

OTHER = "other"  # the one label value for every name the configuration does not know
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, health: HealthBoard, providers: dict[str, Provider],
                 routes: Collection[str]) -> None:
        self.health = health
        self.providers = providers
        self.routes = frozenset(routes)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "emancipate_requests", "Requests answered", ["route", "vendor", "ownership", "status"],
            registry=r)
        self.attempts = Counter(
            "emancipate_attempts", "Upstream attempts", ["target", "outcome"], registry=r)
        self.latency = Histogram(
            "emancipate_request_seconds", "Request latency", ["route"], buckets=_BUCKETS,
            registry=r)
        self.tokens = Counter(
            "emancipate_tokens", "Tokens", ["vendor", "ownership", "kind"], registry=r)
        self.guard_findings = Counter(
            "emancipate_guard_findings", "Leak-guard findings", ["cls"], registry=r)
        self.policy_blocks = Counter(
            "emancipate_policy_blocked", "Requests blocked by policy", registry=r)
        self.breaker = Gauge(
            "emancipate_target_up", "1 when the target's circuit is closed", ["target", "state"],
            registry=r)
        self.inflight = Gauge(
            "emancipate_target_inflight", "Requests in flight per target", ["target"], registry=r)
        self.provider_stats = Gauge(
            "emancipate_provider_stat", "Adapter counters (embedded model queue, tokens...)",
            ["provider", "stat"], registry=r)

        # Labelled children, cached per label set: `labels()` validates and locks each time.
        self._attempt_children: dict[tuple[str, str], Any] = {}
        self._request_children: dict[tuple[str, str, str, int], tuple[Any, Any, Any, Any]] = {}

    def attempt(self, attempt: Attempt) -> None:
        key = (attempt.target, attempt.outcome)
        child = self._attempt_children.get(key)
        if child is None:
            child = self._attempt_children[key] = self.attempts.labels(*key)
        child.inc()

    def request(self, ctx: RequestContext) -> None:
        served = ctx.served_by
        vendor = served.vendor if served else "none"
        ownership = served.ownership if served else "none"
        route = ctx.route if ctx.route in self.routes else OTHER
        key = (route, vendor, ownership, ctx.status)
        children = self._request_children.get(key)
        if children is None:  # bounded: configured names × our status codes
            children = self._request_children[key] = (
                self.requests.labels(route, vendor, ownership, str(ctx.status)),
                self.latency.labels(route),
                self.tokens.labels(vendor, ownership, "prompt"),
                self.tokens.labels(vendor, ownership, "completion"),
            )
        requests, latency, prompt, completion = children
        requests.inc()
        latency.observe(ctx.latency_ms / 1000)
        if served:
            prompt.inc(ctx.prompt_tokens)
            completion.inc(ctx.completion_tokens)
        for f in ctx.findings:
            self.guard_findings.labels(f.cls).inc()
        if ctx.error_code == "policy_blocked":
            self.policy_blocks.inc()

    def render(self) -> bytes:
        for snap in self.health.snapshot():
            for state in ("closed", "open", "half-open"):
                self.breaker.labels(snap["target"], state).set(1 if snap["state"] == state else 0)
            self.inflight.labels(snap["target"]).set(snap["inflight"])
        for name, provider in self.providers.items():
            for stat, value in provider.stats().items():
                self.provider_stats.labels(name, stat).set(value)
        return generate_latest(self.registry)
