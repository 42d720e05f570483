"""The HTTP stack, measured: which server runs the gateway, which client calls upstreams.

Two comparisons, on loopback, each side by side in one run (docs/architecture.md, "HTTP
stack, measured", holds the figures):

- **client**: aiohttp vs httpx posting the bench's chat completion to the bench upstream from
  one uvloop event loop pinned to the gateway core (16 concurrent callers): requests/s and CPU
  time per request of the calling process.
- **server**: the gateway's own ASGI app (auth, guard, policy and ledger off, so that the
  server is what differs) under uvicorn (uvloop + httptools, as `emancipate serve` runs it)
  and under granian (`--interface asgi --loop uvloop`, one worker), loaded by wrk like
  `bench/run.py`: requests/s, latency and CPU per request (whole process tree), plain and
  streaming, and resident memory.

    .venv/bin/python bench/http_stack.py [--only client|server] [--seconds 4]

granian is not a dependency of the project: the script installs it into the running virtual
environment when it is missing (`pip install granian`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import client  # noqa: E402
from overhead.procs import (  # noqa: E402
    GATEWAY_CORE,
    LOAD_CORE,
    Registry,
    free_port,
    measured,
    rss_bytes,
    start_upstream,
)
from overhead.targets import CHAT_PATH, Ctx, Emancipate, EmancipateVariant  # noqa: E402
from overhead.upstream import request_body  # noqa: E402
from overhead.wrk import lua_script, run_wrk  # noqa: E402

LEAN = {"auth": {"enabled": False}, "guard": {"enabled": False},
        "ledger": {"enabled": False}, "policy": {"enabled": False}}
GRANIAN_APP = '''
import os, sys
from emancipate.config import load_config
from emancipate.gateway import Gateway
from emancipate.api import create_app
sys.setswitchinterval(0.0005)
app = create_app(Gateway(load_config(os.environ["GW_CONFIG"])))
'''


# --- client ----------------------------------------------------------------------------------


async def _clients(url: str, n: int, concurrency: int) -> list[tuple[str, float, float]]:
    import aiohttp
    import httpx
    import orjson

    body = request_body()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    hx = httpx.AsyncClient(limits=httpx.Limits(max_connections=256,
                                               max_keepalive_connections=256))

    async def with_aiohttp() -> None:
        async with session.post(url, data=body, headers=headers) as resp:
            orjson.loads(await resp.read())

    async def with_httpx() -> None:
        resp = await hx.post(url, content=body, headers=headers)
        orjson.loads(resp.content)

    async def run(call: Any, count: int) -> tuple[float, float]:
        async def worker(k: int) -> None:
            for _ in range(k):
                await call()

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
        return time.perf_counter() - t0, time.process_time() - c0

    out = []
    try:
        for _ in range(2):  # interleaved, twice: the machine is shared
            for name, call in (("aiohttp", with_aiohttp), ("httpx", with_httpx)):
                await run(call, 10 * concurrency)  # warm-up: connections, caches
                wall, cpu = await run(call, n)
                out.append((name, n / wall, 1e6 * cpu / n))
    finally:
        await session.close()
        await hx.aclose()
    return out


def compare_clients(registry: Registry, work: Path, n: int) -> None:
    import uvloop

    _, port = start_upstream(registry, work)
    os.sched_setaffinity(0, {GATEWAY_CORE})
    try:
        rows = uvloop.run(_clients(f"http://127.0.0.1:{port}{CHAT_PATH}", n, 16))
    finally:
        os.sched_setaffinity(0, {LOAD_CORE})
    print("\nclient (16 concurrent callers, one uvloop loop on the gateway core)")
    print("| client | req/s | CPU per request (µs) |\n|---|---:|---:|")
    for name, rps, cpu_us in rows:
        print(f"| {name} | {rps:,.0f} | {cpu_us:,.0f} |")


# --- server ----------------------------------------------------------------------------------


def _granian() -> str:
    exe = shutil.which("granian") or str(Path(sys.executable).with_name("granian"))
    if not Path(exe).exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "granian"], check=True)
    return exe


Served = tuple[Any, str, dict[str, str]]  # process, url, client headers


def _serve(server: str, registry: Registry, ctx: Ctx, work: Path) -> Served:
    target = Emancipate(EmancipateVariant(f"stack-{server}", server, LEAN))
    port = free_port()
    launch = target.launch(ctx, port)
    env = dict(launch.env)
    argv = launch.argv
    if server == "granian":
        (work / "gateway_app.py").write_text(GRANIAN_APP)
        env.update({"GW_CONFIG": argv[argv.index("--config") + 1], "PYTHONPATH": str(work)})
        argv = [_granian(), "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
                "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning",
                "gateway_app:app"]
    proc = registry.start(server, argv, work / f"{server}.log", GATEWAY_CORE, env, launch.cwd)
    url = f"http://127.0.0.1:{port}{CHAT_PATH}"
    asyncio.run(client.wait_first_answer(url, request_body(), target.headers(ctx), 60,
                                         proc.alive))
    return proc, url, target.headers(ctx)


def compare_servers(registry: Registry, work: Path, seconds: float) -> None:
    ctx = Ctx(work, start_upstream(registry, work)[1], lambda m: None)
    rows = []
    for _ in range(2):  # interleaved, twice: the machine is shared
        for server in ("uvicorn", "granian"):
            proc, url, headers = _serve(server, registry, ctx, work)
            try:
                rss = rss_bytes(proc.pid) / 2**20
                for kind, stream, c in (("plain", False, 1), ("plain", False, 16),
                                        ("stream", True, 16)):
                    script = work / f"{server}-{kind}.lua"
                    script.write_text(lua_script(request_body(stream=stream), headers))
                    run_wrk(url, script, c, 1)
                    with measured(proc.pid) as m:
                        res = run_wrk(url, script, c, seconds)
                    cpu = 1000 * m["cpu_s"] / res.requests if res.requests else 0.0
                    rows.append((server, f"{kind} c={c}", res.rps, res.p50_ms, res.p99_ms, cpu,
                                 rss))
            finally:
                registry.stop(proc)
    print("\nserver (the gateway's app, auth/guard/policy/ledger off; wrk; gateway core)")
    print("| server | load | req/s | p50 (ms) | p99 (ms) | CPU per request (ms) | RSS (MiB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for server, load, rps, p50, p99, cpu, rss in rows:
        print(f"| {server} | {load} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {cpu:.3f} | "
              f"{rss:.0f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("client", "server"))
    p.add_argument("--seconds", type=float, default=4.0, help="per measured server run")
    p.add_argument("--requests", type=int, default=6000, help="per client run")
    args = p.parse_args()
    os.sched_setaffinity(0, {LOAD_CORE})
    registry = Registry()
    with tempfile.TemporaryDirectory(prefix="emancipate-stack-") as tmp:
        try:
            if args.only in (None, "client"):
                compare_clients(registry, Path(tmp), args.requests)
            if args.only in (None, "server"):
                compare_servers(registry, Path(tmp), args.seconds)
        finally:
            registry.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
