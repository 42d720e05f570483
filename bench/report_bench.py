"""How long the independence report and the dashboard's endpoints take on a year of ledger data.

    python bench/report_bench.py [--requests 1000000] [--days 365] [--db PATH | --url URL]
                                 [--gateway]

Seeds a ledger (SQLite file by default, or any database URL) with synthetic traffic through
direct bulk inserts (same schema, migrated by the product's own migrations), summarises it
by day as a first start after migration 0008 does (`summary_backfill_seconds`), then times
`build_report` for 7, 30 and 365 days (cold: the first call; warm: past days cached), and
with `--gateway` the admin endpoints served by a real gateway process on that database (its
first call per period is cold). `one_year_report` is the headline: the 365-day report built
cold (no cached day) from the detail rows (`source="raw"`, what every build did before the
daily summary) and from the daily summary, best and median of `--repeat` builds each, and the
ratio. With `--prune DAYS` it then deletes the detail rows older than DAYS as the retention
job does (batches of 2,000 requests; each batch's time is how long it holds the write lock)
and builds the one-year report again from the summary: same figures (that run leaves the
database pruned: use a copy). Prints JSON. The database is reused when it already holds the
requested number of requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from emancipate.ledger import db, schema  # noqa: E402

VENDORS = [  # (provider/model, vendor, ownership, weight, price per 1k tokens)
    ("openai/gpt-4o", "openai", "external", 0.42, 0.005),
    ("anthropic/claude-sonnet-4-5", "anthropic", "external", 0.18, 0.006),
    ("mistral/mistral-large", "mistral", "external", 0.05, 0.002),
    ("vllm/llama-3.1-70b", "in-house", "in-house", 0.35, 0.0),
]
CLASSES = [("personal", "email", None), ("secret", "aws_access_key", None),
           ("confidential", "term", None), ("domain", "domain:search", "search"),
           ("code", "code_block", None)]
ACTIONS = {"personal": "redact", "secret": "in-house-only", "confidential": "in-house-only",
           "domain": "block", "code": "allow"}


def seed(engine: Engine, n: int, days: int, rng_seed: int = 7, batch: int = 20_000,
         end: datetime | None = None) -> None:
    """Insert `n` synthetic requests spread over the `days` days before `end`."""
    rng = random.Random(rng_seed)
    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    weights = [v[3] for v in VENDORS]
    reqs: list[dict[str, Any]] = []
    atts: list[dict[str, Any]] = []
    decs: list[dict[str, Any]] = []
    finds: list[dict[str, Any]] = []

    def flush() -> None:
        with engine.begin() as conn:
            for table, rows in ((schema.requests, reqs), (schema.attempts, atts),
                                (schema.decisions, decs), (schema.findings, finds)):
                if rows:
                    conn.execute(insert(table), rows)
        for rows in (reqs, atts, decs, finds):
            rows.clear()

    for i in range(n):
        # traffic moves in-house over the year: in-house weight grows from 0.2 to 0.5
        frac = i / max(1, n - 1)
        ts = start + timedelta(seconds=frac * span)
        w = list(weights)
        w[3] = 0.2 + 0.3 * frac
        target, vendor, owner, _, price = rng.choices(VENDORS, weights=w)[0]
        rid = f"req_{i:024d}"
        pt, ct = rng.randint(20, 2000), rng.randint(5, 600)
        status = 200 if rng.random() > 0.01 else 503
        failover = rng.random() < 0.03
        independence = rng.random() < 0.5
        score = rng.random() if independence else None
        reqs.append({
            "id": rid, "created_at": ts, "day": ts.strftime("%Y-%m-%d"),
            "endpoint": "chat.completions", "key_id": f"key_{rng.randint(0, 40)}",
            "team": rng.choice(["search", "ads", "support", None]),
            "route": "assistant" if independence else "chat",
            "target": target if status == 200 else None,
            "provider": target.split("/")[0] if status == 200 else None,
            "model": target.split("/")[1] if status == 200 else None,
            "vendor": vendor if status == 200 else None,
            "ownership": owner if status == 200 else None, "status": status,
            "error_code": None if status == 200 else "no_target_available", "stream": False,
            "prompt_tokens": pt if status == 200 else 0,
            "completion_tokens": ct if status == 200 else 0,
            "cost": (pt + ct) / 1000 * price if status == 200 else 0.0,
            "latency_ms": rng.uniform(50, 3000), "router_score": score,
            "attempts": 2 if failover else 1,
        })
        n_att = 0
        if failover:
            atts.append({"request_id": rid, "n": 0, "target": "openai/gpt-4o",
                         "vendor": "openai", "ownership": "external", "outcome": "timeout",
                         "status": None, "latency_ms": 5000.0, "error": "timeout"})
            n_att = 1
        atts.append({"request_id": rid, "n": n_att, "target": target, "vendor": vendor,
                     "ownership": owner, "outcome": "ok" if status == 200 else "upstream_5xx",
                     "status": status, "latency_ms": rng.uniform(50, 3000), "error": None})
        n_dec = 0
        if rng.random() < 0.1:
            cls, det, dom = rng.choice(CLASSES)
            finds.append({"request_id": rid, "n": 0, "cls": cls, "detector": det,
                          "domain": dom, "message_index": 0})
            for t, _v, _o, _w, _p in VENDORS:
                decs.append({"request_id": rid, "n": n_dec, "stage": "policy",
                             "action": ACTIONS[cls], "rule": f"rule-{cls}", "cls": cls,
                             "detector": det, "target": t, "reason": "synthetic"})
                n_dec += 1
        if independence:
            decs.append({"request_id": rid, "n": n_dec, "stage": "routing",
                         "action": "in-house" if (score or 0) < 0.4 else "external",
                         "rule": None, "cls": None, "detector": None, "target": None,
                         "reason": "synthetic"})
        if len(reqs) >= batch:
            flush()
    flush()


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.requests)).scalar())


def timeit(fn: Any, repeat: int = 3) -> dict[str, float]:
    """The first run (cold: past days not cached yet) and the best of the others (warm)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return {"cold_ms": round(runs[0], 1), "warm_best_ms": round(min(runs[1:] or runs), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "emancipate-year.db"))
    ap.add_argument("--url", default=None, help="a database URL instead of --db")
    ap.add_argument("--gateway", action="store_true", help="also time the admin endpoints")
    ap.add_argument("--repeat", type=int, default=5, help="cold builds per source (one year)")
    ap.add_argument("--prune", type=int, default=None, metavar="DAYS",
                    help="then delete detail rows older than DAYS (destructive)")
    args = ap.parse_args()
    url = args.url or f"sqlite:///{args.db}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seeded = count(engine)
    seed_s = None
    if seeded != args.requests and args.prune is None:
        if seeded:
            raise SystemExit(f"{url} holds {seeded} requests, not {args.requests}: remove it")
        t0 = time.perf_counter()
        seed(engine, args.requests, args.days)
        seed_s = round(time.perf_counter() - t0, 1)
    from emancipate.config import parse_config
    from emancipate.ledger.summary import backfill_if_needed
    from emancipate.report import build_report

    t0 = time.perf_counter()
    summarised = backfill_if_needed(engine)  # a no-op when the database is already summarised
    backfill_s = round(time.perf_counter() - t0, 1) if summarised else None

    cfg = parse_config({"providers": {
        "vllm": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9",
                 "ownership": "in-house", "vendor": "in-house"}},
        "routes": {"chat": {"targets": [{"provider": "vllm", "model": "llama-3.1-70b"}]}}})
    now = datetime.now(UTC)
    out: dict[str, Any] = {"database": engine.dialect.name, "requests": count(engine),
                           "seed_seconds": seed_s, "summary_backfill_seconds": backfill_s}
    from emancipate.report.build import clear_cache

    out["one_year_report"] = one_year(engine, cfg, now, args.repeat)

    for days in (7, 30, 365):
        since = now - timedelta(days=days)
        clear_cache()
        out[f"build_report_{days}d"] = timeit(lambda s=since: build_report(engine, s, cfg))
    clear_cache()
    out["stages_365d_cold_ms"] = build_report(engine, now - timedelta(days=365),
                                              cfg)["timing_ms"]
    if args.gateway:
        out["gateway"] = time_gateway(url)
    if args.prune is not None:
        out["prune"] = time_prune(engine, cfg, now, args.prune)
    print(json.dumps(out, indent=2))


