"""`GET /admin/report?since=30d&format=json|html`, for an admin key of role viewer or above.

The report is built in a worker thread (the event loop never waits on the database).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from emancipate.ledger.store import parse_since
from emancipate.protocol import OpenAIError

if TYPE_CHECKING:
    from emancipate.api.guard import AdminGuard
    from emancipate.gateway import Gateway


def report_routes(gateway: Gateway, guard: AdminGuard) -> list[BaseRoute]:
    """The report endpoint; mounted by ``api.admin.routes``."""
    from emancipate.report import build_report, render_html

    async def report(request: Request) -> Response:
        await guard.require(request.headers.get("authorization"), "viewer")
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "html"):
            raise OpenAIError(400, "'format' must be json or html.", param="format",
                              code="invalid_value")
        raw = request.query_params.get("since", "30d")
        try:
            since = None if raw.strip().lower() == "all" else parse_since(raw)
        except ValueError as exc:
            raise OpenAIError(400, f"Invalid {exc}.", param="since",
                              code="invalid_value") from None
        engine = gateway.stages.ledger.engine
        data: dict[str, Any] = await asyncio.to_thread(build_report, engine, since, gateway.cfg)
        if fmt == "html":
            return HTMLResponse(await asyncio.to_thread(render_html, data))
        return Response(orjson.dumps(data), media_type="application/json")

    return [Route("/admin/report", report, methods=["GET"])]
