"""The operator dashboard: static pages served by the gateway, data from the admin JSON API.

    GET /admin/dashboard               the page (a log-in form until an admin key is given)
    GET /admin/dashboard/static/{f}    its scripts, styles and the vendored Chart.js (no CDN)
    GET /admin/requests?limit=&before= recent requests, newest first (the request explorer)
    GET /admin/policy                  the policy rules and vendor relationships in force

Authentication: the page asks for an admin key, keeps it in ``sessionStorage`` (gone when the
tab closes, never in a cookie, so no CSRF surface) and sends it as ``Authorization: Bearer`` on
every fetch, exactly like any other admin client. The page and its static files hold no data
and are served without a key; every data endpoint checks the key and its role through the
admin guard (``api/guard.py``): the dashboard only reads, so role viewer is enough, and the
page shows who is logged in with which role (``GET /admin/whoami``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import desc, select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from emancipate.protocol import OpenAIError

if TYPE_CHECKING:
    from emancipate.api.guard import AdminGuard
    from emancipate.auth.admins import AdminInfo
    from emancipate.config import GatewayConfig
    from emancipate.gateway import Gateway

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".json": "application/json"}
# The page loads only same-origin scripts; inline scripts and foreign origins are refused.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "cache-control": "no-cache"}
REQUEST_COLUMNS = ("id", "created_at", "key_id", "team", "route", "target", "vendor",
                   "ownership", "status", "error_code", "attempts", "prompt_tokens",
                   "completion_tokens", "cost", "latency_ms", "router_score")


def recent_requests(engine: Any, limit: int = 50, before: str | None = None,
                    status: str | None = None) -> list[dict[str, Any]]:
    """The newest requests (created_at index), optionally older than `before` (ISO time)."""
    from datetime import datetime

    from emancipate.ledger import schema
    from emancipate.ledger.store import _utc

    r = schema.requests
    stmt = select(*[r.c[name] for name in REQUEST_COLUMNS]).order_by(
        desc(r.c.created_at)).limit(limit)
    if before:
        stmt = stmt.where(r.c.created_at < _utc(datetime.fromisoformat(before)))
    if status == "error":
        stmt = stmt.where(r.c.status >= 400)
    elif status == "ok":
        stmt = stmt.where(r.c.status < 400)
    with engine.connect() as conn:
        rows = [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(stmt)]
    for row in rows:
        row["created_at"] = _utc(row["created_at"]).isoformat()
    return rows


def policy_in_force(cfg: GatewayConfig) -> dict[str, Any]:
    """The rules and relationships the policy applies, in order; never a detected value nor a
    confidential term (only how many terms are configured)."""
    from emancipate.policy import DEFAULT_RULES

    def rule(r: Any, origin: str, i: int) -> dict[str, Any]:
        d = r.model_dump(by_alias=True, exclude_none=True)
        d["name"] = d.get("name") or f"policy.rules[{i}]"
        d["origin"] = origin
        return d

    rules = [rule(r, "config", i) for i, r in enumerate(cfg.policy.rules)]
    if cfg.policy.defaults:
        rules += [rule(r, "built-in", i) for i, r in enumerate(DEFAULT_RULES)]
    targets = []
    for route_name, route in cfg.routes.items():
        for t in route.targets:
            p = cfg.providers[t.provider]
            targets.append({"route": route_name, "target": f"{t.provider}/{t.model}",
                            "vendor": p.vendor, "ownership": p.ownership,
                            "strategy": route.strategy})
    g = cfg.guard
    return {
        "enabled": cfg.policy.enabled,
        "rules": rules,
        "vendors": {v: dict(vp.relationships) for v, vp in cfg.policy.vendors.items()},
        "default_relationship": cfg.policy.default_relationship,
        "guard": {"enabled": g.enabled, "classes": list(g.classes),
                  "domains": sorted(g.domains), "confidential_terms": len(g.terms),
                  "terms_files": len(g.terms_files),
                  "disabled_detectors": list(g.disabled_detectors)},
        "targets": targets,
    }


def dashboard_routes(gateway: Gateway, guard: AdminGuard) -> list[BaseRoute]:
    """The dashboard page, its static files and its two extra JSON endpoints."""
    files = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES}

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_HEADERS,
                            media_type=_TYPES[".html"])

    async def static(request: Request) -> Response:
        path = files.get(request.path_params["name"])
        if path is None:
            err = OpenAIError(404, f"No dashboard file '{request.path_params['name']}'.",
                              code="not_found")
            return JSONResponse(err.body(), status_code=404)
        return FileResponse(path, media_type=_TYPES[path.suffix],
                            headers={"cache-control": "public, max-age=3600",
                                     "x-content-type-options": "nosniff"})

    async def requests_list(request: Request, admin: AdminInfo) -> Any:
        q = request.query_params
        try:
            limit = int(q.get("limit", "50"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            raise OpenAIError(400, "'limit' must be an integer from 1 to 1000.", param="limit",
                              code="invalid_value") from None
        before = q.get("before")
        if before:
            from datetime import datetime

            try:
                datetime.fromisoformat(before)
            except ValueError:
                raise OpenAIError(400, "'before' must be an ISO date-time.", param="before",
                                  code="invalid_value") from None
        status = q.get("status")
        if status not in (None, "ok", "error"):
            raise OpenAIError(400, "'status' must be ok or error.", param="status",
                              code="invalid_value")
        rows = await asyncio.to_thread(recent_requests, gateway.stages.ledger.engine, limit,
                                       before, status)
        return {"object": "list", "data": rows}

    async def policy(request: Request, admin: AdminInfo) -> Any:
        return policy_in_force(gateway.cfg)

    return [
        Route("/admin/dashboard", page, methods=["GET"]),
        Route("/admin/dashboard/", page, methods=["GET"]),
        Route("/admin/dashboard/static/{name}", static, methods=["GET"]),
        Route("/admin/requests", guard.guarded("viewer", requests_list), methods=["GET"]),
        Route("/admin/policy", guard.guarded("viewer", policy), methods=["GET"]),
    ]


__all__ = ["dashboard_routes", "policy_in_force", "recent_requests"]
