"""The simulated vendors themselves, driven by plain HTTP clients and the official SDK.

The resilience and soak tests trust these servers to fail exactly as told and to speak each
vendor's wire protocol faithfully; this file is what earns that trust.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from emancipate.testing import (
    CutStream,
    ErrorEvent,
    GarbageJSON,
    HangBeforeHeaders,
    HangMidStream,
    RateLimit,
    Reset,
    SimulatedVendor,
    SlowTokens,
    Status,
    embedding_vector,
)

OAI_KEY = "sk-sim-openai-0123456789"
ANT_KEY = "sk-ant-sim-0123456789"
ANT_HEADERS = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"}
TOOLS = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
]
ANT_TOOLS = [{"name": "lookup", "input_schema": {"type": "object"}},
             {"name": "other", "input_schema": {"type": "object"}}]


@pytest.fixture(autouse=True)
def no_leaked_servers() -> Iterator[None]:
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("simulated-vendor-")]
    assert not leaked, f"server threads still running after the test: {leaked}"


@pytest.fixture
def oai() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("openai", name="oai", api_key=OAI_KEY) as vendor:
        yield vendor


@pytest.fixture
def claude() -> Iterator[SimulatedVendor]:
    with SimulatedVendor("anthropic", name="claude", api_key=ANT_KEY) as vendor:
        yield vendor


def _sdk(vendor: SimulatedVendor) -> openai.OpenAI:
    return openai.OpenAI(base_url=vendor.url, api_key=OAI_KEY, max_retries=0, timeout=10)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _chat(vendor: SimulatedVendor, text: str = "hello there", timeout: float = 10,
          **extra: Any) -> httpx.Response:
    return httpx.post(vendor.url + "/chat/completions", timeout=timeout,
                      headers={"Authorization": f"Bearer {OAI_KEY}"},
                      json={"model": "gpt-sim", "messages": _user(text), **extra})


def _messages(vendor: SimulatedVendor, text: str = "hello there", timeout: float = 10,
              headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    body = {"model": "claude-sim", "max_tokens": 100, "messages": _user(text), **extra}
    return httpx.post(vendor.url + "/v1/messages", json=body, timeout=timeout,
                      headers=ANT_HEADERS if headers is None else headers)


def _request(vendor: SimulatedVendor, text: str, stream: bool) -> tuple[str, dict[str, Any]]:
    """(url, kwargs) for one chat request in the vendor's own protocol."""
    if vendor.protocol == "openai":
        return vendor.url + "/chat/completions", {
            "headers": {"Authorization": f"Bearer {OAI_KEY}"},
            "json": {"model": "gpt-sim", "messages": _user(text), "stream": stream}}
    return vendor.url + "/v1/messages", {
        "headers": ANT_HEADERS,
        "json": {"model": "claude-sim", "max_tokens": 100, "messages": _user(text),
                 "stream": stream}}


def _events(body: str) -> list[tuple[str | None, str]]:
    """Parse an SSE body into (event name, data) pairs."""
    out = []
    for block in body.split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            else:
                raise AssertionError(f"not an SSE line: {line!r}")
        out.append((name, "\n".join(data)))
    return out


def _stream(url: str, timeout: float = 10, **kwargs: Any) -> tuple[list[bytes], Exception | None]:
    """Read a stream chunk by chunk; return what arrived and the error that ended it, if any."""
    received: list[bytes] = []
    try:
        with httpx.stream("POST", url, timeout=timeout, **kwargs) as resp:
            assert resp.status_code == 200, resp.read()
            assert resp.headers["content-type"].startswith("text/event-stream")
            for raw in resp.iter_raw():
                received.append(raw)
    except httpx.TransportError as exc:
        return received, exc
    return received, None


def _split_events(chunks: list[bytes]) -> list[str]:
    return [e for e in b"".join(chunks).decode().split("\n\n") if e]


# --- OpenAI wire ------------------------------------------------------------------------------


