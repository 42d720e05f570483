"""Retries, failover, circuit breakers: each fault alone on a two-target route, then a soak."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from emancipate.testing import (
    CutStream,
    GarbageJSON,
    HangBeforeHeaders,
    HangMidStream,
    RateLimit,
    Reset,
    SimulatedVendor,
    SlowTokens,
    Status,
)
from tests.gateway_process import GatewayProcess


@pytest.fixture
def pair() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="flaky") as flaky, \
            SimulatedVendor("anthropic", name="steady") as steady:
        yield flaky, steady


def _config(flaky: SimulatedVendor, steady: SimulatedVendor, **flaky_extra: object) -> dict:
    return {
        "providers": {
            "flaky": {"kind": "openai-compatible", "base_url": flaky.url, "ownership": "external",
                      "vendor": "flaky-inc",
                      "timeouts": {"connect": 1, "first_token": 1, "total": 5},
                      "retries": {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.05,
                                  "max_retry_after": 2},
                      **flaky_extra},
            "steady": {"kind": "anthropic", "base_url": steady.url, "ownership": "in-house",
                       "vendor": "us"},
        },
        "routes": {"pair": {"strategy": "fallback", "targets": [
            {"provider": "flaky", "model": "f-1"}, {"provider": "steady", "model": "s-1"}]}},
        "auth": {"enabled": False},
        "server": {"public_health": True},  # _target_state reads /readyz's details
    }


@pytest.fixture
def gateway(pair, start_gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return start_gateway(_config(*pair))


def _ask(gw: GatewayProcess, text: str, stream: bool = False) -> tuple[str, dict[str, str]]:
    client = gw.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="pair", stream=True, messages=[{"role": "user", "content": text}]
        ) as resp:
            content = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
            return content, dict(resp.headers)
    raw = client.chat.completions.with_raw_response.create(
        model="pair", messages=[{"role": "user", "content": text}])
    return raw.parse().choices[0].message.content, dict(raw.headers)


FAULTS = [
    pytest.param(RateLimit(retry_after=0.05), id="429"),
    pytest.param(Status(500), id="500"),
    pytest.param(Status(502), id="502"),
    pytest.param(Status(503), id="503"),
    pytest.param(HangBeforeHeaders(3), id="hang-before-headers"),
    pytest.param(Reset(), id="reset"),
    pytest.param(GarbageJSON(), id="garbage-json"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_fails_over_to_the_healthy_target(gateway, pair, fault, stream) -> None:
    flaky, steady = pair
    flaky.inject(fault)
    text, headers = _ask(gateway, "is anyone there", stream=stream)
    assert text == "steady says: is anyone there"
    assert headers["x-emancipate-provider"] == "steady"
    attempts = int(headers["x-emancipate-attempts"])
    assert attempts >= 2  # the failed one(s) and the answer
    assert len(flaky.received) >= 1 and len(steady.received) == 1


@pytest.mark.parametrize("fault", [CutStream(after_events=0), HangMidStream(0, 3)],
                         ids=["cut-before-first-event", "hang-before-first-event"])
def test_stream_breaking_before_first_byte_fails_over(gateway, pair, fault) -> None:
    flaky, _ = pair
    flaky.inject(fault)
    text, headers = _ask(gateway, "hello stream", stream=True)
    assert text == "steady says: hello stream"
    assert headers["x-emancipate-provider"] == "steady"


@pytest.mark.parametrize("fault", [CutStream(after_events=3), HangMidStream(3, 3)],
                         ids=["cut-mid-stream", "hang-mid-stream"])
def test_stream_breaking_after_first_byte_is_an_error_event_not_a_truncation(
    gateway, pair, fault
) -> None:
    flaky, steady = pair
    flaky.inject(fault)
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "pair", "stream": True,
        "messages": [{"role": "user", "content": "one two three four five six"}],
    }) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-emancipate-provider"] == "flaky"
        body = resp.read().decode()
    assert "data: [DONE]" not in body
    last = body.strip().split("\n\n")[-1]
    assert '"code":"stream_interrupted"' in last
    assert len(steady.received) == 0
    # The official SDK raises on that event instead of returning a short answer.
    with pytest.raises(openai.APIError):
        _ask(gateway, "one two three four five six", stream=True)


def test_slow_tokens_are_not_a_failure(gateway, pair) -> None:
    flaky, steady = pair
    flaky.inject(SlowTokens(0.02))
    text, headers = _ask(gateway, "take your time", stream=True)
    assert text == "flaky says: take your time"
    assert headers["x-emancipate-attempts"] == "1"


def test_retry_after_is_honoured_on_the_same_target(gateway, pair) -> None:
    flaky, steady = pair
    flaky.inject(RateLimit(retry_after=0.2), times=1)
    text, headers = _ask(gateway, "again")
    assert text == "flaky says: again"  # waited, retried, served by the same target
    assert headers["x-emancipate-attempts"] == "2"
    assert len(steady.received) == 0


def test_retry_after_beyond_the_limit_fails_over_at_once(gateway, pair) -> None:
    flaky, steady = pair
    flaky.inject(RateLimit(retry_after=120))
    text, headers = _ask(gateway, "now")
    assert text == "steady says: now"
    assert headers["x-emancipate-attempts"] == "2"  # one try on flaky, no retry, then steady
    assert len(flaky.received) == 1


def test_every_target_rate_limited_is_a_429_with_the_smallest_retry_after(gateway, pair) -> None:
    """Apps that handle `RateLimitError` see one: not a 503 once every target refused."""
    flaky, steady = pair
    flaky.inject(RateLimit(retry_after=30))
    steady.inject(RateLimit(retry_after=7))
    client = gateway.client().with_options(max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="pair", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "upstream_rate_limited"
    assert info.value.response.headers["retry-after"] == "7"
    assert len(flaky.received) == 1 and len(steady.received) >= 1


def test_one_rate_limit_among_other_failures_is_not_a_429(gateway, pair) -> None:
    flaky, steady = pair
    flaky.inject(RateLimit(retry_after=30))
    steady.inject(Status(500))
    client = gateway.client().with_options(max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="pair", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502


def test_waits_between_attempts_stop_at_the_retry_budget(pair, start_gateway) -> None:
    """Retry-After within `max_retry_after` is honoured only while the request's budget lasts:
    with a budget of 0.1 s, a 1 s Retry-After is not waited for; the next target answers."""
    flaky, steady = pair
    config = _config(flaky, steady, retries={"attempts": 5, "max_retry_after": 5})
    config["server"]["retry_budget"] = 0.1
    gw = start_gateway(config)
    flaky.inject(RateLimit(retry_after=1))
    text, headers = _ask(gw, "budget")
    assert text == "steady says: budget"
    assert len(flaky.received) == 1  # no wait of 1 s, no second try on flaky


def test_client_errors_are_never_retried_nor_failed_over(gateway, pair) -> None:
    flaky, steady = pair
    flaky.inject(Status(400))
    with pytest.raises(openai.BadRequestError) as info:
        _ask(gateway, "bad")
    assert "flaky" in info.value.body["message"]
    assert len(flaky.received) == 1 and len(steady.received) == 0


def test_every_target_failing_gives_502_then_503_once_circuits_open(
    pair, start_gateway
) -> None:
    flaky, steady = pair
    config = _config(flaky, steady, breaker={"failures": 1, "window": 30, "cooldown": 60})
    config["providers"]["steady"]["breaker"] = {"failures": 1, "window": 30, "cooldown": 60}
    gw = start_gateway(config)
    flaky.inject(Status(500))
    steady.inject(Status(529))
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gw, "x")
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_error"
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gw, "x")
    assert info.value.status_code == 503
    assert info.value.body["code"] == "no_healthy_target"
    assert info.value.response.headers["retry-after"]
    assert httpx.get(gw.url + "/readyz").status_code == 503


def test_breaker_opens_and_closes(pair, start_gateway) -> None:
    flaky, steady = pair
    gw = start_gateway(_config(flaky, steady, retries={"attempts": 1},
                               breaker={"failures": 2, "window": 30, "cooldown": 0.5}))
    flaky.inject(Status(500))
    for _ in range(2):
        assert _ask(gw, "a")[1]["x-emancipate-provider"] == "steady"
    assert len(flaky.received) == 2
    state = _target_state(gw, "flaky/f-1")
    assert state == "open"
    assert _ask(gw, "b")[1]["x-emancipate-attempts"] == "1"  # flaky skipped while open
    assert len(flaky.received) == 2
    assert 'emancipate_target_up{state="open",target="flaky/f-1"} 1.0' in httpx.get(
        gw.url + "/metrics").text
    flaky.clear_faults()
    time.sleep(0.6)  # past the cooldown: the next request is the half-open probe
    text, headers = _ask(gw, "c")
    assert headers["x-emancipate-provider"] == "flaky" and text == "flaky says: c"
    assert _target_state(gw, "flaky/f-1") == "closed"


def _target_state(gw: GatewayProcess, target: str) -> str:
    ready = httpx.get(gw.url + "/readyz").json()
    return next(t["state"] for t in ready["targets"] if t["target"] == target)
