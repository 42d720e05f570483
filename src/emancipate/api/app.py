"""The ASGI application.

The two hot endpoints (chat completions, embeddings) are plain ASGI callables: they read the
body under a size limit, watch for the client leaving (to cancel upstream work), and write
bytes serialised by orjson. The rest use Starlette's request/response helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emancipate.context import RequestContext
from emancipate.gateway import Answer, Gateway, StreamAnswer, parse_json
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


async def send_error(send: Send, err: OpenAIError, headers: dict[str, str] | None = None) -> None:
    await send_json(send, err.status, err.body(), {**(headers or {}), **err.headers})


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


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class Endpoint:
    """A hot JSON endpoint: body → gateway call → JSON or SSE, with disconnect handling."""

    def __init__(self, gateway: Gateway, handler: Handler, endpoint: str) -> None:
        self.gateway = gateway
        self.handler = handler
        self.endpoint = endpoint
        self.limit = gateway.cfg.server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        ctx = RequestContext(endpoint=self.endpoint)
        try:
            await gateway.authenticate(ctx, _authorization(scope))
            raw = await read_body(scope, receive, self.limit)
            data = parse_json(raw)
            answer = await self._run(self.handler(ctx, data), receive)
        except OpenAIError as err:
            ctx.status, ctx.error_code = err.status, err.code
            await send_error(send, err, {"x-request-id": ctx.request_id})
            gateway.finish(ctx)
            return
        except asyncio.CancelledError:
            ctx.status, ctx.error_code = 499, "client_closed_request"
            gateway.finish(ctx)
            return
        except Exception:  # the process must survive any bug: log it, answer 500
            log.exception("unhandled error on request %s", ctx.request_id)
            ctx.status, ctx.error_code = 500, "internal_error"
            await send_error(send, OpenAIError(
                500, f"Internal error in the gateway (request {ctx.request_id}); the operator "
                "can find it in the logs.", type="server_error", code="internal_error"))
            gateway.finish(ctx)
            return
        if isinstance(answer, StreamAnswer):
            await self._stream(answer, receive, send, ctx)
        else:
            await send_json(send, 200, answer.body, answer.headers)
        gateway.finish(ctx)

    async def _run(self, work: Awaitable[Any], receive: Receive) -> Any:
        """Await `work`, cancelling it if the client disconnects first."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise asyncio.CancelledError("client disconnected")
            watcher.cancel()
        return task.result()

    async def _stream(self, answer: StreamAnswer, receive: Receive, send: Send,
                      ctx: RequestContext) -> None:
        await send({
            "type": "http.response.start", "status": 200,
            "headers": _SSE_HEADERS + _encode_headers(answer.headers),
        })
        pump = asyncio.ensure_future(_pump(answer.chunks, send))
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():  # client left: stop the upstream (and the embedded model)
            pump.cancel()
            ctx.status, ctx.error_code = 499, "client_closed_request"
            with contextlib.suppress(BaseException):
                await pump
            return
        watcher.cancel()
        if pump.exception() is not None:
            log.error("stream %s failed: %r", ctx.request_id, pump.exception())
            ctx.status, ctx.error_code = 500, "internal_error"
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pump(chunks: AsyncIterator[bytes], send: Send) -> None:
    try:
        async for data in chunks:
            await send({"type": "http.response.body", "body": data, "more_body": True})
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving `gateway`; start-up and shutdown drive the gateway's lifecycle."""

    async def models(request: Request) -> Response:
        ctx = RequestContext(endpoint="models")
        try:
            await gateway.authenticate(ctx, request.headers.get("authorization"))
        except OpenAIError as err:
            return _error_response(err)
        return JSONResponse({"object": "list", "data": [_model(m) for m in gateway.model_ids()]})

    async def model(request: Request) -> Response:
        ctx = RequestContext(endpoint="models")
        try:
            await gateway.authenticate(ctx, request.headers.get("authorization"))
        except OpenAIError as err:
            return _error_response(err)
        model_id = request.path_params["model"]
        if model_id not in gateway.routes:
            return _error_response(OpenAIError(
                404, f"The model '{model_id}' does not exist on this gateway. Available models: "
                f"{', '.join(gateway.model_ids())}.", param="model", code="model_not_found"))
        return JSONResponse(_model(model_id))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        state = gateway.ready()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    async def metrics(request: Request) -> Response:
        return Response(gateway.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = (f"Unknown path {request.url.path}; this gateway serves the OpenAI API under /v1"
                   if status == 404 else f"Method {request.method} is not allowed on "
                   f"{request.url.path}")
        return _error_response(OpenAIError(status, message, type=error_type_for(status),
                                           code="not_found" if status == 404 else
                                           "method_not_allowed"))

    routes = [
        Route("/v1/chat/completions", Endpoint(gateway, gateway.chat, "chat.completions"),
              methods=["POST"]),
        Route("/v1/embeddings", Endpoint(gateway, gateway.embeddings, "embeddings"),
              methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    routes.extend(admin_routes(gateway))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={404: not_found, 405: not_found})


def admin_routes(gateway: Gateway) -> list[Route]:
    """Operator endpoints under /admin, behind the admin key."""
    from emancipate.api.admin import routes

    return routes(gateway)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "emancipate"}


def _error_response(err: OpenAIError) -> Response:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
