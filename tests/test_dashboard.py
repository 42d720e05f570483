"""The dashboard end to end: a real gateway process on a seeded ledger, driven by Debian's
Chromium through Playwright (no browser download: `executable_path` is the system browser,
installed by scripts/system-deps.sh when absent).

Screenshots go to the test's temporary directory, and also to $EMANCIPATE_SCREENSHOTS_DIR
when set (`python bench/screenshots.py` sets it to docs/img).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emancipate.context import Principal, Target
from emancipate.ledger import Ledger, LedgerConfig
from tests.test_report import (
    ADMIN_KEY,
    CLAUDE,
    _ctx,
    gateway_config,
    seed_cache,
    seed_known_traffic,
    seed_shadow,
    write_router,
)

ROOT = Path(__file__).resolve().parent.parent
MISTRAL = Target("mistral", "mistral-large", "mistral", "external")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def chromium_path() -> str:
    """The system Chromium; installed through scripts/system-deps.sh when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)
    found = shutil.which("chromium")
    assert found, "chromium is still missing after scripts/system-deps.sh"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(),
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def seed_background(engine: Any, n: int = 4000, days: int = 60) -> None:
    """Synthetic traffic over the last weeks (the benchmark's generator), for fuller charts."""
    from bench.report_bench import seed

    seed(engine, n, days, end=None)


