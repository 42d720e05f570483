"""Chat-side compatibility (issue 13), through started gateways with the official openai SDK:
structured output on the in-house model and on Anthropic, embeddings sent as token ids and
shortened with `dimensions`, content parts other than text and images, legacy function
calling and custom tools, and CORS.

What a vendor received is read from its simulator, never from the gateway's own account.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import string
import struct
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from bpe_openai import get_encoding
from pydantic import BaseModel

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess


class Person(BaseModel):
    name: str
    age: int


class Echo(BaseModel):
    echo: str


class Vendors:
    """One gateway and its simulated vendors: an Anthropic target (route `claude`), an
    OpenAI-compatible one (`gpt`), both in-house, and an external OpenAI-compatible vendor
    (`ext`); `ext-first` tries the external vendor, then `gpt`."""

    def __init__(self, gw: GatewayProcess, claude: SimulatedVendor, gpt: SimulatedVendor,
                 ext: SimulatedVendor) -> None:
        self.gw, self.claude, self.gpt, self.ext = gw, claude, gpt, ext
        self.client = gw.client(timeout=30)

    def clear(self) -> None:
        for sim in (self.claude, self.gpt, self.ext):
            sim.clear()


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vendors]:
    claude = SimulatedVendor("anthropic", name="claude").start()
    gpt = SimulatedVendor("openai", name="gpt").start()
    ext = SimulatedVendor("openai", name="ext").start()
    config: dict[str, Any] = {
        "providers": {
            "anthropic": {"kind": "anthropic", "base_url": claude.url, "ownership": "in-house",
                          "vendor": "anthropic"},
            "oai": {"kind": "openai-compatible", "base_url": gpt.url,
                    "ownership": "in-house", "vendor": "openai"},
            "outside": {"kind": "openai-compatible", "base_url": ext.url,
                        "ownership": "external", "vendor": "other"},
        },
        "routes": {
            "claude": {"targets": [{"provider": "anthropic", "model": "claude-x"}]},
            "gpt": {"targets": [{"provider": "oai", "model": "gpt-x"}]},
            "ext": {"targets": [{"provider": "outside", "model": "ext-x"}]},
            "ext-first": {"strategy": "fallback", "targets": [
                {"provider": "outside", "model": "ext-x"}, {"provider": "oai", "model": "gpt-x"}]},
        },
    }
    gw = GatewayProcess(config, tmp_path_factory.mktemp("compat")).start()
    try:
        yield Vendors(gw, claude, gpt, ext)
    finally:
        gw.stop()
        for sim in (claude, gpt, ext):
            sim.stop()


def _last_json(vendor: SimulatedVendor) -> dict[str, Any]:
    body = vendor.received[-1].json
    assert isinstance(body, dict)
    return body


# --- 1. response_format: json_schema / json_object ------------------------------------------


def test_parse_with_a_pydantic_model_on_the_in_house_model(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    completion = client.chat.completions.parse(
        model="default", temperature=0, seed=1, max_tokens=64, response_format=Person,
        messages=[{"role": "user", "content": "Alice is 31 years old. Extract the person."}],
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert completion.choices[0].finish_reason == "stop"


def test_json_schema_stream_on_the_in_house_model_is_json_of_that_schema(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "sunny": {"type": "boolean"}},
              "required": ["city", "sunny"], "additionalProperties": False}
    stream = client.chat.completions.create(
        model="default", temperature=0, seed=2, max_tokens=64, stream=True,
        messages=[{"role": "user", "content": "Is it sunny in Paris today?"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "weather", "schema": schema, "strict": True}},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    answer = json.loads(text)
    assert set(answer) == {"city", "sunny"}
    assert isinstance(answer["sunny"], bool)


def test_json_object_on_the_in_house_model_is_an_object(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    completion = client.chat.completions.create(
        model="default", temperature=0, seed=3, max_tokens=48,
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give a JSON object for Alice, age 31."}],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


def test_a_schema_the_in_house_model_cannot_hold_is_a_400_not_any_json(
        embedded_gateway: GatewayProcess) -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}
    with pytest.raises(openai.BadRequestError) as info:
        embedded_gateway.client().chat.completions.create(
            model="default", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "broken", "schema": schema}})
    assert info.value.body["param"] == "response_format"
    assert "JSON schema" in info.value.body["message"]


def test_parse_on_anthropic_is_a_forced_tool_read_back_as_content(vendors: Vendors) -> None:
    completion = vendors.client.chat.completions.parse(
        model="claude", response_format=Echo,
        messages=[{"role": "system", "content": "Echo the text."},
                  {"role": "user", "content": "parse me"}],
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Echo(echo="parse me")
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    sent = _last_json(vendors.claude)
    assert sent["tool_choice"] == {"type": "tool", "name": "Echo"}
    assert [t["name"] for t in sent["tools"]] == ["Echo"]
    assert sent["tools"][0]["input_schema"]["properties"]["echo"] == {
        "title": "Echo", "type": "string"}


def test_structured_stream_on_anthropic_is_content_deltas(vendors: Vendors) -> None:
    stream = vendors.client.chat.completions.create(
        model="claude", stream=True, messages=[{"role": "user", "content": "streamed"}],
        response_format={"type": "json_object"},
    )
    chunks = [c for c in stream if c.choices]
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks)) == {
        "echo": "streamed"}
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_structured_output_with_tools_on_anthropic_is_a_clear_400(vendors: Vendors) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert info.value.body["code"] == "unsupported_parameter"
    assert info.value.body["param"] == "response_format"
    assert "forced tool call" in info.value.body["message"]


# --- 2. embeddings: token ids, dimensions ---------------------------------------------------

CL100K = get_encoding("cl100k_base")


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_embeddings_as_token_id_arrays_embed_the_text_they_encode(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    texts = ["the cat sat on the mat", "a dog ran in the park"]
    by_text = client.embeddings.create(model="in-house", input=texts)
    by_ids = client.embeddings.create(model="in-house",
                                      input=[CL100K.encode(t) for t in texts])
    one = client.embeddings.create(model="in-house", input=CL100K.encode(texts[1]))
    assert [d.embedding for d in by_ids.data] == [d.embedding for d in by_text.data]
    assert one.data[0].embedding == by_text.data[1].embedding
    assert by_ids.usage.prompt_tokens == by_text.usage.prompt_tokens


def test_token_ids_outside_the_vocabulary_are_a_400_naming_the_input(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="in-house", input=[[1, 2], [3, 999_999_999]])
    assert info.value.body["param"] == "input[1]"
    assert "cl100k_base" in info.value.body["message"]
    assert "999999999" in info.value.body["message"]


def test_dimensions_shorten_the_vector_and_keep_it_unit_length(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    full = client.embeddings.create(model="in-house", input="the cat sat",
                                    encoding_format="float").data[0].embedding
    short = client.embeddings.create(model="in-house", input="the cat sat", dimensions=16,
                                     encoding_format="float").data[0].embedding
    assert len(short) == 16
    assert abs(_norm(short) - 1.0) < 1e-5
    scale = _norm(full[:16])
    assert all(abs(s - f / scale) < 1e-5 for s, f in zip(short, full[:16], strict=True))
    # The SDK's default, base64 float32: the same vector.
    raw = client.embeddings.with_raw_response.create(
        model="in-house", input="the cat sat", dimensions=16).http_response.json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert all(abs(a - b) < 1e-5 for a, b in zip(decoded, short, strict=True))


# --- 3. content parts beyond text and images ------------------------------------------------

# A one-page PDF: its text is inside a compressed stream, which the guard does not read.
PDF = base64.b64encode(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Filter/FlateDecode>>stream\n"
                       + bytes(range(256)) + b"\nendstream endobj\n%%EOF").decode()
AUDIO = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200))).decode()
AWS_KEY = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))


def _file(data: str, media: str = "application/pdf") -> dict[str, Any]:
    return {"type": "file", "file": {"filename": "doc", "file_data": f"data:{media};base64,{data}"}}


def _audio() -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": AUDIO, "format": "wav"}}


def _asking(*parts: dict[str, Any]) -> list[Any]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is in it?"}, *parts]}]


def test_file_and_audio_parts_pass_as_sent_to_an_openai_compatible_target(
        vendors: Vendors) -> None:
    vendors.clear()
    messages = _asking(_file(PDF), _audio())
    answer = vendors.client.chat.completions.create(model="gpt", messages=messages)
    assert answer.choices[0].message.content == "gpt says: what is in it?"
    assert _last_json(vendors.gpt)["messages"] == messages


def test_audio_on_anthropic_is_a_400_naming_the_part_and_its_type(vendors: Vendors) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(model="claude", messages=_asking(_audio()))
    err = info.value.body
    assert err["code"] == "unsupported_parameter"
    assert err["param"] == "messages[0].content[1].type"
    assert "'input_audio'" in err["message"] and "'claude'" in err["message"]


def test_a_pdf_goes_to_anthropic_as_a_document_block(vendors: Vendors) -> None:
    vendors.clear()
    vendors.client.chat.completions.create(model="claude", messages=_asking(_file(PDF)))
    blocks = _last_json(vendors.claude)["messages"][0]["content"]
    assert blocks[1] == {"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": PDF}}


def test_a_file_id_on_anthropic_is_refused_with_the_reason(vendors: Vendors) -> None:
    part = {"type": "file", "file": {"file_id": "file-abc123"}}
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(model="claude", messages=_asking(part))
    assert info.value.body["param"] == "messages[0].content[1]"
    assert "file_id" in info.value.body["message"]


def test_files_on_the_in_house_model_are_a_400_naming_the_part(
        embedded_gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        embedded_gateway.client().chat.completions.create(
            model="default", messages=_asking(_file(PDF)))
    assert info.value.body["param"] == "messages[0].content[1].type"
    assert "'file'" in info.value.body["message"]


def test_an_unknown_part_type_is_a_400_listing_the_known_ones(vendors: Vendors) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(
            model="gpt", messages=_asking({"type": "video", "video": {"url": "x"}}))
    assert info.value.body["param"] == "messages[0].content[1].type"
    assert "'input_audio', 'file'" in info.value.body["message"]


def test_a_pdf_the_guard_cannot_read_never_reaches_an_external_vendor(
        vendors: Vendors) -> None:
    vendors.clear()
    with pytest.raises(openai.PermissionDeniedError) as info:
        vendors.client.chat.completions.create(model="ext", messages=_asking(_file(PDF)))
    assert info.value.body["code"] == "policy_blocked"
    assert "messages[0].content[1].file.file_data (application/pdf)" in info.value.body[
        "message"]
    answer = vendors.client.chat.completions.with_raw_response.create(
        model="ext-first", messages=_asking(_file(PDF)))
    assert answer.headers["x-emancipate-provider"] == "oai"
    assert not vendors.ext.received


def test_a_text_file_is_read_by_the_guard(vendors: Vendors) -> None:
    vendors.clear()
    plain = base64.b64encode(b"meeting notes: nothing secret in here at all").decode()
    vendors.client.chat.completions.create(model="ext", messages=_asking(
        _file(plain, "text/plain")))
    assert len(vendors.ext.received) == 1
    leaked = base64.b64encode(f"deploy notes\naws_access_key_id = {AWS_KEY}\n".encode()).decode()
    answer = vendors.client.chat.completions.with_raw_response.create(
        model="ext-first", messages=_asking(_file(leaked, "text/plain")))
    assert answer.headers["x-emancipate-provider"] == "oai"
    assert len(vendors.ext.received) == 1


# --- 4. legacy function calling, custom tools -----------------------------------------------

WEATHER = {"name": "weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
LEGACY_HISTORY: list[Any] = [
    {"role": "user", "content": "weather in Paris?"},
    {"role": "assistant", "content": None,
     "function_call": {"name": "weather", "arguments": '{"city": "Paris"}'}},
    {"role": "function", "name": "weather", "content": "sunny"},
]
SQL_TOOL = {"type": "custom", "custom": {"name": "sql", "description": "Runs one query",
                                         "format": {"type": "text"}}}


def test_legacy_functions_pass_as_sent_to_an_openai_compatible_target(
        vendors: Vendors) -> None:
    vendors.clear()
    answer = vendors.client.chat.completions.create(
        model="gpt", messages=LEGACY_HISTORY, functions=[WEATHER], function_call="auto")
    assert answer.choices[0].message.content is not None
    sent = _last_json(vendors.gpt)
    assert sent["functions"] == [WEATHER]
    assert sent["function_call"] == "auto"
    assert sent["messages"] == LEGACY_HISTORY


def test_custom_tools_pass_as_sent_to_an_openai_compatible_target(vendors: Vendors) -> None:
    vendors.clear()
    history = [{"role": "user", "content": "count the users"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "custom",
                    "custom": {"name": "sql", "input": "select count(*) from users"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    vendors.client.chat.completions.create(model="gpt", messages=history, tools=[SQL_TOOL])
    sent = _last_json(vendors.gpt)
    assert sent["tools"] == [SQL_TOOL]
    assert sent["messages"] == history


@pytest.mark.parametrize(("extra", "param"), [
    ({"functions": [WEATHER]}, "functions"),
    ({"function_call": {"name": "weather"}}, "function_call"),
    ({"tools": [SQL_TOOL]}, "tools[0]"),
])
def test_legacy_and_custom_tools_on_anthropic_are_a_400_naming_the_parameter(
        vendors: Vendors, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], **extra)
    assert info.value.body["code"] == "unsupported_parameter"
    assert info.value.body["param"] == param


def test_a_legacy_function_call_in_the_history_on_anthropic_is_a_400(vendors: Vendors) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        vendors.client.chat.completions.create(model="claude", messages=LEGACY_HISTORY)
    assert info.value.body["param"] == "messages[1].function_call"
    assert "tool_calls" in info.value.body["message"]


def test_legacy_functions_on_the_in_house_model_are_a_400(
        embedded_gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        embedded_gateway.client().chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], functions=[WEATHER])
    assert info.value.body["param"] == "functions"


def test_a_secret_in_a_custom_tool_call_never_reaches_an_external_vendor(
        vendors: Vendors) -> None:
    vendors.clear()
    history = [{"role": "user", "content": "store the key"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "custom",
                    "custom": {"name": "sql", "input": f"insert into keys values ('{AWS_KEY}')"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    answer = vendors.client.chat.completions.with_raw_response.create(
        model="ext-first", messages=history, tools=[SQL_TOOL])
    assert answer.headers["x-emancipate-provider"] == "oai"
    assert not vendors.ext.received
    assert AWS_KEY in json.dumps(_last_json(vendors.gpt))


# --- 5. CORS --------------------------------------------------------------------------------

APP = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}


@pytest.fixture
def cors_gateway(start_gateway: Callable[..., GatewayProcess]) -> Iterator[GatewayProcess]:
    with SimulatedVendor("openai", name="gpt") as gpt:
        yield start_gateway({
            "server": {"cors": {"allow_origins": [APP, "http://localhost:5173"],
                                "max_age": 120}},
            "providers": {"oai": {"kind": "openai-compatible", "base_url": gpt.url,
                                  "ownership": "in-house", "vendor": "openai"}},
            "routes": {"gpt": {"targets": [{"provider": "oai", "model": "gpt-x"}]}},
        })


def test_a_preflight_from_an_allowed_origin_is_answered(cors_gateway: GatewayProcess) -> None:
    resp = httpx.options(cors_gateway.url + "/v1/chat/completions",
                         headers={"Origin": APP, **PREFLIGHT})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == APP
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert resp.headers["access-control-allow-headers"] == PREFLIGHT[
        "Access-Control-Request-Headers"]
    assert resp.headers["access-control-max-age"] == "120"


def test_answers_to_an_allowed_origin_carry_the_cors_headers(
        cors_gateway: GatewayProcess) -> None:
    client = cors_gateway.client(default_headers={"Origin": APP})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in raw.headers["access-control-expose-headers"]
    assert raw.parse().choices[0].message.content == "gpt says: hi"
    with client.chat.completions.with_streaming_response.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True) as stream:
        assert stream.headers["access-control-allow-origin"] == APP
        assert "".join(c.choices[0].delta.content or "" for c in stream.parse()
                       if c.choices) == "gpt says: hi"
    models = httpx.get(cors_gateway.url + "/v1/models", headers={"Origin": APP})
    assert models.headers["access-control-allow-origin"] == APP


def test_a_disallowed_origin_gets_no_cors_headers(cors_gateway: GatewayProcess) -> None:
    evil = "https://evil.example.net"
    resp = httpx.options(cors_gateway.url + "/v1/chat/completions",
                         headers={"Origin": evil, **PREFLIGHT})
    assert resp.status_code == 400
    assert "access-control-allow-origin" not in resp.headers
    raw = cors_gateway.client(default_headers={"Origin": evil}).chat.completions \
        .with_raw_response.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert "access-control-allow-origin" not in raw.headers


def test_cors_covers_v1_only(cors_gateway: GatewayProcess) -> None:
    for path in ("/metrics", "/admin/keys", "/healthz"):
        resp = httpx.options(cors_gateway.url + path, headers={"Origin": APP, **PREFLIGHT})
        assert "access-control-allow-origin" not in resp.headers, path
        assert resp.status_code == 405, path


def test_without_server_cors_a_preflight_is_405(vendors: Vendors) -> None:
    resp = httpx.options(vendors.gw.url + "/v1/chat/completions",
                         headers={"Origin": APP, **PREFLIGHT})
    assert resp.status_code == 405
    assert "access-control-allow-origin" not in resp.headers
