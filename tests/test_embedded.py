"""The embedded in-house model, through the real gateway, with the official openai SDK."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.gateway_process import GatewayProcess


def test_models_lists_the_embedded_routes(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    ids = {m.id for m in client.models.list()}
    assert {"default", "in-house", "smollm2-135m-instruct"} <= ids
    assert client.models.retrieve("in-house").id == "in-house"


def test_non_streaming_generation(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="default", max_tokens=8, temperature=0, seed=1,
        messages=[{"role": "user", "content": "Say hello."}],
    )
    assert raw.headers["x-emancipate-provider"] == "embedded"
    assert raw.headers["x-emancipate-model"] == "smollm2-135m-instruct"
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert isinstance(text, str) and text.strip()
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 8
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_streaming_generation_with_usage(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    stream = client.chat.completions.create(
        model="in-house", max_tokens=6, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count to three."}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stop_sequence_and_seed_are_honoured(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    kwargs = dict(model="default", max_tokens=12, temperature=0.7, seed=42,
                  messages=[{"role": "user", "content": "Write a short sentence about cats."}])
    first = client.chat.completions.create(**kwargs).choices[0].message.content
    second = client.chat.completions.create(**kwargs).choices[0].message.content
    assert first == second  # same seed, same answer
    stopped = client.chat.completions.create(**kwargs, stop=[" "]).choices[0].message.content
    assert " " not in stopped.strip()


def test_max_tokens_beyond_context_is_a_clear_400(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="default", max_tokens=100_000, messages=[{"role": "user", "content": "hi"}]
        )
    err = info.value.body
    assert err["param"] == "max_tokens" and err["code"] == "context_length_exceeded"
    assert "2048" in err["message"]


def test_tools_whose_parameters_are_not_an_object_are_a_clear_400(
    embedded_gateway: GatewayProcess,
) -> None:
    """Tools work on the embedded model (tests/test_embedded_tools.py); a `parameters` schema
    that is not an object cannot be held by the call grammar and is named in the 400."""
    client = embedded_gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f",
                                                     "parameters": {"type": "string"}}}],
        )
    assert info.value.body["param"] == "tools[0].function.parameters"
    assert info.value.body["code"] == "unsupported_parameter"


def test_event_loop_stays_free_while_the_model_generates(
    embedded_gateway: GatewayProcess,
) -> None:
    """While a long generation runs, other endpoints answer (they would hang if it blocked)."""
    client = embedded_gateway.client()
    done = threading.Event()

    def generate() -> None:
        client.chat.completions.create(
            model="default", max_tokens=200, messages=[{"role": "user", "content": "Tell a story"}]
        )
        done.set()

    worker = threading.Thread(target=generate)
    worker.start()
    answered_during_generation = 0
    while not done.is_set():
        r = httpx.get(embedded_gateway.url + "/v1/models", timeout=5)
        assert r.status_code == 200
        if not done.is_set():
            answered_during_generation += 1
        time.sleep(0.02)
    worker.join()
    assert answered_during_generation >= 3


def test_client_disconnect_frees_the_model(embedded_gateway: GatewayProcess) -> None:
    """A stream abandoned by its client stops generating: the next request is served."""
    with httpx.stream(
        "POST", embedded_gateway.url + "/v1/chat/completions", timeout=30,
        json={"model": "default", "stream": True, "max_tokens": 1500,
              "messages": [{"role": "user", "content": "Write a very long essay."}]},
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                break  # leave after the first token
    client = embedded_gateway.client(timeout=60)
    completion = client.chat.completions.create(
        model="default", max_tokens=3, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content is not None
    # The model thread is FIFO: the abandoned generation has ended before this one ran,
    # and it was stopped, not run to its 1500 tokens.
    assert _stat(embedded_gateway, "generations_stopped") >= 1
    assert _stat(embedded_gateway, "queued") == 0


def _stat(gw: GatewayProcess, stat: str) -> float:
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith("emancipate_provider_stat{") and f'stat="{stat}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric for {stat}")


def test_in_house_embeddings(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    result = client.embeddings.create(model="in-house", input=["the cat sat", "a dog ran"])
    assert [d.index for d in result.data] == [0, 1]
    first, second = (d.embedding for d in result.data)
    assert len(first) == len(second) > 100
    assert abs(sum(x * x for x in first) - 1.0) < 1e-3  # normalised
    assert first != second
    assert result.usage.prompt_tokens > 0
    # More dimensions than the model has: a 400 naming them, never a padded vector.
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="in-house", input="the cat sat", dimensions=4096)
    assert info.value.body["param"] == "dimensions"
    assert str(len(first)) in info.value.body["message"]
