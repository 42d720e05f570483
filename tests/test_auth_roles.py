"""Admin identities and roles on the admin API (SQLite and PostgreSQL, real ASGI handling):
viewer reads, operator also manages keys and teams, admin also manages admin identities; the
configured admin key stays an admin. Plus the `emancipate admin` and `emancipate teams`
commands and migration 0007."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import inspect, text
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

from emancipate.api.errors import render
from emancipate.api.guard import AdminGuard
from emancipate.api.keys import admin_routes
from emancipate.auth import Access, AdminStore, TeamStore
from emancipate.auth.admin_cli import app as admin_cli
from emancipate.auth.team_cli import app as teams_cli
from emancipate.ledger import Ledger, LedgerConfig
from emancipate.ledger import db as ledger_db
from emancipate.protocol import OpenAIError
from tests.test_keys import gateway_cfg

pytest_plugins = ["tests.services"]
CONFIGURED = "configured-admin-key-for-roles"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_openai_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert err["code"] == code, err
    return err


@pytest.fixture
def api(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The admin API with one admin key of each role (and the configured key)."""
    monkeypatch.setenv("EMANCIPATE_ADMIN_KEY", CONFIGURED)
    cfg = gateway_cfg(database_url, tmp_path, key_cache_ttl=3600)
    ledger = Ledger.open(cfg.server.database_url, cfg.ledger)
    access = Access.open(cfg, ledger)
    client = TestClient(Starlette(routes=admin_routes(access, ledger, AdminGuard(access)),
                                  exception_handlers={OpenAIError: render}))
    secrets = {role: access.admins.create(f"{role}-person", role)[1]
               for role in ("viewer", "operator", "admin")}
    yield client, secrets, access
    client.close()
    ledger.close()


def _id_of(api: Any, role: str) -> str:
    return next(a.id for a in api[2].admins.list() if a.role == role)


def test_a_viewer_reads_but_cannot_create_keys(api: Any):
    client, secrets, _ = api
    viewer = bearer(secrets["viewer"])
    assert client.get("/admin/keys", headers=viewer).status_code == 200
    assert client.get("/admin/usage", headers=viewer).status_code == 200
    assert client.get("/admin/teams", headers=viewer).status_code == 200
    me = client.get("/admin/whoami", headers=viewer).json()
    assert (me["name"], me["role"], me["status"]) == ("viewer-person", "viewer", "active")

    r = client.post("/admin/keys", headers=viewer, json={"name": "nope"})
    err = assert_openai_error(r, 403, "insufficient_role")
    assert err["type"] == "permission_error"
    assert "'viewer'" in err["message"] and "needs the role 'operator'" in err["message"]
    assert client.get("/admin/keys", headers=viewer).json()["data"] == []  # nothing made
    for method, path in (("POST", "/admin/teams"), ("DELETE", "/admin/keys/key_x"),
                         ("POST", "/admin/keys/key_x/rotate"), ("GET", "/admin/admins")):
        r = client.request(method, path, headers=viewer, json={"name": "x"})
        assert_openai_error(r, 403, "insufficient_role")


def test_an_operator_manages_keys_and_teams_but_not_admins(api: Any,
                                                           caplog: pytest.LogCaptureFixture):
    client, secrets, _ = api
    operator = bearer(secrets["operator"])
    r = client.post("/admin/teams", headers=operator, json={"name": "search", "rpm": 10})
    assert r.status_code == 201, r.text
    with caplog.at_level("INFO", logger="emancipate.admin"):
        r = client.post("/admin/keys", headers=operator, json={"name": "bot", "team": "search"})
    assert r.status_code == 201 and r.json()["key"].startswith("sk-em-")
    audit = [rec.getMessage() for rec in caplog.records if rec.name == "emancipate.admin"]
    assert audit == [f"operator-person ({_id_of(api, 'operator')}, role operator) created key "
                     f"{r.json()['id']}"]
    assert r.json()["key"] not in caplog.text and secrets["operator"] not in caplog.text
    r = client.delete(f"/admin/keys/{r.json()['id']}", headers=operator)
    assert r.status_code == 200 and r.json()["status"] == "revoked"

    for method, path, body in (("GET", "/admin/admins", None),
                               ("POST", "/admin/admins", {"name": "me", "role": "admin"}),
                               ("DELETE", "/admin/admins/adm_x", None)):
        r = client.request(method, path, headers=operator, json=body)
        err = assert_openai_error(r, 403, "insufficient_role")
        assert "needs the role 'admin'" in err["message"]
    listed = client.get("/admin/admins", headers=bearer(secrets["admin"])).json()["data"]
    assert len(listed) == 3  # the operator made no admin


