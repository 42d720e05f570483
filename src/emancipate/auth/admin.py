"""Admin API for keys and usage, behind the admin key (``Authorization: Bearer <admin key>``).

    GET    /admin/keys                 list keys (never their secrets)
    POST   /admin/keys                 create (expires_at / expires_in optional); the answer
                                       holds the secret, shown this once
    POST   /admin/keys/{id}/rotate     new secret for the same key; the old one stops at once
    DELETE /admin/keys/{id}            revoke
    GET    /admin/usage?by=…&since=…   usage aggregated by key, team, vendor, ownership, model, day
    GET    /admin/requests/{id}        one request's path: attempts, decisions, findings

Errors are in OpenAI's shape. Database work runs in a thread: the event loop never waits on it.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
from emancipate.ledger.store import USAGE_GROUPS, parse_since
from emancipate.protocol import OpenAIError, pydantic_error_to_openai

if TYPE_CHECKING:
    from emancipate.auth.access import Access
    from emancipate.ledger import Ledger

Handler = Callable[[Request], Awaitable[Any]]

ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]


class KeyCreate(BaseModel):
    """The body of `POST /admin/keys`: every field typed and bounded, so a wrong value is a 400
    naming it (an out-of-range number used to reach the database and answer 500)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(..., min_length=1, max_length=MAX_NAME)
    team: str | None = Field(None, max_length=MAX_NAME)
    models: list[ModelName] | None = Field(None, max_length=MAX_MODELS)
    budget_day: float | None = Field(None, ge=0, le=MAX_BUDGET)
    budget_month: float | None = Field(None, ge=0, le=MAX_BUDGET)
    rpm: int | None = Field(None, ge=1, le=MAX_RPM)
    tpm: int | None = Field(None, ge=1, le=MAX_TPM)
    expires_at: str | None = Field(None, max_length=64, description="ISO 8601, UTC by default")
    expires_in: str | int | None = Field(None, description="30d, 12h, 45m, 2w or seconds")

    def expiry(self) -> datetime | None:
        """When the key stops working; ValueError naming the field when it is not valid."""
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("expires_in: give expires_at or expires_in, not both")
        if self.expires_in is not None:
            return expiry_in(self.expires_in)
        return expiry_at(self.expires_at) if self.expires_at is not None else None


_CREATE_FIELDS = set(KeyCreate.model_fields)


def check_admin(admin_key_env: str, authorization: str | None) -> None:
    """401/403 unless the header carries the admin key (compared in constant time)."""
    expected = os.environ.get(admin_key_env)
    if not expected:
        raise OpenAIError(
            403, f"Admin endpoints are disabled: set {admin_key_env} to enable them.",
            type="permission_error", code="admin_disabled")
    header = authorization or ""
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise OpenAIError(401, "Invalid admin key: send 'Authorization: Bearer <admin key>'.",
                          type="authentication_error", code="invalid_admin_key")


def _error(err: OpenAIError) -> Response:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _not_found(key_id: str) -> OpenAIError:
    return OpenAIError(404, f"No key with id '{key_id}' (list them with GET /admin/keys).",
                       param="id", code="key_not_found")


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


def admin_routes(access: Access, ledger: Ledger) -> list[Route]:
    """The key and usage endpoints; mount them in the gateway's Starlette app."""
    store = access.store
    env = access.auth.admin_key_env

    def guarded(fn: Handler, status: int = 200) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                check_admin(env, request.headers.get("authorization"))
                body = await fn(request)
            except OpenAIError as err:
                return _error(err)
            return Response(orjson.dumps(body), status_code=status,
                            media_type="application/json")
        return endpoint

    async def list_keys(request: Request) -> Any:
        include = request.query_params.get("include_revoked", "true").lower() != "false"
        keys = await _blocking(store.list, include)
        return {"object": "list", "data": [k.to_dict() for k in keys]}

    async def create_key(request: Request) -> Any:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise OpenAIError(400, "The body must be a JSON object such as "
                              '{"name": "search-team", "rpm": 60}.', code="invalid_json") from None
        if not isinstance(data, dict):
            raise OpenAIError(400, "The body must be a JSON object.", code="invalid_json")
        unknown = sorted(set(data) - _CREATE_FIELDS)
        if unknown:
            raise OpenAIError(400, f"Unknown field '{unknown[0]}'; known fields: "
                              f"{', '.join(sorted(_CREATE_FIELDS))}.", param=unknown[0],
                              code="unknown_parameter")
        if "name" not in data:
            raise OpenAIError(400, "'name' is required (a label for the key).", param="name",
                              code="missing_required_parameter")
        try:
            spec = KeyCreate.model_validate(data)
        except ValidationError as exc:
            raise pydantic_error_to_openai(exc.errors()) from None
        try:
            fields = spec.model_dump(exclude={"expires_at", "expires_in"})
            info, secret = await _blocking(store.create, **fields, expires_at=spec.expiry())
        except ValueError as exc:
            param, _, reason = str(exc).partition(": ")
            raise OpenAIError(400, f"Invalid value for '{param}': {reason}.", param=param,
                              code="invalid_value") from None
        return {**info.to_dict(), "key": secret}

    async def rotate_key(request: Request) -> Any:
        key_id = request.path_params["id"]
        try:
            info, secret = await _blocking(store.rotate, key_id)
        except KeyNotFound:
            raise _not_found(key_id) from None
        except KeyRevoked:
            raise OpenAIError(409, f"The key '{key_id}' is revoked and cannot be rotated; "
                              "create a new one.", param="id", code="key_revoked") from None
        access.invalidate(key_id)
        return {**info.to_dict(), "key": secret}

    async def revoke_key(request: Request) -> Any:
        key_id = request.path_params["id"]
        try:
            info = await _blocking(store.revoke, key_id)
        except KeyNotFound:
            raise _not_found(key_id) from None
        access.invalidate(key_id)
        return info.to_dict()

    async def usage(request: Request) -> Any:
        by = request.query_params.get("by", "key")
        if by not in USAGE_GROUPS:
            raise OpenAIError(400, f"'by' must be one of: {', '.join(USAGE_GROUPS)}.",
                              param="by", code="invalid_value")
        try:
            since = parse_since(request.query_params.get("since"))
        except ValueError as exc:
            raise OpenAIError(400, f"Invalid {exc}.", param="since",
                              code="invalid_value") from None
        rows = await _blocking(ledger.usage, by, since)
        return {"object": "list", "by": by, "since": since.isoformat() if since else None,
                "currency": ledger.cfg.currency, "data": rows}

    async def request_path(request: Request) -> Any:
        rid = request.path_params["id"]
        path = await _blocking(ledger.request_path, rid)
        if path is None:
            raise OpenAIError(404, f"No request '{rid}' in the ledger (it may still be queued: "
                              "the ledger writes every fraction of a second).", param="id",
                              code="request_not_found")
        return path

    return [
        Route("/admin/keys", guarded(list_keys), methods=["GET"]),
        Route("/admin/keys", guarded(create_key, 201), methods=["POST"]),
        Route("/admin/keys/{id}/rotate", guarded(rotate_key), methods=["POST"]),
        Route("/admin/keys/{id}", guarded(revoke_key), methods=["DELETE"]),
        Route("/admin/usage", guarded(usage), methods=["GET"]),
        Route("/admin/requests/{id}", guarded(request_path), methods=["GET"]),
    ]
