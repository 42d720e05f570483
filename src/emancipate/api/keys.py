"""Admin API for keys, teams, admin identities and usage; each endpoint names its role.

    GET    /admin/whoami               the calling admin identity and its role       viewer
    GET    /admin/keys                 list keys (never their secrets)                viewer
    POST   /admin/keys                 create (expires_at / expires_in optional); the operator
                                       answer holds the secret, shown this once
    POST   /admin/keys/{id}/rotate     new secret for the same key; the old one stops operator
    DELETE /admin/keys/{id}            revoke                                         operator
    GET    /admin/teams                list teams                                     viewer
    GET    /admin/teams/{name}         one team, its keys and its spend               viewer
    POST   /admin/teams                create a team (models, budgets, rpm, tpm)      operator
    PATCH  /admin/teams/{name}         change some of its limits (null removes one)   operator
    DELETE /admin/teams/{name}         delete it (its keys keep the label)            operator
    GET    /admin/admins               list admin identities                          admin
    POST   /admin/admins               create one (name, role); secret shown once     admin
    DELETE /admin/admins/{id}          revoke one                                     admin
    GET    /admin/usage?by=…&since=…   usage by key, team, vendor, ownership, model   viewer
    GET    /admin/requests/{id}        one request's path: attempts, decisions        viewer

Errors are in OpenAI's shape. Database work runs in a daemon thread with a deadline: the event
loop never waits on it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.routing import Route

from emancipate.auth.access import TEAM_PREFIX
from emancipate.auth.admins import AdminInfo, AdminNotFound, Role
from emancipate.auth.blocking import DaemonPool
from emancipate.auth.keys import (
    MAX_BUDGET,
    MAX_MODELS,
    MAX_NAME,
    MAX_RPM,
    MAX_TPM,
    KeyNotFound,
    KeyRevoked,
    expiry_at,
    expiry_in,
)
from emancipate.auth.teams import TEAM_FIELDS, TeamExists, TeamNotFound
from emancipate.ledger.store import USAGE_GROUPS, parse_since
from emancipate.protocol import OpenAIError, pydantic_error_to_openai

if TYPE_CHECKING:
    from emancipate.api.guard import AdminGuard
    from emancipate.auth.access import Access
    from emancipate.ledger import Ledger

log = logging.getLogger("emancipate.admin")  # who changed what: one line per write

ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Body = TypeVar("Body", bound=BaseModel)


class _Limits(BaseModel):
    """Model scopes, budgets and rates, shared by keys and teams: typed and bounded, so a
    wrong value is a 400 naming it (an out-of-range number used to reach the database)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[ModelName] | None = Field(None, max_length=MAX_MODELS)
    budget_day: float | None = Field(None, ge=0, le=MAX_BUDGET)
    budget_month: float | None = Field(None, ge=0, le=MAX_BUDGET)
    rpm: int | None = Field(None, ge=1, le=MAX_RPM)
    tpm: int | None = Field(None, ge=1, le=MAX_TPM)


class KeyCreate(_Limits):
    """The body of `POST /admin/keys`."""

    name: str = Field(..., min_length=1, max_length=MAX_NAME)
    team: str | None = Field(None, max_length=MAX_NAME)
    expires_at: str | None = Field(None, max_length=64, description="ISO 8601, UTC by default")
    expires_in: str | int | None = Field(None, description="30d, 12h, 45m, 2w or seconds")

    def expiry(self) -> datetime | None:
        """When the key stops working; ValueError naming the field when it is not valid."""
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("expires_in: give expires_at or expires_in, not both")
        if self.expires_in is not None:
            return expiry_in(self.expires_in)
        return expiry_at(self.expires_at) if self.expires_at is not None else None


class TeamCreate(_Limits):
    """The body of `POST /admin/teams`."""

    name: str = Field(..., min_length=1, max_length=MAX_NAME)


class TeamUpdate(_Limits):
    """The body of `PATCH /admin/teams/{name}`: only the fields given change."""


class AdminCreate(BaseModel):
    """The body of `POST /admin/admins`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(..., min_length=1, max_length=MAX_NAME)
    role: Role


ADMIN_DB_TIMEOUT = 30.0  # seconds an admin query may take before the database counts as down
_POOL = DaemonPool(size=4, name="admin-db")


async def _blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A database call off the event loop, in a daemon thread (a hung database can neither
    hang the request forever nor keep the process from exiting); 503 past the deadline."""
    try:
        return await _POOL.run(ADMIN_DB_TIMEOUT, functools.partial(fn, *args, **kwargs))
    except TimeoutError:
        raise OpenAIError(503, f"The database did not answer within {ADMIN_DB_TIMEOUT:g} s; "
                          "retry shortly (the gateway logs say why).", type="server_error",
                          code="database_unavailable", headers={"retry-after": "5"}) from None


