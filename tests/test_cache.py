"""The exact response cache through started gateways (issue 15): hits, misses and bypasses,
streaming from the cache, no hit across a policy difference or a scope, two replicas sharing
entries through Redis, and the ledger's record of each."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

pytest_plugins = ["tests.services"]

ADMIN_KEY = "admin-" + "e2e-cache-7c1e"
PRICE = {"input_per_mtok": 10_000.0, "output_per_mtok": 10_000.0}  # $0.01 a token


@pytest.fixture
def vendors() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="bigco") as big, \
            SimulatedVendor("openai", name="local") as local:
        yield big, local


def _config(big: SimulatedVendor, local: SimulatedVendor, **cache: Any) -> dict[str, Any]:
    return {
        "providers": {
            "bigco": {"kind": "openai-compatible", "base_url": big.url, "ownership": "external",
                      "vendor": "bigco", "price": PRICE},
            "local": {"kind": "openai-compatible", "base_url": local.url,
                      "ownership": "in-house", "vendor": "us"},
        },
        "routes": {"chat": {"cache": {"ttl": "1h", **cache}, "targets": [
            {"provider": "bigco", "model": "big-1"}, {"provider": "local", "model": "l-1"}]}},
        "ledger": {"flush_interval": 0.05},
    }


def _ask(gw: GatewayProcess, text: str, key: str = "unused", stream: bool = False,
         headers: dict[str, str] | None = None, **extra: Any) -> tuple[str, dict[str, str]]:
    client = gw.client(api_key=key)
    body = {"model": "chat", "messages": [{"role": "user", "content": text}], **extra}
    body.setdefault("temperature", 0)
    if stream:
        with client.chat.completions.with_streaming_response.create(
                stream=True, extra_headers=headers, **body) as resp:
            chunks = list(resp.parse())
            assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason == "stop"
            return ("".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                    dict(resp.headers))
    raw = client.chat.completions.with_raw_response.create(extra_headers=headers, **body)
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


def test_a_repeated_request_is_served_from_the_cache(vendors, start_gateway) -> None:
    big, _ = vendors
    gw = start_gateway(_config(*vendors))
    text, headers = _ask(gw, "what is two plus two")
    assert headers["x-emancipate-cache"] == "miss" and text == "bigco says: what is two plus two"
    again, headers = _ask(gw, "what is two plus two")
    assert again == text and headers["x-emancipate-cache"] == "hit"
    assert "x-emancipate-provider" not in headers  # nobody was called
    assert len(big.received) == 1
    # A hit streams when asked to, with the same text; a streamed miss is kept too.
    streamed, headers = _ask(gw, "what is two plus two", stream=True)
    assert streamed == text and headers["x-emancipate-cache"] == "hit"
    first, headers = _ask(gw, "streamed first", stream=True)
    assert headers["x-emancipate-cache"] == "miss"
    second, headers = _ask(gw, "streamed first")
    assert (second, headers["x-emancipate-cache"]) == (first, "hit")
    assert len(big.received) == 2
    # Other parameters are another request; `user` is not.
    _, headers = _ask(gw, "what is two plus two", max_tokens=5)
    assert headers["x-emancipate-cache"] == "miss"
    _, headers = _ask(gw, "what is two plus two", user="someone")
    assert headers["x-emancipate-cache"] == "hit"


def test_what_is_never_cached(vendors, start_gateway) -> None:
    big, _ = vendors
    gw = start_gateway(_config(*vendors))
    for _ in range(2):  # sampled: temperature > 0, or none given (the default is 1)
        assert _ask(gw, "a poem", temperature=0.7)[1]["x-emancipate-cache"] == "bypass"
        assert _ask(gw, "a poem", temperature=None)[1]["x-emancipate-cache"] == "bypass"
    assert len(big.received) == 4
    secret = "my key is AKIAQYLPMN5HHHFPZAM2 ok"  # kept in-house by the policy, not cached
    for _ in range(2):
        assert _ask(gw, secret)[1]["x-emancipate-cache"] == "bypass"
    # no-store: neither served nor kept; no-cache: not served, but kept.
    for _ in range(2):
        assert _ask(gw, "fresh", headers={"Cache-Control": "no-store"})[1][
            "x-emancipate-cache"] == "bypass"
    assert _ask(gw, "fresh")[1]["x-emancipate-cache"] == "miss"
    assert _ask(gw, "fresh", headers={"Cache-Control": "no-cache"})[1][
        "x-emancipate-cache"] == "bypass"
    assert _ask(gw, "fresh")[1]["x-emancipate-cache"] == "hit"


def test_sampled_requests_are_cached_when_the_route_says_so(vendors, start_gateway) -> None:
    gw = start_gateway(_config(*vendors, sampled=True))
    _ask(gw, "a poem", temperature=0.7)
    assert _ask(gw, "a poem", temperature=0.7)[1]["x-emancipate-cache"] == "hit"


def _admin(gw: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=30)


def _key(gw: GatewayProcess, name: str, team: str) -> str:
    r = _admin(gw).post("/admin/keys", json={"name": name, "team": team})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _with_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg["auth"] = {"enabled": True, "key_cache_ttl": 1}
    return cfg


def test_no_hit_across_a_policy_difference(vendors, tmp_path: Path) -> None:
    """Same prompt, same (global) scope: the partner team may send it to bigco, the others
    are kept in-house by the policy. Each gets the answer its policy allows, never the
    other's."""
    big, local = vendors
    cfg = _with_keys(_config(big, local, scope="global"))
    cfg["policy"] = {"vendors": {"bigco": {"relationships": {"search": "competitor"}}},
                     "rules": [{"class": "domain", "team": "partners", "action": "allow"}]}
    with GatewayProcess(cfg, tmp_path, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as gw:
        partner, other = _key(gw, "p", "partners"), _key(gw, "o", "others")
        prompt = "how should our search engine ranking algorithm and web crawler work"
        text, headers = _ask(gw, prompt, key=partner)
        assert headers["x-emancipate-cache"] == "miss" and text.startswith("bigco says")
        text, headers = _ask(gw, prompt, key=other)
        assert headers["x-emancipate-cache"] == "miss" and text.startswith("local says")
        for key, who in ((partner, "bigco"), (other, "local")):
            text, headers = _ask(gw, prompt, key=key)
            assert headers["x-emancipate-cache"] == "hit" and text.startswith(who)
        assert len(big.received) == 1 and len(local.received) == 1


@pytest.mark.parametrize("scope", ["key", "team"])
def test_scope(vendors, tmp_path: Path, scope: str) -> None:
    big, local = vendors
    cfg = _with_keys(_config(big, local, scope=scope))
    with GatewayProcess(cfg, tmp_path, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as gw:
        a, b, c = _key(gw, "a", "red"), _key(gw, "b", "red"), _key(gw, "c", "blue")
        assert _ask(gw, "hello", key=a)[1]["x-emancipate-cache"] == "miss"
        assert _ask(gw, "hello", key=a)[1]["x-emancipate-cache"] == "hit"
        # Another key of the same team shares entries only when the scope is the team.
        assert _ask(gw, "hello", key=b)[1]["x-emancipate-cache"] == (
            "hit" if scope == "team" else "miss")
        assert _ask(gw, "hello", key=c)[1]["x-emancipate-cache"] == "miss"  # another team


def _ledger(database_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT cache, cache_vendor, saved_cost, cost, target, attempts FROM requests "
                "ORDER BY created_at")).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows]


