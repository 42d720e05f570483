"""Leak guard and co-opetition policy end to end (issue 4): real gateway, simulated vendors.

What the external vendor really received is read from its server (`vendor.received`, raw
bodies), never inferred from the gateway's own account. The ledger is read through the admin
API and, for the leak check, as raw bytes of the SQLite file next to the gateway log.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from stdnum import luhn

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess
from tests.polling import ledger_record

ADMIN_KEY = "admin-" + "e2e-guard-7f3a9c"

# Secrets (formats and entropy of real ones; none is a documentation sample).
AWS_KEY = "AKIA" + "W7NQ4ZK2RX3BT5MV"
AWS_SECRET = "q8Zr4Lk2Xw9Tn3Vb6Hj1Pm5Sd7Fg0Ac2Ye4Ru8Ki"
GITHUB_TOKEN = "ghp_" + "Q7mR2kX9vT4wZ1pL8nB3cY6hJ5dF0sA2eG7u"
PEM_BODY = "MIIEpQIBAAKCAQEA3Zq8Lk2Xw9Tn3Vb6Hj1Pm5Sd7Fg0Ac2Ye4Ru8KiQ7mR2kX9vT4w"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "\n"
       "Z1pL8nB3cY6hJ5dF0sA2eG7uW7NQ4ZK2RX3BT5MVq8Zr4Lk2Xw9Tn3Vb6Hj1Pm5S\n"
       "-----END RSA PRIVATE KEY-----")

SECRET_PROMPTS = {
    "aws": (f"Why does boto3 fail with aws_access_key_id={AWS_KEY} and "
            f"aws_secret_access_key={AWS_SECRET} ?", AWS_KEY, "aws_access_key"),
    "pem": (f"Is this key in the right format?\n{PEM}\nThanks", PEM_BODY, "private_key"),
    "github": (f"git push fails with the token {GITHUB_TOKEN} in my remote, why?",
               GITHUB_TOKEN, "github_token"),
}

# Personal data, English and French formats, checksums valid.
EMAIL = "jeanne.martin@lumiere-conseil.fr"
IBAN = "FR76 3000 6000 0112 3456 7890 189"
PHONE = "06 12 34 56 78"
CARD_BODY = "453201511283036"
CARD = CARD_BODY + luhn.calc_check_digit(CARD_BODY)
PERSONAL_PROMPT = (f"Write to {EMAIL} that the refund goes to IBAN {IBAN}, "
                   f"and that she can call us back on {PHONE}.")
PERSONAL_VALUES = [EMAIL, IBAN, PHONE]

TERM_INLINE = "Project Nightingale"
TERM_FROM_FILE = "Hélios Santé"
TOOLS = [{"type": "function", "function": {
    "name": "send_mail", "description": "Send an e-mail",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}}}}]


SEARCH_PROMPT = ("Our search ranking business is losing to them: how should we improve the "
                 "search engine relevance and the ranking of our search results?")


# --- a vendor that streams a few characters per event --------------------------------------


class TrickleVendor:
    """An OpenAI-compatible server that streams its answer 3 characters per event, so that
    placeholders arrive cut across chunks (`[EM`, `AIL_`, `1]`). Test fixture only."""

    def __init__(self, name: str = "trickle", size: int = 3) -> None:
        self.name, self.size = name, size
        self.received: list[bytes] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TrickleVendor:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.received.append(raw)
        body = json.loads(raw)
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        n = body.get("n") or 1
        call = bool(body.get("tools"))  # with tools: call the first one, the text as arguments
        text = json.dumps({"echo": last}) if call else f"{self.name} says: {last}"
        head = {"id": "chatcmpl-trickle", "created": 1_700_000_000, "model": body["model"]}
        usage = {"prompt_tokens": len(last.split()), "completion_tokens": len(text.split()),
                 "total_tokens": len(last.split()) + len(text.split())}
        tool = body["tools"][0]["function"]["name"] if call else None
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if call:
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_t", "type": "function",
                     "function": {"name": tool, "arguments": text}}]}
            return web.json_response({**head, "object": "chat.completion", "choices": [
                {"index": i, "message": message, "logprobs": None,
                 "finish_reason": "tool_calls" if call else "stop"} for i in range(n)],
                "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(choices: list[dict[str, Any]]) -> None:
            obj = {**head, "object": "chat.completion.chunk", "choices": choices}
            await resp.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

        for i in range(n):
            first: dict[str, Any] = {"role": "assistant", "content": ""}
            if call:
                first = {"role": "assistant", "content": None, "tool_calls": [
                    {"index": 0, "id": "call_t", "type": "function",
                     "function": {"name": tool, "arguments": ""}}]}
            await event([{"index": i, "delta": first, "finish_reason": None}])
        for k in range(0, len(text), self.size):
            piece = text[k:k + self.size]
            for i in range(n):  # choices interleaved, as vendors send them
                delta = ({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                         if call else {"content": piece})
                await event([{"index": i, "delta": delta, "finish_reason": None}])
        for i in range(n):
            await event([{"index": i, "delta": {},
                          "finish_reason": "tool_calls" if call else "stop"}])
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


# --- the gateway under test ----------------------------------------------------------------


def _provider(url: str, ownership: str, vendor: str) -> dict[str, Any]:
    return {"kind": "openai-compatible", "base_url": url, "ownership": ownership,
            "vendor": vendor, "retries": {"attempts": 1}}


def gateway_config(outside: Any, inside: Any, trickle: Any, terms_file: Path,
                   **policy: Any) -> dict[str, Any]:
    return {
        "server": {"log_level": "debug"},
        "providers": {
            "outside": _provider(outside.url, "external", "bigmodel"),
            "inside": _provider(inside.url, "in-house", "us"),
            "trickle": _provider(trickle.url, "external", "trickleco"),
        },
        "routes": {
            # External first: only the policy can send a request to the in-house target.
            "mixed": {"strategy": "fallback", "targets": [
                {"provider": "outside", "model": "big-1"},
                {"provider": "inside", "model": "own-1"}]},
            "external-only": {"targets": [{"provider": "outside", "model": "big-1"}]},
            "trickle": {"targets": [{"provider": "trickle", "model": "t-1"}]},
        },
        "guard": {"terms": [TERM_INLINE], "terms_files": [str(terms_file)]},
        "policy": {"vendors": {"bigmodel": {"relationships": {"search": "competitor"}}},
                   **policy},
        "ledger": {"flush_interval": 0.05},
    }


class Env:
    def __init__(self, gw: GatewayProcess, outside: SimulatedVendor, inside: SimulatedVendor,
                 trickle: TrickleVendor, claude: SimulatedVendor) -> None:
        self.gw, self.outside, self.inside, self.trickle = gw, outside, inside, trickle
        self.claude = claude
        self.client = gw.client(timeout=30)
        self.admin = httpx.Client(base_url=gw.url,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)

    def clear(self) -> None:
        self.outside.clear()
        self.inside.clear()
        self.claude.clear()
        self.trickle.received.clear()

    def ask(self, model: str, content: str, **kw: Any) -> tuple[Any, dict[str, str]]:
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": content}], **kw)
        return raw.parse(), dict(raw.headers)

    def ask_stream(self, model: str, content: str, **kw: Any) -> tuple[list[Any], dict[str, str]]:
        with self.client.chat.completions.with_streaming_response.create(
                model=model, stream=True, messages=[{"role": "user", "content": content}], **kw
        ) as resp:
            return list(resp.parse()), dict(resp.headers)

    def record(self, request_id: str) -> dict[str, Any]:
        """The ledger's record of one request (written a fraction of a second later)."""
        return ledger_record(self.admin, request_id)


