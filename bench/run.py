"""Gateway overhead, side by side: the upstream directly, nginx, emancipate, LiteLLM, Portkey.

One command (`make bench`), bounded in time, loopback only. The gateway under test runs on
core 0; the load generator (wrk), the fake upstream and this driver run on core 1. For each
target: requests/s and latency percentiles at several concurrencies, CPU time per request
(the whole process tree), streaming requests/s and time to first event, resident memory at
ready and after load, and start-up time to the first correct answer. Output: a table with the
ratios emancipate/peer (printed, and written into docs/benchmarks.md by full runs) and the raw
figures as JSON in bench/results/.

    .venv/bin/python bench/run.py            # everything, ~6 minutes (+ installs, once)
    .venv/bin/python bench/run.py --quick    # shorter runs, < 2 minutes
    .venv/bin/python bench/run.py --only emancipate,portkey --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import client, report  # noqa: E402
from overhead.messages_api import (  # noqa: E402
    ANTHROPIC_VERSION,
    MESSAGES_PATH,
    check_messages_stream,
    messages_body,
)
from overhead.procs import (  # noqa: E402
    GATEWAY_CORE,
    LOAD_CORE,
    Proc,
    Registry,
    busy_share,
    cpu_times,
    free_port,
    measured,
    rss_bytes,
    start_upstream,
)
from overhead.responses_api import (  # noqa: E402
    RESPONSES_PATH,
    check_responses_stream,
    responses_body,
)
from overhead.targets import (  # noqa: E402
    BENCH,
    CHAT_PATH,
    REPO,
    Ctx,
    Target,
    all_targets,
    ensure_apt,
)
from overhead.upstream import PACED_MODEL, request_body  # noqa: E402
from overhead.wrk import lua_script, run_wrk  # noqa: E402

INTRO = """How much a gateway costs on the request path, measured side by side in one run against
the upstream called directly, nginx (a native server's floor), LiteLLM's proxy and Portkey's
gateway. See the top of `bench/run.py` for the method; the block below is rewritten by each
full run (`make bench`); raw figures are in `bench/results/`."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [t.name for t in all_targets(optional=True)]
    defaults = {t.name for t in all_targets()}
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs (< 2 minutes in all)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up before each run (default 2)")
    p.add_argument("--only", help=f"comma-separated targets among {','.join(names)} "
                   "(the direct baseline always runs)")
    p.add_argument("--skip", help="comma-separated targets to leave out")
    p.add_argument("--concurrency", default="1,16,64", help="non-streaming concurrencies")
    p.add_argument("--paced-rate", type=float, default=1000.0,
                   help="offered req/s of the paced run over the highest concurrency's "
                   "connections (latency below saturation); 0 to skip")
    p.add_argument("--stream-concurrency", type=int, default=16)
    p.add_argument("--ttfb-requests", type=int, help="sequential paced streams (default 50)")
    p.add_argument("--pace-ms", type=float, default=2.0, help="delay between paced events")
    p.add_argument("--quiet-wait", type=float, default=20.0,
                   help="before each target, wait up to this many seconds for other processes "
                   "to leave the cores (shared machine); 0 to skip")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing")
    p.add_argument("--results-dir", type=Path,
                   help="where the raw JSON goes (default bench/results; smoke: nowhere)")
    p.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--write-docs", action=argparse.BooleanOptionalAction, default=None,
                   help="write the docs table (default: only for full runs of every target)")
    p.add_argument("--messages", action="store_true",
                   help="also a streaming row for POST /v1/messages on the emancipate targets")
    p.add_argument("--responses", action="store_true",
                   help="also a streaming row for POST /v1/responses on the emancipate targets")
    p.add_argument("--smoke", action="store_true",
                   help="self-test: the upstream alone, ~1 s runs, nothing written")
    args = p.parse_args(argv)
    if args.smoke:
        args.only = "direct"
        args.concurrency = "16"
        args.duration, args.warmup = 1.0, 0.0
        args.ttfb_requests = args.ttfb_requests or 5
        args.write_docs = False
        args.quiet_wait = 0.0
    quick = args.quick
    args.duration = args.duration or (2.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.ttfb_requests = args.ttfb_requests or (20 if quick else 50)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    wanted = defaults if not args.only else {"direct", *args.only.split(",")}
    wanted -= set((args.skip or "").split(",")) - {"direct"}
    unknown = wanted - set(names)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))} (known: {', '.join(names)})")
    args.targets = [t for t in all_targets(optional=True) if t.name in wanted]
    if args.write_docs is None:
        args.write_docs = not quick and wanted == defaults
    if args.results_dir is None and not args.smoke:
        args.results_dir = BENCH / "results"
    return args