def test_two_replicas_share_entries_through_redis(vendors, tmp_path: Path, postgres_url: str,
                                                 redis_url: str) -> None:
    big, local = vendors
    prefix = "t" + uuid.uuid4().hex[:10]
    gateways = []
    for i in range(2):
        cfg = _config(big, local)
        cfg["server"] = {"database_url": postgres_url, "redis_url": redis_url}
        cfg["auth"] = {"enabled": False, "redis_prefix": prefix}
        (tmp_path / f"r{i}").mkdir()
        gateways.append(GatewayProcess(cfg, tmp_path / f"r{i}"))
    for gw in gateways:  # one after the other: the migration runs once
        gw.start()
    try:
        text, headers = _ask(gateways[0], "shared answer")
        assert headers["x-emancipate-cache"] == "miss"
        again, headers = _ask(gateways[1], "shared answer", stream=True)
        assert (again, headers["x-emancipate-cache"]) == (text, "hit")
        assert len(big.received) == 1
    finally:
        for gw in gateways:
            gw.stop()
    rows = _ledger(postgres_url)
    assert [r["cache"] for r in rows] == ["miss", "hit"]
    miss, hit = rows
    assert miss["target"] == "bigco/big-1" and miss["cost"] > 0 and miss["cache_vendor"] is None
    # The hit called nobody and cost nothing; it records the call it avoided and its price.
    assert hit["target"] is None and hit["attempts"] == 0 and hit["cost"] == 0
    assert hit["cache_vendor"] == "bigco" and hit["saved_cost"] == pytest.approx(miss["cost"])


def test_database_entries_expire_and_are_evicted(vendors, start_gateway: Callable[
        ..., GatewayProcess]) -> None:
    big, local = vendors
    gw = start_gateway(_config(big, local, ttl=1))
    assert _ask(gw, "short lived")[1]["x-emancipate-cache"] == "miss"
    assert _ask(gw, "short lived")[1]["x-emancipate-cache"] == "hit"
    time.sleep(1.1)  # past the ttl (a wait for expiry, not a timing assertion)
    assert _ask(gw, "short lived")[1]["x-emancipate-cache"] == "miss"


def test_the_gateways_report_shows_the_vendor_call_a_hit_avoided(
        vendors, start_gateway: Callable[..., GatewayProcess]) -> None:
    """A miss then a hit through the gateway: its own report (GET /admin/report) counts one
    vendor call avoided, with the miss's tokens and cost, and the hit as neither served nor
    unserved."""
    big, _ = vendors
    gw = start_gateway(_config(*vendors), env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY})
    assert _ask(gw, "cache me")[1]["x-emancipate-cache"] == "miss"
    assert _ask(gw, "cache me")[1]["x-emancipate-cache"] == "hit"
    assert len(big.received) == 1
    admin = _admin(gw)
    report: dict[str, Any] = {}
    for _ in range(200):  # until the ledger writer has written both (it flushes every 50 ms)
        report = admin.get("/admin/report", params={"since": "1d"}).json()
        if report["totals"]["requests"] == 2:
            break
        time.sleep(0.05)
    cache, totals = report["cache"], report["totals"]
    assert (cache["hits"], cache["misses"], cache["hit_rate"]) == (1, 1, 0.5)
    assert cache["vendor_calls_avoided"] == 1 and cache["inhouse_hits"] == 0
    (bigco,) = cache["by_vendor"]
    miss = next(v for v in report["by_vendor"] if v["vendor"] == "bigco")
    assert bigco == {"vendor": "bigco", "calls_avoided": 1, "tokens": miss["tokens"],
                     "cost": pytest.approx(miss["cost"])}
    assert miss["requests"] == 1 and miss["tokens"] > 0 and miss["cost"] > 0
    assert (totals["served"], totals["unserved"], totals["cache_hits"]) == (1, 0, 1)
    html = admin.get("/admin/report", params={"since": "1d", "format": "html"}).text
    assert '"vendor_calls_avoided":1' in html
