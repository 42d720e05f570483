"""Anthropic's Messages API through a started gateway, with the official `anthropic` SDK.

Against the in-house embedded model (the defaults, no config) and against simulated vendors
of both wire kinds (an OpenAI-compatible one and an Anthropic one): plain, streamed (the SDK's
`messages.stream` and `stream=True`, and the raw named events), tools with a tool_result round
trip, count_tokens, failover and a break mid-stream, virtual keys by `x-api-key` and bearer,
the guard and policy on Anthropic-only fields (a `tool_result`, the system prompt), and bad
input in Anthropic's error envelope.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from emancipate.api.messages import (
    MESSAGES,
    Asked,
    BlockStream,
    chat_request,
    message_of,
    parse_request,
)
from emancipate.protocol import OpenAIError
from emancipate.testing import CutStream, RateLimit, SimulatedVendor, Status
from tests.gateway_process import GatewayProcess
from tests.polling import ledger_record

ADMIN_KEY = "admin-" + "messages-api-7e21"
AWS_KEY = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK"  # "%PDF-1.4…"
GITHUB_TOKEN = "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                                for _ in range(36))
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


def _client(gw: GatewayProcess, api_key: str = "unused", **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=api_key, max_retries=0, timeout=60,
                               **kwargs)


def _assert_anthropic_error(resp: httpx.Response, status: int, kind: str) -> str:
    """The envelope api.anthropic.com sends; returns the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == "error" and set(body) == {"type", "error"}, body
    assert body["error"]["type"] == kind, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert resp.headers["x-request-id"].startswith("req_")
    return str(body["error"]["message"])


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event; each must name its type on the `event:` line."""
    out = []
    for raw in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in raw.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"], raw
        out.append((lines["event"], data))
    return out


# --- the in-house embedded model ----------------------------------------------------------


def test_create_on_the_embedded_model_answers_a_message(embedded_gateway: GatewayProcess
                                                         ) -> None:
    raw = _client(embedded_gateway).messages.with_raw_response.create(
        model="default", max_tokens=8, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "Say hello."},
                  {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": [{"type": "text", "text": "Again, please."}]}])
    assert raw.headers["x-emancipate-provider"] == "embedded"
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == "default"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens") and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 8


def test_messages_stream_on_the_embedded_model_accumulates_the_text(
        embedded_gateway: GatewayProcess) -> None:
    with _client(embedded_gateway).messages.stream(
            model="in-house", max_tokens=6,
            messages=[{"role": "user", "content": "Count to three."}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text and final.content[0].text.strip()
    assert final.model == "in-house" and final.stop_reason in ("end_turn", "max_tokens")
    assert 0 < final.usage.output_tokens <= 6 and final.usage.input_tokens > 0


def test_the_raw_stream_is_anthropics_named_event_sequence(embedded_gateway: GatewayProcess
                                                           ) -> None:
    with httpx.stream("POST", embedded_gateway.url + "/v1/messages", timeout=60,
                      headers={"anthropic-version": "2023-06-01"},
                      json={"model": "default", "max_tokens": 5, "stream": True,
                            "messages": [{"role": "user", "content": "Hi"}]}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = _events(resp.read().decode())
    names = [name for name, _ in events]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["model"] == "default" and start["content"] == [] and start["id"].startswith(
        "msg_")
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    assert all(d["delta"]["type"] == "text_delta" for n, d in events if n ==
               "content_block_delta")
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert 0 < delta["usage"]["output_tokens"] <= 5


def test_a_tool_result_history_reaches_the_embedded_model_as_text(
        embedded_gateway: GatewayProcess) -> None:
    message = _client(embedded_gateway).messages.create(
        model="default", max_tokens=6, messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 C"}]}])
    assert message.content[0].type == "text" and message.content[0].text.strip()


def test_count_tokens_estimates_what_admission_charges(embedded_gateway: GatewayProcess
                                                        ) -> None:
    client = _client(embedded_gateway)
    text = "Tell me about the weather in Paris in spring, please."
    small = client.messages.count_tokens(model="default",
                                         messages=[{"role": "user", "content": text}])
    assert small.input_tokens == len(text) // 4
    larger = client.messages.count_tokens(model="default", system="You are terse.",
                                          tools=[WEATHER],  # type: ignore[list-item]
                                          messages=[{"role": "user", "content": text}])
    assert larger.input_tokens > small.input_tokens
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.count_tokens(model="claude-nope",
                                     messages=[{"role": "user", "content": text}])
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


# --- bad input ----------------------------------------------------------------------------


def _post(gw: GatewayProcess, content: bytes | str, path: str = "/v1/messages",
          **headers: str) -> httpx.Response:
    return httpx.post(gw.url + path, content=content, timeout=30,
                      headers={"content-type": "application/json", **headers})


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_malformed_json_is_an_anthropic_invalid_request(embedded_gateway: GatewayProcess,
                                                        path: str) -> None:
    message = _assert_anthropic_error(_post(embedded_gateway, b'{"model": "default",', path),
                                      400, "invalid_request_error")
    assert "not valid JSON" in message


@pytest.mark.parametrize(("body", "named"), [
    ({"model": "default", "messages": [{"role": "user", "content": "hi"}]}, "'max_tokens'"),
    ({"model": "default", "max_tokens": "5", "messages": [{"role": "user", "content": "hi"}]},
     "'max_tokens'"),
    ({"model": "default", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
     "'messages[0].role'"),
    ({"model": "default", "max_tokens": 5, "temperature": 1.5,
      "messages": [{"role": "user", "content": "hi"}]}, "'temperature'"),
    ({"model": "default", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}]},
     "'messages[0].content[0]'"),
    ({"model": "default", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": PDF}}]}]}, "takes no 'file'"),
    ({"model": "default", "max_tokens": 5, "mcp_servers": [], "context_management": {},
      "messages": [{"role": "user", "content": "hi"}]}, "'mcp_servers'"),
    ({"model": "default", "max_tokens": 5, "tools": [
        {"type": "web_search_20250305", "name": "web_search"}],
      "messages": [{"role": "user", "content": "hi"}]}, "'tools[0]'"),
], ids=["missing-max-tokens", "string-max-tokens", "system-role", "temperature-above-1",
        "url-document", "pdf-on-the-embedded-model", "unknown-field", "server-tool"])
def test_wrong_input_is_a_400_naming_the_field(embedded_gateway: GatewayProcess,
                                               body: dict[str, Any], named: str) -> None:
    message = _assert_anthropic_error(_post(embedded_gateway, json.dumps(body)), 400,
                                      "invalid_request_error")
    assert named in message


def test_a_wrong_path_or_method_answers_an_anthropic_client_in_its_envelope(
        embedded_gateway: GatewayProcess) -> None:
    version = {"anthropic-version": "2023-06-01"}
    gone = httpx.get(embedded_gateway.url + "/v1/messages", headers=version, timeout=30)
    assert gone.status_code == 405 and gone.json()["type"] == "error"
    assert gone.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.post(embedded_gateway.url + "/v1/message", headers=version, timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"] == {"type": "not_found_error",
                                       "message": missing.json()["error"]["message"]}
    assert "/v1/message" in missing.json()["error"]["message"]


def test_an_unknown_model_is_not_found_naming_the_usable_ones(
        embedded_gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        _client(embedded_gateway).messages.create(
            model="claude-sonnet-4-5", max_tokens=5,
            messages=[{"role": "user", "content": "hi"}])
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert "claude-sonnet-4-5" in message and "in-house" in message


def test_thinking_and_context_management_are_accepted_and_ignored(
        embedded_gateway: GatewayProcess) -> None:
    message = _client(embedded_gateway).messages.create(
        model="default", max_tokens=5, thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in message.content] == ["text"]


# --- simulated vendors, virtual keys, guard and policy ------------------------------------


class Env:
    def __init__(self, gw: GatewayProcess, key: str, vendors: dict[str, SimulatedVendor]
                 ) -> None:
        self.gw, self.key, self.vendors = gw, key, vendors
        self.client = _client(gw, api_key=key)

    def clear(self) -> None:
        for sim in self.vendors.values():
            sim.clear()
            sim.clear_faults()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    vendors = {"oa": SimulatedVendor("openai", name="oa"),
               "an": SimulatedVendor("anthropic", name="an", api_key="sk-ant-of-the-gateway"),
               "inside": SimulatedVendor("openai", name="inside"),
               "flaky": SimulatedVendor("openai", name="flaky"),
               "down": SimulatedVendor("openai", name="down"),
               "anflaky": SimulatedVendor("anthropic", name="anflaky")}
    for sim in vendors.values():
        sim.start()

    def external(name: str, kind: str = "openai-compatible", **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "base_url": vendors[name].url, "ownership": "external",
                "vendor": f"{name}-inc", "retries": {"attempts": 1}, **extra}

    config = {
        "providers": {
            "oa": external("oa"),
            "flaky": external("flaky", breaker={"failures": 100}),  # faults on purpose
            "down": external("down", breaker={"failures": 1, "cooldown": 600}),
            "anflaky": external("anflaky", "anthropic", breaker={"failures": 100}),
            "an": external("an", "anthropic", api_key_env="AN_KEY"),
            "inside": {"kind": "openai-compatible", "base_url": vendors["inside"].url,
                       "ownership": "in-house", "vendor": "us"},
        },
        "routes": {
            "claude-sonnet-4-5": {"targets": [{"provider": "an", "model": "an-sonnet"}]},
            "gpt-4o": {"targets": [{"provider": "oa", "model": "oa-4o"}]},
            "claude-or-inhouse": {"targets": [{"provider": "an", "model": "an-sonnet"},
                                              {"provider": "inside", "model": "own-1"}]},
            "failover": {"targets": [{"provider": "flaky", "model": "f-1"},
                                     {"provider": "an", "model": "an-sonnet"}]},
            "flaky-only": {"targets": [{"provider": "flaky", "model": "f-1"}]},
            "down-only": {"targets": [{"provider": "down", "model": "d-1"}]},
            "anthropic-flaky-only": {"targets": [{"provider": "anflaky", "model": "af-1"}]},
        },
        "auth": {"enabled": True},
        "ledger": {"flush_interval": 0.05},
        "policy": {"rules": [{"name": "tokens-redacted", "class": "secret",
                              "detector": "github_token", "action": "redact"}]},
    }
    gw = GatewayProcess(config, tmp_path_factory.mktemp("messages"),
                        env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY, "AN_KEY": "sk-ant-of-the-gateway"})
    try:
        gw.start()
        created = httpx.post(gw.url + "/admin/keys", json={"name": "agent"}, timeout=30,
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert created.status_code == 201, created.text
        yield Env(gw, created.json()["key"], vendors)
    finally:
        gw.stop()
        for sim in vendors.values():
            sim.stop()


def _record(env: Env, request_id: str) -> dict[str, Any]:
    """The ledger's record of one request (written a fraction of a second later)."""
    admin = httpx.Client(base_url=env.gw.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                         timeout=30)
    return ledger_record(admin, request_id)


