"""The ASGI application.

The two hot endpoints (chat completions, embeddings) are plain ASGI callables: they read the
body under a size limit, watch for the client leaving (to cancel upstream work), and write
bytes serialised by orjson. `POST /v1/chat/completions` is dispatched before Starlette (no
routing, no middleware on the hot path); the rest use Starlette's request/response helpers.

Measured costs this layout avoids (bench/profile_gateway.py, docs/architecture.md "HTTP
stack, measured"): Starlette's routing and middleware stack (~8 % of the event loop's time
per request), a second task per request to watch for disconnects, one socket write per SSE
event (events that arrive together leave together), uuid4 for request ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emancipate.api.completions import routes as completions_routes
from emancipate.api.cors import CrossOrigin
from emancipate.api.errors import render
from emancipate.api.guard import AdminGuard
from emancipate.api.messages import MESSAGES, anthropic_models
from emancipate.api.messages import routes as messages_routes
from emancipate.api.oidc import oidc_routes
from emancipate.api.responses import routes as responses_routes
from emancipate.api.wire import CHAT, EMBEDDINGS, Wire, header
from emancipate.auth.oidc import OIDCLogin
from emancipate.context import RequestContext
from emancipate.gateway import Answer, Gateway, StreamAnswer, model_not_found, parse_json
from emancipate.protocol import OpenAIError, error_type_for

log = logging.getLogger("emancipate.api")

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[Answer | StreamAnswer]]
_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None,
                    ) -> None:
    payload = orjson.dumps(body)
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    if headers:
        raw.extend(_encode_headers(headers))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed `limit`."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = 0
            if declared > limit:
                raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected")
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise _too_large(limit)
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> OpenAIError:
    return OpenAIError(
        413,
        f"The request body is larger than this gateway accepts ({limit} bytes). Send fewer or "
        "shorter messages, or ask the operator to raise server.max_body_bytes.",
        code="request_too_large",
    )


_time = time.time
_ids = random.Random()  # seeded from os.urandom; request ids need uniqueness, not secrecy


def new_request_id() -> str:
    """`req_` + 24 hex digits: 12 of the time in milliseconds, then 48 random bits.

    Time first, so that ids sort by creation: the ledger's primary keys (requests, attempts,
    decisions, findings) grow at their end instead of at random places in ever larger
    B-trees. With 96 random bits the writer's CPU per record grew with the table (20 µs at
    25,000 rows, 40-50 µs from 75,000 on); time-ordered, it stays at ~14 µs. 48 random bits
    per millisecond keep ids unique."""
    return f"req_{int(_time() * 1000):012x}{_ids.getrandbits(48):012x}"


class _Watch:
    """Cancel `task` if the client disconnects while it works: one helper task per request.

    `done` is set once the answer no longer needs watching; a disconnect after that is ignored.
    """

    __slots__ = ("task", "done", "fired")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.done = False
        self.fired = False

    async def run(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.done:
                    self.fired = True
                    self.task.cancel()
                return


class Endpoint:
    """A hot JSON endpoint: body → wire → gateway call → wire → JSON or SSE, with
    disconnect handling. `wire` is the API's translation (`api.wire`)."""

    def __init__(self, gateway: Gateway, handler: Handler, wire: Wire = CHAT) -> None:
        self.gateway = gateway
        self.handler = handler
        self.wire = wire
        self.endpoint = wire.endpoint
        self.limit = gateway.cfg.server.max_body_bytes
        self.cached = gateway.stages.cache is not None  # the response cache reads Cache-Control
        self.max_depth = gateway.cfg.server.max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway, wire = self.gateway, self.wire
        ctx = RequestContext(request_id=new_request_id(), endpoint=self.endpoint)
        tracer = gateway.tracer  # `tracing.OFF` (no-ops) unless tracing is on
        tracer.begin(ctx, scope["headers"])  # ended by `gateway.finish`
        watch: _Watch | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            await gateway.authenticate(ctx, wire.credentials(scope))
            if self.cached:
                ctx.extra["cache_control"] = header(scope, b"cache-control")
            raw = await read_body(scope, receive, self.limit)
            data = wire.request(parse_json(raw, self.max_depth), ctx)
            tracer.read(ctx, data)
            # The whole body is in: from now on `receive` only reports a disconnect, which
            # cancels this task (and so the upstream call or the embedded generation).
            task = asyncio.current_task()
            assert task is not None
            watch = _Watch(task)
            watcher = asyncio.ensure_future(watch.run(receive))
            answer = await self.handler(ctx, data)
            if isinstance(answer, StreamAnswer):
                await self._stream(answer, send, ctx)
                watch.done = True
            else:
                watch.done = True
                body = wire.answer(answer.body, ctx)
                gateway.answered(ctx)  # the record is on disk before the answer leaves
                await send_json(send, 200, body, answer.headers)
        except OpenAIError as err:
            if watch is not None:
                watch.done = True
            ctx.status, ctx.error_code = err.status, err.code
            gateway.answered(ctx)
            status, body = wire.error(err)
            await send_json(send, status, body, {"x-request-id": ctx.request_id, **err.headers})
        except asyncio.CancelledError:  # the client left (read_body, or the watcher fired)
            if watch is not None:
                watch.done = True
                if watch.fired:
                    watch.task.uncancel()
            ctx.status, ctx.error_code = 499, "client_closed_request"
        except Exception:  # the process must survive any bug: log it, answer 500
            if watch is not None:
                watch.done = True
            log.exception("unhandled error on request %s", ctx.request_id)
            ctx.status, ctx.error_code = 500, "internal_error"
            gateway.answered(ctx)
            status, body = wire.error(OpenAIError(
                500, f"Internal error in the gateway (request {ctx.request_id}); the operator "
                "can find it in the logs.", type="server_error", code="internal_error"))
            await send_json(send, status, body, {"x-request-id": ctx.request_id})
        # A completed response (or a disconnect) ends the watcher by itself: uvicorn's
        # `receive` then returns http.disconnect. Only an unfinished response needs a cancel.
        if watcher is not None and ctx.status == 499 and not watcher.done():
            watcher.cancel()
        gateway.finish(ctx)

    async def _stream(self, answer: StreamAnswer, send: Send, ctx: RequestContext) -> None:
        """Pump the committed stream; events already in hand leave in one write."""
        await send({
            "type": "http.response.start", "status": 200,
            "headers": _SSE_HEADERS + _encode_headers(answer.headers),
        })
        chunks = self.wire.stream(answer.events, ctx)
        batch: list[bytes] = []
        size = 0
        try:
            try:
                anext_ = chunks.__anext__
                while True:
                    step = anext_()
                    try:  # advance without suspending when the next event is already here
                        pending = step.send(None)
                    except StopIteration as ready:
                        data = ready.value
                    except StopAsyncIteration:
                        break
                    else:  # it must wait: flush what we hold first, then wait for it
                        if batch:
                            await send({"type": "http.response.body",
                                        "body": b"".join(batch), "more_body": True})
                            batch, size = [], 0
                        try:
                            data = await _Resume(step, pending)
                        except StopAsyncIteration:
                            break
                    batch.append(data)
                    size += len(data)
                    if size >= 65536:
                        await send({"type": "http.response.body", "body": b"".join(batch),
                                    "more_body": True})
                        batch, size = [], 0
            finally:
                await chunks.aclose()
        except Exception as exc:
            log.error("stream %s failed: %r", ctx.request_id, exc)
            ctx.status, ctx.error_code = 500, "internal_error"
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"".join(batch),
                        "more_body": False})


