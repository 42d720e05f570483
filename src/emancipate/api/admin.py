"""Operator endpoints under /admin, each behind the admin guard with the role it needs.

Target health lives here; keys, teams, admin identities, usage and request paths in
``api/keys.py``; the independence report and the dashboard in their own packages, given the
same guard. Role matrix: ``docs/ledger-and-keys.md`` ("Roles").
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from emancipate.api.guard import AdminGuard
from emancipate.api.keys import admin_routes
from emancipate.auth.admins import AdminInfo
from emancipate.gateway import Gateway


def routes(gateway: Gateway, guard: AdminGuard) -> list[BaseRoute]:
    async def targets(request: Request, admin: AdminInfo) -> Any:
        return {"targets": gateway.health.snapshot()}

    mounted: list[BaseRoute] = [
        Route("/admin/targets", guard.guarded("viewer", targets), methods=["GET"])]
    mounted.extend(admin_routes(gateway.stages.keys, gateway.stages.ledger, guard))
    from emancipate.dashboard import dashboard_routes
    from emancipate.report.api import report_routes

    mounted.extend(report_routes(gateway, guard))
    mounted.extend(dashboard_routes(gateway, guard))
    return mounted