async def parse_body(request: Request, model: type[Body], example: str) -> Body:
    """The JSON body as `model`: 400 naming the unknown, missing or invalid field."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise OpenAIError(400, f"The body must be a JSON object such as {example}.",
                          code="invalid_json") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, f"The body must be a JSON object such as {example}.",
                          code="invalid_json")
    known = set(model.model_fields)
    unknown = sorted(set(data) - known)
    if unknown:
        raise OpenAIError(400, f"Unknown field '{unknown[0]}'; known fields: "
                          f"{', '.join(sorted(known))}.", param=unknown[0],
                          code="unknown_parameter")
    for name, field in model.model_fields.items():
        if field.is_required() and name not in data:
            raise OpenAIError(400, f"'{name}' is required.", param=name,
                              code="missing_required_parameter")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error_to_openai(exc.errors()) from None


def _invalid_value(exc: ValueError) -> OpenAIError:
    param, _, reason = str(exc).partition(": ")
    return OpenAIError(400, f"Invalid value for '{param}': {reason}.", param=param,
                       code="invalid_value")


def _key_not_found(key_id: str) -> OpenAIError:
    return OpenAIError(404, f"No key with id '{key_id}' (list them with GET /admin/keys).",
                       param="id", code="key_not_found")


def _team_not_found(name: str) -> OpenAIError:
    return OpenAIError(404, f"No team named '{name}' (list them with GET /admin/teams).",
                       param="name", code="team_not_found")


def _audit(admin: AdminInfo, action: str, subject: str) -> None:
    log.info("%s (%s, role %s) %s %s", admin.name, admin.id, admin.role, action, subject)


def admin_routes(access: Access, ledger: Ledger, guard: AdminGuard) -> list[Route]:
    """The key, team, admin identity and usage endpoints, each behind `guard`."""
    keys = _KeyEndpoints(access)
    teams = _TeamEndpoints(access)
    admins = _AdminEndpoints(access)
    reads = _Reads(ledger)
    g = guard.guarded
    return [
        Route("/admin/whoami", g("viewer", reads.whoami), methods=["GET"]),
        Route("/admin/keys", g("viewer", keys.list), methods=["GET"]),
        Route("/admin/keys", g("operator", keys.create, 201), methods=["POST"]),
        Route("/admin/keys/{id}/rotate", g("operator", keys.rotate), methods=["POST"]),
        Route("/admin/keys/{id}", g("operator", keys.revoke), methods=["DELETE"]),
        Route("/admin/teams", g("viewer", teams.list), methods=["GET"]),
        Route("/admin/teams", g("operator", teams.create, 201), methods=["POST"]),
        Route("/admin/teams/{name}", g("viewer", teams.get), methods=["GET"]),
        Route("/admin/teams/{name}", g("operator", teams.update), methods=["PATCH"]),
        Route("/admin/teams/{name}", g("operator", teams.delete), methods=["DELETE"]),
        Route("/admin/admins", g("admin", admins.list), methods=["GET"]),
        Route("/admin/admins", g("admin", admins.create, 201), methods=["POST"]),
        Route("/admin/admins/{id}", g("admin", admins.revoke), methods=["DELETE"]),
        Route("/admin/usage", g("viewer", reads.usage), methods=["GET"]),
        Route("/admin/requests/{id}", g("viewer", reads.request_path), methods=["GET"]),
    ]


class _KeyEndpoints:
    def __init__(self, access: Access) -> None:
        self.access = access
        self.store = access.store

    async def list(self, request: Request, admin: AdminInfo) -> Any:
        include = request.query_params.get("include_revoked", "true").lower() != "false"
        keys = await _blocking(self.store.list, include)
        return {"object": "list", "data": [k.to_dict() for k in keys]}

    async def create(self, request: Request, admin: AdminInfo) -> Any:
        spec = await parse_body(request, KeyCreate, '{"name": "search-team", "rpm": 60}')
        try:
            fields = spec.model_dump(exclude={"expires_at", "expires_in"})
            info, secret = await _blocking(self.store.create, **fields,
                                           expires_at=spec.expiry())
        except ValueError as exc:
            raise _invalid_value(exc) from None
        _audit(admin, "created key", info.id)
        return {**info.to_dict(), "key": secret}

    async def rotate(self, request: Request, admin: AdminInfo) -> Any:
        key_id = request.path_params["id"]
        try:
            info, secret = await _blocking(self.store.rotate, key_id)
        except KeyNotFound:
            raise _key_not_found(key_id) from None
        except KeyRevoked:
            raise OpenAIError(409, f"The key '{key_id}' is revoked and cannot be rotated; "
                              "create a new one.", param="id", code="key_revoked") from None
        self.access.invalidate(key_id)
        _audit(admin, "rotated key", key_id)
        return {**info.to_dict(), "key": secret}

    async def revoke(self, request: Request, admin: AdminInfo) -> Any:
        key_id = request.path_params["id"]
        try:
            info = await _blocking(self.store.revoke, key_id)
        except KeyNotFound:
            raise _key_not_found(key_id) from None
        self.access.invalidate(key_id)
        _audit(admin, "revoked key", key_id)
        return info.to_dict()


class _TeamEndpoints:
    """A team change through this process reaches its keys at once here (every cached key is
    dropped), and on other replicas within ``auth.key_cache_ttl``."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.store = access.teams

    async def list(self, request: Request, admin: AdminInfo) -> Any:
        teams = await _blocking(self.store.list)
        return {"object": "list", "data": [t.to_dict() for t in teams]}

    async def get(self, request: Request, admin: AdminInfo) -> Any:
        name = request.path_params["name"]
        info = await _blocking(self.store.get, name)
        if info is None:
            raise _team_not_found(name)
        members = await _blocking(self.store.members, name)
        spent_day, spent_month = await self.access.spent(TEAM_PREFIX + name)
        return {**info.to_dict(), "keys": members, "spent_day": spent_day,
                "spent_month": spent_month}

    async def create(self, request: Request, admin: AdminInfo) -> Any:
        spec = await parse_body(request, TeamCreate, '{"name": "search", "budget_day": 20}')
        try:
            info = await _blocking(self.store.create, **spec.model_dump())
        except TeamExists:
            raise OpenAIError(409, f"A team named '{spec.name}' already exists; change it "
                              f"with PATCH /admin/teams/{spec.name}.", param="name",
                              code="team_exists") from None
        except ValueError as exc:
            raise _invalid_value(exc) from None
        self.access.invalidate()
        _audit(admin, "created team", info.name)
        return info.to_dict()

    async def update(self, request: Request, admin: AdminInfo) -> Any:
        name = request.path_params["name"]
        spec = await parse_body(request, TeamUpdate, '{"budget_day": 50, "rpm": null}')
        changes = {f: getattr(spec, f) for f in TEAM_FIELDS if f in spec.model_fields_set}
        try:
            info = await _blocking(self.store.update, name, changes)
        except TeamNotFound:
            raise _team_not_found(name) from None
        except ValueError as exc:
            raise _invalid_value(exc) from None
        self.access.invalidate()
        _audit(admin, "changed team", f"{name} ({', '.join(sorted(changes)) or 'nothing'})")
        return info.to_dict()

    async def delete(self, request: Request, admin: AdminInfo) -> Any:
        name = request.path_params["name"]
        try:
            info = await _blocking(self.store.delete, name)
        except TeamNotFound:
            raise _team_not_found(name) from None
        self.access.invalidate()
        _audit(admin, "deleted team", name)
        return {**info.to_dict(), "deleted": True}


