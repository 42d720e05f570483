"""Roles and teams through started gateways (issue 15): a team budget stops two keys of the
team together across two replicas on PostgreSQL + Redis; a team's allowed models filter
/v1/models and refuse others; a viewer's admin key reads the report and the dashboard's data
but cannot create keys; the admin key is made by `emancipate admin create`.

Replicas are real `emancipate serve` processes; PostgreSQL, Redis and the vendor are real
servers on loopback (tests/services.py, emancipate.testing); the client is the official SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess, start_all
from tests.polling import eventually

pytest_plugins = ["tests.services"]

ADMIN_KEY = "admin-" + "teams-e2e-5c1d"
# $0.01 per token both ways; "hello there" is 2 prompt tokens and the answer "v says: hello
# there" 4 completion tokens: $0.06 a request.
PRICE = {"input_per_mtok": 10_000.0, "output_per_mtok": 10_000.0}
COST = 0.06
PROMPT = "hello there"


def _config(vendor: SimulatedVendor, **server: Any) -> dict[str, Any]:
    provider = {"kind": "openai-compatible", "base_url": vendor.url, "ownership": "external",
                "vendor": "v", "price": PRICE}
    return {
        "server": server,
        "providers": {"v": provider},
        "routes": {name: {"targets": [{"provider": "v", "model": "m"}]}
                   for name in ("chat", "gpt-small", "gpt-large", "claude-fast")},
        "auth": {"enabled": True, "key_cache_ttl": 1,
                 "redis_prefix": "t" + uuid.uuid4().hex[:10]},
        "ledger": {"flush_interval": 0.05},
    }


def _admin(gw: GatewayProcess, secret: str = ADMIN_KEY) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {secret}"},
                        timeout=30)


def _made(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    return r.json()


def _ask(gw: GatewayProcess, key: str, model: str = "chat") -> openai.APIStatusError | str:
    """The answer's text, or the SDK's error for a refusal."""
    try:
        answer = gw.client(api_key=key).chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}])
    except openai.APIStatusError as exc:
        return exc
    return answer.choices[0].message.content or ""


def _assert_error(exc: Any, status: int, code: str) -> dict[str, Any]:
    assert isinstance(exc, openai.APIStatusError), exc
    assert exc.status_code == status, exc
    err = exc.response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code, err
    return err


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[list[GatewayProcess]]:
    with SimulatedVendor("openai", name="v") as vendor:
        cfg = _config(vendor, database_url=postgres_url, redis_url=redis_url)
        gateways = []
        for i in range(2):
            workdir = tmp_path / f"replica{i}"
            workdir.mkdir()
            replica = json.loads(json.dumps(cfg))  # each process writes its own port in it
            gateways.append(GatewayProcess(replica, workdir, env={"EMANCIPATE_ADMIN_KEY":
                                                                  ADMIN_KEY}))
        try:
            start_all(gateways)
            yield gateways
        finally:
            for gw in gateways:
                gw.stop()


def _team_spend_in_redis(gw: GatewayProcess, redis_url: str, team: str) -> float:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    prefix = gw.config["auth"]["redis_prefix"]  # type: ignore[index]
    client = redis.Redis.from_url(redis_url)
    try:
        return float(client.get(f"{prefix}:{{team:{team}}}:spend:{day}") or 0)
    finally:
        client.close()


def _wait_team_spend(gw: GatewayProcess, redis_url: str, team: str, expected: float) -> None:
    """Settlement runs just after the answer is sent: wait for it (no timing asserted)."""
    eventually(lambda: _team_spend_in_redis(gw, redis_url, team) >= expected - 1e-9 or None,
               f"team spend never reached {expected} "
               f"({_team_spend_in_redis(gw, redis_url, team)})", interval=0.02)


def test_a_team_budget_stops_two_keys_of_the_team_together_across_replicas(
        pair: list[GatewayProcess], redis_url: str) -> None:
    first, second = pair
    operator = _made(_admin(first).post("/admin/admins",
                                        json={"name": "ops", "role": "operator"}))["key"]
    ops = _admin(first, operator)
    _made(ops.post("/admin/teams", json={"name": "search", "budget_day": 0.15}))
    a = _made(ops.post("/admin/keys", json={"name": "a", "team": "search"}))
    b = _made(ops.post("/admin/keys", json={"name": "b", "team": "search", "budget_day": 5}))

    # Key a on replica 1, key b on replica 2, in turn: 0.00, 0.06 and 0.12 spent when each
    # was admitted, all under the team's 0.15; then the team has spent 0.18.
    turns = [(first, a), (second, b), (first, a)]
    for n, (gw, key) in enumerate(turns, 1):
        assert _ask(gw, key["key"]) == f"v says: {PROMPT}"
        _wait_team_spend(gw, redis_url, "search", n * COST)
    for gw, key in ((second, b), (first, a), (second, a), (first, b)):
        err = _assert_error(_ask(gw, key["key"]), 429, "budget_exceeded")
        assert "The team 'search'" in err["message"] and "daily budget" in err["message"]
    # Another key outside the team is not stopped by it.
    other = _made(ops.post("/admin/keys", json={"name": "c", "team": "crawl"}))
    assert _ask(second, other["key"]) == f"v says: {PROMPT}"

    team = _admin(second, operator).get("/admin/teams/search").json()
    assert team["keys"] == 2 and team["spent_day"] == pytest.approx(3 * COST)


def test_a_burst_from_two_keys_on_two_replicas_overshoots_the_team_budget_by_one_request(
        pair: list[GatewayProcess], redis_url: str) -> None:
    admin = _admin(pair[0])
    _made(admin.post("/admin/teams", json={"name": "burst", "budget_day": 0.3}))
    keys = [_made(admin.post("/admin/keys", json={"name": f"k{i}", "team": "burst"}))["key"]
            for i in range(2)]

    def ask(n: int) -> int:
        client = pair[n % 2].client(api_key=keys[n // 2 % 2])
        try:
            client.chat.completions.create(
                model="chat", max_tokens=5, messages=[{"role": "user", "content": PROMPT}])
        except openai.APIStatusError as exc:
            err = exc.response.json()["error"]
            assert (exc.status_code, err["code"]) == (429, "budget_exceeded"), err
            assert "The team 'burst'" in err["message"]
            return exc.status_code
        return 200

    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(ask, range(40)))
    answered = statuses.count(200)
    assert 0 < answered < 40
    _wait_team_spend(pair[0], redis_url, "burst", answered * COST)
    assert _team_spend_in_redis(pair[0], redis_url, "burst") <= 0.3 + COST + 1e-9


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayProcess]:
    with SimulatedVendor("openai", name="v") as vendor:
        cfg = _config(vendor)
        cfg["server"]["metrics_auth"] = "admin"
        with GatewayProcess(cfg, tmp_path, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as g:
            yield g


def test_team_allowed_models_filter_the_model_list_and_refuse_others(
        gw: GatewayProcess) -> None:
    admin = _admin(gw)
    _made(admin.post("/admin/teams", json={"name": "search", "models": ["gpt-*", "chat"]}))
    key = _made(admin.post("/admin/keys", json={"name": "k", "team": "search",
                                                "models": ["gpt-small", "claude-fast"]}))
    client = gw.client(api_key=key["key"])
    assert sorted(m.id for m in client.models.list()) == ["gpt-small"]  # both scopes agree
    assert _ask(gw, key["key"], "gpt-small") == f"v says: {PROMPT}"
    err = _assert_error(_ask(gw, key["key"], "claude-fast"), 403, "model_not_allowed")
    assert "team 'search'" in err["message"] and "gpt-*" in err["message"]
    err = _assert_error(_ask(gw, key["key"], "gpt-large"), 403, "model_not_allowed")
    assert err["message"].startswith("This API key may not use")
    unscoped = _made(admin.post("/admin/keys", json={"name": "u", "team": "search"}))
    listed = sorted(m.id for m in gw.client(api_key=unscoped["key"]).models.list())
    assert listed == ["chat", "gpt-large", "gpt-small"]


def _emancipate(gw: GatewayProcess, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "emancipate", *args, "--config",
                          str(gw.config_path), "--json"], capture_output=True, text=True,
                         cwd=gw.workdir, timeout=120, check=True)
    return json.loads(out.stdout)


def test_a_viewer_made_by_the_cli_reads_the_report_and_dashboard_but_cannot_create_keys(
        gw: GatewayProcess) -> None:
    viewer = _emancipate(gw, "admin", "create", "--name", "auditor", "--role", "viewer")
    assert viewer["role"] == "viewer"
    reader = _admin(gw, viewer["key"])
    assert reader.get("/admin/whoami").json()["name"] == "auditor"
    for path in ("/admin/report", "/admin/requests", "/admin/policy", "/admin/usage",
                 "/admin/keys", "/admin/targets", "/metrics"):
        assert reader.get(path).status_code == 200, path
    assert "providers" in reader.get("/readyz").json()  # the details, not just `ready`
    r = reader.post("/admin/keys", json={"name": "nope"})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["code"]) == ("permission_error", "insufficient_role")
    assert "needs the role 'operator'" in err["message"]
    assert reader.get("/admin/keys").json()["data"] == []

    _emancipate(gw, "admin", "revoke", viewer["id"])
    eventually(lambda: reader.get("/admin/report").status_code != 200 or None,  # revoked by
               "the revocation never reached this process", interval=0.1)  # another process
    assert reader.get("/admin/report").json()["error"]["code"] == "invalid_admin_key"
