"""Deeply nested JSON is a 400 naming the limit, never a 500 (issue 17 §6).

Nesting 300 deep used to reach the upstream serialiser (orjson stops at 255 levels) and
answer 500 `internal_error`; the depth is now checked once, at the edge, right after parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emancipate.protocol import OpenAIError
from emancipate.protocol.depth import check_depth
from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

LIMIT = 64
MSG = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> Any:
    """`depth` levels of alternating objects and lists around a string."""
    value: Any = "leaf"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.fixture(scope="module")
def vendor() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("openai", name="v") as v:
        yield v


@pytest.fixture(scope="module")
def gw(vendor: SimulatedVendor, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayProcess]:
    cfg = {
        "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                            "ownership": "external", "vendor": "v"}},
        "routes": {"m": {"targets": [{"provider": "v", "model": "m"}]}},
        "server": {"max_json_depth": LIMIT},
    }
    with GatewayProcess(cfg, tmp_path_factory.mktemp("depth")) as g:
        yield g


CASES = {
    "chat-unknown-field": ("/v1/chat/completions", {"model": "m", "messages": MSG,
                                                    "x_extra": nested(300)}, "x_extra"),
    "chat-json-schema": ("/v1/chat/completions", {
        "model": "m", "messages": MSG, "response_format": {
            "type": "json_schema", "json_schema": {"name": "s", "schema": nested(300)}}},
        "response_format"),
    "chat-message-field": ("/v1/chat/completions", {
        "model": "m", "messages": [{"role": "user", "content": "hi", "meta": nested(300)}]},
        "messages"),
    "embeddings-field": ("/v1/embeddings", {"model": "m", "input": "hi",
                                            "x_extra": nested(300)}, "x_extra"),
    "embeddings-input": ("/v1/embeddings", {"model": "m", "input": nested(300)}, "input"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_deep_json_is_a_400_naming_the_limit(gw: GatewayProcess, vendor: SimulatedVendor,
                                             case: str) -> None:
    path, body, param = CASES[case]
    vendor.clear()
    r = httpx.post(gw.url + path, json=body, timeout=30)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["code"] == "json_too_deep"
    assert err["param"] == param and f"{LIMIT} levels" in err["message"]
    assert vendor.received == []


def test_deeper_than_the_parser_allows_is_the_same_400(gw: GatewayProcess) -> None:
    raw = '{"model": "m", "messages": [], "x": ' + "[" * 2000 + "]" * 2000 + "}"
    r = httpx.post(gw.url + "/v1/chat/completions", content=raw, timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep", r.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_nesting_within_the_limit_is_served(gw: GatewayProcess, path: str) -> None:
    # The body itself is one level, so the field may hold LIMIT - 1.
    body = {"model": "m", "messages": MSG, "input": "hi", "x_extra": nested(LIMIT - 1)}
    r = httpx.post(gw.url + path, json=body, timeout=30)
    assert r.status_code == 200, r.text


def test_check_depth_counts_the_body_as_one_level() -> None:
    check_depth({"a": nested(LIMIT - 1)}, LIMIT)
    check_depth({"a": [1, "x", {"b": None}] * 1000}, 3)  # wide is fine
    with pytest.raises(OpenAIError) as info:
        check_depth({"ok": 1, "deep": nested(LIMIT)}, LIMIT)
    assert info.value.status == 400 and info.value.param == "deep"
