"""Streaming through each API's wire, side by side: chat completions and Anthropic Messages.

The same method as the overhead bench (`bench/run.py`, whose parts it reuses): its fake
upstream (`bench/overhead/upstream.py`, 22 SSE events), one gateway in the full
configuration (auth with a virtual key made by the gateway's CLI, guard, policy, ledger: the
`emancipate (full)` row) pinned to core 0, wrk and the upstream on core 1. For each API the
same request in that API's form, streamed: requests/s at one concurrency (wrk, whole
streams), the gateway's CPU time per stream, and time to first event on sequential paced
streams (a raw-socket client; the first `data:` line). "Added" is relative to the upstream
called directly; the chat row is the reference the other wires are compared with.

    .venv/bin/python bench/api_stream.py                      # chat and messages, ~1 minute
    .venv/bin/python bench/api_stream.py --duration 5 --api messages

Another API's row is one entry in `APIS` (path, body, headers, a check of its stream).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import client  # noqa: E402
from overhead.messages_api import (  # noqa: E402
    ANTHROPIC_VERSION,
    MESSAGES_PATH,
    check_messages_stream,
    messages_body,
)
from overhead.procs import (  # noqa: E402
    GATEWAY_CORE,
    Registry,
    free_port,
    measured,
    start_upstream,
)
from overhead.targets import (  # noqa: E402
    CHAT_PATH,
    EMANCIPATE_VARIANTS,
    Ctx,
    Emancipate,
    ensure_apt,
)
from overhead.upstream import MODEL, PACED_MODEL, request_body  # noqa: E402
from overhead.wrk import lua_script, run_wrk  # noqa: E402


def log(msg: str) -> None:
    print(f"[api-stream {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Api:
    """One API's streamed request and how to tell its stream is whole and right."""

    path: str
    body: Callable[[str], bytes]
    headers: Callable[[str], dict[str, str]]
    problem: Callable[[client.Reply], str | None]


APIS: dict[str, Api] = {
    "chat": Api(CHAT_PATH, lambda model: request_body(stream=True, model=model),
                lambda key: {"Authorization": f"Bearer {key}"},
                lambda reply: client.check_reply(reply, True)),
    "messages": Api(MESSAGES_PATH, messages_body,
                    lambda key: {"x-api-key": key, **ANTHROPIC_VERSION},
                    check_messages_stream),
}


async def first_events(url: str, api: Api, headers: dict[str, str], n: int, warmup: int = 3,
                       ) -> list[float]:
    """Milliseconds to the first event of `n` sequential paced streams (one connection)."""
    conn = client.Conn(url)
    out: list[float] = []
    try:
        for i in range(n + warmup):
            reply = await asyncio.wait_for(conn.post(api.body(PACED_MODEL), headers), 30)
            problem = api.problem(reply)
            if problem:
                raise RuntimeError(f"{url}: {problem}")
            if i >= warmup:
                assert reply.t_first_event is not None
                out.append(reply.t_first_event * 1000)
    finally:
        await conn.close()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(base: str, api: Api, key: str, pid: int, args: argparse.Namespace,
            work: Path) -> dict[str, Any]:
    url = base + api.path
    headers = api.headers(key)
    script = work / f"{api.path.strip('/').replace('/', '-')}.lua"
    script.write_text(lua_script(api.body(MODEL), headers))
    run_wrk(url, script, args.concurrency, args.warmup)
    with measured(pid) as m:
        res = run_wrk(url, script, args.concurrency, args.duration)
    ttfe = asyncio.run(first_events(url, api, headers, args.ttfe_requests))
    return {"rps": res.rps, "errors": res.errors, "p50_ms": res.p50_ms, "p99_ms": res.p99_ms,
            "cpu_ms_per_stream": 1000 * m["cpu_s"] / res.requests if res.requests else None,
            "ttfe_p50_ms": pct(ttfe, 0.5), "ttfe_p99_ms": pct(ttfe, 0.99)}


def start(registry: Registry, work: Path, pace_ms: float) -> tuple[Ctx, Emancipate, str, int]:
    """The fake upstream, then the gateway (full row) with its virtual key."""
    _, port = start_upstream(registry, work, "--pace-ms", str(pace_ms))
    ctx = Ctx(work, port, log)
    gateway = Emancipate(EMANCIPATE_VARIANTS[0])
    gw_port = free_port()
    launch = gateway.launch(ctx, gw_port)
    proc = registry.start("emancipate", launch.argv, work / "emancipate.log", GATEWAY_CORE,
                          launch.env, launch.cwd)
    base = f"http://127.0.0.1:{gw_port}"
    asyncio.run(client.wait_first_answer(base + CHAT_PATH, request_body(),
                                         gateway.headers(ctx), 60, proc.alive))
    return ctx, gateway, base, proc.pid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--api", default="chat,messages", help=f"among {','.join(APIS)}")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--ttfe-requests", type=int, default=50)
    p.add_argument("--pace-ms", type=float, default=2.0)
    args = p.parse_args(argv)
    names = args.api.split(",")
    ensure_apt({"wrk": "wrk", "taskset": "util-linux"}, log)
    registry = Registry()
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="emancipate-api-stream-") as tmp:
        work = Path(tmp)
        try:
            ctx, gateway, base, pid = start(registry, work, args.pace_ms)
            key = gateway.api_key or "unused"
            upstream = f"http://127.0.0.1:{ctx.upstream_port}"
            direct = asyncio.run(first_events(upstream + CHAT_PATH, APIS["chat"], {},
                                              args.ttfe_requests))
            for name in names:
                rows[name] = measure(base, APIS[name], key, pid, args, work)
                rows[name]["added_ttfe_p50_ms"] = rows[name]["ttfe_p50_ms"] - pct(direct, 0.5)
                log(f"{name}: {rows[name]}")
        finally:
            registry.stop_all()
    print(f"| API (streamed, c={args.concurrency}) | req/s | CPU per stream (ms) | "
          "first event p50 (ms) | added first event p50 (ms) | p99 (ms) | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {APIS[name].path} | {row['rps']:,.0f} | {row['cpu_ms_per_stream']:.3f} | "
              f"{row['ttfe_p50_ms']:.2f} | {row['added_ttfe_p50_ms']:.2f} | "
              f"{row['ttfe_p99_ms']:.2f} | {row['errors']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
