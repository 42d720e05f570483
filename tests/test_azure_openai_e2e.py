"""Azure OpenAI through a started gateway: `api-key` and Microsoft Entra ID bearer tokens from
a simulated token endpoint, deployment-name routing, token caching, refresh and refusals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from emancipate.config import EntraAuth, ManagedIdentityAuth, Timeouts
from emancipate.providers import ProviderError
from emancipate.providers.entra import EntraTokens, ManagedIdentityTokens
from emancipate.providers.http import HTTPUpstream
from emancipate.testing import (
    AzureWire,
    EntraWire,
    ManagedIdentityWire,
    SimulatedVendor,
    Status,
    TokenBook,
    embedding_vector,
)
from tests.gateway_process import GatewayProcess

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "6d1f0a54-8d3c-4c5e-9a4e-1f2b3c4d5e6f"
SECRET = "entra-secret-Q~0123456789abcdefghijkl"
WRONG_SECRET = "entra-secret-Q~wrong-wrong-wrong-wrong"
AZURE_KEY = "azure-key-0123456789abcdef0123456789ab"


class Sims:
    def __init__(self, book: TokenBook, entra: SimulatedVendor, short: SimulatedVendor,
                 azure: SimulatedVendor, oai: SimulatedVendor) -> None:
        self.book, self.entra, self.short, self.azure, self.oai = book, entra, short, azure, oai

    def token_requests(self, vendor: SimulatedVendor | None = None) -> int:
        return len((vendor or self.entra).received)


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    book = TokenBook()

    def entra(expires_in: int) -> SimulatedVendor:
        return SimulatedVendor("entra", name="entra", wire=EntraWire(
            book, tenant=TENANT, client_id=CLIENT_ID, client_secret=SECRET,
            expires_in=expires_in))

    azure = SimulatedVendor("azure", name="azure", wire=AzureWire(
        book, deployments={"gpt4o-prod", "gpt4o-mini-eu"}, api_key=AZURE_KEY))
    with entra(3599) as long, entra(1) as short, azure, \
            SimulatedVendor("openai", name="oai", api_key="sk-oai") as oai:
        yield Sims(book, long, short, azure, oai)


def _entra(sim: SimulatedVendor, **extra: object) -> dict[str, object]:
    return {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": "AZ_SECRET",
            "token_url": f"{sim.url}/{TENANT}/oauth2/v2.0/token", **extra}


@pytest.fixture(scope="module")
def gateway(sims: Sims, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    azure = {"kind": "azure-openai", "endpoint": sims.azure.url, "ownership": "external",
             "vendor": "microsoft", "retries": {"attempts": 1}}
    providers = {
        "az-key": {**azure, "api_key_env": "AZ_KEY"},
        "az-entra": {**azure, "entra": _entra(sims.entra)},
        "az-burst": {**azure, "entra": _entra(sims.entra)},
        "az-short": {**azure, "entra": _entra(sims.short, refresh_margin=0)},
        "az-early": {**azure, "entra": _entra(sims.entra, refresh_margin=3600)},
        "az-bad": {**azure, "entra": {**_entra(sims.entra), "client_secret_env": "AZ_WRONG"}},
        "oai": {"kind": "openai-compatible", "base_url": sims.oai.url, "api_key_env": "OAI",
                "ownership": "external", "vendor": "openai"},
    }
    routes = {name: {"targets": [{"provider": name, "model": "gpt4o-prod"}]}
              for name in providers if name.startswith("az-")}
    routes["eu"] = {"targets": [{"provider": "az-entra", "model": "gpt4o-mini-eu"}]}
    routes["bad-then-oai"] = {"targets": [{"provider": "az-bad", "model": "gpt4o-prod"},
                                          {"provider": "oai", "model": "gpt-4o"}]}
    env = {"AZ_KEY": AZURE_KEY, "AZ_SECRET": SECRET, "AZ_WRONG": WRONG_SECRET, "OAI": "sk-oai"}
    gw = GatewayProcess({"providers": providers, "routes": routes},
                        tmp_path_factory.mktemp("azure"), env).start()
    yield gw
    gw.stop()


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_api_key_form_calls_the_deployment_with_the_api_version(gateway: GatewayProcess,
                                                                  sims: Sims) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="az-key", messages=_user("hello azure"))
    assert raw.parse().choices[0].message.content == "azure says: hello azure"
    assert raw.headers["x-emancipate-provider"] == "az-key"
    sent = sims.azure.received[-1]
    assert sent.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == AZURE_KEY and "authorization" not in sent.headers


def test_entra_bearer_token_is_fetched_once_and_reused(gateway: GatewayProcess,
                                                       sims: Sims) -> None:
    before = sims.token_requests()
    client = gateway.client()
    for text in ("one", "two", "three"):
        answer = client.chat.completions.create(model="az-entra", messages=_user(text))
        assert answer.choices[0].message.content == f"azure says: {text}"
    assert sims.token_requests() == before + 1
    form = sims.entra.received[-1]
    assert form.path == f"/{TENANT}/oauth2/v2.0/token"
    assert b"grant_type=client_credentials" in form.body
    assert b"scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default" in form.body
    used = {r.headers["authorization"] for r in sims.azure.received[-3:]}
    assert used == {"Bearer " + sims.book.issued[-1]}
    assert all("api-key" not in r.headers for r in sims.azure.received[-3:])


def test_the_target_model_names_the_deployment(gateway: GatewayProcess, sims: Sims) -> None:
    answer = gateway.client().chat.completions.create(model="eu", messages=_user("bonjour"))
    assert answer.choices[0].message.content == "azure says: bonjour"
    assert sims.azure.received[-1].path == "/openai/deployments/gpt4o-mini-eu/chat/completions"


def test_entra_streaming(gateway: GatewayProcess, sims: Sims) -> None:
    stream = gateway.client().chat.completions.create(
        model="az-entra", messages=_user("stream this please"), stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "azure says: stream this please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert sims.azure.received[-1].headers["authorization"].startswith("Bearer ")


def test_concurrent_requests_share_one_token_fetch(gateway: GatewayProcess, sims: Sims) -> None:
    before = sims.token_requests()

    async def burst() -> list[str | None]:
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
        answers = await asyncio.gather(*(client.chat.completions.create(
            model="az-burst", messages=_user(f"q{i}")) for i in range(8)))
        await client.close()
        return [a.choices[0].message.content for a in answers]

    assert sorted(asyncio.run(burst())) == sorted(f"azure says: q{i}" for i in range(8))
    assert sims.token_requests() == before + 1


def test_a_token_within_the_refresh_margin_is_replaced_before_use(gateway: GatewayProcess,
                                                                  sims: Sims) -> None:
    # Entra gives 3599 s; with a 3600 s margin every token is already due for replacement.
    before = sims.token_requests()
    client = gateway.client()
    for text in ("a", "b"):
        client.chat.completions.create(model="az-early", messages=_user(text))
    assert sims.token_requests() == before + 2
    first, second = (r.headers["authorization"] for r in sims.azure.received[-2:])
    assert first != second


def test_an_expired_token_is_refreshed(gateway: GatewayProcess, sims: Sims) -> None:
    client = gateway.client()
    client.chat.completions.create(model="az-short", messages=_user("before"))
    expired = sims.azure.received[-1].headers["authorization"][7:]
    time.sleep(1.2)  # the simulated token lives one second
    assert not sims.book.valid(expired)
    answer = client.chat.completions.create(model="az-short", messages=_user("after"))
    assert answer.choices[0].message.content == "azure says: after"
    assert sims.azure.received[-1].headers["authorization"] != "Bearer " + expired
    assert sims.token_requests(sims.short) == 2


def test_a_token_azure_refuses_is_replaced_within_the_request(gateway: GatewayProcess,
                                                              sims: Sims) -> None:
    client = gateway.client()
    client.chat.completions.create(model="az-entra", messages=_user("warm"))
    before = sims.token_requests()
    sims.book.revoke_all()  # revoked, or expired early by clock skew: Azure answers 401
    raw = client.chat.completions.with_raw_response.create(model="az-entra",
                                                           messages=_user("again"))
    assert raw.parse().choices[0].message.content == "azure says: again"
    assert sims.token_requests() == before + 1
    assert sims.azure.received[-2].headers["authorization"] != \
        sims.azure.received[-1].headers["authorization"]


def test_token_endpoint_refusal_is_an_auth_error_naming_entra(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="az-bad", messages=_user("x"))
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "Entra ID refused" in message and "invalid_client" in message
    assert "AADSTS7000215" in message and "AZ_WRONG" in message
    assert WRONG_SECRET not in message and WRONG_SECRET not in gateway.log()
    assert SECRET not in gateway.log()


def test_token_endpoint_refusal_fails_over(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="bad-then-oai", messages=_user("fallback"))
    assert raw.parse().choices[0].message.content == "oai says: fallback"
    assert raw.headers["x-emancipate-provider"] == "oai"
    assert raw.headers["x-emancipate-attempts"] == "2"


def test_token_endpoint_refusal_is_classified_upstream_auth(sims: Sims) -> None:
    auth = EntraAuth(tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="H8_NOT_SET",
                     token_url=f"{sims.entra.url}/{TENANT}/oauth2/v2.0/token")

    async def fetch(env: dict[str, str]) -> ProviderError:
        import os

        os.environ.update(env)
        http = HTTPUpstream("az", Timeouts())
        try:
            with pytest.raises(ProviderError) as info:
                await EntraTokens("az", auth, http).bearer()
            return info.value
        finally:
            await http.aclose()

    missing = asyncio.run(fetch({}))
    assert missing.kind == "upstream_auth" and "H8_NOT_SET" in missing.message
    wrong = asyncio.run(fetch({"H8_NOT_SET": WRONG_SECRET}))
    assert (wrong.kind, wrong.status) == ("upstream_auth", 401)
    assert "AADSTS7000215" in wrong.message and WRONG_SECRET not in wrong.message


def test_config_wants_exactly_one_credential(tmp_path: Path) -> None:
    from emancipate.config import ConfigError, parse_config

    base = {"kind": "azure-openai", "endpoint": "https://r.openai.azure.com",
            "ownership": "external", "vendor": "microsoft"}
    for extra in ({}, {"api_key_env": "K", "entra": {"tenant_id": "t", "client_id": "c",
                                                     "client_secret_env": "S"}},
                  {"api_key_env": "K", "managed_identity": {}}):
        with pytest.raises(ConfigError) as info:
            parse_config({"providers": {"az": {**base, **extra}}}, "gw.yaml")
        assert info.value.key == "providers.az"
        assert "exactly one of `api_key_env`, `entra` and `managed_identity`" in \
            info.value.reason


def test_embeddings_go_to_the_deployment_with_dimensions(gateway: GatewayProcess,
                                                         sims: Sims) -> None:
    sims.azure.clear()
    answer = gateway.client().embeddings.create(model="az-key", input=["a b c", "d e"],
                                                dimensions=64, encoding_format="float")
    assert [len(d.embedding) for d in answer.data] == [64, 64]
    assert answer.data[0].embedding == pytest.approx(embedding_vector("a b c", 64))
    (sent,) = sims.azure.received
    assert sent.path == "/openai/deployments/gpt4o-prod/embeddings"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.json["dimensions"] == 64 and sent.headers["api-key"] == AZURE_KEY


# --- managed identity: IMDS and App Service, on simulated token endpoints ---------------------

USER_ASSIGNED = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
IDENTITY_HEADER = "identity-header-5b8f3c2a9d"


class IdentitySims:
    def __init__(self, book: TokenBook, imds: SimulatedVendor, app: SimulatedVendor,
                 brief: SimulatedVendor, azure: SimulatedVendor, oai: SimulatedVendor) -> None:
        self.book, self.imds, self.app, self.brief = book, imds, app, brief
        self.azure, self.oai = azure, oai


@pytest.fixture(scope="module")
def identity_sims() -> Iterator[IdentitySims]:
    book = TokenBook()
    imds = SimulatedVendor("entra", name="imds", wire=ManagedIdentityWire(
        book, user_assigned=frozenset({USER_ASSIGNED})))
    app = SimulatedVendor("entra", name="app-service", wire=ManagedIdentityWire(
        book, form="app-service", identity_header=IDENTITY_HEADER))
    brief = SimulatedVendor("entra", name="brief", wire=ManagedIdentityWire(
        book, form="app-service", identity_header=IDENTITY_HEADER, expires_in=60))
    azure = SimulatedVendor("azure", name="azure", wire=AzureWire(book, deployments={"gpt4o"}))
    with imds, app, brief, azure, SimulatedVendor("openai", name="oai",
                                                  api_key="sk-oai") as oai:
        yield IdentitySims(book, imds, app, brief, azure, oai)


@pytest.fixture(scope="module")
def identity_gateway(identity_sims: IdentitySims,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    sims = identity_sims
    azure = {"kind": "azure-openai", "endpoint": sims.azure.url, "ownership": "external",
             "vendor": "microsoft", "retries": {"attempts": 1}}
    imds = {"form": "imds", "endpoint": f"{sims.imds.url}/metadata/identity/oauth2/token"}
    providers = {
        "mi-system": {**azure, "managed_identity": imds},
        "mi-user": {**azure, "managed_identity": {**imds, "client_id": USER_ASSIGNED}},
        "mi-unknown": {**azure, "managed_identity": {**imds, "client_id": "not-assigned"}},
        "mi-app": {**azure, "managed_identity": {}},  # auto: IDENTITY_ENDPOINT is set
        # 60 s tokens, replaced 120 s before expiry: every request needs a new one.
        "mi-brief": {**azure, "managed_identity": {
            "form": "app-service", "endpoint": f"{sims.brief.url}/msi/token",
            "refresh_margin": 120}},
        "oai": {"kind": "openai-compatible", "base_url": sims.oai.url, "api_key_env": "OAI",
                "ownership": "external", "vendor": "openai"},
    }
    routes = {name: {"targets": [{"provider": name, "model": "gpt4o"}]}
              for name in providers if name.startswith("mi-")}
    routes["unknown-then-oai"] = {"targets": [{"provider": "mi-unknown", "model": "gpt4o"},
                                              {"provider": "oai", "model": "gpt-4o"}]}
    env = {"IDENTITY_ENDPOINT": f"{sims.app.url}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER,
           "OAI": "sk-oai"}
    gw = GatewayProcess({"providers": providers, "routes": routes},
                        tmp_path_factory.mktemp("azure-mi"), env).start()
    yield gw
    gw.stop()


def test_imds_token_of_the_system_assigned_identity_is_fetched_once(
        identity_gateway: GatewayProcess, identity_sims: IdentitySims) -> None:
    sims = identity_sims
    before = len(sims.imds.received)
    client = identity_gateway.client()
    for text in ("one", "two"):
        answer = client.chat.completions.create(model="mi-system", messages=_user(text))
        assert answer.choices[0].message.content == f"azure says: {text}"
    chunks = list(client.chat.completions.create(model="mi-system", messages=_user("streamed"),
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "azure says: streamed"
    assert len(sims.imds.received) == before + 1
    asked = sims.imds.received[-1]
    assert (asked.method, asked.path) == ("GET", "/metadata/identity/oauth2/token")
    assert asked.query == {"api-version": "2018-02-01",
                           "resource": "https://cognitiveservices.azure.com"}
    assert asked.headers["metadata"] == "true"
    used = {r.headers["authorization"] for r in sims.azure.received[-3:]}
    assert used == {"Bearer " + sims.book.issued[-1]}


def test_imds_token_of_a_user_assigned_identity_names_its_client_id(
        identity_gateway: GatewayProcess, identity_sims: IdentitySims) -> None:
    answer = identity_gateway.client().chat.completions.create(model="mi-user",
                                                               messages=_user("mine"))
    assert answer.choices[0].message.content == "azure says: mine"
    assert identity_sims.imds.received[-1].query["client_id"] == USER_ASSIGNED


def test_app_service_identity_comes_from_the_environment_with_its_header(
        identity_gateway: GatewayProcess, identity_sims: IdentitySims) -> None:
    sims = identity_sims
    before = len(sims.app.received)
    client = identity_gateway.client()
    for text in ("a", "b", "c"):
        answer = client.chat.completions.create(model="mi-app", messages=_user(text))
        assert answer.choices[0].message.content == f"azure says: {text}"
    assert len(sims.app.received) == before + 1  # expires_on (a string) read: cached
    asked = sims.app.received[-1]
    assert asked.path == "/msi/token" and asked.headers["x-identity-header"] == IDENTITY_HEADER
    assert asked.query["api-version"] == "2019-08-01" and "metadata" not in asked.headers
    assert IDENTITY_HEADER not in identity_gateway.log()


def test_a_managed_identity_token_within_the_margin_is_replaced(
        identity_gateway: GatewayProcess, identity_sims: IdentitySims) -> None:
    sims = identity_sims
    before = len(sims.brief.received)
    client = identity_gateway.client()
    for text in ("x", "y"):
        client.chat.completions.create(model="mi-brief", messages=_user(text))
    assert len(sims.brief.received) == before + 2
    first, second = (r.headers["authorization"] for r in sims.azure.received[-2:])
    assert first != second


def test_a_token_azure_refuses_is_replaced_from_the_managed_identity(
        identity_gateway: GatewayProcess, identity_sims: IdentitySims) -> None:
    sims = identity_sims
    client = identity_gateway.client()
    client.chat.completions.create(model="mi-system", messages=_user("warm"))
    before = len(sims.imds.received)
    sims.book.revoke_all()
    answer = client.chat.completions.create(model="mi-system", messages=_user("again"))
    assert answer.choices[0].message.content == "azure says: again"
    assert len(sims.imds.received) == before + 1


def test_an_unknown_identity_is_an_auth_error_and_fails_over(
        identity_gateway: GatewayProcess) -> None:
    client = identity_gateway.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="mi-unknown", messages=_user("x"))
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "imds managed identity endpoint refused" in message
    assert "'not-assigned'" in message and "Identity not found" in message
    raw = client.chat.completions.with_raw_response.create(model="unknown-then-oai",
                                                           messages=_user("fallback"))
    assert raw.parse().choices[0].message.content == "oai says: fallback"
    assert raw.headers["x-emancipate-provider"] == "oai"


def test_managed_identity_refusals_and_outages_map_to_fault_kinds(
        identity_sims: IdentitySims, monkeypatch: pytest.MonkeyPatch) -> None:
    sims = identity_sims
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{sims.app.url}/msi/token")

    async def fetch(auth: ManagedIdentityAuth) -> ProviderError:
        http = HTTPUpstream("az", Timeouts())
        try:
            with pytest.raises(ProviderError) as info:
                await ManagedIdentityTokens("az", auth, http).bearer()
            return info.value
        finally:
            await http.aclose()

    monkeypatch.setenv("IDENTITY_HEADER", "wrong-header")
    wrong = asyncio.run(fetch(ManagedIdentityAuth()))
    assert (wrong.kind, wrong.status) == ("upstream_auth", 401)
    assert "app-service" in wrong.message and "wrong-header" not in wrong.message
    monkeypatch.delenv("IDENTITY_HEADER")
    missing = asyncio.run(fetch(ManagedIdentityAuth(form="app-service")))
    assert missing.kind == "upstream_auth" and "IDENTITY_HEADER" in missing.message
    imds = ManagedIdentityAuth(form="imds",
                               endpoint=f"{sims.imds.url}/metadata/identity/oauth2/token")
    for status, kind in ((404, "upstream_5xx"), (429, "rate_limited"), (500, "upstream_5xx")):
        sims.imds.inject(Status(status), times=1)
        assert asyncio.run(fetch(imds)).kind == kind