def _never_received(vendor: SimulatedVendor, value: str) -> None:
    for req in vendor.received:
        assert value.encode() not in req.body, f"the secret reached {vendor.name}"


@pytest.mark.parametrize(("route", "sim"), [("claude-sonnet-4-5", "an"), ("gpt-4o", "oa")])
def test_create_through_each_vendor_wire(env: Env, route: str, sim: str) -> None:
    env.clear()
    raw = env.client.messages.with_raw_response.create(
        model=route, max_tokens=50, system="You echo.",
        extra_body={"temperature": 0.5, "top_p": 0.9},  # this SDK dropped their arguments
        metadata={"user_id": "user-42"}, stop_sequences=["never-said"],
        messages=[{"role": "user", "content": "hello from the anthropic sdk"}])
    message = raw.parse()
    assert raw.headers["x-emancipate-provider"] == sim
    assert message.content[0].text == f"{sim} says: hello from the anthropic sdk"
    assert (message.model, message.stop_reason) == (route, "end_turn")
    assert message.usage.output_tokens == 7  # the simulators count words
    sent = env.vendors[sim].received[-1].json
    if sim == "oa":  # the chat form, as the gateway sends it
        assert sent["messages"][0] == {"role": "system", "content": "You echo."}
        assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (50, 0.5, 0.9)
        assert (sent["stop"], sent["user"]) == (["never-said"], "user-42")
    else:  # and back to Anthropic's form by the provider
        assert sent["system"] == "You echo." and sent["metadata"] == {"user_id": "user-42"}
        assert sent["stop_sequences"] == ["never-said"]


