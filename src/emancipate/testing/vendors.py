"""Simulated vendor servers: real HTTP on loopback, each vendor's wire protocol, and faults.

Each server runs its own asyncio loop in a background thread, so synchronous tests, async
tests and benchmarks can all drive it, and so it keeps serving while the test thread blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from emancipate.testing.anthropic_wire import AnthropicWire
from emancipate.testing.common import Answer, ReplyFn, dumps
from emancipate.testing.faults import (
    CutStream,
    ErrorEvent,
    Fault,
    FaultPlan,
    GarbageJSON,
    HangBeforeHeaders,
    HangMidStream,
    HugeBody,
    RateLimit,
    Reset,
    SlowTokens,
    Status,
)
from emancipate.testing.gemini_wire import GeminiWire
from emancipate.testing.openai_wire import OpenAIWire

Protocol = Literal["openai", "anthropic", "gemini", "azure", "entra", "bedrock",
                   "google-oauth"]
_WIRES: dict[str, Any] = {"openai": OpenAIWire, "anthropic": AnthropicWire, "gemini": GeminiWire}


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the vendor saw it: what the gateway really put on the wire."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None  # the parsed body, or None when it is not JSON

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))


class _Cut(Exception):
    """The connection was deliberately broken: the handler must write nothing more."""


class _Ended(Exception):
    """The stream was ended early, cleanly (after a garbage or error event)."""


class SimulatedVendor:
    """A vendor API on 127.0.0.1 speaking OpenAI's or Anthropic's protocol, with faults.

    `stop()` behaves like a crash (listener closed, open connections reset) and `restart()`
    comes back on the same port; `received`, `served` and injected faults survive both.
    """

    def __init__(self, protocol: Protocol = "openai", *, name: str = "vendor",
                 api_key: str | None = None, port: int = 0, reply: ReplyFn | None = None,
                 chunks: int | None = None, seed: int | None = None, wire: Any = None) -> None:
        """`wire`: a wire object built by the caller (Azure and Entra ID need more than a key:
        `testing/azure_wire.py`); otherwise the protocol's own, from `api_key`."""
        if wire is None and protocol not in _WIRES:
            raise ValueError(f"unknown protocol {protocol!r}: use one of {', '.join(_WIRES)} "
                             "(or pass `wire`)")
        self.protocol: Protocol = protocol
        self.name = name
        self.port = port
        self._wire = wire if wire is not None else _WIRES[protocol](name, api_key, reply, chunks)
        self._faults = FaultPlan(seed)
        self._lock = threading.Lock()
        self._lifecycle = threading.RLock()  # start/stop/restart may come from any thread
        self._received: list[ReceivedRequest] = []
        self._served = 0
        self._pauses = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SimulatedVendor:
        """Bind (ephemeral port the first time, the same port afterwards) and serve."""
        with self._lifecycle:
            return self._start()

    def _start(self) -> SimulatedVendor:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._run, args=(loop, ready, failure),
                                  name=f"simulated-vendor-{self.name}", daemon=True)
        thread.start()
        ready.wait(30)
        if failure or not ready.is_set():
            thread.join(5)
            raise RuntimeError(f"simulated vendor {self.name!r} could not start on port "
                               f"{self.port}") from (failure[0] if failure else None)
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Crash-stop: close the listener, reset every open connection, end the thread."""
        with self._lifecycle:
            self._stop()

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._loop = self._thread = None

    def restart(self) -> None:
        """Stop (if running) and start again on the same port."""
        with self._lifecycle:
            self._stop()
            self._start()

    def __enter__(self) -> SimulatedVendor:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for a provider config (OpenAI's includes `/v1`, Anthropic's does not)."""
        if not self.port:
            raise RuntimeError(f"simulated vendor {self.name!r} has not been started")
        base = f"http://127.0.0.1:{self.port}"
        return base + "/v1" if self.protocol == "openai" else base

    # --- observation and control (thread-safe) ------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._received)

    @property
    def served(self) -> int:
        """Complete successful answers (chat, messages, embeddings) sent to the end."""
        with self._lock:
            return self._served

    @property
    def pauses(self) -> int:
        """Token delays the SlowTokens fault inserted: tests see the pacing without a clock."""
        with self._lock:
            return self._pauses

    def clear(self) -> None:
        """Forget received requests and the served and pause counts."""
        with self._lock:
            self._received.clear()
            self._served = 0
            self._pauses = 0

    def inject(self, fault: Fault, *, times: int | None = None,
               probability: float | None = None) -> None:
        """Add a fault: for the next `times` requests, at random with `probability`, or always.

        Rules are tried in the order injected; the first that fires decides the request.
        """
        self._faults.add(fault, times, probability)

    def clear_faults(self) -> None:
        self._faults.clear()

    # --- the server thread --------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event,
             failure: list[BaseException]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported to start()
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _setup(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that gives up (or a stop) ends a hanging handler.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _shutdown(self) -> None:
        runner = self._runner
        if runner is None:
            return
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:
            for handler in list(runner.server.connections):
                if handler.transport is not None:
                    _reset(handler.transport)
        await asyncio.sleep(0)
        await runner.cleanup()
        self._runner = None

    # --- one request --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]}, {value}" if k in headers else value
        with self._lock:
            self._received.append(ReceivedRequest(
                request.method, request.path, dict(request.query), headers, raw, parsed))
        fault = self._faults.pick()
        response = web.StreamResponse()
        with contextlib.suppress(_Cut, ConnectionResetError):  # the connection is gone
            response = await self._respond(request, headers, raw, parsed, fault)
        return response

    async def _pause(self, delay: float, tokens: int) -> None:
        with self._lock:
            self._pauses += tokens
        await asyncio.sleep(delay * tokens)

    async def _respond(self, request: web.Request, headers: dict[str, str], raw: bytes,
                       parsed: Any, fault: Fault | None) -> web.StreamResponse:
        """Decide the answer (a fault before headers wins over the wire protocol), send it."""
        wire = self._wire
        answer: Answer | None = None
        if isinstance(fault, Reset):
            _reset(request.transport)
            raise _Cut
        if isinstance(fault, HangBeforeHeaders):
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, RateLimit):
            answer = wire.error(429, retry_after=fault.retry_after)
        elif isinstance(fault, Status):
            answer = wire.error(fault.code, retry_after=fault.retry_after)
        elif isinstance(fault, ErrorEvent) and not (
                isinstance(parsed, dict) and parsed.get("stream")
                or request.path.endswith("/converse-stream")):  # Bedrock: streams by path
            answer = wire.error(fault.code)
        if answer is None:
            # A wire that checks signatures over the path reads it as sent (still encoded).
            path = request.raw_path.split("?", 1)[0] if getattr(wire, "raw_paths", False) \
                else request.path
            answer = wire.handle(request.method, path, headers, raw, request.query)
        return await self._send(request, answer, fault if answer.ok else None)

    async def _send(self, request: web.Request, answer: Answer,
                    fault: Fault | None) -> web.StreamResponse:
        """Write the answer, breaking it as the fault says; count it if it went out whole."""
        headers = {**self._wire.request_id_header(), **answer.headers}
        response = web.StreamResponse(status=answer.status, headers=headers)
        if answer.events is None:
            payload = dumps(answer.body)
            if isinstance(fault, GarbageJSON):
                payload = self._wire.garbage_body()
            if isinstance(fault, HugeBody) and isinstance(answer.body, dict):
                payload = dumps({**answer.body, "padding": "x" * fault.size})
            if isinstance(fault, SlowTokens):
                await self._pause(fault.delay, max(answer.pieces, 1))
            response.content_type = "application/json"
            if isinstance(fault, HugeBody) and fault.chunked:
                response.enable_chunked_encoding()
            else:
                response.content_length = len(payload)
            await response.prepare(request)
            if isinstance(fault, HugeBody):  # in pieces: a reader can stop part-way
                *head, payload = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
                for piece in head:
                    await response.write(piece)
            if isinstance(fault, CutStream):
                await response.write(payload[: len(payload) // 2])
                _cut(request)
            if isinstance(fault, HangMidStream):
                await asyncio.sleep(fault.seconds)
            whole = answer.ok and not isinstance(fault, GarbageJSON)
            async with self._serving(request, whole):
                await response.write(payload)
                await response.write_eof()
            return response

        response.content_type = answer.content_type or "text/event-stream"
        if response.content_type == "text/event-stream":
            response.charset = "utf-8"
        response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        events = answer.events
        if isinstance(fault, HugeBody):
            events = [b'data: {"id":"pad","object":"chat.completion.chunk","choices":[],'
                      b'"padding":"' + b"x" * fault.size + b'"}\n\n', *events]
        # A breaking fault set past the last event fires after it, before the body ends.
        due = min(getattr(fault, "after_events", -1), len(events))
        try:
            for index, event in enumerate(events):
                if index == due:
                    await self._fault_now(fault, request, response)
                if isinstance(fault, SlowTokens) and index > 0:
                    await self._pause(fault.delay, 1)
                if index < len(events) - 1:
                    await response.write(event)
                    continue
                async with self._serving(request, True):  # a fault raising here uncounts it
                    await response.write(event)
                    if due == len(events):
                        await self._fault_now(fault, request, response)
                    await response.write_eof()
        except _Ended:  # a garbage or error event ended the stream early, cleanly
            pass
        return response

    async def _fault_now(self, fault: Fault | None, request: web.Request,
                         response: web.StreamResponse) -> None:
        """Apply a mid-stream fault at the point it is due."""
        if isinstance(fault, CutStream):
            _cut(request)
        elif isinstance(fault, HangMidStream):
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, GarbageJSON | ErrorEvent):
            broken = self._wire.garbage_event() if isinstance(fault, GarbageJSON) \
                else self._wire.error_event(fault.code)
            await response.write(broken)
            await response.write_eof()
            raise _Ended

    @contextlib.asynccontextmanager
    async def _serving(self, request: web.Request, whole: bool) -> AsyncIterator[None]:
        """Count an answer as served *before* its last bytes leave, so a client that has it
        always sees the count; undo the count if those bytes could not be written."""
        counted = whole and request.method == "POST"
        if counted:
            with self._lock:
                self._served += 1
        try:
            yield
        except BaseException:
            if counted:
                with self._lock:
                    self._served -= 1
            raise


def _reset(transport: asyncio.Transport | None) -> None:
    """Abort with SO_LINGER 0 so the peer sees a TCP RST (ECONNRESET), not a clean close."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _cut(request: web.Request) -> None:
    """Close after flushing what was written: the peer gets a body that stops mid-way."""
    if request.transport is not None:
        request.transport.close()
    raise _Cut
