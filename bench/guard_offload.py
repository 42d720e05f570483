"""Where a large guard scan should run: inline, in a worker thread, in a process pool.

An asyncio loop serves `GET /healthz` (a raw asyncio HTTP server, as cheap as the
gateway's own) while it scans a 256 KB chat body `--scans` times, one after the other, in
one of three ways: on the loop itself (what the gateway did before), in a worker thread
(`loop.run_in_executor` with a ThreadPoolExecutor), in a process pool (one worker process
that built its own Guard; the body is pickled out, findings back). A separate client
process probes `/healthz` back to back on one keep-alive connection for the whole run and
reports the latencies of the probes made while the scans ran.

Also reported: the cost of a small scan inline vs handed to a thread, which sets
`guard.offload.INLINE_CHARS`.

    .venv/bin/python bench/guard_offload.py [--scans 5] [--kb 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from emancipate.guard import Guard, GuardConfig

_GUARD: Guard | None = None

CLIENT = r"""
import http.client, json, os, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
out = []
while not os.path.exists(stop):
    t0 = time.monotonic()
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    out.append((t0, time.monotonic() - t0))
print(json.dumps(out))
"""


def body_of(kb: int) -> dict[str, Any]:
    """A chat body of `kb` KB: prose, number-dense lines (dates, amounts, spaced digits)
    and a few real values, in 8 messages: what a pasted table or log looks like."""
    prose = ("The quarterly review covers the migration of the billing service, the "
             "latency budget of the search tier and the hiring plan for the data team. ")
    numbers = "12 34 56 78 90 2024-03-01 1.23 4.56 +1 555 0100 FR76 3000 6000 0112 "
    lines = []
    size = 0
    k = 0
    while size < kb * 1024:
        line = prose if k % 3 else numbers * 2
        if k % 97 == 0:
            line += f" contact: user{k}@example.org"
        lines.append(line)
        size += len(line) + 1
        k += 1
    chunk = len(lines) // 8 + 1
    return {"model": "m", "messages": [
        {"role": "user", "content": "\n".join(lines[i:i + chunk])}
        for i in range(0, len(lines), chunk)]}


def _init() -> None:
    global _GUARD
    _GUARD = Guard.from_config(GuardConfig())


def _scan_in_process(body: dict[str, Any]) -> list[Any]:
    assert _GUARD is not None
    return _GUARD.scan_request(body)


async def _healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}")
            await writer.drain()
    finally:
        writer.close()


async def run_mode(mode: str, guard: Guard, body: dict[str, Any], scans: int
                   ) -> dict[str, Any]:
    server = await asyncio.start_server(_healthz, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool: Any = None
    if mode == "thread":
        pool = ThreadPoolExecutor(1)
    elif mode == "process":
        pool = ProcessPoolExecutor(1, initializer=_init)
        await asyncio.get_running_loop().run_in_executor(pool, _scan_in_process, body)
    loop = asyncio.get_running_loop()
    guard.scan_request(body)  # warm caches
    stop = tempfile.mktemp(prefix="guard-offload-stop-")
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), stop, stdout=subprocess.PIPE)
    await asyncio.sleep(0.5)
    start = time.monotonic()
    walls = []
    for _ in range(scans):
        t0 = time.monotonic()
        if mode == "inline":
            guard.scan_request(body)
        elif mode == "thread":
            await loop.run_in_executor(pool, guard.scan_request, body)
        else:
            await loop.run_in_executor(pool, _scan_in_process, body)
        walls.append(time.monotonic() - t0)
        await asyncio.sleep(0)
    end = time.monotonic()
    open(stop, "w").close()  # noqa: SIM115 - the client only checks that it exists
    out, _ = await client.communicate()
    os.unlink(stop)
    server.close()
    if pool is not None:
        pool.shutdown()
    probes = json.loads(out)
    during = sorted(d for t, d in probes if start <= t <= end)
    return {"mode": mode, "scan_ms_median": 1000 * statistics.median(walls),
            "probes": len(during), "probes_per_s": len(during) / (end - start),
            "healthz_p50_ms": 1000 * during[len(during) // 2] if during else None,
            "healthz_max_ms": 1000 * during[-1] if during else None}


async def handoff(guard: Guard, chars: int, runs: int = 300) -> dict[str, float]:
    """CPU µs of a scan of `chars` characters inline vs awaited from a thread."""
    body = body_of(max(1, chars // 1024))
    body["messages"] = body["messages"][:1]
    body["messages"][0]["content"] = body["messages"][0]["content"][:chars]
    pool = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()
    t0 = time.process_time()
    for _ in range(runs):
        guard.scan_request(body)
    inline = (time.process_time() - t0) / runs
    t0 = time.process_time()
    for _ in range(runs):
        await loop.run_in_executor(pool, guard.scan_request, body)
    threaded = (time.process_time() - t0) / runs
    pool.shutdown()
    return {"chars": chars, "inline_us": inline * 1e6, "thread_us": threaded * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--kb", type=int, default=256)
    args = parser.parse_args()
    guard = Guard.from_config(GuardConfig())
    body = body_of(args.kb)
    print(f"body: {sum(len(m['content']) for m in body['messages'])} characters, "
          f"{len(body['messages'])} messages; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}")
    print("| scans run | scan wall median (ms) | /healthz probes answered during the scans "
          "| per s | probe p50 (ms) | probe max (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in ("inline", "thread", "process"):
        r = asyncio.run(run_mode(mode, guard, body, args.scans))
        print(f"| {mode} | {r['scan_ms_median']:.0f} | {r['probes']} | "
              f"{r['probes_per_s']:.0f} | {r['healthz_p50_ms'] or 0:.2f} | "
              f"{r['healthz_max_ms'] or 0:.1f} |")
    print()
    print("| text (chars) | scan inline (µs CPU) | awaited from a thread (µs CPU) |")
    print("|---:|---:|---:|")
    for chars in (1024, 4096, 8192, 16384):
        h = asyncio.run(handoff(guard, chars))
        print(f"| {h['chars']} | {h['inline_us']:.0f} | {h['thread_us']:.0f} |")


if __name__ == "__main__":
    main()