def test_openai_chat_through_the_official_sdk(oai: SimulatedVendor) -> None:
    raw = _sdk(oai).chat.completions.with_raw_response.create(
        model="gpt-sim", messages=[{"role": "system", "content": "be nice"},
                                   *_user("hello there")], temperature=0.2)
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "gpt-sim"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "oai says: hello there"
    assert choice.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (4, 4, 8)
    sent = oai.received[-1]
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OAI_KEY}"
    assert sent.json["temperature"] == 0.2 and json.loads(sent.body) == sent.json
    assert oai.served == 1


def test_openai_stream_is_the_exact_openai_sequence(oai: SimulatedVendor) -> None:
    chunks, error = _stream(oai.url + "/chat/completions",
                            headers={"Authorization": f"Bearer {OAI_KEY}"},
                            json={"model": "gpt-sim", "stream": True,
                                  "stream_options": {"include_usage": True},
                                  "messages": _user("one two")})
    assert error is None
    events = _events(b"".join(chunks).decode())
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    data = [json.loads(d) for _, d in events[:-1]]
    assert {c["id"] for c in data} == {data[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-sim" for c in data)
    assert data[0]["choices"][0]["delta"]["role"] == "assistant"
    assert data[0]["choices"][0]["delta"]["content"] == ""
    assert [c["choices"][0]["delta"]["content"] for c in data[1:5]] == \
        ["oai", " says:", " one", " two"]
    assert all(c["choices"][0]["finish_reason"] is None for c in data[:5])
    assert data[5]["choices"] == [{"index": 0, "delta": {}, "logprobs": None,
                                   "finish_reason": "stop"}]
    assert data[6]["choices"] == []
    assert data[6]["usage"]["prompt_tokens"] == 2 and data[6]["usage"]["completion_tokens"] == 4
    assert all(c["usage"] is None for c in data[:6])  # as OpenAI: null until the last chunk
    assert len(data) == 7 and oai.served == 1


def test_openai_stream_without_usage_and_with_chunks() -> None:
    with SimulatedVendor("openai", name="v", chunks=2) as vendor:
        url, kwargs = _request(vendor, "a b c d e", stream=True)
        chunks, error = _stream(url, **kwargs)
    assert error is None
    data = [json.loads(d) for _, d in _events(b"".join(chunks).decode())[:-1]]
    assert all("usage" not in c for c in data)
    contents = [c["choices"][0]["delta"].get("content") for c in data[1:-1]]
    assert contents == ["v says: a b", " c d e"]  # seven words grouped into two pieces


def test_openai_sdk_stream_with_usage(oai: SimulatedVendor) -> None:
    chunks = list(_sdk(oai).chat.completions.create(
        model="gpt-sim", messages=_user("x y z"), stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "oai says: x y z"
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].usage.prompt_tokens == 3


def test_openai_n_limits_stop_format_and_custom_reply(oai: SimulatedVendor) -> None:
    client = _sdk(oai)
    c = client.chat.completions.create(model="m", messages=_user("x y z"), n=2)
    assert [(ch.index, ch.message.content) for ch in c.choices] == \
        [(0, "oai says: x y z"), (1, "oai says: x y z")]
    assert c.usage.completion_tokens == 10
    c = client.chat.completions.create(model="m", messages=_user("x y z"), max_tokens=2)
    assert (c.choices[0].message.content, c.choices[0].finish_reason) == ("oai says:", "length")
    c = client.chat.completions.create(model="m", messages=_user("x y z"),
                                       max_completion_tokens=3)
    assert (c.choices[0].message.content, c.choices[0].finish_reason) == \
        ("oai says: x", "length")
    assert c.usage.completion_tokens == 3
    c = client.chat.completions.create(model="m", messages=_user("x y z"), stop=["qq", "z"])
    assert (c.choices[0].message.content, c.choices[0].finish_reason) == \
        ("oai says: x y ", "stop")
    c = client.chat.completions.create(model="m", messages=_user("x y z"), stop="y")
    assert c.choices[0].message.content == "oai sa"  # the first occurrence, even in "says"
    c = client.chat.completions.create(model="m", messages=_user("q"),
                                       response_format={"type": "json_object"})
    assert json.loads(c.choices[0].message.content) == {"answer": "oai says: q"}
    stream = client.chat.completions.create(model="m", messages=_user("x y z"), stop=" y",
                                            stream=True)
    parts = [(ch.choices[0].delta.content, ch.choices[0].finish_reason) for ch in stream]
    assert "".join(p or "" for p, _ in parts) == "oai says: x" and parts[-1][1] == "stop"
    with SimulatedVendor(name="custom", reply=lambda body: body["model"].upper()) as custom:
        assert _chat(custom).json()["choices"][0]["message"]["content"] == "GPT-SIM"


def test_openai_tool_calls_plain_and_streamed(oai: SimulatedVendor) -> None:
    client = _sdk(oai)
    c = client.chat.completions.create(model="m", messages=_user("find cats"), tools=TOOLS)
    message = c.choices[0].message
    assert c.choices[0].finish_reason == "tool_calls" and message.content is None
    call = message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"echo": "find cats"}

    named = client.chat.completions.create(
        model="m", messages=_user("x"), tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "other"}})
    assert named.choices[0].message.tool_calls[0].function.name == "other"
    after = client.chat.completions.create(model="m", tools=TOOLS, messages=[
        *_user("find cats"), message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "three cats"}])
    assert after.choices[0].message.content == "oai says: find cats"
    assert after.choices[0].finish_reason == "stop"

    chunks = list(client.chat.completions.create(model="m", messages=_user("find dogs"),
                                                 tools=TOOLS, stream=True))
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert first.id.startswith("call_") and first.function.name == "lookup"
    args = "".join(ch.choices[0].delta.tool_calls[0].function.arguments or ""
                   for ch in chunks if ch.choices[0].delta.tool_calls)
    assert json.loads(args) == {"echo": "find dogs"}
    assert len([ch for ch in chunks if ch.choices[0].delta.tool_calls]) > 2  # really streamed
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_embeddings_float_and_base64(oai: SimulatedVendor) -> None:
    result = _sdk(oai).embeddings.create(model="emb", input=["a b", "c"])  # SDK asks base64
    assert oai.received[-1].json["encoding_format"] == "base64"
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 8
    assert result.usage.prompt_tokens == 3 and result.model == "emb"
    floats = httpx.post(oai.url + "/embeddings", headers={"Authorization": f"Bearer {OAI_KEY}"},
                        json={"model": "emb", "input": "a b", "encoding_format": "float"}).json()
    vector = floats["data"][0]["embedding"]
    assert floats["object"] == "list" and floats["data"][0]["object"] == "embedding"
    assert vector == embedding_vector("a b", 8)
    assert result.data[0].embedding == pytest.approx(vector, abs=1e-6)
    assert result.data[1].embedding != pytest.approx(vector, abs=1e-3)
    assert math.isclose(sum(v * v for v in vector), 1.0)
    b64 = httpx.post(oai.url + "/embeddings", headers={"Authorization": f"Bearer {OAI_KEY}"},
                     json={"model": "emb", "input": "a b", "encoding_format": "base64",
                           "dimensions": 3}).json()["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(b64)) == pytest.approx(
        embedding_vector("a b", 3), abs=1e-6)


