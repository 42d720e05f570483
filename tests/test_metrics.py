"""/metrics through a started gateway: bounded under a flood of made-up model names, never
holding request text, and behind the admin key when `server.metrics_auth: admin` (issue 17 §3).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

ADMIN_KEY = "admin-" + "metrics-7e57c0de"
SECRET = "sk-live-" + "Zq8w" * 10  # looks like a vendor key: must never reach the scrape


@pytest.fixture(scope="module")
def vendor() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("openai", name="v") as v:
        yield v


@pytest.fixture(scope="module")
def gw(vendor: SimulatedVendor, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayProcess]:
    cfg = {
        "server": {"metrics_auth": "admin"},
        "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                            "ownership": "external", "vendor": "v"}},
        "routes": {"chat-a": {"targets": [{"provider": "v", "model": "a"}]}},
        "auth": {"enabled": True},
    }
    env = {"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}
    with GatewayProcess(cfg, tmp_path_factory.mktemp("metrics"), env=env) as g:
        yield g


def _admin(gw: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=30)


def _key(gw: GatewayProcess) -> str:
    r = _admin(gw).post("/admin/keys", json={"name": "metrics-flood"})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _scrape(gw: GatewayProcess) -> str:
    r = _admin(gw).get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


def test_unknown_model_names_never_become_label_values(gw: GatewayProcess) -> None:
    key = _key(gw)
    client = httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {key}"},
                          timeout=30)
    for path in ("/v1/chat/completions", "/v1/embeddings"):  # every route seen once
        body = {"model": "chat-a", "messages": [{"role": "user", "content": "hi"}],
                "input": "hi"}
        client.post(path, json=body)
        client.post(path, json={**body, "model": "warm-up-unknown"})
    before = len(_scrape(gw))

    statuses: dict[int, int] = {}
    for i in range(2000):
        model = f"{i:05d}-{SECRET}-".ljust(1000, "x")
        path = "/v1/embeddings" if i % 4 == 0 else "/v1/chat/completions"
        r = client.post(path, json={"model": model, "input": "hi",
                                    "messages": [{"role": "user", "content": "hi"}]})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    assert statuses == {404: 2000}

    text = _scrape(gw)
    assert len(text) < 2 * before, (before, len(text))
    assert SECRET not in text and "xxxxxxxxxx" not in text
    assert 'route="other"' in text and 'route="chat-a"' in text
    assert 'emancipate_requests_total{ownership="none",route="other",status="404"' in text


def test_metrics_auth_admin_refuses_without_the_admin_key(gw: GatewayProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-admin-key"},
                    {"Authorization": f"Bearer {_key(gw)}"}):  # a virtual key is not enough
        r = httpx.get(gw.url + "/metrics", headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["type"] == "authentication_error" and err["code"] == "invalid_admin_key"
    r = _admin(gw).get("/metrics")
    assert r.status_code == 200 and "emancipate_requests_total" in r.text
