"""The `vertex` kind through a started gateway: a service-account key file made here, tokens
from a simulated Google token endpoint (the JWT signature checked), Gemini on a simulated
Vertex AI that accepts only the tokens that endpoint issued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel

from emancipate.config import ConfigError, parse_config
from emancipate.testing import (
    GeminiWire,
    GoogleTokenWire,
    RateLimit,
    SimulatedVendor,
    Status,
    TokenBook,
    embedding_vector,
)
from tests.gateway_process import GatewayProcess

ACCOUNT = "gateway@acme-prod.iam.gserviceaccount.com"
PROJECT = "acme-prod"
MODEL = "gemini-2.5-flash"
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object",
                                     "properties": {"echo": {"type": "string"}}}}}]


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_file(path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "0123abcd",
        "private_key": pem, "client_email": ACCOUNT, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}))
    return path


class Sims:
    def __init__(self, book: TokenBook, oauth: SimulatedVendor, vertex: SimulatedVendor,
                 inhouse: SimulatedVendor) -> None:
        self.book, self.oauth, self.vertex, self.inhouse = book, oauth, vertex, inhouse


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def sims(key: rsa.RSAPrivateKey) -> Iterator[Sims]:
    book = TokenBook()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    oauth = SimulatedVendor("google-oauth", name="oauth", wire=GoogleTokenWire(
        book, client_email=ACCOUNT, public_key_pem=public))
    vertex = SimulatedVendor("gemini", name="vertex", wire=GeminiWire(
        "vertex", None, None, None, bearer=lambda token: book.valid(token.removeprefix("ya29."))))
    with oauth, vertex, SimulatedVendor("openai", name="inhouse") as inhouse:
        yield Sims(book, oauth, vertex, inhouse)


@pytest.fixture(scope="module")
def gateway(sims: Sims, key: rsa.RSAPrivateKey,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("vertex")
    good = _key_file(workdir / "sa.json", key, f"{sims.oauth.url}/token")
    rotated = _key_file(workdir / "sa-old.json", _rsa_key(), f"{sims.oauth.url}/token")
    vertex = {"kind": "vertex", "project": PROJECT, "location": "europe-west4",
              "base_url": sims.vertex.url, "ownership": "external", "vendor": "google",
              "retries": {"attempts": 2, "backoff_initial": 0, "max_retry_after": 1},
              "breaker": {"failures": 1000}}
    config = {
        "providers": {
            "vx": vertex,
            "vx-rotated": {**vertex, "credentials_env": "OLD_SA_FILE"},
            "vllm": {"kind": "openai-compatible", "base_url": sims.inhouse.url,
                     "ownership": "in-house", "vendor": "us"},
        },
        "routes": {
            "flash": {"targets": [{"provider": "vx", "model": MODEL}]},
            "rotated": {"targets": [{"provider": "vx-rotated", "model": MODEL}]},
            "flash-or-inhouse": {"targets": [{"provider": "vx", "model": MODEL},
                                             {"provider": "vllm", "model": "llama"}]},
            "rotated-or-inhouse": {"targets": [{"provider": "vx-rotated", "model": MODEL},
                                               {"provider": "vllm", "model": "llama"}]},
            "embed": {"targets": [{"provider": "vx", "model": "text-embedding-005"}]},
            "gemini-embed": {"targets": [{"provider": "vx", "model": "gemini-embedding-001"}]},
        },
    }
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(good), "OLD_SA_FILE": str(rotated)}
    gw = GatewayProcess(config, workdir, env).start()
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _no_faults(sims: Sims) -> None:
    for sim in (sims.oauth, sims.vertex, sims.inhouse):
        sim.clear_faults()


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _token_requests(sims: Sims) -> int:
    return len(sims.oauth.received)


def test_plain_answer_on_the_vertex_path_with_a_service_account_token(
        gateway: GatewayProcess, sims: Sims) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="flash", messages=[{"role": "system", "content": "Be brief."},
                                 *_user("hello vertex")])
    assert raw.parse().choices[0].message.content == "vertex says: hello vertex"
    assert raw.headers["x-emancipate-provider"] == "vx"
    sent = sims.vertex.received[-1]
    assert sent.path == (f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/"
                         f"models/{MODEL}:generateContent")
    assert sent.headers["authorization"] == "Bearer ya29." + sims.book.issued[-1]
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    grant = sims.oauth.received[-1]
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in grant.body


def test_one_token_serves_many_requests(gateway: GatewayProcess, sims: Sims) -> None:
    gateway.client().chat.completions.create(model="flash", messages=_user("warm"))
    before = _token_requests(sims)
    for text in ("one", "two", "three"):
        answer = gateway.client().chat.completions.create(model="flash", messages=_user(text))
        assert answer.choices[0].message.content == f"vertex says: {text}"
    assert _token_requests(sims) == before


def test_streamed_answer(gateway: GatewayProcess, sims: Sims) -> None:
    chunks = list(gateway.client().chat.completions.create(
        model="flash", messages=_user("stream me now"), stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "vertex says: stream me now"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert sims.vertex.received[-1].path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert sims.vertex.received[-1].query == {"alt": "sse"}


def test_tool_call(gateway: GatewayProcess) -> None:
    answer = gateway.client().chat.completions.create(model="flash", messages=_user("find"),
                                                      tools=TOOLS)
    call = answer.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "lookup", {"echo": "find"})


def test_a_rotated_key_is_refused_by_the_token_endpoint_as_an_auth_failure(
        gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="rotated", messages=_user("x"))
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "vx-rotated" in message and "Invalid JWT Signature" in message
    assert "OLD_SA_FILE" in message
    assert "PRIVATE KEY" not in gateway.log()


def test_an_auth_failure_fails_over_to_the_in_house_model(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="rotated-or-inhouse", messages=_user("who answers"))
    assert raw.headers["x-emancipate-provider"] == "vllm"
    assert raw.parse().choices[0].message.content == "inhouse says: who answers"


@pytest.mark.parametrize("fault", [RateLimit(retry_after=30), Status(503)])
def test_vertex_outage_fails_over_to_the_in_house_model(gateway: GatewayProcess, sims: Sims,
                                                        fault) -> None:
    sims.vertex.inject(fault)
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="flash-or-inhouse", messages=_user("mid outage"))
    assert raw.headers["x-emancipate-provider"] == "vllm"
    assert raw.parse().choices[0].message.content == "inhouse says: mid outage"


def test_a_revoked_token_is_replaced_on_the_next_request(gateway: GatewayProcess,
                                                         sims: Sims) -> None:
    gateway.client().chat.completions.create(model="flash", messages=_user("before"))
    sims.book.revoke_all()
    before = _token_requests(sims)
    with pytest.raises(openai.APIStatusError):
        gateway.client().chat.completions.create(model="flash", messages=_user("refused"))
    answer = gateway.client().chat.completions.create(model="flash", messages=_user("after"))
    assert answer.choices[0].message.content == "vertex says: after"
    assert _token_requests(sims) == before + 1


def test_a_bad_vertex_entry_fails_at_start_up_naming_the_key() -> None:
    doc = {"providers": {"vx": {"kind": "vertex", "project": PROJECT, "location": "Europe West",
                                "ownership": "external", "vendor": "google"}}}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "gateway.yaml")
    assert (info.value.source, info.value.key) == ("gateway.yaml", "providers.vx.location")


# --- embeddings (`:predict`) ---------------------------------------------------------------------


def test_embeddings_go_to_predict_in_batches_of_eight(gateway: GatewayProcess,
                                                       sims: Sims) -> None:
    sims.vertex.clear()
    texts = [f"text number {i}" for i in range(10)]
    answer = gateway.client().embeddings.create(model="embed", input=texts,
                                                encoding_format="float")
    assert [d.embedding for d in answer.data] == [embedding_vector(t, 768) for t in texts]
    assert answer.usage.prompt_tokens == 30  # the predictions' statistics.token_count
    sent = sorted(sims.vertex.received, key=lambda r: len(r.json["instances"]))
    assert [len(r.json["instances"]) for r in sent] == [2, 8]
    assert {r.path for r in sent} == {
        f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
        "text-embedding-005:predict"}
    assert all(r.headers["authorization"].startswith("Bearer ya29.") for r in sent)


def test_gemini_embedding_on_vertex_is_one_text_a_call_shortened_and_normalised(
        gateway: GatewayProcess, sims: Sims) -> None:
    sims.vertex.clear()
    texts = ["one", "two"]
    answer = gateway.client().embeddings.create(model="gemini-embed", input=texts,
                                                dimensions=128, encoding_format="float")
    for item, text in zip(answer.data, texts, strict=True):
        full = embedding_vector(text, 3072)[:128]
        norm = sum(v * v for v in full) ** 0.5
        assert item.embedding == pytest.approx([v / norm for v in full])
    assert sorted(r.json["instances"][0]["content"] for r in sims.vertex.received) == texts
    assert all(r.json["parameters"] == {"outputDimensionality": 128}
               for r in sims.vertex.received)


CITY_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "rank"],
               "properties": {"name": {"type": "string"}, "rank": {"type": "integer"},
                              "tags": {"type": "array", "items": {"type": "string"}}}}


class City(BaseModel):
    name: str
    rank: int


def _city_format() -> dict:
    return {"type": "json_schema",
            "json_schema": {"name": "city", "strict": True, "schema": CITY_SCHEMA}}


def test_structured_output_on_vertex_follows_the_json_schema(gateway: GatewayProcess,
                                                             sims: Sims) -> None:
    answer = gateway.client().chat.completions.create(
        model="flash", messages=_user("Lyon"), response_format=_city_format())
    assert json.loads(answer.choices[0].message.content) == {
        "name": "Lyon", "rank": 1, "tags": ["Lyon"]}
    assert answer.choices[0].finish_reason == "stop"
    sent = sims.vertex.received[-1]
    assert sent.path.endswith(f"/publishers/google/models/{MODEL}:generateContent")
    assert sent.headers["authorization"].startswith("Bearer ya29.")
    config = sent.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["required"] == ["name", "rank"]
    assert "additionalProperties" not in json.dumps(config["responseSchema"])
    parsed = gateway.client().beta.chat.completions.parse(
        model="flash", messages=_user("Porto"), response_format=City)
    assert parsed.choices[0].message.parsed == City(name="Porto", rank=1)


def test_streamed_structured_output_on_vertex_arrives_in_pieces(gateway: GatewayProcess,
                                                                sims: Sims) -> None:
    chunks = list(gateway.client().chat.completions.create(
        model="flash", messages=_user("Santa Cruz de Tenerife"), response_format=_city_format(),
        stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks
              if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1
    assert json.loads("".join(pieces)) == {"name": "Santa Cruz de Tenerife", "rank": 4,
                                           "tags": ["Santa Cruz de Tenerife"]}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    sent = sims.vertex.received[-1]
    assert sent.path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert sent.json["generationConfig"]["responseMimeType"] == "application/json"
    with gateway.client().beta.chat.completions.stream(
            model="flash", messages=_user("Quito"), response_format=City) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == City(name="Quito", rank=1)
