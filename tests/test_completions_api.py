"""Legacy `POST /v1/completions` end to end (issue 13): a started gateway, the official
openai SDK, simulated vendors (what each received read from its own server) and the
in-house embedded model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from emancipate.testing.faults import Status
from tests.api_env import AWS_KEY, ApiEnv, api_env, assert_openai_error
from tests.gateway_process import GatewayProcess
from tests.polling import eventually


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    with api_env(tmp_path_factory.mktemp("completions")) as e:
        yield e


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "env" in request.fixturenames:
        request.getfixturevalue("env").clear()


def _sse(env: ApiEnv, **body: Any) -> list[str]:
    """The raw `data:` payloads of a streamed completion."""
    with httpx.stream("POST", env.gw.url + "/v1/completions", timeout=30,
                      headers={"Authorization": f"Bearer {env.key_a}"},
                      json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        text = r.read().decode()
    return [block.removeprefix("data: ") for block in text.strip().split("\n\n")]


def test_a_completion_is_a_text_completion_from_one_chat_call(env: ApiEnv) -> None:
    raw = env.client.completions.with_raw_response.create(
        model="gpt", prompt="Once upon a time", stop=["\n"], temperature=0.2, max_tokens=40)
    c = raw.parse()
    assert c.object == "text_completion" and c.id.startswith("cmpl-")
    assert c.choices[0].text == "primary says: Once upon a time"
    assert c.choices[0].finish_reason == "stop" and c.choices[0].logprobs is None
    assert c.usage is not None and c.usage.total_tokens > 0
    sent = env.bodies(env.primary)[-1]
    assert sent["messages"] == [{"role": "user", "content": "Once upon a time"}]
    assert (sent["stop"], sent["temperature"], sent["max_tokens"]) == (["\n"], 0.2, 40)
    assert "prompt" not in sent
    assert env.record(raw.headers["x-request-id"])["endpoint"] == "completions"


def test_max_tokens_defaults_to_16_as_on_openai(env: ApiEnv) -> None:
    c = env.client.completions.create(model="gpt", prompt=["one prompt in a list"])
    assert env.bodies(env.primary)[-1]["max_tokens"] == 16
    assert c.choices[0].text == "primary says: one prompt in a list"


def test_echo_prepends_the_prompt(env: ApiEnv) -> None:
    c = env.client.completions.create(model="gpt", prompt="Echo me: ", echo=True)
    assert c.choices[0].text == "Echo me: primary says: Echo me: "
    chunks = list(env.client.completions.create(model="gpt", prompt="Echo me: ", echo=True,
                                                stream=True))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == \
        "Echo me: primary says: Echo me: "


def test_a_streamed_completion_is_text_completion_chunks_then_done(env: ApiEnv) -> None:
    payloads = _sse(env, model="gpt", prompt="stream these words please",
                    stream_options={"include_usage": True})
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(ch["text"] for c in chunks for ch in c["choices"])
    assert text == "primary says: stream these words please"
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    sdk = list(env.client.completions.create(model="gpt", prompt="via sdk", stream=True))
    assert "".join(c.choices[0].text for c in sdk if c.choices) == "primary says: via sdk"


def _completions_recorded(env: ApiEnv) -> int:
    rows = env.admin.get("/admin/usage", params={"by": "endpoint"}).json()["data"]
    return sum(r["requests"] for r in rows if r["endpoint"] == "completions")


def test_a_list_of_prompts_is_one_pipeline_call_each_in_order(env: ApiEnv) -> None:
    prompts = ["alpha", "beta", "gamma"]
    raws = [env.client.completions.with_raw_response.create(model="gpt", prompt=p, n=2,
                                                            max_tokens=40) for p in prompts]
    alone = [raw.parse() for raw in raws]
    env.record(raws[-1].headers["x-request-id"])  # written in order: all before it are in
    before = _completions_recorded(env)
    env.clear()
    c = env.client.completions.create(model="gpt", prompt=prompts, n=2, echo=True,
                                      max_tokens=40)
    assert [(ch.index, ch.text) for ch in c.choices] == [
        (k * 2 + i, f"{p}primary says: {p}") for k, p in enumerate(prompts) for i in range(2)]
    assert sorted(b["messages"][0]["content"] for b in env.bodies(env.primary)) == prompts
    assert c.usage is not None and alone[0].usage is not None
    assert c.usage.total_tokens == sum(a.usage.total_tokens for a in alone if a.usage)
    eventually(lambda: _completions_recorded(env) >= before + 3 or None,  # written just after
               "the prompts were not recorded one each")
    assert _completions_recorded(env) == before + 3


def test_one_prompt_refused_by_policy_refuses_the_list(env: ApiEnv) -> None:
    with pytest.raises(openai.PermissionDeniedError) as exc:
        env.client.completions.create(model="external-only",
                                      prompt=["fine", f"aws_access_key_id={AWS_KEY}"])
    assert_openai_error(exc.value, 403, "policy_blocked")
    assert AWS_KEY.encode() not in env.raw(env.primary)


def test_a_5xx_fails_over_to_the_next_target(env: ApiEnv) -> None:
    # every request to the primary fails (not "the next two"): a request the gateway sends
    # it in between (a health probe, a late one of the test before) cannot use up a fault
    env.primary.inject(Status(500))
    assert env.client.completions.create(model="gpt", prompt="over").choices[0].text == \
        "backup says: over"
    chunks = list(env.client.completions.create(model="gpt", prompt="over", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "backup says: over"


def test_a_secret_in_the_prompt_reaches_no_external_vendor(env: ApiEnv) -> None:
    c = env.client.completions.create(model="mixed", prompt=f"aws_access_key_id={AWS_KEY}",
                                      max_tokens=100)
    assert c.choices[0].text.startswith("inside says:")
    assert AWS_KEY.encode() not in env.raw(env.primary)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        env.client.completions.create(model="external-only", prompt=f"key {AWS_KEY}")
    assert_openai_error(exc.value, 403, "policy_blocked")
    assert AWS_KEY.encode() not in env.raw(env.primary)


@pytest.mark.parametrize(("body", "param"), [
    ({"suffix": "the end"}, "suffix"),
    ({"logprobs": 3}, "logprobs"),
    ({"best_of": 3}, "best_of"),
    ({"prompt": ["first", "second"], "stream": True}, "prompt"),
    ({"prompt": [1734, 318]}, "prompt"),
])
def test_what_cannot_be_translated_is_a_400_naming_the_field(
        env: ApiEnv, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        env.client.completions.create(model="gpt", prompt="hi", extra_body=body)
    assert_openai_error(exc.value, 400, "unsupported_parameter", param, f"'{param}'")
    assert env.bodies(env.primary) == []


def test_an_unknown_field_is_a_400_naming_it(env: ApiEnv) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        env.client.completions.create(model="gpt", prompt="hi", extra_body={"messages": []})
    assert_openai_error(exc.value, 400, "unknown_parameter", "messages", "'messages'")


def test_the_embedded_model_completes_plain_and_streamed(
        embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    c = client.completions.create(model="in-house", prompt="The capital of France is",
                                  max_tokens=8)
    assert c.object == "text_completion" and c.choices[0].text.strip()
    assert c.choices[0].finish_reason in ("stop", "length")
    assert c.usage is not None and 0 < c.usage.completion_tokens <= 8
    chunks = list(client.completions.create(model="in-house", prompt="Count: one, two,",
                                            max_tokens=8, stream=True))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
