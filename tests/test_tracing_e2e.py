"""Traces of a started gateway, received by an OTLP collector started by the test: the tree of
a failover request under the client's trace, its attributes, the trace context the upstreams
receive, and no secret text anywhere; nothing at all when tracing is off."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from emancipate.testing import SimulatedVendor, Status
from tests.gateway_process import GatewayProcess
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan

AWS_KEY = "AKIAZ7Q4XK2M9PLW3RTE"  # the guard detects it (class secret)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
STAGES = ["emancipate.auth", "emancipate.guard", "emancipate.policy", "emancipate.routing",
          "chat f-1", "chat s-1", "emancipate.ledger"]
SERVER, CLIENT, ERROR = 2, 3, 2  # the proto's SpanKind and StatusCode values


@pytest.fixture
def pair() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="flaky") as flaky, \
            SimulatedVendor("anthropic", name="steady") as steady:
        yield flaky, steady


def _config(flaky: SimulatedVendor, steady: SimulatedVendor,
            tracing: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "providers": {
            "flaky": {"kind": "openai-compatible", "base_url": flaky.url,
                      "ownership": "external", "vendor": "flaky-inc", "retries": {"attempts": 1}},
            "steady": {"kind": "anthropic", "base_url": steady.url, "ownership": "in-house",
                       "vendor": "us"},
        },
        "routes": {"pair": {"targets": [{"provider": "flaky", "model": "f-1"},
                                        {"provider": "steady", "model": "s-1"}]}},
        # the external target may see a secret only as a placeholder
        "policy": {"rules": [{"name": "secrets-redacted", "class": "secret",
                              "action": "redact"}]},
        "ledger": {"flush_interval": 0.05},
    }
    if tracing is not None:
        config["tracing"] = tracing
    return config


def _ask(gw: GatewayProcess, text: str, **extra: Any) -> httpx.Response:
    resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      headers={"traceparent": TRACEPARENT, "tracestate": "client=7"},
                      json={"model": "pair", "messages": [{"role": "user", "content": text}],
                            **extra})
    assert resp.status_code == 200, resp.text
    return resp


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def _flags(traceparent: str) -> int:
    """The trace flags of a W3C traceparent (bit 0: sampled)."""
    return int(traceparent.rsplit("-", 1)[1], 16)


def _assert_never_in(spans_of: OTLPReceiver, *texts: str) -> None:
    """Neither in any decoded attribute or event, nor anywhere in the exported bytes."""
    assert spans_of.bodies, "nothing was exported"
    for text in texts:
        assert not any(text.encode() in body for body in spans_of.bodies), text
        for span in spans_of.spans:
            assert text not in repr(span.attributes) and text not in repr(span.events), span.name


def test_a_failover_request_is_one_tree_under_the_client_trace_and_holds_no_secret(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, steady = pair
    with OTLPReceiver("http") as collector:
        gw = start_gateway(_config(flaky, steady, {
            "enabled": True, "endpoint": collector.endpoint, "capture_content": True}))
        flaky.inject(Status(503), times=1)
        resp = _ask(gw, f"my key is {AWS_KEY}, is it valid?", max_tokens=50, temperature=0.2)
        assert resp.headers["x-emancipate-provider"] == "steady"
        gw.stop()  # SIGTERM: the gateway exports what is pending before it exits

    assert set(collector.paths) == {"/v1/traces"}
    spans = _by_name(collector.spans)
    request = spans["chat pair"]
    assert sorted(spans) == sorted(["chat pair", *STAGES])
    # the client's span is the request's parent; every stage is the request's child
    assert {s.trace_id for s in spans.values()} == {TRACE_ID}
    assert request.parent_span_id == CLIENT_SPAN and request.kind == SERVER
    for name in STAGES:
        assert spans[name].parent_span_id == request.span_id, name

    assert request.resource["service.name"] == "emancipate"
    attrs = request.attributes
    assert {k: attrs[k] for k in (
        "emancipate.api", "gen_ai.operation.name", "gen_ai.request.model",
        "gen_ai.request.max_tokens", "gen_ai.request.temperature", "gen_ai.response.model",
        "gen_ai.provider.name", "emancipate.target", "emancipate.vendor",
        "emancipate.ownership", "emancipate.attempts", "emancipate.attempt.outcome",
        "emancipate.policy.action", "emancipate.guard.findings.secret",
        "http.response.status_code")} == {
        "emancipate.api": "chat.completions", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "pair", "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.2, "gen_ai.response.model": "s-1",
        "gen_ai.provider.name": "anthropic", "emancipate.target": "steady/s-1",
        "emancipate.vendor": "us", "emancipate.ownership": "in-house",
        "emancipate.attempts": 2, "emancipate.attempt.outcome": "ok",
        "emancipate.policy.action": "redact", "emancipate.guard.findings.secret": 1,
        "http.response.status_code": 200}
    assert attrs["emancipate.request_id"] == resp.headers["x-request-id"]
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert spans["emancipate.guard"].attributes["emancipate.guard.findings.secret"] == 1
    assert spans["emancipate.policy"].attributes["emancipate.policy.rules"] == [
        "secrets-redacted"]

    failed, served = spans["chat f-1"], spans["chat s-1"]
    assert failed.kind == served.kind == CLIENT
    assert failed.status == ERROR and failed.attributes["http.response.status_code"] == 503
    assert (failed.attributes["emancipate.attempt.outcome"],
            failed.attributes["emancipate.ownership"], failed.attributes["emancipate.attempt"],
            failed.attributes["gen_ai.provider.name"]) == (
        "upstream_5xx", "external", 1, "flaky-inc")
    assert (served.attributes["emancipate.attempt.outcome"],
            served.attributes["emancipate.attempt"]) == ("ok", 2)

    # each upstream received the trace context of its own attempt, in the client's trace
    (to_flaky,), (to_steady,) = flaky.received, steady.received
    assert to_flaky.headers["traceparent"] == f"00-{TRACE_ID}-{failed.span_id}-01"
    assert to_steady.headers["traceparent"] == f"00-{TRACE_ID}-{served.span_id}-01"
    assert to_steady.headers["tracestate"] == "client=7"

    # capture_content: the exchange is there, masked as the ledger masks it; the key never
    assert "[secret:" in attrs["gen_ai.input.messages"]
    assert "is it valid?" in attrs["gen_ai.input.messages"]
    assert "[secret:" in attrs["gen_ai.output.messages"]
    _assert_never_in(collector, AWS_KEY)


def test_otel_variables_alone_export_a_stream_over_grpc_without_any_text(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, steady = pair
    with OTLPReceiver("grpc") as collector:
        gw = start_gateway(_config(flaky, steady, None), env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SERVICE_NAME": "gw-under-test"})
        flaky.inject(Status(503), times=1)
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0,
                               default_headers={"traceparent": TRACEPARENT})
        stream = client.chat.completions.create(
            model="pair", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"rotate {AWS_KEY} quietly please"}])
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.startswith("steady says:")
        gw.stop()

    assert collector.paths and set(collector.paths) == {"grpc"}
    spans = _by_name(collector.spans)
    assert sorted(spans) == sorted(["chat pair", *STAGES])
    request = spans["chat pair"]
    assert request.resource["service.name"] == "gw-under-test"
    assert request.parent_span_id == CLIENT_SPAN
    assert request.attributes["emancipate.stream"] is True
    assert request.attributes["gen_ai.usage.output_tokens"] > 0
    assert "gen_ai.input.messages" not in request.attributes  # capture_content is off
    assert steady.received[0].headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    _assert_never_in(collector, AWS_KEY, "quietly", "steady says")


def test_propagate_in_house_keeps_the_trace_context_from_external_vendors(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, steady = pair
    with OTLPReceiver("http") as collector:
        gw = start_gateway(_config(flaky, steady, {
            "enabled": True, "endpoint": collector.endpoint, "propagate": "in-house"}))
        flaky.inject(Status(503), times=1)
        _ask(gw, "hello")
        gw.stop()
    assert "traceparent" not in flaky.received[0].headers  # external
    assert "tracestate" not in flaky.received[0].headers
    assert steady.received[0].headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert len(collector.spans) == len(STAGES) + 1  # no finding: the guard span all the same


def test_tracing_off_exports_nothing_and_sends_no_trace_context(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, steady = pair
    with OTLPReceiver("http") as collector:
        gw = start_gateway(_config(flaky, steady, {"enabled": False}),
                           env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint})
        flaky.inject(Status(503), times=1)
        _ask(gw, "hello")
        gw.stop()
    assert collector.paths == [] and collector.spans == []
    for req in (*flaky.received, *steady.received):
        assert "traceparent" not in req.headers


def test_tracing_off_serves_without_opentelemetry_importable(
        pair: tuple[SimulatedVendor, SimulatedVendor], tmp_path: Path,
        start_gateway: Callable[..., GatewayProcess]) -> None:
    """Free when off: the process cannot import opentelemetry at all, and serves."""
    flaky, steady = pair
    blocker = tmp_path / "no-otel"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['opentelemetry'] = None  # any import of it fails\n")
    path = os.pathsep.join(p for p in (str(blocker), os.environ.get("PYTHONPATH")) if p)
    gw = start_gateway(_config(flaky, steady, None), env={"PYTHONPATH": path})
    flaky.inject(Status(503), times=1)
    assert _ask(gw, "hello").headers["x-emancipate-provider"] == "steady"
    # the blocker works: the same process with tracing on cannot start
    with pytest.raises(RuntimeError, match="opentelemetry"):
        start_gateway(_config(flaky, steady, {"enabled": True}), env={"PYTHONPATH": path})


def test_a_sampled_out_request_records_nothing_but_still_passes_its_context_upstream(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, steady = pair
    with OTLPReceiver("http") as collector:
        gw = start_gateway(_config(flaky, steady, {
            "enabled": True, "endpoint": collector.endpoint, "sample_ratio": 0}))
        resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
            "model": "pair", "messages": [{"role": "user", "content": "not traced"}]})
        assert resp.status_code == 200, resp.text
        _ask(gw, "traced: the client sampled it")  # parent-based: its sampled flag wins
        gw.stop()
    unsampled, sampled = (req.headers["traceparent"] for req in flaky.received)
    assert _flags(unsampled) & 1 == 0  # sampled out, and the upstream is told so
    assert not unsampled.startswith(f"00-{TRACE_ID}-")
    assert sampled.startswith(f"00-{TRACE_ID}-") and _flags(sampled) & 1 == 1
    assert {s.trace_id for s in collector.spans} == {TRACE_ID}
    assert len(collector.spans) == 7  # request, auth, guard, policy, routing, attempt, ledger


def test_every_api_is_a_request_span_named_by_its_wire(
        start_gateway: Callable[..., GatewayProcess]) -> None:
    with SimulatedVendor("openai", name="own") as own, OTLPReceiver("http") as collector:
        gw = start_gateway({
            "providers": {"own": {"kind": "openai-compatible", "base_url": own.url,
                                  "ownership": "in-house", "vendor": "us"}},
            "routes": {"m": {"targets": [{"provider": "own", "model": "m-1"}]}},
            "tracing": {"enabled": True, "endpoint": collector.endpoint}})
        calls: list[tuple[str, dict[str, Any], dict[str, str]]] = [
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, {}),
            ("/v1/responses", {"input": "hi"}, {}),
            ("/v1/messages", {"max_tokens": 20, "messages": [{"role": "user",
                                                              "content": "hi"}]},
             {"anthropic-version": "2023-06-01"}),
            ("/v1/completions", {"prompt": "hi", "max_tokens": 20}, {}),
            ("/v1/embeddings", {"input": "hi"}, {}),
        ]
        for path, body, headers in calls:
            resp = httpx.post(gw.url + path, json={"model": "m", **body}, timeout=30,
                              headers={"traceparent": TRACEPARENT, **headers})
            assert resp.status_code == 200, (path, resp.text)
        resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
            "model": "no-such-model-AKIA", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 404
        gw.stop()

    requests = {s.attributes["emancipate.api"]: s for s in collector.spans
                if s.parent_span_id == CLIENT_SPAN}
    operations = {api: (s.name, s.attributes["gen_ai.operation.name"])
                  for api, s in requests.items()}
    assert operations == {
        "chat.completions": ("chat m", "chat"), "responses": ("chat m", "chat"),
        "messages": ("chat m", "chat"), "completions": ("text_completion m", "text_completion"),
        "embeddings": ("embeddings m", "embeddings")}
    children = {s.name for s in collector.spans
                if s.parent_span_id == requests["embeddings"].span_id}
    assert "embeddings m-1" in children
    # a model the gateway does not serve is not repeated: its name could be anything
    unknown = [s for s in collector.spans if s.parent_span_id == ""]
    assert len(unknown) == 1 and unknown[0].name == "chat"
    assert unknown[0].attributes["gen_ai.request.model"] == "other"
    assert unknown[0].attributes["error.type"] == "model_not_found"
    assert unknown[0].attributes["http.response.status_code"] == 404
    _assert_never_in(collector, "no-such-model")


def test_a_cache_hit_is_a_request_span_without_attempts_saying_hit(
        start_gateway: Callable[..., GatewayProcess]) -> None:
    with SimulatedVendor("openai", name="own") as own, OTLPReceiver("http") as collector:
        gw = start_gateway({
            "providers": {"own": {"kind": "openai-compatible", "base_url": own.url,
                                  "ownership": "external", "vendor": "them"}},
            "routes": {"m": {"cache": {"ttl": "1h"},
                             "targets": [{"provider": "own", "model": "m-1"}]}},
            "tracing": {"enabled": True, "endpoint": collector.endpoint}})
        seen = [_ask_model(gw, "m").headers["x-emancipate-cache"] for _ in range(2)]
        assert seen == ["miss", "hit"]
        gw.stop()
    requests = sorted((s for s in collector.spans if s.parent_span_id == CLIENT_SPAN),
                      key=lambda s: s.attributes["emancipate.cache"], reverse=True)
    assert [s.attributes["emancipate.cache"] for s in requests] == ["miss", "hit"]
    miss, hit = requests
    assert miss.attributes["emancipate.attempts"] == 1
    assert hit.attributes["emancipate.attempts"] == 0
    assert not [s for s in collector.spans
                if s.parent_span_id == hit.span_id and s.name.startswith("chat ")]
    assert len(own.received) == 1


def _ask_model(gw: GatewayProcess, model: str) -> httpx.Response:
    resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      headers={"traceparent": TRACEPARENT}, json={
                          "model": model, "temperature": 0,
                          "messages": [{"role": "user", "content": "the capital of France?"}]})
    assert resp.status_code == 200, resp.text
    return resp


def test_a_request_the_policy_blocks_ends_at_a_failed_policy_span(
        pair: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    flaky, _ = pair
    with OTLPReceiver("http") as collector:
        gw = start_gateway({
            "providers": {"flaky": {"kind": "openai-compatible", "base_url": flaky.url,
                                    "ownership": "external", "vendor": "flaky-inc"}},
            "routes": {"out": {"targets": [{"provider": "flaky", "model": "f-1"}]}},
            "tracing": {"enabled": True, "endpoint": collector.endpoint,
                        "capture_content": True}})
        resp = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
            "model": "out", "messages": [{"role": "user", "content": f"my key is {AWS_KEY}"}]})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "policy_blocked"
        gw.stop()
    spans = _by_name(collector.spans)
    assert sorted(spans) == sorted(["chat out", "emancipate.auth", "emancipate.guard",
                                    "emancipate.policy", "emancipate.ledger"])
    policy, request = spans["emancipate.policy"], spans["chat out"]
    assert policy.status == ERROR and policy.attributes["error.type"] == "policy_blocked"
    assert request.attributes["error.type"] == "policy_blocked"
    assert request.attributes["http.response.status_code"] == 403
    assert request.attributes["emancipate.attempts"] == 0
    assert not flaky.received
    _assert_never_in(collector, AWS_KEY)
