"""What tracing costs per request: the same gateway with tracing off, on, and on at 10 %.

The overhead bench's method and parts (`bench/run.py`): its fake upstream, the gateway in the
full configuration (auth with a virtual key made by the gateway's CLI, guard, policy,
ledger) pinned to core 0, wrk and the upstream on core 1. Tracing on exports every span over
OTLP/HTTP to a collector in this process (it answers 200 and counts spans), so the gateway
pays everything a real deployment pays: spans, attributes, the batch processor, protobuf
encoding and the export (the exporter's thread is inside the gateway's measured CPU).

For each row, rounds alternate (off, on, on 10 %, off, ...) so that drift on a shared
machine spreads over all rows: requests/s at one concurrency, and the gateway's CPU time
per request (the figure tracing adds to), each a mean over the rounds; ratios to "off".

    .venv/bin/python bench/tracing_bench.py                      # 3 rounds of 10 s, ~3 min
    .venv/bin/python bench/tracing_bench.py --rounds 1 --duration 5
    .venv/bin/python bench/tracing_bench.py --hooks                # the hooks alone, ~1 min
    .venv/bin/python bench/tracing_bench.py --sampled-out          # requests not recorded

`--hooks` measures the tracer alone, in this process, without a gateway around it: the calls
one failover request makes (request span, auth, guard, policy, routing, two attempts, ledger,
closing attributes), many times over, exported to the same collector with a queue large
enough that no span is dropped. CPU time per request of the whole process (the exporter's
thread included). Much less noisy than the gateway rows on a shared machine; the figure to
compare two versions of `tracing.py` with.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import client  # noqa: E402
from overhead.procs import (  # noqa: E402
    GATEWAY_CORE,
    Registry,
    free_port,
    measured,
    start_upstream,
)
from overhead.targets import CHAT_PATH, Ctx, Emancipate, EmancipateVariant, ensure_apt  # noqa: E402
from overhead.upstream import MODEL, request_body  # noqa: E402
from overhead.wrk import lua_script, run_wrk  # noqa: E402


def log(msg: str) -> None:
    print(f"[tracing {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Collector:
    """An OTLP/HTTP endpoint that accepts every export and counts spans (protobuf)."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans = 0
        lock = threading.Lock()
        ok = ExportTraceServiceResponse().SerializeToString()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = ExportTraceServiceRequest.FromString(raw)
                n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with lock:
                    collector.spans += n
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(ok)))
                self.end_headers()
                self.wfile.write(ok)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Row:
    variant: EmancipateVariant
    rps: list[float]
    cpu_ms: list[float]
    errors: int = 0
    spans: int = 0
    requests: int = 0  # warm-up and measured: the spans exported are theirs


def variants(endpoint: str, sampled_out: bool = False) -> list[EmancipateVariant]:
    on = {"enabled": True, "endpoint": endpoint, "protocol": "http"}
    if sampled_out:  # what tracing costs a request it does not record
        return [
            EmancipateVariant("tracing-off", "tracing off (default)", {}, virtual_key=True),
            EmancipateVariant("tracing-0", "tracing on, sample_ratio 0",
                              {"tracing": {**on, "sample_ratio": 0}}, virtual_key=True),
            EmancipateVariant("tracing-0-none", "tracing on, sample_ratio 0, propagate none",
                              {"tracing": {**on, "sample_ratio": 0, "propagate": "none"}},
                              virtual_key=True),
        ]
    return [
        EmancipateVariant("tracing-off", "tracing off (default)", {}, virtual_key=True),
        EmancipateVariant("tracing-on", "tracing on, every request", {"tracing": on},
                          virtual_key=True),
        EmancipateVariant("tracing-10", "tracing on, sample_ratio 0.1",
                          {"tracing": {**on, "sample_ratio": 0.1}}, virtual_key=True),
    ]


def one_round(registry: Registry, ctx: Ctx, row: Row, args: argparse.Namespace,
              work: Path, collector: Collector) -> None:
    """Start the row's gateway, load it, stop it (its last spans are exported at stop)."""
    gateway = Emancipate(row.variant)
    port = free_port()
    launch = gateway.launch(ctx, port)
    proc = registry.start(row.variant.name, launch.argv, work / f"{row.variant.name}.log",
                          GATEWAY_CORE, launch.env, launch.cwd)
    base = f"http://127.0.0.1:{port}"
    headers = gateway.headers(ctx)
    asyncio.run(client.wait_first_answer(base + CHAT_PATH, request_body(), headers, 60,
                                         proc.alive))
    script = work / f"{row.variant.name}.lua"
    script.write_text(lua_script(request_body(model=MODEL), headers))
    before = collector.spans
    warm = run_wrk(base + CHAT_PATH, script, args.concurrency, args.warmup)
    with measured(proc.pid) as m:
        res = run_wrk(base + CHAT_PATH, script, args.concurrency, args.duration)
    registry.stop(proc, grace=15.0)
    row.rps.append(res.rps)
    row.cpu_ms.append(1000 * m["cpu_s"] / res.requests if res.requests else float("nan"))
    row.errors += res.errors
    row.spans += collector.spans - before  # the last ones were exported at stop
    row.requests += warm.requests + res.requests
    log(f"{row.variant.label}: {res.rps:,.0f} req/s, {row.cpu_ms[-1]:.3f} ms CPU/request, "
        f"{collector.spans - before} spans")


