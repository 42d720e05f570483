"""Virtual keys: created, listed, rotated and revoked; stored as a hash, shown once.

A key is ``sk-em-`` followed by 32 random bytes (URL-safe base64). It is stored as
HMAC-SHA256 under a fixed, public domain-separation key: a fast hash is the right tool for
secrets with 256 bits of entropy, since nobody can enumerate 2^256 candidates whatever the
hash costs. Slow password hashes (bcrypt, argon2) exist to protect low-entropy human
passwords; here they would add tens of milliseconds of CPU to every request for no security
gain. Lookup is by the hash itself (a unique index), so no timing leak about the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

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

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.budget_day, self.budget_month)

    def principal(self) -> Principal:
        return Principal(
            key_id=self.id, name=self.name, team=self.team,
            allowed_models=tuple(self.models) if self.models is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("created_at", "revoked_at", "rotated_at"):
            value = out[name]
            out[name] = _aware(value).isoformat() if value is not None else None
        out["status"] = "revoked" if self.revoked else "active"
        return out


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _info(row: Any) -> KeyInfo:
    m = row._mapping
    models = json.loads(m["allowed_models"]) if m["allowed_models"] is not None else None
    return KeyInfo(
        id=m["id"], name=m["name"], hint=m["hint"], team=m["team"], models=models,
        budget_day=m["budget_day"], budget_month=m["budget_month"], rpm=m["rpm"], tpm=m["tpm"],
        created_at=_aware(m["created_at"]),
        revoked_at=_aware(m["revoked_at"]) if m["revoked_at"] is not None else None,
        rotated_at=_aware(m["rotated_at"]) if m["rotated_at"] is not None else None,
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
        rpm: int | None = None, tpm: int | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key and its secret (the only time the secret exists outside the client)."""
        _check(name, team, models, budget_day, budget_month, rpm, tpm)
        secret = new_secret()
        row = {
            "id": "key_" + secrets.token_hex(8),
            "secret_hash": hash_secret(secret),
            "hint": _hint(secret),
            "name": name,
            "team": team or None,
            "allowed_models": json.dumps(list(models)) if models is not None else None,
            "budget_day": budget_day, "budget_month": budget_month, "rpm": rpm, "tpm": tpm,
            "created_at": datetime.now(UTC),
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
        stmt = select(schema.keys).order_by(schema.keys.c.created_at, schema.keys.c.id)
        if not include_revoked:
            stmt = stmt.where(schema.keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(stmt)]

    def lookup(self, secret: str) -> KeyInfo | None:
        """The key this secret belongs to (revoked ones included: the caller says why)."""
        if not secret.startswith(KEY_PREFIX):
            return None
        return self.lookup_hash(hash_secret(secret))

    def lookup_hash(self, h: str) -> KeyInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.keys).where(schema.keys.c.secret_hash == h)
            ).first()
        return _info(row) if row is not None else None

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
