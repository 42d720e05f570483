"""Dashboard log-in with OpenID Connect (``auth.oidc``): the three browser-facing endpoints.

    GET /admin/oidc/config     {"enabled": bool}: whether the dashboard shows "Log in with SSO"
    GET /admin/oidc/login      302 to the provider (authorization code, PKCE S256)
    GET /admin/oidc/callback   303 to /admin/dashboard#session=<token>, or an OpenAI-shaped error

The flow's state, nonce and PKCE verifier travel in an HttpOnly, SameSite=Lax cookie scoped to
/admin/oidc and signed with the session key, so any replica can finish a log-in another one
started. The session token goes back in the URL fragment, which browsers never send to a
server, and the page moves it to ``sessionStorage`` at once (`auth/oidc.py`).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from emancipate.auth.oidc import FLOW_SECONDS, OIDCError, OIDCLogin
from emancipate.protocol import OpenAIError

log = logging.getLogger("emancipate.api")

COOKIE = "em_oidc_flow"
COOKIE_PATH = "/admin/oidc"


def _refusal(exc: OIDCError) -> OpenAIError:
    kind = {400: "invalid_request_error", 401: "authentication_error",
            403: "permission_error"}.get(exc.status, "server_error")
    return OpenAIError(exc.status, exc.message, type=kind, code="oidc_failed")


def oidc_routes(login: OIDCLogin | None) -> list[BaseRoute]:
    async def config(request: Request) -> Response:
        return JSONResponse({"enabled": login is not None})

    async def start(request: Request) -> Response:
        if login is None:
            raise OpenAIError(404, "OIDC log-in is not configured (auth.oidc).",
                              code="not_found")
        try:
            url, flow = await login.start()
        except OIDCError as exc:
            log.warning("OIDC log-in could not start: %s", exc.message)
            raise _refusal(exc) from None
        response = RedirectResponse(url, status_code=302)
        response.set_cookie(COOKIE, flow, max_age=FLOW_SECONDS, path=COOKIE_PATH,
                            httponly=True, samesite="lax",
                            secure=login.cfg.redirect_url.startswith("https://"))
        return response

    async def callback(request: Request) -> Response:
        if login is None:
            raise OpenAIError(404, "OIDC log-in is not configured (auth.oidc).",
                              code="not_found")
        q = request.query_params
        if q.get("error"):
            raise _refusal(OIDCError(401, f"The OIDC provider refused the log-in: "
                                      f"{q.get('error')[:100]}."))  # type: ignore[index]
        try:
            token, who = await login.finish(request.cookies.get(COOKIE), q.get("state"),
                                            q.get("code"))
        except OIDCError as exc:
            raise _refusal(exc) from None
        log.info("dashboard log-in through OIDC: %s as %s", who.id, who.role)
        response = RedirectResponse("/admin/dashboard#session=" + token, status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    return [
        Route("/admin/oidc/config", config, methods=["GET"]),
        Route("/admin/oidc/login", start, methods=["GET"]),
        Route("/admin/oidc/callback", callback, methods=["GET"]),
    ]
