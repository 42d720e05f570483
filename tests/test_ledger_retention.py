"""Retention on SQLite and PostgreSQL: `ledger.retention_days`, the background job of a
started ledger (two replicas on one database), and `emancipate ledger prune`; the daily
summary keeps the report's figures of the days it deletes."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from emancipate.config import ConfigError, parse_config
from emancipate.ledger import Ledger, LedgerConfig, schema
from emancipate.ledger.retention import CHILDREN, COUNTED, cutoff_day, prune
from emancipate.report import build_report
from emancipate.report.build import clear_cache
from tests.ledger_traffic import DAY, differences, random_context, record_random_traffic
from tests.polling import eventually

pytest_plugins = ["tests.services"]

KEEP = 31  # days kept by every test here


def _seed(ledger: Ledger) -> None:
    """Random traffic over 120 days, plus requests with logged contents on both sides of
    the cutoff."""
    record_random_traffic(ledger, n=300, days=120, seed=5)
    rng = random.Random(9)
    for age in (100, 50, 1, 0):
        ctx = random_context(rng, time.time() - age * DAY)
        ctx.extra["content"] = {"messages": '[{"role":"user","content":"hi"}]', "answer": "a"}
        ledger.record(ctx)
    ledger.flush()


def _rows(ledger: Ledger, before: str | None = None) -> dict[str, int]:
    """Rows per table; with `before`, only those of days before it (children by request)."""
    r = schema.requests
    out = {}
    with ledger.engine.connect() as conn:
        for name in COUNTED:
            table = getattr(schema, name)
            stmt = select(func.count()).select_from(table)
            if before is not None:
                if name in CHILDREN:
                    stmt = stmt.where(table.c.request_id.in_(
                        select(r.c.id).where(r.c.day < before)))
                else:
                    stmt = stmt.where(table.c.day < before)
            out[name] = int(conn.execute(stmt).scalar())
    return out


def _orphans(ledger: Ledger) -> int:
    r = schema.requests
    with ledger.engine.connect() as conn:
        return sum(int(conn.execute(select(func.count()).select_from(child).where(
            child.c.request_id.not_in(select(r.c.id)))).scalar())
            for child in (getattr(schema, name) for name in CHILDREN))


def test_retention_days_is_validated() -> None:
    assert parse_config({"ledger": {"retention_days": 90}}).ledger.retention_days == 90
    assert parse_config({}).ledger.retention_days is None  # keep forever
    with pytest.raises(ConfigError) as err:
        parse_config({"ledger": {"retention_days": 7}})
    assert "ledger.retention_days" in str(err.value)
    assert "at least 31" in str(err.value) and "monthly budgets" in str(err.value)


def test_prune_deletes_old_days_with_their_rows_and_the_report_keeps_them(
        database_url: str, tmp_path: Path) -> None:
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    _seed(ledger)
    before = cutoff_day(KEEP)
    old, everything = _rows(ledger, before), _rows(ledger)
    assert old["requests"] and old["attempts"] and old["decisions"] and old["findings"]
    assert old["contents"] == 2 and old["shadow_verdicts"]
    clear_cache()
    report = build_report(ledger.engine, None, None)

    assert prune(ledger.engine, before, dry_run=True) == old
    assert _rows(ledger) == everything  # a dry run deletes nothing
    assert prune(ledger.engine, before) == old
    assert _rows(ledger, before) == dict.fromkeys(COUNTED, 0)
    assert _rows(ledger) == {k: everything[k] - old[k] for k in COUNTED}
    assert _orphans(ledger) == 0
    assert prune(ledger.engine, before) == dict.fromkeys(COUNTED, 0)  # nothing left to do

    clear_cache()  # pruned days stay in the report: it reads the daily summary
    assert differences(report, build_report(ledger.engine, None, None)) == []
    raw = build_report(ledger.engine, None, None, source="raw")
    assert raw["totals"]["requests"] == everything["requests"] - old["requests"]
    assert report["totals"]["requests"] == everything["requests"]
    ledger.close()


def _wait(check: Callable[[], bool], what: str) -> None:
    eventually(lambda: check() or None, f"still waiting for {what}", timeout=120)


def test_started_ledgers_prune_in_the_background_once_between_replicas(
        database_url: str, tmp_path: Path) -> None:
    """Two ledgers started on one database (two replicas): each runs a pass at start; the
    old rows are deleted once in all, with their children; closing stops the job."""
    cfg = LedgerConfig(spill_dir=str(tmp_path / "spill"), retention_days=KEEP)
    seeding = Ledger.open(database_url, cfg)  # not started: no background job
    _seed(seeding)
    assert seeding.retention is None
    old, everything = _rows(seeding, cutoff_day(KEEP)), _rows(seeding)
    seeding.close()

    replicas = [Ledger.open(database_url, cfg) for _ in range(2)]
    for ledger in replicas:
        ledger.start()
    _wait(lambda: all(lg.retention is not None and lg.retention.passes >= 1
                      for lg in replicas), "a retention pass in each replica")
    deleted = {k: sum(lg.retention.deleted[k] for lg in replicas if lg.retention)
               for k in COUNTED}
    assert deleted == old
    assert _rows(replicas[0]) == {k: everything[k] - old[k] for k in COUNTED}
    assert _orphans(replicas[0]) == 0
    threads = [lg.retention._thread for lg in replicas if lg.retention]
    for ledger in replicas:
        ledger.close()
    assert not any(t is not None and t.is_alive() for t in threads)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emancipate", *args], capture_output=True,
                          text=True, env={**os.environ, "EMANCIPATE_CONFIG": ""}, timeout=120)


def test_prune_cli_reports_what_it_deletes(database_url: str, tmp_path: Path) -> None:
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    _seed(ledger)
    old, everything = _rows(ledger, cutoff_day(40)), _rows(ledger)
    ledger.close()
    doc: dict[str, Any] = {"server": {"database_url": database_url},
                           "ledger": {"spill_dir": str(tmp_path / "spill")}}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(doc))

    missing = _cli("ledger", "prune", "-c", str(config))
    assert missing.returncode == 2
    assert "give --older-than DAYS, or set ledger.retention_days" in missing.stderr

    dry = _cli("ledger", "prune", "--older-than", "40", "--dry-run", "-c", str(config))
    assert dry.returncode == 0, dry.stderr
    assert f"would delete the rows of UTC days before {cutoff_day(40)}:" in dry.stdout
    assert re.search(rf"^  requests +{old['requests']:,}$", dry.stdout, re.M)
    assert re.search(rf"^  shadow_verdicts +{old['shadow_verdicts']:,}$", dry.stdout, re.M)
    assert "the daily summary keeps those days' figures" in dry.stdout

    doc["ledger"]["retention_days"] = 40  # the default of --older-than
    config.write_text(yaml.safe_dump(doc))
    done = _cli("ledger", "prune", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["before"], out["dry_run"], out["deleted"]) == (cutoff_day(40), False, old)

    short = _cli("ledger", "prune", "--older-than", "3", "--dry-run", "-c", str(config))
    assert short.returncode == 0, short.stderr  # allowed by hand, with a warning
    assert "warning: keeping fewer than 31 days: monthly budgets" in short.stderr
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    assert _rows(ledger) == {k: everything[k] - old[k] for k in COUNTED}
    ledger.close()


def test_a_started_gateway_prunes_its_ledger_in_the_background(
        database_url: str, tmp_path: Path, start_gateway: Any) -> None:
    """`ledger.retention_days` in the YAML: the gateway process deletes the old days at start,
    and its report still counts them (the daily summary)."""
    spill = str(tmp_path / "seed-spill")
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=spill))
    _seed(ledger)
    old, everything = _rows(ledger, cutoff_day(KEEP)), _rows(ledger)
    assert old["requests"]
    ledger.close()

    gw = start_gateway({
        "server": {"database_url": database_url},
        "ledger": {"retention_days": KEEP, "spill_dir": str(tmp_path / "spill")},
        "providers": {"local": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9/v1",
                                "ownership": "in-house", "vendor": "in-house"}},
        "routes": {"chat": {"targets": [{"provider": "local", "model": "m"}]}},
    })
    reader = Ledger.open(database_url, LedgerConfig(spill_dir=spill))
    _wait(lambda: _rows(reader, cutoff_day(KEEP)) == dict.fromkeys(COUNTED, 0),
          "the gateway's retention pass")
    assert _rows(reader) == {k: everything[k] - old[k] for k in COUNTED}
    assert _orphans(reader) == 0
    clear_cache()
    assert build_report(reader.engine, None, None)["totals"]["requests"] == everything[
        "requests"]
    reader.close()
    _wait(lambda: "ledger retention: deleted rows of days before" in gw.log_path.read_text(),
          "the retention log line")