@pytest.mark.parametrize("route", ["claude-sonnet-4-5", "gpt-4o"])
def test_stream_true_and_messages_stream_through_each_vendor_wire(env: Env, route: str
                                                                  ) -> None:
    env.clear()
    sim = "an" if route.startswith("claude") else "oa"
    ask = {"model": route, "max_tokens": 50,
           "messages": [{"role": "user", "content": "one two three four"}]}
    events = list(env.client.messages.create(**ask, stream=True))  # type: ignore[call-overload]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == f"{sim} says: one two three four"
    assert [e.type for e in events][0] == "message_start" and events[-1].type == "message_stop"
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 6
    with env.client.messages.stream(**ask) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == text and final.usage.output_tokens == 6


@pytest.mark.parametrize("route", ["claude-sonnet-4-5", "gpt-4o"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_tool_use_round_trip_with_tool_result(env: Env, route: str, stream: bool) -> None:
    env.clear()
    sim = "an" if route.startswith("claude") else "oa"
    question = {"role": "user", "content": "weather in Paris"}
    ask: dict[str, Any] = {"model": route, "max_tokens": 100, "tools": [WEATHER],
                           "tool_choice": {"type": "auto"}}
    if stream:
        with env.client.messages.stream(**ask, messages=[question]) as s:
            first = s.get_final_message()
    else:
        first = env.client.messages.create(**ask, messages=[question])
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"echo": "weather in Paris"} and call.id
    second = env.client.messages.create(**ask, messages=[
        question, {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "Sunny, 21 C"}]}]}])
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    sent = env.vendors[sim].received[-1].json
    if sim == "oa":
        assert sent["messages"][-2]["tool_calls"][0]["id"] == call.id
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id,
                                        "content": "Sunny, 21 C"}
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
        assert sent["tool_choice"] == "auto"
    else:
        assert sent["messages"][-1]["content"][0]["type"] == "tool_result"
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == call.id


