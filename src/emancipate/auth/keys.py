"""Virtual keys: created, listed, rotated and revoked; stored as a hash, shown once.

A key is ``sk-em-`` followed by 32 random bytes (URL-safe base64). It is stored as
HMAC-SHA256 under a fixed, public domain-separation key: a fast hash is the right tool for
secrets with 256 bits of entropy, since nobody can enumerate 2^256 candidates whatever the
hash costs. Slow password hashes (bcrypt, argon2) exist to protect low-entropy human
passwords; here they would add tens of milliseconds of CPU to every request for no security
gain. Lookup is by the hash itself (a unique index), so no timing leak about the secret.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update

from emancipate.context import Principal
from emancipate.ledger import schema

KEY_PREFIX = "sk-em-"
_DOMAIN = b"emancipate virtual key v1"

# Upper bounds of a key's attributes: far above any real use, and below what the columns hold
# (PostgreSQL INTEGER is 32-bit: a larger rpm made the insert fail with a 500).
MAX_NAME = 200
MAX_MODELS = 1000  # model names or patterns per key
MAX_RPM = 1_000_000
MAX_TPM = 2_000_000_000
MAX_BUDGET = 1e12  # in the ledger currency
MAX_LIFETIME = timedelta(days=10 * 366)  # the furthest expiry a key may be given


# Error codes of requests the auth stage refused before they took anything from a bucket.
_REFUSED = ("rate_limit_exceeded", "budget_exceeded", "model_not_allowed", "invalid_api_key")


class KeyNotFound(LookupError):
    """No key with this id."""


class KeyRevoked(ValueError):
    """The key was revoked: it cannot be rotated back to life."""


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hmac.new(_DOMAIN, secret.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    budget_day: float | None = None
    budget_month: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.budget_day,
                                           self.budget_month))

    @property
    def has_budget(self) -> bool:
        return self.budget_day is not None or self.budget_month is not None


@dataclass(frozen=True, slots=True)
class TeamInfo:
    """A team's record: the limits every key whose ``team`` is its name inherits."""

    name: str
    models: list[str] | None
    budget_day: float | None
    budget_month: float | None
    rpm: int | None
    tpm: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.budget_day, self.budget_month)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["object"] = "team"
        for name in ("created_at", "updated_at"):
            out[name] = _aware(out[name]).isoformat()
        return out


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key's public record (never its secret or hash)."""

    id: str
    name: str
    hint: str
    team: str | None
    models: list[str] | None
    budget_day: float | None
    budget_month: float | None
    rpm: int | None
    tpm: int | None
    created_at: datetime
    revoked_at: datetime | None
    rotated_at: datetime | None
    expires_at: datetime | None = None
    # The team object named by `team`, when one exists (read with the key, cached with it).
    team_info: TeamInfo | None = field(default=None, compare=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    @property
    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.budget_day, self.budget_month)

    def principal(self) -> Principal:
        team_models = self.team_info.models if self.team_info is not None else None
        return Principal(
            key_id=self.id, name=self.name, team=self.team,
            allowed_models=tuple(self.models) if self.models is not None else None,
            team_models=tuple(team_models) if team_models is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["team_info"]
        for name in ("created_at", "revoked_at", "rotated_at", "expires_at"):
            value = out[name]
            out[name] = _aware(value).isoformat() if value is not None else None
        out["status"] = ("revoked" if self.revoked else "expired" if self.expired()
                         else "active")
        return out


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def team_from_row(row: Any) -> TeamInfo:
    m = row._mapping
    models = json.loads(m["allowed_models"]) if m["allowed_models"] is not None else None
    return TeamInfo(
        name=m["name"], models=models, budget_day=m["budget_day"],
        budget_month=m["budget_month"], rpm=m["rpm"], tpm=m["tpm"],
        created_at=_aware(m["created_at"]), updated_at=_aware(m["updated_at"]),
    )


def _info(row: Any, team: TeamInfo | None = None) -> KeyInfo:
    m = row._mapping
    models = json.loads(m["allowed_models"]) if m["allowed_models"] is not None else None
    return KeyInfo(
        id=m["id"], name=m["name"], hint=m["hint"], team=m["team"], models=models,
        budget_day=m["budget_day"], budget_month=m["budget_month"], rpm=m["rpm"], tpm=m["tpm"],
        created_at=_aware(m["created_at"]),
        revoked_at=_aware(m["revoked_at"]) if m["revoked_at"] is not None else None,
        rotated_at=_aware(m["rotated_at"]) if m["rotated_at"] is not None else None,
        expires_at=_aware(m["expires_at"]) if m["expires_at"] is not None else None,
        team_info=team,
    )


def _hint(secret: str) -> str:
    return "..." + secret[-4:]


class KeyStore:
    """Key rows in the gateway's database (synchronous: CLI, admin API via a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, name: str, *, team: str | None = None, models: list[str] | None = None,
        budget_day: float | None = None, budget_month: float | None = None,
        rpm: int | None = None, tpm: int | None = None, expires_at: datetime | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key and its secret (the only time the secret exists outside the client)."""
        _check(name, team, models, budget_day, budget_month, rpm, tpm)
        if expires_at is not None:
            expires_at = _check_expiry(expires_at)
        secret = new_secret()
        row: dict[str, Any] = {
            "id": "key_" + secrets.token_hex(8),
            "secret_hash": hash_secret(secret),
            "hint": _hint(secret),
            "name": name,
            "team": team or None,
            "allowed_models": json.dumps(list(models)) if models is not None else None,
            "budget_day": budget_day, "budget_month": budget_month, "rpm": rpm, "tpm": tpm,
            "created_at": datetime.now(UTC), "expires_at": expires_at,
        }
        with self.engine.begin() as conn:
            conn.execute(schema.keys.insert(), row)
        info = self.get(row["id"])
        assert info is not None
        return info, secret

    def get(self, key_id: str) -> KeyInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.keys).where(schema.keys.c.id == key_id)).first()
        return _info(row) if row is not None else None

    def list(self, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, or (``include_revoked=False``) only those neither revoked nor expired."""
        stmt = select(schema.keys).order_by(schema.keys.c.created_at, schema.keys.c.id)
        if not include_revoked:  # nor expired: the keys that still work
            stmt = stmt.where(schema.keys.c.revoked_at.is_(None),
                              or_(schema.keys.c.expires_at.is_(None),
                                  schema.keys.c.expires_at > datetime.now(UTC)))
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(stmt)]

    def lookup(self, secret: str) -> KeyInfo | None:
        """The key this secret belongs to (revoked ones included: the caller says why)."""
        if not secret.startswith(KEY_PREFIX):
            return None
        return self.lookup_hash(hash_secret(secret))

    def lookup_hash(self, h: str) -> KeyInfo | None:
        """The key with this hash and its team object (if its team label names one)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.keys).where(schema.keys.c.secret_hash == h)
            ).first()
            if row is None:
                return None
            team = row._mapping["team"]
            team_row = conn.execute(
                select(schema.teams).where(schema.teams.c.name == team)
            ).first() if team else None
        return _info(row, team_from_row(team_row) if team_row is not None else None)

    def recent_use(self, key_id: str, since: float) -> builtins.list[tuple[float, int]]:
        """(epoch, tokens) of the key's requests since `since`, oldest first, that passed
        admission: what its rate-limit buckets held when the previous process stopped.

        Read from the ledger's `requests` table (through its `(key_id, day)` index); requests
        refused at admission consumed nothing and are left out.
        """
        r = schema.requests
        start = datetime.fromtimestamp(since, UTC)
        stmt = (select(r.c.created_at, r.c.prompt_tokens + r.c.completion_tokens)
                .where(r.c.key_id == key_id, r.c.day >= start.strftime("%Y-%m-%d"),
                       r.c.created_at >= start,
                       or_(r.c.error_code.is_(None), r.c.error_code.notin_(_REFUSED)))
                .order_by(r.c.created_at))
        with self.engine.connect() as conn:
            return [(_aware(t).timestamp(), int(n or 0)) for t, n in conn.execute(stmt)]

    def rotate(self, key_id: str) -> tuple[KeyInfo, str]:
        """A new secret for the same key (scopes, limits and spend kept); the old one dies."""
        secret = new_secret()
        with self.engine.begin() as conn:
            current = conn.execute(
                select(schema.keys.c.revoked_at).where(schema.keys.c.id == key_id)
            ).first()
            if current is None:
                raise KeyNotFound(key_id)
            if current[0] is not None:
                raise KeyRevoked(key_id)
            conn.execute(
                update(schema.keys).where(schema.keys.c.id == key_id).values(
                    secret_hash=hash_secret(secret), hint=_hint(secret),
                    rotated_at=datetime.now(UTC),
                )
            )
        info = self.get(key_id)
        assert info is not None
        return info, secret

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke for good (idempotent: revoking twice keeps the first date)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.keys)
                .where(schema.keys.c.id == key_id, schema.keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        info = self.get(key_id)
        if info is None:
            raise KeyNotFound(key_id)
        return info


def _check(name: str, team: str | None, models: list[str] | None, budget_day: float | None,
           budget_month: float | None, rpm: int | None, tpm: int | None) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"name: give a name of 1 to {MAX_NAME} characters")
    if team is not None and (not isinstance(team, str) or len(team) > MAX_NAME):
        raise ValueError(f"team: give a team name of at most {MAX_NAME} characters")
    check_limits(models, budget_day, budget_month, rpm, tpm)


