"""A fast fake OpenAI upstream for the gateway-overhead benchmark.

It must never be the bottleneck, so it is a raw asyncio protocol on uvloop (no framework, no
JSON parsing): fixed, pre-serialised answers, HTTP/1.1 keep-alive, one process on its own core.

- ``POST .../chat/completions`` answers a fixed, realistic completion;
- with ``"stream": true`` it answers a fixed SSE stream: 20 content chunks, a final chunk
  with ``finish_reason`` and ``data: [DONE]`` (22 events);
- when the request's model is ``bench-paced`` the stream is paced: headers and the first
  event at once, then one event every ``--pace-ms`` (to measure time to first byte through
  a gateway: a gateway that buffers shows it at once).

Run: ``python bench/overhead/upstream.py --port 9000 [--pace-ms 5]``; it prints ``READY <port>``.
Only stdlib and uvloop: it also serves as the payload module for the rest of the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import socket
import sys
from typing import Any

MODEL = "bench-model"
PACED_MODEL = "bench-paced"
UPSTREAM_KEY = "sk-bench-upstream-0123456789"

CONTENT = (
    "Here is a short summary of the quarterly report. Revenue grew by eleven percent, driven "
    "mostly by the subscription business, while hardware sales were flat. Operating costs rose "
    "faster than planned because of new hires in the research team and a one-off legal "
    "settlement. The board approved a buy-back programme and kept the dividend unchanged. "
    "Management expects growth to slow slightly next quarter as two large contracts end, but "
    "the pipeline of new deals is the strongest it has been in three years."
)
N_CHUNKS = 20
PROMPT_TOKENS = 96
COMPLETION_TOKENS = 92
CREATED = 1_732_300_000


def _split(text: str, n: int) -> list[str]:
    """Cut `text` into `n` pieces at word boundaries (as token deltas would be)."""
    words = text.split(" ")
    per, extra = divmod(len(words), n)
    pieces, i = [], 0
    for k in range(n):
        take = per + (1 if k < extra else 0)
        piece = " ".join(words[i : i + take])
        i += take
        pieces.append(piece if k == 0 else " " + piece)
    return pieces


CHUNKS = _split(CONTENT, N_CHUNKS)
assert "".join(CHUNKS) == CONTENT

USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
}


def completion_body(model: str = MODEL) -> bytes:
    """The fixed non-streaming answer, shaped like OpenAI's."""
    return json.dumps({
        "id": "chatcmpl-bench0000000000000000000001",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": CONTENT, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": USAGE,
    }, separators=(",", ":")).encode()


def stream_events(model: str = MODEL) -> list[bytes]:
    """The fixed SSE events: 20 content chunks, a final chunk, then ``[DONE]``."""
    def chunk(delta: dict[str, Any], finish: str | None, usage: Any = None) -> bytes:
        obj: dict[str, Any] = {
            "id": "chatcmpl-bench0000000000000000000002",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}],
        }
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": CHUNKS[0]}, None)]
    events += [chunk({"content": piece}, None) for piece in CHUNKS[1:]]
    events.append(chunk({}, "stop", USAGE))
    events.append(b"data: [DONE]\n\n")
    return events


def request_body(stream: bool = False, model: str = MODEL) -> bytes:
    """What the load generator sends: a realistic small chat request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant for the finance team."},
            {"role": "user", "content": (
                "Summarise the attached quarterly report in one paragraph for the weekly "
                "newsletter: revenue, costs, the board's decisions and the outlook. Keep it "
                "under 120 words and do not use bullet points."
            )},
        ],
        "temperature": 0.2,
        "max_tokens": 256,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_BODY = completion_body()
_RESP_JSON = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
    b"x-request-id: bench\r\n\r\n" % len(_BODY)
) + _BODY
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nx-request-id: bench\r\n\r\n"
)
_EVENTS = [_chunk(e) for e in stream_events()]
_PACED_EVENTS = [_chunk(e) for e in stream_events(PACED_MODEL)]
_RESP_STREAM = _SSE_HEAD + b"".join(_EVENTS) + b"0\r\n\r\n"
_HEALTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
)
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_PACED_RE = re.compile(rb'"model"\s*:\s*"' + PACED_MODEL.encode() + rb'"')


def _chunked_body(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked request body from `buf[start:]`: (body, end) or None if incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n", pos)  # no trailers expected
            return (b"".join(parts), end + 2) if end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


class Upstream(asyncio.Protocol):
    """One HTTP/1.1 connection; requests are answered in order (no pipelining overlap)."""

    pace: float = 0.005

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced stream is being written
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        buf = self.buf
        while self.transport is not None and not self.busy:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            start = end + 4
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                length = int(head[i + 17 : j if j >= 0 else None])
                if len(buf) < start + length:
                    return
                body = bytes(buf[start : start + length])
                del buf[: start + length]
            elif b"\r\ntransfer-encoding: chunked" in head:
                decoded = _chunked_body(buf, start)
                if decoded is None:
                    return
                body, stop = decoded
                del buf[:stop]
            else:
                body = b""
                del buf[:start]
            close = b"\r\nconnection: close" in head
            self._answer(head, body, close)

    def _answer(self, head: bytes, body: bytes, close: bool) -> None:
        transport = self.transport
        assert transport is not None
        line_end = head.find(b"\r\n")
        parts = head[: line_end if line_end >= 0 else None].split(b" ")
        if len(parts) < 2:
            transport.write(_BAD)
            transport.close()
            return
        method, path = parts[0], parts[1].split(b"?")[0]
        if method == b"post" and path.endswith(b"/chat/completions"):
            if _STREAM_RE.search(body) is None:
                transport.write(_RESP_JSON)
            elif _PACED_RE.search(body) is None or self.pace <= 0:
                transport.write(_RESP_STREAM)
            else:
                self._paced(close)
                return
        elif method == b"get":
            transport.write(_HEALTH)
        else:
            transport.write(_NOT_FOUND)
        if close:
            transport.close()

    def _paced(self, close: bool) -> None:
        """Headers and the first event now, then one event every `pace` seconds."""
        assert self.transport is not None
        self.busy = True
        self.transport.write(_SSE_HEAD + _PACED_EVENTS[0])
        loop = asyncio.get_running_loop()

        def step(i: int) -> None:
            self.timer = None
            if self.transport is None:
                return
            if i < len(_PACED_EVENTS) - 1:
                self.transport.write(_PACED_EVENTS[i])
                self.timer = loop.call_later(self.pace, step, i + 1)
                return
            # `[DONE]` and the end of the body leave together, as from real servers (a gap
            # there would only measure how a gateway copes with a body that ends late).
            self.transport.write(_PACED_EVENTS[-1] + b"0\r\n\r\n")
            self.busy = False
            if close:
                self.transport.close()
            else:
                self._process()

        self.timer = loop.call_later(self.pace, step, 1)


async def serve(host: str, port: int, pace_ms: float) -> None:
    """Serve until SIGTERM/SIGINT."""
    Upstream.pace = pace_ms / 1000.0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pace-ms", type=float, default=5.0,
                        help="delay between events of a `bench-paced` stream")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("upstream: loopback addresses only")
    try:
        import uvloop
    except ImportError:  # still correct, only slower
        uvloop = None
    if uvloop is not None:
        uvloop.run(serve(args.host, args.port, args.pace_ms))
    else:
        asyncio.run(serve(args.host, args.port, args.pace_ms))


if __name__ == "__main__":
    main()
