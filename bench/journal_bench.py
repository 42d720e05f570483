"""What the ledger's crash journal costs on the event loop: `Ledger.record` per call, by mode.

    .venv/bin/python bench/journal_bench.py [--records 20000] [--rounds 5] [--dir PATH]

For each `ledger.journal` mode (off, write, fsync) a fresh SQLite ledger with its writer
running (as in a gateway) records the same realistic requests (two attempts, two decisions,
a finding) in bursts of 100 (about 50 ms of traffic at 2,000 req/s), letting the writer
commit between bursts (fsync: a tenth as many records). Reported: the median over rounds of
the time per `record` call, measured around the calls only (what the event loop pays before
the answer's last byte): wall time, and the calling thread's CPU time (steadier on a shared
machine; a disk flush waits without CPU, so for fsync read the wall time). Also the journal's
size on disk after the run (the writer gives the space back). `--dir` puts the ledger and its
spill directory on the disk to be measured (fsync: that disk's flush latency). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from emancipate.context import (  # noqa: E402
    Attempt,
    Decision,
    Finding,
    Principal,
    RequestContext,
    Target,
)
from emancipate.ledger import Ledger, LedgerConfig  # noqa: E402

TARGET = Target("openai", "gpt-4o", "openai", "external")
BURST = 100


def request(i: int) -> RequestContext:
    ctx = RequestContext(principal=Principal("key_a", name="key_a", team="search"), route="chat")
    ctx.served_by = TARGET
    ctx.attempts += [Attempt(TARGET.id, "openai", "external", "timeout", 30.0, None, "timeout"),
                     Attempt(TARGET.id, "openai", "external", "ok", 12.0, 200, None)]
    ctx.decisions += [Decision("policy", "redact", "personal data to a competitor",
                               rule="pii-out", cls="personal", detector="email"),
                      Decision("routing", "route", "fallback order", target=TARGET.id)]
    ctx.findings.append(Finding("personal", "email", 3, 20, message_index=1))
    ctx.prompt_tokens, ctx.completion_tokens, ctx.cost = 100 + i % 50, 20, 0.0012
    ctx.latency_ms = 42.0
    return ctx


def measure(mode: str, records: int, directory: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"journal-{mode}-", dir=directory) as work:
        return _measure(mode, records, Path(work))


def _measure(mode: str, records: int, work: Path) -> dict[str, Any]:
    cfg = LedgerConfig(journal=mode, spill_dir=str(work / "spill"))  # type: ignore[arg-type]
    ledger = Ledger.open(f"sqlite:///{work / 'ledger.db'}", cfg)
    ledger.start()
    contexts = [request(i) for i in range(records)]
    wall = cpu = 0.0
    for start in range(0, records, BURST):
        burst = contexts[start:start + BURST]
        t0, c0 = time.perf_counter(), time.thread_time()
        for ctx in burst:
            ledger.record(ctx)
        wall += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        while ledger.written < start + len(burst):  # the writer commits between bursts
            time.sleep(0.005)
    journal_bytes = sum(p.stat().st_size for p in (work / "spill").glob("journal-*.jsonl"))
    ledger.close()
    assert ledger.count() == records
    return {"wall": wall / records * 1e6, "cpu": cpu / records * 1e6,
            "journal_bytes_after": journal_bytes}


def main() -> None:
    sys.setswitchinterval(0.0005)  # as `emancipate serve` does (server.py)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = p.parse_args()
    out: dict[str, Any] = {"records": args.records, "rounds": args.rounds, "dir": str(args.dir)}
    for mode in ("off", "write", "fsync"):
        runs = [measure(mode, args.records if mode != "fsync" else args.records // 10, args.dir)
                for _ in range(args.rounds)]
        out[mode] = {
            "wall_us_per_record": round(statistics.median(r["wall"] for r in runs), 2),
            "cpu_us_per_record": round(statistics.median(r["cpu"] for r in runs), 2),
            "wall_runs": [round(r["wall"], 2) for r in runs],
            "journal_bytes_after": max(r["journal_bytes_after"] for r in runs),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
