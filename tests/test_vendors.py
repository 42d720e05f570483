"""Vendor adapters through the real gateway: simulated OpenAI-compatible and Anthropic servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

SECRET_OPENAI = "sk-test-openai-0123456789abcdef"
SECRET_ANTHROPIC = "sk-ant-test-0123456789abcdef"
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}}}}]


@pytest.fixture
def vendors() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="oai", api_key=SECRET_OPENAI) as oai, \
            SimulatedVendor("anthropic", name="claude", api_key=SECRET_ANTHROPIC) as claude:
        yield oai, claude


@pytest.fixture
def gateway(vendors: tuple[SimulatedVendor, SimulatedVendor],
            start_gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    oai, claude = vendors
    config = {
        "providers": {
            "oai": {"kind": "openai-compatible", "base_url": oai.url, "api_key_env": "OAI_KEY",
                    "ownership": "external", "vendor": "openai"},
            "claude": {"kind": "anthropic", "base_url": claude.url, "api_key_env": "CLAUDE_KEY",
                       "ownership": "external", "vendor": "anthropic"},
            "strict": {"kind": "openai-compatible", "base_url": oai.url, "api_key_env": "OAI_KEY",
                       "ownership": "in-house", "vendor": "us", "supports": ["stop"]},
            "badkey": {"kind": "openai-compatible", "base_url": oai.url,
                       "api_key_env": "WRONG_KEY", "ownership": "external", "vendor": "openai"},
            "nowhere": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9/v1",
                        "ownership": "external", "vendor": "ghost",
                        "retries": {"attempts": 1}},
        },
        "routes": {
            "gpt": {"targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            "claude": {"targets": [{"provider": "claude", "model": "claude-haiku-4-5"}]},
            "strict": {"targets": [{"provider": "strict", "model": "m"}]},
            "badkey": {"targets": [{"provider": "badkey", "model": "gpt-4o"}]},
            "nowhere": {"targets": [{"provider": "nowhere", "model": "m"}]},
        },
        "auth": {"enabled": False},
    }
    env = {"OAI_KEY": SECRET_OPENAI, "CLAUDE_KEY": SECRET_ANTHROPIC,
           "WRONG_KEY": "sk-wrong-secret-value-999"}
    return start_gateway(config, env=env)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- OpenAI-compatible ------------------------------------------------------------------------


def test_openai_non_streaming_passthrough(gateway: GatewayProcess, vendors) -> None:
    oai, _ = vendors
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="gpt", messages=_user("hello there"), temperature=0.3, seed=7,
        extra_body={"logit_bias": {"42": 1}},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "oai says: hello there"
    assert raw.headers["x-emancipate-provider"] == "oai"
    assert raw.headers["x-emancipate-model"] == "gpt-4o-mini"
    assert raw.headers["x-emancipate-attempts"] == "1"
    sent = oai.received[-1]
    assert sent.json["model"] == "gpt-4o-mini"  # public name mapped to the upstream one
    assert sent.json["temperature"] == 0.3 and sent.json["seed"] == 7
    assert sent.json["logit_bias"] == {"42": 1}  # unknown parameters pass through
    assert sent.headers["authorization"] == f"Bearer {SECRET_OPENAI}"


def test_openai_streaming_is_byte_compatible(gateway: GatewayProcess) -> None:
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json={
        "model": "gpt", "stream": True, "messages": _user("one two three"),
    }) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = resp.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "oai says: one two three"
    # Usage was not asked for: none is sent (though the gateway asked the vendor for it).
    assert all("usage" not in c for c in chunks)


def test_openai_streaming_usage_when_asked(gateway: GatewayProcess) -> None:
    stream = gateway.client().chat.completions.create(
        model="gpt", stream=True, stream_options={"include_usage": True},
        messages=_user("a b c"),
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.completion_tokens == len(["oai", "says:", "a", "b", "c"])


def test_openai_n_stop_max_tokens_and_format(gateway: GatewayProcess, vendors) -> None:
    client = gateway.client()
    c = client.chat.completions.create(model="gpt", messages=_user("x y z"), n=2)
    assert [ch.index for ch in c.choices] == [0, 1]
    c = client.chat.completions.create(model="gpt", messages=_user("x y z"), stop=[" y"])
    assert c.choices[0].message.content == "oai says: x" and c.choices[0].finish_reason == "stop"
    c = client.chat.completions.create(model="gpt", messages=_user("x y z"),
                                       max_completion_tokens=2)
    assert c.choices[0].finish_reason == "length"
    c = client.chat.completions.create(model="gpt", messages=_user("q"),
                                       response_format={"type": "json_object"})
    assert json.loads(c.choices[0].message.content) == {"answer": "oai says: q"}


def test_openai_tool_calls_round_trip(gateway: GatewayProcess, vendors) -> None:
    oai, _ = vendors
    client = gateway.client()
    c = client.chat.completions.create(model="gpt", messages=_user("find cats"), tools=TOOLS,
                                       tool_choice="auto")
    call = c.choices[0].message.tool_calls[0]
    assert c.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"echo": "find cats"}
    assert oai.received[-1].json["tools"] == TOOLS
    stream = client.chat.completions.create(model="gpt", messages=_user("find dogs"),
                                            tools=TOOLS, stream=True)
    args = "".join(ch.choices[0].delta.tool_calls[0].function.arguments or ""
                   for ch in stream if ch.choices and ch.choices[0].delta.tool_calls)
    assert json.loads(args) == {"echo": "find dogs"}


def test_openai_embeddings_passthrough(gateway: GatewayProcess) -> None:
    result = gateway.client().embeddings.create(model="gpt", input=["a", "b"],
                                                encoding_format="float")
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8


def test_target_that_cannot_honour_a_parameter(gateway: GatewayProcess) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="strict", messages=_user("x"), tools=TOOLS)
    assert info.value.body["param"] == "tools"
    assert client.chat.completions.create(model="strict", messages=_user("x"),
                                          stop=["zz"]).choices[0].message.content


# --- Anthropic --------------------------------------------------------------------------------


def test_anthropic_translation_non_streaming(gateway: GatewayProcess, vendors) -> None:
    _, claude = vendors
    c = gateway.client().chat.completions.create(
        model="claude", max_tokens=50, temperature=0.5, stop=["never"],
        messages=[{"role": "system", "content": "Be brief."}, *_user("hi claude")],
    )
    assert c.choices[0].message.content == "claude says: hi claude"
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens == 4
    sent = claude.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == SECRET_ANTHROPIC
    assert sent.headers["anthropic-version"]
    assert sent.json["system"] == "Be brief."
    assert sent.json["messages"] == [{"role": "user",
                                      "content": [{"type": "text", "text": "hi claude"}]}]
    assert sent.json["max_tokens"] == 50 and sent.json["stop_sequences"] == ["never"]


def test_anthropic_max_tokens_maps_to_length(gateway: GatewayProcess) -> None:
    c = gateway.client().chat.completions.create(model="claude", max_tokens=2,
                                                 messages=_user("a b c d"))
    assert c.choices[0].finish_reason == "length"


def test_anthropic_streaming(gateway: GatewayProcess) -> None:
    stream = gateway.client().chat.completions.create(
        model="claude", stream=True, stream_options={"include_usage": True},
        messages=_user("stream me please"),
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "claude says: stream me please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5


def test_anthropic_tool_calls(gateway: GatewayProcess, vendors) -> None:
    _, claude = vendors
    client = gateway.client()
    c = client.chat.completions.create(model="claude", messages=_user("weather"), tools=TOOLS,
                                       tool_choice="required")
    call = c.choices[0].message.tool_calls[0]
    assert c.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"echo": "weather"}
    sent = claude.received[-1].json
    assert sent["tools"][0]["name"] == "lookup" and sent["tool_choice"] == {"type": "any"}
    # The tool result goes back as a tool_result block.
    follow = client.chat.completions.create(model="claude", tools=TOOLS, messages=[
        *_user("weather"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ])
    assert follow.choices
    blocks = claude.received[-1].json["messages"]
    assert blocks[1]["content"][0]["type"] == "tool_use"
    assert blocks[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id,
                                       "content": "sunny"}
    stream = client.chat.completions.create(model="claude", messages=_user("rain"), tools=TOOLS,
                                            stream=True)
    chunks = list(stream)
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args) == {"echo": "rain"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_anthropic_unsupported_parameter(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="claude", messages=_user("x"), n=3)
    assert info.value.body["param"] == "n"


# --- upstream errors --------------------------------------------------------------------------


def test_upstream_rejects_the_gateway_key_without_echoing_it(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="badkey", messages=_user("x"))
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "badkey" in message and "401" in message
    assert "sk-wrong-secret-value-999" not in message
    assert "sk-wrong-secret-value-999" not in gateway.log()
    assert SECRET_OPENAI not in gateway.log() and SECRET_ANTHROPIC not in gateway.log()


def test_unreachable_provider_is_a_502_naming_it(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="nowhere", messages=_user("x"))
    assert info.value.status_code == 502
    assert "nowhere" in info.value.body["message"]
    assert info.value.body["code"] == "upstream_error"


def test_client_error_from_vendor_comes_back_as_400(gateway: GatewayProcess) -> None:
    # Anthropic rejects a temperature above 1 ... the gateway catches it first, naming it.
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="claude", messages=_user("x"),
                                                 temperature=1.5)
    assert info.value.body["param"] == "temperature"
