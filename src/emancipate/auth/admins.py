"""Admin identities: keys for the admin API and the dashboard, each with a role.

Roles, each including the one before it:

    viewer    reads: report, usage, keys and teams lists, request explorer, policy, targets
    operator  also manages virtual keys (create, rotate, revoke) and teams
    admin     also manages admin identities

An admin key is ``sk-em-admin-`` followed by 32 random bytes, stored as HMAC-SHA256 under its
own domain-separation key (``auth/keys.py`` says why a fast hash is right for such secrets).
The key configured in ``auth.admin_key_env`` needs no row and keeps the role admin.

Exceptions: `AdminNotFound` (no identity with this id); a bad value is a `ValueError` whose
text starts with the field name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import Engine, func, select, update

from emancipate.auth.config import Role
from emancipate.auth.keys import MAX_NAME
from emancipate.ledger import schema

ROLES: tuple[Role, ...] = get_args(Role)  # in rank order: each includes the ones before
ADMIN_KEY_PREFIX = "sk-em-admin-"
_DOMAIN = b"emancipate admin key v1"


def rank(role: Role) -> int:
    return ROLES.index(role)


def hash_admin_secret(secret: str) -> str:
    return hmac.new(_DOMAIN, secret.encode("utf-8"), hashlib.sha256).hexdigest()


class AdminNotFound(LookupError):
    """No admin identity with this id."""


@dataclass(frozen=True, slots=True)
class AdminInfo:
    """An admin identity's public record (never its secret or hash)."""

    id: str
    name: str
    role: Role
    hint: str
    created_at: datetime | None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def may(self, needed: Role) -> bool:
        return not self.revoked and rank(self.role) >= rank(needed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["object"] = "admin"
        for name in ("created_at", "revoked_at"):
            out[name] = _aware(out[name]).isoformat() if out[name] is not None else None
        out["status"] = "revoked" if self.revoked else "active"
        return out


# The key of `auth.admin_key_env`: role admin, no database row (backwards compatible).
CONFIGURED_ADMIN = AdminInfo(id="admin", name="configured admin key", role="admin",
                             hint="", created_at=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _info(row: Any) -> AdminInfo:
    m = row._mapping
    return AdminInfo(id=m["id"], name=m["name"], role=m["role"], hint=m["hint"],
                     created_at=_aware(m["created_at"]),
                     revoked_at=_aware(m["revoked_at"]) if m["revoked_at"] is not None else None)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"role: give one of {', '.join(ROLES)}")
    return role


class AdminStore:
    """Admin identity rows in the gateway's database (synchronous)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, role: str) -> tuple[AdminInfo, str]:
        """A new admin identity and its secret (shown this once)."""
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise ValueError(f"name: give a name of 1 to {MAX_NAME} characters")
        checked = check_role(role)
        secret = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
        row: dict[str, Any] = {
            "id": "adm_" + secrets.token_hex(8), "secret_hash": hash_admin_secret(secret),
            "hint": "..." + secret[-4:], "name": name, "role": checked,
            "created_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(schema.admins.insert(), row)
        info = self.get(row["id"])
        assert info is not None
        return info, secret

    def get(self, admin_id: str) -> AdminInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.admins).where(schema.admins.c.id == admin_id)
                               ).first()
        return _info(row) if row is not None else None

    def list(self, include_revoked: bool = True) -> list[AdminInfo]:
        stmt = select(schema.admins).order_by(schema.admins.c.created_at, schema.admins.c.id)
        if not include_revoked:
            stmt = stmt.where(schema.admins.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(stmt)]

    def lookup_hash(self, h: str) -> AdminInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.admins).where(schema.admins.c.secret_hash == h)
                               ).first()
        return _info(row) if row is not None else None

    def active(self) -> int:
        """How many identities are not revoked."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.admins)
                                    .where(schema.admins.c.revoked_at.is_(None))).scalar() or 0)

    def revoke(self, admin_id: str) -> AdminInfo:
        """Revoke for good (idempotent: revoking twice keeps the first date)."""
        with self.engine.begin() as conn:
            conn.execute(update(schema.admins)
                         .where(schema.admins.c.id == admin_id,
                                schema.admins.c.revoked_at.is_(None))
                         .values(revoked_at=datetime.now(UTC)))
        info = self.get(admin_id)
        if info is None:
            raise AdminNotFound(admin_id)
        return info