def test_an_admin_manages_admin_identities(api: Any):
    client, secrets, _ = api
    admin = bearer(secrets["admin"])
    r = client.post("/admin/admins", headers=admin, json={"name": "ana", "role": "operator"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith("sk-em-admin-") and made["role"] == "operator"
    listed = client.get("/admin/admins", headers=admin).json()["data"]
    assert made["id"] in [a["id"] for a in listed]
    assert made["key"] not in json.dumps(listed) and "secret_hash" not in listed[0]
    ana = bearer(made["key"])
    assert client.post("/admin/keys", headers=ana, json={"name": "k"}).status_code == 201

    r = client.delete(f"/admin/admins/{made['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    err = assert_openai_error(client.get("/admin/keys", headers=ana), 401, "invalid_admin_key")
    assert "revoked" in err["message"]  # effective at once in the process that revoked it

    r = client.post("/admin/admins", headers=admin, json={"name": "x", "role": "root"})
    err = assert_openai_error(r, 400, "invalid_value")
    assert err["param"] == "role"
    r = client.delete("/admin/admins/adm_missing", headers=admin)
    assert_openai_error(r, 404, "admin_not_found")


def test_the_configured_admin_key_stays_an_admin(api: Any):
    client, _, _ = api
    admin = bearer(CONFIGURED)
    me = client.get("/admin/whoami", headers=admin).json()
    assert me["role"] == "admin" and me["id"] == "admin"
    r = client.post("/admin/admins", headers=admin, json={"name": "first", "role": "viewer"})
    assert r.status_code == 201


def test_unknown_and_missing_admin_keys_are_401(api: Any):
    client, _, _ = api
    assert_openai_error(client.get("/admin/keys"), 401, "invalid_admin_key")
    assert_openai_error(client.get("/admin/keys", headers=bearer("sk-em-admin-nope")), 401,
                        "invalid_admin_key")
    assert_openai_error(client.get("/admin/keys", headers=bearer("sk-em-not-an-admin")), 401,
                        "invalid_admin_key")


def test_a_failing_admin_key_store_is_a_503_not_a_500(api: Any):
    client, _, access = api
    with access.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE admins"))  # every lookup now fails in the database
    r = client.get("/admin/keys", headers=bearer("sk-em-admin-not-cached-yet"))
    err = assert_openai_error(r, 503, "auth_unavailable")
    assert r.headers["retry-after"] == "1" and "sk-em-admin" not in err["message"]
    assert client.get("/admin/keys", headers=bearer(CONFIGURED)).status_code == 200


def test_without_a_configured_key_admin_identities_still_work(api: Any,
                                                              monkeypatch: pytest.MonkeyPatch):
    client, secrets, access = api
    monkeypatch.delenv("EMANCIPATE_ADMIN_KEY")
    assert client.get("/admin/keys", headers=bearer(secrets["viewer"])).status_code == 200
    assert_openai_error(client.get("/admin/keys", headers=bearer(CONFIGURED)), 401,
                        "invalid_admin_key")
    for admin in access.admins.list():
        access.admins.revoke(admin.id)
    access.forget_admins()
    err = assert_openai_error(client.get("/admin/keys", headers=bearer(CONFIGURED)), 403,
                              "admin_disabled")
    assert "emancipate admin create" in err["message"]


def test_team_crud_over_the_admin_api(api: Any):
    client, secrets, _ = api
    op = bearer(secrets["operator"])
    r = client.post("/admin/teams", headers=op, json={
        "name": "search", "models": ["gpt-*"], "budget_day": 5, "rpm": 100})
    assert r.status_code == 201, r.text
    assert r.json()["models"] == ["gpt-*"] and r.json()["rpm"] == 100
    assert_openai_error(client.post("/admin/teams", headers=op, json={"name": "search"}),
                        409, "team_exists")
    err = assert_openai_error(client.post("/admin/teams", headers=op,
                                          json={"name": "t", "rpm": 0}), 400, "invalid_value")
    assert err["param"] == "rpm"
    err = assert_openai_error(client.post("/admin/teams", headers=op,
                                          json={"name": "t", "owner": "x"}), 400,
                              "unknown_parameter")
    assert err["param"] == "owner"

    r = client.patch("/admin/teams/search", headers=op, json={"rpm": None, "budget_day": 7})
    assert r.status_code == 200, r.text
    assert (r.json()["rpm"], r.json()["budget_day"], r.json()["models"]) == (None, 7, ["gpt-*"])
    client.post("/admin/keys", headers=op, json={"name": "a", "team": "search"})
    got = client.get("/admin/teams/search", headers=bearer(secrets["viewer"])).json()
    assert got["keys"] == 1 and got["spent_day"] == 0
    assert_openai_error(client.patch("/admin/teams/nope", headers=op, json={}), 404,
                        "team_not_found")
    r = client.delete("/admin/teams/search", headers=op)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert client.get("/admin/teams", headers=op).json()["data"] == []
    keys = client.get("/admin/keys", headers=op).json()["data"]
    assert keys[0]["team"] == "search"  # the label stays


def _cli_config(database_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"database_url": database_url},
        "providers": {"p": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9",
                            "ownership": "in-house", "vendor": "p"}},
        "routes": {"chat": {"targets": [{"provider": "p", "model": "m"}]}},
        "ledger": {"spill_dir": str(tmp_path / "spill")},
    }))
    return path


