"""Versioned migrations on SQLite and PostgreSQL: from an empty database and from the
previous schema version (0001), with data carried over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, text

from emancipate.ledger import Ledger, LedgerConfig
from emancipate.ledger import db as ledger_db

pytest_plugins = ["tests.services"]  # fixtures: database_url, pg_server, redis_server


def _tables(engine) -> set[str]:  # noqa: ANN001
    return set(inspect(engine).get_table_names())


def test_empty_database_to_head(database_url: str, tmp_path: Path):
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(ledger.engine) == ledger_db.head_revision() == "0002"
    assert {"requests", "attempts", "decisions", "findings", "keys",
            "emancipate_schema"} <= _tables(ledger.engine)
    indexes = {i["name"] for i in inspect(ledger.engine).get_indexes("requests")}
    assert {"ix_requests_day", "ix_requests_key_day", "ix_requests_created_at"} <= indexes
    ledger.close()
    # Opening again (a restart, a second replica) is a no-op.
    again = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert ledger_db.current_revision(again.engine) == "0002"
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
    assert ledger_db.current_revision(ledger.engine) == "0002"
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
