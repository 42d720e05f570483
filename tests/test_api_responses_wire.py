"""The Responses and completions wires as pure translations (no process): request bodies
to chat requests, chat chunks to typed events, what is refused. The end-to-end behaviour is
in tests/test_responses_api.py and tests/test_completions_api.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emancipate.api.completions import chat_request
from emancipate.api.responses import input_messages, responses_call
from emancipate.api.responses_stream import ResponseEvents
from emancipate.context import RequestContext
from emancipate.protocol import OpenAIError


def test_consecutive_function_calls_join_one_assistant_message() -> None:
    messages = input_messages([
        {"role": "user", "content": "two cities"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Looking both up."}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":1}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"city\":2}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sun"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert messages[1]["content"] == "Looking both up."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": "rain"}


def test_a_function_call_after_a_user_message_opens_an_assistant_message() -> None:
    messages = input_messages([
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}])
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_the_chat_request_carries_what_translates_and_not_the_rest() -> None:
    call = responses_call({
        "model": "m", "input": "hi", "instructions": "be brief", "stream": True,
        "max_output_tokens": 9, "metadata": {"a": "b"}, "store": False,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"},
                   "strict": True}], "parallel_tool_calls": False, "tool_choice": "required",
        "reasoning": {"effort": "low"}, "safety_identifier": "person-7",
        "include": ["reasoning.encrypted_content"], "truncation": "auto"})
    assert call.chat == {
        "model": "m", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "hi"}],
        "max_completion_tokens": 9, "user": "person-7", "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {
            "name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "parallel_tool_calls": False, "tool_choice": "required"}
    assert (call.head, call.store, call.previous_response_id) == (1, False, None)


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m"}, "input"),
    ({"model": "m", "input": "x", "store": "yes"}, "store"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": [{"role": "assistant", "content": [
        {"type": "input_image", "image_url": "http://x/y.png"}]}]}, "input[0].content"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c"}]}, "input[0].name"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format"),
    ({"model": "m", "input": "x", "text": {"verbosity": "low"}}, "text.verbosity"),
])
def test_a_bad_or_untranslatable_request_names_its_field(body: dict[str, Any],
                                                         param: str) -> None:
    with pytest.raises(OpenAIError) as exc:
        responses_call(body)
    assert exc.value.status == 400 and exc.value.param == param
    assert f"'{param}'" in exc.value.message


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _decode(events: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for raw in events:
        name, data = raw.decode().rstrip("\n").split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        out.append(event)
    return out


def test_text_then_a_tool_call_closes_the_message_before_the_call_opens() -> None:
    ctx = RequestContext(request_id="req_abc", route="m")
    events = ResponseEvents(responses_call({"model": "m", "input": "x"}), ctx)
    raw = [*events.feed(_chunk({"role": "assistant", "content": ""})),
           *events.feed(_chunk({"content": "Let me check."})),
           *events.feed(_chunk({"tool_calls": [{"index": 0, "function": {"name": "f",
                                                                         "arguments": ""}}]})),
           *events.feed(_chunk({"tool_calls": [{"index": 0, "id": "call_late",
                                                "function": {"arguments": "{}"}}]})),
           *events.feed(_chunk({}, "tool_calls")), *events.close()]
    final, assistant = events.final()
    decoded = _decode([*raw, events.completed(final)])
    assert [e["type"] for e in decoded] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for e in decoded] == list(range(13))
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["call_id"] == "call_late" and final["id"] == "resp_abc"
    assert assistant == {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "call_late", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_an_empty_answer_is_one_empty_message() -> None:
    events = ResponseEvents(responses_call({"model": "m", "input": "x"}),
                            RequestContext(request_id="req_e"))
    kinds = [e["type"] for e in _decode(list(events.close()))]
    assert kinds[-3:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done"]
    final, assistant = events.final()
    assert final["output"][0]["content"][0]["text"] == "" and assistant["content"] == ""


def test_a_break_keeps_what_arrived_marked_incomplete() -> None:
    events = ResponseEvents(responses_call({"model": "m", "input": "x"}),
                            RequestContext(request_id="req_f"))
    raw = [*events.feed(_chunk({"content": "half an ans"})),
           *events.failed({"message": "cut", "code": "stream_interrupted"})]
    error, failed = _decode(raw)[-2:]
    assert (error["type"], error["code"], error["message"]) == ("error", "stream_interrupted",
                                                                "cut")
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert failed["response"]["output"][0]["content"][0]["text"] == "half an ans"


def test_a_completions_request_becomes_one_user_message() -> None:
    assert chat_request({"model": "m", "prompt": ["p"], "stop": "\n", "n": 2, "echo": True}) \
        == {"model": "m", "stop": "\n", "n": 2, "max_tokens": 16,
            "messages": [{"role": "user", "content": "p"}]}
    with pytest.raises(OpenAIError) as exc:
        chat_request({"model": "m"})
    assert exc.value.param == "prompt" and exc.value.code == "missing_required_parameter"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "role", "content", "text", "name", "call_id", "arguments",
                         "output", "image_url", "format", "schema", "effort", "x"]),
        inner, max_size=4),
    max_leaves=12)
_responses_body = st.fixed_dictionaries({"model": st.just("m")}, optional={
    name: _json for name in ("input", "instructions", "tools", "tool_choice", "text",
                             "reasoning", "include", "metadata", "store", "truncation")})


@settings(max_examples=400, deadline=None)
@given(body=_responses_body, prompt=_json, echo=_json)
def test_any_body_is_a_chat_request_or_an_openai_error(body: dict[str, Any], prompt: Any,
                                                       echo: Any) -> None:
    for translate, data in ((responses_call, body),
                            (chat_request, {"model": "m", "prompt": prompt, "suffix": echo})):
        try:
            translate(data)
        except OpenAIError as exc:
            assert exc.status == 400 and exc.param