def time_prune(engine: Engine, cfg: Any, now: datetime, days: int) -> dict[str, Any]:
    """Retention on the seeded year: batch times, then the year's report from the summary."""
    from emancipate.ledger.retention import cutoff_day, prune
    from emancipate.report import build_report
    from emancipate.report.build import clear_cache

    # whole days: a period starting mid-day reads its first day from the detail rows
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=365)
    clear_cache()
    before = build_report(engine, since, cfg)
    batches: list[float] = []
    mark = [time.perf_counter()]

    def lap() -> bool:
        t = time.perf_counter()
        batches.append((t - mark[0]) * 1000)
        mark[0] = t
        return False

    t0 = time.perf_counter()
    deleted = prune(engine, cutoff_day(days), pause=lap)
    total = time.perf_counter() - t0
    clear_cache()
    t1 = time.perf_counter()
    after = build_report(engine, since, cfg)
    batches.sort()
    return {"days_kept": days, "deleted": deleted, "seconds": round(total, 1),
            "batches": len(batches),
            "batch_ms_median": round(batches[len(batches) // 2], 1) if batches else None,
            "batch_ms_max": round(batches[-1], 1) if batches else None,
            "report_365d_after_ms": round((time.perf_counter() - t1) * 1000, 1),
            "same_totals_after": before["totals"] == after["totals"],
            "requests_in_report_after": after["totals"]["requests"]}


def one_year(engine: Engine, cfg: Any, now: datetime, repeat: int) -> dict[str, Any]:
    """The 365-day report built cold from the detail rows, then from the daily summary."""
    from emancipate.report import build_report
    from emancipate.report.build import clear_cache

    since = now - timedelta(days=365)
    out: dict[str, Any] = {}
    reports = {}
    for source in ("raw", "summary"):
        runs = []
        for _ in range(repeat):
            clear_cache()
            t0 = time.perf_counter()
            reports[source] = build_report(engine, since, cfg, source=source)
            runs.append((time.perf_counter() - t0) * 1000)
        runs.sort()
        out[f"{source}_best_ms"] = round(runs[0], 1)
        out[f"{source}_median_ms"] = round(runs[len(runs) // 2], 1)
        out[f"{source}_stages_ms"] = reports[source]["timing_ms"]
    out["ratio_best"] = round(out["raw_best_ms"] / out["summary_best_ms"], 1)
    out["ratio_median"] = round(out["raw_median_ms"] / out["summary_median_ms"], 1)
    out["same_totals"] = reports["raw"]["totals"] == reports["summary"]["totals"]
    return out


def time_gateway(url: str) -> dict[str, Any]:
    """The dashboard's JSON calls through a real gateway process on the seeded database."""
    import httpx
    import yaml

    work = Path(tempfile.mkdtemp(prefix="emancipate-bench-"))
    port = 18000 + os.getpid() % 1000
    cfg = {"server": {"port": port, "database_url": url},
           "providers": {"embedded": {"kind": "embedded"}},
           "routes": {"default": {"targets": [{"provider": "embedded",
                                               "model": "smollm2-135m-instruct"}]}},
           "auth": {"enabled": False}}
    (work / "gw.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "EMANCIPATE_ADMIN_KEY": "bench-admin"}
    proc = subprocess.Popen([sys.executable, "-m", "emancipate", "serve", "--config",
                             str(work / "gw.yaml"), "--port", str(port)], env=env, cwd=work,
                            stdout=open(work / "log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        h = {"authorization": "Bearer bench-admin"}
        out = {}
        for path in ("/admin/report?since=7d", "/admin/report?since=30d",
                     "/admin/report?since=365d", "/admin/report?since=365d&format=html",
                     "/admin/usage?by=key&since=30d", "/admin/requests?limit=50",
                     "/admin/dashboard"):
            def get(p: str = path) -> None:
                r = httpx.get(base + p, headers=h, timeout=300)
                r.raise_for_status()
            out[path] = timeit(get)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
