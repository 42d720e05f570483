"""The leak guard and the co-opetition policy on the cloud kinds (issue 16): `bedrock`,
`gemini`, `vertex` and `azure-openai`, each configured as an `external` vendor of one started
gateway, each simulated on the wire.

What each vendor received is read from its simulator (raw bodies), never from the gateway's
own account: a GitHub token that an operator rule redacts reaches it only as a placeholder
(restored in the client's answer, streamed or not), an AWS key (the built-in
`secrets-stay-in-house` rule) never reaches it at all, and the ledger names the vendor and
ownership of whoever answered.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emancipate.testing import (
    AzureWire,
    BedrockWire,
    GeminiWire,
    GoogleTokenWire,
    SimulatedVendor,
    TokenBook,
)
from tests.gateway_process import GatewayProcess
from tests.polling import ledger_record

ADMIN_KEY = "admin-" + "vendor-policy-3c9d"
BEDROCK_KEY_ID, BEDROCK_SECRET = "AKIA" + "EXAMPLEGATEWAYKEY", "bedrock-secret-of-the-gateway"
GEMINI_KEY = "AIzaSy-gateway-key-for-the-simulator"
AZURE_KEY = "azure-key-of-the-gateway-0123456789"
ACCOUNT = "gateway@acme-prod.iam.gserviceaccount.com"

# Random each run, in the formats and entropy of real ones (a documentation sample such as
# `AKIA…EXAMPLE` or a run like `123456` is deliberately not a finding).
AWS_KEY = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
GITHUB_TOKEN = "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                                for _ in range(36))
PLACEHOLDER = "[SECRET_1]"


@dataclass(frozen=True)
class Kind:
    """One cloud kind under test: its provider entry, its simulator, its vendor name."""

    provider: str
    model: str
    vendor: str
    sim: str  # the name the simulated model answers with ("{name} says: …")


KINDS = {
    "bedrock": Kind("br", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "amazon", "br"),
    "gemini": Kind("gem", "gemini-2.5-flash", "google", "gem"),
    "vertex": Kind("vx", "gemini-2.5-flash", "google-cloud", "vertex"),
    "azure-openai": Kind("az", "gpt4o-prod", "microsoft", "azure"),
}


class Env:
    def __init__(self, gw: GatewayProcess, vendors: dict[str, SimulatedVendor],
                 inhouse: SimulatedVendor) -> None:
        self.gw, self.vendors, self.inhouse = gw, vendors, inhouse
        self.client = gw.client(timeout=30)
        self.admin = httpx.Client(base_url=gw.url,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)

    def clear(self) -> None:
        for sim in (*self.vendors.values(), self.inhouse):
            sim.clear()

    def ask(self, route: str, prompt: str, stream: bool) -> tuple[str, str]:
        """The answer's text and its request id."""
        messages = [{"role": "user", "content": prompt}]
        if stream:
            with self.client.chat.completions.with_streaming_response.create(
                    model=route, messages=messages, stream=True) as resp:
                chunks = list(resp.parse())
                return ("".join(c.choices[0].delta.content or "" for c in chunks
                                if c.choices), resp.headers["x-request-id"])
        raw = self.client.chat.completions.with_raw_response.create(model=route,
                                                                    messages=messages)
        return raw.parse().choices[0].message.content, raw.headers["x-request-id"]

    def record(self, request_id: str) -> dict[str, Any]:
        """The ledger's record of one request (written a fraction of a second later)."""
        return ledger_record(self.admin, request_id)


def _service_account(path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-prod", "private_key_id": "0a1b",
        "private_key": pem, "client_email": ACCOUNT, "client_id": "1", "token_uri": token_uri}))
    return path


