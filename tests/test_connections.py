"""Slow and idle sockets cannot lock real clients out (issue 17 §6), through a started gateway.

Sockets that send half a request line, headers without their body, or nothing at all are
closed after the configured timeouts; while they are held, and past `server.max_connections`,
`/healthz` is still answered. Counts, not times: the waits below are generous bounds.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import httpx

from tests.gateway_process import GatewayProcess

STALLS = 300
WAIT = 60.0  # seconds a socket may take to be closed: a bound, never a measured time


def _config(**server: object) -> dict:
    return {"providers": {}, "routes": {}, "server": server}


@contextlib.contextmanager
def _stalled(gw: GatewayProcess, first_bytes: list[bytes]) -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for i in range(STALLS):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=WAIT)
            data = first_bytes[i % len(first_bytes)]
            if data:
                s.sendall(data)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def _healthz_answers(gw: GatewayProcess, n: int = 20) -> int:
    ok = 0
    for _ in range(n):
        with contextlib.suppress(httpx.HTTPError):  # a new connection: a client arriving now
            ok += httpx.get(gw.url + "/healthz", timeout=10).status_code == 200
    return ok


def _closed_by_server(s: socket.socket) -> bool:
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


HALF_LINE = b"GET /heal"
HEADERS_NO_BODY = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                   b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"mo")
NOTHING = b""


def test_stalled_sockets_are_closed_after_the_timeouts_and_healthz_answers_meanwhile(
        start_gateway: Callable[..., GatewayProcess]) -> None:
    gw = start_gateway(_config(header_timeout=1, body_timeout=1, keep_alive_timeout=1))
    with _stalled(gw, [HALF_LINE, HEADERS_NO_BODY, NOTHING]) as socks:
        assert _healthz_answers(gw) == 20
        assert sum(_closed_by_server(s) for s in socks) == STALLS
    assert _healthz_answers(gw) == 20


def test_past_max_connections_stalled_sockets_make_room_for_real_clients(
        start_gateway: Callable[..., GatewayProcess]) -> None:
    gw = start_gateway(_config(header_timeout=120, max_connections=50))
    with _stalled(gw, [HALF_LINE]) as socks:
        assert _healthz_answers(gw) == 20
        # The server never holds more than 50: at least all but 50 stalled sockets were
        # closed to make room (which ones depends on the order the kernel hands them over).
        for s in socks[-60:]:
            s.settimeout(1.0)  # most of these are the ones still held: do not wait long
        closed = sum(_closed_by_server(s) for s in socks)
        assert closed >= STALLS - 50
    with httpx.Client(base_url=gw.url, timeout=10) as client:  # keep-alive clients too
        assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5


def test_oversized_headers_get_a_431(start_gateway: Callable[..., GatewayProcess]) -> None:
    gw = start_gateway(_config(max_header_bytes=8192))
    r = httpx.get(gw.url + "/healthz", headers={"x-big": "a" * 10_000}, timeout=10)
    assert r.status_code == 431 and "server.max_header_bytes" in r.text
    assert httpx.get(gw.url + "/healthz", headers={"x-ok": "a" * 4000}, timeout=10
                     ).status_code == 200
