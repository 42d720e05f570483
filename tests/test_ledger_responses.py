"""The stored Responses table (`ledger/responses.py`, migration 0009) on SQLite and
PostgreSQL: scoped by key, texts masked by the guard, ids kept, and the migration's way in
and out with data in the database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from emancipate.guard import Guard
from emancipate.guard.config import GuardConfig
from emancipate.ledger import Ledger, LedgerConfig
from emancipate.ledger import db as ledger_db
from emancipate.ledger.responses import ResponseStore, StoredResponse

pytest_plugins = ["tests.services"]  # fixtures: database_url

AWS_KEY = "AKIA" + "W7NQ4ZK2RX3BT5MV"


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_config(GuardConfig())


def _stored(response_id: str, key_id: str) -> StoredResponse:
    secret = f"aws_access_key_id={AWS_KEY}"
    response = {"id": response_id, "object": "response", "instructions": secret,
                "metadata": {"note": secret},
                "output": [{"id": "msg_1", "type": "message", "content": [
                    {"type": "output_text", "text": f"you sent {secret}"}]},
                    {"id": "fc_1", "type": "function_call", "call_id": "call_Q7mR2kX9vT4w",
                     "name": "f", "arguments": f'{{"k": "{AWS_KEY}"}}'}]}
    context = [{"role": "user", "content": [{"type": "text", "text": secret}]},
               {"role": "assistant", "content": None, "tool_calls": [{
                   "id": "call_Q7mR2kX9vT4w", "type": "function",
                   "function": {"name": "f", "arguments": secret}}]},
               {"role": "tool", "tool_call_id": "call_Q7mR2kX9vT4w", "content": secret}]
    return StoredResponse(response_id, key_id, time.time(), response, context, "req_1")


def test_a_stored_response_is_masked_and_scoped_to_its_key(database_url: str, tmp_path: Path,
                                                           guard: Guard) -> None:
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    store = ResponseStore(ledger.engine, guard)
    store.save(_stored("resp_1", "key_a"))
    store.save(_stored("resp_1", "key_a"))  # idempotent: a retried write is harmless
    assert store.get("resp_1", "key_b") is None
    got = store.get("resp_1", "key_a")
    assert got is not None and got.request_id == "req_1"
    with ledger.engine.connect() as conn:
        raw = " ".join(conn.execute(text("SELECT response || context FROM responses")).scalars())
    assert AWS_KEY not in raw and "[secret:" in raw
    assert got.response["output"][1]["call_id"] == got.context[2]["tool_call_id"] == \
        "call_Q7mR2kX9vT4w"  # ids are not masked: a tool output still pairs with its call
    assert "[secret:" in got.response["instructions"] and \
        "[secret:" in got.response["metadata"]["note"]
    assert "[secret:" in got.context[0]["content"][0]["text"]
    assert not store.delete("resp_1", "key_b") and store.get("resp_1", "key_a") is not None
    assert store.delete("resp_1", "key_a") and store.get("resp_1", "key_a") is None
    ledger.close()


def test_migration_0009_adds_and_removes_the_table_keeping_requests(database_url: str) -> None:
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, "0008")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO requests (id, created_at, key_id, status, stream, prompt_tokens, "
            "completion_tokens, cost, latency_ms, attempts) VALUES "
            "('req_kept', CURRENT_TIMESTAMP, 'k', 200, false, 1, 1, 0, 1, 1)"))
    assert "responses" not in inspect(engine).get_table_names()
    ledger_db.upgrade(engine, "0009")
    assert "responses" in inspect(engine).get_table_names()
    ResponseStore(engine).save(_stored("resp_x", "k"))
    ledger_db.downgrade(engine, "0008")
    assert "responses" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM requests")).scalar() == 1
    engine.dispose()


def test_what_the_guard_read_clean_is_not_scanned_again_but_the_answer_is(
        tmp_path: Path, guard: Guard) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'r.db'}", LedgerConfig(spill_dir=str(tmp_path)))
    store = ResponseStore(ledger.engine, guard)
    stored = _stored("resp_c", "k")
    stored.context = [{"role": "user", "content": "nothing to find here"},
                      {"role": "assistant", "content": f"echo aws_access_key_id={AWS_KEY}"}]
    stored.scanned_clean = 1
    store.save(stored)
    got = store.get("resp_c", "k")
    assert got is not None and got.context[0]["content"] == "nothing to find here"
    assert AWS_KEY not in got.context[1]["content"] and "[secret:" in got.context[1]["content"]
    assert AWS_KEY not in str(got.response["output"])
    ledger.close()