def test_openai_models_and_errors_in_openai_shape(oai: SimulatedVendor) -> None:
    assert [m.id for m in _sdk(oai).models.list()] == ["oai-chat", "oai-embed"]
    url, auth = oai.url + "/chat/completions", {"Authorization": f"Bearer {OAI_KEY}"}
    body = {"model": "m", "messages": _user("x")}

    def error(resp: httpx.Response, status: int) -> dict[str, Any]:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        err = resp.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]
        return err

    assert error(httpx.post(url, json=body), 401)["type"] == "invalid_request_error"
    wrong = error(httpx.post(url, json=body, headers={"Authorization": "Bearer sk-nope"}), 401)
    assert wrong["code"] == "invalid_api_key" and "sk-nope" not in wrong["message"]
    assert httpx.post(url, json=body, headers={"api-key": OAI_KEY}).status_code == 200
    assert error(httpx.post(url, content=b"{not json", headers=auth), 400)["type"] == \
        "invalid_request_error"
    assert error(httpx.post(url, json={"model": "m"}, headers=auth), 400)["param"] == "messages"
    assert error(httpx.post(url, json={"messages": _user("x")}, headers=auth), 400)
    assert error(httpx.post(url, json={**body, "n": 0}, headers=auth), 400)["param"] == "n"
    assert error(httpx.post(oai.url + "/nowhere", json=body, headers=auth), 404)
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=oai.url, api_key="sk-nope", max_retries=0).chat.completions \
            .create(model="m", messages=_user("x"))
    assert info.value.body["code"] == "invalid_api_key"
    assert oai.served == 1 and len(oai.received) == 10


