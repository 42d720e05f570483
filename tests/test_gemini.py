"""The pure OpenAI ⇄ generateContent translation (`providers/gemini_translate.py`)."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from emancipate.providers import ProviderError
from emancipate.providers.embeddings import embedding_list, texts_of, unit
from emancipate.providers.gemini_translate import (
    GeminiStream,
    completion_from,
    embed_request,
    error_for,
    generate_request,
    openapi_schema,
    predict_request,
    predictions_from,
    vectors_from,
)

WHO = "provider 'gem'"


def test_system_multi_turn_and_tool_results_become_contents() -> None:
    body = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather",
                                                          "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "weather",
                                                          "arguments": '{"city": "Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"celsius": 21}'},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And this?"}, {
            "type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ]}
    out = generate_request(body)
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse metric units."}]}
    roles = [c["role"] for c in out["contents"]]
    assert roles == ["user", "model", "user"]  # both answers and the next question: one turn
    assert out["contents"][1]["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "weather", "args": {"city": "Lyon"}}}]
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"celsius": 21}}},
        {"functionResponse": {"name": "weather", "response": {"content": "sunny"}}},
        {"text": "And this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]


def test_generation_parameters_and_tools() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "top_p": 0.9,
            "max_completion_tokens": 50, "stop": "END", "n": 2, "seed": 7,
            "tools": [{"type": "function", "function": {
                "name": "lookup", "description": "Look up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                               "additionalProperties": False}}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}}}
    out = generate_request(body)
    assert out["generationConfig"] == {"temperature": 0.2, "topP": 0.9, "seed": 7,
                                       "maxOutputTokens": 50, "candidateCount": 2,
                                       "stopSequences": ["END"]}
    assert out["tools"] == [{"functionDeclarations": [{
        "name": "lookup", "description": "Look up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]
    assert out["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["lookup"]}}


def test_json_schema_is_rewritten_to_the_openapi_subset() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"city": {"type": "string"}, "note": {"type": ["string", "null"]},
                             "kind": {"const": "town"}, "at": {"$ref": "#/$defs/Point"}},
              "required": ["city"], "additionalProperties": False,
              "$defs": {"Point": {"type": "object", "properties": {"lat": {"type": "number"}},
                                  "additionalProperties": False}}}
    assert openapi_schema(schema) == {
        "type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"}, "note": {"type": "string", "nullable": True},
            "kind": {"enum": ["town"]},
            "at": {"type": "object", "properties": {"lat": {"type": "number"}}}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "strict": True, "schema": schema}}
    config = generate_request({"messages": [{"role": "user", "content": "x"}],
                               "response_format": fmt})["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "additionalProperties" not in json.dumps(config["responseSchema"])


def test_a_recursive_schema_is_refused_naming_response_format() -> None:
    schema = {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {
        "next": {"$ref": "#/$defs/Node"}}}}}
    with pytest.raises(ProviderError) as info:
        openapi_schema(schema)
    assert (info.value.kind, info.value.param) == ("client_error", "response_format")


def test_answer_with_text_tool_calls_and_usage() -> None:
    data = {"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
            "parts": [{"text": "thinking...", "thought": True}, {"text": "Let me check."},
                      {"functionCall": {"name": "lookup", "args": {"q": "x"}}}]}}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4,
                              "thoughtsTokenCount": 3, "totalTokenCount": 17},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"}
    out = completion_from(data, "m", WHO)
    message = out["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q":"x"}'}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
    assert out["id"] == "chatcmpl-abc"


def test_blocked_prompt_and_safety_stop_are_content_filter_errors() -> None:
    for data, fragment in (
            ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "PROHIBITED_CONTENT"),
            ({"candidates": [{"finishReason": "SAFETY", "index": 0}]}, "SAFETY")):
        with pytest.raises(ProviderError) as info:
            completion_from(data, "m", WHO)
        err = info.value
        assert (err.kind, err.status, err.code) == ("client_error", 400, "content_filter")
        assert fragment in err.message and "safety" in err.message


def test_partial_answer_stopped_for_safety_keeps_its_text() -> None:
    data = {"candidates": [{"finishReason": "SAFETY", "content": {"parts": [{"text": "Part"}]}}]}
    choice = completion_from(data, "m", WHO)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Part", "content_filter")


def test_stream_state_builds_chunks_and_knows_when_complete() -> None:
    state = GeminiStream("m", WHO)
    first = state.chunks({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert not state.complete
    last = state.chunks({"candidates": [{"content": {"parts": [{"text": "lo"}]},
                                         "finishReason": "MAX_TOKENS"}],
                         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2}})
    assert [c["choices"][0]["finish_reason"] for c in last] == [None, "length"]
    assert state.complete
    assert state.final()["usage"]["total_tokens"] == 4


def test_stream_safety_stop_before_any_text_fails_before_the_first_chunk() -> None:
    with pytest.raises(ProviderError) as info:
        GeminiStream("m", WHO).chunks({"candidates": [{"finishReason": "SAFETY"}]})
    assert info.value.code == "content_filter"


def test_errors_map_to_fault_kinds_with_the_retry_hint() -> None:
    def body(status: int, state: str, *details: dict[str, str]) -> bytes:
        return json.dumps({"error": {"code": status, "message": "m", "status": state,
                                     "details": list(details)}}).encode()

    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    bad_key = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    cases = [
        (429, body(429, "RESOURCE_EXHAUSTED", retry), "rate_limited", 37.0),
        (503, body(503, "UNAVAILABLE"), "upstream_5xx", None),
        (500, body(500, "INTERNAL"), "upstream_5xx", None),
        (400, body(400, "INVALID_ARGUMENT", bad_key), "upstream_auth", None),
        (403, body(403, "PERMISSION_DENIED"), "upstream_auth", None),
        (401, body(401, "UNAUTHENTICATED"), "upstream_auth", None),
        (400, body(400, "INVALID_ARGUMENT"), "client_error", None),
        (502, b"<html>bad gateway</html>", "upstream_5xx", None),
    ]
    for status, raw, kind, retry_after in cases:
        err = error_for(status, raw, None, WHO)
        assert (err.kind, err.retry_after) == (kind, retry_after), (status, raw)
    assert error_for(429, body(429, "RESOURCE_EXHAUSTED", retry), 2.0, WHO).retry_after == 2.0


# --- embeddings ----------------------------------------------------------------------------------


def test_batch_embed_contents_names_the_model_in_every_request() -> None:
    body = embed_request(["a", "b"], "models/gemini-embedding-001", 128)
    assert body == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]},
         "outputDimensionality": 128} for t in ("a", "b")]}
    assert "outputDimensionality" not in embed_request(["a"], "models/m", None)["requests"][0]


def test_vertex_predict_body_and_its_token_statistics() -> None:
    assert predict_request(["a", "b"], 256) == {
        "instances": [{"content": "a"}, {"content": "b"}],
        "parameters": {"outputDimensionality": 256}}
    assert predict_request(["a"], None) == {"instances": [{"content": "a"}]}
    answer = {"predictions": [
        {"embeddings": {"values": [0.5, 0.5], "statistics": {"token_count": 3}}},
        {"embeddings": {"values": [1, 0], "statistics": {"token_count": 4}}}]}
    assert predictions_from(answer, 2, WHO) == ([[0.5, 0.5], [1.0, 0.0]], 7)


@pytest.mark.parametrize("answer", [{}, {"embeddings": [{"values": [1.0]}]},
                                    {"embeddings": [{"values": []}, {"values": [1.0]}]}])
def test_an_answer_without_one_vector_per_input_is_a_bad_response(answer: dict) -> None:
    with pytest.raises(ProviderError) as info:
        vectors_from(answer, 2, WHO)
    assert info.value.kind == "bad_response"


def test_token_ids_are_refused_naming_input() -> None:
    assert texts_of({"input": "one"}, WHO) == ["one"]
    with pytest.raises(ProviderError) as info:
        texts_of({"input": [[101, 2023]]}, WHO)
    assert (info.value.kind, info.value.param) == ("client_error", "input")


def test_embedding_list_encodes_base64_as_little_endian_float32() -> None:
    vector = unit([3.0, 4.0])
    assert vector == [0.6, 0.8]
    as_floats = embedding_list([vector], "m", 5, None)
    assert as_floats["data"] == [{"object": "embedding", "index": 0, "embedding": vector}]
    assert as_floats["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    packed = embedding_list([vector], "m", 5, "base64")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(packed)) == pytest.approx(vector)
