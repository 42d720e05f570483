"""Two replicas, one PostgreSQL, one Redis (issue 5): a key's limits hold across the pair and
the ledger holds every request exactly once.

Both gateways are real `emancipate serve` processes on their own ports; PostgreSQL and Redis
are real servers on loopback (tests/services.py). Traffic is spread over both replicas from
several threads with the official SDK; the ledger is read straight from PostgreSQL after both
replicas were stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import sqlalchemy as sa

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess, ledger_rows, start_all
from tests.polling import eventually

pytest_plugins = ["tests.services"]

ADMIN_KEY = "admin-" + "e2e-scaleout-2b7e"
# $0.01 per token both ways; the simulated model answers "v says: hello there" to "hello
# there": 2 prompt tokens + 4 completion tokens = $0.06 a request.
PRICE = {"input_per_mtok": 10_000.0, "output_per_mtok": 10_000.0}
COST = 0.06
PROMPT = "hello there"


@dataclass
class Result:
    gateway: int
    status: int
    request_id: str
    headers: dict[str, str]
    body: Any


@dataclass
class Pair:
    gateways: list[GatewayProcess]
    vendor: SimulatedVendor
    database_url: str
    redis_url: str
    prefix: str

    def create_key(self, **fields: Any) -> dict[str, Any]:
        r = httpx.post(self.gateways[0].url + "/admin/keys", json=fields, timeout=30,
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 201, r.text
        return r.json()

    def ask(self, n: int, key: str, stream: bool = False) -> Result:
        """One chat completion through replica `n`, answered (completely) or refused."""
        client = self.gateways[n].client(api_key=key, timeout=60)
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": PROMPT}], stream=stream)
        except openai.APIStatusError as exc:
            return Result(n, exc.status_code, exc.response.headers.get("x-request-id", ""),
                          dict(exc.response.headers), exc.response.json())
        if stream:
            chunks = list(raw.parse())
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert chunks[-1].choices[0].finish_reason == "stop"
        else:
            text = raw.parse().choices[0].message.content
        assert text == f"v says: {PROMPT}"
        return Result(n, 200, raw.headers["x-request-id"], dict(raw.headers), text)

    def spend_in_redis(self, key_id: str) -> float:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        client = redis.Redis.from_url(self.redis_url)
        try:
            return float(client.get(f"{self.prefix}:{{{key_id}}}:spend:{day}") or 0)
        finally:
            client.close()

    def wait_spend(self, key_id: str, expected: float) -> None:
        """Settlement runs just after the answer is sent: wait for it (no timing asserted)."""
        eventually(lambda: self.spend_in_redis(key_id) >= expected - 1e-9 or None,
                   f"spend never reached {expected} ({self.spend_in_redis(key_id)})",
                   interval=0.02)


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Pair]:
    with _pair(tmp_path, postgres_url, redis_url) as p:
        yield p


@contextlib.contextmanager
def _pair(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Pair]:
    prefix = "t" + uuid.uuid4().hex[:10]
    with SimulatedVendor("openai", name="v") as vendor:
        gateways = []
        for i in range(2):
            workdir = tmp_path / f"replica{i}"
            workdir.mkdir()
            cfg = {
                "server": {"database_url": postgres_url, "redis_url": redis_url},
                "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                                    "ownership": "external", "vendor": "v", "price": PRICE}},
                "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
                "auth": {"enabled": True, "redis_prefix": prefix, "key_cache_ttl": 1},
                "ledger": {"flush_interval": 0.05},
            }
            gateways.append(GatewayProcess(cfg, workdir, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}))
        try:
            start_all(gateways)
            yield Pair(gateways, vendor, postgres_url, redis_url, prefix)
        finally:
            for gw in gateways:
                gw.stop()


def _stop_and_read_ledger(pair: Pair) -> dict[str, tuple[int, int]]:
    """SIGTERM both replicas (each flushes its ledger), then id -> (rows, status) from PG."""
    for gw in pair.gateways:
        assert gw.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    return ledger_rows(pair.database_url)


def _assert_recorded_once(ledger: dict[str, tuple[int, int]], results: list[Result]) -> None:
    ids = [r.request_id for r in results]
    assert all(ids) and len(set(ids)) == len(ids)
    missing = [r for r in results if r.request_id not in ledger]
    assert not missing, f"{len(missing)} answered/refused requests missing from the ledger"
    for r in results:
        assert ledger[r.request_id] == (1, r.status), (r.request_id, ledger[r.request_id], r.status)
    assert len(ledger) == len(results)  # and nothing else was recorded


def _assert_rate_limited(r: Result) -> None:
    assert r.status == 429, (r.status, r.body)
    err = r.body["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
    assert int(r.headers["retry-after"]) >= 1
    assert int(r.headers["retry-after-ms"]) >= 1


def test_rate_limit_budget_and_ledger_hold_across_two_replicas(pair: Pair) -> None:
    results: list[Result] = []

    # --- rpm: 60 requests from 8 threads, alternating replicas -------------------------------
    rpm = 20
    limited = pair.create_key(name="limited", rpm=rpm)["key"]
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda i: pair.ask(i % 2, limited, i % 3 == 0), range(60)))
    results += burst
    admitted = [r for r in burst if r.status == 200]
    # GCRA: a full bucket of `rpm`, refilled at rpm/60 per second (one request per 3 s here).
    # Two replicas counting on their own would admit twice the bucket: the shared limit
    # admits the bucket and what refilled during the burst, far below that.
    assert rpm <= len(admitted) < 2 * rpm, len(admitted)
    assert {r.gateway for r in admitted} == {0, 1}
    for r in burst:
        if r.status != 200:
            _assert_rate_limited(r)
    refused_by = Counter(r.gateway for r in burst if r.status == 429)
    assert refused_by[0] > 0 and refused_by[1] > 0

    # --- budget, one request at a time, alternating replicas: exact --------------------------
    budget = 0.29  # 4 requests spend 0.24 (< 0.29): the 5th is admitted, the 6th is not
    spender = pair.create_key(name="spender", team="billing", budget_day=budget)
    answered = 0
    spender_ids = []
    for i in range(8):
        r = pair.ask(i % 2, spender["key"])
        results.append(r)
        if r.status == 200:
            answered += 1
            spender_ids.append(r.request_id)
            pair.wait_spend(spender["id"], answered * COST)
        else:
            assert r.status == 429, r.body
            err = r.body["error"]
            assert err["type"] == "insufficient_quota" and err["code"] == "budget_exceeded"
            assert "daily budget" in err["message"]
            assert int(r.headers["retry-after"]) >= 1
    assert answered == 5  # 5 x 0.06 >= 0.29, whichever replica served which

    # --- budget under concurrency: overshoot by one request at most, across both replicas ----
    # Each admission holds the request's estimated cost in Redis (no max_tokens: 1024
    # completion tokens, more than this budget), so only one is in flight at a time and the
    # spend stops at the first request that reaches the budget: 5 x 0.06, whatever the burst.
    concurrent = pair.create_key(name="concurrent", budget_day=budget)
    with ThreadPoolExecutor(8) as pool:
        wave = list(pool.map(lambda i: pair.ask(i % 2, concurrent["key"], i % 2 == 1),
                             range(40)))
    results += wave
    ok = sum(r.status == 200 for r in wave)
    assert 1 <= ok <= 5, ok  # spent <= budget + one request (it was up to 5 + 2 x 8)
    assert all(r.status in (200, 429) for r in wave)
    pair.wait_spend(concurrent["id"], ok * COST)
    for n in (0, 1):  # once settled, both replicas refuse
        late = pair.ask(n, concurrent["key"])
        results.append(late)
        assert late.status == 429 and late.body["error"]["code"] == "budget_exceeded"

    # --- the ledger: every request exactly once, with its status -----------------------------
    answered_total = sum(r.status == 200 for r in results)
    assert len(pair.vendor.received) == answered_total  # refused requests never went out
    ledger = _stop_and_read_ledger(pair)
    _assert_recorded_once(ledger, results)
    engine = sa.create_engine(pair.database_url)
    try:
        with engine.connect() as conn:
            spent = conn.execute(sa.text(
                "SELECT key_id, sum(cost), count(*) FROM requests WHERE status = 200 "
                "GROUP BY key_id")).all()
            attempts = conn.execute(sa.text(
                "SELECT count(*) FROM attempts a JOIN requests r ON r.id = a.request_id "
                "WHERE r.status = 200")).scalar()
            sample = conn.execute(sa.text(
                "SELECT key_id, team, route, target, vendor, ownership, prompt_tokens, "
                "completion_tokens, cost, attempts FROM requests WHERE id = :id"),
                {"id": spender_ids[0]}).one()
    finally:
        engine.dispose()
    assert tuple(sample) == (spender["id"], "billing", "chat", "v/m", "v", "external", 2, 4,
                             pytest.approx(COST), 1)
    by_key = {k: (float(c), int(n)) for k, c, n in spent}
    assert by_key[spender["id"]] == (pytest.approx(5 * COST), 5)
    assert by_key[concurrent["id"]] == (pytest.approx(ok * COST), ok)
    assert attempts == answered_total


def test_revocation_and_spend_reach_every_replica(pair: Pair) -> None:
    """A key revoked through one replica is refused by the other within the key cache TTL;
    a budget spent before a restart with an empty Redis is still spent (read from the
    ledger in PostgreSQL)."""
    created = pair.create_key(name="doomed")
    key = created["key"]
    assert pair.ask(0, key).status == 200 and pair.ask(1, key).status == 200  # both cached
    r = httpx.delete(pair.gateways[0].url + f"/admin/keys/{created['id']}", timeout=30,
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200
    assert pair.ask(0, key).status == 401  # at once where it was revoked
    late = eventually(lambda: r if (r := pair.ask(1, key)).status != 200 else None,
                      "the other replica never saw the revocation", interval=0.1)
    assert late.status == 401 and late.body["error"]["code"] == "invalid_api_key"

    spender = pair.create_key(name="spender", budget_day=0.29)
    answered = 0
    for i in range(6):
        r = pair.ask(i % 2, spender["key"], stream=True)
        if r.status == 200:
            answered += 1
            pair.wait_spend(spender["id"], answered * COST)
    assert answered == 5  # streamed answers are charged too

    # Restart both replicas on an empty Redis namespace: the spend comes back from the ledger.
    for gw in pair.gateways:
        assert gw.terminate() in (0, -15)
    client = redis.Redis.from_url(pair.redis_url)
    try:
        stale = list(client.scan_iter(f"{pair.prefix}:*"))
        assert stale
        client.delete(*stale)
    finally:
        client.close()
    start_all(pair.gateways)
    for n in (0, 1):
        r = pair.ask(n, spender["key"])
        assert r.status == 429 and r.body["error"]["code"] == "budget_exceeded", r.body
    assert pair.spend_in_redis(spender["id"]) == pytest.approx(5 * COST)


def test_a_redis_outage_keeps_both_replicas_serving(tmp_path: Path, postgres_url: str,
                                                   redis_factory: Any) -> None:
    """Redis stops under traffic: both replicas keep answering (limits fall back to each
    process), say so in their logs, and the ledger still holds every request once."""
    server = redis_factory()
    with _pair(tmp_path, postgres_url, server.url) as pair:
        key = pair.create_key(name="busy", rpm=1000, budget_day=1000)["key"]
        results = [pair.ask(i % 2, key, i % 3 == 0) for i in range(10)]
        server.stop()
        results += [pair.ask(i % 2, key, i % 3 == 0) for i in range(20)]
        assert all(r.status == 200 for r in results), [r.body for r in results
                                                       if r.status != 200][:1]
        ledger = _stop_and_read_ledger(pair)
        _assert_recorded_once(ledger, results)
        for gw in pair.gateways:
            assert "Redis unreachable" in gw.log()