# --- Anthropic wire ---------------------------------------------------------------------------


def test_anthropic_message(claude: SimulatedVendor) -> None:
    resp = _messages(claude, system=[{"type": "text", "text": "be brief"}], messages=[
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": [{"type": "text", "text": "an answer"}]},
        {"role": "user", "content": [{"type": "text", "text": "hi claude"}]}])
    assert resp.status_code == 200 and resp.headers["request-id"].startswith("req_")
    msg = resp.json()
    assert msg["id"].startswith("msg_") and msg["type"] == "message"
    assert msg["role"] == "assistant" and msg["model"] == "claude-sim"
    assert msg["content"] == [{"type": "text", "text": "claude says: hi claude"}]
    assert msg["stop_reason"] == "end_turn" and msg["stop_sequence"] is None
    assert msg["usage"]["input_tokens"] == 8 and msg["usage"]["output_tokens"] == 4
    sent = claude.received[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == ANT_KEY
    assert claude.served == 1


def test_anthropic_stop_sequences_and_max_tokens(claude: SimulatedVendor) -> None:
    msg = _messages(claude, "a b c", stop_sequences=["zz", " b"]).json()
    assert msg["content"][0]["text"] == "claude says: a"
    assert (msg["stop_reason"], msg["stop_sequence"]) == ("stop_sequence", " b")
    msg = _messages(claude, "a b c", max_tokens=3).json()
    assert msg["content"][0]["text"] == "claude says: a"
    assert (msg["stop_reason"], msg["usage"]["output_tokens"]) == ("max_tokens", 3)


def test_anthropic_insists_on_its_headers_and_fields(claude: SimulatedVendor) -> None:
    def error(resp: httpx.Response, status: int, kind: str) -> str:
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        assert body["error"]["type"] == kind
        return body["error"]["message"]

    error(_messages(claude, headers={"anthropic-version": "2023-06-01"}), 401,
          "authentication_error")
    error(_messages(claude, headers={**ANT_HEADERS, "x-api-key": "bad"}), 401,
          "authentication_error")
    assert "anthropic-version" in error(_messages(claude, headers={"x-api-key": ANT_KEY}), 400,
                                        "invalid_request_error")
    no_limit = httpx.post(claude.url + "/v1/messages", headers=ANT_HEADERS,
                          json={"model": "c", "messages": _user("x")})
    assert "max_tokens" in error(no_limit, 400, "invalid_request_error")
    system_role = _messages(claude, messages=[{"role": "system", "content": "x"}, *_user("y")])
    assert "system" in error(system_role, 400, "invalid_request_error")
    error(_messages(claude, temperature=1.5), 400, "invalid_request_error")
    error(httpx.post(claude.url + "/v1/messages", headers=ANT_HEADERS, content=b"{oops"), 400,
          "invalid_request_error")
    error(httpx.get(claude.url + "/v1/nothing", headers=ANT_HEADERS), 404, "not_found_error")
    models = httpx.get(claude.url + "/v1/models", headers=ANT_HEADERS).json()
    assert [m["id"] for m in models["data"]] == ["claude-opus", "claude-haiku"]
    assert claude.served == 0


def test_anthropic_stream_is_the_exact_anthropic_sequence(claude: SimulatedVendor) -> None:
    url, kwargs = _request(claude, "stream me please", stream=True)
    chunks, error = _stream(url, **kwargs)
    assert error is None
    events = _events(b"".join(chunks).decode())
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping",
                     *["content_block_delta"] * 5, "content_block_stop", "message_delta",
                     "message_stop"]
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for d, name in zip(data, names, strict=True))
    start = data[0]["message"]
    assert start["id"].startswith("msg_") and start["content"] == []
    assert start["stop_reason"] is None and start["usage"]["input_tokens"] == 3
    assert data[1] == {"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}
    deltas = [d["delta"] for d in data[3:8]]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "claude says: stream me please"
    assert data[8] == {"type": "content_block_stop", "index": 0}
    assert data[9]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert data[9]["usage"] == {"output_tokens": 5}
    assert claude.served == 1


def test_anthropic_tool_use_plain_streamed_and_answered(claude: SimulatedVendor) -> None:
    msg = _messages(claude, "weather", tools=ANT_TOOLS).json()
    block = msg["content"][0]
    assert msg["stop_reason"] == "tool_use" and len(msg["content"]) == 1
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("lookup", {"echo": "weather"})
    named = _messages(claude, "x", tools=ANT_TOOLS, tool_choice={"type": "tool", "name": "other"})
    assert named.json()["content"][0]["name"] == "other"
    after = _messages(claude, tools=ANT_TOOLS, messages=[
        *_user("weather"), {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"],
                                      "content": "sunny"}]}]).json()
    assert after["content"] == [{"type": "text", "text": "claude says: weather"}]
    assert after["stop_reason"] == "end_turn"

    url, kwargs = _request(claude, "rain", stream=True)
    kwargs["json"]["tools"] = ANT_TOOLS
    chunks, error = _stream(url, **kwargs)
    assert error is None
    events = [(n, json.loads(d)) for n, d in _events(b"".join(chunks).decode())]
    start = events[1][1]["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "lookup" and start["input"] == {}
    partial = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert all(p["type"] == "input_json_delta" for p in partial) and len(partial) > 1
    assert json.loads("".join(p["partial_json"] for p in partial)) == {"echo": "rain"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_rate_limit_with_and_without_retry_after(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        url, kwargs = _request(vendor, "x", stream=False)
        vendor.inject(RateLimit(retry_after=0.5), times=1)
        vendor.inject(RateLimit(retry_after=None), times=1)
        first, second, third = (httpx.post(url, **kwargs) for _ in range(3))
        assert vendor.served == 1 and len(vendor.received) == 3
    assert (first.status_code, first.headers["retry-after"]) == (429, "0.5")
    assert second.status_code == 429 and "retry-after" not in second.headers
    assert third.status_code == 200
    if protocol == "openai":
        assert first.json()["error"]["code"] == "rate_limit_exceeded"
    else:
        assert first.json()["error"]["type"] == "rate_limit_error"


def test_rate_limit_seen_by_the_official_sdk(oai: SimulatedVendor) -> None:
    oai.inject(RateLimit(retry_after=2))
    with pytest.raises(openai.RateLimitError) as info:
        _sdk(oai).chat.completions.create(model="m", messages=_user("x"))
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.body["type"] == "requests"


@pytest.mark.parametrize(("protocol", "code", "kind"), [
    ("openai", 500, "server_error"), ("openai", 502, "server_error"),
    ("openai", 503, "server_error"), ("openai", 400, "invalid_request_error"),
    ("anthropic", 500, "api_error"), ("anthropic", 503, "api_error"),
    ("anthropic", 529, "overloaded_error"),
])
def test_status_faults_in_the_vendor_shape(protocol: str, code: int, kind: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        vendor.inject(Status(code, retry_after=3 if code == 503 else None))
        url, kwargs = _request(vendor, "x", stream=True)
        resp = httpx.post(url, **kwargs)  # even a stream request fails before any event
        assert vendor.served == 0
    assert resp.status_code == code
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert (body["error"]["type"]) == kind
    if protocol == "anthropic":
        assert body["type"] == "error"
    assert resp.headers.get("retry-after") == ("3" if code == 503 else None)


def test_hang_before_headers(oai: SimulatedVendor) -> None:
    oai.inject(HangBeforeHeaders(2), times=1)
    oai.inject(HangBeforeHeaders(0.1), times=1)
    with pytest.raises(httpx.ReadTimeout):
        _chat(oai, timeout=0.3)
    assert len(oai.received) == 1  # it arrived, and nothing came back
    slow = _chat(oai, "still there")  # a short stall, then a complete answer
    assert slow.json()["choices"][0]["message"]["content"] == "oai says: still there"
    assert oai.served == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_hang_mid_stream(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        url, kwargs = _request(vendor, "one two three", stream=True)
        vendor.inject(HangMidStream(after_events=2, seconds=2), times=1)
        chunks, error = _stream(url, timeout=0.3, **kwargs)
        assert isinstance(error, httpx.ReadTimeout)
        assert len(_split_events(chunks)) == 2
        vendor.inject(HangMidStream(after_events=2, seconds=0.1), times=1)
        chunks, error = _stream(url, **kwargs)
        assert error is None
        events = _split_events(chunks)
        assert events[-1].endswith("[DONE]" if protocol == "openai" else '{"type":"message_stop"}')
        vendor.inject(HangMidStream(after_events=0, seconds=2), times=1)
        url, kwargs = _request(vendor, "plain", stream=False)
        with httpx.stream("POST", url, timeout=0.3, **kwargs) as resp:
            assert resp.status_code == 200  # headers came, the body stalls
            with pytest.raises(httpx.ReadTimeout):
                resp.read()
        assert vendor.served == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_reset_is_a_tcp_reset_before_any_byte(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        vendor.inject(Reset(), times=2)
        url, kwargs = _request(vendor, "x", stream=False)
        with pytest.raises(httpx.ReadError):
            httpx.post(url, **kwargs)
        path = url.split(str(vendor.port), 1)[1].encode()
        body = json.dumps(kwargs["json"]).encode()
        head = b"".join(f"{k}: {v}\r\n".encode() for k, v in kwargs["headers"].items())
        with socket.create_connection(("127.0.0.1", vendor.port), timeout=10) as sock:
            sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + head +
                         b"Content-Type: application/json\r\nContent-Length: " +
                         str(len(body)).encode() + b"\r\n\r\n" + body)
            with pytest.raises(ConnectionResetError):
                sock.recv(1024)
        assert httpx.post(url, **kwargs).status_code == 200  # two resets, then served
        assert len(vendor.received) == 3 and vendor.served == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_garbage_json(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        url, kwargs = _request(vendor, "x y", stream=False)
        vendor.inject(GarbageJSON(), times=1)
        resp = httpx.post(url, **kwargs)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(resp.content)
        url, kwargs = _request(vendor, "x y", stream=True)
        vendor.inject(GarbageJSON(), times=1)
        vendor.inject(GarbageJSON(after_events=2), times=1)
        for good in (0, 2):
            chunks, error = _stream(url, **kwargs)
            assert error is None  # a clean end: only the data is broken
            events = _events("\n\n".join(_split_events(chunks)) + "\n\n")
            assert len(events) == good + 1
            for _, data in events[:good]:
                json.loads(data)
            with pytest.raises(json.JSONDecodeError):
                json.loads(events[-1][1])
        assert vendor.served == 0


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_cut_stream(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        url, kwargs = _request(vendor, "one two three four", stream=True)
        for k in (0, 3):
            vendor.inject(CutStream(after_events=k), times=1)
            chunks, error = _stream(url, **kwargs)
            assert isinstance(error, httpx.RemoteProtocolError)
            assert len(_split_events(chunks)) == k
        vendor.inject(CutStream(after_events=100), times=1)  # past the end: every event, no end
        chunks, error = _stream(url, **kwargs)
        assert isinstance(error, httpx.RemoteProtocolError)
        last = "data: [DONE]" if protocol == "openai" else 'data: {"type":"message_stop"}'
        assert _split_events(chunks)[-1].endswith(last)
        url, kwargs = _request(vendor, "one two three four", stream=False)
        vendor.inject(CutStream(), times=1)
        with httpx.stream("POST", url, timeout=10, **kwargs) as resp:
            assert resp.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                resp.read()
        assert vendor.served == 0 and len(vendor.received) == 4
        assert httpx.post(url, **kwargs).status_code == 200 and vendor.served == 1


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_slow_tokens_still_deliver_the_whole_answer(protocol: str) -> None:
    with SimulatedVendor(protocol, name="v") as vendor:
        vendor.inject(SlowTokens(0.03))
        url, kwargs = _request(vendor, "slow and steady", stream=True)
        chunks, error = _stream(url, **kwargs)
        assert error is None
        events = _split_events(chunks)
        assert vendor.pauses == len(events) - 1  # a delay before every event but the first
        url, kwargs = _request(vendor, "slow and steady", stream=False)
        body = httpx.post(url, **kwargs).json()
        text = (body["choices"][0]["message"]["content"] if protocol == "openai"
                else body["content"][0]["text"])
        assert text == "v says: slow and steady" and vendor.served == 2


def test_error_event_mid_stream(oai: SimulatedVendor, claude: SimulatedVendor) -> None:
    oai.inject(ErrorEvent(after_events=2, code=503))
    url, kwargs = _request(oai, "a b c", stream=True)
    chunks, error = _stream(url, **kwargs)
    events = _split_events(chunks)
    assert error is None and len(events) == 3
    assert json.loads(events[-1][6:])["error"]["type"] == "server_error"
    with pytest.raises(openai.APIError):  # the SDK raises on it, as on the real thing
        list(_sdk(oai).chat.completions.create(model="m", messages=_user("x"), stream=True))
    claude.inject(ErrorEvent(after_events=1, code=529))
    url, kwargs = _request(claude, "a b c", stream=True)
    chunks, error = _stream(url, **kwargs)
    events = _events(b"".join(chunks).decode())
    assert [n for n, _ in events] == ["message_start", "error"]
    assert json.loads(events[-1][1]) == {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}
    url, kwargs = _request(claude, "x", stream=False)
    assert httpx.post(url, **kwargs).status_code == 529


# --- fault control ----------------------------------------------------------------------------


def test_times_queue_in_order_and_permanent_faults_last_until_cleared(
    oai: SimulatedVendor,
) -> None:
    oai.inject(Status(500), times=2)
    oai.inject(RateLimit(retry_after=None), times=1)
    assert [_chat(oai).status_code for _ in range(4)] == [500, 500, 429, 200]
    oai.inject(Status(502))
    assert [_chat(oai).status_code for _ in range(3)] == [502, 502, 502]
    oai.clear_faults()
    assert _chat(oai).status_code == 200
    with pytest.raises(ValueError):
        oai.inject(Status(500), times=0)
    with pytest.raises(ValueError):
        oai.inject(Status(500), probability=1.5)
    with pytest.raises(TypeError):
        oai.inject("500")  # type: ignore[arg-type]


def test_probability_is_random_but_seedable() -> None:
    def statuses(seed: int) -> list[int]:
        with SimulatedVendor(name="p", seed=seed) as vendor, httpx.Client() as client:
            vendor.inject(Status(500), probability=0.3)
            vendor.inject(Status(502), probability=0.0)
            url, kwargs = _request(vendor, "x", stream=False)
            return [client.post(url, **kwargs).status_code for _ in range(60)]

    first, again, other = statuses(7), statuses(7), statuses(8)
    assert first == again and first != other
    assert 5 <= first.count(500) <= 35 and set(first) == {200, 500}
    with SimulatedVendor(name="p") as vendor:
        vendor.inject(Status(503), probability=1.0)
        assert {_chat(vendor).status_code for _ in range(5)} == {503}


def test_stop_is_a_crash_and_restart_keeps_port_and_state(oai: SimulatedVendor) -> None:
    port, url = oai.port, oai.url
    assert _chat(oai).status_code == 200
    oai.inject(HangBeforeHeaders(30))
    outcome: list[BaseException | httpx.Response] = []

    def hang() -> None:
        try:
            outcome.append(_chat(oai, timeout=20))
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=hang)
    waiter.start()
    while len(oai.received) < 2:
        time.sleep(0.01)
    oai.stop()
    waiter.join()
    # The hanging client is cut off by the crash, not left to its own timeout.
    assert isinstance(outcome[0], httpx.ReadError | httpx.RemoteProtocolError), outcome
    with pytest.raises(httpx.ConnectError):
        _chat(oai)
    oai.clear_faults()
    oai.restart()
    assert (oai.port, oai.url) == (port, url)
    assert _chat(oai).status_code == 200
    assert len(oai.received) == 3 and oai.served == 2
    oai.clear()
    assert oai.received == [] and oai.served == 0


def test_port_in_use_and_url_before_start(oai: SimulatedVendor) -> None:
    with pytest.raises(RuntimeError):
        SimulatedVendor(port=oai.port).start()
    with pytest.raises(RuntimeError):
        _ = SimulatedVendor().url


def test_faults_change_safely_while_requests_run(oai: SimulatedVendor) -> None:
    answers: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {OAI_KEY}"}, timeout=10) as c:
            for i in range(25):
                resp = c.post(oai.url + "/chat/completions",
                              json={"model": "m", "messages": _user(f"n {i}")})
                if resp.status_code == 200:
                    assert resp.json()["choices"][0]["message"]["content"] == f"oai says: n {i}"
                with lock:
                    answers.append(resp.status_code)

    workers = [threading.Thread(target=client) for _ in range(8)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        oai.inject(Status(503), probability=0.5)
        oai.inject(RateLimit(retry_after=None), times=2)
        time.sleep(0.002)
        oai.clear_faults()
    for w in workers:
        w.join()
    assert len(answers) == 200 and len(oai.received) == 200
    assert set(answers) <= {200, 429, 503}
    assert oai.served == answers.count(200)


def test_many_concurrent_slow_streams() -> None:
    async def one(client: httpx.AsyncClient, url: str, i: int) -> str:
        text = ""
        async with client.stream("POST", url, json={
            "model": "m", "stream": True, "messages": _user(f"stream {i}")}) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:])["choices"]:
                        text += choice["delta"].get("content") or ""
        return text

    async def run(url: str) -> list[str]:
        async with httpx.AsyncClient(timeout=20) as client:
            return await asyncio.gather(*(one(client, url, i) for i in range(24)))

    with SimulatedVendor(name="many") as vendor:
        vendor.inject(SlowTokens(0.01))
        texts = asyncio.run(run(vendor.url + "/chat/completions"))
        assert texts == [f"many says: stream {i}" for i in range(24)]
        assert vendor.served == 24
