"""What a caller learns about the deployment is scoped to its key (issue 17 §5, last bullet).

Through a started gateway with auth on: `/v1/models` and 404 texts name only the caller's
models, `/readyz` details need the admin key, a revoked key's 401 names no key.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

ADMIN_KEY = "admin-" + "disclosure-5c0pe"
ROUTES = ("chat-a", "chat-b", "project-falcon")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with SimulatedVendor("openai", name="bigco") as vendor:
        cfg = {
            "providers": {"bigco": {"kind": "openai-compatible", "base_url": vendor.url,
                                    "ownership": "external", "vendor": "bigco"}},
            "routes": {r: {"targets": [{"provider": "bigco", "model": r}]} for r in ROUTES},
            "auth": {"enabled": True},
        }
        env = {"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}
        with GatewayProcess(cfg, tmp_path_factory.mktemp("disclosure"), env=env) as g:
            yield g


def _admin(gw: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=30)


def _create(gw: GatewayProcess, **fields: object) -> dict:
    r = _admin(gw).post("/admin/keys", json=fields)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_scoped_key_lists_and_is_told_only_its_models(gw: GatewayProcess) -> None:
    client = gw.client(api_key=_create(gw, name="only-a", models=["chat-a"])["key"])
    assert [m.id for m in client.models.list()] == ["chat-a"]
    assert client.models.retrieve("chat-a").id == "chat-a"
    for model in ("nope", "project-falcon"):  # unknown, and existing but out of scope
        with pytest.raises(openai.NotFoundError) as info:
            client.models.retrieve(model)
        err = info.value.body
        assert err["code"] == "model_not_found" and err["param"] == "model"
        assert "chat-a" in err["message"] and "chat-b" not in err["message"]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    message = info.value.body["message"]
    assert "Models you may use: chat-a." in message
    assert not any(r in message for r in ("chat-b", "project-falcon"))


def test_an_unscoped_key_sees_every_model(gw: GatewayProcess) -> None:
    client = gw.client(api_key=_create(gw, name="all")["key"])
    assert [m.id for m in client.models.list()] == sorted(ROUTES)
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="nope", input="x")
    assert all(r in info.value.body["message"] for r in ROUTES)


def test_readyz_details_need_the_admin_key(gw: GatewayProcess) -> None:
    public = httpx.get(gw.url + "/readyz", timeout=30)
    assert public.status_code == 200 and public.json() == {"ready": True}
    for header in ("Bearer not-the-admin-key", f"Bearer {_create(gw, name='r')['key']}"):
        r = httpx.get(gw.url + "/readyz", headers={"Authorization": header}, timeout=30)
        assert r.status_code == 200 and r.json() == {"ready": True}
    full = _admin(gw).get("/readyz").json()
    assert full["ready"] is True and set(full["routes"]) == set(ROUTES)
    assert full["providers"] == {"bigco": True}
    assert {t["target"] for t in full["targets"]} == {f"bigco/{r}" for r in ROUTES}


def test_a_revoked_key_is_told_only_that_it_is_revoked(gw: GatewayProcess) -> None:
    created = _create(gw, name="leaving-team-key")
    assert _admin(gw).delete(f"/admin/keys/{created['id']}").status_code == 200
    with pytest.raises(openai.AuthenticationError) as info:
        gw.client(api_key=created["key"]).models.list()
    err = info.value.body
    assert err["code"] == "invalid_api_key" and "revoked" in err["message"]
    assert created["id"] not in err["message"] and "leaving-team-key" not in err["message"]
