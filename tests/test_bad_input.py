"""Bad input gets an OpenAI-shaped error that names the parameter, and the process survives."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway_process import GatewayProcess

MSG = [{"role": "user", "content": "hi"}]


def _post(gw: GatewayProcess, body: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", content=body,
                      headers={"content-type": "application/json", **headers}, timeout=30)


def _assert_openai_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ('{"model": "default"}', "messages", "Missing required parameter"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "model", "Missing required"),
        ('{"model": "default", "messages": []}', "messages", "at least one message"),
        ('{"model": "default", "messages": "hello"}', "messages", "Invalid value"),
        ('{"model": "default", "messages": [{"role": "robot", "content": "x"}]}',
         "messages[0].role", "Supported roles"),
        ('{"model": "default", "messages": [{"role": "user"}]}', "messages[0]", "content"),
        ('{"model": "default", "messages": [{"role": "user", "content": "x"}], '
         '"temperature": "warm"}', "temperature", "valid number"),
        ('{"model": "default", "messages": [{"role": "user", "content": "x"}], '
         '"temperature": 7}', "temperature", "less than or equal to 2"),
        ('{"model": "default", "messages": [{"role": "user", "content": "x"}], '
         '"max_tokens": 0}', "max_tokens", "greater than or equal to 1"),
        ('{"model": "default", "messages": [{"role": "user", "content": "x"}], '
         '"stream": "yes"}', "stream", "boolean"),
        ('{"model": "default", "messages": [{"role": "user", "content": "x"}], '
         '"stop": ["a","b","c","d","e"]}', "stop", "at most 4"),
        ('{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model", "string"),
    ],
)
def test_wrong_shapes_name_the_parameter(embedded_gateway: GatewayProcess, body: str,
                                         param: str, fragment: str) -> None:
    err = _assert_openai_error(_post(embedded_gateway, body), 400)
    assert err["param"] == param
    assert fragment in err["message"]
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_json(embedded_gateway: GatewayProcess, body: bytes) -> None:
    err = _assert_openai_error(_post(embedded_gateway, body), 400)
    assert err["code"] == "invalid_json"
    assert "JSON" in err["message"]


def test_unknown_model_lists_the_available_ones(embedded_gateway: GatewayProcess) -> None:
    client = embedded_gateway.client()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=MSG)
    err = info.value.body
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "gpt-9" in err["message"] and "in-house" in err["message"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def test_oversize_body_is_413(embedded_gateway: GatewayProcess) -> None:
    big = '{"model": "default", "messages": [{"role": "user", "content": "' + "a" * (5 << 20)
    err = _assert_openai_error(_post(embedded_gateway, big + '"}]}'), 413)
    assert err["code"] == "request_too_large"
    assert "server.max_body_bytes" in err["message"]


def test_oversize_chunked_body_is_413(embedded_gateway: GatewayProcess) -> None:
    def chunks():
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"a" * (64 << 10)
        yield b'"}]}'

    resp = httpx.post(embedded_gateway.url + "/v1/chat/completions", content=chunks(),
                      headers={"content-type": "application/json"}, timeout=30)
    _assert_openai_error(resp, 413)


def test_unknown_path_and_method(embedded_gateway: GatewayProcess) -> None:
    err = _assert_openai_error(httpx.get(embedded_gateway.url + "/v1/nothing"), 404)
    assert "/v1/nothing" in err["message"]
    _assert_openai_error(httpx.get(embedded_gateway.url + "/v1/chat/completions"), 405)


def test_embeddings_bad_input(embedded_gateway: GatewayProcess) -> None:
    resp = httpx.post(embedded_gateway.url + "/v1/embeddings",
                      json={"model": "default", "input": ""})
    assert _assert_openai_error(resp, 400)["param"] == "input"
    resp = httpx.post(embedded_gateway.url + "/v1/embeddings", json={"model": "default"})
    assert _assert_openai_error(resp, 400)["param"] == "input"


def test_process_survives_all_of_it(embedded_gateway: GatewayProcess) -> None:
    for body in (b"{", b"null", b'{"model": null, "messages": null}', b"0" * 10_000):
        assert _post(embedded_gateway, body).status_code == 400
    assert embedded_gateway.proc is not None and embedded_gateway.proc.poll() is None
    assert httpx.get(embedded_gateway.url + "/healthz").status_code == 200
    assert "Traceback" not in embedded_gateway.log()
