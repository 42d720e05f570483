"""The record of one request as it moves through the stages.

Each stage reads what the earlier ones wrote and adds its own part; the ledger stores the
finished record. It never holds message contents or detected values, so it is safe to log.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling: a virtual key (or the anonymous local user when auth is off)."""

    key_id: str
    name: str = ""
    team: str | None = None
    allowed_models: tuple[str, ...] | None = None  # None: every route
    is_admin: bool = False
    team_models: tuple[str, ...] | None = None  # its team's scopes; None: every route

    def may_use(self, route: str) -> bool:
        """Whether this key's model scopes, and its team's, both cover `route`."""
        return covers(self.allowed_models, route) and covers(self.team_models, route)


def covers(patterns: tuple[str, ...] | None, route: str) -> bool:
    """Whether model scopes cover `route`: each a name, or a `*?[` pattern; None: every route."""
    if patterns is None:
        return True
    return any(p == route or (any(c in p for c in "*?[") and fnmatch.fnmatchcase(route, p))
               for p in patterns)


ANONYMOUS = Principal(key_id="anonymous", name="anonymous")


@dataclass(slots=True, frozen=True)
class Target:
    """One provider + upstream model that a route may send a request to."""

    provider: str
    model: str
    vendor: str
    ownership: Literal["in-house", "external"]
    weight: float = 1.0

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(slots=True)
class Finding:
    """A guard detection: what class, which detector, where (never the value itself)."""

    cls: str  # secret | personal | confidential | code | domain
    detector: str  # e.g. aws_access_key, email, iban, term, domain:search
    start: int
    end: int
    message_index: int = -1  # which message (or -1 when scanning a plain text)
    domain: str | None = None
    # Where in the request body (`guard.view`): ("messages", 1, "content"), ("user",)…;
    # start and end index the string there. () for a plain text.
    path: tuple[Any, ...] = ()


@dataclass(slots=True)
class Decision:
    """A policy or routing decision, with the rule or reason behind it (audited)."""

    stage: str  # policy | routing | shadow
    action: str  # allow | redact | in-house-only | block | route
    reason: str
    rule: str | None = None
    cls: str | None = None
    detector: str | None = None
    target: str | None = None


@dataclass(slots=True)
class Attempt:
    """One call to one target."""

    target: str
    vendor: str
    ownership: str
    outcome: str  # ok | error class: timeout, connect, rate_limited, upstream_5xx, ...
    latency_ms: float
    status: int | None = None
    error: str | None = None


@dataclass(slots=True)
class RequestContext:
    request_id: str = field(default_factory=lambda: "req_" + uuid.uuid4().hex[:24])
    started_at: float = field(default_factory=time.time)
    endpoint: str = "chat.completions"
    principal: Principal = ANONYMOUS
    route: str | None = None  # the public model name the client asked for
    stream: bool = False
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    served_by: Target | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    status: int = 200
    error_code: str | None = None
    latency_ms: float = 0.0
    router_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
