"""What keeping the daily summary costs the ledger writer, per record.

    .venv/bin/python bench/ledger_write_bench.py [--records 20000] [--rounds 5] [--spread 1]
                                                 [--url URL]

A fresh ledger (SQLite file by default) writes the same random requests (the test suite's
generator: failovers, findings, protective decisions, router scores), started within the
last `--spread` hours (live traffic lands on today; a wider spread touches more summary rows
per batch), in batches of `ledger.batch_size` (500), once as shipped and once with the
summary's fold and upsert replaced by no-ops (what the writer did before migration 0008).
Reported: the median over rounds of the writer's time per record (wall and the writer
thread's CPU: the CPU is what it takes from the event loop under the GIL), and the ratio.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.ledger_traffic import random_context  # noqa: E402

from emancipate.ledger import Ledger, LedgerConfig  # noqa: E402
from emancipate.ledger.summary import DailySummary  # noqa: E402


def one_round(url: str, spill: str, n: int, summary: bool,
              spread: float) -> tuple[float, float]:
    """Microseconds per record written (wall, CPU of the writing thread)."""
    ledger = Ledger.open(url, LedgerConfig(spill_dir=spill, journal="off"))
    rng = random.Random(1)
    now = time.time()
    ctxs = [random_context(rng, now - rng.random() * spread * 3600) for _ in range(n)]
    add, write = DailySummary.add, DailySummary.write
    if not summary:
        DailySummary.add = lambda self, rec: None  # type: ignore[method-assign]
        DailySummary.write = lambda self, conn: None  # type: ignore[method-assign]
    try:
        for ctx in ctxs:
            ledger.record(ctx)
        w0, c0 = time.perf_counter(), time.thread_time()
        ledger.flush()
        wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
    finally:
        DailySummary.add, DailySummary.write = add, write  # type: ignore[method-assign]
        ledger.close()
    return wall / n * 1e6, cpu / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spread", type=float, default=1.0, help="hours the requests span")
    ap.add_argument("--url", default=None, help="a database URL (default: a new SQLite file)")
    args = ap.parse_args()
    out: dict[str, Any] = {"records": args.records, "rounds": args.rounds,
                           "spread_hours": args.spread}
    runs: dict[str, list[tuple[float, float]]] = {"without_summary": [], "with_summary": []}
    for i in range(args.rounds):
        for name in runs:  # alternate, so that machine load hits both alike
            work = Path(tempfile.mkdtemp(prefix="emancipate-wbench-"))
            url = args.url or f"sqlite:///{work / f'l{i}.db'}"
            runs[name].append(one_round(url, str(work / "spill"), args.records,
                                        name == "with_summary", args.spread))
            if args.url:
                from sqlalchemy import create_engine, text

                with create_engine(args.url).begin() as conn:  # empty it for the next round
                    for t in ("attempts", "decisions", "findings", "contents", "requests",
                              "daily_traffic", "daily_routing", "daily_findings",
                              "daily_protection", "daily_withheld", "daily_failovers"):
                        conn.execute(text(f"DELETE FROM {t}"))
    for name, values in runs.items():
        out[name] = {"wall_us_per_record": round(statistics.median(v[0] for v in values), 1),
                     "cpu_us_per_record": round(statistics.median(v[1] for v in values), 1)}
    for kind in ("wall", "cpu"):
        key = f"{kind}_us_per_record"
        out[f"{kind}_ratio"] = round(out["with_summary"][key] / out["without_summary"][key], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