def _vendors() -> tuple[SimulatedVendor, SimulatedVendor, TrickleVendor]:
    return (SimulatedVendor("openai", name="outside").start(),
            SimulatedVendor("openai", name="inside").start(), TrickleVendor().start())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("guard-e2e")
    terms = workdir / "terms.txt"
    terms.write_text(f"# customers\n{TERM_FROM_FILE}\nOrion-7\n", encoding="utf-8")
    outside, inside, trickle = _vendors()
    claude = SimulatedVendor("anthropic", name="claude", api_key="sk-ant-" + "upstream-4f9e",
                             chunks=40).start()
    cfg = gateway_config(outside, inside, trickle, terms)
    cfg["providers"]["claude"] = {"kind": "anthropic", "base_url": claude.url,
                                  "api_key_env": "CLAUDE_KEY", "ownership": "external",
                                  "vendor": "anthropic"}
    cfg["routes"]["claude"] = {"targets": [{"provider": "claude", "model": "claude-x"}]}
    cfg["routes"]["embed-external"] = {"targets": [{"provider": "outside", "model": "e-1"}]}
    cfg["routes"]["embed-mixed"] = {"targets": [{"provider": "outside", "model": "e-1"},
                                                {"provider": "inside", "model": "e-2"}]}
    gw = GatewayProcess(cfg, workdir, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY,
                                           "CLAUDE_KEY": "sk-ant-" + "upstream-4f9e"})
    try:
        gw.start()
        yield Env(gw, outside, inside, trickle, claude)
    finally:
        gw.stop()
        for vendor in (outside, inside, trickle, claude):
            vendor.stop()


