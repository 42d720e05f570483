"""The `gemini` kind through a started gateway, against a simulated Gemini API (JSON and SSE)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from emancipate.testing import (
    BLOCK_PROMPT,
    UNSAFE_ANSWER,
    CutStream,
    RateLimit,
    SimulatedVendor,
    Status,
    embedding_vector,
)
from tests.gateway_process import GatewayProcess

GEMINI_KEY = "AIzaSyD-test-0123456789abcdefghijklmnop"
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}},
                   "required": ["echo"], "additionalProperties": False}}}]


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("gemini", name="gem", api_key=GEMINI_KEY) as gem, \
            SimulatedVendor("openai", name="inhouse") as inhouse:
        yield gem, inhouse


@pytest.fixture(scope="module")
def gateway(sims: tuple[SimulatedVendor, SimulatedVendor],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gem, inhouse = sims
    gemini = {"kind": "gemini", "base_url": gem.url, "api_key_env": "GEM_KEY",
              "ownership": "external", "vendor": "google",
              "retries": {"attempts": 2, "backoff_initial": 0, "max_retry_after": 1},
              "breaker": {"failures": 1000}}  # the outage tests must not open it for the rest
    config = {
        "providers": {
            "gem": gemini,
            "gem-badkey": {**gemini, "api_key_env": "GEM_WRONG"},
            "vllm": {"kind": "openai-compatible", "base_url": inhouse.url,
                     "ownership": "in-house", "vendor": "us"},
        },
        "routes": {
            "flash": {"targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]},
            "badkey": {"targets": [{"provider": "gem-badkey", "model": "gemini-2.5-flash"}]},
            "flash-or-inhouse": {"targets": [{"provider": "gem", "model": "gemini-2.5-flash"},
                                             {"provider": "vllm", "model": "llama"}]},
            "embed": {"targets": [{"provider": "gem", "model": "gemini-2.5-flash"},
                                  {"provider": "gem", "model": "gemini-embedding-001"}]},
        },
    }
    env = {"GEM_KEY": GEMINI_KEY, "GEM_WRONG": "AIzaSy-wrong-key-value-000000"}
    gw = GatewayProcess(config, tmp_path_factory.mktemp("gemini"), env).start()
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _no_faults(sims: tuple[SimulatedVendor, SimulatedVendor]) -> None:
    for sim in sims:
        sim.clear_faults()


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_plain_answer_with_system_instruction_and_usage(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="flash", messages=[{"role": "system", "content": "Be brief."},
                                 *_user("hello gemini")], max_tokens=40, temperature=0.1)
    answer = raw.parse()
    assert answer.choices[0].message.content == "gem says: hello gemini"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 4)
    assert raw.headers["x-emancipate-provider"] == "gem"
    sent = gem.received[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"temperature": 0.1, "maxOutputTokens": 40}


def test_streamed_answer_over_sse(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    chunks = list(gateway.client().chat.completions.create(
        model="flash", messages=_user("stream me now"), stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "gem says: stream me now"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert gem.received[-1].path.endswith(":streamGenerateContent")
    assert gem.received[-1].query == {"alt": "sse"}


def test_max_tokens_stop_is_length(gateway: GatewayProcess) -> None:
    answer = gateway.client().chat.completions.create(
        model="flash", messages=_user("one two three four"), max_tokens=2)
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "gem says:"


def test_tool_call_and_function_response_round_trip(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    client = gateway.client()
    messages: list = _user("find cats")
    first = client.chat.completions.create(model="flash", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "lookup", {"echo": "find cats"})
    assert "additionalProperties" not in json.dumps(gem.received[-1].json["tools"])
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"found": 3}'}]
    second = client.chat.completions.create(model="flash", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "gem says: find cats"
    turns = gem.received[-1].json["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert turns[2]["parts"] == [{"functionResponse": {"name": "lookup",
                                                       "response": {"found": 3}}}]


def test_streamed_tool_call(gateway: GatewayProcess) -> None:
    chunks = list(gateway.client().chat.completions.create(
        model="flash", messages=_user("find dogs"), tools=TOOLS, stream=True))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].function.name == "lookup"
    assert json.loads(calls[0].function.arguments) == {"echo": "find dogs"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_structured_output_follows_the_json_schema(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "rank"],
              "properties": {"city": {"type": "string"}, "rank": {"type": "integer"},
                             "tags": {"type": "array", "items": {"type": "string"}}}}
    answer = gateway.client().chat.completions.create(
        model="flash", messages=_user("Paris"),
        response_format={"type": "json_schema",
                         "json_schema": {"name": "city", "strict": True, "schema": schema}})
    assert json.loads(answer.choices[0].message.content) == {
        "city": "Paris", "rank": 1, "tags": ["Paris"]}
    config = gem.received[-1].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "additionalProperties" not in json.dumps(config["responseSchema"])


def test_json_object_mode(gateway: GatewayProcess) -> None:
    answer = gateway.client().chat.completions.create(
        model="flash", messages=_user("give json"), response_format={"type": "json_object"})
    assert json.loads(answer.choices[0].message.content) == {"echo": "give json"}


@pytest.mark.parametrize("text,reason", [(BLOCK_PROMPT, "blocked the prompt (SAFETY)"),
                                         (UNSAFE_ANSWER, "stopped the answer (SAFETY)")])
@pytest.mark.parametrize("stream", [False, True])
def test_safety_block_is_a_400_content_filter(gateway: GatewayProcess, text: str, reason: str,
                                              stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        result = gateway.client().chat.completions.create(
            model="flash-or-inhouse", messages=_user(f"please {text}"), stream=stream)
        list(result) if stream else None
    assert info.value.body["code"] == "content_filter"
    assert reason in info.value.body["message"]


def test_rate_limit_retries_after_the_retry_info_delay(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    gem.inject(RateLimit(retry_after=0.2), times=1)
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="flash", messages=_user("again"))
    assert raw.parse().choices[0].message.content == "gem says: again"
    assert raw.headers["x-emancipate-attempts"] == "2"


@pytest.mark.parametrize("fault", [RateLimit(retry_after=30), Status(503), Status(500),
                                   CutStream(after_events=0)])
@pytest.mark.parametrize("stream", [False, True])
def test_gemini_outage_fails_over_to_the_in_house_model(gateway: GatewayProcess, sims,
                                                        fault, stream: bool) -> None:
    gem, _ = sims
    gem.inject(fault)
    client = gateway.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="flash-or-inhouse", messages=_user("mid outage"), stream=True) as resp:
            provider = resp.headers["x-emancipate-provider"]
            text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="flash-or-inhouse", messages=_user("mid outage"))
        provider = raw.headers["x-emancipate-provider"]
        text = raw.parse().choices[0].message.content
    assert (provider, text) == ("vllm", "inhouse says: mid outage")


def test_invalid_api_key_is_an_auth_failure_not_a_client_error(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="badkey", messages=_user("x"))
    assert info.value.status_code == 502
    assert "gem-badkey" in info.value.body["message"]
    assert "AIzaSy-wrong-key-value-000000" not in gateway.log()
    assert GEMINI_KEY not in gateway.log()


def test_bad_request_from_gemini_reaches_the_client(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="flash-or-inhouse",
                                                 messages=_user("x"), max_tokens=100000)
    assert "INVALID_ARGUMENT" in info.value.body["message"]
    assert "maxOutputTokens value of 100000" in info.value.body["message"]


def test_stream_cut_after_the_first_chunk_is_an_error_not_a_truncation(
        gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    gem.inject(CutStream(after_events=2), times=1)
    with pytest.raises(openai.APIError) as info:
        list(gateway.client().chat.completions.create(
            model="flash-or-inhouse", messages=_user("a long answer here"), stream=True))
    assert info.value.body["code"] == "stream_interrupted"


# --- embeddings ----------------------------------------------------------------------------------


def _unit(vector: list[float]) -> list[float]:
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def test_embeddings_go_as_one_batch_embed_contents_call(gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    gem.clear()
    texts = ["the first text to embed", "and a second one"]
    answer = gateway.client().embeddings.create(model="embed", input=texts)  # base64 floats
    assert [d.index for d in answer.data] == [0, 1]
    for item, text in zip(answer.data, texts, strict=True):
        assert item.embedding == pytest.approx(embedding_vector(text, 3072), abs=1e-6)
    # The Gemini API counts no tokens for embeddings: four characters a token.
    assert answer.usage.prompt_tokens == sum(len(t) // 4 for t in texts)
    (sent,) = gem.received  # the chat model of the route does not serve embeddings
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
        for t in texts]}


def test_embedding_dimensions_are_shortened_by_google_and_normalised_again(
        gateway: GatewayProcess, sims) -> None:
    gem, _ = sims
    answer = gateway.client().embeddings.create(model="embed", input="short me",
                                                dimensions=256, encoding_format="float")
    vector = answer.data[0].embedding
    assert len(vector) == 256
    assert vector == pytest.approx(_unit(embedding_vector("short me", 3072)[:256]))
    assert sum(v * v for v in vector) == pytest.approx(1.0)
    assert gem.received[-1].json["requests"][0]["outputDimensionality"] == 256


def test_a_chat_only_route_refuses_embeddings(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().embeddings.create(model="flash", input="x")
    assert info.value.code == "model_not_supported"
    assert info.value.body["param"] == "model"

