"""Teams: a name with allowed models, budgets and rate limits that its keys inherit.

A key belongs to the team its ``team`` label names. When a team of that name exists, every
request of the key is checked against the key's own limits *and* the team's, on counters the
team's keys share (``auth/limits.py``): the stricter refuses. A label with no team object
limits nothing, as before teams existed; deleting a team lifts its limits and keeps the labels.

Exceptions: `TeamNotFound` (no team of that name), `TeamExists` (create on a taken name);
a bad value is a `ValueError` whose text starts with the field name (as for keys).
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from emancipate.auth.keys import _REFUSED, MAX_NAME, TeamInfo, check_limits, team_from_row
from emancipate.ledger import schema

# Fields of a team an update may change; None clears a limit.
TEAM_FIELDS = ("models", "budget_day", "budget_month", "rpm", "tpm")


class TeamNotFound(LookupError):
    """No team with this name."""


class TeamExists(ValueError):
    """A team with this name already exists."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValueError(f"name: give a team name of 1 to {MAX_NAME} characters")


class TeamStore:
    """Team rows in the gateway's database (synchronous: CLI, admin API via a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, *, models: list[str] | None = None,
               budget_day: float | None = None, budget_month: float | None = None,
               rpm: int | None = None, tpm: int | None = None) -> TeamInfo:
        _check_name(name)
        check_limits(models, budget_day, budget_month, rpm, tpm)
        now = datetime.now(UTC)
        row = {"name": name, "allowed_models": _models(models), "budget_day": budget_day,
               "budget_month": budget_month, "rpm": rpm, "tpm": tpm, "created_at": now,
               "updated_at": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(schema.teams.insert(), row)
        except IntegrityError:
            raise TeamExists(name) from None
        return self._must_get(name)

    def get(self, name: str) -> TeamInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.teams).where(schema.teams.c.name == name)).first()
        return team_from_row(row) if row is not None else None

    def list(self) -> list[TeamInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.teams).order_by(schema.teams.c.name))
            return [team_from_row(r) for r in rows]

    def update(self, name: str, changes: dict[str, Any]) -> TeamInfo:
        """Change some of `TEAM_FIELDS` (a None value removes that limit)."""
        current = self.get(name)
        if current is None:
            raise TeamNotFound(name)
        merged = {f: changes.get(f, getattr(current, f)) for f in TEAM_FIELDS}
        check_limits(**merged)
        values = {f: merged[f] for f in TEAM_FIELDS if f != "models"}
        values["allowed_models"] = _models(merged["models"])
        with self.engine.begin() as conn:
            conn.execute(update(schema.teams).where(schema.teams.c.name == name)
                         .values(**values, updated_at=datetime.now(UTC)))
        return self._must_get(name)

    def delete(self, name: str) -> TeamInfo:
        """Remove the team (its keys keep their label, and lose the team's limits)."""
        current = self.get(name)
        if current is None:
            raise TeamNotFound(name)
        with self.engine.begin() as conn:
            conn.execute(delete(schema.teams).where(schema.teams.c.name == name))
        return current

    def members(self, name: str) -> int:
        """How many keys carry this team label (revoked ones included)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.keys)
                                    .where(schema.keys.c.team == name)).scalar() or 0)

    def spend(self, name: str, day: str) -> tuple[float, float]:
        """The team's recorded cost on `day` (UTC) and in that day's month, all keys together
        (through the `(team, day)` index of migration 0007)."""
        r = schema.requests
        stmt = select(
            func.coalesce(func.sum(case((r.c.day == day, r.c.cost), else_=0.0)), 0.0),
            func.coalesce(func.sum(r.c.cost), 0.0),
        ).where(and_(r.c.team == name, r.c.day >= day[:8] + "01", r.c.day <= day))
        with self.engine.connect() as conn:
            d, m = conn.execute(stmt).one()
        return float(d), float(m)

    def recent_use(self, name: str, since: float) -> builtins.list[tuple[float, int]]:
        """(epoch, tokens) of the team's admitted requests since `since`, oldest first: what
        its buckets held when the previous process stopped (as `KeyStore.recent_use`)."""
        r = schema.requests
        start = datetime.fromtimestamp(since, UTC)
        stmt = (select(r.c.created_at, r.c.prompt_tokens + r.c.completion_tokens)
                .where(r.c.team == name, r.c.day >= start.strftime("%Y-%m-%d"),
                       r.c.created_at >= start,
                       or_(r.c.error_code.is_(None), r.c.error_code.notin_(_REFUSED)))
                .order_by(r.c.created_at))
        with self.engine.connect() as conn:
            return [(_epoch(t), int(n or 0)) for t, n in conn.execute(stmt)]

    def _must_get(self, name: str) -> TeamInfo:
        info = self.get(name)
        if info is None:
            raise TeamNotFound(name)
        return info


def _models(models: list[str] | None) -> str | None:
    return json.dumps(list(models)) if models is not None else None


def _epoch(value: datetime) -> float:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return value.timestamp()