def _no_body_contains(vendor: SimulatedVendor, values: list[str]) -> None:
    for req in vendor.received:
        for value in values:
            assert value.encode() not in req.body, f"{value!r} reached {vendor.name}"
            # JSON may escape non-ASCII or newlines: check the decoded form too.
            assert value not in json.dumps(req.json, ensure_ascii=False)


def _policy_decisions(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in record["decisions"] if d["stage"] == "policy"]


def _assert_openai_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert err["code"] == code
    return err


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", list(SECRET_PROMPTS))
def test_a_secret_never_reaches_the_external_vendor_and_is_served_in_house(
        env: Env, kind: str, stream: bool) -> None:
    env.clear()
    prompt, value, detector = SECRET_PROMPTS[kind]
    if stream:
        chunks, headers = env.ask_stream("mixed", prompt)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion, headers = env.ask("mixed", prompt)
        text = completion.choices[0].message.content
    assert headers["x-emancipate-provider"] == "inside"
    assert headers["x-emancipate-ownership"] == "in-house"
    assert text == f"inside says: {prompt}"  # in-house targets get the original body
    assert env.outside.received == []
    assert len(env.inside.received) == 1
    assert value in env.inside.received[0].json["messages"][0]["content"]

    rec = env.record(headers["x-request-id"])
    assert rec["status"] == 200 and rec["target"] == "inside/own-1"
    assert rec["ownership"] == "in-house"
    assert {"cls": "secret", "detector": detector} in [
        {"cls": f["cls"], "detector": f["detector"]} for f in rec["findings"]]
    by_target = {d["target"]: d for d in _policy_decisions(rec) if d["detector"] == detector}
    assert by_target["outside/big-1"]["action"] == "in-house-only"
    assert by_target["outside/big-1"]["rule"] == "secrets-stay-in-house"
    assert by_target["outside/big-1"]["cls"] == "secret"
    assert "excluded" in by_target["outside/big-1"]["reason"]
    assert by_target["inside/own-1"]["rule"] == "secrets-stay-in-house"
    assert "in-house" in by_target["inside/own-1"]["reason"]
    assert [a["target"] for a in rec["attempts"]] == ["inside/own-1"]
    assert value not in json.dumps(rec)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", list(SECRET_PROMPTS))
