"""Shadow evaluation end to end (issue 6): real gateways, simulated vendors on loopback.

The "external" target is a simulated OpenAI-compatible vendor; the "in-house" one is a
second simulated vendor declared `ownership: in-house` (the embedded model would work the
same, only slower). What each side received is read from the vendors themselves, and the
verdicts from the gateway's SQLite file. Shadow work runs after the answers: the tests stop
the gateway (SIGTERM, which waits for the evaluations in flight) before reading results,
so nothing depends on timing.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from emancipate.routing.cli import app as router_app
from emancipate.routing.learned import IndependenceRouter
from emancipate.shadow.judge import (
    choice_letter,
    exact_applies,
    exact_verdict,
    pairwise_verdict,
    parse_verdict,
)
from emancipate.testing import HangBeforeHeaders, SimulatedVendor
from tests.gateway_process import GatewayProcess

AWS_KEY = "AKIA" + "W7NQ4ZK2RX3BT5MV"
EMAIL = "jeanne.martin@lumiere-conseil.fr"
runner = CliRunner()

COLUMNS = ["request_id", "created_at", "day", "route", "primary_target", "primary_ownership",
           "shadow_target", "shadow_ownership", "judge", "inhouse_ok", "verdict",
           "router_score", "prompt", "latency_ms", "shadow_vendor", "shadow_tokens",
           "shadow_cost", "judge_target", "judge_vendor", "judge_tokens", "judge_cost"]


def _last_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def external_reply(body: dict[str, Any]) -> str:
    if "long" in _last_user(body):
        return "The external model explains at length that the capital of France is Paris."
    return "Paris"


def inhouse_reply(body: dict[str, Any]) -> str:
    """Agrees with the external model on "easy" prompts, not on the others."""
    text = _last_user(body)
    if "long" in text:
        return "In-house: the capital of France is Paris, a city on the Seine, since 508."
    return "paris." if "easy" in text else "Lyon"


@pytest.fixture
def vendors() -> Iterator[tuple[SimulatedVendor, SimulatedVendor]]:
    with SimulatedVendor("openai", name="bigco", reply=external_reply) as ext, \
            SimulatedVendor("openai", name="home", reply=inhouse_reply) as home:
        yield ext, home


def _providers(ext: SimulatedVendor, home: SimulatedVendor) -> dict[str, Any]:
    return {
        "bigco": {"kind": "openai-compatible", "base_url": ext.url, "ownership": "external",
                  "vendor": "bigco"},
        "home": {"kind": "openai-compatible", "base_url": home.url, "ownership": "in-house",
                 "vendor": "us"},
    }


def _route(rate: float, home_model: str, inhouse_first: bool = False) -> dict[str, Any]:
    targets = [{"provider": "bigco", "model": "big-1"}, {"provider": "home", "model": home_model}]
    return {"targets": targets[::-1] if inhouse_first else targets, "shadow_rate": rate}


def _ask(gw: GatewayProcess, model: str, text: str, stream: bool = False) -> str:
    """One chat completion; returns the request id."""
    client = gw.client()
    messages = [{"role": "user", "content": text}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model=model, messages=messages, stream=True) as resp:
            assert "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
            return resp.headers["x-request-id"]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-request-id"]


def _verdicts(gw: GatewayProcess) -> list[dict[str, Any]]:
    db = sqlite3.connect(gw.workdir / "gateway.db")
    db.row_factory = sqlite3.Row
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(shadow_verdicts)")]
        assert cols == COLUMNS
        return [dict(r) for r in db.execute("SELECT * FROM shadow_verdicts ORDER BY created_at")]
    finally:
        db.close()


def _request_ids(gw: GatewayProcess) -> set[str]:
    db = sqlite3.connect(gw.workdir / "gateway.db")
    try:
        return {r[0] for r in db.execute("SELECT id FROM requests")}
    finally:
        db.close()


def _metric(gw: GatewayProcess, route: str, outcome: str) -> float:
    """emancipate_shadow_total{route, outcome} from the gateway's /metrics."""
    text = httpx.get(gw.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if (line.startswith("emancipate_shadow_total{") and f'route="{route}"' in line
                and f'outcome="{outcome}"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _stop(gw: GatewayProcess) -> None:
    """SIGTERM: the gateway waits for shadow evaluations in flight, then exits cleanly."""
    assert gw.terminate() in (0, -15), gw.log()  # uvicorn re-raises SIGTERM when done


# --- sampling ---------------------------------------------------------------------------------


def test_sampling_rates_are_respected_and_verdicts_are_stored(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    ext, home = vendors
    gw = start_gateway({
        "providers": _providers(ext, home),
        "routes": {"all": _route(1.0, "h-all"), "none": _route(0.0, "h-none"),
                   "some": _route(0.3, "h-some")},
        "shadow": {"max_concurrent": 64},
    })
    ids = [_ask(gw, "all", f"easy question {i}") for i in range(6)]
    ids += [_ask(gw, "all", f"hard question {i}") for i in range(4)]
    ids += [_ask(gw, "all", f"easy streamed {i}", stream=True) for i in range(3)]
    ids += [_ask(gw, "all", f"hard streamed {i}", stream=True) for i in range(2)]
    for i in range(20):
        _ask(gw, "none", f"easy question {i}", stream=i % 2 == 1)
    for i in range(100):
        _ask(gw, "some", f"question {i}")
    _stop(gw)

    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in home.received:
        by_model.setdefault(r.json["model"], []).append(r.json)
    rows = _verdicts(gw)
    every = [r for r in rows if r["route"] == "all"]
    some = [r for r in rows if r["route"] == "some"]

    # rate 1.0: every answered request, streamed or not, was replayed and judged
    assert {r["request_id"] for r in every} == set(ids)
    assert len(by_model["h-all"]) == 15
    assert all(not body.get("stream") for body in by_model["h-all"])  # replayed non-streaming
    # rate 0: never
    assert "h-none" not in by_model
    assert not [r for r in rows if r["route"] == "none"]
    # rate 0.3 over 100 requests: binomial(100, 0.3) lies in [10, 55] except ~1e-7 of runs
    assert 10 <= len(some) <= 55
    assert len(some) == len(by_model["h-some"])
    assert len(rows) == len(every) + len(some)

    # the rows: stored with the request's ledger record, exact match on short answers
    assert set(ids) <= _request_ids(gw)
    for r in every:
        assert r["primary_target"] == "bigco/big-1" and r["primary_ownership"] == "external"
        assert r["shadow_target"] == "home/h-all" and r["shadow_ownership"] == "in-house"
        assert r["judge"] == "exact"
        assert r["prompt"] is None  # keep_prompts is off by default
        assert isinstance(r["latency_ms"], (int, float)) and len(r["day"]) == 10
        assert (r["verdict"], r["inhouse_ok"]) in (("tie", 1), ("external_better", 0))
    assert sum(r["inhouse_ok"] for r in every) == 9  # the easy ones: "paris." == "Paris"
    assert sum(r["verdict"] == "external_better" for r in every) == 6


def test_a_saturated_shadow_drops_instead_of_queueing(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    ext, home = vendors
    home.inject(HangBeforeHeaders(5), times=1)  # the first replay stalls; answers do not
    gw = start_gateway({
        "providers": _providers(ext, home),
        "routes": {"chat": _route(1.0, "h-1")},
        "shadow": {"max_concurrent": 1, "shutdown_timeout": 30},
    })
    ids = [_ask(gw, "chat", f"easy question {i}") for i in range(4)]
    dropped = _metric(gw, "chat", "dropped")
    assert dropped >= 1  # the slot was still taken by the stalled replay
    assert _metric(gw, "chat", "sampled") == 4
    _stop(gw)  # waits for the stalled replay: its verdict is not lost
    rows = _verdicts(gw)
    assert rows and rows[0]["request_id"] == ids[0] and rows[0]["verdict"] == "tie"
    assert len(rows) == 4 - dropped


def test_the_embedded_model_as_the_in_house_shadow_target(
        start_gateway: Callable[..., GatewayProcess]) -> None:
    with SimulatedVendor("openai", name="bigco", reply=external_reply) as ext:
        gw = start_gateway({
            "providers": {
                "bigco": {"kind": "openai-compatible", "base_url": ext.url,
                          "ownership": "external", "vendor": "bigco"},
                "embedded": {"kind": "embedded"},
            },
            "routes": {"chat": {"shadow_rate": 1.0, "targets": [
                {"provider": "bigco", "model": "big-1"},
                {"provider": "embedded", "model": "smollm2-135m-instruct"}]}},
        }, wait_ready=True)
        client = gw.client()
        raw = client.chat.completions.with_raw_response.create(
            model="chat", max_tokens=3,  # tiny: the replay on 2 cores stays quick
            messages=[{"role": "user", "content": "Capital of France? One word."}])
        rid = raw.headers["x-request-id"]
        _stop(gw)
    (row,) = _verdicts(gw)
    assert row["request_id"] == rid and row["shadow_target"] == "embedded/smollm2-135m-instruct"
    assert row["verdict"] in ("tie", "external_better")  # answered and compared, not an error
    assert row["judge"] == "exact"
    # the embedded model's attempt was made and counted (its tokens; its latency is recorded
    # as a number, not asserted on: elapsed time belongs to bench/)
    assert row["shadow_tokens"] > 0 and isinstance(row["latency_ms"], (int, float))


# --- policy -----------------------------------------------------------------------------------


def test_shadow_traffic_never_goes_where_the_policy_forbids(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    ext, home = vendors
    gw = start_gateway({
        "providers": _providers(ext, home),
        "routes": {"home-first": _route(1.0, "h-1", inhouse_first=True),
                   "ext-first": _route(1.0, "h-2")},
        "shadow": {"direction": "both", "keep_prompts": True},
    })
    secret = f"why does boto3 reject aws_access_key_id={AWS_KEY} ?"
    plain = _ask(gw, "home-first", "easy plain question")  # in-house → shadowed to external
    leaked = [_ask(gw, "home-first", secret), _ask(gw, "home-first", secret, stream=True),
              _ask(gw, "ext-first", secret)]  # served in-house: the vendor is not eligible
    personal = _ask(gw, "home-first", f"easy: write to {EMAIL} about the refund")
    assert _metric(gw, "home-first", "no_eligible_target") == 2
    assert _metric(gw, "ext-first", "no_eligible_target") == 1  # served in-house, and the
    # only external target is not eligible: direction `both` finds nothing to replay on
    _stop(gw)

    raw = b"".join(r.body for r in ext.received)
    assert AWS_KEY.encode() not in raw  # neither the primary nor any shadow call
    assert EMAIL.encode() not in raw  # the shadow call to the vendor got the redacted body
    assert sum(1 for r in ext.received if b"refund" in r.body) == 1
    rows = {r["request_id"]: r for r in _verdicts(gw)}
    assert not set(leaked) & set(rows)
    assert rows[plain]["shadow_target"] == "bigco/big-1"
    assert rows[plain]["primary_ownership"] == "in-house"
    assert rows[plain]["prompt"] == "easy plain question"  # keep_prompts, guard found nothing
    assert rows[personal]["shadow_ownership"] == "external"
    assert rows[personal]["prompt"] is None  # the guard found an email: never stored


# --- judge ------------------------------------------------------------------------------------


def judge_reply(body: dict[str, Any]) -> str:
    """A judge model that prefers the in-house answer, wherever it is shown."""
    prompt = _last_user(body)
    if "undecided" in prompt:
        return "Both have merits; I cannot choose."
    a = prompt.split("[Answer A]", 1)[1].split("[Answer B]", 1)[0]
    return "[[A]]" if "In-house" in a else "Verdict: B"


def test_a_judge_route_compares_long_answers(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess]) -> None:
    ext, home = vendors
    with SimulatedVendor("openai", name="judge", reply=judge_reply) as judge:
        providers = _providers(ext, home)
        # a price of 1 per token (10^6 per million, in and out) makes cost read as tokens
        providers["judgeco"] = {"kind": "openai-compatible", "base_url": judge.url,
                                "ownership": "external", "vendor": "judgeco",
                                "price": {"input_per_mtok": 1e6, "output_per_mtok": 1e6}}
        providers["home"]["price"] = {"input_per_mtok": 2e6, "output_per_mtok": 2e6}
        gw = start_gateway({
            "providers": providers,
            "routes": {"chat": _route(1.0, "h-1"),
                       "judge": {"targets": [{"provider": "judgeco", "model": "j-1"}]}},
            "shadow": {"judge": "judge"},
        })
        long_ids = [_ask(gw, "chat", f"a long question {i}") for i in range(6)]
        short_id = _ask(gw, "chat", "easy short question")
        undecided = _ask(gw, "chat", "a long but undecided question")
        _stop(gw)
        asked = [r.json for r in judge.received]

    rows = {r["request_id"]: r for r in _verdicts(gw)}
    for rid in long_ids:
        assert rows[rid]["judge"] == "judge"
        assert (rows[rid]["verdict"], rows[rid]["inhouse_ok"]) == ("inhouse_better", 1)
    assert (rows[undecided]["verdict"], rows[undecided]["inhouse_ok"]) == ("error", 0)
    assert rows[short_id]["judge"] == "exact"  # short answers: compared without the judge
    assert rows[short_id]["verdict"] == "tie"
    # what each evaluation spent: the in-house answer always, the judge when it was asked
    # (the undecided one too: its reply was unreadable, but the call was made and billed)
    for rid, row in rows.items():
        assert (row["shadow_vendor"], row["judge"] == "judge") == ("us", rid != short_id)
        assert row["shadow_tokens"] > 0 and row["shadow_cost"] == 2 * row["shadow_tokens"]
        if rid == short_id:
            assert (row["judge_target"], row["judge_vendor"], row["judge_cost"]) == (None, None,
                                                                                    0.0)
        else:
            assert (row["judge_target"], row["judge_vendor"]) == ("judgeco/j-1", "judgeco")
            assert row["judge_tokens"] > 0 and row["judge_cost"] == row["judge_tokens"]
    assert len(asked) == 7
    for body in asked:
        assert body["model"] == "j-1" and body["max_tokens"] == 16
        text = body["messages"][-1]["content"]
        assert "The external model explains" in text and "In-house:" in text


def test_a_judge_that_is_not_a_route_fails_at_start(
        vendors: tuple[SimulatedVendor, SimulatedVendor], tmp_path: Path) -> None:
    ext, home = vendors
    gw = GatewayProcess({"providers": _providers(ext, home),
                         "routes": {"chat": _route(0.5, "h-1")},
                         "shadow": {"judge": "no-such-route"}}, tmp_path)
    with pytest.raises(RuntimeError):
        gw.start(timeout=30)
    assert "shadow.judge" in gw.log() and "no-such-route" in gw.log()


# --- router train --from-ledger ---------------------------------------------------------------

HARD = ["integral", "eigenvalue", "theorem", "derivative", "tensor"]
EASY = ["capital", "colour", "animal", "fruit", "weekday"]


def test_router_train_from_ledger_end_to_end(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess], tmp_path: Path) -> None:
    ext, home = vendors
    gw = start_gateway({
        "providers": _providers(ext, home),
        "routes": {"chat": _route(1.0, "h-1")},
        "shadow": {"keep_prompts": True, "max_concurrent": 64},
    })
    prompts = []
    for i in range(40):  # hard topics: the in-house model disagrees; easy ones: it agrees
        hard = i % 3 == 0
        word = HARD[i % 5] if hard else EASY[i % 5]
        text = f"{'hard' if hard else 'easy'} question {i} about the {word}"
        prompts.append(text)
        _ask(gw, "chat", text, stream=i % 4 == 0)
    _stop(gw)
    assert len(_verdicts(gw)) == 40

    out = tmp_path / "from-ledger.json"
    res = runner.invoke(router_app, ["train", "--from-ledger", "--config", str(gw.config_path),
                                     "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "trained on 40 shadow verdicts" in res.output
    assert "estimated readiness per day" in res.output
    router = IndependenceRouter.load(out)
    assert router.meta["source"] == "ledger"
    (trend,) = router.meta["readiness_by_day"]
    assert trend["verdicts"] == 40 and trend["readiness"] == pytest.approx(26 / 40)

    # the file works with `router score`, and hard prompts score higher than easy ones
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt"])
        w.writerows([p] for p in prompts)
    res = runner.invoke(router_app, ["score", "--router", str(out), "--input", str(src),
                                     "--output", str(dst)])
    assert res.exit_code == 0, res.output
    with dst.open(newline="") as fh:
        scored = list(csv.DictReader(fh))
    assert [r["prompt"] for r in scored] == prompts
    hard = [float(r["score"]) for r in scored if r["prompt"].startswith("hard")]
    easy = [float(r["score"]) for r in scored if r["prompt"].startswith("easy")]
    assert sum(hard) / len(hard) > sum(easy) / len(easy)


def test_router_train_from_ledger_says_what_is_missing(
        vendors: tuple[SimulatedVendor, SimulatedVendor],
        start_gateway: Callable[..., GatewayProcess], tmp_path: Path) -> None:
    ext, home = vendors
    gw = start_gateway({"providers": _providers(ext, home),
                        "routes": {"chat": _route(1.0, "h-1")}})
    out = tmp_path / "r.json"
    args = ["train", "--from-ledger", "--config", str(gw.config_path), "--out", str(out)]
    res = runner.invoke(router_app, args)  # nothing shadowed yet
    assert res.exit_code == 2
    assert "0 shadow verdicts" in res.output and "shadow_rate" in res.output
    for i in range(3):
        _ask(gw, "chat", f"easy question {i}")
    _stop(gw)
    res = runner.invoke(router_app, args)  # verdicts, but keep_prompts is off
    assert res.exit_code == 2
    assert "3 shadow verdicts" in res.output and "shadow.keep_prompts: true" in res.output
    assert not out.exists()
    res = runner.invoke(router_app, ["train", "--from-ledger", "--data", str(tmp_path),
                                     "--out", str(out)])
    assert res.exit_code == 2 and "drop --data" in res.output


# --- the verdict logic (pure functions) -------------------------------------------------------


@pytest.mark.parametrize("reply, pick", [
    ("A", "A"), ("b", "B"), ("TIE", "TIE"), ("Tie.", "TIE"), ("[[B]]", "B"), ("[[C]]", "TIE"),
    ("**A**", "A"), ("A is better.", "A"), ("Verdict: B", "B"), ("The better answer is A.", "A"),
    ("Answer B is more accurate.", "B"), ("A good answer would be B", "B"),
    ("Both are equally good.", "TIE"), ("", None), ("I cannot choose.", None),
    ("A and B are both fine but B has a mistake", None),
])
def test_parse_verdict(reply: str, pick: str | None) -> None:
    assert parse_verdict(reply) == pick


def test_exact_match_and_choice_answers() -> None:
    assert choice_letter("B") == choice_letter("(b).") == choice_letter("Answer: B") == "B"
    assert choice_letter("The correct answer is (C)") == "C"
    assert choice_letter("B) Paris") == "B"
    assert choice_letter("Because it rains") is None and choice_letter("a cat") is None
    assert exact_verdict("B", "The answer is B.") == ("tie", True)
    assert exact_verdict("Paris", " paris. ") == ("tie", True)
    assert exact_verdict("Paris", "Lyon") == ("external_better", False)
    assert exact_applies("B", "Answer: C, because the long explanation says so", 5)
    assert not exact_applies("a long explanation of the answer", "another one", 10)
    assert pairwise_verdict("A", inhouse_is_a=True) == ("inhouse_better", True)
    assert pairwise_verdict("A", inhouse_is_a=False) == ("external_better", False)
    assert pairwise_verdict(None, inhouse_is_a=False) == ("error", False)


def test_shadow_config_keys_are_documented() -> None:
    from emancipate.shadow.config import ShadowConfig

    for name, field in ShadowConfig.model_fields.items():
        assert field.description, name
    doc = (Path(__file__).parent.parent / "docs" / "shadow.md").read_text()
    for name in ShadowConfig.model_fields:
        assert f"`{name}`" in doc, name
    assert json.dumps(ShadowConfig().model_dump())  # plain values
