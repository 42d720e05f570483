"""The admin API (keys, usage, request paths) on SQLite and PostgreSQL, over real HTTP
handling (Starlette's ASGI stack), and the `emancipate keys` / `emancipate usage` commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

from emancipate.api.errors import render
from emancipate.api.guard import AdminGuard
from emancipate.api.keys import admin_routes
from emancipate.auth import Access
from emancipate.auth.cli import app as keys_cli
from emancipate.context import RequestContext, Target
from emancipate.ledger import Ledger
from emancipate.ledger.cli import app as usage_cli
from emancipate.protocol import OpenAIError
from tests.test_keys import gateway_cfg

pytest_plugins = ["tests.services"]
ADMIN = {"Authorization": "Bearer admin-key-for-tests"}


@pytest.fixture
def admin(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EMANCIPATE_ADMIN_KEY", "admin-key-for-tests")
    cfg = gateway_cfg(database_url, tmp_path, key_cache_ttl=3600)
    ledger = Ledger.open(cfg.server.database_url, cfg.ledger)
    access = Access.open(cfg, ledger)
    client = TestClient(Starlette(routes=admin_routes(access, ledger, AdminGuard(access)),
                                  exception_handlers={OpenAIError: render}))
    yield client, access, ledger
    client.close()
    ledger.close()


def test_admin_key_guard(admin: Any, monkeypatch: pytest.MonkeyPatch):
    client, _, _ = admin
    r = client.get("/admin/keys")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_key"
    r = client.get("/admin/keys", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    monkeypatch.delenv("EMANCIPATE_ADMIN_KEY")
    r = client.get("/admin/keys", headers=ADMIN)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"
    assert "EMANCIPATE_ADMIN_KEY" in r.json()["error"]["message"]


def test_key_lifecycle_over_the_admin_api(admin: Any):
    client, access, _ = admin
    r = client.post("/admin/keys", headers=ADMIN, json={
        "name": "search", "team": "search", "models": ["gpt-4o"], "budget_day": 5,
        "rpm": 60, "tpm": 100000})
    assert r.status_code == 201, r.text
    created = r.json()
    key_id, secret = created["id"], created["key"]
    assert secret.startswith("sk-em-") and created["hint"] == "..." + secret[-4:]

    listed = client.get("/admin/keys", headers=ADMIN).json()["data"]
    assert [k["id"] for k in listed] == [key_id]
    assert "key" not in listed[0] and secret not in json.dumps(listed)

    principal = asyncio.run(access.authenticate(f"Bearer {secret}"))  # now cached for 1 h
    r = client.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN)
    assert r.status_code == 200 and r.json()["key"] != secret
    new_secret = r.json()["key"]
    with pytest.raises(OpenAIError):  # rotation through this process: effective at once
        asyncio.run(access.authenticate(f"Bearer {secret}"))
    assert asyncio.run(access.authenticate(f"Bearer {new_secret}")).key_id == principal.key_id

    r = client.delete(f"/admin/keys/{key_id}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    with pytest.raises(OpenAIError):
        asyncio.run(access.authenticate(f"Bearer {new_secret}"))
    r = client.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "key_revoked"
    active = client.get("/admin/keys?include_revoked=false", headers=ADMIN).json()["data"]
    assert active == []
    for method, path in (("POST", "/admin/keys/key_nope/rotate"), ("DELETE", "/admin/keys/nope")):
        r = client.request(method, path, headers=ADMIN)
        assert r.status_code == 404 and r.json()["error"]["code"] == "key_not_found"


@pytest.mark.parametrize("body, param", [
    ({}, "name"), ({"name": "x", "rpm": 0}, "rpm"), ({"name": "x", "colour": "red"}, "colour"),
    ({"name": "x", "models": "gpt-4o"}, "models"), ({"name": "x", "budget_day": "5"}, "budget_day"),
    ({"name": "x", "rpm": 2**63}, "rpm"), ({"name": "x", "tpm": 2**31}, "tpm"),
    ({"name": "x", "rpm": True}, "rpm"), ({"name": "x", "budget_month": 1e300}, "budget_month"),
    ({"name": "x" * 201}, "name"), ({"name": "x", "team": 7}, "team"),
    ({"name": "x", "models": ["m"] * 1001}, "models"), ({"name": "x", "models": [""]}, "models[0]"),
    ({"name": "x", "expires_in": "forever"}, "expires_in"),
    ({"name": "x", "expires_at": "2001-01-01"}, "expires_at"),
    ({"name": "x", "expires_at": "2099-01-01", "expires_in": "1d"}, "expires_in"),
])
def test_create_validation(admin: Any, body: dict[str, Any], param: str):
    client, _, _ = admin
    r = client.post("/admin/keys", headers=ADMIN, json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert f"'{param}'" in err["message"]
    assert client.get("/admin/keys", headers=ADMIN).json()["data"] == []  # nothing created
    r = client.post("/admin/keys", headers=ADMIN, content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def _record(ledger: Ledger, n: int, target: Target, cost: float, key: str = "anonymous") -> str:
    from emancipate.context import Principal

    rid = ""
    for _ in range(n):
        ctx = RequestContext(principal=Principal(key, team="t1"), route="chat")
        ctx.served_by, ctx.cost, ctx.prompt_tokens = target, cost, 10
        ledger.record(ctx)
        rid = ctx.request_id
    ledger.flush()
    return rid


OPENAI = Target("openai", "gpt-4o", "openai", "external")
LOCAL = Target("smollm", "smollm2", "in-house", "in-house")


def test_usage_and_request_path_over_the_admin_api(admin: Any):
    client, _, ledger = admin
    _record(ledger, 3, OPENAI, 0.5)
    rid = _record(ledger, 2, LOCAL, 0.0)
    r = client.get("/admin/usage?by=ownership&since=1d", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "ownership" and body["currency"] == "USD"
    rows = {row["ownership"]: row for row in body["data"]}
    assert rows["external"]["requests"] == 3 and rows["external"]["cost"] == pytest.approx(1.5)
    assert rows["in-house"]["share_requests"] == pytest.approx(0.4)
    assert client.get("/admin/usage?by=colour", headers=ADMIN).status_code == 400
    r = client.get("/admin/usage?since=yesterday-ish", headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["param"] == "since"
    r = client.get(f"/admin/requests/{rid}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["ownership"] == "in-house"
    assert client.get("/admin/requests/req_nope", headers=ADMIN).status_code == 404


def _config_file(url: str, tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"server": {"database_url": url},
                                    "ledger": {"spill_dir": str(tmp_path / "spill")}}))
    return path


def test_keys_cli(database_url: str, tmp_path: Path):
    runner = CliRunner()
    config = str(_config_file(database_url, tmp_path))
    r = runner.invoke(keys_cli, ["create", "--name", "ci", "--team", "platform", "--models",
                                 "gpt-4o,claude-*", "--budget-day", "2.5", "--rpm", "30",
                                 "--json", "--config", config])
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    key_id, secret = created["id"], created["key"]
    assert created["models"] == ["gpt-4o", "claude-*"] and created["budget_day"] == 2.5

    r = runner.invoke(keys_cli, ["list", "--config", config])
    assert r.exit_code == 0 and key_id in r.stdout and "platform" in r.stdout
    assert secret not in r.stdout

    r = runner.invoke(keys_cli, ["rotate", key_id, "--config", config])
    assert r.exit_code == 0 and "shown only this once" in r.stdout
    assert "sk-em-" in r.stdout and secret not in r.stdout

    r = runner.invoke(keys_cli, ["revoke", key_id, "--json", "--config", config])
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "revoked"
    r = runner.invoke(keys_cli, ["list", "--active", "--json", "--config", config])
    assert json.loads(r.stdout) == []
    r = runner.invoke(keys_cli, ["revoke", "key_nope", "--config", config])
    assert r.exit_code == 1 and "no key" in r.output

    r = runner.invoke(keys_cli, ["create", "--name", "temp", "--expires-in", "30d", "--json",
                                 "--config", config])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["expires_at"] is not None
    r = runner.invoke(keys_cli, ["create", "--name", "dated", "--expires-at", "2001-01-01",
                                 "--config", config])
    assert r.exit_code == 2 and "expires_at" in r.output and "future" in r.output
    r = runner.invoke(keys_cli, ["create", "--name", "x", "--rpm", "0", "--config", config])
    assert r.exit_code == 2 and "rpm" in r.output


def test_usage_cli(database_url: str, tmp_path: Path):
    config = _config_file(database_url, tmp_path)
    ledger = Ledger.open(database_url, gateway_cfg(database_url, tmp_path).ledger)
    _record(ledger, 3, OPENAI, 0.25)
    _record(ledger, 1, LOCAL, 0.0)
    ledger.close()
    runner = CliRunner()
    r = runner.invoke(usage_cli, ["--by", "vendor", "--config", str(config)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["VENDOR", "REQUESTS", "ERRORS"]
    assert lines[1].split()[:2] == ["openai", "3"]
    assert "total: 4 requests, 0.7500 USD" in r.stdout
    r = runner.invoke(usage_cli, ["--by", "day", "--since", "7d", "--json", "--config",
                                  str(config)])
    assert r.exit_code == 0 and json.loads(r.stdout)["data"][0]["requests"] == 4
    r = runner.invoke(usage_cli, ["--by", "colour", "--config", str(config)])
    assert r.exit_code == 2
    r = runner.invoke(usage_cli, ["--config", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "configuration error" in r.output