def test_tool_choice_tool_forces_the_named_tool(env: Env) -> None:
    env.clear()
    other = {**WEATHER, "name": "get_time"}
    message = env.client.messages.create(
        model="gpt-4o", max_tokens=100, tools=[WEATHER, other],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "now"}])
    assert message.content[-1].type == "tool_use" and message.content[-1].name == "get_time"
    sent = env.vendors["oa"].received[-1].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False


def test_images_translate_to_image_url_parts(env: Env) -> None:
    env.clear()
    env.client.messages.create(model="gpt-4o", max_tokens=20, messages=[{"role": "user",
                                                                         "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is this"}]}])
    parts = env.vendors["oa"].received[-1].json["messages"][-1]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is this"}]


def test_a_bearer_token_is_the_same_virtual_key_and_a_wrong_key_is_401(env: Env) -> None:
    bearer = anthropic.Anthropic(base_url=env.gw.url, auth_token=env.key, max_retries=0)
    message = bearer.messages.create(model="gpt-4o", max_tokens=20,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "oa says: hi"
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(env.gw, api_key="sk-wrong-key-1234").messages.create(
            model="gpt-4o", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    message_text = _assert_anthropic_error(
        _post(env.gw, json.dumps({"model": "gpt-4o", "max_tokens": 5, "messages": []})), 401,
        "authentication_error")
    assert "x-api-key" in message_text


def test_an_upstream_5xx_fails_over_to_the_next_target(env: Env) -> None:
    env.clear()
    env.vendors["flaky"].inject(Status(500))
    raw = env.client.messages.with_raw_response.create(
        model="failover", max_tokens=50, messages=[{"role": "user", "content": "still there"}])
    assert raw.headers["x-emancipate-provider"] == "an"
    assert raw.parse().content[0].text == "an says: still there"
    assert len(env.vendors["flaky"].received) == 1


def test_a_failed_upstream_is_an_api_error_and_every_circuit_open_is_overloaded(env: Env
                                                                                ) -> None:
    env.clear()
    env.vendors["down"].inject(Status(500))
    ask = {"model": "down-only", "max_tokens": 50,
           "messages": [{"role": "user", "content": "anyone"}]}
    with pytest.raises(anthropic.InternalServerError) as failed:
        env.client.messages.create(**ask)  # type: ignore[arg-type]
    assert failed.value.status_code == 502
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    # One failure opened the circuit (breaker.failures: 1): no target is left to try.
    with pytest.raises(anthropic.OverloadedError) as down:
        env.client.messages.create(**ask)  # type: ignore[arg-type]
    assert down.value.status_code == 529
    assert down.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(env.vendors["down"].received) == 1


def test_every_target_rate_limited_is_a_rate_limit_error_with_retry_after(env: Env) -> None:
    env.clear()
    env.vendors["flaky"].inject(RateLimit(retry_after=30), times=1)
    with pytest.raises(anthropic.RateLimitError) as info:
        env.client.messages.create(model="flaky-only", max_tokens=50,
                                   messages=[{"role": "user", "content": "anyone"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("route", "sim"), [("flaky-only", "flaky"),
                                          ("anthropic-flaky-only", "anflaky")])
def test_a_break_mid_stream_is_an_error_event(env: Env, route: str, sim: str) -> None:
    env.clear()
    env.vendors[sim].inject(CutStream(after_events=4))
    ask = {"model": route, "max_tokens": 50, "stream": True,
           "messages": [{"role": "user", "content": "one two three four five six"}]}
    with httpx.stream("POST", env.gw.url + "/v1/messages", json=ask, timeout=30,
                      headers={"x-api-key": env.key}) as resp:
        assert resp.status_code == 200
        events = _events(resp.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and "message_stop" not in names
    error = events[-1][1]["error"]
    assert error["type"] == "api_error" and "interrupted" in error["message"]
    env.vendors[sim].inject(CutStream(after_events=4))
    with pytest.raises(anthropic.APIStatusError), env.client.messages.stream(
            model=route, max_tokens=50,
            messages=[{"role": "user", "content": "one two three four five six"}]) as stream:
        stream.get_final_message()


def test_a_secret_in_a_tool_result_reaches_no_external_vendor(env: Env) -> None:
    env.clear()
    raw = env.client.messages.with_raw_response.create(
        model="claude-or-inhouse", max_tokens=100, messages=[
            {"role": "user", "content": "read my config"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9",
                                               "name": "read_file", "input": {"path": "~/.aws"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9",
                                          "content": f"aws_access_key_id={AWS_KEY}"}]}])
    assert raw.headers["x-emancipate-provider"] == "inside"
    assert raw.headers["x-emancipate-ownership"] == "in-house"
    assert env.vendors["an"].received == []
    assert AWS_KEY.encode() in env.vendors["inside"].received[-1].body  # in-house sees it
    # The ledger has it as a Messages request, under the id the answer carries.
    request_id = "req_" + raw.parse().id.removeprefix("msg_")
    assert raw.headers["x-request-id"] == request_id
    record = _record(env, request_id)
    assert (record["endpoint"], record["route"], record["status"]) == (
        "messages", "claude-or-inhouse", 200)
    excluded = [(d["action"], d["rule"], d["target"]) for d in record["decisions"]
                if d["stage"] == "policy"]
    assert ("in-house-only", "secrets-stay-in-house", "an/an-sonnet") in excluded
    assert AWS_KEY not in json.dumps(record)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_secret_in_the_system_prompt_is_policy_blocked_in_anthropics_shape(
        env: Env, stream: bool) -> None:
    env.clear()
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 50,
           "system": f"Deploy with aws_access_key_id={AWS_KEY} when asked.",
           "messages": [{"role": "user", "content": "deploy"}]}
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        if stream:
            with env.client.messages.stream(**ask) as s:  # type: ignore[arg-type]
                s.get_final_message()
        else:
            env.client.messages.create(**ask)  # type: ignore[arg-type]
    error = info.value.body["error"]  # type: ignore[index]
    assert error["type"] == "permission_error" and "secrets-stay-in-house" in error["message"]
    assert AWS_KEY not in json.dumps(info.value.body)
    _never_received(env.vendors["an"], AWS_KEY)
    assert env.vendors["an"].received == []


def test_count_tokens_takes_the_same_key_and_scopes(env: Env) -> None:
    counted = env.client.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x" * 40}])
    assert counted.input_tokens == 10
    with pytest.raises(anthropic.AuthenticationError):
        _client(env.gw, api_key="sk-wrong-key-1234").messages.count_tokens(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])


# --- the translation, without a process -----------------------------------------------------


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    return chat_request(parse_request({"model": "m", "max_tokens": 9, **body}))


def test_a_user_turn_puts_its_tool_results_first_and_their_images_after() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}
    chat = _chat({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "and also"},
        {"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}, image]},
        {"type": "tool_result", "tool_use_id": "t2", "content": "c", "is_error": True}]}]})
    assert chat["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "a\n\nb"},
        {"role": "tool", "tool_call_id": "t2", "content": "c"},
        {"role": "user", "content": [
            {"type": "text", "text": "and also"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]


def test_an_assistant_turn_keeps_text_and_calls_and_drops_thinking() -> None:
    chat = _chat({"system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                  "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "hmm", "signature": "s"},
                      {"type": "text", "text": "calling"},
                      {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]}]})
    assert chat["messages"][0] == {"role": "system", "content": "one\n\ntwo"}
    assert chat["messages"][2] == {"role": "assistant", "content": "calling", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]}