def test_a_secret_with_no_in_house_target_is_policy_blocked(
        env: Env, kind: str, stream: bool) -> None:
    env.clear()
    prompt, value, detector = SECRET_PROMPTS[kind]
    resp = httpx.post(env.gw.url + "/v1/chat/completions", timeout=30, json={
        "model": "external-only", "stream": stream,
        "messages": [{"role": "system", "content": "You are helpful."},
                     {"role": "user", "content": prompt}]})
    err = _assert_openai_error(resp, 403, "policy_blocked")
    assert err["type"] == "permission_error"
    assert "secrets-stay-in-house" in err["message"]
    assert detector in err["message"]
    assert value not in resp.text
    assert env.outside.received == []

    # The SDK surfaces it as a PermissionDeniedError with the same body.
    with pytest.raises(openai.PermissionDeniedError) as info:
        env.ask("external-only", prompt)
    assert info.value.code == "policy_blocked"
    assert value not in str(info.value)

    rec = env.record(resp.headers["x-request-id"])
    assert rec["status"] == 403 and rec["error_code"] == "policy_blocked"
    assert rec["attempts"] == [] and rec["target"] is None
    blocked = [d for d in _policy_decisions(rec) if d["action"] == "block"]
    assert len(blocked) == 1
    assert blocked[0]["rule"] == "secrets-stay-in-house"
    assert blocked[0]["cls"] == "secret" and blocked[0]["detector"] == detector
    assert {f["message_index"] for f in rec["findings"] if f["detector"] == detector} == {1}
    assert value not in json.dumps(rec)


# --- personal data: redacted out, restored in --------------------------------------------------


def _sent_content(vendor: SimulatedVendor) -> str:
    assert len(vendor.received) == 1
    return vendor.received[0].json["messages"][-1]["content"]


def test_personal_data_is_redacted_before_the_vendor_and_restored_for_the_client(
        env: Env) -> None:
    env.clear()
    completion, headers = env.ask("external-only", PERSONAL_PROMPT)
    assert headers["x-emancipate-provider"] == "outside"
    sent = _sent_content(env.outside)
    _no_body_contains(env.outside, PERSONAL_VALUES)
    assert sent == ("Write to [EMAIL_1] that the refund goes to IBAN [IBAN_1], "
                    "and that she can call us back on [PHONE_1].")
    # The vendor echoed the placeholders; the client sees its own values again.
    assert completion.choices[0].message.content == f"outside says: {PERSONAL_PROMPT}"

    rec = env.record(headers["x-request-id"])
    detectors = {d["detector"]: d for d in _policy_decisions(rec)}
    assert set(detectors) == {"email", "iban", "phone"}
    for d in detectors.values():
        assert d["action"] == "redact" and d["rule"] == "personal-data-redacted"
        assert d["cls"] == "personal" and d["target"] == "outside/big-1"
    assert not any(v in json.dumps(rec) for v in PERSONAL_VALUES)


def test_personal_data_round_trips_through_a_stream(env: Env) -> None:
    env.clear()
    chunks, headers = env.ask_stream("external-only", PERSONAL_PROMPT)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == f"outside says: {PERSONAL_PROMPT}"
    assert not any("[EMAIL_" in p or "[IBAN_" in p or "[PHONE_" in p for p in pieces)
    assert chunks[-1].choices[0].finish_reason == "stop"
    _no_body_contains(env.outside, PERSONAL_VALUES)
    assert "[IBAN_1]" in _sent_content(env.outside)
    assert env.record(headers["x-request-id"])["status"] == 200


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_placeholders_cut_across_stream_chunks_are_restored(env: Env, stream: bool) -> None:
    env.clear()
    if stream:
        chunks, headers = env.ask_stream("trickle", PERSONAL_PROMPT)
        pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
        text = "".join(pieces)
        assert not any("[" in p or "]" in p for p in pieces), pieces  # nothing half-restored
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        completion, headers = env.ask("trickle", PERSONAL_PROMPT)
        text = completion.choices[0].message.content
    assert text == f"trickle says: {PERSONAL_PROMPT}"
    assert len(env.trickle.received) == 1
    sent = env.trickle.received[0].decode()
    assert "[EMAIL_1]" in sent and "[IBAN_1]" in sent and "[PHONE_1]" in sent
    assert not any(v in sent for v in PERSONAL_VALUES)


