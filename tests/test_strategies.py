"""Routing strategies through the real gateway: who gets the traffic, and why.

The independence strategy runs end to end with a trained router file, the embedded in-house
model and a simulated external vendor: easy prompts stay in-house, hard ones go out, and the
decision is in the request's path.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from emancipate.routing.cli import app as router_cli
from emancipate.routing.learned import IndependenceRouter
from emancipate.testing import SimulatedVendor, SlowTokens
from tests.gateway_process import GatewayProcess
from tests.polling import eventually, ledger_record
from tests.test_router import EASY, HARD, STRONG, WEAK, _prompt, _write_fixture

ADMIN = "admin-key-for-strategy-tests"


@pytest.fixture
def two() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="left") as left, \
            SimulatedVendor("openai", name="right") as right:
        yield left, right


def _providers(left: SimulatedVendor, right: SimulatedVendor) -> dict:
    return {
        "left": {"kind": "openai-compatible", "base_url": left.url, "ownership": "external",
                 "vendor": "left-inc"},
        "right": {"kind": "openai-compatible", "base_url": right.url, "ownership": "external",
                  "vendor": "right-inc"},
    }


def _served(gw: GatewayProcess, n: int, stream: bool = False, workers: int = 1) -> Counter:
    def one(i: int) -> str:
        r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
            "model": "r", "stream": stream, "messages": [{"role": "user", "content": f"q{i}"}]})
        r.raise_for_status()
        return r.headers["x-emancipate-provider"]

    with ThreadPoolExecutor(workers) as pool:
        return Counter(pool.map(one, range(n)))


def test_weighted_splits_by_weight(two, start_gateway: Callable[..., GatewayProcess]) -> None:
    gw = start_gateway({"providers": _providers(*two), "routes": {"r": {
        "strategy": "weighted", "targets": [{"provider": "left", "model": "m", "weight": 3},
                                            {"provider": "right", "model": "m", "weight": 1}]}}})
    counts = _served(gw, 200)
    # Binomial(200, 0.75): mean 150, sd ≈ 6.1; ±5 sd never fails by chance in practice.
    assert 119 <= counts["left"] <= 181, counts
    assert counts["left"] + counts["right"] == 200


def test_least_latency_prefers_the_faster_target(
    two, start_gateway: Callable[..., GatewayProcess]
) -> None:
    left, right = two
    left.inject(SlowTokens(0.02))  # every answer from `left` takes ~0.1 s longer
    gw = start_gateway({"providers": _providers(left, right), "routes": {"r": {
        "strategy": "least-latency", "targets": [{"provider": "left", "model": "m"},
                                                 {"provider": "right", "model": "m"}]}}})
    counts = _served(gw, 40)
    # Each is measured once, then the faster one wins every time it is compared.
    assert counts["right"] >= 35, counts


def test_least_busy_spreads_concurrent_requests(
    two, start_gateway: Callable[..., GatewayProcess]
) -> None:
    left, right = two
    left.inject(SlowTokens(0.05))
    right.inject(SlowTokens(0.05))
    gw = start_gateway({"providers": _providers(left, right), "routes": {"r": {
        "strategy": "least-busy", "targets": [{"provider": "left", "model": "m"},
                                              {"provider": "right", "model": "m"}]}}})
    counts = _served(gw, 24, workers=8)
    # `fallback` would send all 24 to `left`; least-busy must use both under concurrency.
    assert counts["left"] >= 4 and counts["right"] >= 4, counts


# --- the independence strategy -----------------------------------------------------------


@pytest.fixture(scope="module")
def trained_router(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("indep")
    data = _write_fixture(root / "data")
    out = root / "router.json"
    res = CliRunner().invoke(router_cli, ["train", "--data", str(data), "--strong", STRONG,
                                          "--weak", WEAK, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_independence_keeps_easy_prompts_in_house_and_sends_hard_ones_out(
    trained_router: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    router = IndependenceRouter.load(trained_router)
    rng = random.Random(7)
    easy = [_prompt(rng, w, 9000 + i) for i, w in enumerate(EASY[:3])]
    hard = [_prompt(rng, w, 9100 + i) for i, w in enumerate(HARD[:3])]
    easy_max = max(router.score(p) for p in easy)
    hard_min = min(router.score(p) for p in hard)
    assert easy_max < hard_min, "the fixture router must separate the two groups"
    threshold = (easy_max + hard_min) / 2

    with SimulatedVendor("openai", name="partner") as partner:
        gw = start_gateway({
            "providers": {
                "smollm": {"kind": "embedded"},
                "partner": {"kind": "openai-compatible", "base_url": partner.url,
                            "ownership": "external", "vendor": "partner-inc"},
            },
            "routes": {"assistant": {
                "strategy": "independence", "router": str(trained_router),
                "threshold": threshold,
                "targets": [{"provider": "partner", "model": "big-1"},
                            {"provider": "smollm", "model": "smollm2-135m-instruct"}]}},
        }, env={"EMANCIPATE_ADMIN_KEY": ADMIN}, wait_ready=True)

        def ask(prompt: str) -> httpx.Response:
            r = httpx.post(gw.url + "/v1/chat/completions", timeout=120, json={
                "model": "assistant", "max_tokens": 4,
                "messages": [{"role": "user", "content": prompt}]})
            assert r.status_code == 200, r.text
            return r

        for prompt in easy:
            r = ask(prompt)
            assert r.headers["x-emancipate-ownership"] == "in-house"
            assert r.headers["x-emancipate-provider"] == "smollm"
        for prompt in hard:
            r = ask(prompt)
            assert r.headers["x-emancipate-ownership"] == "external"
            assert r.headers["x-emancipate-provider"] == "partner"
        assert len(partner.received) == len(hard)

        doc = _request_path(gw, r.headers["x-request-id"])
        routing = [d for d in doc["decisions"] if d["stage"] == "routing"]
        assert routing and routing[0]["action"] == "external"
        assert "threshold" in routing[0]["reason"]
        assert doc["router_score"] == pytest.approx(router.score(hard[-1]), abs=1e-6)


def _request_path(gw: GatewayProcess, request_id: str) -> dict:
    """The ledger writes in the background: its record, once it is in."""
    with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN}"},
                      timeout=10) as admin:
        return ledger_record(admin, request_id)


# --- the router's safety net and its online estimate ----------------------------------------


def _known_router(path: Path, apgr: float, length_apgr: float) -> Path:
    """The length rule as a router file, with a held-out summary saying how it measured."""
    cal = {"threshold": [0.0, 0.5, 1.0], "inhouse_share": [0.0, 0.5, 1.0],
           "quality": [0.9, 0.8, 0.7], "gap_recovered": [1.0, 0.5, 0.0],
           "strong_quality": 0.9, "weak_quality": 0.7, "n": 100, "method": "test"}
    heldout = {"apgr": apgr, "length_apgr": length_apgr, "cpt50": 0.4,
               "method": "5-fold by file (unseen files)"}
    IndependenceRouter.length_rule(cal, meta={"heldout": heldout}).save(path)
    return path


def _readyz(gw: GatewayProcess) -> dict:
    r = httpx.get(gw.url + "/readyz", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_router_no_better_than_the_length_rule_is_flagged_at_start_up_and_in_readyz(
    two, tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    flagged = _known_router(tmp_path / "flagged.json", apgr=0.52, length_apgr=0.55)
    fine = _known_router(tmp_path / "fine.json", apgr=0.60, length_apgr=0.55)
    left, right = two
    providers = _providers(left, right)
    providers["right"]["ownership"] = "in-house"
    targets = [{"provider": "left", "model": "m"}, {"provider": "right", "model": "m"}]
    gw = start_gateway({"providers": providers, "routes": {
        "flagged": {"strategy": "independence", "router": str(flagged), "targets": targets},
        "fine": {"strategy": "independence", "router": str(fine), "targets": targets},
        "plain": {"targets": targets}}}, env={"EMANCIPATE_ADMIN_KEY": ADMIN})
    routers = _readyz(gw)["routers"]
    assert set(routers) == {"flagged", "fine"}  # only the independence routes
    assert routers["flagged"]["calibrated"] is False
    assert "0.520 is not better than the prompt-length rule's 0.550" in routers["flagged"][
        "warning"]
    assert routers["fine"]["calibrated"] is True and routers["fine"]["warning"] is None
    assert routers["fine"]["heldout"]["apgr"] == 0.6
    assert routers["fine"]["live"] == {"verdicts": 0, "window": 0, "words_seen": 0}
    log = gw.log()
    assert f"router {flagged}: held-out APGR 0.520 is not better" in log
    assert f"router {fine}:" not in log


def test_shadow_verdicts_teach_the_route_which_prompts_the_in_house_model_gets_wrong(
    tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    from tests.test_shadow import _providers as shadow_providers
    from tests.test_shadow import external_reply, inhouse_reply

    router = _known_router(tmp_path / "r.json", apgr=0.60, length_apgr=0.55)
    with SimulatedVendor("openai", name="bigco", reply=external_reply) as ext, \
            SimulatedVendor("openai", name="home", reply=inhouse_reply) as home:
        gw = start_gateway({
            "providers": shadow_providers(ext, home),
            "routes": {"chat": {
                "strategy": "independence", "router": str(router),
                "threshold": 0.0,  # everything goes out first, so everything is shadowed
                "shadow_rate": 1.0,
                "targets": [{"provider": "bigco", "model": "big-1"},
                            {"provider": "home", "model": "h-1"}]}},
        }, env={"EMANCIPATE_ADMIN_KEY": ADMIN})
        # the in-house vendor agrees on "easy" prompts and answers "Lyon" to the others;
        # both kinds have the same length, so the router alone cannot tell them apart
        n = 120
        for i in range(n):
            topic = "easy geography" if i % 2 else "hard astronomy"
            r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
                "model": "chat", "messages": [{"role": "user",
                                               "content": f"{topic} question number {i:03d}"}]})
            assert r.status_code == 200, r.text
        live = eventually(
            lambda: v if (v := _readyz(gw)["routers"]["chat"]["live"])["verdicts"] >= n else None,
            f"the router never learned {n} verdicts", timeout=60, interval=0.2)
    assert live["window"] == n and live["inhouse_ok"] == pytest.approx(0.5)
    # measured on each verdict before it was learned: the estimate learned the topics, the
    # router alone (same length for every prompt) is no better than a coin
    assert live["apgr"] > 0.65 and live["apgr"] > live["apgr_router_alone"] + 0.15, live