@pytest.mark.parametrize(("body", "param"), [
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"tools": [{"name": "f"}]}, "tools[0]"),
    ({"output_config": {"format": {"type": "xml"}}}, "output_config.format"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f_1"}}]}]},
     "messages[0].content[0].source"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "content": "no id"}]}]}, "messages[0].content[0].tool_use_id"),
    ({"container": "c_1"}, "container"),
])
def test_what_cannot_translate_is_a_400_naming_the_field(body: dict[str, Any], param: str
                                                         ) -> None:
    body.setdefault("messages", [{"role": "user", "content": "q"}])
    with pytest.raises(OpenAIError) as info:
        _chat(body)
    assert (info.value.status, info.value.param) == (400, param)
    assert param.split("[")[0].split(".")[0] in info.value.message


def test_a_named_stop_sequence_is_reported_as_one() -> None:
    asked = Asked("claude", ["END"], 3)
    body = {"choices": [{"message": {"content": "done"}, "finish_reason": "stop",
                         "stop_reason": "END"}], "usage": {"prompt_tokens": 3,
                                                           "completion_tokens": 1}}
    answer = message_of(body, asked, "msg_1")
    assert (answer["stop_reason"], answer["stop_sequence"]) == ("stop_sequence", "END")
    body["choices"][0]["stop_reason"] = None
    assert message_of(body, asked, "msg_1")["stop_reason"] == "end_turn"


