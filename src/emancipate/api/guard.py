"""The one admin guard: every endpoint under /admin (and the admin views of /readyz and
/metrics) names the role it needs, and this checks it.

    guard = AdminGuard(access)
    admin = await guard.require(request.headers.get("authorization"), "operator")

Role matrix (`auth/admins.py`): viewer reads, operator also manages virtual keys and teams,
admin also manages admin identities. The key in ``auth.admin_key_env`` is an admin.

Errors, all OpenAI-shaped:
    401 invalid_admin_key   no key, an unknown key, a revoked admin key, or an expired or
                            forged dashboard session (`auth/oidc.py`)
    403 admin_disabled      no admin key configured, no admin identity created, no OIDC
    403 insufficient_role   a known admin key whose role is below the one needed; the message
                            names the role needed and how to get it
    503 auth_unavailable    the database failed, or did not answer the identity lookup in time
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from emancipate.auth.admins import AdminInfo, Role
from emancipate.protocol import OpenAIError

if TYPE_CHECKING:
    from emancipate.auth.access import Access
    from emancipate.auth.oidc import OIDCLogin

log = logging.getLogger("emancipate.api")

Handler = Callable[[Request, AdminInfo], Awaitable[Any]]
ADMIN_STATE = "admin"  # request.state attribute holding the checked AdminInfo


def _invalid(message: str) -> OpenAIError:
    return OpenAIError(401, message, type="authentication_error", code="invalid_admin_key")


class AdminGuard:
    """Who is calling an admin endpoint, and whether their role allows it."""

    def __init__(self, access: Access, oidc: OIDCLogin | None = None) -> None:
        self.access = access
        self.env = access.auth.admin_key_env
        self.oidc = oidc  # dashboard sessions from an OIDC log-in, when configured

    async def require(self, authorization: str | None, needed: Role) -> AdminInfo:
        """The admin identity behind the header, if its role is `needed` or above."""
        secret = _bearer(authorization)
        if not secret:
            await self._refuse_if_disabled()
            raise _invalid("Missing admin key: send 'Authorization: Bearer <admin key>'.")
        try:
            admin = await self._identity(secret)
        except Exception as exc:  # the database failed or did not answer: say so, not a 500
            log.error("admin key lookup failed: %s", exc.__class__.__name__)
            raise OpenAIError(503, "The admin key store did not answer in time; retry "
                              "shortly (the gateway logs say why).", type="server_error",
                              code="auth_unavailable", headers={"retry-after": "1"}) from None
        if admin is None:
            await self._refuse_if_disabled()
            raise _invalid("Invalid admin key: send 'Authorization: Bearer <admin key>' with "
                           f"the key in {self.env} or one made by `emancipate admin create`"
                           + (" (a dashboard session may have expired: log in again)."
                              if self.oidc is not None else "."))
        if admin.revoked:
            raise _invalid("This admin key was revoked; ask an admin for a new one.")
        if not admin.may(needed):
            raise OpenAIError(
                403, f"This admin key ('{admin.name}') has the role '{admin.role}'; this "
                f"endpoint needs the role '{needed}' or above. Ask an admin for such a key "
                f"(`emancipate admin create --role {needed}`).",
                type="permission_error", code="insufficient_role")
        return admin

    async def _identity(self, secret: str) -> AdminInfo | None:
        if self.oidc is not None and not secret.startswith("sk-"):
            session = self.oidc.session(secret)  # a signed token: no database read
            if session is not None:
                return session
        return await self.access.admin_identity(secret)

    async def allows(self, authorization: str | None, needed: Role) -> bool:
        """Whether the header carries an admin key of role `needed` or above (no error)."""
        try:
            await self.require(authorization, needed)
        except OpenAIError:
            return False
        return True

    async def _refuse_if_disabled(self) -> None:
        """403 admin_disabled when nobody could ever pass: no configured admin key and no
        admin identity in the database."""
        if os.environ.get(self.env) or self.oidc is not None:
            return
        try:
            active = await self.access.admin_count()
        except Exception:  # the database is down: the 401 that follows is accurate enough
            log.warning("could not count admin identities", exc_info=True)
            return
        if not active:
            raise OpenAIError(
                403, f"Admin endpoints are disabled: set {self.env}, or create an admin key "
                "with `emancipate admin create --name NAME --role admin`.",
                type="permission_error", code="admin_disabled")

    def guarded(self, needed: Role, handler: Handler, status: int = 200
                ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint answering `handler`'s value as JSON, after checking the role."""

        async def endpoint(request: Request) -> Response:
            admin = await self.require(request.headers.get("authorization"), needed)
            body = await handler(request, admin)  # an OpenAIError is rendered by `api.errors`
            if isinstance(body, Response):
                return body
            return Response(orjson.dumps(body), status_code=status,
                            media_type="application/json")

        return endpoint


def _bearer(authorization: str | None) -> str:
    header = authorization or ""
    return header[7:].strip() if header.lower().startswith("bearer ") else ""