def _providers(vendors: dict[str, SimulatedVendor],
               inhouse: SimulatedVendor) -> dict[str, Any]:
    def external(name: str, **entry: Any) -> dict[str, Any]:
        return {**entry, "ownership": "external", "vendor": KINDS[name].vendor,
                "retries": {"attempts": 1}}

    return {
        "br": external("bedrock", kind="bedrock", region="us-east-1",
                       endpoint_url=vendors["bedrock"].url, access_key_id_env="BR_KEY",
                       secret_access_key_env="BR_SECRET"),
        "gem": external("gemini", kind="gemini", base_url=vendors["gemini"].url,
                        api_key_env="GEM_KEY"),
        "vx": external("vertex", kind="vertex", project="acme-prod", location="europe-west4",
                       base_url=vendors["vertex"].url),
        "az": external("azure-openai", kind="azure-openai", endpoint=vendors["azure-openai"].url,
                       api_key_env="AZ_KEY"),
        "inside": {"kind": "openai-compatible", "base_url": inhouse.url,
                   "ownership": "in-house", "vendor": "us"},
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("vendor-policy")
    book = TokenBook()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    oauth = SimulatedVendor("google-oauth", name="oauth", wire=GoogleTokenWire(
        book, client_email=ACCOUNT, public_key_pem=public))
    vendors = {
        "bedrock": SimulatedVendor("bedrock", name="br", wire=BedrockWire(
            "br", access_key_id=BEDROCK_KEY_ID, secret_access_key=BEDROCK_SECRET)),
        "gemini": SimulatedVendor("gemini", name="gem", api_key=GEMINI_KEY),
        "vertex": SimulatedVendor("gemini", name="vertex", wire=GeminiWire(
            "vertex", None, None, None,
            bearer=lambda token: book.valid(token.removeprefix("ya29.")))),
        "azure-openai": SimulatedVendor("azure", name="azure", wire=AzureWire(
            None, deployments={"gpt4o-prod"}, api_key=AZURE_KEY)),
    }
    inhouse = SimulatedVendor("openai", name="inside")
    for sim in (*vendors.values(), inhouse, oauth):
        sim.start()
    sa_file = _service_account(workdir / "sa.json", key, f"{oauth.url}/token")
    routes: dict[str, Any] = {}
    for name, kind in KINDS.items():
        target = {"provider": kind.provider, "model": kind.model}
        routes[name] = {"targets": [target]}
        routes[f"{name}-or-inhouse"] = {"targets": [target,
                                                    {"provider": "inside", "model": "own-1"}]}
    config = {
        "providers": _providers(vendors, inhouse), "routes": routes,
        "policy": {"rules": [{"name": "tokens-redacted-for-clouds", "class": "secret",
                              "detector": "github_token", "action": "redact"}]},
        "ledger": {"flush_interval": 0.05},
    }
    gw = GatewayProcess(config, workdir, env={
        "EMANCIPATE_ADMIN_KEY": ADMIN_KEY, "BR_KEY": BEDROCK_KEY_ID,
        "BR_SECRET": BEDROCK_SECRET, "GEM_KEY": GEMINI_KEY, "AZ_KEY": AZURE_KEY,
        "GOOGLE_APPLICATION_CREDENTIALS": str(sa_file)})
    try:
        gw.start()
        yield Env(gw, vendors, inhouse)
    finally:
        gw.stop()
        for sim in (*vendors.values(), inhouse, oauth):
            sim.stop()


def _never_received(vendor: SimulatedVendor, value: str) -> None:
    for req in vendor.received:
        assert value.encode() not in req.body, f"the secret reached {vendor.name}"
        assert value not in json.dumps(req.json, ensure_ascii=False)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("name", list(KINDS))
def test_a_redacted_token_reaches_the_vendor_as_a_placeholder_restored_in_the_answer(
        env: Env, name: str, stream: bool) -> None:
    env.clear()
    kind, vendor = KINDS[name], env.vendors[name]
    prompt = f"git push fails with the token {GITHUB_TOKEN} in my remote, why?"
    text, request_id = env.ask(name, prompt, stream)
    assert text == f"{kind.sim} says: {prompt}"  # the vendor echoed the placeholder
    assert vendor.received, f"{name} was not called"
    _never_received(vendor, GITHUB_TOKEN)
    assert any(PLACEHOLDER.encode() in req.body for req in vendor.received)

    rec = env.record(request_id)
    assert rec["status"] == 200 and rec["target"] == f"{kind.provider}/{kind.model}"
    assert (rec["vendor"], rec["ownership"]) == (kind.vendor, "external")
    redacted = [d for d in rec["decisions"]
                if d["stage"] == "policy" and d["detector"] == "github_token"]
    assert [(d["action"], d["rule"]) for d in redacted] == [
        ("redact", "tokens-redacted-for-clouds")]
    assert GITHUB_TOKEN not in json.dumps(rec)


@pytest.mark.parametrize("name", list(KINDS))
def test_an_aws_key_never_reaches_the_vendor_and_is_blocked_without_an_in_house_target(
        env: Env, name: str) -> None:
    env.clear()
    prompt = f"Why does boto3 fail with aws_access_key_id={AWS_KEY} here?"
    with pytest.raises(openai.PermissionDeniedError) as info:
        env.ask(name, prompt, stream=False)
    assert info.value.code == "policy_blocked"
    assert "secrets-stay-in-house" in info.value.message
    assert AWS_KEY not in str(info.value.body)
    assert env.vendors[name].received == []


@pytest.mark.parametrize("name", list(KINDS))
def test_an_aws_key_is_served_in_house_when_the_route_has_an_in_house_target(
        env: Env, name: str) -> None:
    env.clear()
    prompt = f"Why does boto3 fail with aws_access_key_id={AWS_KEY} here?"
    text, request_id = env.ask(f"{name}-or-inhouse", prompt, stream=False)
    assert text == f"inside says: {prompt}"  # in-house targets get the original body
    assert env.vendors[name].received == []
    rec = env.record(request_id)
    assert (rec["vendor"], rec["ownership"], rec["target"]) == ("us", "in-house",
                                                                "inside/own-1")
    excluded = [d for d in rec["decisions"] if d["stage"] == "policy"
                and d["target"] == f"{KINDS[name].provider}/{KINDS[name].model}"]
    assert [(d["action"], d["rule"]) for d in excluded] == [
        ("in-house-only", "secrets-stay-in-house")]