def check_limits(models: list[str] | None, budget_day: float | None,
                 budget_month: float | None, rpm: int | None, tpm: int | None) -> None:
    """ValueError naming the first field out of range (shared by keys and teams)."""
    if models is not None and (
            not isinstance(models, list) or len(models) > MAX_MODELS
            or not all(isinstance(m, str) and 0 < len(m) <= MAX_NAME for m in models)):
        raise ValueError(f"models: give a list of at most {MAX_MODELS} model names (or "
                         "patterns such as 'gpt-*')")
    for label, value in (("budget_day", budget_day), ("budget_month", budget_month)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 <= value <= MAX_BUDGET):
            raise ValueError(f"{label}: give an amount from 0 to {MAX_BUDGET:g} in the ledger "
                             "currency")
    for label, value, top in (("rpm", rpm, MAX_RPM), ("tpm", tpm, MAX_TPM)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= top):
            raise ValueError(f"{label}: give a whole number from 1 to {top}")


_DURATION = re.compile(r"\s*(\d{1,9})\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def expiry_in(text: str | int, now: datetime | None = None) -> datetime:
    """The instant a duration from now ends: ``90d``, ``12h``, ``30m``, ``2w``, or seconds."""
    match = _DURATION.fullmatch(str(text))
    if match is None or isinstance(text, bool):
        raise ValueError("expires_in: give a duration such as 30d, 12h, 45m, 2w or a number "
                         "of seconds")
    seconds = int(match[1]) * _UNITS[match[2]]
    if not 0 < seconds <= MAX_LIFETIME.total_seconds():
        raise ValueError(f"expires_in: give a duration from 1 s to {MAX_LIFETIME.days} days")
    return (now or datetime.now(UTC)) + timedelta(seconds=seconds)


def expiry_at(text: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when it names no offset)."""
    try:
        return _aware(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        raise ValueError("expires_at: give an ISO 8601 date or date-time such as "
                         "2026-12-31 or 2026-12-31T18:00:00+01:00") from None


def _check_expiry(expires_at: datetime) -> datetime:
    expires_at = _aware(expires_at)
    now = datetime.now(UTC)
    if expires_at <= now:
        raise ValueError("expires_at: give an instant in the future")
    if expires_at > now + MAX_LIFETIME:
        raise ValueError(f"expires_at: give an instant within {MAX_LIFETIME.days} days")
    return expires_at