def test_each_choice_of_a_stream_is_restored_on_its_own(env: Env) -> None:
    """n=2: the vendor interleaves the choices' chunks; a placeholder cut in one choice must
    not swallow or leak into the other choice's text."""
    env.clear()
    chunks, _ = env.ask_stream("trickle", PERSONAL_PROMPT, n=2)
    texts = ["", ""]
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [f"trickle says: {PERSONAL_PROMPT}"] * 2


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_call_arguments_cut_across_chunks_are_restored(env: Env, stream: bool) -> None:
    env.clear()
    if stream:
        chunks, _ = env.ask_stream("trickle", PERSONAL_PROMPT, tools=TOOLS)
        args = "".join(tc.function.arguments or "" for c in chunks if c.choices
                       for tc in (c.choices[0].delta.tool_calls or ()))
    else:
        completion, _ = env.ask("trickle", PERSONAL_PROMPT, tools=TOOLS)
        args = completion.choices[0].message.tool_calls[0].function.arguments
    assert json.loads(args) == {"echo": PERSONAL_PROMPT}
    assert not any(v in env.trickle.received[0].decode() for v in PERSONAL_VALUES)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_redaction_round_trips_through_an_anthropic_vendor(env: Env, stream: bool) -> None:
    """Redaction happens before translation to the Messages API; restoration after it."""
    env.clear()
    if stream:
        chunks, headers = env.ask_stream("claude", PERSONAL_PROMPT)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion, headers = env.ask("claude", PERSONAL_PROMPT)
        text = completion.choices[0].message.content
    assert headers["x-emancipate-provider"] == "claude"
    assert text == f"claude says: {PERSONAL_PROMPT}"
    _no_body_contains(env.claude, PERSONAL_VALUES)
    assert "[EMAIL_1]" in env.claude.received[0].body.decode()


def test_content_parts_and_system_messages_are_scanned(env: Env) -> None:
    env.clear()
    messages = [
        {"role": "system", "content": f"Deploy with the token {GITHUB_TOKEN}."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello to"},
                                     {"type": "text", "text": EMAIL}]},
    ]
    raw = env.client.chat.completions.with_raw_response.create(model="mixed",
                                                               messages=messages)
    assert raw.headers["x-emancipate-provider"] == "inside"
    assert env.outside.received == []
    with pytest.raises(openai.PermissionDeniedError):
        env.client.chat.completions.create(model="external-only", messages=messages)

    completion = env.client.chat.completions.create(model="external-only",
                                                    messages=messages[1:])
    assert completion.choices[0].message.content == f"outside says: Say hello to{EMAIL}"
    _no_body_contains(env.outside, [EMAIL])
    assert env.outside.received[0].json["messages"][0]["content"][1]["text"] == "[EMAIL_1]"


def test_embeddings_are_guarded(env: Env) -> None:
    """Embedding a placeholder would be useless: personal data and secrets may only be
    embedded in-house; with no in-house target, 403."""
    env.clear()
    clean = env.client.embeddings.create(model="embed-external", input="plain words")
    assert len(clean.data) == 1 and len(env.outside.received) == 1

    for text in (PERSONAL_PROMPT, SECRET_PROMPTS["github"][0]):
        env.clear()
        with pytest.raises(openai.PermissionDeniedError) as info:
            env.client.embeddings.create(model="embed-external", input=[text])
        assert info.value.code == "policy_blocked"
        assert env.outside.received == []
        raw = env.client.embeddings.with_raw_response.create(model="embed-mixed", input=[text])
        assert raw.headers["x-emancipate-provider"] == "inside"
        assert env.outside.received == [] and len(env.inside.received) == 1


