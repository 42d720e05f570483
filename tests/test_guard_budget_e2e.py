"""One request cannot stall the gateway (issue 17 §1): adversarial bodies sent at the same
time as ordinary chat requests and `/healthz` probes, to a started gateway.

Large scans run off the event loop and a request over `guard.max_scan_bytes` is refused
before it is read; the assertions count answers (every ordinary request and probe is
answered 200, every adversarial one gets its answer or its error), never time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

ORDINARY = 50
PROBES = 100


AWS = "AKIA" + "W7NQ4ZK2RX3BT5MV"


def _config(outside: SimulatedVendor, inside: SimulatedVendor) -> dict[str, Any]:
    return {
        "providers": {
            "outside": {"kind": "openai-compatible", "base_url": outside.url,
                        "ownership": "external", "vendor": "bigmodel"},
            "inside": {"kind": "openai-compatible", "base_url": inside.url,
                       "ownership": "in-house", "vendor": "us"},
        },
        "routes": {
            "external": {"targets": [{"provider": "outside", "model": "big-1"}]},
            "mixed": {"strategy": "fallback", "targets": [
                {"provider": "outside", "model": "big-1"},
                {"provider": "inside", "model": "own-1"}]},
        },
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("guard-budget")
    outside = SimulatedVendor("openai", name="outside").start()
    inside = SimulatedVendor("openai", name="inside").start()
    gw = GatewayProcess(_config(outside, inside), workdir)
    try:
        yield gw.start()
    finally:
        gw.stop()
        outside.stop()
        inside.stop()


def _chat(model: str, content: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


ADVERSARIAL = {
    # ~200 KB of spaced digit pairs: the pattern that took the guard minutes (issue 17 §1)
    "spaced digit pairs": (_chat("external", "12 34 56 78 90 " * 13_700), 200, None),
    # phone-number look-alikes, 128 KB: more rejected candidates than the personal-data
    # scan validates for that size, so it cannot vouch for the rest: refused
    "phone look-alikes": (_chat("external", "+33 6 12 34 56 7 " * 7_500), 413,
                          "scan_budget_exceeded"),
    # 2 MB of text: over the 1 MiB scan budget, refused before it is read
    "2 MB of text": (_chat("external", "lorem ipsum dolor sit amet " * 78_000), 413,
                     "scan_budget_exceeded"),
    # over budget too, in many messages
    "many messages": ({"model": "mixed", "messages": [
        {"role": "user", "content": "x" * 20_000} for _ in range(60)]}, 413,
        "scan_budget_exceeded"),
}


async def _load(url: str) -> tuple[list[int], list[int], dict[str, httpx.Response]]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def probes() -> list[int]:
            codes = []
            for _ in range(PROBES):
                codes.append((await client.get("/healthz")).status_code)
                await asyncio.sleep(0.01)
            return codes

        adversarial = [client.post("/v1/chat/completions", json=body)
                       for body, _, _ in ADVERSARIAL.values()]
        ordinary = [client.post("/v1/chat/completions",
                                json=_chat("external", f"Summarise item {i} of the plan."))
                    for i in range(ORDINARY)]
        results = await asyncio.gather(probes(), *adversarial, *ordinary)
    probe_codes: list[int] = results[0]
    answers = dict(zip(ADVERSARIAL, results[1:1 + len(ADVERSARIAL)], strict=True))
    ordinary_codes = [r.status_code for r in results[1 + len(ADVERSARIAL):]]
    return probe_codes, ordinary_codes, answers


def test_adversarial_bodies_do_not_keep_ordinary_requests_or_probes_from_being_answered(
        gateway: GatewayProcess) -> None:
    probe_codes, ordinary_codes, answers = asyncio.run(_load(gateway.url))
    assert probe_codes.count(200) == PROBES
    assert ordinary_codes.count(200) == ORDINARY
    for name, (_, status, code) in ADVERSARIAL.items():
        resp = answers[name]
        assert resp.status_code == status, (name, resp.text[:300])
        if code is not None:
            err = resp.json()["error"]
            assert err["code"] == code and err["param"] == "messages"
            assert ("guard.max_scan_bytes" in err["message"]
                    or "number-like candidates" in err["message"])


def test_a_request_over_budget_is_refused_with_an_openai_error(
        gateway: GatewayProcess) -> None:
    resp = httpx.post(gateway.url + "/v1/chat/completions", timeout=120,
                      json=_chat("mixed", "word " * 250_000))
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert err["code"] == "scan_budget_exceeded" and err["type"] == "invalid_request_error"
    assert "Send less text in one request." in err["message"]


# --- guard.over_budget: in_house, guard.unknown_fields: drop -------------------------------


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[GatewayProcess, SimulatedVendor, SimulatedVendor]]:
    workdir = tmp_path_factory.mktemp("guard-lenient")
    outside = SimulatedVendor("openai", name="outside").start()
    inside = SimulatedVendor("openai", name="inside").start()
    cfg = _config(outside, inside)
    cfg["guard"] = {"max_scan_bytes": 65_536, "over_budget": "in_house",
                    "unknown_fields": "drop"}
    gw = GatewayProcess(cfg, workdir)
    try:
        yield gw.start(), outside, inside
    finally:
        gw.stop()
        outside.stop()
        inside.stop()


def test_over_budget_in_house_sends_the_request_unscanned_to_in_house_targets_only(
        lenient: tuple[GatewayProcess, SimulatedVendor, SimulatedVendor]) -> None:
    gw, outside, inside = lenient
    outside.clear()
    inside.clear()
    big = _chat("mixed", "lorem ipsum dolor " * 5_000)
    resp = httpx.post(gw.url + "/v1/chat/completions", json=big, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-emancipate-ownership"] == "in-house"
    assert outside.received == [] and len(inside.received) == 1
    resp = httpx.post(gw.url + "/v1/chat/completions", timeout=60,
                      json={**big, "model": "external"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "scan_budget_exceeded"
    assert "no in-house target" in resp.json()["error"]["message"]
    assert outside.received == []


def test_unknown_fields_are_dropped_before_the_vendor_under_drop(
        lenient: tuple[GatewayProcess, SimulatedVendor, SimulatedVendor]) -> None:
    gw, outside, _ = lenient
    outside.clear()
    body = {"model": "external", "x_note": f"key {AWS}", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello", "x_part": AWS}],
         "x_meta": AWS}]}
    resp = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    [received] = outside.received
    assert AWS.encode() not in received.body
    assert "x_note" not in received.json
    assert received.json["messages"][0]["content"][0] == {"type": "text", "text": "hello"}


def _invalid_phone_lookalikes(n: int = 2_000) -> str:
    """Thousands of international numbers libphonenumber rejects: each rejection costs the
    personal-data scan a validation, and past its budget the rest is not read."""
    rnd = random.Random(3)
    return "\n".join(f"item {i}: +{rnd.randint(1, 99)} {rnd.randint(100, 999)} "
                     f"{rnd.randint(1_000_000, 9_999_999)}" for i in range(n))


def test_a_text_the_personal_scan_cannot_finish_is_never_sent_to_an_external_vendor(
        gateway: GatewayProcess,
        lenient: tuple[GatewayProcess, SimulatedVendor, SimulatedVendor]) -> None:
    body = _chat("external", _invalid_phone_lookalikes())
    resp = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=120)
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert err["code"] == "scan_budget_exceeded" and "number-like candidates" in err["message"]
    gw, outside, inside = lenient  # over_budget: in_house
    outside.clear()
    inside.clear()
    resp = httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                      json={**body, "model": "mixed"})
    assert resp.status_code == 200, resp.text
    assert outside.received == [] and len(inside.received) == 1