class _Resume:
    """Finish an awaitable step that was started by hand and suspended on `pending`.

    Lets the SSE pump try a step synchronously (`send(None)`) and, when the step has to
    wait, hand it back to the running task exactly as `await` would have.
    """

    __slots__ = ("step", "pending")

    def __init__(self, step: Any, pending: Any) -> None:
        self.step = step
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        step, pending = self.step, self.pending
        while True:
            try:
                value = yield pending
            except GeneratorExit:
                step.close()
                raise
            except BaseException as exc:  # cancellation, thrown in by the task
                try:
                    pending = step.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                pending = step.send(value)
            except StopIteration as done:
                return done.value


class GatewayApp:
    """The ASGI entry point: `POST /v1/chat/completions` straight to its endpoint, the rest
    (other paths, methods, lifespan) through Starlette."""

    def __init__(self, chat: Endpoint, starlette: Starlette) -> None:
        self.chat = chat
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == "/v1/chat/completions"
                and scope["method"] == "POST"):
            await self.chat(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def settle_collector() -> None:
    """The garbage collector as the gateway runs once started. Start-up objects (modules,
    config, compiled patterns, ~100k) leave the collector's view: a full collection under
    load then scans only what requests left behind (measured: 35-120 ms pauses, every few
    seconds under load, down to < 1 ms). Young collections every 10,000 allocations instead
    of 700: -4 % CPU per request. (The guard's benches run under it too.)"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def create_app(gateway: Gateway) -> ASGIApp:
    """The ASGI app serving `gateway`; start-up and shutdown drive the gateway's lifecycle."""
    oidc = OIDCLogin.from_config(gateway.cfg.auth.oidc) if gateway.cfg.auth.oidc else None
    guard = AdminGuard(gateway.stages.keys, oidc)

    async def models(request: Request) -> Response:
        if "anthropic-version" in request.headers:  # an Anthropic SDK: its shapes and key
            return await anthropic_models(gateway, request)
        ctx = RequestContext(endpoint="models")
        principal = await gateway.authenticate(ctx, request.headers.get("authorization"))
        return JSONResponse({"object": "list",
                             "data": [_model(m) for m in gateway.model_ids(principal)]})

    async def model(request: Request) -> Response:
        if "anthropic-version" in request.headers:
            return await anthropic_models(gateway, request)
        ctx = RequestContext(endpoint="models")
        principal = await gateway.authenticate(ctx, request.headers.get("authorization"))
        model_id = request.path_params["model"]
        usable = gateway.model_ids(principal)
        if model_id not in usable:  # outside the key's scopes: as if it did not exist
            raise model_not_found(model_id, usable)
        return JSONResponse(_model(model_id))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Status and `ready` for anyone (probes); the per-provider, per-route and per-target
        details name the deployment, so only with `server.public_health` or the admin key."""
        state = gateway.ready()
        status = 200 if state["ready"] else 503
        if not gateway.cfg.server.public_health and not await guard.allows(
                request.headers.get("authorization"), "viewer"):
            return JSONResponse({"ready": state["ready"]}, status_code=status)
        return JSONResponse(state, status_code=status)

    async def metrics(request: Request) -> Response:
        if gateway.cfg.server.metrics_auth == "admin":
            await guard.require(request.headers.get("authorization"), "viewer")
        return Response(gateway.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = (f"Unknown path {request.url.path}; this gateway serves the OpenAI API under /v1"
                   if status == 404 else f"Method {request.method} is not allowed on "
                   f"{request.url.path}")
        return render(request, OpenAIError(
            status, message, type=error_type_for(status),
            code="not_found" if status == 404 else "method_not_allowed"))

    chat = Endpoint(gateway, gateway.chat, CHAT)
    routes: list[BaseRoute] = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", Endpoint(gateway, gateway.embeddings, EMBEDDINGS),
              methods=["POST"]),
        Route("/v1/messages", Endpoint(gateway, gateway.chat, MESSAGES), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    routes.extend(admin_routes(gateway, guard))
    routes.extend(oidc_routes(oidc))
    routes.extend(messages_routes(gateway))  # Anthropic's Messages API (api/messages.py)
    routes.extend(responses_routes(gateway))  # the Responses API (api/responses.py)
    routes.extend(completions_routes(gateway))  # legacy completions (api/completions.py)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        settle_collector()
        try:
            yield
        finally:
            await gateway.aclose()

    app = GatewayApp(chat, Starlette(routes=routes, lifespan=lifespan,
                                     exception_handlers={OpenAIError: render, 404: not_found,
                                                         405: not_found}))
    cors = gateway.cfg.server.cors  # wrapped only when on: nothing added to the hot path
    return app if cors is None else CrossOrigin(app, cors)


def admin_routes(gateway: Gateway, guard: AdminGuard) -> list[BaseRoute]:
    """Operator endpoints under /admin, each behind `guard` with the role it needs."""
    from emancipate.api.admin import routes

    return routes(gateway, guard)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "emancipate"}

