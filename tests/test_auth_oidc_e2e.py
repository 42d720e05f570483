"""Dashboard log-in with OpenID Connect (authorization code + PKCE) through a started gateway
and a local OIDC provider (tests/oidc_provider.py): the session it gives carries the role the
user's groups map to, the admin guard enforces that role, and every way a log-in can be
tampered with is refused in OpenAI's error shape."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import yaml

from tests.gateway_process import GatewayProcess, free_port
from tests.oidc_provider import OIDCProvider

SESSION_SECRET = "s" * 16 + "session-secret-for-oidc-tests"
CLIENT_SECRET = "client-" + "secret-oidc-tests"
ANA = {"sub": "u-ana", "email": "ana@example.com", "name": "Ana", "groups": ["gateway-ops"]}


def _oidc(idp: OIDCProvider, redirect: str) -> dict[str, Any]:
    return {"issuer": idp.issuer, "client_id": "emancipate", "client_secret_env": "OIDC_SECRET",
            "redirect_url": redirect, "role_claim": "groups",
            "roles": {"gateway-ops": "operator", "auditors": "viewer", "platform": "admin"},
            "session_ttl": 600}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[GatewayProcess, OIDCProvider]]:
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/admin/oidc/callback"
    with OIDCProvider("emancipate", redirect, dict(ANA), client_secret=CLIENT_SECRET) as idp:
        cfg = {"providers": {}, "routes": {}, "auth": {"enabled": True,
                                                         "oidc": _oidc(idp, redirect)}}
        env = {"EMANCIPATE_SESSION_SECRET": SESSION_SECRET, "OIDC_SECRET": CLIENT_SECRET,
               "EMANCIPATE_ADMIN_KEY": ""}
        with GatewayProcess(cfg, tmp_path, env=env, port=port) as gw:
            yield gw, idp


def _log_in(gw: GatewayProcess) -> tuple[httpx.Client, str]:
    """The browser's walk: gateway -> provider -> gateway callback; returns the client (with
    its cookies) and the callback URL the provider sent it to."""
    browser = httpx.Client(timeout=30)
    start = browser.get(gw.url + "/admin/oidc/login")
    assert start.status_code == 302, start.text
    cookie = start.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/admin/oidc" in cookie and "SameSite=lax" in cookie
    at_provider = browser.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return browser, at_provider.headers["location"]


def _session_from(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("/admin/dashboard#session=")
    return location.split("#session=", 1)[1]


def _assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code, err
    return err


def test_an_oidc_log_in_gives_a_session_with_the_role_its_groups_map_to(
        setup: tuple[GatewayProcess, OIDCProvider]) -> None:
    gw, idp = setup
    browser, callback = _log_in(gw)
    authorize = parse_qs(urlsplit(callback).query)
    token = _session_from(browser.get(callback))

    # PKCE: the verifier the gateway sent hashes to the challenge it sent first; the client
    # secret went along (a confidential client).
    sent = idp.token_requests[-1]
    assert sent["client_secret"] == CLIENT_SECRET and len(sent["code_verifier"]) >= 43
    assert set(authorize) == {"code", "state"}

    session = {"Authorization": f"Bearer {token}"}
    me = httpx.get(gw.url + "/admin/whoami", headers=session, timeout=30).json()
    assert (me["name"], me["role"], me["id"]) == ("ana@example.com", "operator", "oidc:u-ana")
    r = httpx.post(gw.url + "/admin/keys", headers=session, json={"name": "from-sso"},
                   timeout=30)
    assert r.status_code == 201, r.text
    err = _assert_error(httpx.get(gw.url + "/admin/admins", headers=session, timeout=30), 403,
                        "insufficient_role")
    assert "needs the role 'admin'" in err["message"]

    idp.user = {**ANA, "groups": ["auditors", "platform"]}  # the highest mapped role wins
    browser2, callback = _log_in(gw)
    admin = _session_from(browser2.get(callback))
    me = httpx.get(gw.url + "/admin/whoami", headers={"Authorization": f"Bearer {admin}"},
                   timeout=30).json()
    assert me["role"] == "admin"


def test_tampered_log_ins_and_sessions_are_refused(
        setup: tuple[GatewayProcess, OIDCProvider]) -> None:
    gw, idp = setup
    browser, callback = _log_in(gw)
    query = parse_qs(urlsplit(callback).query)
    forged_state = callback.replace(query["state"][0], "attacker-state")
    err = _assert_error(browser.get(forged_state), 400, "oidc_failed")
    assert "state" in err["message"]
    # The callback in another browser (no flow cookie): a code stolen from the URL is useless.
    err = _assert_error(httpx.get(callback, timeout=30), 400, "oidc_failed")
    assert "not started in this browser" in err["message"]
    flow = browser.cookies["em_oidc_flow"]
    _session_from(browser.get(callback))
    err = _assert_error(browser.get(callback), 400, "oidc_failed")  # the flow cookie is gone
    assert "not started in this browser" in err["message"]
    replay = httpx.get(callback, headers={"cookie": f"em_oidc_flow={flow}"}, timeout=30)
    assert "refused the code" in _assert_error(replay, 502, "oidc_failed")["message"]

    idp.user = {**ANA, "groups": ["interns"]}  # no role mapped, no default_role
    browser, callback = _log_in(gw)
    err = _assert_error(browser.get(callback), 403, "oidc_failed")
    assert "no role" in err["message"]

    forged = jwt.encode({"sub": "x", "role": "admin", "exp": 4_000_000_000,
                         "aud": "emancipate-dashboard", "iss": "emancipate"},
                        "another-key-of-thirty-two-characters!", algorithm="HS256")
    r = httpx.get(gw.url + "/admin/keys", headers={"Authorization": f"Bearer {forged}"},
                  timeout=30)
    _assert_error(r, 401, "invalid_admin_key")
    r = httpx.get(gw.url + "/admin/oidc/callback?error=access_denied", timeout=30)
    assert "access_denied" in _assert_error(r, 401, "oidc_failed")["message"]


def test_pkce_challenge_is_s256_of_the_verifier(
        setup: tuple[GatewayProcess, OIDCProvider]) -> None:
    gw, idp = setup
    start = httpx.get(gw.url + "/admin/oidc/login", timeout=30)
    q = parse_qs(urlsplit(start.headers["location"]).query)
    assert q["code_challenge_method"] == ["S256"] and q["client_id"] == ["emancipate"]
    assert q["scope"] == ["openid email profile"] and q["nonce"][0] and q["state"][0]
    browser = httpx.Client(cookies=start.cookies, timeout=30)
    callback = browser.get(start.headers["location"]).headers["location"]
    _session_from(browser.get(callback))
    verifier = idp.token_requests[-1]["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == q["code_challenge"][0]


def test_without_a_session_secret_the_gateway_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(yaml.safe_dump({"providers": {}, "routes": {}, "auth": {"oidc": {
        "issuer": "http://127.0.0.1:9", "client_id": "c",
        "redirect_url": "http://127.0.0.1:9/admin/oidc/callback"}}}))
    env = {"PATH": "/usr/bin:/bin", "EMANCIPATE_SESSION_SECRET": "short"}
    proc = subprocess.run([sys.executable, "-m", "emancipate", "serve", "--port", "0",
                           "--config", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "auth.oidc.session_secret_env" in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="the dashboard tests install chromium (scripts/system-deps.sh)")
def test_the_dashboard_logs_in_with_sso(setup: tuple[GatewayProcess, OIDCProvider]) -> None:
    from playwright.sync_api import sync_playwright

    gw, _ = setup
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
            args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.goto(gw.url + "/admin/dashboard")
        page.wait_for_selector("#sso-login", state="visible")
        page.click("#sso-login")
        page.wait_for_selector("#tab-independence[data-state]", timeout=60_000)
        assert page.inner_text("#who") == "ana@example.com · operator"
        assert "#session=" not in page.url  # the token left the address bar at once
        stored = page.evaluate("sessionStorage.getItem('emancipate.adminKey')")
        assert stored and stored.count(".") == 2
        browser.close()
