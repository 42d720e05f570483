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
import struct
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[GatewayProcess, SimulatedVendor, SimulatedVendor]]:
    """One gateway with an Anthropic target (`claude`) and an OpenAI-compatible one (`gpt`),
    both simulated; `both` has the two."""
    claude = SimulatedVendor("anthropic", name="claude").start()
    gpt = SimulatedVendor("openai", name="gpt").start()
    config: dict[str, Any] = {
        "providers": {
            "anthropic": {"kind": "anthropic", "base_url": claude.url, "ownership": "in-house",
                          "vendor": "anthropic"},
            "oai": {"kind": "openai-compatible", "base_url": gpt.url + "/v1",
                    "ownership": "in-house", "vendor": "openai"},
        },
        "routes": {
            "claude": {"targets": [{"provider": "anthropic", "model": "claude-x"}]},
            "gpt": {"targets": [{"provider": "oai", "model": "gpt-x"}]},
            "both": {"strategy": "fallback", "targets": [
                {"provider": "anthropic", "model": "claude-x"},
                {"provider": "oai", "model": "gpt-x"}]},
        },
    }
    gw = GatewayProcess(config, tmp_path_factory.mktemp("compat")).start()
    try:
        yield gw, claude, gpt
    finally:
        gw.stop()
        claude.stop()
        gpt.stop()


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


def test_parse_on_anthropic_is_a_forced_tool_read_back_as_content(vendors: Any) -> None:
    gw, claude, _ = vendors
    completion = gw.client().chat.completions.parse(
        model="claude", response_format=Echo,
        messages=[{"role": "system", "content": "Echo the text."},
                  {"role": "user", "content": "parse me"}],
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Echo(echo="parse me")
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    sent = _last_json(claude)
    assert sent["tool_choice"] == {"type": "tool", "name": "Echo"}
    assert [t["name"] for t in sent["tools"]] == ["Echo"]
    assert sent["tools"][0]["input_schema"]["properties"]["echo"] == {
        "title": "Echo", "type": "string"}


def test_structured_stream_on_anthropic_is_content_deltas(vendors: Any) -> None:
    gw, _, _ = vendors
    stream = gw.client().chat.completions.create(
        model="claude", stream=True, messages=[{"role": "user", "content": "streamed"}],
        response_format={"type": "json_object"},
    )
    chunks = [c for c in stream if c.choices]
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks)) == {
        "echo": "streamed"}
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_structured_output_with_tools_on_anthropic_is_a_clear_400(vendors: Any) -> None:
    gw, _, _ = vendors
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
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
