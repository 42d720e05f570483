"""Tool calling on the embedded in-house model, through the real gateway, with the official
openai and anthropic SDKs: the wire must be exactly OpenAI's (and Anthropic's on /v1/messages)
whatever the quality of a 135M model's choices."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from emancipate.providers.base import text_of
from emancipate.providers.embedded_tools import AnswerReader, render_prompt
from tests.gateway_process import GatewayProcess

WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
ADD_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_PARAMS,
                                      "description": "The current weather in a city."}},
    {"type": "function", "function": {"name": "add", "parameters": ADD_PARAMS,
                                      "description": "Add two integers."}},
]
PARAMS = {"get_weather": WEATHER_PARAMS, "add": ADD_PARAMS}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def assert_matches(arguments: dict[str, Any], schema: dict[str, Any]) -> None:
    """The arguments hold every required property, no other, each of its type and enum."""
    props = schema["properties"]
    assert set(schema["required"]) <= set(arguments) <= set(props), arguments
    for key, value in arguments.items():
        assert isinstance(value, TYPES[props[key]["type"]]), (key, value)
        assert value in props[key].get("enum", [value]), (key, value)


def test_required_tool_choice_answers_a_valid_call(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    completion = client.chat.completions.create(
        model="in-house", messages=ASK, tools=TOOLS, tool_choice="required",
        max_tokens=60, temperature=0, seed=1,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in PARAMS
    assert_matches(json.loads(call.function.arguments), PARAMS[call.function.name])
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_named_function_streams_openai_tool_call_deltas(
    embedded_gateway: GatewayProcess,
) -> None:
    client = embedded_gateway.client()
    stream = client.chat.completions.create(
        model="in-house", messages=[{"role": "user", "content": "Add 2 and 3."}], tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "add"}},
        max_tokens=60, temperature=0, seed=1, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    call_deltas = [tc for d in deltas for tc in d.tool_calls or ()]
    # The first tool-call delta carries index, id, type and name with empty arguments; the
    # others only argument fragments of the same index.
    head, rest = call_deltas[0], call_deltas[1:]
    assert head.index == 0 and head.id and head.id.startswith("call_")
    assert head.type == "function" and head.function is not None
    assert head.function.name == "add" and head.function.arguments == ""
    assert rest and all(d.index == 0 and d.id is None and d.function is not None
                        and d.function.name is None for d in rest)
    arguments = "".join(d.function.arguments or "" for d in rest if d.function)
    assert_matches(json.loads(arguments), ADD_PARAMS)
    assert not "".join(d.content or "" for d in deltas)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_round_trip_tool_result_to_text_answer(embedded_gateway: GatewayProcess) -> None:
    """The call the model made and the tool's result go back into the history; the model
    answers in text (tool_choice none), and with `auto` the answer is a well-formed text or
    call, never a mix."""
    client = embedded_gateway.client()
    first = client.chat.completions.create(
        model="in-house", messages=ASK, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60, temperature=0, seed=1,
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    history: list[Any] = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'},
    ]
    final = client.chat.completions.create(
        model="in-house", messages=history, tools=TOOLS, tool_choice="none",
        max_tokens=16, temperature=0, seed=1,
    )
    message = final.choices[0].message
    assert message.tool_calls is None
    assert isinstance(message.content, str) and message.content.strip()
    assert final.choices[0].finish_reason in ("stop", "length")
    auto = client.chat.completions.create(
        model="in-house", messages=history, tools=TOOLS, tool_choice="auto",
        max_tokens=60, temperature=0, seed=1,
    ).choices[0]
    if auto.message.tool_calls:
        assert auto.finish_reason == "tool_calls" and not auto.message.content
        name = auto.message.tool_calls[0].function.name
        assert_matches(json.loads(auto.message.tool_calls[0].function.arguments), PARAMS[name])
    else:
        assert auto.finish_reason in ("stop", "length")
        assert auto.message.content and "<tool_call>" not in auto.message.content


def test_tool_choice_none_answers_text(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    completion = client.chat.completions.create(
        model="in-house", messages=ASK, tools=TOOLS, tool_choice="none",
        max_tokens=12, temperature=0, seed=1,
    )
    choice = completion.choices[0]
    assert choice.message.tool_calls is None
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")


def test_anthropic_sdk_gets_a_tool_use_block(embedded_gateway: GatewayProcess) -> None:
    """What a Claude Code-style agent needs with only ANTHROPIC_BASE_URL set."""
    client = anthropic.Anthropic(base_url=embedded_gateway.url, api_key="unused",
                                 max_retries=0, timeout=120)
    message = client.messages.create(
        model="in-house", max_tokens=60, messages=ASK,  # type: ignore[arg-type]
        tools=[{"name": "get_weather", "description": "The current weather in a city.",
                "input_schema": WEATHER_PARAMS}],
        tool_choice={"type": "any"},
    )
    assert message.stop_reason == "tool_use"
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    block = blocks[0]
    assert block.name == "get_weather" and block.id
    assert isinstance(block.input, dict)
    assert_matches(block.input, WEATHER_PARAMS)


def test_anthropic_sdk_streams_a_tool_use_block(embedded_gateway: GatewayProcess) -> None:
    """Coding agents stream: the tool_use block arrives as input_json_delta events."""
    client = anthropic.Anthropic(base_url=embedded_gateway.url, api_key="unused",
                                 max_retries=0, timeout=120)
    with client.messages.stream(
        model="in-house", max_tokens=60, messages=ASK,  # type: ignore[arg-type]
        tools=[{"name": "get_weather", "description": "The current weather in a city.",
                "input_schema": WEATHER_PARAMS}],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta"
                 and e.delta.type == "input_json_delta"]
    assert fragments
    assert final.stop_reason == "tool_use"
    block = next(b for b in final.content if b.type == "tool_use")
    assert block.name == "get_weather"
    assert json.loads("".join(fragments)) == block.input
    assert isinstance(block.input, dict)
    assert_matches(block.input, WEATHER_PARAMS)


def test_responses_api_gets_a_function_call_item(embedded_gateway: GatewayProcess) -> None:
    """Codex-style agents speak the Responses API: the call is a `function_call` item."""
    client = embedded_gateway.client()
    response = client.responses.create(
        model="in-house", input="What is the weather in Paris?", tool_choice="required",
        tools=[{"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMS,
                "description": "The current weather in a city.", "strict": False}],
        max_output_tokens=60, temperature=0,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert_matches(json.loads(calls[0].arguments), WEATHER_PARAMS)


@pytest.mark.parametrize(("tool_choice", "param"), [
    ({"type": "function", "function": {"name": "nope"}}, "tool_choice.function.name"),
    ("sometimes", "tool_choice"),
])
def test_a_tool_choice_the_model_cannot_honour_is_a_clear_400(
    embedded_gateway: GatewayProcess, tool_choice: Any, param: str,
) -> None:
    client = embedded_gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="in-house", messages=ASK, tools=TOOLS,
                                       tool_choice=tool_choice, max_tokens=8)
    assert info.value.body["param"] == param
    assert "get_weather" in info.value.body["message"] or "required" in \
        info.value.body["message"]


# --- the prompt and the reader, without the model ----------------------------------------------


def test_history_calls_and_results_are_rendered_as_the_model_writes_and_reads_them() -> None:
    tools = [t["function"] for t in TOOLS]
    prompt = render_prompt([
        {"role": "system", "content": "Be brief."},
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"},
    ], tools, text_of)
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\nYou are an expert in composing")
    assert '<tools>{"name":"get_weather","description":"The current weather in a city.",' \
        in prompt
    assert ('<|im_start|>assistant\n<tool_call>[\n{"name":"get_weather","arguments":'
            '{"city":"Paris"}}\n]</tool_call><|im_end|>\n') in prompt
    assert prompt.endswith("<|im_start|>user\n<tool_response>\n21 degrees\n</tool_response>"
                           "<|im_end|>\n<|im_start|>assistant\n")
    # Without a system message: SmolLM2's default one, as its own template writes it.
    assert render_prompt(ASK, [], text_of).startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\n")


def test_the_reader_streams_exactly_the_arguments_whatever_the_cuts() -> None:
    """Braces and quotes inside strings, escapes, and pieces cut anywhere: the fragments
    joined are the arguments object, the markers never leak."""
    arguments = '{"q": "a } b \\" { c", "n": [1, {"x": 2}]}'
    text = f'<tool_call>[\n{{"name": "find", "arguments": {arguments}}}\n]</tool_call>'
    for size in (1, 2, 3, 7, len(text)):
        reader = AnswerReader(tools_active=True)
        events = [e for i in range(0, len(text), size) for e in reader.feed(text[i:i + size])]
        assert events[0][0] == "call" and events[0][1][1] == "find"
        assert events[0][1][0].startswith("call_")
        assert "".join(v for k, v in events[1:] if k == "args") == arguments
        assert {k for k, _ in events[1:]} == {"args"}
        assert reader.args_complete
    text_reader = AnswerReader(tools_active=True)
    assert text_reader.feed("") == []
    assert text_reader.feed("Hi <b>") == [("delta", "Hi <b>")]  # text: passed as is
    assert AnswerReader(tools_active=False).feed("<p>") == [("delta", "<p>")]
