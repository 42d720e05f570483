"""A tiny HTTP/1.1 client on raw asyncio streams, for what wrk cannot measure.

- time to first byte of a stream: to the first ``data:`` event, not the response headers
  (a gateway may send headers early and still buffer the events);
- correctness checks: the answer through a gateway must be the upstream's, word for word;
- start-up time: from process start to the first successful answer.
No HTTP library on purpose: its own per-chunk cost would blur sub-millisecond figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from overhead.upstream import CONTENT


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    t_headers: float  # seconds after the request was written
    t_first_event: float | None  # first body bytes holding "data:"
    t_end: float


class Conn:
    """One keep-alive connection to a loopback server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"loopback only: {url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, body: bytes, headers: dict[str, str]) -> Reply:
        """POST `body`; read the whole answer (content-length, chunked, or until close)."""
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                "Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        t0 = time.perf_counter()
        self.writer.write(raw)
        reader = self.reader
        status_and_headers = await reader.readuntil(b"\r\n\r\n")
        t_headers = time.perf_counter() - t0
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        parts: list[bytes] = []
        t_first: float | None = None
        seen = b""

        def got(data: bytes) -> None:
            nonlocal t_first, seen
            parts.append(data)
            if t_first is None:
                seen = (seen + data)[-4096:]
                if b"data:" in seen:
                    t_first = time.perf_counter() - t0

        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                chunk = await reader.readexactly(size + 2)
                got(chunk[:-2])
        elif "content-length" in hdrs:
            remaining = int(hdrs["content-length"])
            while remaining > 0:
                chunk = await reader.read(min(remaining, 65536))
                if not chunk:
                    raise ConnectionError("connection closed mid-body")
                got(chunk)
                remaining -= len(chunk)
        else:
            while chunk := await reader.read(65536):
                got(chunk)
            await self.close()
        t_end = time.perf_counter() - t0
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return Reply(status, hdrs, b"".join(parts), t_headers, t_first, t_end)


def stream_text(body: bytes) -> tuple[str, int, bool]:
    """(concatenated delta contents, number of data events, whether [DONE] came)."""
    text, events, done = [], 0, False
    for line in body.split(b"\n"):
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        events += 1
        if payload == b"[DONE]":
            done = True
            continue
        obj = json.loads(payload)
        for choice in obj.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                text.append(piece)
    return "".join(text), events, done


def check_reply(reply: Reply, stream: bool) -> str | None:
    """None when the answer is the upstream's fixed answer, else what is wrong."""
    if reply.status != 200:
        return f"status {reply.status}: {reply.body[:300]!r}"
    if stream:
        text, events, done = stream_text(reply.body)
        if not done:
            return f"stream without [DONE] ({events} events)"
        if text != CONTENT:
            return f"stream content differs: {text[:120]!r}"
        return None
    try:
        content = json.loads(reply.body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"not a chat completion: {reply.body[:300]!r}"
    return None if content == CONTENT else f"content differs: {content[:120]!r}"


async def check(url: str, body: bytes, headers: dict[str, str], stream: bool) -> Reply:
    """One request on a fresh connection; raises if the answer is not the upstream's."""
    conn = Conn(url)
    try:
        reply = await conn.post(body, headers)
    finally:
        await conn.close()
    problem = check_reply(reply, stream)
    if problem:
        raise RuntimeError(f"{url}: {problem}")
    return reply


async def wait_first_answer(url: str, body: bytes, headers: dict[str, str], timeout: float,
                            alive: Callable[[], bool]) -> float:
    """Poll until the first correct answer; seconds spent polling (the caller adds the rest)."""
    t0 = time.perf_counter()
    last = "no answer"
    while time.perf_counter() - t0 < timeout:
        if not alive():
            raise RuntimeError(f"process exited before answering ({last})")
        conn = Conn(url)
        try:
            reply = await asyncio.wait_for(conn.post(body, headers), timeout=10)
            problem = check_reply(reply, stream=False)
            if problem is None:
                return time.perf_counter() - t0
            last = problem
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            last = repr(exc)
        finally:
            await conn.close()
        await asyncio.sleep(0.01)
    raise RuntimeError(f"no correct answer within {timeout:.0f}s ({last})")


@dataclass
class TtfbResult:
    """Streaming time to first event and to the end, in milliseconds (sequential requests)."""

    requests: int
    ttfb_p50_ms: float
    ttfb_p90_ms: float
    ttfb_p99_ms: float
    total_p50_ms: float
    headers_p50_ms: float
    events: int

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


async def ttfb(url: str, body: bytes, headers: dict[str, str], n: int, warmup: int = 3,
               checker: Callable[[Reply, bool], str | None] | None = None) -> TtfbResult:
    """`n` streaming requests one after the other on one keep-alive connection; `checker`
    judges each answer (default: a chat stream with the upstream's answer)."""
    conn = Conn(url)
    first: list[float] = []
    total: list[float] = []
    head: list[float] = []
    events = 0
    try:
        for i in range(n + warmup):
            reply = await asyncio.wait_for(conn.post(body, headers), timeout=30)
            problem = (checker or check_reply)(reply, True)
            if problem:
                raise RuntimeError(f"{url}: {problem}")
            if i < warmup:
                continue
            assert reply.t_first_event is not None
            first.append(reply.t_first_event * 1000)
            total.append(reply.t_end * 1000)
            head.append(reply.t_headers * 1000)
            events = stream_text(reply.body)[1]
    finally:
        await conn.close()
    return TtfbResult(n, statistics.median(first), _pct(first, 0.9), _pct(first, 0.99),
                      statistics.median(total), statistics.median(head), events)
