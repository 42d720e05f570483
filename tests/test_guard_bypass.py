"""The guard cannot be walked around (issue 17 §2): each bypass through a started gateway.

A secret, a term or an e-mail is placed in every field that is sent and written in every
encoding tried against the guard; the assertion is on the bytes the simulated external
vendor received (the value, in the form it was written, never appears there), and where
the policy redacts, on the answer (placeholders restored).

Routes: `external-only` (one external vendor: the default policy blocks secrets and terms,
redacts personal data), `mixed` (external first, then in-house: the policy sends secrets
in-house), `redacting` (a vendor the operator's rules let see secrets and terms redacted).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess

AWS = "AKIA" + "W7NQ4ZK2RX3BT5MV"
GITHUB = "ghp_" + "Q7mR2kX9vT4wZ1pL8nB3cY6hJ5dF0sA2eG7u"
EMAIL = "jeanne.martin@lumiere-conseil.fr"
TERM = "Project Nightingale"
Body = dict[str, Any]


def _provider(url: str, ownership: str, vendor: str) -> dict[str, Any]:
    return {"kind": "openai-compatible", "base_url": url, "ownership": ownership,
            "vendor": vendor, "retries": {"attempts": 1}}


class Env:
    def __init__(self, gw: GatewayProcess, outside: SimulatedVendor, inside: SimulatedVendor,
                 redactor: SimulatedVendor) -> None:
        self.gw, self.outside, self.inside, self.redactor = gw, outside, inside, redactor
        self.http = httpx.Client(base_url=gw.url, timeout=30)

    def clear(self) -> None:
        for vendor in (self.outside, self.inside, self.redactor):
            vendor.clear()

    def chat(self, model: str, body: Body) -> httpx.Response:
        return self.http.post("/v1/chat/completions", json={"model": model, **body})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("guard-bypass")
    outside = SimulatedVendor("openai", name="outside").start()
    inside = SimulatedVendor("openai", name="inside").start()
    redactor = SimulatedVendor("openai", name="redactor").start()
    cfg = {
        "providers": {
            "outside": _provider(outside.url, "external", "bigmodel"),
            "inside": _provider(inside.url, "in-house", "us"),
            "redactor": _provider(redactor.url, "external", "redactco"),
        },
        "routes": {
            "external-only": {"targets": [{"provider": "outside", "model": "big-1"}]},
            "mixed": {"strategy": "fallback", "targets": [
                {"provider": "outside", "model": "big-1"},
                {"provider": "inside", "model": "own-1"}]},
            "redacting": {"targets": [{"provider": "redactor", "model": "r-1"}]},
            "embed-external": {"targets": [{"provider": "outside", "model": "e-1"}]},
            "embed-mixed": {"targets": [{"provider": "outside", "model": "e-1"},
                                        {"provider": "inside", "model": "e-2"}]},
        },
        "guard": {"terms": [TERM]},
        "policy": {"rules": [
            {"name": "redactco-sees-secrets-redacted", "class": ["secret", "confidential"],
             "vendor": ["redactco"], "action": "redact"}]},
    }
    gw = GatewayProcess(cfg, workdir)
    try:
        gw.start()
        yield Env(gw, outside, inside, redactor)
    finally:
        gw.stop()
        for vendor in (outside, inside, redactor):
            vendor.stop()


def _never_received(vendor: SimulatedVendor, needles: list[str]) -> None:
    """No request the vendor received holds a needle, in its bytes or its decoded JSON."""
    for req in vendor.received:
        decoded = json.dumps(req.json, ensure_ascii=False)
        for needle in needles:
            assert needle.encode() not in req.body, f"{needle!r} reached {vendor.name}"
            assert needle not in decoded, f"{needle!r} reached {vendor.name}"


def _assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["code"] == code
    return err


def _user(content: Any, **extra: Any) -> Body:
    return {"messages": [{"role": "user", "content": content, **extra}]}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _fn_tool(description: str = "Look a thing up", parameters: Body | None = None,
             name: str = "lookup") -> Body:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": parameters or {"type": "object", "properties": {}}}}


def _tool_exchange(call_id: str = "call_1", name: str = "lookup",
                   arguments: str = "{}") -> list[Body]:
    return [{"role": "user", "content": "Look it up."},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "done"},
            {"role": "user", "content": "Thanks, go on."}]


# --- fields: (body, needles, redactable) -------------------------------------------------------

FIELDS: dict[str, Callable[[], tuple[Body, list[str], bool]]] = {
    "message name": lambda: (_user("hello", name=AWS), [AWS], False),
    "image_url URL": lambda: (_user([
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"https://img.example/p.png?k={AWS}"}}]),
        [AWS], False),
    "data: URL": lambda: (_user([
        {"type": "text", "text": "Read the attached note."},
        {"type": "image_url", "image_url": {
            "url": "data:text/plain;base64," + _b64(f"the key is {AWS}")}}]),
        [_b64(f"the key is {AWS}"), AWS], False),
    "user": lambda: ({**_user("hello"), "user": f"svc {AWS}"}, [AWS], True),
    "stop": lambda: ({**_user("hello"), "stop": ["###", AWS]}, [AWS], True),
    "tool_call_id": lambda: ({"messages": _tool_exchange(call_id=AWS),
                              "tools": [_fn_tool()]}, [AWS], True),
    "tool-call function name": lambda: ({"messages": _tool_exchange(name=GITHUB),
                                         "tools": [_fn_tool(name=GITHUB)]}, [GITHUB], False),
    "tool description": lambda: ({**_user("hello"),
                                  "tools": [_fn_tool(f"Calls the API with {AWS}")]},
                                 [AWS], True),
    "tool parameter schema": lambda: ({**_user("hello"), "tools": [_fn_tool(parameters={
        "type": "object", "properties": {"q": {"type": "string",
                                               "description": f"token {GITHUB}"}}})]},
        [GITHUB], True),
    "tool parameter name": lambda: ({**_user("hello"), "tools": [_fn_tool(parameters={
        "type": "object", "properties": {GITHUB: {"type": "string"}}})]}, [GITHUB], False),
    "response_format schema": lambda: ({**_user("hello"), "response_format": {
        "type": "json_schema", "json_schema": {"name": "out", "schema": {
            "type": "object", "description": f"signed with {AWS}",
            "properties": {"a": {"type": "string"}}}}}}, [AWS], True),
    "prediction": lambda: ({**_user("hello"), "prediction": {
        "type": "content", "content": f"aws_access_key_id = {AWS}"}}, [AWS], True),
    "unknown top-level field": lambda: ({**_user("hello"), "x_note": f"key {AWS}"},
                                        [AWS], True),
    "unknown message field": lambda: (_user("hello", x_meta={"k": AWS}), [AWS], True),
    "unknown part field": lambda: (_user([{"type": "text", "text": "hello",
                                           "x_extra": GITHUB}]), [GITHUB], True),
}


@pytest.mark.parametrize("case", list(FIELDS))
def test_a_secret_in_any_field_never_reaches_an_external_vendor(env: Env, case: str) -> None:
    env.clear()
    body, needles, _ = FIELDS[case]()
    err = _assert_error(env.chat("external-only", body), 403, "policy_blocked")
    assert not any(n in err["message"] for n in needles)
    assert env.outside.received == []


@pytest.mark.parametrize("case", list(FIELDS))
def test_a_secret_in_any_field_goes_in_house_when_the_route_has_an_in_house_target(
        env: Env, case: str) -> None:
    env.clear()
    body, needles, _ = FIELDS[case]()
    resp = env.chat("mixed", body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-emancipate-ownership"] == "in-house"
    assert env.outside.received == []
    assert len(env.inside.received) == 1  # in-house targets get the body as it was sent
    assert needles[0] in env.inside.received[0].body.decode()


@pytest.mark.parametrize("case", list(FIELDS))
def test_a_secret_in_any_field_is_redacted_there_or_kept_from_the_vendor(
        env: Env, case: str) -> None:
    env.clear()
    body, needles, can_redact = FIELDS[case]()
    resp = env.chat("redacting", body)
    if not can_redact:  # a URL, a name, a field name: no placeholder fits, nothing is sent
        err = _assert_error(resp, 403, "policy_blocked")
        assert "cannot hold a placeholder" in err["message"]
        assert env.redactor.received == []
        return
    assert resp.status_code == 200, resp.text
    assert len(env.redactor.received) == 1
    _never_received(env.redactor, needles)
    assert "[SECRET_1]" in env.redactor.received[0].body.decode()


# --- encodings and obfuscations: (content, needles) ---------------------------------------------

def _spaced_out(value: str, sep: str) -> str:
    return value[:4] + sep + value[4:]


def _wrapped(encoded: str, width: int) -> str:
    return "\n".join(encoded[i:i + width] for i in range(0, len(encoded), width))


ENCODINGS: dict[str, Callable[[], tuple[Body, list[str]]]] = {
    "zero-width space": lambda: (_user(f"key {_spaced_out(AWS, chr(0x200B))} ok"),
                                 [_spaced_out(AWS, chr(0x200B))]),
    "zero-width joiners": lambda: (_user(f"key {chr(0x200D).join(AWS)} ok"),
                                   [chr(0x200D).join(AWS)]),
    "soft hyphen": lambda: (_user(f"key {_spaced_out(AWS, chr(0xAD))} ok"),
                            [_spaced_out(AWS, chr(0xAD))]),
    "NUL": lambda: (_user(f"key {_spaced_out(AWS, chr(0))} ok"), [_spaced_out(AWS, chr(0))]),
    "combining marks": lambda: (_user(f"key {AWS[:6]}\u0301{AWS[6:]} ok"),
                                [f"{AWS[:6]}\u0301{AWS[6:]}"]),
    "full-width": lambda: (_user("key " + "".join(chr(ord(c) + 0xFEE0) for c in AWS)),
                           ["".join(chr(ord(c) + 0xFEE0) for c in AWS)]),
    "Cyrillic look-alikes": lambda: (_user("key \u0410\u041a\u0406\u0410" + AWS[4:]),
                                     ["\u0410\u041a\u0406\u0410" + AWS[4:]]),
    "JSON \\u escapes in tool arguments": lambda: ({"messages": _tool_exchange(
        arguments='{"key": "\\u0041\\u004bIA' + AWS[4:] + '"}'), "tools": [_fn_tool()]},
        ["\\u0041\\u004bIA" + AWS[4:], AWS]),
    "percent-encoding": lambda: (_user(f"GET https://api.example/x?key=%41%4B{AWS[2:]}"),
                                 [f"%41%4B{AWS[2:]}", AWS]),
    "JSON escaped twice": lambda: (
        _user('payload: "{\\\\\\"api_key\\\\\\":\\\\\\"Xk29sLmQp81ZvTn4RbWy3qQ7pLm0\\\\\\"}"'),
        ["Xk29sLmQp81ZvTn4RbWy3qQ7pLm0"]),
    "terminal colour codes": lambda: (_user(f"log: \x1b[94m{AWS}\x1b[0m done"),
                                      [f"\x1b[94m{AWS}", AWS]),
    "HTML character references": lambda: (_user(f'<a href="/x?key=&quot;{AWS}&quot;">'),
                                          [AWS]),
    "HTML numeric references": lambda: (_user(f"key &#65;&#x4B;{AWS[2:]} ok"),
                                        [f"&#65;&#x4B;{AWS[2:]}", AWS[2:]]),
    "base64 in content": lambda: (_user("decode this: " + _b64(f"aws key {AWS} thanks")),
                                  [_b64(f"aws key {AWS} thanks"), AWS]),
    "base64 wrapped at 76 characters": lambda: (
        _user("decode this:\n" + _wrapped(_b64(f"the deploy key for the EU bucket is {AWS}"
                                                 " and the region is eu-west-3"), 76)),
        [AWS, _b64(f"the deploy key for the EU bucket is {AWS}")[:76]]),
    "hex dump": lambda: (_user("xxd -p says:\n" + _wrapped(f"aws key {AWS} ok".encode().hex(),
                                                               60)),
                         [f"aws key {AWS} ok".encode().hex()[:60], AWS]),
    "byte escapes": lambda: (_user('key = "' + "".join(f"\\x{ord(c):02x}" for c in AWS[:4])
                                   + AWS[4:] + '"'),
                             ["".join(f"\\x{ord(c):02x}" for c in AWS[:4]) + AWS[4:], AWS]),
    "split across two messages": lambda: ({"messages": [
        {"role": "user", "content": f"the key starts {AWS[:10]}"},
        {"role": "user", "content": f"{AWS[10:]} is the rest"}]}, [AWS[:10], AWS[10:]]),
    "split by a space": lambda: (_user(f"key {AWS[:8]} {AWS[8:]} ok"),
                                 [f"{AWS[:8]} {AWS[8:]}", AWS[8:]]),
    "token split by a newline": lambda: (_user(f"token {GITHUB[:14]}\n{GITHUB[14:]}"),
                                         [GITHUB[14:]]),
    "glued to the next word": lambda: (_user(f"key {AWS}thanks"), [AWS]),
    "spelt out one character at a time": lambda: (_user("the key is " + " ".join(AWS) + " ok"),
                                                  [" ".join(AWS), " ".join(AWS[4:12])]),
    "cut in 2-character pieces": lambda: (
        _user("key " + " ".join(AWS[i:i + 2] for i in range(0, 20, 2)) + " ok"),
        [" ".join(AWS[i:i + 2] for i in range(0, 20, 2)), AWS[10:12] + " " + AWS[12:14]]),
    "split after another token": lambda: (_user(f"ID42 {AWS[:8]} {AWS[8:]} ok"),
                                          [AWS[8:]]),
}


@pytest.mark.parametrize("case", list(ENCODINGS))
def test_an_encoded_secret_is_blocked_towards_an_external_vendor(env: Env, case: str) -> None:
    env.clear()
    body, _ = ENCODINGS[case]()
    _assert_error(env.chat("external-only", body), 403, "policy_blocked")
    assert env.outside.received == []


@pytest.mark.parametrize("case", list(ENCODINGS))
def test_an_encoded_secret_is_redacted_in_its_original_form_and_restored(
        env: Env, case: str) -> None:
    env.clear()
    body, needles = ENCODINGS[case]()
    resp = env.chat("redacting", body)
    assert resp.status_code == 200, resp.text
    _never_received(env.redactor, needles)
    if "tools" not in body:  # with tools the vendor answers a call, not an echo
        answer = resp.json()["choices"][0]["message"]["content"]
        last = body["messages"][-1]["content"]
        assert answer == f"redactor says: {last}"  # the vendor echoed placeholders: restored


# --- terms, e-mails, passwords ------------------------------------------------------------------

TERM_FORMS = ["project-nightingale", "PROJECT_NIGHTINGALE", "ProjectNightingale",
              "Project  Nightingale", "Project\n\tNightingale", "Proj\u200bect Nightingale",
              "\uff30roject \uff2eightingale"]


@pytest.mark.parametrize("form", TERM_FORMS)
def test_a_confidential_term_is_found_whatever_its_separators(env: Env, form: str) -> None:
    env.clear()
    content = f"Status of {form} for the board?"
    _assert_error(env.chat("external-only", _user(content)), 403, "policy_blocked")
    assert env.outside.received == []
    resp = env.chat("redacting", _user(content))
    assert resp.status_code == 200, resp.text
    _never_received(env.redactor, [form])
    assert resp.json()["choices"][0]["message"]["content"] == f"redactor says: {content}"


EMAIL_FORMS = ["jeanne.martin (at) lumiere-conseil (dot) fr",
               "jeanne.martin[at]lumiere-conseil[dot]fr",
               "jeanne.martin at lumiere-conseil dot fr",
               "jeanne.martin\uff20lumiere-conseil.fr"]


@pytest.mark.parametrize("form", EMAIL_FORMS)
def test_a_spelt_out_email_is_redacted_and_restored(env: Env, form: str) -> None:
    env.clear()
    content = f"Please write to {form} about the refund."
    resp = env.chat("external-only", _user(content))
    assert resp.status_code == 200, resp.text
    _never_received(env.outside, [form, EMAIL])
    assert "[EMAIL_1]" in env.outside.received[0].json["messages"][0]["content"]
    assert resp.json()["choices"][0]["message"]["content"] == f"outside says: {content}"


PASSWORDS = ["contraseña: Tr0ub4dor&3x", "mot de passe : Tr0ub4dor&3x",
             "Passwort: Tr0ub4dor&3x", "senha: Tr0ub4dor&3x",
             "p a s s w o r d: Tr0ub4dor&3x"]


@pytest.mark.parametrize("line", PASSWORDS)
def test_a_password_under_a_foreign_or_spaced_out_keyword_is_blocked(env: Env,
                                                                     line: str) -> None:
    env.clear()
    err = _assert_error(env.chat("external-only", _user(f"Login fails.\n{line}")), 403,
                        "policy_blocked")
    assert "Tr0ub4dor&3x" not in err["message"]
    assert env.outside.received == []


# --- embeddings -----------------------------------------------------------------------------------

EMBEDDINGS: dict[str, Body] = {
    "input": {"input": [f"key {AWS}"]},
    "user": {"input": "hello", "user": AWS},
    "unknown field": {"input": "hello", "x_tag": GITHUB},
    "token ids": {"input": [101, 2023, 102]},
}


@pytest.mark.parametrize("case", list(EMBEDDINGS))
def test_embeddings_fields_and_token_ids_never_reach_an_external_vendor(
        env: Env, case: str) -> None:
    env.clear()
    body = EMBEDDINGS[case]
    resp = env.http.post("/v1/embeddings", json={"model": "embed-external", **body})
    err = _assert_error(resp, 403, "policy_blocked")
    assert err["param"] == "input"
    if case == "token ids":
        assert "token ids" in err["message"]
    assert env.outside.received == []
    resp = env.http.post("/v1/embeddings", json={"model": "embed-mixed", **body})
    assert resp.status_code == 200, resp.text
    assert env.outside.received == [] and len(env.inside.received) == 1
