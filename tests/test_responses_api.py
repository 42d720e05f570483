"""The Responses API end to end (issue 13): a started gateway, the official openai SDK.

Against simulated vendors (what each received is read from its own server) and against the
in-house embedded model; stored responses on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from emancipate.testing.faults import CutStream, Status
from tests.api_env import AWS_KEY, ApiEnv, api_env, assert_openai_error
from tests.gateway_process import GatewayProcess

pytest_plugins = ["tests.services"]

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"echo": {"type": "string"}},
                          "required": ["echo"]}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    with api_env(tmp_path_factory.mktemp("responses")) as e:
        yield e


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "env" in request.fixturenames:
        request.getfixturevalue("env").clear()


def _events(env: ApiEnv, **body: Any) -> list[dict[str, Any]]:
    """The raw SSE events of a streamed response: (event name == data type) checked."""
    with httpx.stream("POST", env.gw.url + "/v1/responses", timeout=30,
                      headers={"Authorization": f"Bearer {env.key_a}"},
                      json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    return events


# --- plain -----------------------------------------------------------------------------------


def test_a_plain_response_is_a_response_object_from_one_chat_call(env: ApiEnv) -> None:
    raw = env.client.responses.with_raw_response.create(
        model="gpt", input="hello there", instructions="Be brief.", max_output_tokens=50,
        temperature=0.5, metadata={"ticket": "T-1"}, user="u-42")
    r = raw.parse()
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed"
    assert r.output_text == "primary says: hello there"
    assert r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert r.usage is not None and r.usage.total_tokens == (r.usage.input_tokens
                                                           + r.usage.output_tokens) > 0
    assert (r.instructions, r.metadata, r.max_output_tokens, r.temperature, r.user) == (
        "Be brief.", {"ticket": "T-1"}, 50, 0.5, "u-42")
    sent = env.bodies(env.primary)[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hello there"}]
    assert (sent["max_completion_tokens"], sent["temperature"], sent["user"]) == (50, 0.5, "u-42")
    assert "metadata" not in sent and "input" not in sent
    record = env.record(raw.headers["x-request-id"])
    assert (record["endpoint"], record["vendor"], record["status"]) == (
        "responses", "bigmodel", 200)
    assert r.id == "resp_" + raw.headers["x-request-id"].removeprefix("req_")


def test_input_items_become_chat_messages_in_order(env: ApiEnv) -> None:
    r = env.client.responses.create(model="gpt", input=[
        {"role": "developer", "content": "Speak French."},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "What is this?"},
                     {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K",
                      "detail": "low"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "A picture.", "annotations": []}]},
        {"role": "user", "content": "And now?"},
    ])
    assert r.output_text == "primary says: And now?"
    assert env.bodies(env.primary)[-1]["messages"] == [
        {"role": "developer", "content": "Speak French."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K",
                                                "detail": "low"}}]},
        {"role": "assistant", "content": "A picture."},
        {"role": "user", "content": "And now?"},
    ]


def test_text_format_json_schema_becomes_response_format(env: ApiEnv) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}
    env.client.responses.create(model="gpt", input="hi", text={"format": {
        "type": "json_schema", "name": "reply", "schema": schema, "strict": True}})
    assert env.bodies(env.primary)[-1]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "reply", "schema": schema,
                                               "strict": True}}
    r = env.client.responses.create(model="gpt", input="hi",
                                    text={"format": {"type": "json_object"}})
    assert env.bodies(env.primary)[-1]["response_format"] == {"type": "json_object"}
    assert json.loads(r.output_text) == {"answer": "primary says: hi"}


# --- streamed --------------------------------------------------------------------------------


def test_a_streamed_response_is_the_typed_event_sequence(env: ApiEnv) -> None:
    events = _events(env, model="gpt", input="one two three four")
    kinds = [e["type"] for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added",
                         "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "primary says: one two three four"
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == text
    assert done["usage"]["output_tokens"] > 0
    assert events[0]["response"]["id"] == done["id"]
    sent = env.bodies(env.primary)[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_the_sdk_stream_helpers_accept_the_stream(env: ApiEnv) -> None:
    kinds = [e.type for e in env.client.responses.create(model="gpt", input="hi there",
                                                         stream=True)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    with env.client.responses.stream(model="gpt", input="stream helper") as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "primary says: stream helper" == snapshots[-1]
    assert final.status == "completed" and final.usage is not None


def test_max_output_tokens_cut_is_an_incomplete_response(env: ApiEnv) -> None:
    r = env.client.responses.create(model="gpt", input="a b c d e f g h", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    events = _events(env, model="gpt", input="a b c d e f g h", max_output_tokens=2)
    assert events[-1]["type"] == "response.incomplete"


# --- function tools --------------------------------------------------------------------------


def test_a_function_call_round_trip(env: ApiEnv) -> None:
    first = env.client.responses.create(model="gpt", input="weather in Paris", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"echo": "weather in Paris"}
    sent = env.bodies(env.primary)[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        k: v for k, v in WEATHER.items() if k != "type"}}]
    second = env.client.responses.create(model="gpt", tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Paris"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 C, sunny"},
    ])
    assert second.output_text == "primary says: weather in Paris"
    messages = env.bodies(env.primary)[-1]["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [{
        "id": call.call_id, "type": "function",
        "function": {"name": "get_weather", "arguments": call.arguments}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "18 C, sunny"}


def test_a_streamed_function_call_has_argument_events(env: ApiEnv) -> None:
    with env.client.responses.stream(model="gpt", input="streamed call", tools=[WEATHER],
                                     tool_choice={"type": "function", "name": "get_weather"}
                                     ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == ["response.function_call_arguments.done",
                          "response.output_item.done", "response.completed"]
    call = final.output[0]
    assert call.type == "function_call" and call.call_id.startswith("call_")
    assert json.loads(call.arguments) == {"echo": "streamed call"}
    assert env.bodies(env.primary)[-1]["tool_choice"] == {
        "type": "function", "function": {"name": "get_weather"}}


def test_previous_response_id_continues_with_tool_output(env: ApiEnv) -> None:
    first = env.client.responses.create(model="gpt", input="weather in Lyon", tools=[WEATHER],
                                        instructions="Use tools.")
    call = first.output[0]
    second = env.client.responses.create(
        model="gpt", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "12 C"}])
    assert second.previous_response_id == first.id
    assert second.output_text == "primary says: weather in Lyon"
    messages = env.bodies(env.primary)[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]  # no instructions
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == call.call_id


# --- stored responses ------------------------------------------------------------------------


def test_previous_response_id_prepends_the_stored_conversation(env: ApiEnv) -> None:
    first = env.client.responses.create(model="gpt", input="first question",
                                        instructions="Old instructions.")
    second = env.client.responses.create(model="gpt", input="second question",
                                         previous_response_id=first.id,
                                         instructions="New instructions.")
    assert second.output_text == "primary says: second question"
    assert env.bodies(env.primary)[-1]["messages"] == [
        {"role": "system", "content": "New instructions."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "primary says: first question"},
        {"role": "user", "content": "second question"},
    ]
    third = env.client.responses.create(model="gpt", input="third",
                                        previous_response_id=second.id)
    assert third.output_text == "primary says: third"
    assert len(env.bodies(env.primary)[-1]["messages"]) == 5


def test_store_false_keeps_nothing(env: ApiEnv) -> None:
    r = env.client.responses.create(model="gpt", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError) as exc:
        env.client.responses.retrieve(r.id)
    assert_openai_error(exc.value, 404, "not_found", "response_id")
    with pytest.raises(openai.BadRequestError) as bad:
        env.client.responses.create(model="gpt", input="next", previous_response_id=r.id)
    assert_openai_error(bad.value, 400, "previous_response_not_found", "previous_response_id")


def _stored_responses_round_trip(env: ApiEnv) -> None:
    """Create, continue, GET, DELETE with one key; the other key sees none of it."""
    first = env.client.responses.create(model="gpt", input="keep this")
    got = env.client.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == first.output_text == "primary says: keep this"
    second = env.client.responses.create(model="gpt", input="and this",
                                         previous_response_id=first.id)
    assert second.output_text == "primary says: and this"
    for attempt in (lambda: env.other.responses.retrieve(first.id),
                    lambda: env.other.responses.delete(first.id)):
        with pytest.raises(openai.NotFoundError) as exc:
            attempt()
        assert_openai_error(exc.value, 404, "not_found")
    with pytest.raises(openai.BadRequestError) as bad:
        env.other.responses.create(model="gpt", input="steal", previous_response_id=first.id)
    assert_openai_error(bad.value, 400, "previous_response_not_found", "previous_response_id")
    r = httpx.delete(f"{env.gw.url}/v1/responses/{first.id}", timeout=30,
                     headers={"Authorization": f"Bearer {env.key_a}"})
    assert r.status_code == 200 and r.json() == {"id": first.id, "object": "response",
                                                 "deleted": True}
    with pytest.raises(openai.NotFoundError):
        env.client.responses.retrieve(first.id)
    assert env.client.responses.retrieve(second.id).output_text == "primary says: and this"


def test_stored_responses_are_scoped_to_their_key(env: ApiEnv) -> None:
    _stored_responses_round_trip(env)


def test_stored_responses_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with api_env(tmp_path, postgres_url) as pg_env:
        _stored_responses_round_trip(pg_env)


def test_a_streamed_response_is_stored_before_it_completes(env: ApiEnv) -> None:
    with env.client.responses.stream(model="gpt", input="streamed keep") as stream:
        final = stream.get_final_response()
    assert env.client.responses.retrieve(final.id).output_text == "primary says: streamed keep"


# --- faults ----------------------------------------------------------------------------------


def test_a_5xx_fails_over_to_the_next_target(env: ApiEnv) -> None:
    env.primary.inject(Status(503), times=2)
    assert env.client.responses.create(model="gpt", input="fail over").output_text == \
        "backup says: fail over"
    with env.client.responses.stream(model="gpt", input="fail over too") as stream:
        assert stream.get_final_response().output_text == "backup says: fail over too"
    assert len(env.bodies(env.primary)) == 2 and len(env.bodies(env.backup)) == 2


def test_a_break_after_commit_is_an_error_event_then_response_failed(env: ApiEnv) -> None:
    env.primary.inject(CutStream(after_events=3), times=1)
    events = _events(env, model="gpt", input="this answer will be cut short")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "stream_interrupted"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    with pytest.raises(openai.NotFoundError):  # a failed answer is not stored
        env.client.responses.retrieve(failed["id"])


# --- guard and policy ------------------------------------------------------------------------


def test_a_secret_in_an_input_item_reaches_no_external_vendor(env: ApiEnv) -> None:
    r = env.client.responses.create(model="mixed", input=[
        {"role": "user", "content": [{"type": "input_text",
                                      "text": f"why does aws_access_key_id={AWS_KEY} fail"}]}])
    assert AWS_KEY in r.output_text and r.output_text.startswith("inside says:")
    assert AWS_KEY.encode() not in env.raw(env.primary)
    stored = env.client.responses.retrieve(r.id).output_text  # stored masked, as the ledger
    assert AWS_KEY not in stored and "[secret:" in stored
    # A continuation sent to an external vendor carries the masked text, never the key.
    env.client.responses.create(model="gpt", input="go on", previous_response_id=r.id)
    assert AWS_KEY.encode() not in env.raw(env.primary)
    assert b"[secret:" in env.raw(env.primary)


def test_a_secret_in_a_function_call_output_reaches_no_external_vendor(env: ApiEnv) -> None:
    r = env.client.responses.create(model="mixed", tools=[WEATHER], input=[
        {"role": "user", "content": "read the config"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1",
         "output": f"aws_access_key_id = {AWS_KEY}"}])
    assert r.output_text.startswith("inside says:")
    assert AWS_KEY.encode() not in env.raw(env.primary)
    assert AWS_KEY.encode() in env.raw(env.inside)


def test_policy_blocked_is_an_openai_error_naming_the_input(env: ApiEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError) as exc:
        env.client.responses.create(model="external-only",
                                    input=f"aws_access_key_id={AWS_KEY}")
    error = assert_openai_error(exc.value, 403, "policy_blocked", "input")
    assert error["type"] == "permission_error" and AWS_KEY not in error["message"]
    assert AWS_KEY.encode() not in env.raw(env.primary)


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type",
     "unsupported_parameter"),
    ({"background": True}, "background", "unsupported_parameter"),
    ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
    ({"reasoning": {"effort": "low", "summary": "auto"}}, "reasoning.summary",
     "unsupported_parameter"),
    ({"include": ["file_search_call.results"]}, "include[0]", "unsupported_parameter"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", "unsupported_parameter"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type",
     "unsupported_parameter"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type", "unsupported_parameter"),
    ({"frobnicate": 1}, "frobnicate", "unknown_parameter"),
    ({"input": 42}, "input", "invalid_value"),
    ({"metadata": {"n": 1}}, "metadata", "invalid_value"),
])
def test_what_cannot_be_translated_is_a_400_naming_the_field(
        env: ApiEnv, body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        env.client.responses.create(model="gpt", input="hi", extra_body=body)
    assert_openai_error(exc.value, 400, code, param, f"'{param}'")
    assert env.bodies(env.primary) == []


def test_a_chat_validation_error_names_the_responses_field(env: ApiEnv) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        env.client.responses.create(model="gpt", input="hi", max_output_tokens=0)
    assert_openai_error(exc.value, 400, "invalid_value", "max_output_tokens")


# --- the in-house embedded model -------------------------------------------------------------


def test_the_embedded_model_answers_plain_streamed_and_continued(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    first = client.responses.create(model="in-house", input="Say hello.", max_output_tokens=200)
    assert first.status == "completed" and first.output_text.strip()
    assert first.usage is not None and first.usage.output_tokens > 0
    with client.responses.stream(model="in-house", input="Name a colour.",
                                 previous_response_id=first.id,
                                 max_output_tokens=200) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed" and "".join(deltas) == final.output_text
    assert final.previous_response_id == first.id
    assert client.responses.retrieve(final.id).output_text == final.output_text
    client.responses.delete(final.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(final.id)