@pytest.fixture
def dashboard_gateway(start_gateway: Any, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    ids = seed_known_traffic(ledger)
    seed_shadow(ledger, ids["today_ts"])
    seed_cache(ledger, ids["today_ts"])
    seed_background(ledger.engine)
    ledger.close()
    # a real trained router file makes the what-if curve real (bench/screenshots.py sets it)
    given = os.environ.get("EMANCIPATE_DASHBOARD_ROUTER")
    router = Path(given) if given and Path(given).is_file() else write_router(
        tmp_path / "router.json")
    config = gateway_config(url, router)
    config["providers"]["embedded"] = {"kind": "embedded"}
    config["routes"]["default"] = {"targets": [{"provider": "embedded",
                                                "model": "smollm2-135m-instruct"}]}
    config["auth"] = {"enabled": True}  # the playground then needs a key: the admin key works
    gw = start_gateway(config, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY})
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(gw.url + "/admin/keys", headers=auth, timeout=30,
                   json={"name": "search-app", "team": "search", "budget_day": 5.0,
                         "budget_month": 100.0, "rpm": 600, "expires_at": "2030-06-30"})
    assert r.status_code == 201, r.text
    key_id = r.json()["id"]
    # some spend today under that key, written to the gateway's own database
    ledger = Ledger.open(url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    for i in range(2):
        ctx = _ctx(CLAUDE, time.time() - 60 - i, cost=1.5)
        ctx.principal = Principal(key_id, name="search-app", team="search")
        ledger.record(ctx)
    # a fourth vendor today whatever the hour: the background traffic is spread evenly
    # over 60 days, so today's slice of it (what the dashboard shows first) depends on the
    # time of the run, and held no mistral request when run at 16:40 UTC
    ledger.record(_ctx(MISTRAL, ids["today_ts"] + 40, cost=0.01))
    ledger.flush()
    ledger.close()
    return gw, ids


def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    target = os.environ.get("EMANCIPATE_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def open_tab(page: Any, name: str) -> Any:
    page.click(f"#tabs a[data-tab={name}]")
    page.wait_for_selector(f"#tab-{name}[data-state=ready]", timeout=60_000)
    return page.locator(f"#tab-{name}")


def chart_labels(page: Any, canvas_id: str) -> list[str]:
    """The dataset (or slice) labels Chart.js drew on a canvas: the legend's text."""
    return page.evaluate(
        """id => { const c = Chart.getChart(document.getElementById(id));
                   if (!c) return null;
                   return c.config.type === 'doughnut' ? c.data.labels
                                                        : c.data.datasets.map(d => d.label); }""",
        canvas_id)


def test_dashboard_end_to_end(browser: Any, dashboard_gateway: Any, tmp_path: Path) -> None:
    gw, ids = dashboard_gateway
    ctx = browser.new_context(viewport=LAPTOP, device_scale_factor=1)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda r: errors.append(f"{r.method} {r.url}: {r.failure}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and "status of 404" not in m.text else None)  # the path polls until recorded
    page.goto(gw.url + "/admin/dashboard")

    # a wrong admin key is refused, and nothing but the log-in form is shown
    page.wait_for_selector("#login-form", state="visible")
    shot(page, tmp_path, "dashboard-login")
    page.fill("#admin-key", "not-the-key")
    page.click("#login-button")
    page.wait_for_selector("#login-error:has-text('Invalid admin key')")
    assert page.is_hidden("#app")
    assert page.evaluate("sessionStorage.getItem('emancipate.adminKey')") is None
    errors.clear()  # the refused log-in logs its 401 in the console, as browsers do

    # log in: the independence tab draws the seeded vendors
    page.fill("#admin-key", ADMIN_KEY)
    page.click("#login-button")
    page.wait_for_selector("#tab-independence[data-state=ready]", timeout=60_000)
    tab = page.locator("#tab-independence")
    by_vendor = tab.locator("[data-table=by-vendor]").inner_text()
    for vendor in ("openai", "anthropic", "in-house", "mistral"):
        assert vendor in by_vendor
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-vendors'))")
    assert {"openai", "anthropic", "in-house"} <= set(chart_labels(page, "chart-vendors"))
    assert set(chart_labels(page, "chart-ownership")) == {"external", "in-house"}
    assert "openai" in chart_labels(page, "chart-vendor-doughnut")
    assert chart_labels(page, "chart-hhi")[0] == "HHI"
    assert "kept in-house" in chart_labels(page, "chart-router")
    assert "held-out calibration" in chart_labels(page, "chart-whatif-0")
    assert tab.locator("[data-kpi=hhi] .v").inner_text().replace(",", "").isdigit()
    assert "assistant" in tab.locator("[data-table=router]").inner_text()
    # the response cache: vendor calls avoided (seed: 5 of 6 hits, 12 requests on the route)
    assert tab.locator("[data-kpi=cache] .v").inner_text() == "5"
    assert tab.locator("[data-kpi=cache] .l").inner_text() == "vendor calls avoided by cache"
    assert "hit rate 50.0%" in tab.locator("[data-kpi=cache] .s").inner_text()
    avoided = tab.locator("[data-table=cache-vendors]").inner_text()
    assert "openai" in avoided and "anthropic" in avoided and "0.40 USD" in avoided
    assert "support" in tab.locator("[data-table=cache-routes]").inner_text()
    assert "assistant" in tab.locator("[data-table=shadow]").inner_text()
    spend = tab.locator("[data-table=shadow-spend]").inner_text()  # seed: judge 0.04, own 0.005
    assert "anthropic" in spend and "0.0400 USD" in spend and "0.0050 USD" in spend
    tab.locator(".toggle button[data-metric=cost]").first.click()  # spend shares redraw
    assert page.evaluate("() => Chart.getChart(document.getElementById('chart-ownership'))"
                         ".data.datasets.find(d => d.label === 'in-house').data"
                         ".every(v => v === 0)")  # in-house answers cost nothing here
    tab.locator(".toggle button[data-metric=requests]").first.click()
    shot(page, tmp_path, "dashboard-independence")
    with page.expect_download() as download:  # the self-contained HTML report, as a file
        page.click("#download-report")
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    assert "EmancipateReport.renderAll" in saved.read_text()
    page.locator("#chart-router").scroll_into_view_if_needed()
    shot(page, tmp_path, "dashboard-router")  # kept in-house, what-if curve, shadow readiness

    # protection: findings and actions by class, the rules in force (never values)
    prot = open_tab(page, "protection")
    assert "personal" in prot.locator("[data-table=by-class]").inner_text()
    assert "search" in prot.locator("[data-table=by-domain]").inner_text()
    rules = prot.locator("[data-table=rules]").inner_text()
    assert "secrets-stay-in-house" in rules and "in-house-only" in rules
    assert set(chart_labels(page, "chart-actions")) == {"redacted", "kept in-house", "blocked"}
    shot(page, tmp_path, "dashboard-protection")

    # health: per-target breakers (live) and failovers (ledger)
    health = open_tab(page, "health")
    assert "embedded/smollm2-135m-instruct" in health.locator("[data-table=targets]").inner_text()
    assert "closed" in health.locator("[data-table=targets]").inner_text()
    assert "timeout" in health.locator("[data-table=failed-attempts]").inner_text()
    shot(page, tmp_path, "dashboard-health")

    # usage: keys with budgets, teams
    usage = open_tab(page, "usage")
    keys = usage.locator("[data-table=keys]").inner_text()
    assert "search-app" in keys and "5.00" in keys and "3.00 USD" in keys  # 60 % of a day
    assert "2030-06-30 00:00" in keys  # when the key expires
    assert "search" in usage.locator("[data-table=teams]").inner_text()
    shot(page, tmp_path, "dashboard-usage")

    # playground: the embedded model answers, with which target and why
    open_tab(page, "playground")
    page.wait_for_selector("#pg-route option[value=default]", state="attached")
    page.select_option("#pg-route", "default")
    page.fill("#pg-max-tokens", "8")
    page.fill("#pg-message", "Say hello.")
    page.click("#pg-send")
    page.wait_for_function(
        "() => document.getElementById('pg-result').dataset.state !== 'loading'",
        timeout=120_000)
    result = page.locator("#pg-result")
    assert result.get_attribute("data-state") == "ready", (result.inner_text(), errors)
    assert result.locator("[data-header=x-emancipate-provider]").inner_text() == "embedded"
    assert result.locator("[data-header=x-emancipate-attempts]").inner_text() == "1"
    assert result.locator("[data-header=x-emancipate-ownership]").inner_text() == "in-house"
    rid = result.locator("[data-header=x-request-id]").inner_text()
    assert rid.startswith("req_")
    page.wait_for_selector(f"#pg-result [data-request='{rid}']", timeout=30_000)
    assert "embedded/smollm2-135m-instruct" in result.locator("[data-table=attempts]").inner_text()
    assert result.locator("[data-answer]").inner_text().strip() != ""
    shot(page, tmp_path, "dashboard-playground")

    # request explorer: the path of the blocked request, from the recent list and by id
    page.goto(gw.url + f"/admin/dashboard#requests/{ids['blocked']}")
    page.wait_for_selector("#tab-requests[data-state=ready]", timeout=60_000)
    detail = page.locator("#explorer-detail")
    assert ids["blocked"] in detail.inner_text()
    decisions = detail.locator("[data-table=decisions]").inner_text()
    assert "no-competitor" in decisions and "block" in decisions
    assert "domain:search" in detail.locator("[data-table=findings]").inner_text()
    recent = page.locator("[data-table=recent]").inner_text()
    assert rid in recent  # the playground's request is the newest
    page.select_option("#explorer-status", "error")
    page.wait_for_selector("[data-table=recent] >> text=403")
    failed = page.locator("[data-table=recent]").inner_text()
    assert rid not in failed and ids["blocked"] in failed
    shot(page, tmp_path, "dashboard-request")

    # a phone-sized screen gets the same data
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    mobile.goto(gw.url + "/admin/dashboard")
    mobile.evaluate(f"sessionStorage.setItem('emancipate.adminKey', '{ADMIN_KEY}')")
    mobile.reload()
    mobile.wait_for_selector("#tab-independence[data-state=ready]", timeout=60_000)
    assert "openai" in mobile.locator("[data-table=by-vendor]").inner_text()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1  # no sideways scrolling of the page itself
    shot(mobile, tmp_path, "dashboard-phone")
    phone.close()

    # logging out forgets the key
    page.click("#logout")
    page.wait_for_selector("#login-form", state="visible")
    assert page.evaluate("sessionStorage.getItem('emancipate.adminKey')") is None
    assert errors == []
    ctx.close()


def test_dashboard_endpoints_need_the_admin_key(dashboard_gateway: Any) -> None:
    gw, _ids = dashboard_gateway
    page = httpx.get(gw.url + "/admin/dashboard", timeout=30)
    assert page.status_code == 200 and "login-form" in page.text  # the shell holds no data
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = httpx.get(gw.url + "/admin/dashboard/static/chart.umd.min.js", timeout=30)
    assert js.status_code == 200 and "Chart.js 4.6.1" in js.text[:400]
    assert httpx.get(gw.url + "/admin/dashboard/static/../__init__.py",
                     timeout=30).status_code == 404
    for path in ("/admin/requests?limit=5", "/admin/policy", "/admin/report"):
        for headers in ({}, {"authorization": "Bearer nope"}):
            r = httpx.get(gw.url + path, headers=headers, timeout=30)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "invalid_admin_key"
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    recent = httpx.get(gw.url + "/admin/requests?limit=3", headers=auth, timeout=30).json()
    assert len(recent["data"]) == 3
    older = httpx.get(gw.url + "/admin/requests", headers=auth, timeout=30,
                      params={"limit": 2, "before": recent["data"][-1]["created_at"]}).json()
    assert older["data"][0]["created_at"] < recent["data"][-1]["created_at"]
    assert httpx.get(gw.url + "/admin/requests?limit=0", headers=auth,
                     timeout=30).status_code == 400
    policy = httpx.get(gw.url + "/admin/policy", headers=auth, timeout=30).json()
    assert any(r["name"] == "personal-data-redacted" for r in policy["rules"])
    assert policy["guard"]["confidential_terms"] == 0


def test_a_viewer_logs_in_sees_its_role_and_team_limits_and_cannot_write(
        browser: Any, dashboard_gateway: Any) -> None:
    gw, _ids = dashboard_gateway
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(gw.url + "/admin/admins", headers=auth, timeout=30,
                   json={"name": "auditor", "role": "viewer"})
    assert r.status_code == 201, r.text
    viewer = r.json()["key"]
    r = httpx.post(gw.url + "/admin/teams", headers=auth, timeout=30,
                   json={"name": "search", "budget_day": 20.0, "models": ["gpt-*"]})
    assert r.status_code == 201, r.text

    ctx = browser.new_context(viewport=LAPTOP, device_scale_factor=1)
    page = ctx.new_page()
    page.goto(gw.url + "/admin/dashboard")
    page.wait_for_selector("#login-form", state="visible")
    page.fill("#admin-key", viewer)
    page.click("#login-button")
    page.wait_for_selector("#tab-independence[data-state=ready]", timeout=60_000)
    assert page.inner_text("#who") == "auditor · viewer"
    limits = open_tab(page, "usage").locator("[data-table=team-limits]").inner_text()
    assert "search" in limits and "gpt-*" in limits
    # The page holds the key; the server still refuses what the role does not allow.
    answer = page.evaluate("""key => fetch('/admin/keys', {method: 'POST',
        headers: {Authorization: 'Bearer ' + key, 'content-type': 'application/json'},
        body: JSON.stringify({name: 'from-the-page'})}).then(r => r.json()
        .then(b => [r.status, b.error.code, b.error.message]))""", viewer)
    assert answer[:2] == [403, "insufficient_role"] and "'operator'" in answer[2]
    ctx.close()
