"""Cross-origin access for browser apps (`server.cors`), on `/v1/*` only.

Off by default: `create_app` wraps the application only when `server.cors` is set, so the
hot path (`POST /v1/chat/completions`, dispatched before Starlette) costs nothing more when
it is off. When on, Starlette's `CORSMiddleware` answers preflight `OPTIONS` requests and
adds the `Access-Control-*` headers to every answer of `/v1/*`, streamed ones included
(headers are added to the response start; the body passes through untouched).

Admin, metrics and health paths get no CORS headers: a web page on another origin has no
business with them, and the dashboard is served from the gateway's own origin.

A request from an origin that is not allowed is still answered (CORS is enforced by the
browser, which then hides the answer from the page); a preflight from it is a 400 without
`Access-Control-Allow-Origin`, so the browser never sends the real request.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from emancipate.config import CorsConfig

API_PREFIX = "/v1/"


class CrossOrigin:
    """`app` with CORS on the `/v1/*` paths, as `server.cors` says."""

    def __init__(self, app: ASGIApp, cors: CorsConfig) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=cors.allow_origins, allow_methods=cors.allow_methods,
            allow_headers=cors.allow_headers, expose_headers=cors.expose_headers,
            allow_credentials=cors.allow_credentials, max_age=cors.max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
