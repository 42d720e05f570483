"""SIGTERM under load loses no ledger record (issue 5), on SQLite and on PostgreSQL.

A real gateway serves a steady concurrent load (streaming and not) from a slow simulated vendor,
so requests are always in flight; SIGTERM arrives mid-load. Afterwards every request the client
received a complete answer for must be in the ledger, exactly once, with status 200. A request
cut by the shutdown may be missing only if its client never got an answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from emancipate.testing import SimulatedVendor, SlowTokens
from tests.gateway_process import GatewayProcess, ledger_rows
from tests.polling import eventually
from tests.tcp_proxy import TcpProxy

pytest_plugins = ["tests.services"]

WORKERS = 16


@dataclass
class Outcome:
    request_id: str | None
    complete: bool
    stream: bool
    after_signal: bool = False  # the answer ended after SIGTERM was sent (no clock read)


def _one(client: httpx.Client, url: str, text: str, stream: bool) -> Outcome:
    """One request; `complete` only when the whole, correct answer arrived."""
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": text}]}
    expected = f"v says: {text}"
    rid: str | None = None
    try:
        if not stream:
            r = client.post(url, json=body)
            rid = r.headers.get("x-request-id")
            ok = (r.status_code == 200
                  and r.json()["choices"][0]["message"]["content"] == expected)
            return Outcome(rid, ok, stream)
        with client.stream("POST", url, json=body) as r:
            rid = r.headers.get("x-request-id")
            if r.status_code != 200:
                r.read()
                return Outcome(rid, False, stream)
            content, done = "", False
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    continue
                event = json.loads(line[6:])
                for choice in event.get("choices") or ():
                    content += (choice.get("delta") or {}).get("content") or ""
            return Outcome(rid, done and content == expected, stream)
    except (httpx.HTTPError, ValueError, KeyError):
        return Outcome(rid, False, stream)


def _load(gw: GatewayProcess, stop: threading.Event, out: list[Outcome], worker: int,
          key: str | None = None, signalled: threading.Event | None = None) -> None:
    url = gw.url + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=60, headers=headers) as client:
        i = 0
        while not stop.is_set():
            outcome = _one(client, url, f"worker {worker} asks question {i}", i % 2 == 1)
            outcome.after_signal = signalled is not None and signalled.is_set()
            out.append(outcome)
            i += 1
            if not outcome.complete and outcome.request_id is None:
                time.sleep(0.01)  # the gateway is going or gone: do not spin


@pytest.mark.timeout(300)
def test_sigterm_under_load_loses_no_record(database_url: str, tmp_path: Path) -> None:
    with SimulatedVendor("openai", name="v") as vendor:
        vendor.inject(SlowTokens(0.03))  # ~0.2 s an answer: requests are always in flight
        gw = GatewayProcess({
            "server": {"database_url": database_url},
            "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                                "ownership": "external", "vendor": "v"}},
            "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
            # A long interval: most records are still queued when SIGTERM arrives.
            "ledger": {"flush_interval": 5},
        }, tmp_path)
        gw.start()
        outcomes: list[Outcome] = []
        stop, signalled = threading.Event(), threading.Event()
        workers = [threading.Thread(target=_load, args=(gw, stop, outcomes, w, None, signalled))
                   for w in range(WORKERS)]
        try:
            for w in workers:
                w.start()
            _wait_answered(outcomes, 60)
            signalled.set()
            code = gw.terminate(timeout=60)
        finally:
            stop.set()
            for w in workers:
                w.join(60)
            gw.stop()

    assert code in (0, -15), gw.log()  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete" in gw.log()
    answered = [o for o in outcomes if o.complete]
    assert all(o.request_id for o in answered)
    # The shutdown really happened under load: some answers were completed after the signal.
    assert any(o.after_signal for o in answered)
    assert {o.stream for o in answered} == {False, True}

    ledger = ledger_rows(database_url)
    missing = [o.request_id for o in answered if o.request_id not in ledger]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests not in the ledger"
    for o in answered:
        assert ledger[o.request_id] == (1, 200), (o.request_id, ledger[o.request_id])
    # Nothing answered is recorded that the client did not see answered, and nothing spilled.
    recorded_ok = {rid for rid, (_, status) in ledger.items() if status == 200}
    assert recorded_ok == {o.request_id for o in answered}
    assert not list(tmp_path.glob("ledger-spill/*"))


# --- the database lost at shutdown: spilled, then replayed -------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("failure", ["down", "blackhole"])
def test_database_lost_before_sigterm_spills_then_replays(postgres_url: str, tmp_path: Path,
                                                          failure: str) -> None:
    """PostgreSQL becomes unreachable under load, then SIGTERM: the gateway must still exit
    within `shutdown_timeout` (plus its own drain), write what it could not commit to its spill
    directory, and the next start must replay it: every answered request ends up in the
    ledger exactly once."""
    url = sa.engine.make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    outcomes: list[Outcome] = []
    try:
        with SimulatedVendor("openai", name="v") as vendor:
            vendor.inject(SlowTokens(0.03))
            config = {
                "server": {"database_url": via_proxy},
                "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                                    "ownership": "external", "vendor": "v"}},
                "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
                "ledger": {"flush_interval": 0.2, "shutdown_timeout": 2},
            }
            gw = GatewayProcess(config, tmp_path).start()
            stop = threading.Event()
            workers = [threading.Thread(target=_load, args=(gw, stop, outcomes, w))
                       for w in range(8)]
            try:
                for w in workers:
                    w.start()
                _wait_answered(outcomes, 30)
                proxy.down() if failure == "down" else proxy.blackhole()
                _wait_answered(outcomes, 60)  # still serving while the ledger cannot write
                code = gw.terminate(timeout=90)
            finally:
                stop.set()
                for w in workers:
                    w.join(60)
                gw.stop()
            assert code in (0, -15), gw.log()
            spilled = list(tmp_path.glob("ledger-spill/ledger-*.jsonl"))
            assert spilled, gw.log()[-3000:]

            # The database is back; the next start (any replica) replays the spill.
            proxy.up()
            with GatewayProcess(config, tmp_path):
                pass
            assert not list(tmp_path.glob("ledger-spill/ledger-*"))
    finally:
        proxy.stop()

    answered = [o for o in outcomes if o.complete]
    ledger = ledger_rows(postgres_url)
    missing = [o.request_id for o in answered if o.request_id not in ledger]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests lost"
    assert all(ledger[o.request_id] == (1, 200) for o in answered)


def _wait_answered(outcomes: list[Outcome], more: int) -> None:
    target = sum(o.complete for o in outcomes) + more
    eventually(lambda: sum(o.complete for o in outcomes) >= target or None, "the load stalled",
               timeout=120)


@pytest.mark.timeout(300)
def test_sigterm_with_keys_redis_and_postgres_settles_every_answer(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    """The replica configuration (PostgreSQL, Redis, auth on, a priced vendor): after SIGTERM
    under load, every answered request is in the ledger and its cost was counted against the
    key's budget in Redis (the settlements in flight at shutdown are awaited)."""
    prefix = "s" + uuid.uuid4().hex[:10]
    admin = "admin-" + "e2e-shutdown-9d41"
    with SimulatedVendor("openai", name="v") as vendor:
        vendor.inject(SlowTokens(0.03))
        gw = GatewayProcess({
            "server": {"database_url": postgres_url, "redis_url": redis_url},
            "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                                "ownership": "external", "vendor": "v",
                                "price": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}},
            "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
            "auth": {"enabled": True, "redis_prefix": prefix},
            "ledger": {"flush_interval": 5},
        }, tmp_path, env={"EMANCIPATE_ADMIN_KEY": admin}).start()
        created = httpx.post(gw.url + "/admin/keys", timeout=30,
                             headers={"Authorization": f"Bearer {admin}"},
                             json={"name": "load", "budget_day": 1000, "rpm": 100000}).json()
        outcomes: list[Outcome] = []
        stop = threading.Event()
        workers = [threading.Thread(target=_load, args=(gw, stop, outcomes, w, created["key"]))
                   for w in range(WORKERS)]
        try:
            for w in workers:
                w.start()
            _wait_answered(outcomes, 60)
            code = gw.terminate(timeout=60)
        finally:
            stop.set()
            for w in workers:
                w.join(60)
            gw.stop()

    assert code in (0, -15), gw.log()
    answered = {o.request_id for o in outcomes if o.complete}
    ledger = ledger_rows(postgres_url)
    assert answered <= set(ledger)
    assert {rid for rid, (_, status) in ledger.items() if status == 200} == answered
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            cost = float(conn.execute(sa.text(
                "SELECT sum(cost) FROM requests WHERE key_id = :k AND status = 200"),
                {"k": created["id"]}).scalar())
    finally:
        engine.dispose()
    client = redis.Redis.from_url(redis_url)
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        spent = float(client.get(f"{prefix}:{{{created['id']}}}:spend:{day}") or 0)
    finally:
        client.close()
    assert cost > 0
    assert spent == pytest.approx(cost)  # every answer settled, none twice
