"""Versioned migrations on SQLite and PostgreSQL: from an empty database and from the
previous schema versions (0001, 0002, 0003), with data carried over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, text

from emancipate.ledger import Ledger, LedgerConfig
from emancipate.ledger import db as ledger_db
from emancipate.report import build_report
from emancipate.report.build import clear_cache
from tests.ledger_traffic import differences, record_random_traffic

pytest_plugins = ["tests.services"]  # fixtures: database_url, pg_server, redis_server


def _tables(engine) -> set[str]:  # noqa: ANN001
    return set(inspect(engine).get_table_names())


def test_empty_database_to_head(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision()
    assert {"requests", "attempts", "decisions", "findings", "keys", "shadow_verdicts", "contents",
            "emancipate_schema", *SUMMARY_TABLES} <= _tables(ledger.engine)
    indexes = {i["name"] for i in inspect(ledger.engine).get_indexes("requests")}
    assert {"ix_requests_day", "ix_requests_key_day", "ix_requests_created_at"} <= indexes
    ledger.close()
    # Opening again (a restart, a second replica) is a no-op.
    again = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(again.engine) == ledger_db.head_revision()
    again.close()


def test_previous_version_to_head_keeps_and_backfills_rows(database_url: str, tmp_path: Path):
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, "0001")
    assert ledger_db.current_revision(engine) == "0001"
    columns = {c["name"] for c in inspect(engine).get_columns("requests")}
    assert "day" not in columns and "endpoint" not in columns
    created = datetime(2025, 9, 30, 23, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO requests (id, created_at, key_id, status, stream, prompt_tokens, "
            "completion_tokens, cost, latency_ms, attempts, vendor) VALUES "
            "('req_old', :t, 'key_x', 200, false, 10, 5, 0.25, 12.5, 1, 'openai')"),
            {"t": created})
        conn.execute(text(
            "INSERT INTO attempts (request_id, n, target, outcome, latency_ms) "
            "VALUES ('req_old', 0, 'openai/gpt-4o', 'ok', 12.5)"))
    engine.dispose()

    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision()
    path = ledger.request_path("req_old")
    assert path is not None
    assert path["day"] == "2025-09-30"  # backfilled in UTC
    assert path["endpoint"] == "chat.completions"  # server default for old rows
    assert len(path["attempts"]) == 1
    assert ledger.spend("key_x", "2025-09-30") == (0.25, 0.25)
    assert ledger.usage("day")[0]["day"] == "2025-09-30"
    ledger.close()


def test_downgrade_to_previous_version_keeps_children(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    with ledger.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO requests (id, created_at, day, key_id, status, stream, prompt_tokens, "
            "completion_tokens, cost, latency_ms, attempts) VALUES "
            "('req_1', :t, '2025-10-01', 'k', 200, false, 1, 1, 0, 1, 1)"),
            {"t": datetime(2025, 10, 1, tzinfo=UTC)})
        conn.execute(text("INSERT INTO attempts (request_id, n, target, outcome, latency_ms) "
                          "VALUES ('req_1', 0, 'a/b', 'ok', 1)"))
    ledger_db.downgrade(ledger.engine, "0001")
    assert ledger_db.current_revision(ledger.engine) == "0001"
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM attempts")).scalar() == 1
    ledger_db.upgrade(ledger.engine)
    assert ledger.request_path("req_1")["day"] == "2025-10-01"
    ledger.close()


SHADOW_COLUMNS = {
    "request_id", "created_at", "day", "route", "primary_target", "primary_ownership",
    "shadow_target", "shadow_ownership", "judge", "inhouse_ok", "verdict", "router_score",
    "prompt", "latency_ms", "shadow_vendor", "shadow_tokens", "shadow_cost", "judge_target",
    "judge_vendor", "judge_tokens", "judge_cost",
}


def _open_from(database_url: str, tmp_path: Path, revision: str, insert: str,
               t: datetime) -> Ledger:
    """A database at an older `revision` holding one row (`insert`, with `:t`), then opened
    as a start would: migrated to head, which must keep the row."""
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, revision)
    assert ("shadow_verdicts" in _tables(engine)) == (revision >= "0003")
    with engine.begin() as conn:
        conn.execute(text(insert), {"t": t})
    engine.dispose()
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision()
    return ledger


def _verdict(rid: str, **extra: object) -> dict:
    row = {"request_id": rid, "created_at": datetime(2025, 10, 3, 12, tzinfo=UTC).timestamp(),
           "route": "chat", "primary_target": "openai/gpt-4o", "primary_ownership": "external",
           "shadow_target": "embedded/smollm2", "shadow_ownership": "in-house",
           "judge": "exact", "inhouse_ok": True, "verdict": "tie", "router_score": None,
           "prompt": None, "latency_ms": 12.0}
    row.update(extra)
    return row


def test_0002_to_0003_adds_shadow_verdicts_and_keeps_requests(database_url: str,
                                                              tmp_path: Path):
    ledger = _open_from(
        database_url, tmp_path, "0002",
        "INSERT INTO requests (id, created_at, day, key_id, status, stream, prompt_tokens, "
        "completion_tokens, cost, latency_ms, attempts) VALUES "
        "('req_2', :t, '2025-10-02', 'k', 200, false, 1, 1, 0, 1, 1)",
        datetime(2025, 10, 2, tzinfo=UTC))
    assert ledger.request_path("req_2") is not None
    columns = {c["name"]: c for c in inspect(ledger.engine).get_columns("shadow_verdicts")}
    assert set(columns) == SHADOW_COLUMNS
    assert columns["prompt"]["nullable"] and columns["router_score"]["nullable"]
    assert not inspect(ledger.engine).get_foreign_keys("shadow_verdicts")
    # No foreign key: a verdict may land before its request row; inserts are idempotent.
    ledger.record_shadow(_verdict("req_not_yet_written"))
    ledger.record_shadow(_verdict("req_not_yet_written", verdict="error"))
    ledger.record_shadow(_verdict("req_2", inhouse_ok=False, verdict="external_better",
                                  prompt="What is 2+2?", router_score=0.7))
    rows = ledger.shadow_verdicts()
    assert [r["request_id"] for r in rows] == ["req_2", "req_not_yet_written"]
    assert {r["verdict"] for r in rows} == {"tie", "external_better"}  # first write kept
    assert [r["request_id"] for r in ledger.shadow_verdicts(with_prompt=True)] == ["req_2"]
    assert all(r["day"] == "2025-10-03" for r in rows)
    assert ledger.shadow_readiness() == [{"day": "2025-10-03", "route": "chat", "verdicts": 2,
                                          "errors": 0, "inhouse_ok": 1, "readiness": 0.5}]

    ledger_db.downgrade(ledger.engine, "0002")
    assert "shadow_verdicts" not in _tables(ledger.engine)
    with ledger.engine.connect() as conn:  # raw: the head's columns are not there at 0002
        assert conn.execute(text("SELECT id FROM requests")).scalars().all() == ["req_2"]
    ledger_db.upgrade(ledger.engine)
    assert "shadow_verdicts" in _tables(ledger.engine)
    ledger.close()


def test_0003_to_0004_adds_contents(database_url: str, tmp_path: Path):
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, "0003")
    assert "contents" not in _tables(engine)
    engine.dispose()
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision()
    columns = {c["name"] for c in inspect(ledger.engine).get_columns("contents")}
    assert columns == {"request_id", "messages", "answer"}
    ledger_db.downgrade(ledger.engine, "0003")
    assert "contents" not in _tables(ledger.engine)
    ledger.close()


def test_0004_to_0005_adds_shadow_spend_and_keeps_verdicts(database_url: str, tmp_path: Path):
    ledger = _open_from(
        database_url, tmp_path, "0004",
        "INSERT INTO shadow_verdicts (request_id, created_at, day, route, primary_target, "
        "primary_ownership, shadow_target, shadow_ownership, judge, inhouse_ok, verdict, "
        "latency_ms) VALUES ('req_old', :t, '2025-10-03', 'chat', 'openai/gpt-4o', "
        "'external', 'local/m', 'in-house', 'exact', true, 'tie', 5)",
        datetime(2025, 10, 3, tzinfo=UTC))
    ledger.record_shadow(_verdict("req_new", shadow_vendor="in-house", shadow_tokens=7,
                                  shadow_cost=0.5, judge_target="openai/gpt-4o",
                                  judge_vendor="openai", judge_tokens=3, judge_cost=0.25))
    rows = {r["request_id"]: r for r in ledger.shadow_verdicts()}
    old = rows["req_old"]  # what an old verdict cost was not recorded: zero, no vendor
    assert (old["shadow_vendor"], old["shadow_cost"], old["judge_tokens"]) == (None, 0.0, 0)
    new = rows["req_new"]
    assert (new["shadow_vendor"], new["shadow_tokens"], new["shadow_cost"]) == ("in-house", 7,
                                                                               0.5)
    assert (new["judge_target"], new["judge_vendor"], new["judge_cost"]) == ("openai/gpt-4o",
                                                                            "openai", 0.25)
    ledger_db.downgrade(ledger.engine, "0004")
    columns = {c["name"] for c in inspect(ledger.engine).get_columns("shadow_verdicts")}
    assert "judge_cost" not in columns and "latency_ms" in columns
    with ledger.engine.connect() as conn:
        kept = {r[0] for r in conn.execute(text("SELECT request_id FROM shadow_verdicts"))}
    assert kept == {"req_old", "req_new"}
    ledger.close()


def test_0005_to_0006_adds_key_expiry_and_keeps_keys(database_url: str, tmp_path: Path):
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO keys (id, secret_hash, hint, name, created_at) "
            "VALUES ('key_old', 'h0', '...abcd', 'old', :t)"), {"t": datetime(2025, 10, 3,
                                                                        tzinfo=UTC)})
    engine.dispose()
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision()
    from emancipate.auth import KeyStore

    old = KeyStore(ledger.engine).get("key_old")
    assert old is not None and old.expires_at is None  # existing keys never expire
    assert old.to_dict()["status"] == "active"
    ledger_db.downgrade(ledger.engine, "0005")
    columns = {c["name"] for c in inspect(ledger.engine).get_columns("keys")}
    assert "expires_at" not in columns and "rotated_at" in columns
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM keys")).scalar() == "old"
    ledger.close()


SUMMARY_TABLES = {"daily_traffic", "daily_routing", "daily_findings", "daily_protection",
                  "daily_withheld", "daily_failovers", "daily_shadow"}


def _summarised(ledger: Ledger) -> tuple[int, int]:
    """(requests, shadow verdicts) counted in the daily summary."""
    with ledger.engine.connect() as conn:
        return (int(conn.execute(text("SELECT sum(requests) FROM daily_traffic")).scalar() or 0),
                int(conn.execute(text("SELECT sum(verdicts) FROM daily_shadow")).scalar() or 0))


def test_0007_to_0008_summarises_existing_rows_once_and_downgrade_keeps_them(
        database_url: str, tmp_path: Path):
    cfg = LedgerConfig(spill_dir=str(tmp_path))
    ledger = Ledger.open(database_url, cfg)
    record_random_traffic(ledger, n=120, days=30)
    assert _summarised(ledger) == (120, 12)  # kept by the writer
    clear_cache()
    expected = build_report(ledger.engine, None, None, source="raw")

    ledger_db.downgrade(ledger.engine, "0007")
    assert not SUMMARY_TABLES & _tables(ledger.engine)
    assert ledger.count() == 120 and len(ledger.shadow_verdicts()) == 12
    ledger.close()

    again = Ledger.open(database_url, cfg)  # a start: migrated, then existing rows summarised
    assert ledger_db.current_revision(again.engine) == ledger_db.head_revision()
    assert _summarised(again) == (120, 12)
    clear_cache()
    summary = build_report(again.engine, None, None)
    assert summary["source"] == "summary"
    assert differences(expected, summary) == []
    again.close()
    third = Ledger.open(database_url, cfg)  # a restart summarises nothing twice
    assert _summarised(third) == (120, 12)
    third.close()
