"""The co-opetition policy with the real guard: eligibility, redaction, restoration, audit."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from emancipate.config import ConfigError, GatewayConfig, parse_config
from emancipate.context import ANONYMOUS, Principal, Target
from emancipate.guard import Guard
from emancipate.policy import Policy, Restorer
from emancipate.policy.redact import redact_message

AWS = "AKIA" + "Q3MZ7XV5KPLN2RTW"
EMAIL = "jean.dupont@example.fr"
IBAN = "FR76 3000 6000 0112 3456 7890 189"

OPENAI = Target("openai", "gpt-4o", "openai", "external")
BIGSEARCH = Target("bigsearch", "bs-1", "bigsearch", "external")
LOCAL = Target("local", "smollm2", "in-house", "in-house")


def config(policy: dict[str, Any] | None = None, guard: dict[str, Any] | None = None
           ) -> GatewayConfig:
    return parse_config({
        "providers": {
            "local": {"kind": "embedded"},
            "openai": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1",
                       "ownership": "external", "vendor": "openai"},
            "bigsearch": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:2",
                          "ownership": "external", "vendor": "bigsearch"},
        },
        "guard": guard or {"terms": ["Project Phoenix"]},
        "policy": policy if policy is not None else {
            "vendors": {"bigsearch": {"relationships": {"search": "competitor"}}}},
    })


def setup(policy: dict[str, Any] | None = None, guard: dict[str, Any] | None = None
          ) -> tuple[Guard, Policy]:
    cfg = config(policy, guard)
    return Guard.from_config(cfg.guard), Policy.from_config(cfg)


def chat(*contents: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": c} for c in contents]}


def plan_for(body: dict[str, Any], targets: list[Target], principal: Principal = ANONYMOUS,
             **kw: Any) -> Any:
    g, p = setup(**kw)
    return p.plan(body, g.scan_request(body), targets, principal)


def no_value_in_audit(plan: Any, *values: str) -> None:
    text = repr(plan.decisions) + repr(plan.blocked)
    for v in values:
        assert v not in text


# --- defaults --------------------------------------------------------------------------------

def test_secret_goes_in_house_only_or_is_blocked() -> None:
    body = chat(f"why does {AWS} fail?")
    plan = plan_for(body, [OPENAI, LOCAL])
    assert plan.targets == [LOCAL] and plan.blocked is None
    assert plan.body_for(LOCAL, body) is body
    rules = {(d.target, d.rule, d.action) for d in plan.decisions}
    assert ("openai/gpt-4o", "secrets-stay-in-house", "in-house-only") in rules
    plan = plan_for(body, [OPENAI, BIGSEARCH])
    assert plan.targets == []
    assert plan.blocked is not None and plan.blocked.rule == "secrets-stay-in-house"
    assert plan.blocked.action == "block" and plan.blocked.stage == "policy"
    assert "aws_access_key" in plan.blocked.reason and plan.blocked in plan.decisions
    no_value_in_audit(plan, AWS)


def test_personal_data_redacted_for_external_and_restored() -> None:
    body = chat(f"Write to {EMAIL} and again {EMAIL}; IBAN {IBAN}.", "thanks")
    original = copy.deepcopy(body)
    plan = plan_for(body, [OPENAI, LOCAL])
    assert plan.targets == [OPENAI, LOCAL]
    sent = plan.body_for(OPENAI, body)
    assert sent is not body and body == original  # the input is never changed
    content = sent["messages"][0]["content"]
    assert content == "Write to [EMAIL_1] and again [EMAIL_1]; IBAN [IBAN_1]."
    assert sent["messages"][1] is body["messages"][1]  # untouched messages are shared
    assert plan.body_for(LOCAL, body) is body and plan.restorer_for(LOCAL) is None
    restorer = plan.restorer_for(OPENAI)
    assert restorer is not None
    assert restorer.restore("Dear [EMAIL_1], IBAN [IBAN_1] noted; [EMAIL_9] unknown.") == (
        f"Dear {EMAIL}, IBAN {IBAN} noted; [EMAIL_9] unknown.")
    no_value_in_audit(plan, EMAIL, IBAN)
    assert {d.action for d in plan.decisions} == {"redact"}


def test_placeholders_never_collide_with_the_users_text() -> None:
    body = chat(f"literal [EMAIL_1] and [EMAIL_2] here, real {EMAIL}")
    plan = plan_for(body, [OPENAI])
    sent = plan.body_for(OPENAI, body)["messages"][0]["content"]
    assert sent == "literal [EMAIL_1] and [EMAIL_2] here, real [EMAIL_3]"
    r = plan.restorer_for(OPENAI)
    assert r.restore(sent) == body["messages"][0]["content"]


def test_confidential_terms_stay_in_house() -> None:
    plan = plan_for(chat("status of project phoenix?"), [OPENAI, LOCAL])
    assert plan.targets == [LOCAL]
    plan = plan_for(chat("status of project phoenix?"), [OPENAI])
    assert plan.blocked.rule == "confidential-terms-stay-in-house"


def test_competitor_excluded_on_its_domain_only() -> None:
    search = chat("Improve our search engine ranking algorithm please.")
    plan = plan_for(search, [BIGSEARCH, OPENAI])
    assert plan.targets == [OPENAI]
    excluded = [d for d in plan.decisions if d.target == BIGSEARCH.id]
    assert excluded[0].rule == "no-competitor-on-its-domain" and "competes" in \
        excluded[0].reason
    plan = plan_for(chat("Write a haiku about autumn."), [BIGSEARCH, OPENAI])
    assert plan.targets == [BIGSEARCH, OPENAI] and plan.decisions == []
    plan = plan_for(search, [BIGSEARCH])
    assert plan.blocked.rule == "no-competitor-on-its-domain"
    assert "search" in plan.blocked.reason


def test_clean_request_is_untouched() -> None:
    body = chat("hello")
    plan = plan_for(body, [OPENAI, LOCAL])
    assert plan.targets == [OPENAI, LOCAL] and plan.decisions == [] and plan.blocked is None
    assert plan.body_for(OPENAI, body) is body and plan.restorer_for(OPENAI) is None


def test_body_for_refuses_an_excluded_target() -> None:
    body = chat(f"key {AWS}")
    plan = plan_for(body, [OPENAI, LOCAL])
    with pytest.raises(ValueError, match="not eligible"):
        plan.body_for(OPENAI, body)


# --- operator rules --------------------------------------------------------------------------

def test_operator_rules_come_first_and_match_team_key_detector() -> None:
    policy = {"rules": [
        {"name": "research-sees-personal", "class": "personal", "team": "research",
         "action": "allow"},
        {"name": "no-phones-outside", "class": "personal", "detector": "ph*",
         "ownership": "external", "action": "block"},
        {"name": "ci-key-may-send-aws", "class": "secret", "detector": "aws_*",
         "key": "key_ci", "action": "allow"},
    ]}
    body = chat(f"mail {EMAIL}")
    research = Principal(key_id="k1", team="research")
    plan = plan_for(body, [OPENAI], research, policy=policy)
    assert plan.body_for(OPENAI, body) is body and plan.restorer_for(OPENAI) is None
    assert plan.decisions[0].rule == "research-sees-personal"
    plan = plan_for(body, [OPENAI], ANONYMOUS, policy=policy)
    assert plan.decisions[0].rule == "personal-data-redacted"
    phone = chat("call 06 12 34 56 78")
    plan = plan_for(phone, [OPENAI, LOCAL], ANONYMOUS, policy=policy)
    assert plan.targets == [LOCAL]
    plan = plan_for(chat(f"key {AWS}"), [OPENAI], Principal(key_id="key_ci"), policy=policy)
    assert plan.targets == [OPENAI]


def test_block_without_target_conditions_blocks_in_house_too() -> None:
    policy = {"rules": [{"name": "never-cards", "class": "personal", "detector": "card",
                         "action": "block"}]}
    plan = plan_for(chat("card 4539 1488 0343 6467"), [OPENAI, LOCAL], policy=policy)
    assert plan.targets == [] and plan.blocked.rule == "never-cards"


def test_relationship_applies_to_other_classes_in_the_requests_domain() -> None:
    policy = {
        "vendors": {"bigsearch": {"relationships": {"search": "competitor"}}},
        "rules": [{"name": "no-personal-to-competitors", "class": "personal",
                   "relationship": "competitor", "action": "block"},
                  {"name": "search-code-in-house", "class": "code", "domain": "search",
                   "action": "in-house-only"}],
        "defaults": False,
    }
    body = chat(f"Our search engine ranking algorithm mails {EMAIL}.")
    plan = plan_for(body, [BIGSEARCH, OPENAI], policy=policy)
    assert plan.targets == [OPENAI]  # defaults off: the domain itself does not exclude
    assert plan.body_for(OPENAI, body) is body  # and nothing is redacted
    plan = plan_for(chat(f"Write to {EMAIL}."), [BIGSEARCH, OPENAI], policy=policy)
    assert plan.targets == [BIGSEARCH, OPENAI]  # no search topic: bigsearch is a partner
    code = "```python\ndef rank(docs):\n    return sorted(docs)\n```"
    plan = plan_for(chat("search engine ranking algorithm:\n" + code), [OPENAI, LOCAL],
                    policy=policy)
    assert plan.targets == [LOCAL]
    plan = plan_for(chat("a haiku generator:\n" + code), [OPENAI, LOCAL], policy=policy)
    assert plan.targets == [OPENAI, LOCAL]


def test_policy_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        setup(policy={"vendors": {"opnai": {"relationships": {"search": "competitor"}}}})
    assert exc.value.key == "policy.vendors.opnai"
    with pytest.raises(ConfigError) as exc:
        setup(policy={"vendors": {"openai": {"relationships": {"serch": "competitor"}}}})
    assert exc.value.key == "policy.vendors.openai.relationships.serch"
    with pytest.raises(ConfigError) as exc:
        setup(policy={"rules": [{"class": "secret", "detector": "aws_key", "action": "allow"}]})
    assert exc.value.key == "policy.rules.0.detector"
    with pytest.raises(ConfigError) as exc:
        setup(policy={"rules": [{"class": "domain", "action": "redact"}]})
    assert exc.value.key == "policy.rules.0.action"
    with pytest.raises(ConfigError) as exc:
        parse_config({"policy": {"rules": [{"class": "secrets", "action": "allow"}]}})
    assert exc.value.key.startswith("policy.rules.0")


# --- redaction details -----------------------------------------------------------------------

def test_redaction_in_parts_and_tool_arguments() -> None:
    args = json.dumps({"to": EMAIL, "body": "hi"})
    body = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": f"mail {EMAIL}"},
                                     {"type": "image_url", "image_url": {"url": "u"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "send", "arguments": args}}]},
    ]}
    original = copy.deepcopy(body)
    plan = plan_for(body, [OPENAI])
    sent = plan.body_for(OPENAI, body)
    assert body == original
    assert sent["messages"][0]["content"][0]["text"] == "mail [EMAIL_1]"
    assert sent["messages"][0]["content"][1] is body["messages"][0]["content"][1]
    new_args = sent["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(new_args) == {"to": "[EMAIL_1]", "body": "hi"}
    r = plan.restorer_for(OPENAI)
    assert json.loads(r.restore(new_args)) == {"to": EMAIL, "body": "hi"}


def test_restore_escapes_values_inside_json_strings() -> None:
    r = Restorer({"[CODE_1]": 'print("hi")\nx = 1'})
    args = '{"code": "[CODE_1]"}'
    assert json.loads(r.restore(args)) == {"code": 'print("hi")\nx = 1'}
    assert r.restore("plain [CODE_1]") == 'plain print("hi")\nx = 1'


def test_a_cut_that_would_break_tool_arguments_replaces_them_whole() -> None:
    args = json.dumps({"a": "x", "b": "y"})
    message = {"role": "assistant", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": args}}]}
    whole: dict[str, str] = {}
    start = args.index('"x"')
    out = redact_message(message, [(start, start + 8, "[TERM_1]")], whole)  # eats a quote
    new_args = out["tool_calls"][0]["function"]["arguments"]
    assert json.loads(new_args) == {"redacted": "[ARGS_1]"} and whole == {"[ARGS_1]": args}
    assert message["tool_calls"][0]["function"]["arguments"] == args


@pytest.mark.parametrize("answer", [
    "Sure, I wrote to [EMAIL_1] about [IBAN_1].",
    "[EMAIL_1][IBAN_1]",
    "Nothing to restore [here] and [EMA but not a placeholder",
])
def test_streaming_restore_equals_whole_restore_at_every_split(answer: str) -> None:
    r = Restorer({"[EMAIL_1]": EMAIL, "[IBAN_1]": IBAN})
    whole = r.restore(answer)
    for size in range(1, len(answer) + 1):
        stream = Restorer({"[EMAIL_1]": EMAIL, "[IBAN_1]": IBAN})
        out = "".join(stream.feed(answer[i:i + size]) for i in range(0, len(answer), size))
        out += stream.flush()
        assert out == whole, size


def test_feed_holds_back_only_possible_placeholders() -> None:
    r = Restorer({"[EMAIL_1]": EMAIL})
    assert r.feed("Hello [EM") == "Hello "
    assert r.feed("AIL_1] bye") == f"{EMAIL} bye"
    assert r.feed("array[0") == "array[0"  # cannot start a placeholder
    assert r.feed(" and [") == " and "
    assert r.flush() == "["


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_streamed_legacy_function_call_and_custom_tool_input_are_restored() -> None:
    r = Restorer({"[EMAIL_1]": EMAIL})
    chunks = [
        _chunk({"function_call": {"name": "send", "arguments": '{"to": "[EMA'}}),
        _chunk({"function_call": {"arguments": 'IL_1]"}'}}),
        _chunk({"tool_calls": [{"index": 0, "type": "custom",
                                "custom": {"name": "mail", "input": "to [EMA"}}]}),
        _chunk({"tool_calls": [{"index": 0, "custom": {"input": "IL_1] now [EMAIL"}}]}),
        _chunk({}, finish="function_call"),
    ]
    for chunk in chunks:
        r.restore_chunk(chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    args = "".join(d.get("function_call", {}).get("arguments", "") for d in deltas)
    assert json.loads(args) == {"to": EMAIL}
    custom = "".join(c["custom"]["input"] for d in deltas for c in d.get("tool_calls", ()))
    assert custom == f"to {EMAIL} now [EMAIL"  # a partial one is released at the finish


def test_whole_answers_get_function_call_and_custom_tool_input_restored() -> None:
    from emancipate.pipeline import restore_message

    body = {"choices": [{"index": 0, "message": {
        "role": "assistant", "content": None,
        "function_call": {"name": "send", "arguments": '{"to": "[EMAIL_1]"}'},
        "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "mail",
                                                                 "input": "to [EMAIL_1]"}},
                       {"id": "c2", "type": "function",
                        "function": {"name": "f", "arguments": '{"a": "[EMAIL_1]"}'}}]}}]}
    restore_message(body, Restorer({"[EMAIL_1]": EMAIL}))
    msg = body["choices"][0]["message"]
    assert json.loads(msg["function_call"]["arguments"]) == {"to": EMAIL}
    assert msg["tool_calls"][0]["custom"]["input"] == f"to {EMAIL}"
    assert json.loads(msg["tool_calls"][1]["function"]["arguments"]) == {"a": EMAIL}