def hooks(collector: Collector, requests: int) -> None:
    """CPU per request of the tracer's hooks: off, on, on at 10 % (see the docstring)."""
    import os

    from emancipate.config import parse_config
    from emancipate.context import Attempt, Decision, Finding, RequestContext, Target
    from emancipate.tracing import Tracer

    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(16 * requests)  # measure every span's export
    flaky = Target("flaky", "f-1", "flaky-inc", "external")
    steady = Target("steady", "s-1", "us", "in-house")
    headers = [(b"host", b"gw"), (b"content-type", b"application/json"),
               (b"authorization", b"Bearer em-x")]
    body = {"model": "pair", "max_tokens": 50, "temperature": 0.2, "messages": []}

    def one(tracer: Tracer) -> None:
        ctx = RequestContext(route="pair")
        tracer.begin(ctx, headers)
        with tracer.span(ctx, "auth"):
            pass
        tracer.read(ctx, body)
        with tracer.span(ctx, "guard"):
            ctx.findings = [Finding("secret", "aws_access_key", 3, 23)]
        with tracer.span(ctx, "policy"):
            ctx.decisions.append(Decision("policy", "redact", "r", "secrets-redacted", "secret"))
        with tracer.span(ctx, "routing"):
            pass
        for target, outcome in ((flaky, "upstream_5xx"), (steady, "ok")):
            with tracer.attempt(ctx, target):
                ctx.attempts.append(Attempt(target.id, target.vendor, target.ownership,
                                            outcome, 1.0, 503 if outcome != "ok" else None))
        ctx.served_by, ctx.prompt_tokens, ctx.completion_tokens = steady, 40, 60
        with tracer.span(ctx, "ledger"):
            pass
        tracer.end(ctx)

    routes = {"pair": {"targets": [{"provider": "flaky", "model": "f-1"}]}}
    providers = {"flaky": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9",
                           "ownership": "external", "vendor": "flaky-inc"}}
    print(f"| tracer hooks of one failover request ({requests:,} requests) | CPU per request "
          "(µs) | spans exported |")
    print("|---|---|---|")
    for label, tracing in (("tracing off", {"enabled": False}),
                           ("tracing on, every request", {"enabled": True}),
                           ("tracing on, sample_ratio 0.1", {"enabled": True,
                                                             "sample_ratio": 0.1})):
        cfg = parse_config({"providers": providers, "routes": routes, "tracing": {
            **tracing, "endpoint": collector.endpoint}})
        tracer = Tracer.from_config(cfg)
        for _ in range(requests // 10):  # warm-up
            one(tracer)
        tracer.shutdown()  # the warm-up's spans leave before the measured loop
        tracer = Tracer.from_config(cfg)
        before = collector.spans
        c0 = time.process_time()
        for _ in range(requests):
            one(tracer)
        tracer.shutdown()  # every span encoded and sent: part of the cost
        cpu = time.process_time() - c0
        print(f"| {label} | {1e6 * cpu / requests:,.1f} | {collector.spans - before:,} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hooks", action="store_true", help="the tracer's hooks alone (see above)")
    p.add_argument("--requests", type=int, default=20000, help="--hooks: requests per row")
    p.add_argument("--sampled-out", action="store_true",
                   help="rows off, sample_ratio 0, and sample_ratio 0 with propagate none")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args(argv)
    if args.hooks:
        collector = Collector()
        try:
            hooks(collector, args.requests)
        finally:
            collector.close()
        return 0
    ensure_apt({"wrk": "wrk", "taskset": "util-linux"}, log)
    registry = Registry()
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="emancipate-tracing-") as tmp:
        work = Path(tmp)
        try:
            _, port = start_upstream(registry, work)
            ctx = Ctx(work, port, log)
            rows = [Row(v, [], []) for v in variants(collector.endpoint, args.sampled_out)]
            for _ in range(args.rounds):
                for row in rows:
                    one_round(registry, ctx, row, args, work, collector)
        finally:
            registry.stop_all()
            collector.close()
    base_rps, base_cpu = mean(rows[0].rps), mean(rows[0].cpu_ms)
    print(f"| gateway (full config, c={args.concurrency}, {args.rounds}×{args.duration:g} s) | "
          "req/s | vs off | CPU per request (ms) | vs off | added CPU (µs) | spans per request "
          "| errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        rps, cpu = mean(row.rps), mean(row.cpu_ms)
        print(f"| {row.variant.label} | {rps:,.0f} | {rps / base_rps:.2f} | {cpu:.3f} | "
              f"{cpu / base_cpu:.2f} | {1000 * (cpu - base_cpu):+.0f} | "
              f"{row.spans / max(1, row.requests):.2f} | "
              f"{row.errors} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
