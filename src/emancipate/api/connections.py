"""Connection limits uvicorn lacks: a slow or idle socket cannot hold a place for long.

uvicorn's httptools protocol arms a timer only between keep-alive requests: a connection that
sends half a request line, or headers then no body, stays open for ever, and enough of them
exhaust the process's file descriptors so that `/healthz` is refused (issue 17 §6: 1,100
sockets did it). This subclass adds, per connection, one deadline for the phase it is in:

    headers  from the connection (or the next request's first byte) to the end of the
             headers: `server.header_timeout`; and at most `server.max_header_bytes` of them
    body     the longest pause between two pieces of the body: `server.body_timeout`
    app      the request is read; the application answers: no deadline
    idle     between keep-alive requests: `server.keep_alive_timeout`

A connection past its deadline is closed (a request whose body was cut short is seen by the
application as a client disconnect). At most `server.max_connections` are open: a new one
past that closes the oldest connection that is not being answered (waiting for headers, or
idle), so a flood of stalled sockets evicts itself and never locks real clients out; if every
connection is being answered, the new one is closed.

Deadlines are plain floats checked by one sweep per server, a few times per timeout, rather
than one timer per connection: a request costs a few attribute writes, not timer churn.
Measured against uvicorn's stock protocol on a 2-byte answer (bench/connection_guard.py,
2026-12-02, 2 shared cores): 25.9 vs 22.5 and 28.5 vs 30.6 µs of server CPU per request in
two runs, i.e. within run-to-run noise.
This relies on uvicorn's httptools protocol callbacks (`on_message_begin`, `on_header`,
`on_headers_complete`, `on_body`, `on_message_complete`, `on_response_complete`);
tests/test_connections.py holds them to it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("emancipate.connections")

Phase = Literal["headers", "body", "app", "idle"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_connections: int
    max_header_bytes: int


class ConnectionGuard:
    """One server's limits and open connections, and the sweep that enforces deadlines.

    The sweep is a `call_later` chain that runs only while connections are open: it needs no
    task and no owner at shutdown (the loop drops the pending callback when it closes)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.connections: set[GuardedProtocol] = set()
        self.interval = max(0.05, min(1.0, min(limits.header_timeout, limits.body_timeout,
                                               limits.keep_alive_timeout) / 4))
        self._sweep: asyncio.TimerHandle | None = None

    def join(self, conn: GuardedProtocol) -> None:
        self.connections.add(conn)
        if len(self.connections) > self.limits.max_connections:
            self._make_room(conn)
        if self._sweep is None:
            self._sweep = conn.loop.call_later(self.interval, self._run, conn.loop)

    def leave(self, conn: GuardedProtocol) -> None:
        self.connections.discard(conn)

    def _make_room(self, newcomer: GuardedProtocol) -> None:
        victim: GuardedProtocol | None = None
        for conn in self.connections:
            if (conn is not newcomer and conn.phase in ("headers", "idle")
                    and not conn.transport.is_closing()
                    and (victim is None or conn.since < victim.since)):
                victim = conn
        if victim is None:  # every connection is being answered: the newcomer waits its turn
            log.warning("server.max_connections (%d) reached, all busy: connection refused",
                        self.limits.max_connections)
            newcomer.transport.close()
        else:
            victim.transport.close()
        self.connections.discard(victim or newcomer)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in [c for c in self.connections if c.deadline < now]:
            if conn.expire(now):
                self.connections.discard(conn)
        self._sweep = (loop.call_later(self.interval, self._run, loop)
                       if self.connections else None)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline per phase (see the module docstring)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase: Phase = "headers"
        self.since = 0.0  # when the phase began: eviction takes the oldest
        self.deadline = math.inf
        self.header_bytes = 0

    def _enter(self, phase: Phase) -> None:
        limits = self.guard.limits
        self.phase = phase
        self.since = now = self.loop.time()
        if phase == "headers":
            self.deadline = now + limits.header_timeout
        elif phase == "body":
            self.deadline = now + limits.body_timeout
        elif phase == "idle":
            self.deadline = now + limits.keep_alive_timeout
        else:
            self.deadline = math.inf

    def expire(self, now: float) -> bool:
        """Close the connection past its deadline; False when the wait is ours, not the
        client's (reading paused because the application has not taken the body yet)."""
        if self.phase == "body" and self.flow is not None and self.flow.read_paused:
            self.deadline = now + self.guard.limits.body_timeout
            return False
        if not self.transport.is_closing():
            self.transport.close()
        return True

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("headers")
        self.guard.join(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.leave(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == "idle":  # the next request's first byte: its headers are due
            self._enter("headers")
        super().data_received(data)

    # --- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_bytes = 0
        if self.phase != "headers":  # a pipelined request
            self._enter("headers")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self.header_bytes += size
        limit = self.guard.limits.max_header_bytes
        if self.header_bytes > limit:
            message = (f"Request line and headers exceed {limit} bytes "
                       "(server.max_header_bytes).").encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
                b"charset=utf-8\r\nconnection: close\r\ncontent-length: "
                + str(len(message)).encode() + b"\r\n\r\n" + message)
            self.transport.close()
            raise ValueError("headers too large")  # stops the parser (uvicorn catches it)

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # not after our own 431
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._enter("body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self.deadline = self.loop.time() + self.guard.limits.body_timeout

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Answered before its body was read (a 401, a 413): nothing more is due for it.
        self._enter("idle" if self.cycle is not None and self.cycle.response_complete
                    else "app")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.phase == "app":
            self._enter("idle")


def protocol_for(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """A protocol class for one server (uvicorn's `http=`): its connections share one guard."""
    return type("GuardedProtocol", (GuardedProtocol,), {"guard": ConnectionGuard(limits)})
