"""Budgets, rate limits and key expiry through a started gateway (issue 17 §5).

`test_auth_limits.py` checks the counters in-process on every backend; here the same rules
meet real concurrency, a real restart and the official SDK: a burst on a fresh key, buckets
that survive a restart without Redis, keys that expire.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess
from tests.polling import eventually

ADMIN_KEY = "admin-" + "limits-e2e-7a11"
PER_TOKEN = 0.001  # the priced target: 1000 per million tokens, prompt and completion
# The vendor counts words: this prompt is 10 tokens, the gateway estimates 130 chars / 4 = 32.
PROMPT = "abcdefghijkl " * 10


@pytest.fixture(scope="module")
def vendor() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("openai", name="v") as v:
        yield v


def _config(vendor: SimulatedVendor) -> dict[str, Any]:
    price = {"input_per_mtok": PER_TOKEN * 1e6, "output_per_mtok": PER_TOKEN * 1e6}
    provider = {"kind": "openai-compatible", "base_url": vendor.url, "ownership": "external",
                "vendor": "v", "price": price}
    return {
        "providers": {"priced": provider},
        "routes": {"chat": {"targets": [{"provider": "priced", "model": "m"}]}},
        "auth": {"enabled": True, "key_cache_ttl": 0.2},
        "ledger": {"flush_interval": 0.05},
    }


@pytest.fixture(scope="module")
def gw(vendor: SimulatedVendor, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("limits-e2e")
    with GatewayProcess(_config(vendor), workdir, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as g:
        yield g


def _admin(gw: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=30)


def create_key(gw: GatewayProcess, **fields: Any) -> dict[str, Any]:
    r = _admin(gw).post("/admin/keys", json=fields)
    assert r.status_code == 201, r.text
    return r.json()


def _chat(gw: GatewayProcess, key: str, **extra: Any) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "chat", "messages": [{"role": "user", "content": PROMPT}],
                            **extra})


def _assert_openai_error(r: httpx.Response, status: int, code: str, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert (err["code"], err["type"]) == (code, kind), err
    return err


def _recorded(gw: GatewayProcess, key_id: str, requests: int) -> dict[str, Any]:
    """The key's usage row once the ledger holds `requests` of its requests."""
    admin = _admin(gw)

    def probe() -> dict[str, Any] | None:
        rows = admin.get("/admin/usage", params={"by": "key"}).json()["data"]
        row = next((r for r in rows if r["key"] == key_id), None)
        return row if row is not None and row["requests"] >= requests else None

    return eventually(probe, f"the ledger never held {requests} requests of key {key_id}")


def test_a_burst_on_a_fresh_key_overshoots_its_budget_by_at_most_one_request(
        gw: GatewayProcess) -> None:
    created = create_key(gw, name="burst", budget_day=0.05)
    one_request = (10 + 5) * PER_TOKEN  # 10 prompt tokens, max_tokens=5
    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda _: _chat(gw, created["key"], max_tokens=5), range(100)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert ok and refused
    for r in refused:
        err = _assert_openai_error(r, 429, "budget_exceeded", "insufficient_quota")
        assert "daily budget" in err["message"]
        assert int(r.headers["retry-after"]) >= 1
    row = _recorded(gw, created["id"], 100)
    assert row["cost"] == pytest.approx(len(ok) * one_request)
    assert row["cost"] <= 0.05 + one_request  # was 92x the budget before holds


@pytest.mark.parametrize("field, value", [("rpm", 2**63), ("tpm", -1), ("budget_day", 1e300)])
def test_an_out_of_range_key_field_is_an_openai_400_naming_it(gw: GatewayProcess, field: str,
                                                            value: Any) -> None:
    r = _admin(gw).post("/admin/keys", json={"name": "huge", field: value})
    err = _assert_openai_error(r, 400, "invalid_value", "invalid_request_error")
    assert err["param"] == field and f"'{field}'" in err["message"]


def test_a_key_stops_working_when_it_expires(gw: GatewayProcess) -> None:
    created = create_key(gw, name="temp", expires_in="30d")
    assert created["expires_at"] is not None and created["status"] == "active"
    client = gw.client(api_key=created["key"])
    assert client.chat.completions.create(
        model="chat", max_tokens=5, messages=[{"role": "user", "content": "hi"}]).choices
    engine = sa.create_engine(gw.config["server"]["database_url"])
    with engine.begin() as conn:  # thirty days later
        conn.execute(sa.text("UPDATE keys SET expires_at = :t WHERE id = :id"),
                     {"t": "2001-01-01 00:00:00.000000", "id": created["id"]})
    engine.dispose()

    def refused() -> dict[str, Any] | None:
        try:
            client.chat.completions.create(
                model="chat", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError as exc:
            return _assert_openai_error(exc.response, 401, "invalid_api_key",
                                        "authentication_error")
        return None

    # the gateway trusts a looked-up key for auth.key_cache_ttl (0.2 s here)
    err = eventually(refused, "the expired key was never refused")
    assert "expired" in err["message"]
    assert created["id"] not in err["message"] and "temp" not in err["message"]
    listed = {k["id"]: k for k in _admin(gw).get("/admin/keys").json()["data"]}
    assert listed[created["id"]]["status"] == "expired"


def test_an_exhausted_rate_limit_stays_exhausted_across_a_restart(
        vendor: SimulatedVendor, tmp_path: Path) -> None:
    """No Redis: the restarted gateway refills the key's bucket from the ledger."""
    env = {"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}
    first = GatewayProcess(_config(vendor), tmp_path, env=env)
    with first:
        key = create_key(first, name="rpm-4", rpm=4)["key"]
        assert [_chat(first, key).status_code for _ in range(5)] == [200] * 4 + [429]
    # One request refills in 15 s: a restart well within that finds the bucket empty.
    with GatewayProcess(_config(vendor), tmp_path, env=env, port=first.port) as second:
        r = _chat(second, key)
        err = _assert_openai_error(r, 429, "rate_limit_exceeded", "rate_limit_error")
        assert "4 requests per minute" in err["message"]
