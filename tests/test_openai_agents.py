"""The OpenAI Agents SDK (`openai-agents`) through the gateway's Responses API: an agent with
a function tool runs its loop (call, tool output, answer), continues with
`previous_response_id`, and streams — with only `base_url` changed (issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.api_env import ApiEnv, api_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    with api_env(tmp_path_factory.mktemp("agents")) as e:
        yield e


def test_an_agent_runs_its_tool_loop_continues_and_streams(env: ApiEnv) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(echo: str) -> str:
        """The weather in a city."""
        calls.append(echo)
        return "sunny"

    async def run() -> tuple[str, str, str, str | None]:
        set_tracing_disabled(True)
        set_default_openai_api("responses")
        set_default_openai_client(AsyncOpenAI(base_url=env.gw.url + "/v1",
                                              api_key=env.key_a, max_retries=0))
        agent = Agent(name="forecaster", instructions="Use the tool.", model="gpt",
                      tools=[get_weather])
        first = await Runner.run(agent, "weather in Paris")
        second = await Runner.run(agent, "and tomorrow?",
                                  previous_response_id=first.last_response_id)
        streamed = Runner.run_streamed(agent, "weather in Lyon")
        async for _ in streamed.stream_events():
            pass
        return (str(first.final_output), str(second.final_output),
                str(streamed.final_output), first.last_response_id)

    first, second, streamed, response_id = asyncio.run(run())
    assert calls[0] == "weather in Paris" and first == "primary says: weather in Paris"
    assert second == "primary says: and tomorrow?"
    assert streamed == "primary says: weather in Lyon" and calls[-1] == "weather in Lyon"
    assert response_id is not None and response_id.startswith("resp_")
    tool_turns = [b for b in env.bodies(env.primary)
                  if b["messages"][-1]["role"] == "tool"]
    assert tool_turns and all(m["content"] == "sunny" for b in tool_turns
                              for m in b["messages"] if m["role"] == "tool")