def test_chunks_become_one_block_at_a_time() -> None:
    blocks = BlockStream([])
    out = blocks.feed({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    out += blocks.feed({"choices": [{"delta": {"content": "Let me"}}]})
    out += blocks.feed({"choices": [{"delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}}]})
    out += blocks.feed({"choices": [{"delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": '{"a":'}}]}}]})
    out += blocks.feed({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    out += blocks.feed({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    out += blocks.finish()
    events = _events(b"".join(out).decode())
    assert [(name, data.get("index")) for name, data in events] == [
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1),
        ("message_delta", None), ("message_stop", None)]
    assert events[3][1]["content_block"] == {"type": "tool_use", "id": "c1", "name": "f",
                                             "input": {}}
    assert events[4][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":'}
    assert events[6][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[6][1]["usage"] == {"output_tokens": 2, "input_tokens": 4,
                                     "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0}


@pytest.mark.parametrize(("status", "code", "sent", "kind"), [
    (400, "invalid_value", 400, "invalid_request_error"),
    (403, "policy_blocked", 403, "permission_error"),
    (404, "model_not_found", 404, "not_found_error"),
    (413, "request_too_large", 413, "request_too_large"),
    (429, "upstream_rate_limited", 429, "rate_limit_error"),
    (502, "upstream_error", 502, "api_error"),
    (503, "no_healthy_target", 529, "overloaded_error"),
    (503, "upstream_unavailable", 529, "overloaded_error"),
    (503, "auth_unavailable", 503, "api_error"),
    (504, "upstream_timeout", 504, "timeout_error"),
])
def test_each_gateway_error_has_its_anthropic_status_and_type(status: int, code: str,
                                                              sent: int, kind: str) -> None:
    assert MESSAGES.error(OpenAIError(status, "m", code=code)) == (
        sent, {"type": "error", "error": {"type": kind, "message": "m"}})


def test_an_error_naming_a_chat_field_names_the_messages_field() -> None:
    _, body = MESSAGES.error(OpenAIError(400, "No target can honour 'stop': …", param="stop"))
    assert "'stop_sequences'" in body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_stop_sequence_an_anthropic_target_matched_is_reported(env: Env, stream: bool
                                                                 ) -> None:
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 50,
                           "stop_sequences": ["three"],
                           "messages": [{"role": "user", "content": "one two three four"}]}
    if stream:
        with env.client.messages.stream(**ask) as s:
            message = s.get_final_message()
    else:
        message = env.client.messages.create(**ask)
    assert message.content[0].text == "an says: one two "
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "three")
    # An OpenAI-compatible target says only "stop": the gateway cannot tell which.
    plain = env.client.messages.create(**{**ask, "model": "gpt-4o"})
    assert plain.content[0].text == "oa says: one two "
    assert (plain.stop_reason, plain.stop_sequence) == ("end_turn", None)


def test_a_pdf_document_the_guard_cannot_read_stays_in_house_as_a_file_part(env: Env) -> None:
    env.clear()
    raw = env.client.messages.with_raw_response.create(
        model="claude-or-inhouse", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "document", "title": "q3.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "text", "text": "summarise this"}]}])
    assert raw.headers["x-emancipate-ownership"] == "in-house"
    assert env.vendors["an"].received == []
    parts = env.vendors["inside"].received[-1].json["messages"][-1]["content"]
    assert parts[0] == {"type": "file", "file": {
        "file_data": f"data:application/pdf;base64,{PDF}", "filename": "q3.pdf"}}
    assert parts[1] == {"type": "text", "text": "summarise this"}


def test_models_for_the_anthropic_sdk_take_its_key_and_shapes(env: Env) -> None:
    scoped = httpx.post(env.gw.url + "/admin/keys", timeout=30, json={
        "name": "claude-only", "models": ["claude-*"]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["key"]
    client = _client(env.gw, api_key=scoped)
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["claude-or-inhouse", "claude-sonnet-4-5"]
    assert all(m.type == "model" for m in listed.data) and listed.has_more is False
    assert client.models.retrieve("claude-sonnet-4-5").display_name == "claude-sonnet-4-5"
    with pytest.raises(anthropic.NotFoundError) as info:
        client.models.retrieve("gpt-4o")  # outside the key's scopes: as if it did not exist
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        _client(env.gw, api_key="sk-wrong-key-1234").models.list()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_redacted_token_reaches_the_vendor_as_a_placeholder_and_comes_back_restored(
        env: Env, stream: bool) -> None:
    env.clear()
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
        {"role": "user", "content": "which token did the tool read?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_3",
                                           "name": "read_env", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_3", "content": f"GH={GITHUB_TOKEN}"},
            {"type": "text", "text": f"is {GITHUB_TOKEN} still valid"}]}]}
    if stream:
        with env.client.messages.stream(**ask) as s:
            message = s.get_final_message()
    else:
        message = env.client.messages.create(**ask)
    assert message.content[0].text == f"an says: is {GITHUB_TOKEN} still valid"
    _never_received(env.vendors["an"], GITHUB_TOKEN)
    sent = env.vendors["an"].received[-1].json["messages"][-1]["content"]
    assert sent[0]["content"] == "GH=[SECRET_1]" and sent[1]["text"] == "is [SECRET_1] still valid"
