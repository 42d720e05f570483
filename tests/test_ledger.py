"""The ledger on real SQLite and PostgreSQL: batching, zero loss on close, idempotence,
spill and replay, usage aggregation, request paths."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from emancipate.context import (
    Attempt,
    Decision,
    Finding,
    Principal,
    RequestContext,
    Target,
)
from emancipate.ledger import Ledger, LedgerConfig, parse_since
from tests.polling import eventually

pytest_plugins = ["tests.services"]  # fixtures: database_url, pg_server, redis_server

OPENAI = Target("openai", "gpt-4o", "openai", "external")
CLAUDE = Target("claude", "claude-sonnet-4-5", "anthropic", "external")
LOCAL = Target("smollm", "smollm2-135m-instruct", "in-house", "in-house")


def make_ctx(i: int = 0, *, key: str = "key_a", team: str | None = "search",
             target: Target | None = OPENAI, cost: float = 0.01, status: int = 200,
             attempts: int = 1, started_at: float | None = None) -> RequestContext:
    ctx = RequestContext(principal=Principal(key, name=key, team=team), route="chat")
    if started_at is not None:
        ctx.started_at = started_at
    ctx.served_by = target
    for n in range(attempts):
        last = n == attempts - 1
        t = target or OPENAI
        ctx.attempts.append(Attempt(t.id, t.vendor, t.ownership, "ok" if last else "timeout",
                                    10.0 + n, 200 if last else None,
                                    None if last else "timeout"))
    ctx.decisions.append(Decision("policy", "redact", "personal data to a competitor",
                                  rule="pii-out", cls="personal", detector="email"))
    ctx.decisions.append(Decision("routing", "route", "fallback order", target=OPENAI.id))
    ctx.findings.append(Finding("personal", "email", 3, 20, message_index=1))
    ctx.prompt_tokens, ctx.completion_tokens = 100 + i, 20
    ctx.cost, ctx.status, ctx.latency_ms = cost, status, 42.0
    if status >= 400:
        ctx.error_code = "upstream_error"
    return ctx


def cfg(tmp_path: Path, **kw: object) -> LedgerConfig:
    return LedgerConfig(spill_dir=str(tmp_path / "spill"), **kw)


def test_batches_are_written_by_the_background_writer(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path, batch_size=7, flush_interval=0.05))
    ledger.start()
    for i in range(30):
        ledger.record(make_ctx(i))
    eventually(lambda: ledger.count() >= 30 or None, "the writer never wrote the 30 records")
    assert ledger.count() == 30
    assert ledger.pending() == 0
    ledger.close()


def test_aclose_loses_nothing_under_concurrent_load(database_url: str, tmp_path: Path):
    """Producers on the event loop and in threads, then a graceful close: every record is in."""
    ledger = Ledger.open(database_url, cfg(tmp_path, batch_size=50, flush_interval=5))
    ledger.start()
    n_loop, n_threads, per_thread = 400, 4, 150

    def produce() -> None:
        for i in range(per_thread):
            ledger.record(make_ctx(i))

    async def main() -> None:
        threads = [threading.Thread(target=produce) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for i in range(n_loop):
            ledger.record(make_ctx(i))
            if i % 50 == 0:
                await asyncio.sleep(0)
        for t in threads:
            t.join()
        await ledger.aclose()

    asyncio.run(main())
    again = Ledger.open(database_url, cfg(tmp_path))
    expected = n_loop + n_threads * per_thread
    assert again.count() == expected
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM attempts")).scalar() == expected
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar() == 2 * expected
        assert conn.execute(text("SELECT count(*) FROM findings")).scalar() == expected
    again.close()


def test_writes_are_idempotent(database_url: str, tmp_path: Path):
    """A batch retried after an ambiguous failure (or a spill replayed twice) adds nothing."""
    ledger = Ledger.open(database_url, cfg(tmp_path))
    ctx = make_ctx(attempts=3)
    for _ in range(3):
        ledger.record(ctx)
        ledger.flush()
    assert ledger.count() == 1
    assert len(ledger.request_path(ctx.request_id)["attempts"]) == 3
    ledger.close()


def test_record_never_raises_and_disabled_ledger_records_nothing(database_url: str,
                                                                 tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    ledger.record(object())  # type: ignore[arg-type] - a broken context is logged, not raised
    ledger.flush()
    assert ledger.count() == 0
    ledger.close()
    off = Ledger.open(database_url, cfg(tmp_path, enabled=False))
    off.record(make_ctx())
    off.flush()
    assert off.count() == 0
    off.close()


def test_a_record_the_database_refuses_does_not_block_the_others(database_url: str,
                                                                  tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    good = [make_ctx(i) for i in range(5)]
    bad = make_ctx()
    bad.prompt_tokens = 2**70  # no integer column holds this
    odd = make_ctx()
    odd.route = "x\x00" + "y" * 500  # NUL and too long: cleaned, truncated
    for ctx in good[:2] + [bad, odd] + good[2:]:
        ledger.record(ctx)
    ledger.flush()
    assert ledger.count() == 6 and ledger.rejected == 1
    assert ledger.request_path(odd.request_id)["route"].startswith("xyyy")
    rejected = list((tmp_path / "spill").glob("rejected-*.jsonl"))
    assert len(rejected) == 1 and bad.request_id in rejected[0].read_text()
    ledger.close()
    Ledger.open(database_url, cfg(tmp_path)).close()  # rejected files are not replayed
    assert rejected[0].exists()


def test_request_path_holds_metadata_never_contents(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    ctx = make_ctx(attempts=2, target=CLAUDE)
    ctx.router_score = 0.73
    ctx.stream = True
    ledger.record(ctx)
    ledger.flush()
    path = ledger.request_path(ctx.request_id)
    assert path is not None
    assert path["key_id"] == "key_a" and path["team"] == "search" and path["route"] == "chat"
    assert (path["target"], path["vendor"], path["ownership"]) == (
        "claude/claude-sonnet-4-5", "anthropic", "external")
    assert path["stream"] is True and path["router_score"] == pytest.approx(0.73)
    assert path["attempts"][0]["outcome"] == "timeout" and path["attempts"][1]["status"] == 200
    assert [d["stage"] for d in path["decisions"]] == ["policy", "routing"]
    assert path["decisions"][0]["rule"] == "pii-out"
    assert path["findings"] == [{"n": 0, "cls": "personal", "detector": "email",
                                 "domain": None, "message_index": 1}]
    assert path["day"] == time.strftime("%Y-%m-%d", time.gmtime(ctx.started_at))
    assert ledger.request_path("req_missing") is None
    ledger.close()


def test_usage_aggregates_in_sql(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    old = time.time() - 3 * 86400
    rows = (
        [make_ctx(key="key_a", team="search", target=OPENAI, cost=0.02) for _ in range(3)]
        + [make_ctx(key="key_b", team="ads", target=CLAUDE, cost=0.05, attempts=2)]
        + [make_ctx(key="key_b", team="ads", target=LOCAL, cost=0.0) for _ in range(4)]
        + [make_ctx(key="key_a", team="search", target=None, cost=0.0, status=503)]
        + [make_ctx(key="key_a", team="search", target=OPENAI, cost=1.0, started_at=old)]
    )
    for ctx in rows:
        ledger.record(ctx)
    ledger.flush()

    by_vendor = {r["vendor"]: r for r in ledger.usage("vendor")}
    assert by_vendor["openai"]["requests"] == 4
    assert by_vendor["openai"]["cost"] == pytest.approx(1.06)
    assert by_vendor["anthropic"]["failovers"] == 1
    assert by_vendor[None]["errors"] == 1
    assert sum(r["share_requests"] for r in by_vendor.values()) == pytest.approx(1, abs=1e-3)

    by_owner = {r["ownership"]: r["requests"] for r in ledger.usage("ownership")}
    assert by_owner == {"external": 5, "in-house": 4, None: 1}

    since = datetime.now(UTC) - timedelta(days=1)
    by_team = {r["team"]: r for r in ledger.usage("team", since)}
    assert by_team["search"]["requests"] == 4  # the old row is filtered out
    assert by_team["search"]["cost"] == pytest.approx(0.06)
    assert by_team["ads"]["prompt_tokens"] == 5 * 100 and by_team["ads"]["completion_tokens"] == 100

    by_day = ledger.usage("day")
    assert [r["requests"] for r in by_day] == [1, 9]  # ordered by day
    by_model = {r["model"]: r["requests"] for r in ledger.usage("model")}
    assert by_model["smollm2-135m-instruct"] == 4
    assert {r["key"] for r in ledger.usage("key")} == {"key_a", "key_b"}
    with pytest.raises(ValueError, match="by must be one of"):
        ledger.usage("colour")
    ledger.close()


def test_spend_sums_a_keys_day_and_month(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    now = time.time()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    for _ in range(3):
        ledger.record(make_ctx(key="key_s", cost=0.5, started_at=now))
    ledger.record(make_ctx(key="other", cost=9.0, started_at=now))
    ledger.flush()
    spent_day, spent_month = ledger.spend("key_s", day)
    assert spent_day == pytest.approx(1.5) and spent_month == pytest.approx(1.5)
    assert ledger.spend("nobody", day) == (0.0, 0.0)
    ledger.close()


def test_record_after_close_is_spilled_then_replayed(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path))
    ledger.start()
    asyncio.run(ledger.aclose())
    late = make_ctx()
    ledger.record(late)  # a straggler after shutdown: kept on disk
    assert ledger.spilled == 1
    assert list((tmp_path / "spill").glob("ledger-*.jsonl"))
    again = Ledger.open(database_url, cfg(tmp_path))
    assert again.request_path(late.request_id) is not None
    assert not list((tmp_path / "spill").iterdir())
    again.close()


def _drop(url: str) -> None:
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{u.database}" WITH (FORCE)')


def _create(url: str) -> None:
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{u.database}"')


def _create_migrated(url: str) -> None:
    """The database back with its tables in one step: migrated under another name, then
    renamed, so the writer never meets it empty (an insert into a missing table is a
    refused record, not an unreachable database)."""
    from emancipate.ledger import db

    u = make_url(url)
    staging = f"{u.database}_staging"
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{staging}"')
    engine = db.make_engine(u.set(database=staging).render_as_string(hide_password=False))
    db.upgrade(engine)
    engine.dispose()
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{staging}" RENAME TO "{u.database}"')


def test_database_lost_at_shutdown_spills_and_next_start_replays(tmp_path: Path, postgres_url: str):
    """PostgreSQL gone during shutdown: nothing lost; the records reach it at the next start."""
    url = postgres_url
    ledger = Ledger.open(url, cfg(tmp_path, shutdown_timeout=0.3))
    ledger.start()
    ctxs = [make_ctx(i) for i in range(25)]
    _drop(url)
    for ctx in ctxs:
        ledger.record(ctx)
    asyncio.run(ledger.aclose())
    assert ledger.spilled == 25
    spilled = list((tmp_path / "spill").glob("*.jsonl"))
    lines = [json.loads(line) for f in spilled for line in f.read_text().splitlines()]
    assert len(lines) == 25
    assert "@" not in json.dumps(lines)  # metadata only
    _create(url)
    again = Ledger.open(url, cfg(tmp_path))
    assert again.count() == 25
    again.close()


def test_writer_keeps_records_while_the_database_is_down(tmp_path: Path, postgres_url: str):
    url = postgres_url
    ledger = Ledger.open(url, cfg(tmp_path, flush_interval=0.05))
    ledger.start()
    _drop(url)
    for i in range(10):
        ledger.record(make_ctx(i))
    time.sleep(0.3)  # let the writer fail (at least once) and keep them
    _create_migrated(url)
    eventually(lambda: not ledger.pending() or None,
               "the writer never wrote the kept records once the table was back")
    ledger.close()
    assert ledger.spilled == 0
    again = Ledger.open(url, cfg(tmp_path))
    assert again.count() == 10
    again.close()


def test_shadow_verdict_with_the_database_down_is_spilled_then_replayed(tmp_path: Path,
                                                                         postgres_url: str):
    """A verdict is kept on disk while the database is gone, and reaches it at the next start."""
    url = postgres_url
    ledger = Ledger.open(url, cfg(tmp_path))
    verdict = {"request_id": "req_shadowed", "created_at": 1_759_492_800.0, "route": "chat",
               "primary_target": OPENAI.id, "primary_ownership": "external",
               "shadow_target": LOCAL.id, "shadow_ownership": "in-house", "judge": "exact",
               "inhouse_ok": False, "verdict": "external_better", "router_score": 0.4,
               "prompt": "Which planet is largest?", "latency_ms": 12.0}
    _drop(url)
    ledger.record_shadow(verdict)  # does not raise: the shadow stage would count an error
    ledger.close()
    spilled = list((tmp_path / "spill").glob("shadow-*.jsonl"))
    assert len(spilled) == 1 and ledger.spilled == 1
    assert json.loads(spilled[0].read_text()) == verdict
    _create(url)
    again = Ledger.open(url, cfg(tmp_path))
    rows = again.shadow_verdicts(with_prompt=True)
    assert [(r["request_id"], r["verdict"], r["day"]) for r in rows] == [
        ("req_shadowed", "external_better", "2025-10-03")]
    assert not list((tmp_path / "spill").iterdir())
    assert again.replay_spill() == 0
    again.close()


def test_parse_since():
    now = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2025-10-01") == datetime(2025, 10, 1, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("last tuesday")


def test_request_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch):
    """Request ids (the ledger's primary keys) start with the time, so that new rows land at
    the end of the B-trees; within one millisecond they differ by their random half."""
    from emancipate.api import app

    groups = []
    for now in (1_764_000_000.0011, 1_764_000_000.0025, 1_864_000_000.0):
        monkeypatch.setattr(app, "_time", lambda now=now: now)
        groups.append([app.new_request_id() for _ in range(200)])
    flat = [rid for group in groups for rid in group]
    assert len(set(flat)) == len(flat)
    assert all(len(rid) == 28 and rid.startswith("req_") and int(rid[4:], 16) >= 0
               for rid in flat)
    assert max(groups[0]) < min(groups[1]) and max(groups[1]) < min(groups[2])


# --- the crash journal (issue 17 §4) ------------------------------------------------------------


def _dead_journal(tmp_path: Path, database_url: str, ctxs: list[RequestContext]) -> list[Path]:
    """A journal holding `ctxs`, left as a killed process leaves it: lock file unlocked,
    segments on disk, nothing released."""
    from emancipate.ledger.journal import Journal
    from emancipate.ledger.store import to_rows

    journal = Journal(tmp_path / "spill", _masked(database_url), "write")
    for ctx in ctxs:
        journal.append(json.dumps(to_rows(ctx)).encode() + b"\n")
    journal.close(0)  # keeps every line and drops the lock, as a dead process does
    return sorted((tmp_path / "spill").glob("journal-*.jsonl"))


def _masked(database_url: str) -> str:
    """The URL as the ledger names its database (password masked)."""
    return make_url(database_url).render_as_string(hide_password=True)


def _ids_and_attempts(database_url: str, tmp_path: Path) -> tuple[list[str], int]:
    ledger = Ledger.open(database_url, cfg(tmp_path))
    try:
        with ledger.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM requests"))]
            attempts = conn.execute(text("SELECT count(*) FROM attempts")).scalar_one()
    finally:
        ledger.close()
    return ids, int(attempts)


def test_a_journal_replayed_twice_stores_each_record_once(database_url: str, tmp_path: Path):
    ctxs = [make_ctx(i, attempts=2) for i in range(20)]
    # Some of the journal's records were committed before the "crash", as the writer does.
    committed = Ledger.open(database_url, cfg(tmp_path))
    for ctx in ctxs[:7]:
        committed.record(ctx)
    committed.close()
    segments = _dead_journal(tmp_path, database_url, ctxs)
    saved = {path: path.read_bytes() for path in segments}

    Ledger.open(database_url, cfg(tmp_path)).close()  # replays the journal
    assert not list((tmp_path / "spill").iterdir())  # segments and lock file gone
    for path, data in saved.items():  # the same journal once more (a replay cut short)
        path.write_bytes(data)
    Ledger.open(database_url, cfg(tmp_path)).close()

    ids, attempts = _ids_and_attempts(database_url, tmp_path)
    assert sorted(ids) == sorted(ctx.request_id for ctx in ctxs)
    assert attempts == 2 * len(ctxs)


def test_a_live_processs_journal_is_not_replayed_and_a_cut_line_is_skipped(
        database_url: str, tmp_path: Path):
    from emancipate.ledger.journal import Journal
    from emancipate.ledger.store import to_rows

    live = Journal(tmp_path / "spill", _masked(database_url), "write")
    live.append(json.dumps(to_rows(make_ctx(0))).encode() + b"\n")
    dead = _dead_journal(tmp_path, database_url, [make_ctx(1), make_ctx(2)])
    dead_segment = next(p for p in dead if not p.name.startswith(live.stem))
    with open(dead_segment, "ab") as fh:  # a power cut in the middle of a line
        fh.write(b'[{"id": "req_cut')

    Ledger.open(database_url, cfg(tmp_path)).close()
    assert len(_ids_and_attempts(database_url, tmp_path)[0]) == 2  # the dead one's whole lines
    assert list((tmp_path / "spill").glob(f"{live.stem}-*.jsonl"))  # the live one untouched
    live.close(live.appended)
    assert not list((tmp_path / "spill").iterdir())


def test_the_journal_holds_only_what_the_writer_has_not_committed(database_url: str,
                                                                   tmp_path: Path):
    ledger = Ledger.open(database_url, cfg(tmp_path, flush_interval=60))
    ledger.start()
    ctxs = [make_ctx(i) for i in range(5)]
    for ctx in ctxs:
        ledger.record(ctx)
    segment = next((tmp_path / "spill").glob("journal-*.jsonl"))
    lines = segment.read_bytes().splitlines()
    assert [json.loads(line)[0]["id"] for line in lines] == [c.request_id for c in ctxs]
    ledger.flush()  # committed: the journal gives the space back
    assert segment.stat().st_size == 0
    ledger.record(make_ctx(5))
    assert segment.stat().st_size > 0
    ledger.close()
    assert not list((tmp_path / "spill").iterdir())
    assert len(_ids_and_attempts(database_url, tmp_path)[0]) == 6