def machine() -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (done.stdout or done.stderr).strip()

    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = out(["wrk", "-v"]).split()
    return {
        "nproc": os.cpu_count(), "cpu_model": model,
        "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "kernel": platform.release(), "python": platform.python_version(),
        "node": out(["node", "--version"]), "wrk": wrk[1] if len(wrk) > 1 else "?",
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


class Bench:
    """One run: the upstream, then each target in turn, each stopped before the next."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.registry = Registry()
        self.upstream: Proc | None = None
        self.ctx: Ctx | None = None

    def start_upstream(self) -> None:
        self.upstream, port = start_upstream(self.registry, self.workdir,
                                             "--pace-ms", str(self.args.pace_ms))
        self.ctx = Ctx(self.workdir, port, log)

    def wait_quiet(self) -> float:
        """Wait (bounded) until other processes leave both cores; the busy share at the end."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            before = cpu_times()
            time.sleep(0.5)
            busy = max(busy_share(before, cpu_times()).values(), default=0.0)
            if busy < 0.15 or time.monotonic() >= deadline:
                return busy
            log(f"other processes keep {busy:.0%} of a core busy; waiting for a quiet machine")
            time.sleep(2.0)

    def measure(self, target: Target) -> dict[str, Any]:
        """All figures for one target; the target's process is stopped on the way out."""
        assert self.ctx is not None and self.upstream is not None
        args, ctx = self.args, self.ctx
        row: dict[str, Any] = {"label": target.label, "kind": target.kind}
        if args.quiet_wait > 0:
            row["busy_before"] = round(self.wait_quiet(), 3)
        proc: Proc | None = None
        try:
            if target.name == "direct":
                url, pid = f"http://127.0.0.1:{ctx.upstream_port}{CHAT_PATH}", self.upstream.pid
            else:
                port = free_port()
                url = f"http://127.0.0.1:{port}{CHAT_PATH}"
                launch = target.launch(ctx, port)
                t0 = time.perf_counter()
                proc = self.registry.start(target.name, launch.argv,
                                           self.workdir / f"{target.name}.log", target.core,
                                           launch.env, launch.cwd)
                pid = proc.pid
                asyncio.run(client.wait_first_answer(
                    url, request_body(), target.headers(ctx), target.startup_timeout, proc.alive))
                row["startup_s"] = time.perf_counter() - t0
                log(f"{target.name}: first answer after {row['startup_s']:.2f} s")
            headers = target.headers(ctx)
            asyncio.run(client.check(url, request_body(), headers, stream=False))
            if target.streams:
                asyncio.run(client.check(url, request_body(stream=True), headers, stream=True))
            time.sleep(0.3)
            row["rss_ready"] = rss_bytes(pid)
            rss_after: list[int] = []
            plain = self.workdir / f"{target.name}-plain.lua"
            plain.write_text(lua_script(request_body(), headers))
            row["nonstream"] = {}
            if args.warmup > 0:  # JITs, pools and caches settle before anything is measured
                run_wrk(url, plain, 16, args.warmup * 2.5)
            for c in args.concurrency:
                row["nonstream"][str(c)] = self.load(url, plain, c, pid, target)
                rss_after.append(rss_bytes(pid))
            if args.paced_rate > 0:  # the same connections at a fixed rate below saturation
                c = max(args.concurrency)
                paced = self.workdir / f"{target.name}-paced.lua"
                paced.write_text(lua_script(request_body(), headers,
                                            pace_ms=1000 * c / args.paced_rate))
                row["paced"] = self.load(url, paced, c, pid, target)
                row["paced"]["offered_rps"] = args.paced_rate
            if target.streams:
                script = self.workdir / f"{target.name}-stream.lua"
                script.write_text(lua_script(request_body(stream=True), headers))
                row["stream"] = self.load(url, script, args.stream_concurrency, pid, target)
                rss_after.append(rss_bytes(pid))
                ttfb = asyncio.run(client.ttfb(url, request_body(stream=True, model=PACED_MODEL),
                                               headers, args.ttfb_requests))
                row["ttfb"] = ttfb.to_dict()
                log(f"{target.name}: first event p50 {ttfb.ttfb_p50_ms:.2f} ms")
            if args.responses and target.kind == "emancipate":
                row.update(self.measure_responses(url, headers, pid, target))
                rss_after.append(rss_bytes(pid))
            if args.messages and target.kind == "emancipate":
                row.update(self.measure_messages(url, headers, pid, target))
            row["rss_after_load"] = max(rss_after)
        except Exception as exc:  # noqa: BLE001 - one target failing must not stop the run
            row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            log(f"{target.name}: FAILED: {exc}")
            if proc is not None:
                log(f"{target.name} log tail:\n{proc.log_tail()}")
        finally:
            if proc is not None:
                self.registry.stop(proc)
        return row

    def measure_responses(self, chat_url: str, headers: dict[str, str], pid: int,
                          target: Target) -> dict[str, Any]:
        """`--responses`: the chat stream row's load and first event, through /v1/responses
        (each answer checked: the upstream's text, ending with response.completed)."""
        args = self.args
        url = chat_url.replace(CHAT_PATH, RESPONSES_PATH)
        ttfb = asyncio.run(client.ttfb(url, responses_body(model=PACED_MODEL), headers,
                                       args.ttfb_requests, checker=check_responses_stream))
        log(f"{target.name}: /v1/responses first event p50 {ttfb.ttfb_p50_ms:.2f} ms")
        out: dict[str, Any] = {"responses_ttfb": ttfb.to_dict()}
        for store in (True, False):  # stored (the default) and `store: false`
            script = self.workdir / f"{target.name}-responses-stream-{store}.lua"
            script.write_text(lua_script(responses_body(store=store), headers))
            key = "responses_stream" if store else "responses_stream_nostore"
            out[key] = self.load(url, script, args.stream_concurrency, pid, target)
        return out

    def measure_messages(self, chat_url: str, headers: dict[str, str], pid: int,
                         target: Target) -> dict[str, Any]:
        """`--messages`: the chat stream row's load and first event, through /v1/messages
        (each answer checked: the upstream's text, ending with message_stop)."""
        args = self.args
        url = chat_url.replace(CHAT_PATH, MESSAGES_PATH)
        headers = {**headers, **ANTHROPIC_VERSION}
        ttfb = asyncio.run(client.ttfb(url, messages_body(model=PACED_MODEL), headers,
                                       args.ttfb_requests, checker=check_messages_stream))
        log(f"{target.name}: /v1/messages first event p50 {ttfb.ttfb_p50_ms:.2f} ms")
        script = self.workdir / f"{target.name}-messages-stream.lua"
        script.write_text(lua_script(messages_body(), headers))
        return {"messages_ttfb": ttfb.to_dict(),
                "messages_stream": self.load(url, script, args.stream_concurrency, pid, target)}

    def load(self, url: str, script: Path, c: int, pid: int, target: Target) -> dict[str, Any]:
        """Warm up, then one measured wrk run with the target's CPU time around it."""
        args = self.args
        if args.warmup > 0:
            run_wrk(url, script, c, args.warmup)
        with measured(pid) as m:
            res = run_wrk(url, script, c, args.duration)
        out: dict[str, Any] = res.to_dict()
        out.update({k: round(v, 4) for k, v in m.items()})
        out["cpu_ms_per_req"] = 1000 * m["cpu_s"] / res.requests if res.requests else None
        # Share of the gateway core that someone else used: other engineers' test runs.
        on_core = target.core == GATEWAY_CORE and target.name != "direct"
        gw_share = m["cpu_s"] / m["wall_s"] if on_core and m["wall_s"] > 0 else 0.0
        out["core0_other"] = round(max(0.0, m.get(f"cpu{GATEWAY_CORE}_busy", 0.0) - gw_share), 3)
        kind = next((k for k in ("stream", "paced") if k in script.name), "plain")
        log(f"{target.name}: {kind} c={c}: {res.rps:,.0f} req/s, p50 {res.p50_ms:.2f} ms, "
            f"p99 {res.p99_ms:.2f} ms, CPU {out['cpu_ms_per_req'] or 0:.3f} ms/req"
            + (f", {res.errors} errors" if res.errors else ""))
        return out


def responses_lines(results: dict[str, Any]) -> list[str]:
    """`--responses`: the /v1/responses stream beside the same target's chat stream."""
    lines = []
    for name, row in results["targets"].items():
        stream, chat = row.get("responses_stream"), row.get("stream")
        if not stream or not chat:
            continue
        first, chat_first = row["responses_ttfb"], row.get("ttfb") or {}
        lines.append(
            f"{name}: /v1/responses stream {stream['rps']:,.0f} req/s "
            f"(chat {chat['rps']:,.0f}), CPU {stream['cpu_ms_per_req'] or 0:.3f} ms/req "
            f"(chat {chat['cpu_ms_per_req'] or 0:.3f}), first event p50 "
            f"{first['ttfb_p50_ms']:.2f} ms (chat {chat_first.get('ttfb_p50_ms', 0):.2f})")
        nostore = row.get("responses_stream_nostore")
        if nostore:
            lines.append(f"{name}: /v1/responses stream with store: false "
                         f"{nostore['rps']:,.0f} req/s, CPU "
                         f"{nostore['cpu_ms_per_req'] or 0:.3f} ms/req")
    return lines


def messages_lines(results: dict[str, Any]) -> list[str]:
    """`--messages`: the /v1/messages stream beside the same target's chat stream."""
    lines = []
    for name, row in results["targets"].items():
        stream, chat = row.get("messages_stream"), row.get("stream")
        if stream and chat:
            first, chat_first = row["messages_ttfb"], row.get("ttfb") or {}
            lines.append(
                f"{name}: /v1/messages stream {stream['rps']:,.0f} req/s "
                f"(chat {chat['rps']:,.0f}), CPU {stream['cpu_ms_per_req'] or 0:.3f} ms/req "
                f"(chat {chat['cpu_ms_per_req'] or 0:.3f}), first event p50 "
                f"{first['ttfb_p50_ms']:.2f} ms (chat {chat_first.get('ttfb_p50_ms', 0):.2f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {LOAD_CORE} if (os.cpu_count() or 1) > 1 else {0})
    command = ".venv/bin/python bench/run.py" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:]) else "")
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "commit": git_commit(),
        "settings": {"duration": args.duration, "warmup": args.warmup,
                     "concurrency": args.concurrency, "stream_c": args.stream_concurrency,
                     "ttfb_requests": args.ttfb_requests, "pace_ms": args.pace_ms,
                     "paced_rate": args.paced_rate,
                     "gateway_core": GATEWAY_CORE, "load_core": LOAD_CORE,
                     "quick": args.quick, "smoke": args.smoke},
        "order": [t.name for t in args.targets], "targets": {}, "versions": {},
    }
    if not args.no_install:
        ensure_apt({"wrk": "wrk", "taskset": "util-linux"}, log)
    installed = []
    for target in args.targets:
        try:
            if not args.no_install:
                target.install(log)
            installed.append(target)
        except Exception as exc:  # noqa: BLE001 - report the target as not measured
            results["targets"][target.name] = {"label": target.label, "kind": target.kind,
                                               "error": f"install failed: {exc}"[:300]}
            log(f"{target.name}: install failed: {exc}")
    results["machine"] = machine()
    results["machine"]["loadavg_before"] = loadavg()
    with tempfile.TemporaryDirectory(prefix="emancipate-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.start_upstream()
            for target in installed:
                log(f"--- {target.label}")
                results["targets"][target.name] = bench.measure(target)
                results["versions"][target.name] = target.version()
        finally:
            bench.registry.stop_all()
    results["machine"]["loadavg_after"] = loadavg()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    text = report.table(results)
    print(text)
    for note in report.notes(results):
        print(f"- {note}")
    for line in responses_lines(results) + messages_lines(results):
        print(line)
    log(f"done in {results['elapsed_s']:.0f} s")
    if args.results_dir is not None:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        tag = "-smoke" if args.smoke else "-quick" if args.quick else ""
        name = f"overhead-{stamp}{tag}.json"
        (args.results_dir / name).write_text(json.dumps(results, indent=1) + "\n")
        log(f"raw results: {args.results_dir / name}")
    if args.write_docs:
        report.write_docs(args.docs, results, INTRO)
        log(f"table written to {args.docs}")
    failed = [n for n, r in results["targets"].items() if r.get("error")]
    return 1 if "direct" in failed else 0


if __name__ == "__main__":
    sys.exit(main())
