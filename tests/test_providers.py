"""The adapters' shared pure pieces (providers/base.py, structured.py, embeddings.py) and
what each kind makes of the request fields of issue 13, tested without a process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bpe_openai import get_encoding

from emancipate.config import AnthropicProvider, EmbeddedProvider, GeminiProvider
from emancipate.protocol import ChatCompletionRequest
from emancipate.providers.anthropic import Anthropic
from emancipate.providers.base import ProviderError, Unsupported, check_legacy, check_parts
from emancipate.providers.embedded import Embedded
from emancipate.providers.embeddings import decoded_texts
from emancipate.providers.gemini import Gemini
from emancipate.providers.gemini_translate import generate_request
from emancipate.providers.structured import structured_spec

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PDF = "data:application/pdf;base64,JVBERi0xLjcK"
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}


def _request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def _with_parts(*parts: dict[str, Any]) -> ChatCompletionRequest:
    return _request(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, *parts]}])


def _anthropic() -> Anthropic:
    return Anthropic("claude", AnthropicProvider(
        kind="anthropic", ownership="external", vendor="anthropic", api_key_env=None))


# --- structured output ----------------------------------------------------------------------


def test_structured_spec_names_the_tool_after_the_schema_and_cleans_the_name() -> None:
    spec = structured_spec({"response_format": {"type": "json_schema", "json_schema": {
        "name": "city answer!", "schema": SCHEMA}}})
    assert spec is not None and spec.name == "city_answer_" and spec.schema == SCHEMA
    plain = structured_spec({"response_format": {"type": "json_object"}})
    assert plain is not None and plain.name == "json_answer"
    assert plain.schema == {"type": "object"}
    assert structured_spec({"response_format": {"type": "text"}}) is None


def test_anthropic_asks_for_structured_output_with_one_forced_tool() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "where?"}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "place", "schema": SCHEMA}}}
    sent = _anthropic().to_messages_request(body, "claude-x")
    assert sent["tool_choice"] == {"type": "tool", "name": "place"}
    assert sent["tools"] == [{"name": "place", "description": sent["tools"][0]["description"],
                              "input_schema": SCHEMA}]


def test_anthropic_refuses_structured_output_together_with_tools() -> None:
    request = _request(response_format={"type": "json_object"}, tools=[
        {"type": "function", "function": {"name": "f", "parameters": {}}}])
    with pytest.raises(Unsupported) as info:
        _anthropic().check(request, "claude-x")
    assert info.value.param == "response_format"


# --- content parts --------------------------------------------------------------------------


def test_check_parts_names_the_part_path_and_its_type() -> None:
    with pytest.raises(Unsupported) as info:
        check_parts(_with_parts(AUDIO), "target 't'", frozenset({"text"}))
    assert info.value.param == "messages[0].content[1].type"
    assert "'input_audio'" in info.value.reason and "it takes text" in info.value.reason


def test_anthropic_takes_an_inline_pdf_as_a_document_and_refuses_the_rest() -> None:
    claude = _anthropic()
    pdf = {"type": "file", "file": {"file_data": PDF}}
    claude.check(_with_parts(pdf), "claude-x")
    blocks = claude.to_messages_request(
        {"messages": [{"role": "user", "content": [pdf]}]}, "claude-x")["messages"][0]["content"]
    assert blocks == [{"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjcK"}}]
    for part, reason in (({"type": "file", "file": {"file_id": "file-1"}}, "file_id"),
                         ({"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}},
                          "not text/csv"),
                         (AUDIO, "'input_audio'")):
        with pytest.raises(Unsupported) as info:
            claude.check(_with_parts(part), "claude-x")
        assert reason in info.value.reason


def test_gemini_sends_audio_and_inline_files_as_inline_data() -> None:
    body = {"messages": [{"role": "user", "content": [
        AUDIO, {"type": "file", "file": {"file_data": PDF}},
        {"type": "refusal", "refusal": "no"}]}]}
    parts = generate_request(body)["contents"][0]["parts"]
    assert parts == [{"inlineData": {"mimeType": "audio/wav", "data": "UklGRiQAAABXQVZF"}},
                     {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjcK"}},
                     {"text": "no"}]
    gemini = Gemini("gem", GeminiProvider(kind="gemini", ownership="external", vendor="google",
                                            api_key_env=None))
    with pytest.raises(Unsupported) as info:
        gemini.check(_with_parts({"type": "file", "file": {"file_id": "file-1"}}), "g")
    assert info.value.param == "messages[0].content[1]"


# --- legacy function calling and custom tools -----------------------------------------------


@pytest.mark.parametrize(("fields", "param"), [
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"function_call": "auto"}, "function_call"),
    ({"tools": [{"type": "custom", "custom": {"name": "sql"}}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": "hi"},
                   {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                   {"role": "function", "name": "f", "content": "1"}]},
     "messages[1].function_call"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "custom", "custom": {"name": "sql", "input": "select 1"}}]}]},
     "messages[0].tool_calls[0]"),
])
def test_legacy_functions_and_custom_tools_are_refused_by_name(
        fields: dict[str, Any], param: str) -> None:
    with pytest.raises(Unsupported) as info:
        check_legacy(_request(**fields), "target 't'")
    assert info.value.param == param


def test_the_embedded_model_refuses_legacy_functions_and_files() -> None:
    embedded = Embedded("embedded", EmbeddedProvider(kind="embedded"))
    try:
        with pytest.raises(Unsupported) as info:
            embedded.check(_request(functions=[{"name": "f"}]), "m")
        assert info.value.param == "functions"
        with pytest.raises(Unsupported) as info:
            embedded.check(_with_parts({"type": "file", "file": {"file_data": PDF}}), "m")
        assert info.value.param == "messages[0].content[1].type"
    finally:
        asyncio.run(embedded.aclose())


# --- embeddings ---------------------------------------------------------------------------


def test_token_ids_are_decoded_as_cl100k_base() -> None:
    ids = get_encoding("cl100k_base").encode("the cat sat")
    assert decoded_texts({"input": ids}, "m") == ["the cat sat"]
    assert decoded_texts({"input": [ids, ids[:1]]}, "m") == ["the cat sat", "the"]
    assert decoded_texts({"input": ["as", "is"]}, "m") == ["as", "is"]
    with pytest.raises(ProviderError) as info:
        decoded_texts({"input": [ids, []]}, "m")
    assert info.value.param == "input[1]" and "empty" in info.value.message
    with pytest.raises(ProviderError) as info:
        decoded_texts({"input": [-1]}, "m")
    assert info.value.param == "input" and "-1" in info.value.message
