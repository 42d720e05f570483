"""The `bedrock` kind's pure parts: Converse translation, the event-stream framing, SigV4."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from emancipate.config import BedrockProvider, ConfigError, parse_config
from emancipate.providers import ProviderError
from emancipate.providers.aws_signing import AwsSigner
from emancipate.providers.bedrock_translate import (
    ConverseStream,
    cohere_request,
    cohere_vectors,
    completion_from,
    converse_request,
    embedding_family,
    error_for,
    image_refusal,
    stream_error_for,
    titan_request,
    titan_vector,
)
from emancipate.providers.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    FrameTooLarge,
)
from emancipate.providers.structured import structured_tool
from emancipate.testing import BedrockWire
from emancipate.testing.bedrock_wire import encode_message, event_frame, sigv4_signature

WHO = "provider 'br'"
TOOLS = [{"type": "function", "function": {
    "name": "weather", "description": "Weather now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]

# --- translation -----------------------------------------------------------------------------


def test_system_multi_turn_tool_results_and_images_become_converse_messages() -> None:
    body = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather",
                                                          "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "weather",
                                                          "arguments": '{"city": "Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"celsius": 21}'},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And this?"}, {
            "type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ], "tools": TOOLS}
    out = converse_request(body)
    assert out["system"] == [{"text": "Be brief."}, {"text": "Use metric units."}]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"text": "Checking."},
        {"toolUse": {"toolUseId": "c1", "name": "weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "c2", "name": "weather", "input": {"city": "Lyon"}}}]
    assert out["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "c1", "content": [{"json": {"celsius": 21}}],
                        "status": "success"}},
        {"toolResult": {"toolUseId": "c2", "content": [{"text": "sunny"}], "status": "success"}},
        {"text": "And this?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]


def test_inference_config_and_tool_choices() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "top_p": 0.9,
            "max_completion_tokens": 50, "stop": "END", "seed": 7, "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "weather"}}}
    out = converse_request(body)
    assert out["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "topP": 0.9,
                                      "stopSequences": ["END"]}
    assert out["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "weather", "description": "Weather now",
        "inputSchema": {"json": TOOLS[0]["function"]["parameters"]}}}],
        "toolChoice": {"tool": {"name": "weather"}}}
    for choice, expected in (("auto", {"auto": {}}), ("required", {"any": {}})):
        assert converse_request({**body, "tool_choice": choice})["toolConfig"][
            "toolChoice"] == expected


def test_tool_choice_none_leaves_tools_out_unless_the_history_needs_them() -> None:
    plain = {"messages": [{"role": "user", "content": "x"}], "tools": TOOLS, "tool_choice": "none"}
    assert "toolConfig" not in converse_request(plain)
    history = {**plain, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
    assert converse_request(history)["toolConfig"] == {
        "tools": converse_request({**plain, "tool_choice": "auto"})["toolConfig"]["tools"]}


def test_images_converse_cannot_read_are_refused_with_the_reason() -> None:
    assert image_refusal("data:image/jpeg;base64,/9j/") is None
    assert "not links" in image_refusal("https://example.com/cat.png")
    assert "not image/tiff" in image_refusal("data:image/tiff;base64,AAAA")


def test_answer_with_text_tool_calls_and_cached_usage() -> None:
    data = {"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "hmm"}}}, {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Oslo"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 10, "outputTokens": 4,
                                            "cacheReadInputTokens": 90, "totalTokens": 104}}
    out = completion_from(data, "m", WHO)
    message = out["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"] == [{"id": "tu1", "type": "function", "function": {
        "name": "weather", "arguments": '{"city":"Oslo"}'}}]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {"prompt_tokens": 100, "completion_tokens": 4, "total_tokens": 104}


@pytest.mark.parametrize("reason,finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                           ("max_tokens", "length"),
                                           ("guardrail_intervened", "content_filter")])
def test_stop_reasons_map_to_finish_reasons(reason: str, finish: str) -> None:
    data = {"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
            "stopReason": reason, "usage": {"inputTokens": 1, "outputTokens": 1}}
    assert completion_from(data, "m", WHO)["choices"][0]["finish_reason"] == finish


def test_a_guardrail_that_stops_the_answer_before_any_text_is_a_content_filter_error() -> None:
    data = {"output": {"message": {"role": "assistant", "content": []}},
            "stopReason": "guardrail_intervened"}
    with pytest.raises(ProviderError) as info:
        completion_from(data, "m", WHO)
    err = info.value
    assert (err.kind, err.status, err.code) == ("client_error", 400, "content_filter")
    assert "guardrail_intervened" in err.message
    with pytest.raises(ProviderError) as info:
        ConverseStream("m", WHO).chunks("messageStop", {"stopReason": "content_filtered"})
    assert info.value.code == "content_filter"


def test_an_answer_without_output_is_a_bad_response() -> None:
    with pytest.raises(ProviderError) as info:
        completion_from({"stopReason": "end_turn"}, "m", WHO)
    assert info.value.kind == "bad_response"


def test_stream_state_builds_text_and_tool_call_chunks_and_knows_when_complete() -> None:
    state = ConverseStream("m", WHO)
    assert state.chunks("messageStart", {"role": "assistant"}) == []
    first = state.chunks("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    start = state.chunks("contentBlockStart", {"contentBlockIndex": 1, "start": {
        "toolUse": {"toolUseId": "tu1", "name": "weather"}}})
    assert start[0]["choices"][0]["delta"]["tool_calls"] == [{
        "index": 0, "id": "tu1", "type": "function",
        "function": {"name": "weather", "arguments": ""}}]
    piece = state.chunks("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
        "toolUse": {"input": '{"city":'}}})
    assert piece[0]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "function": {"arguments": '{"city":'}}]
    assert not state.complete
    stop = state.chunks("messageStop", {"stopReason": "tool_use"})
    assert stop[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert state.complete
    state.chunks("metadata", {"usage": {"inputTokens": 3, "outputTokens": 5}})
    assert state.final()["usage"] == {"prompt_tokens": 3, "completion_tokens": 5,
                                      "total_tokens": 8}


CITY = {"type": "object", "properties": {"name": {"type": "string"}},
        "required": ["name"], "additionalProperties": False}


def test_json_schema_output_is_asked_for_as_one_forced_tool() -> None:
    body = {"messages": [{"role": "user", "content": "a city"}], "response_format": {
        "type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": CITY}}}
    assert converse_request(body)["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "city", "inputSchema": {"json": CITY}, "description":
                                "Give the answer as this tool's input: a JSON object that "
                                "follows the schema."}}],
        "toolChoice": {"tool": {"name": "city"}}}
    json_mode = {**body, "response_format": {"type": "json_object"}}
    spec = converse_request(json_mode)["toolConfig"]["tools"][0]["toolSpec"]
    assert (spec["name"], spec["inputSchema"]) == ("json_answer", {"json": {"type": "object"}})
    odd = {**body, "response_format": {"type": "json_schema",
                                       "json_schema": {"name": "a city!", "schema": CITY}}}
    assert structured_tool(odd) == "a_city_"
    assert structured_tool({**body, "response_format": {"type": "text"}}) is None


def test_the_forced_tools_input_is_the_content_and_the_finish_a_stop() -> None:
    data = {"output": {"message": {"role": "assistant", "content": [
        {"text": "Here it is:"},
        {"toolUse": {"toolUseId": "tu1", "name": "city", "input": {"name": "Oslo"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 3, "outputTokens": 4}}
    choice = completion_from(data, "m", WHO, "city")["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"name":"Oslo"}'}
    assert choice["finish_reason"] == "stop"


def test_a_streamed_forced_tools_input_arrives_as_content_deltas() -> None:
    state = ConverseStream("m", WHO, "city")
    assert state.chunks("contentBlockDelta", {"contentBlockIndex": 0,
                                              "delta": {"text": "Sure:"}}) == []
    assert state.chunks("contentBlockStart", {"contentBlockIndex": 1, "start": {
        "toolUse": {"toolUseId": "tu1", "name": "city"}}}) == []
    pieces = [state.chunks("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
        "toolUse": {"input": piece}}}) for piece in ('{"name":', ' "Oslo"}')]
    deltas = [chunk["choices"][0]["delta"] for piece in pieces for chunk in piece]
    assert deltas == [{"role": "assistant", "content": '{"name":'}, {"content": ' "Oslo"}'}]
    stop = state.chunks("messageStop", {"stopReason": "tool_use"})
    assert [c["choices"][0]["finish_reason"] for c in stop] == ["stop"]


def test_errors_map_to_fault_kinds() -> None:
    cases = [
        (429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
         "rate_limited"),
        (503, "ServiceUnavailableException", "upstream_5xx"),
        (429, "ModelNotReadyException", "upstream_5xx"),
        (500, "InternalServerException", "upstream_5xx"),
        (424, "ModelErrorException", "upstream_5xx"),
        (403, "AccessDeniedException", "upstream_auth"),
        (403, "UnrecognizedClientException", "upstream_auth"),
        (403, "InvalidSignatureException", "upstream_auth"),
        (400, "ValidationException", "client_error"),
        (400, "ServiceQuotaExceededException", "rate_limited"),
        (502, "", "upstream_5xx"),
    ]
    for status, error_type, kind in cases:
        err = error_for(status, error_type, b'{"message": "m"}', WHO)
        assert err.kind == kind, (status, error_type)
    bad = error_for(400, "ValidationException", b'{"message": "maxTokens too big"}', WHO)
    assert (bad.code, bad.status) == ("ValidationException", 400)
    assert "maxTokens too big" in bad.message
    auth = error_for(403, "", b'{"__type": "UnrecognizedClientException", "Message": "x"}', WHO)
    assert auth.kind == "upstream_auth" and "check the AWS credentials" in auth.message
    mid = stream_error_for("exception", "throttlingException", b'{"message": "slow"}', WHO)
    assert (mid.kind, mid.status) == ("rate_limited", 429)
    assert "mid-stream exception" in mid.message


# --- the event-stream framing ----------------------------------------------------------------


def _frames() -> list[bytes]:
    return [event_frame("messageStart", {"role": "assistant"}),
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "é" * 50}}),
            encode_message({":message-type": "exception", ":exception-type":
                            "throttlingException"}, b'{"message": "slow down"}')]


def test_event_stream_round_trip_in_pieces_of_any_size() -> None:
    wire = b"".join(_frames())
    for size in (1, 7, 13, len(wire)):
        decoder = EventStreamDecoder(1 << 20)
        messages = [m for i in range(0, len(wire), size) for m in decoder.feed(wire[i:i + size])]
        assert decoder.pending == 0
        assert [(m.message_type, m.event_type) for m in messages] == [
            ("event", "messageStart"), ("event", "contentBlockDelta"),
            ("exception", "throttlingException")]
        assert json.loads(messages[1].payload)["delta"]["text"] == "é" * 50


def test_botocore_decodes_the_simulators_frames_as_aws_framing() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(_frames()))
    decoded = [(m.headers, m.payload) for m in buffer]
    assert [h.get(":event-type") or h.get(":exception-type") for h, _ in decoded] == [
        "messageStart", "contentBlockDelta", "throttlingException"]
    assert decoded[2][1] == b'{"message": "slow down"}'


def test_header_value_types_other_than_strings_decode() -> None:
    headers = (b"\x01b\x00" + b"\x01i\x04" + struct.pack(">i", -5) + b"\x01t\x08"
               + struct.pack(">q", 1700000000000) + b"\x01y\x06" + struct.pack(">H", 2)
               + b"\x00\x01"
               + b"\x01u\x09" + bytes(range(16)))
    prelude = struct.pack(">II", 12 + len(headers) + 4, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers
    message += struct.pack(">I", zlib.crc32(message))
    (decoded,) = EventStreamDecoder(1024).feed(message)
    assert decoded.headers == {"b": True, "i": -5, "t": 1700000000000, "y": b"\x00\x01",
                               "u": bytes(range(16))}


def test_broken_checksums_and_oversized_messages_are_refused() -> None:
    frame = bytearray(_frames()[1])
    body = bytearray(frame)
    body[-1] ^= 1
    with pytest.raises(EventStreamError, match="message checksum"):
        EventStreamDecoder(1 << 20).feed(bytes(body))
    prelude = bytearray(frame)
    prelude[9] ^= 1
    with pytest.raises(EventStreamError, match="prelude checksum"):
        EventStreamDecoder(1 << 20).feed(bytes(prelude))
    with pytest.raises(FrameTooLarge):
        EventStreamDecoder(64).feed(bytes(frame))


# --- Signature V4 ----------------------------------------------------------------------------

SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("method,path,query,signature", [
    ("GET", "/", {}, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("POST", "/", {}, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("GET", "/", {"Param2": "value2", "Param1": "value1"},
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("GET", "/\u1234", {}, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
])
def test_the_simulators_sigv4_matches_aws_published_test_vectors(
        method: str, path: str, query: dict[str, str], signature: str) -> None:
    """get-vanilla, post-vanilla, get-vanilla-query-order-key-case and get-utf8 from AWS's
    Signature Version 4 test suite (AKIDEXAMPLE, 20150830T123600Z, us-east-1, `service`)."""
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    assert sigv4_signature(SUITE_SECRET, method=method, raw_path=path, query=query,
                           headers=headers, signed=["host", "x-amz-date"], payload=b"",
                           amz_date="20150830T123600Z", region="us-east-1",
                           service="service") == signature


def _signed(secret: str, url: str, body: bytes, region: str = "eu-west-3") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIAEXAMPLE", secret), "bedrock", region).add_auth(request)
    return {k.lower(): str(v) for k, v in request.headers.items()} | {"host": "127.0.0.1:9"}


def test_the_simulator_accepts_botocore_signatures_and_refuses_wrong_secrets() -> None:
    wire = BedrockWire(access_key_id="AKIAEXAMPLE", secret_access_key="s3cret", region="eu-west-3")
    path = "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    url, body = "http://127.0.0.1:9" + path, b'{"messages": []}'
    assert wire.denied("POST", path, _signed("s3cret", url, body), body, {}) is None
    for headers, error_type in (
            (_signed("wrong", url, body), "InvalidSignatureException"),
            (_signed("s3cret", url, body, region="us-east-1"), "InvalidSignatureException"),
            (_signed("s3cret", url, body) | {"authorization": "AWS4-HMAC-SHA256 Credential="
             "AKIAOTHER/20250101/eu-west-3/bedrock/aws4_request, SignedHeaders=host, "
             "Signature=00"}, "UnrecognizedClientException"),
            ({}, "MissingAuthenticationTokenException")):
        answer = wire.denied("POST", path, headers, body, {})
        assert answer is not None and answer.status == 403
        assert answer.headers["x-amzn-ErrorType"].startswith(error_type)
    tampered = wire.denied("POST", path, _signed("s3cret", url, body), b'{"messages": [1]}', {})
    assert tampered is not None and tampered.status == 403


def test_signer_uses_the_named_environment_variables_and_a_session_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BR_KEY", "AKIAEXAMPLE")
    monkeypatch.setenv("BR_SECRET", "s3cret")
    monkeypatch.setenv("BR_TOKEN", "session-token-value")
    cfg = BedrockProvider(kind="bedrock", region="eu-west-3", ownership="external",
                          vendor="amazon", access_key_id_env="BR_KEY",
                          secret_access_key_env="BR_SECRET", session_token_env="BR_TOKEN")
    url = "http://127.0.0.1:9/model/m/converse"
    headers = asyncio.run(AwsSigner("br", cfg).headers_for(url, b"{}", {"Accept": "x"}))
    assert headers["X-Amz-Security-Token"] == "session-token-value"
    assert headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/{time.strftime('%Y%m%d', time.gmtime())}"
        "/eu-west-3/bedrock/aws4_request")


def test_missing_credentials_are_an_auth_failure_naming_the_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BR_NONE_KEY", raising=False)
    cfg = BedrockProvider(kind="bedrock", region="eu-west-3", ownership="external",
                          vendor="amazon", access_key_id_env="BR_NONE_KEY",
                          secret_access_key_env="BR_NONE_SECRET")
    with pytest.raises(ProviderError) as info:
        asyncio.run(AwsSigner("br", cfg).headers_for("http://h/model/m/converse", b"", {}))
    assert info.value.kind == "upstream_auth"
    assert "BR_NONE_KEY" in info.value.message and "BR_NONE_SECRET" in info.value.message


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("entry,key,fragment", [
    ({"region": "us-east-1", "access_key_id_env": "K"}, "providers.br",
     "both `access_key_id_env` and `secret_access_key_env`"),
    ({"region": "us-east-1", "profile": "p", "access_key_id_env": "K",
      "secret_access_key_env": "S"}, "providers.br", "`profile` or `access_key_id_env`"),
    ({"region": "US East"}, "providers.br.region", "should match pattern"),
    ({}, "providers.br.region", "Field required"),
    ({"region": "us-east-1", "endpoint_url": "localhost:4566"}, "providers.br.endpoint_url",
     "http://"),
])
def test_bad_bedrock_entries_fail_at_start_up_naming_the_key(entry: dict[str, str], key: str,
                                                              fragment: str) -> None:
    doc = {"providers": {"br": {"kind": "bedrock", "ownership": "external", "vendor": "amazon",
                                **entry}}}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "gateway.yaml")
    assert (info.value.source, info.value.key) == ("gateway.yaml", key)
    assert fragment in info.value.reason


# --- embeddings (InvokeModel bodies) ----------------------------------------------------------


@pytest.mark.parametrize(("model", "family"), [
    ("amazon.titan-embed-text-v2:0", "titan"), ("amazon.titan-embed-text-v1", "titan"),
    ("cohere.embed-english-v3", "cohere"), ("us.cohere.embed-multilingual-v3", "cohere"),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", None), ("amazon.titan-text-express-v1", None)])
def test_embedding_family_by_model_id(model: str, family: str | None) -> None:
    assert embedding_family(model) == family


def test_titan_v2_body_is_normalised_and_shortened_to_an_allowed_size() -> None:
    model = "amazon.titan-embed-text-v2:0"
    assert titan_request("hi", model, None) == {"inputText": "hi", "normalize": True}
    assert titan_request("hi", model, 512) == {"inputText": "hi", "normalize": True,
                                               "dimensions": 512}
    with pytest.raises(ProviderError) as info:
        titan_request("hi", model, 300)
    assert (info.value.kind, info.value.param) == ("client_error", "dimensions")
    assert "256 or 512 or 1024" in info.value.message
    assert titan_request("hi", "amazon.titan-embed-text-v1", None) == {"inputText": "hi"}
    assert titan_vector({"embedding": [1, 0], "inputTextTokenCount": 2}, "p") == ([1.0, 0.0], 2)


def test_cohere_body_defaults_to_search_document_and_refuses_other_sizes() -> None:
    model = "cohere.embed-english-v3"
    assert cohere_request(["a"], None, model, None) == {"texts": ["a"],
                                                        "input_type": "search_document"}
    assert cohere_request(["a"], "search_query", model, 1024)["input_type"] == "search_query"
    for input_type, dims, param in (("nonsense", None, "input_type"), (None, 512, "dimensions")):
        with pytest.raises(ProviderError) as info:
            cohere_request(["a"], input_type, model, dims)
        assert (info.value.kind, info.value.param) == ("client_error", param)
    assert cohere_vectors({"embeddings": [[1, 2]]}, 1, "p") == [[1.0, 2.0]]
    assert cohere_vectors({"embeddings": {"float": [[1, 2]]}}, 1, "p") == [[1.0, 2.0]]
    with pytest.raises(ProviderError) as bad:
        cohere_vectors({"embeddings": []}, 1, "p")
    assert bad.value.kind == "bad_response"
