"""Operator endpoints under /admin, all behind the admin key.

Target health lives here; keys, usage and request paths come from the auth stage, the
independence report and the dashboard from their own packages.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emancipate.auth.admin import admin_routes, check_admin
from emancipate.gateway import Gateway
from emancipate.protocol import OpenAIError


def routes(gateway: Gateway) -> list[BaseRoute]:
    env = gateway.cfg.auth.admin_key_env

    async def targets(request: Request) -> Response:
        try:
            check_admin(env, request.headers.get("authorization"))
        except OpenAIError as err:
            return JSONResponse(err.body(), status_code=err.status)
        return JSONResponse({"targets": gateway.health.snapshot()})

    mounted: list[BaseRoute] = [Route("/admin/targets", targets, methods=["GET"])]
    mounted.extend(admin_routes(gateway.stages.keys, gateway.stages.ledger))
    from emancipate.dashboard import dashboard_routes
    from emancipate.report.api import report_routes

    mounted.extend(report_routes(gateway))
    mounted.extend(dashboard_routes(gateway))
    return mounted