class _AdminEndpoints:
    def __init__(self, access: Access) -> None:
        self.access = access
        self.store = access.admins

    async def list(self, request: Request, admin: AdminInfo) -> Any:
        admins = await _blocking(self.store.list)
        return {"object": "list", "data": [a.to_dict() for a in admins]}

    async def create(self, request: Request, admin: AdminInfo) -> Any:
        spec = await parse_body(request, AdminCreate, '{"name": "ana", "role": "viewer"}')
        try:
            info, secret = await _blocking(self.store.create, spec.name, spec.role)
        except ValueError as exc:
            raise _invalid_value(exc) from None
        self.access.forget_admins()
        _audit(admin, f"created admin key ({info.role})", info.id)
        return {**info.to_dict(), "key": secret}

    async def revoke(self, request: Request, admin: AdminInfo) -> Any:
        admin_id = request.path_params["id"]
        try:
            info = await _blocking(self.store.revoke, admin_id)
        except AdminNotFound:
            raise OpenAIError(404, f"No admin identity with id '{admin_id}' (list them with "
                              "GET /admin/admins).", param="id",
                              code="admin_not_found") from None
        self.access.forget_admins()
        _audit(admin, "revoked admin key", admin_id)
        return info.to_dict()


class _Reads:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def whoami(self, request: Request, admin: AdminInfo) -> Any:
        return admin.to_dict()

    async def usage(self, request: Request, admin: AdminInfo) -> Any:
        by = request.query_params.get("by", "key")
        if by not in USAGE_GROUPS:
            raise OpenAIError(400, f"'by' must be one of: {', '.join(USAGE_GROUPS)}.",
                              param="by", code="invalid_value")
        try:
            since = parse_since(request.query_params.get("since"))
        except ValueError as exc:
            raise OpenAIError(400, f"Invalid {exc}.", param="since",
                              code="invalid_value") from None
        rows = await _blocking(self.ledger.usage, by, since)
        return {"object": "list", "by": by, "since": since.isoformat() if since else None,
                "currency": self.ledger.cfg.currency, "data": rows}

    async def request_path(self, request: Request, admin: AdminInfo) -> Any:
        rid = request.path_params["id"]
        path = await _blocking(self.ledger.request_path, rid)
        if path is None:
            raise OpenAIError(404, f"No request '{rid}' in the ledger (it may still be queued: "
                              "the ledger writes every fraction of a second).", param="id",
                              code="request_not_found")
        return path
