"""The `bedrock` kind through a started gateway, against a simulated Bedrock Runtime that
checks every SigV4 signature (Converse JSON and ConverseStream's event-stream framing)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from emancipate.testing import (
    BedrockWire,
    CutStream,
    ErrorEvent,
    GarbageJSON,
    RateLimit,
    SimulatedVendor,
    Status,
    embedding_vector,
)
from tests.gateway_process import GatewayProcess

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGWRONG"
PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"  # an inference profile id
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}},
                   "required": ["echo"]}}}]


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    wire = BedrockWire("br", access_key_id=KEY_ID, secret_access_key=SECRET, region="us-east-1")
    with SimulatedVendor("bedrock", name="br", wire=wire) as bedrock, \
            SimulatedVendor("openai", name="inhouse") as inhouse:
        yield bedrock, inhouse


@pytest.fixture(scope="module")
def gateway(sims: tuple[SimulatedVendor, SimulatedVendor],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    bedrock, inhouse = sims
    br = {"kind": "bedrock", "region": "us-east-1", "endpoint_url": bedrock.url,
          "access_key_id_env": "BR_KEY", "secret_access_key_env": "BR_SECRET",
          "ownership": "external", "vendor": "amazon",
          "retries": {"attempts": 2, "backoff_initial": 0},
          "breaker": {"failures": 1000}}  # the outage tests must not open it for the rest
    config = {
        "providers": {
            "br": br,
            "br-wrong": {**br, "secret_access_key_env": "BR_WRONG"},
            "vllm": {"kind": "openai-compatible", "base_url": inhouse.url,
                     "ownership": "in-house", "vendor": "us"},
        },
        "routes": {
            "haiku": {"targets": [{"provider": "br", "model": PROFILE}]},
            "wrong": {"targets": [{"provider": "br-wrong", "model": PROFILE}]},
            "haiku-or-inhouse": {"targets": [{"provider": "br", "model": PROFILE},
                                             {"provider": "vllm", "model": "llama"}]},
            "wrong-or-inhouse": {"targets": [{"provider": "br-wrong", "model": PROFILE},
                                             {"provider": "vllm", "model": "llama"}]},
            "titan": {"targets": [{"provider": "br", "model": PROFILE},
                                  {"provider": "br", "model": TITAN}]},
            "cohere": {"targets": [{"provider": "br", "model": COHERE}]},
        },
    }
    env = {"BR_KEY": KEY_ID, "BR_SECRET": SECRET, "BR_WRONG": WRONG_SECRET}
    gw = GatewayProcess(config, tmp_path_factory.mktemp("bedrock"), env).start()
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _no_faults(sims: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    for sim in sims:
        sim.clear_faults()


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_plain_answer_is_signed_and_translated(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="haiku", messages=[{"role": "system", "content": "Be brief."},
                                 *_user("hello bedrock")], max_tokens=40, temperature=0.1)
    answer = raw.parse()
    assert answer.choices[0].message.content == "br says: hello bedrock"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 4)
    assert raw.headers["x-emancipate-provider"] == "br"
    sent = bedrock.received[-1]
    assert sent.path == f"/model/{PROFILE}/converse"
    assert sent.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.json["system"] == [{"text": "Be brief."}]
    assert sent.json["inferenceConfig"] == {"maxTokens": 40, "temperature": 0.1}


def test_streamed_answer_over_the_event_stream(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    chunks = list(gateway.client().chat.completions.create(
        model="haiku", messages=_user("stream me now"), stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "br says: stream me now"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert bedrock.received[-1].path == f"/model/{PROFILE}/converse-stream"
    assert bedrock.received[-1].headers["accept"] == "application/vnd.amazon.eventstream"


def test_stop_sequence_and_max_tokens(gateway: GatewayProcess) -> None:
    client = gateway.client()
    short = client.chat.completions.create(model="haiku", messages=_user("one two three"),
                                           max_tokens=2)
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == (
        "br says:", "length")
    stopped = client.chat.completions.create(model="haiku", messages=_user("one two three"),
                                             stop=["two"])
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == (
        "br says: one ", "stop")


def test_tool_call_and_tool_result_round_trip(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    client = gateway.client()
    messages: list = _user("find cats")
    first = client.chat.completions.create(model="haiku", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "lookup", {"echo": "find cats"})
    assert bedrock.received[-1].json["toolConfig"]["tools"][0]["toolSpec"]["name"] == "lookup"
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"found": 3}'}]
    second = client.chat.completions.create(model="haiku", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "br says: find cats"
    turns = bedrock.received[-1].json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"] == [{"toolResult": {
        "toolUseId": call.id, "content": [{"json": {"found": 3}}], "status": "success"}}]


def test_streamed_tool_call_arrives_in_pieces(gateway: GatewayProcess) -> None:
    chunks = list(gateway.client().chat.completions.create(
        model="haiku", messages=_user("find dogs"), tools=TOOLS, stream=True))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].function.name == "lookup" and calls[0].id.startswith("tooluse_")
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"echo": "find dogs"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


CITY_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                               "population": {"type": "integer"}},
               "required": ["name", "population"], "additionalProperties": False}


class City(BaseModel):
    name: str
    population: int


def _city_format() -> dict:
    return {"type": "json_schema",
            "json_schema": {"name": "city", "strict": True, "schema": CITY_SCHEMA}}


def test_structured_output_is_a_forced_tool_whose_input_is_the_content(
        gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    answer = gateway.client().chat.completions.create(
        model="haiku", messages=_user("largest city of Norway"), response_format=_city_format())
    choice = answer.choices[0]
    assert json.loads(choice.message.content) == {"name": "largest city of Norway",
                                                  "population": 4}
    assert (choice.finish_reason, choice.message.tool_calls) == ("stop", None)
    config = bedrock.received[-1].json["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "city"}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": CITY_SCHEMA}


def test_structured_output_parses_into_a_pydantic_model_with_the_sdk(
        gateway: GatewayProcess) -> None:
    answer = gateway.client().beta.chat.completions.parse(
        model="haiku", messages=_user("capital of Peru"), response_format=City)
    assert answer.choices[0].message.parsed == City(name="capital of Peru", population=3)
    json_mode = gateway.client().chat.completions.create(
        model="haiku", messages=_user("any json"), response_format={"type": "json_object"})
    assert json.loads(json_mode.choices[0].message.content) == {}


def test_streamed_structured_output_arrives_as_content_deltas(gateway: GatewayProcess,
                                                              sims) -> None:
    bedrock, _ = sims
    chunks = list(gateway.client().chat.completions.create(
        model="haiku", messages=_user("a small town"), response_format=_city_format(),
        stream=True))
    pieces = [c.choices[0].delta.content for c in chunks
              if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert json.loads("".join(pieces)) == {"name": "a small town", "population": 3}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert bedrock.received[-1].path == f"/model/{PROFILE}/converse-stream"
    with gateway.client().beta.chat.completions.stream(
            model="haiku", messages=_user("capital of Chile"), response_format=City) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == City(name="capital of Chile", population=3)


def test_structured_output_with_tools_is_refused_or_answered_by_another_target(
        gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    before = len(bedrock.received)
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(
            model="haiku", messages=_user("both"), tools=TOOLS, response_format=_city_format())
    assert (info.value.body["code"], info.value.body["param"]) == (
        "unsupported_parameter", "response_format")
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="haiku-or-inhouse", messages=_user("both"), tools=TOOLS,
        response_format=_city_format())
    assert raw.headers["x-emancipate-provider"] == "vllm"
    assert len(bedrock.received) == before


def test_an_image_as_base64_goes_as_an_image_block(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    answer = gateway.client().chat.completions.create(
        model="haiku", messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == "br says: what is this"
    assert bedrock.received[-1].json["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}


def test_an_image_link_is_refused_naming_the_part(gateway: GatewayProcess) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(
            model="haiku", messages=[{"role": "user", "content": content}])
    assert info.value.body["code"] == "unsupported_parameter"
    assert info.value.body["param"] == "messages[0].content[0]"


def test_throttling_once_is_retried_on_the_same_target(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    bedrock.inject(RateLimit(), times=1)
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="haiku-or-inhouse", messages=_user("again"))
    assert raw.parse().choices[0].message.content == "br says: again"
    assert raw.headers["x-emancipate-attempts"] == "2"
    assert raw.headers["x-emancipate-provider"] == "br"


@pytest.mark.parametrize("fault", [RateLimit(), Status(503), Status(500),
                                   CutStream(after_events=0)])
@pytest.mark.parametrize("stream", [False, True])
def test_bedrock_outage_fails_over_to_the_in_house_model(gateway: GatewayProcess, sims,
                                                         fault, stream: bool) -> None:
    bedrock, _ = sims
    bedrock.inject(fault)
    client = gateway.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="haiku-or-inhouse", messages=_user("mid outage"), stream=True) as resp:
            provider = resp.headers["x-emancipate-provider"]
            text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="haiku-or-inhouse", messages=_user("mid outage"))
        provider = raw.headers["x-emancipate-provider"]
        text = raw.parse().choices[0].message.content
    assert (provider, text) == ("vllm", "inhouse says: mid outage")


@pytest.mark.parametrize("fault", [ErrorEvent(after_events=1, code=429),
                                   ErrorEvent(after_events=1, code=503),
                                   GarbageJSON(after_events=1)])
def test_a_stream_exception_before_any_text_fails_over(gateway: GatewayProcess, sims,
                                                       fault) -> None:
    bedrock, _ = sims
    bedrock.inject(fault)
    with gateway.client().chat.completions.with_streaming_response.create(
            model="haiku-or-inhouse", messages=_user("mid outage"), stream=True) as resp:
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
        assert resp.headers["x-emancipate-provider"] == "vllm"
    assert text == "inhouse says: mid outage"


def test_a_wrong_secret_is_refused_by_the_signature_check_as_an_auth_failure(
        gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="wrong", messages=_user("x"))
    assert info.value.status_code == 502
    assert "br-wrong" in info.value.body["message"]
    assert "check the AWS credentials" in info.value.body["message"]
    assert bedrock.received[-1].headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert WRONG_SECRET not in gateway.log() and SECRET not in gateway.log()


def test_an_auth_failure_fails_over_to_the_in_house_model(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="wrong-or-inhouse", messages=_user("who answers"))
    assert raw.headers["x-emancipate-provider"] == "vllm"
    assert raw.parse().choices[0].message.content == "inhouse says: who answers"


def test_a_validation_exception_reaches_the_client_as_a_400(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="haiku-or-inhouse",
                                                 messages=_user("x"), max_tokens=100000)
    assert "ValidationException" in info.value.body["message"]
    assert "exceeds the model limit of 8192" in info.value.body["message"]


def test_stream_cut_after_the_first_chunk_is_an_error_not_a_truncation(
        gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    bedrock.inject(CutStream(after_events=3), times=1)
    with pytest.raises(openai.APIError) as info:
        list(gateway.client().chat.completions.create(
            model="haiku-or-inhouse", messages=_user("a long answer here"), stream=True))
    assert info.value.body["code"] == "stream_interrupted"


# --- embeddings (InvokeModel) --------------------------------------------------------------------


def test_titan_embeddings_are_one_signed_invoke_call_per_input(gateway: GatewayProcess,
                                                               sims) -> None:
    bedrock, _ = sims
    bedrock.clear()
    texts = ["first text here", "the second"]
    answer = gateway.client().embeddings.create(model="titan", input=texts, dimensions=512)
    for item, text in zip(answer.data, texts, strict=True):
        assert item.embedding == pytest.approx(embedding_vector(text, 512), abs=1e-6)
    assert answer.usage.prompt_tokens == 5  # Titan's inputTextTokenCount, summed
    sent = sorted(bedrock.received, key=lambda r: r.json["inputText"])
    assert [r.path for r in sent] == [f"/model/{TITAN}/invoke"] * 2
    assert [r.json for r in sent] == [
        {"inputText": t, "normalize": True, "dimensions": 512} for t in sorted(texts)]
    assert all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256 ") for r in sent)


def test_titan_refuses_a_size_it_does_not_make(gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    bedrock.clear()
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().embeddings.create(model="titan", input="x", dimensions=300)
    assert info.value.body["param"] == "dimensions"
    assert "256 or 512 or 1024" in info.value.body["message"]
    assert bedrock.received == []  # refused before any call


def test_cohere_embeddings_go_in_one_call_counted_by_the_token_header(
        gateway: GatewayProcess, sims) -> None:
    bedrock, _ = sims
    bedrock.clear()
    texts = ["alpha beta", "gamma delta epsilon", "zeta"]
    answer = gateway.client().embeddings.create(model="cohere", input=texts,
                                                encoding_format="float",
                                                extra_body={"input_type": "search_query"})
    assert [d.embedding for d in answer.data] == [embedding_vector(t, 1024) for t in texts]
    assert answer.usage.prompt_tokens == 6  # X-Amzn-Bedrock-Input-Token-Count
    (sent,) = bedrock.received
    assert sent.json == {"texts": texts, "input_type": "search_query"}


def test_throttled_embeddings_are_retried_on_the_same_target(gateway: GatewayProcess,
                                                             sims) -> None:
    bedrock, _ = sims
    bedrock.clear()
    bedrock.inject(RateLimit(), times=1)
    answer = gateway.client().embeddings.create(model="cohere", input="again",
                                                encoding_format="float")
    assert answer.data[0].embedding == embedding_vector("again", 1024)
    assert len(bedrock.received) == 2