def test_admin_and_teams_commands(database_url: str, tmp_path: Path):
    config = str(_cli_config(database_url, tmp_path))
    runner = CliRunner()
    r = runner.invoke(admin_cli, ["create", "--name", "ops", "--role", "operator", "--config",
                                  config, "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["role"] == "operator" and made["key"].startswith("sk-em-admin-")
    r = runner.invoke(admin_cli, ["create", "--name", "x", "--role", "root", "--config", config])
    assert r.exit_code == 2 and "role" in r.output
    r = runner.invoke(admin_cli, ["list", "--config", config])
    assert r.exit_code == 0 and "ops" in r.stdout and made["key"] not in r.stdout
    r = runner.invoke(admin_cli, ["revoke", made["id"], "--config", config])
    assert r.exit_code == 0 and "Revoked" in r.stdout
    r = runner.invoke(admin_cli, ["revoke", "adm_missing", "--config", config])
    assert r.exit_code == 1

    r = runner.invoke(teams_cli, ["create", "--name", "search", "--budget-day", "3",
                                  "--models", "gpt-*,chat", "--config", config])
    assert r.exit_code == 0, r.output
    r = runner.invoke(teams_cli, ["update", "search", "--rpm", "20", "--budget-day", "none",
                                  "--config", config, "--json"])
    assert r.exit_code == 0, r.output
    team = json.loads(r.stdout)
    assert (team["rpm"], team["budget_day"], team["models"]) == (20, None, ["gpt-*", "chat"])
    r = runner.invoke(teams_cli, ["list", "--config", config])
    assert r.exit_code == 0 and "search" in r.stdout
    r = runner.invoke(teams_cli, ["delete", "search", "--config", config])
    assert r.exit_code == 0
    r = runner.invoke(teams_cli, ["delete", "search", "--config", config])
    assert r.exit_code == 1 and "no team" in r.output


def test_0006_to_0007_adds_admins_and_teams_and_keeps_keys(database_url: str, tmp_path: Path):
    engine = ledger_db.make_engine(database_url)
    ledger_db.upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO keys (id, secret_hash, hint, name, team, created_at) "
            "VALUES ('key_old', 'h0', '...abcd', 'old', 'search', :t)"),
            {"t": datetime(2026, 10, 3, tzinfo=UTC)})
    engine.dispose()
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path)))
    assert {"admins", "teams"} <= set(inspect(ledger.engine).get_table_names())
    AdminStore(ledger.engine).create("a", "viewer")
    TeamStore(ledger.engine).create("search", rpm=5)
    from emancipate.auth import KeyStore

    old = KeyStore(ledger.engine).lookup_hash("h0")
    assert old is not None and old.team_info is not None and old.team_info.rpm == 5
    ledger_db.downgrade(ledger.engine, "0006")
    tables = set(inspect(ledger.engine).get_table_names())
    assert "admins" not in tables and "teams" not in tables
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT team FROM keys")).scalar() == "search"
    ledger.close()
