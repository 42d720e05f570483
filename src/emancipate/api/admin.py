"""Operator endpoints: target health now; keys, usage and reports join as their stages land."""

from __future__ import annotations

import hmac
import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emancipate.gateway import Gateway
from emancipate.protocol import OpenAIError


def require_admin(gateway: Gateway, request: Request) -> None:
    """The admin key comes from the environment; compared in constant time."""
    expected = os.environ.get(gateway.cfg.auth.admin_key_env)
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    if not expected:
        raise OpenAIError(
            403, f"Admin endpoints are disabled: set {gateway.cfg.auth.admin_key_env} to enable "
            "them.", type="permission_error", code="admin_disabled")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise OpenAIError(401, "Invalid admin key: send 'Authorization: Bearer <admin key>'.",
                          type="authentication_error", code="invalid_admin_key")


def routes(gateway: Gateway) -> list[Route]:
    async def targets(request: Request) -> Response:
        try:
            require_admin(gateway, request)
        except OpenAIError as err:
            return JSONResponse(err.body(), status_code=err.status)
        return JSONResponse({"targets": gateway.health.snapshot()})

    return [Route("/admin/targets", targets, methods=["GET"])]