def test_a_text_that_looks_like_a_placeholder_is_left_alone(env: Env) -> None:
    """The user's own `[EMAIL_1]` is not a placeholder: the gateway numbers around it."""
    env.clear()
    prompt = f"Replace [EMAIL_1] in the template by {EMAIL}."
    completion, _ = env.ask("external-only", prompt)
    sent = _sent_content(env.outside)
    assert EMAIL not in sent and "[EMAIL_1]" in sent and "[EMAIL_2]" in sent
    assert completion.choices[0].message.content == f"outside says: {prompt}"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_call_arguments_are_restored(env: Env, stream: bool) -> None:
    """The simulated model calls the tool with the (redacted) user text as arguments."""
    env.clear()
    prompt = f"Mail {EMAIL} about IBAN {IBAN}"
    if stream:
        chunks, _ = env.ask_stream("external-only", prompt, tools=TOOLS)
        args = "".join(tc.function.arguments or "" for c in chunks if c.choices
                       for tc in (c.choices[0].delta.tool_calls or ()))
    else:
        completion, _ = env.ask("external-only", prompt, tools=TOOLS)
        args = completion.choices[0].message.tool_calls[0].function.arguments
    assert json.loads(args) == {"echo": prompt}
    _no_body_contains(env.outside, [EMAIL, IBAN])


