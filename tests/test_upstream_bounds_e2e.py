"""Bounded parameters and bounded upstream answers (issue 17 §5), through a started gateway.

One `/v1/embeddings` request with `dimensions: 1000000` took the gateway from 79 to 270 MB,
and upstream answers were read whole into memory. Here: parameters beyond what any target can
honour are 400s naming them, and an answer larger than `server.max_upstream_body_bytes` is a
502 naming the key (or fails over), whether its size is declared or only found by reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emancipate.testing import HugeBody, SimulatedVendor
from tests.gateway_process import GatewayProcess

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def vendors() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="v") as v, SimulatedVendor("openai", name="w") as w:
        yield v, w


@pytest.fixture(scope="module")
def gw(vendors: tuple[SimulatedVendor, SimulatedVendor],
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    v, w = vendors

    def provider(vendor: SimulatedVendor) -> dict[str, Any]:
        return {"kind": "openai-compatible", "base_url": vendor.url, "ownership": "external",
                "vendor": vendor.name, "context_window": 1000}

    cfg = {
        "server": {"max_upstream_body_bytes": LIMIT},
        "providers": {"v": provider(v), "w": provider(w)},
        "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]},
                   "pair": {"targets": [{"provider": "v", "model": "m"},
                                        {"provider": "w", "model": "m"}]}},
    }
    with GatewayProcess(cfg, tmp_path_factory.mktemp("bounds")) as g:
        yield g


def _post(gw: GatewayProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=60)


def _chat(gw: GatewayProcess, model: str = "chat", **extra: Any) -> httpx.Response:
    return _post(gw, "/v1/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": "hello"}], **extra})


def _assert_openai_error(r: httpx.Response, status: int, code: str, param: str | None = None
                         ) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert err["code"] == code and err["param"] == param, err
    return err


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_oversize_upstream_answer_is_a_502_naming_the_limit(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor],
        chunked: bool) -> None:
    v, _ = vendors
    v.clear_faults()
    v.inject(HugeBody(4 * LIMIT, chunked=chunked))
    err = _assert_openai_error(_chat(gw), 502, "upstream_error")
    assert "server.max_upstream_body_bytes" in err["message"] and str(LIMIT) in err["message"]
    # Refused at once, not retried on the same target: one request reached the vendor.
    v.clear()
    _assert_openai_error(_chat(gw), 502, "upstream_error")
    assert len(v.received) == 1
    v.clear_faults()
    assert _chat(gw).status_code == 200  # the gateway and its connection pool are fine


def test_oversize_answers_never_open_the_targets_circuit(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    """The request asked for too much, the target is fine: a client asking for huge answers
    must not take the target away from everyone (5 failures open a circuit)."""
    v, _ = vendors
    v.clear_faults()
    v.inject(HugeBody(4 * LIMIT), times=8)
    for _ in range(8):
        _assert_openai_error(_chat(gw), 502, "upstream_error")
    r = _chat(gw)
    assert r.status_code == 200 and r.headers["x-emancipate-provider"] == "v"


def test_an_oversize_answer_fails_over_to_the_next_target(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    v, _ = vendors
    v.clear_faults()
    v.inject(HugeBody(4 * LIMIT), times=1)
    r = _chat(gw, "pair")
    assert r.status_code == 200, r.text
    assert r.headers["x-emancipate-provider"] == "w"


def test_an_oversize_stream_event_is_an_error_not_a_buffer(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    v, _ = vendors
    v.clear_faults()
    v.inject(HugeBody(4 * LIMIT), times=1)
    err = _assert_openai_error(_chat(gw, stream=True), 502, "upstream_error")
    assert "server.max_upstream_body_bytes" in err["message"]


def test_an_embeddings_answer_over_the_limit_is_a_502(gw: GatewayProcess) -> None:
    r = _post(gw, "/v1/embeddings", {"model": "chat", "input": ["a"] * 10, "dimensions": 8192})
    err = _assert_openai_error(r, 502, "upstream_error")
    assert "server.max_upstream_body_bytes" in err["message"]
    r = _post(gw, "/v1/embeddings", {"model": "chat", "input": "a", "dimensions": 256})
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 256


def test_embedding_dimensions_are_bounded(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    v, _ = vendors
    v.clear()
    r = _post(gw, "/v1/embeddings", {"model": "chat", "input": "a", "dimensions": 1_000_000})
    err = _assert_openai_error(r, 400, "invalid_value", "dimensions")
    assert "8192" in err["message"]
    assert v.received == []


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_token_limit_beyond_every_targets_context_window_is_a_400(
        gw: GatewayProcess, vendors: tuple[SimulatedVendor, SimulatedVendor],
        param: str) -> None:
    v, _ = vendors
    v.clear()
    err = _assert_openai_error(_chat(gw, **{param: 5000}), 400, "unsupported_parameter", param)
    assert "context window of 1000 tokens" in err["message"]
    assert v.received == []
    assert _chat(gw, **{param: 100}).status_code == 200


def test_n_is_bounded_as_on_openai(gw: GatewayProcess) -> None:
    _assert_openai_error(_chat(gw, n=129), 400, "invalid_value", "n")
