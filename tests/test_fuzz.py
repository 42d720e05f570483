"""Property-based fuzzing against OpenAI's own OpenAPI spec: no 5xx, no hang (issue 17 §6).

schemathesis generates request bodies from the spec's schemas for the endpoints this gateway
serves (tests/data/openai-openapi/, a cut of openai/openai-openapi, MIT; regenerate it with
scripts/cut_openai_openapi.py), both conforming ones and ones that break the schema, and a
started gateway in front of a simulated vendor must answer each with a 2xx or an OpenAI-shaped
4xx, within the client's timeout. Bounded: 200 examples per endpoint, derandomised so every
run tries the same cases (a failure reproduces), no example database.

Most conforming bodies get the configured model name: a random one only reaches the 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

CUT = json.loads((Path(__file__).parent / "data" / "openai-openapi" / "openapi-cut.json")
                 .read_text())
EXAMPLES = 200
ROUTE = "m"


def _spec() -> dict[str, Any]:
    """An OpenAPI document of our endpoints, with the cut's request schemas."""
    ok = {"200": {"description": "ok"}}

    def post(name: str) -> dict[str, Any]:
        return {"post": {"requestBody": {"required": True, "content": {
            "application/json": {"schema": CUT["requests"][name]}}}, "responses": ok}}

    model = {"name": "model", "in": "path", "required": True,
             "schema": CUT["model_path_parameter"]}
    return {
        "openapi": "3.1.0", "info": {"title": "emancipate (OpenAI cut)", "version": "1"},
        "paths": {"/v1/chat/completions": post("chat"), "/v1/embeddings": post("embeddings"),
                  "/v1/models": {"get": {"responses": ok}},
                  "/v1/models/{model}": {"get": {"parameters": [model], "responses": ok}}},
        "components": CUT["components"],
    }


SCHEMA = schemathesis.openapi.from_dict(_spec())


def _cases(path: str, method: str) -> st.SearchStrategy[Any]:
    operation = SCHEMA[path][method]
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                     operation.as_strategy(GenerationMode.NEGATIVE))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with SimulatedVendor("openai", name="v") as vendor:
        cfg = {
            "providers": {"v": {"kind": "openai-compatible", "base_url": vendor.url,
                                "ownership": "external", "vendor": "v",
                                "retries": {"attempts": 1}}},
            "routes": {ROUTE: {"targets": [{"provider": "v", "model": "up"}]}},
        }
        with GatewayProcess(cfg, tmp_path_factory.mktemp("fuzz")) as g:
            yield g


@pytest.fixture(scope="module")
def client(gw: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=30) as c:  # a hang fails as a timeout
        yield c


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    if isinstance(body, dict | list | str | int | float | bool) or body is None:
        content = json.dumps(body).encode() if body is not None or method == "POST" else None
    else:  # schemathesis' NotSet: no body at all
        content = None
    return client.request(method, path, content=content,
                          headers={"content-type": "application/json"} if content else {})


def _check(response: httpx.Response, what: str) -> None:
    """2xx, or an OpenAI-shaped 4xx. The one 5xx allowed is 502 `upstream_error`: the
    simulated vendor answers what it accepts in full (2,048 token arrays embed into ~60 MB),
    and an answer past `server.max_upstream_body_bytes` is that, by design."""
    status = response.status_code
    if status == 200 and response.headers.get("content-type", "").startswith(
            "text/event-stream"):  # a valid body asked for a stream: it must end properly
        assert response.text.endswith("data: [DONE]\n\n") or '"error"' in response.text, (
            what, response.text[-500:])
        return
    body = response.json()
    if status >= 400:
        assert set(body) == {"error"}, (what, body)
        assert set(body["error"]) == {"message", "type", "param", "code"}, (what, body)
    assert status < 500 or (status == 502 and body["error"]["code"] == "upstream_error"), (
        what, status, response.text[:2000])


# No shrinking: it can take minutes, and the failing body is printed whole as it is.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_request_bodies_from_the_openai_spec_get_no_5xx(client: httpx.Client,
                                                        path: str) -> None:
    @FUZZ
    @given(case=_cases(path, "POST"), ours=st.integers(0, 3))
    def run(case: Any, ours: int) -> None:
        body = case.body
        if isinstance(body, dict) and ours and isinstance(body.get("model"), str):
            body = {**body, "model": ROUTE}
        _check(_send(client, "POST", path, body), repr(body)[:2000])

    run()


def test_model_paths_from_the_openai_spec_get_no_5xx(client: httpx.Client) -> None:
    _check(client.get("/v1/models"), "list")

    @FUZZ
    @given(case=_cases("/v1/models/{model}", "GET"))
    def run(case: Any) -> None:
        model = (case.path_parameters or {}).get("model", "")
        _check(client.get(f"/v1/models/{model}"), repr(model))

    run()