def test_tool_call_arguments_in_the_request_are_scanned_and_redacted(env: Env) -> None:
    env.clear()
    messages = [
        {"role": "user", "content": "Send the invoice."},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "send_mail", "arguments": json.dumps({"to": EMAIL})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sent"},
        {"role": "user", "content": "Thanks, and to whom did it go?"},
    ]
    completion = env.client.chat.completions.create(model="external-only", messages=messages)
    assert completion.choices[0].message.content == "outside says: Thanks, and to whom did it go?"
    _no_body_contains(env.outside, [EMAIL])
    args = env.outside.received[0].json["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(args) == {"to": "[EMAIL_1]"}


# --- competitors, confidential terms --------------------------------------------------------


def test_a_competitor_never_sees_a_request_about_its_domain(env: Env) -> None:
    env.clear()
    completion, headers = env.ask("mixed", SEARCH_PROMPT)
    assert headers["x-emancipate-provider"] == "inside"
    assert env.outside.received == []
    rec = env.record(headers["x-request-id"])
    d = next(d for d in _policy_decisions(rec) if d["target"] == "outside/big-1")
    assert d["rule"] == "no-competitor-on-its-domain" and d["action"] == "block"
    assert d["cls"] == "domain" and d["detector"] == "domain:search"
    assert "bigmodel competes in search" in d["reason"]

    resp = httpx.post(env.gw.url + "/v1/chat/completions", timeout=30, json={
        "model": "external-only", "messages": [{"role": "user", "content": SEARCH_PROMPT}]})
    err = _assert_openai_error(resp, 403, "policy_blocked")
    assert "no-competitor-on-its-domain" in err["message"] and "search" in err["message"]
    assert env.outside.received == []

    # The same vendor stays a partner outside that domain.
    _, headers = env.ask("mixed", "How do I reverse a list in Python?")
    assert headers["x-emancipate-provider"] == "outside"


@pytest.mark.parametrize("term, said", [
    (TERM_INLINE, "What is the status of project nightingale?"),
    (TERM_FROM_FILE, "Prepare the renewal offer for HELIOS SANTE next week."),
], ids=["inline", "terms-file-accents"])
def test_confidential_terms_stay_in_house(env: Env, term: str, said: str) -> None:
    env.clear()
    completion, headers = env.ask("mixed", said)
    assert headers["x-emancipate-provider"] == "inside"
    assert env.outside.received == []
    rec = env.record(headers["x-request-id"])
    d = next(d for d in _policy_decisions(rec) if d["target"] == "outside/big-1")
    assert (d["rule"], d["action"], d["cls"], d["detector"]) == (
        "confidential-terms-stay-in-house", "in-house-only", "confidential", "term")

    resp = httpx.post(env.gw.url + "/v1/chat/completions", timeout=30, json={
        "model": "external-only", "messages": [{"role": "user", "content": said}]})
    err = _assert_openai_error(resp, 403, "policy_blocked")
    assert "confidential-terms-stay-in-house" in err["message"]
    assert term.lower() not in err["message"].lower()


def test_a_clean_prompt_goes_to_the_external_vendor_unchanged(env: Env) -> None:
    env.clear()
    prompt = "Summarise the plot of Hamlet in two sentences."
    completion, headers = env.ask("mixed", prompt)
    assert headers["x-emancipate-provider"] == "outside"
    assert _sent_content(env.outside) == prompt
    rec = env.record(headers["x-request-id"])
    assert rec["findings"] == [] and _policy_decisions(rec) == []


# --- other policies: per config -----------------------------------------------------------------


def test_operator_rules_block_a_domain_or_allow_a_class(tmp_path: Path) -> None:
    """Operator rules come before the defaults: talk about search is refused outright (even
    in-house), and e-mail addresses may go out unredacted."""
    terms = tmp_path / "terms.txt"
    terms.write_text("", encoding="utf-8")
    outside, inside, trickle = _vendors()
    try:
        cfg = gateway_config(outside, inside, trickle, terms, rules=[
            {"name": "no-search-talk", "class": "domain", "domain": "search", "action": "block"},
            {"name": "emails-may-go-out", "class": "personal", "detector": "email",
             "action": "allow"},
            {"name": "code-redacted", "class": "code", "action": "redact"},
        ])
        with GatewayProcess(cfg, tmp_path) as gw:
            client = gw.client()
            with pytest.raises(openai.PermissionDeniedError) as info:
                client.chat.completions.create(
                    model="mixed", messages=[{"role": "user", "content": SEARCH_PROMPT}])
            assert info.value.code == "policy_blocked"
            assert "no-search-talk" in info.value.message
            assert outside.received == [] and inside.received == []

            prompt = f"Mail {EMAIL} about IBAN {IBAN}"
            completion = client.chat.completions.create(
                model="external-only", messages=[{"role": "user", "content": prompt}])
            assert completion.choices[0].message.content == f"outside says: {prompt}"
            sent = outside.received[0].json["messages"][0]["content"]
            assert sent == "Mail jeanne.martin@lumiere-conseil.fr about IBAN [IBAN_1]"

            # A redacted value with quotes and newlines, restored inside streamed tool-call
            # arguments cut every 3 characters: the arguments must stay valid JSON.
            code = 'Fix this:\n```python\ndef greet(name):\n    return "hi " + name\n```'
            for stream in (False, True):
                trickle.received.clear()
                call = client.chat.completions.create(
                    model="trickle", messages=[{"role": "user", "content": code}],
                    tools=TOOLS, stream=stream)
                if stream:
                    args = "".join(tc.function.arguments or "" for c in call if c.choices
                                   for tc in (c.choices[0].delta.tool_calls or ()))
                else:
                    args = call.choices[0].message.tool_calls[0].function.arguments
                assert json.loads(args) == {"echo": code}
                assert "[CODE_1]" in trickle.received[0].decode()
                assert "def greet" not in trickle.received[0].decode()
    finally:
        outside.stop()
        inside.stop()
        trickle.stop()


def test_rules_per_team_and_per_key(tmp_path: Path) -> None:
    """With virtual keys: a team may send personal data out unredacted, one key may send its
    AWS access key id to the external vendor; everyone else gets the cautious defaults."""
    terms = tmp_path / "terms.txt"
    terms.write_text("", encoding="utf-8")
    outside, inside, trickle = _vendors()
    try:
        cfg = gateway_config(outside, inside, trickle, terms, rules=[
            {"name": "research-sends-personal-data", "class": "personal", "team": "research",
             "action": "allow"},
            {"name": "ci-bot-may-send-aws-ids", "class": "secret", "detector": "aws_*",
             "key": "ci-bot", "action": "allow"},
        ])
        cfg["auth"] = {"enabled": True}
        with GatewayProcess(cfg, tmp_path, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY}) as gw:
            admin = httpx.Client(base_url=gw.url, timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            keys = {}
            for name, team in (("researcher", "research"), ("seller", "sales"),
                               ("ci-bot", "platform")):
                r = admin.post("/admin/keys", json={"name": name, "team": team})
                assert r.status_code == 201, r.text
                keys[name] = r.json()["key"]

            def ask(key: str, model: str, prompt: str) -> Any:
                return gw.client(api_key=key).chat.completions.with_raw_response.create(
                    model=model, messages=[{"role": "user", "content": prompt}])

            prompt = f"Mail {EMAIL} please"
            for name, sent in (("researcher", prompt), ("seller", "Mail [EMAIL_1] please")):
                outside.clear()
                raw = ask(keys[name], "external-only", prompt)
                assert raw.parse().choices[0].message.content == f"outside says: {prompt}"
                assert outside.received[0].json["messages"][0]["content"] == sent
                record = ledger_record(admin, raw.headers["x-request-id"])
                rule = record["decisions"][0]["rule"]
                assert rule == ("research-sends-personal-data" if name == "researcher"
                                else "personal-data-redacted")

            aws = f"Which account owns {AWS_KEY}?"
            outside.clear()
            raw = ask(keys["ci-bot"], "mixed", aws)
            assert raw.headers["x-emancipate-provider"] == "outside"
            assert AWS_KEY in outside.received[0].body.decode()
            for name in ("seller", "researcher"):
                outside.clear()
                raw = ask(keys[name], "mixed", aws)
                assert raw.headers["x-emancipate-provider"] == "inside"
                assert outside.received == []
    finally:
        outside.stop()
        inside.stop()
        trickle.stop()


# --- nothing sensitive in the ledger file or the log --------------------------------------------


def test_the_ledger_file_and_the_log_never_hold_a_detected_value(env: Env) -> None:
    """Runs last in this module: every request above has been made. The gateway is stopped
    (SIGTERM flushes the ledger), then its database file(s) and log are read as bytes."""
    # One more of each, to be sure they are in this gateway's ledger whatever ran before.
    ids = []
    for prompt, _, _ in SECRET_PROMPTS.values():
        ids.append(env.ask("mixed", prompt)[1]["x-request-id"])
        with pytest.raises(openai.PermissionDeniedError):
            env.ask("external-only", prompt)
    ids.append(env.ask("external-only", PERSONAL_PROMPT)[1]["x-request-id"])
    for rid in ids:
        env.record(rid)
    # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean exit here.
    assert env.gw.terminate() in (0, -15)
    assert "Application shutdown complete" in env.gw.log()

    values = [v for _, v, _ in SECRET_PROMPTS.values()] + [AWS_SECRET] + PERSONAL_VALUES
    values.append("sk-ant-" + "upstream-4f9e")  # an upstream credential is never logged
    db_files = [p for p in env.gw.workdir.glob("gateway.db*") if p.is_file()]
    assert db_files, list(env.gw.workdir.iterdir())
    spill = list(env.gw.workdir.glob("ledger-spill/*"))
    for path in [*db_files, *spill, env.gw.log_path]:
        data = path.read_bytes()
        for value in values:
            for form in {value, value.replace(" ", ""), json.dumps(value)[1:-1]}:
                assert form.encode() not in data, f"{value!r} found in {path.name}"
    # The decisions themselves are there (the file is the ledger, not an empty one).
    assert b"secrets-stay-in-house" in b"".join(p.read_bytes() for p in db_files)
