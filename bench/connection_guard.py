"""What the connection deadlines cost (emancipate.api.connections), side by side in one run.

A minimal ASGI app (a 2-byte JSON answer, so that the HTTP protocol is most of the work) under
uvicorn with uvloop, once with its stock httptools protocol and once with `GuardedProtocol`;
wrk on another core, keep-alive connections, alternating rounds. Reports requests/s and the
server's CPU time per request (utime + stime from /proc).

    .venv/bin/python bench/connection_guard.py [--seconds 4] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


async def app(scope: dict, receive: object, send: object) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]


def serve(kind: str, port: int) -> None:
    import uvicorn

    from emancipate.api.connections import ConnectionLimits, protocol_for

    http = "httptools" if kind == "stock" else protocol_for(
        ConnectionLimits(10.0, 30.0, 5.0, 2048, 65536))
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=http,  # type: ignore[arg-type]
                lifespan="off", access_log=False, log_level="warning")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(kind: str, seconds: int, connections: int) -> tuple[float, float]:
    port = _port()
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve", kind,
                               str(port)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        before = _cpu(server.pid)
        out = subprocess.run(["taskset", "-c", "1", shutil.which("wrk") or "wrk", "-t1",
                              f"-c{connections}", f"-d{seconds}s",
                              f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, check=True).stdout
        cpu = _cpu(server.pid) - before
        requests = int(next(line for line in out.splitlines()
                            if "requests in" in line).split()[0])
        return requests / seconds, cpu / requests * 1e6
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"stock": [], "guarded": []}
    for _ in range(args.rounds):
        for kind in results:
            results[kind].append(measure(kind, args.seconds, args.connections))
    for kind, runs in results.items():
        rps = sorted(r for r, _ in runs)[len(runs) // 2]
        cpu = sorted(c for _, c in runs)[len(runs) // 2]
        print(f"{kind:8s} median of {len(runs)}: {rps:9.0f} req/s  {cpu:6.1f} µs CPU/request")


if __name__ == "__main__":
    main()
