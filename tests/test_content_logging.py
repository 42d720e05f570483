"""`ledger.log_content`: off by default; when on, the exchange is kept with detected values
masked, so even then the ledger never holds a detected secret."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

AWS_KEY = "AKIAZ7Q4XK2M9PLW3RTE"
EMAIL = "jeanne.martin@exemple.fr"


@pytest.fixture
def vendor() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("openai", name="own") as v:
        yield v


def _config(vendor: SimulatedVendor, db: Path, log_content: bool) -> dict:
    return {
        "server": {"database_url": f"sqlite:///{db}"},
        "providers": {"own": {"kind": "openai-compatible", "base_url": vendor.url,
                              "ownership": "in-house", "vendor": "us"}},
        "routes": {"chat": {"targets": [{"provider": "own", "model": "m"}]}},
        "ledger": {"log_content": log_content},
    }


def _ask(gw: GatewayProcess, text: str, stream: bool) -> str:
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
        "model": "chat", "stream": stream, "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def test_contents_are_stored_masked_when_asked(
    vendor: SimulatedVendor, tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    db = tmp_path / "content.db"
    gw = start_gateway(_config(vendor, db, True))
    prompt = f"my key is {AWS_KEY} and my mail {EMAIL}, say ok"
    ids = [_ask(gw, prompt, stream=False), _ask(gw, prompt, stream=True)]
    gw.stop()  # SIGTERM: the ledger is flushed

    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("content.db-*"))
    assert AWS_KEY.encode() not in raw and EMAIL.encode() not in raw
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT request_id, messages || '|' || answer FROM contents"))
    assert set(rows) == set(ids)
    for stored in rows.values():
        messages, answer = stored.split("|", 1)
        text = json.loads(messages)[0]["content"]
        assert text.startswith("my key is [secret:") and "[personal:email]" in text
        assert "say ok" in text
        # The vendor echoed the prompt: the answer is masked the same way.
        assert "[secret:" in answer and "[personal:email]" in answer and "own says" in answer


def test_contents_are_not_stored_by_default(
    vendor: SimulatedVendor, tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    db = tmp_path / "plain.db"
    gw = start_gateway(_config(vendor, db, False))
    _ask(gw, "a harmless question", stream=False)
    _ask(gw, "a harmless question", stream=True)
    gw.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM contents").fetchone()[0] == 0
    assert b"harmless question" not in db.read_bytes()
