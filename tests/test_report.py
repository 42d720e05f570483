"""The independence report on a ledger seeded with known traffic (SQLite and PostgreSQL),
its CLI forms, and the admin endpoint through a real gateway process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from emancipate.config import parse_config
from emancipate.context import Attempt, Decision, Finding, Principal, RequestContext, Target
from emancipate.ledger import Ledger, LedgerConfig, db, schema
from emancipate.ledger.retention import prune
from emancipate.ledger.summary import TABLES, backfill_if_needed
from emancipate.report import build_report, hhi, hhi_band, render_html, render_table
from emancipate.report.build import clear_cache
from emancipate.routing.learned import IndependenceRouter
from tests.ledger_traffic import differences, random_context, record_random_traffic

pytest_plugins = ["tests.services"]

OPENAI = Target("openai", "gpt-4o", "openai", "external")
CLAUDE = Target("claude", "claude-sonnet-4-5", "anthropic", "external")
LOCAL = Target("local", "llama-70b", "in-house", "in-house")
ADMIN_KEY = "test-admin-key-0123456789"
DAY = 86400.0


def gateway_config(database_url: str, router_path: Path) -> dict[str, Any]:
    """Three providers (two external vendors, one in-house) and an independence route."""
    def provider(vendor: str, ownership: str, port: int) -> dict[str, Any]:
        return {"kind": "openai-compatible", "base_url": f"http://127.0.0.1:{port}/v1",
                "vendor": vendor, "ownership": ownership}

    return {
        "server": {"database_url": database_url},
        "providers": {"openai": provider("openai", "external", 9),
                      "claude": provider("anthropic", "external", 9),
                      "local": provider("in-house", "in-house", 9)},
        "routes": {
            "chat": {"targets": [{"provider": "openai", "model": "gpt-4o"},
                                 {"provider": "claude", "model": "claude-sonnet-4-5"},
                                 {"provider": "local", "model": "llama-70b"}]},
            "assistant": {"strategy": "independence", "router": str(router_path),
                          "threshold": 0.5,
                          "targets": [{"provider": "local", "model": "llama-70b"},
                                      {"provider": "openai", "model": "gpt-4o"}]},
        },
        "auth": {"enabled": False},
    }


def write_router(path: Path) -> Path:
    """A router file whose held-out calibration curve is known exactly."""
    cal = {"threshold": [0.0, 0.25, 0.5, 0.75, 1.0],
           "inhouse_share": [0.0, 0.25, 0.5, 0.75, 1.0],
           "quality": [0.8, 0.79, 0.76, 0.7, 0.6],
           "gap_recovered": [1.0, 0.95, 0.8, 0.5, 0.0],
           "strong_quality": 0.8, "weak_quality": 0.6, "n": 100, "method": "test"}
    IndependenceRouter.length_rule(cal).save(path)
    return path


def _ctx(target: Target | None, at: float, *, route: str = "chat", cost: float = 0.0,
         status: int = 200, failed_first: Target | None = None, attempts_failed: int = 0,
         score: float | None = None, routing: str | None = None) -> RequestContext:
    ctx = RequestContext(principal=Principal("key_a", name="a", team="search"), route=route)
    ctx.started_at = at
    ctx.served_by = target if status == 200 else None
    if failed_first is not None:
        ctx.attempts.append(Attempt(failed_first.id, failed_first.vendor, failed_first.ownership,
                                    "timeout", 30.0, None, "timeout"))
    for _ in range(attempts_failed):
        ctx.attempts.append(Attempt(OPENAI.id, "openai", "external", "upstream_5xx", 5.0, 503,
                                    "upstream_5xx"))
    if target is not None and status == 200:
        ctx.attempts.append(Attempt(target.id, target.vendor, target.ownership, "ok", 20.0, 200))
        ctx.prompt_tokens, ctx.completion_tokens = 100, 20
    ctx.cost, ctx.status, ctx.latency_ms = cost, status, 25.0
    if status >= 400:
        ctx.error_code = "policy_blocked" if status == 403 else "no_target_available"
    if score is not None:
        ctx.router_score = score
        ctx.decisions.append(Decision("routing", routing or "in-house", f"score {score}"))
    return ctx


def seed_known_traffic(ledger: Ledger, now: float | None = None) -> dict[str, Any]:
    """Known traffic: today, yesterday and 40 days ago. Returns the request ids of interest.

    Today:     openai x6 (0.10 each; 2 of them routed external by the router, scores .8 .9),
               anthropic x2 (0.20 each; one survived a failover from openai),
               in-house x4 (routed in-house, scores .1 .2 .3 .4),
               1 blocked by policy (403), 1 failed on every target (503, 2 attempts).
    Yesterday: openai x2 (0.10 each), in-house x2.
    40 days ago: openai x1 (1.00).
    Leaks prevented: 1 redacted (personal, to openai), 1 kept in-house (secret), 1 blocked.
    """
    now = now or time.time()
    # noon UTC today: every "today" request shares one UTC day whatever the hour of the run
    today = (now // DAY) * DAY + DAY / 2 if now % DAY >= DAY / 2 else (now // DAY) * DAY + 60
    yesterday, old = today - DAY, today - 40 * DAY
    ctxs: list[RequestContext] = []
    ids: dict[str, Any] = {}
    for i in range(6):
        ext = i >= 4
        ctxs.append(_ctx(OPENAI, today + i, cost=0.10, route="assistant" if ext else "chat",
                         score=(0.8 if i == 4 else 0.9) if ext else None,
                         routing="external" if ext else None))
    redacted = ctxs[0]
    redacted.findings.append(Finding("personal", "email", 0, 10, message_index=0))
    redacted.decisions.append(Decision("policy", "redact", "1 personal finding: redacted",
                                       rule="personal-data-redacted", cls="personal",
                                       detector="email", target=OPENAI.id))
    ids["redacted"] = redacted.request_id
    ctxs.append(_ctx(CLAUDE, today + 10, cost=0.20, failed_first=OPENAI))
    ids["failover"] = ctxs[-1].request_id
    ctxs.append(_ctx(CLAUDE, today + 11, cost=0.20))
    for i, s in enumerate((0.1, 0.2, 0.3, 0.4)):
        ctxs.append(_ctx(LOCAL, today + 20 + i, route="assistant", score=s, routing="in-house"))
    kept = ctxs[-1]
    kept.findings.append(Finding("secret", "aws_access_key", 0, 20, message_index=0))
    for t in (OPENAI, LOCAL):
        kept.decisions.append(Decision("policy", "in-house-only", "secret", rule="secrets",
                                       cls="secret", detector="aws_access_key", target=t.id))
    ids["kept"] = kept.request_id
    blocked = _ctx(None, today + 30, status=403)
    blocked.findings.append(Finding("domain", "domain:search", 0, 5, message_index=0,
                                    domain="search"))
    blocked.decisions.append(Decision("policy", "block", "competitor", rule="no-competitor",
                                      cls="domain", detector="domain:search", target=CLAUDE.id))
    blocked.decisions.append(Decision("policy", "block", "every target competes",
                                      rule="no-competitor", cls="domain",
                                      detector="domain:search"))
    ids["blocked"] = blocked.request_id
    ctxs.append(blocked)
    ctxs.append(_ctx(None, today + 31, status=503, attempts_failed=2))
    for i in range(2):
        ctxs.append(_ctx(OPENAI, yesterday + i, cost=0.10))
        ctxs.append(_ctx(LOCAL, yesterday + 10 + i))
    ctxs.append(_ctx(OPENAI, old, cost=1.0))
    for ctx in ctxs:
        ledger.record(ctx)
    ledger.flush()
    ids["today"] = time.strftime("%Y-%m-%d", time.gmtime(today))
    ids["yesterday"] = time.strftime("%Y-%m-%d", time.gmtime(yesterday))
    ids["today_ts"] = today
    return ids


def seed_shadow(ledger: Ledger, today: float) -> None:
    """Shadow verdicts: today 2 ok + 1 not ok + 1 error, yesterday 1 ok (route assistant),
    written as the shadow stage writes them (the daily summary counts them too).

    Spend: every shadow answer on the in-house vendor (100 tokens, 0.001 each); the first two
    judged by an anthropic judge route (50 tokens, 0.02 each); the others compared exactly.
    """
    rows = []
    for i, (ok, verdict, at) in enumerate([
        (True, "tie", today), (True, "inhouse_better", today), (False, "external_better", today),
        (False, "error", today), (True, "tie", today - DAY),
    ]):
        ts = datetime.fromtimestamp(at + 100 + i, UTC)
        judged = i < 2
        rows.append({"request_id": f"req_shadow_{i}", "created_at": ts,
                     "day": ts.strftime("%Y-%m-%d"), "route": "assistant",
                     "primary_target": OPENAI.id, "primary_ownership": "external",
                     "shadow_target": LOCAL.id, "shadow_ownership": "in-house",
                     "judge": "judge" if judged else "exact", "inhouse_ok": ok,
                     "verdict": verdict, "router_score": 0.5, "prompt": None,
                     "latency_ms": 12.0, "shadow_vendor": LOCAL.vendor, "shadow_tokens": 100,
                     "shadow_cost": 0.001, "judge_target": CLAUDE.id if judged else None,
                     "judge_vendor": CLAUDE.vendor if judged else None,
                     "judge_tokens": 50 if judged else 0, "judge_cost": 0.02 if judged else 0.0})
    for row in rows:
        ledger.record_shadow(row)


def _cache_ctx(at: float, outcome: str, target: Target | None = None, *, vendor: str | None = None,
               saved: float = 0.0, semantic: bool = False) -> RequestContext:
    """A request of the cached route `support`: a miss or a bypass served by `target`, or a
    hit recorded as the gateway records one (no target, no attempt, no tokens, no cost; the
    vendor call it avoided, its 120 tokens and its cost)."""
    if outcome != "hit":
        ctx = _ctx(target, at, route="support", cost=0.10 if target is OPENAI else 0.0)
        ctx.extra["cache"] = outcome
        return ctx
    ctx = _ctx(None, at, route="support")
    ctx.extra.update(cache="hit", saved_tokens=120)
    if vendor is not None:
        ctx.extra.update(cache_vendor=vendor, saved_cost=saved)
    if semantic:
        ctx.extra["cache_similarity"] = 0.98
    return ctx


def seed_cache(ledger: Ledger, today: float) -> None:
    """Route `support` with a response cache. Today: 3 misses (openai, 0.10 each), 2
    bypasses (in-house), 5 hits: 3 of openai's answers (one semantic; 0.10 avoided each),
    1 of anthropic's (0.20), 1 of the in-house target's (no vendor call avoided). Yesterday:
    1 miss (openai), 1 hit (openai, 0.10). Every hit avoided 120 tokens."""
    ctxs = [_cache_ctx(today + 200 + i, "miss", OPENAI) for i in range(3)]
    ctxs += [_cache_ctx(today + 210 + i, "bypass", LOCAL) for i in range(2)]
    ctxs += [_cache_ctx(today + 220, "hit", vendor="openai", saved=0.10),
             _cache_ctx(today + 221, "hit", vendor="openai", saved=0.10),
             _cache_ctx(today + 222, "hit", vendor="openai", saved=0.10, semantic=True),
             _cache_ctx(today + 223, "hit", vendor="anthropic", saved=0.20),
             _cache_ctx(today + 224, "hit"),
             _cache_ctx(today - DAY + 200, "miss", OPENAI),
             _cache_ctx(today - DAY + 201, "hit", vendor="openai", saved=0.10)]
    for ctx in ctxs:
        ledger.record(ctx)
    ledger.flush()


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> Any:
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    ids = seed_known_traffic(ledger)
    seed_shadow(ledger, ids["today_ts"])
    cfg = parse_config(gateway_config(database_url, write_router(tmp_path / "router.json")))
    yield ledger, cfg, ids
    ledger.close()


def test_report_figures_match_the_seeded_traffic(seeded: Any) -> None:
    ledger, cfg, ids = seeded
    rep = build_report(ledger.engine, datetime.now(UTC) - timedelta(days=7), cfg)
    json.dumps(rep)  # plain data

    t = rep["totals"]
    assert (t["requests"], t["served"], t["unserved"], t["errors"]) == (18, 16, 2, 2)
    assert t["tokens"] == 16 * 120 and t["cost"] == pytest.approx(1.2)
    assert t["inhouse_share_requests"] == pytest.approx(6 / 16, abs=1e-4)
    assert t["inhouse_share_cost"] == 0.0

    v = {row["vendor"]: row for row in rep["by_vendor"]}
    assert {k: v[k]["requests"] for k in v} == {"openai": 8, "anthropic": 2, "in-house": 6}
    assert v["openai"]["share_requests"] == pytest.approx(0.5)
    assert v["openai"]["share_tokens"] == pytest.approx(0.5)
    assert v["openai"]["share_cost"] == pytest.approx(0.6667, abs=1e-4)
    assert v["anthropic"]["cost"] == pytest.approx(0.4)
    assert v["anthropic"]["failovers_survived"] == 1
    o = {row["ownership"]: row for row in rep["by_ownership"]}
    assert (o["external"]["requests"], o["in-house"]["requests"]) == (10, 6)
    assert o["external"]["share_cost"] == 1.0

    c = rep["concentration"]
    assert c["hhi"] == pytest.approx(2500 + 156.25 + 1406.25, abs=0.1)
    assert c["band"] == "highly concentrated"
    assert c["hhi_external"] == pytest.approx(6800, abs=0.1)
    assert c["top_vendor"] == "openai"

    days = {d["day"]: d for d in rep["trend"]}
    assert set(days) == {ids["today"], ids["yesterday"]}
    today, yday = days[ids["today"]], days[ids["yesterday"]]
    assert (today["requests"], yday["requests"]) == (14, 4)
    assert today["hhi"] == pytest.approx((50**2) + (100 / 6) ** 2 + (100 / 3) ** 2, abs=0.1)
    assert yday["hhi"] == pytest.approx(5000, abs=0.1)
    assert yday["inhouse_share"] == 0.5
    assert today["vendors"]["anthropic"] == {"requests": 2, "tokens": 240,
                                             "cost": pytest.approx(0.4)}
    assert (today["kept_in_house"], today["routed"]) == (4, 6)
    assert (today["redacted"], today["kept_in_house_policy"], today["blocked"]) == (1, 1, 1)

    r = rep["router"]
    assert (r["kept_in_house"], r["routed"], r["served_in_house"]) == (4, 6, 4)
    assert r["expected_worse_answers"] == pytest.approx(1.0)
    assert r["expected_worse_share"] == pytest.approx(0.25)
    assert r["routes"][0]["route"] == "assistant"

    p = rep["protection"]
    assert (p["leaks_prevented"], p["redacted"], p["kept_in_house"], p["blocked"]) == (3, 1, 1, 1)
    by_cls = {row["cls"]: row for row in p["by_class"]}
    assert by_cls["personal"] == {"cls": "personal", "findings": 1, "requests": 1,
                                  "redacted": 1, "kept_in_house": 0, "blocked": 0}
    assert by_cls["secret"]["kept_in_house"] == 1  # the in-house target's decision is no leak
    assert by_cls["domain"]["blocked"] == 1
    assert p["by_domain"] == [{"domain": "search", "findings": 1, "requests": 1}]
    pv = {row["vendor"]: row for row in p["by_vendor"]}
    assert pv["openai"]["redacted"] == 1 and pv["openai"]["kept_in_house"] == 1
    assert pv["anthropic"]["blocked"] == 1
    assert "in-house" not in pv or pv["in-house"]["kept_in_house"] == 0

    f = rep["failovers"]
    assert (f["survived"], f["multi_attempt"], f["not_survived"]) == (1, 2, 1)
    assert f["failed_attempts"] == [{"target": OPENAI.id, "vendor": "openai",
                                     "outcome": "timeout", "attempts": 1, "requests": 1}]

    s = rep["shadow"]
    assert s["available"] is True
    assert s["routes"][0]["route"] == "assistant"
    assert (s["routes"][0]["verdicts"], s["routes"][0]["errors"],
            s["routes"][0]["inhouse_ok"]) == (5, 1, 3)
    assert s["routes"][0]["readiness"] == pytest.approx(0.75)
    by_day = {d["day"]: d for d in s["days"]}
    assert by_day[ids["today"]]["readiness"] == pytest.approx(2 / 3, abs=1e-4)
    assert days[ids["yesterday"]]["shadow_readiness"] == 1.0
    spend = s["spend"]  # outside the traffic shares, which count client requests only
    assert spend["cost"] == pytest.approx(5 * 0.001 + 2 * 0.02)
    assert spend["tokens"] == 5 * 100 + 2 * 50
    assert spend["by_vendor"] == [
        {"vendor": CLAUDE.vendor, "shadow_calls": 0, "judge_calls": 2, "tokens": 100,
         "cost": pytest.approx(0.04)},
        {"vendor": LOCAL.vendor, "shadow_calls": 5, "judge_calls": 0, "tokens": 500,
         "cost": pytest.approx(0.005)}]
    text = render_table(rep)
    assert "Shadow evaluation spend (not in the shares above): 0.0450 USD, 600 tokens" in text

    (w,) = rep["what_if"]
    assert w["route"] == "assistant" and w["threshold"] == 0.5 and w["live_requests"] == 6
    at = {pt["threshold"]: pt for pt in w["points"]}
    assert at[0.5]["inhouse_share_heldout"] == 0.5 and at[0.5]["quality_heldout"] == 0.76
    assert at[0.5]["inhouse_share_live"] == pytest.approx(4 / 6, abs=1e-4)
    assert at[0.5]["quality_live_est"] == pytest.approx(0.8 - 1.0 / 6, abs=1e-4)
    assert at[0.25]["inhouse_share_live"] == pytest.approx(2 / 6, abs=1e-4)
    assert at[0.0]["inhouse_share_live"] == 0.0 and at[1.0]["inhouse_share_live"] == 1.0
    assert w["curve_heldout"][0]["quality"] == 0.8
    # measured live: the judged verdicts (router score 0.5) a threshold would keep in-house
    assert at[0.5]["verdicts_kept_live"] == 0
    assert at[0.55]["verdicts_kept_live"] == 4 and at[0.55]["inhouse_ok_when_kept_live"] == 0.75
    # the test router file holds no held-out estimate: the report flags it
    assert w["calibrated"] is False and "no held-out estimate" in w["warning"]
    assert "  warning: router " in render_table(rep)


def test_the_period_bounds_the_report(seeded: Any) -> None:
    ledger, cfg, ids = seeded
    everything = build_report(ledger.engine, None, cfg)
    assert everything["totals"]["requests"] == 19
    assert {r["vendor"]: r["requests"] for r in everything["by_vendor"]}["openai"] == 9
    assert len(everything["trend"]) == 3
    today_only = build_report(ledger.engine, datetime.fromtimestamp(ids["today_ts"] - 10, UTC),
                              cfg)
    assert today_only["totals"]["requests"] == 14
    assert [d["day"] for d in today_only["trend"]] == [ids["today"]]
    empty = build_report(ledger.engine, datetime.now(UTC) + timedelta(days=1), cfg)
    assert empty["totals"]["requests"] == 0 and empty["by_vendor"] == []
    assert empty["concentration"]["hhi"] == 0.0
    assert "no requests recorded" in render_table(empty)


def test_past_days_are_cached_and_today_stays_live(seeded: Any) -> None:
    ledger, cfg, ids = seeded
    clear_cache()
    since = datetime.now(UTC) - timedelta(days=7)
    first = build_report(ledger.engine, since, cfg)
    assert first["cached_closed_days"] == []
    second = build_report(ledger.engine, since, cfg)
    assert {"traffic", "routing", "findings", "protection"} <= set(
        second["cached_closed_days"])
    volatile = ("generated_at", "timing_ms", "cached_closed_days")
    assert ({k: v for k, v in first.items() if k not in volatile}
            == {k: v for k, v in second.items() if k not in volatile})
    ledger.record(_ctx(CLAUDE, time.time(), cost=0.5))  # today is always read live
    ledger.flush()
    third = build_report(ledger.engine, since, cfg)
    assert third["totals"]["requests"] == first["totals"]["requests"] + 1
    assert third["totals"]["cost"] == pytest.approx(first["totals"]["cost"] + 0.5)


def test_without_the_shadow_table_the_report_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    ledger = Ledger.open(url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    seed_known_traffic(ledger)
    db.downgrade(ledger.engine, "0002")  # a ledger from before shadow evaluation
    rep = build_report(ledger.engine, None, None)
    assert rep["shadow"]["available"] is False
    assert "no shadow data" in rep["shadow"]["note"]
    assert rep["totals"]["requests"] == 19
    assert "no shadow data" in render_table(rep)
    ledger.close()


def test_the_cache_section_counts_hits_and_the_vendor_calls_they_avoided(seeded: Any) -> None:
    """Hits are requests but neither served nor unserved nor errors: the shares, the HHI and
    the in-house share are those of the traffic targets served."""
    ledger, cfg, ids = seeded
    seed_cache(ledger, ids["today_ts"])
    since = datetime.now(UTC) - timedelta(days=7)
    for source in ("summary", "raw"):
        clear_cache()
        rep = build_report(ledger.engine, since, cfg, source=source)  # type: ignore[arg-type]
        k = rep["cache"]
        assert k["available"] is True
        assert (k["lookups"], k["hits"], k["misses"], k["bypasses"]) == (12, 6, 4, 2)
        assert (k["vendor_calls_avoided"], k["inhouse_hits"], k["semantic_hits"]) == (5, 1, 1)
        assert k["hit_rate"] == 0.5
        assert k["tokens_avoided"] == 6 * 120 and k["cost_avoided"] == pytest.approx(0.6)
        assert k["avoided_share"] == pytest.approx(5 / (10 + 4 + 5), abs=1e-4)
        assert k["by_vendor"] == [
            {"vendor": "openai", "calls_avoided": 4, "tokens": 480, "cost": pytest.approx(0.4)},
            {"vendor": "anthropic", "calls_avoided": 1, "tokens": 120,
             "cost": pytest.approx(0.2)}]
        assert k["by_route"] == [{"route": "support", "lookups": 12, "hits": 6, "misses": 4,
                                  "bypasses": 2, "vendor_calls_avoided": 5, "hit_rate": 0.5}]
        t = rep["totals"]
        assert (t["requests"], t["served"], t["unserved"], t["errors"], t["cache_hits"]) == (
            30, 22, 2, 2, 6)
        assert t["inhouse_share_requests"] == pytest.approx(8 / 22, abs=1e-4)
        v = {row["vendor"]: row["requests"] for row in rep["by_vendor"]}
        assert v == {"openai": 12, "anthropic": 2, "in-house": 8}  # no hit in any vendor's
        days = {d["day"]: d for d in rep["trend"]}
        assert (days[ids["today"]]["cache_hits"],
                days[ids["today"]]["vendor_calls_avoided"]) == (5, 4)
        assert (days[ids["yesterday"]]["cache_hits"],
                days[ids["yesterday"]]["vendor_calls_avoided"]) == (1, 1)
    text = render_table(rep)
    assert ("VENDOR CALLS AVOIDED BY CACHE  5 (26.3% of external calls); 6 hits (1 of in-house "
            "answers, 1 semantic), hit rate 50.0% of 12 requests on cached routes; avoided 720 "
            "tokens, 0.60 USD") in text
    assert '"vendor_calls_avoided":5' in render_html(rep)
    _assert_summary_gives_raw_figures(ledger.engine, cfg, ids["today_ts"])
    with ledger.engine.connect() as conn:  # the writer summarised them as it wrote them
        assert conn.execute(select(func.sum(schema.daily_cache.c.requests))).scalar() == 12
    # Retention deletes yesterday's rows: the summary keeps its hit, the detail rows do not.
    deleted = prune(ledger.engine, ids["today"])
    assert deleted is not None and deleted["requests"] > 0
    midnight = datetime.fromtimestamp(ids["today_ts"] - ids["today_ts"] % DAY, UTC)
    for source, hits in (("summary", 6), ("raw", 5)):
        clear_cache()
        rep = build_report(ledger.engine, midnight - timedelta(days=1), cfg,
                           source=source)  # type: ignore[arg-type]
        assert rep["cache"]["hits"] == hits


def test_without_a_cached_route_the_cache_section_is_empty(seeded: Any) -> None:
    ledger, cfg, _ids = seeded
    rep = build_report(ledger.engine, None, cfg)
    assert rep["cache"]["lookups"] == 0 and rep["cache"]["by_vendor"] == []
    assert rep["totals"]["cache_hits"] == 0 and rep["totals"]["unserved"] == 2
    assert "VENDOR CALLS AVOIDED" not in render_table(rep)


# --- daily summary vs detail rows --------------------------------------------------------------


def _periods(today_ts: float) -> list[tuple[datetime | None, datetime | None]]:
    """Whole history, the usual rolling periods (partial first day), a partial today, a
    closed past period between two midnights, and one ending mid-day."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [(None, None), (now - timedelta(days=7), None), (now - timedelta(days=365), None),
            (datetime.fromtimestamp(today_ts - 10, UTC), None),
            (midnight - timedelta(days=40), midnight - timedelta(days=1)),
            (midnight - timedelta(days=60, hours=5), midnight - timedelta(days=2, hours=3))]


def _assert_summary_gives_raw_figures(engine: Any, cfg: Any, today_ts: float) -> None:
    for since, until in _periods(today_ts):
        clear_cache()
        raw = build_report(engine, since, cfg, until=until, source="raw")
        summary = build_report(engine, since, cfg, until=until)
        assert (raw["source"], summary["source"]) == ("raw", "summary")
        assert differences(raw, summary) == [], (since, until)


def test_the_daily_summary_gives_the_figures_of_the_detail_rows(seeded: Any) -> None:
    ledger, cfg, ids = seeded
    _assert_summary_gives_raw_figures(ledger.engine, cfg, ids["today_ts"])
    with ledger.engine.connect() as conn:  # the figures really come from the summary
        summarised = conn.execute(select(func.sum(schema.daily_traffic.c.requests))).scalar()
    assert summarised == 19


def test_random_traffic_gives_the_same_report_from_the_summary_and_from_raw_rows(
        database_url: str, tmp_path: Path) -> None:
    """Random requests over 90 days (failovers, findings, protective decisions on random
    target sets, router scores on bucket edges, shadow verdicts), some written twice: the
    writer's summary, then a summary rebuilt from the rows (a database from before 0008),
    give the raw figures for every period."""
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    record_random_traffic(ledger, n=400, days=90)
    doc = gateway_config(database_url, tmp_path / "router.json")
    doc["routes"]["assistant"] = doc["routes"]["chat"]  # no router file: no what-if curve
    cfg = parse_config(doc)
    assert ledger.count() == 400  # the records written twice were inserted once
    _assert_summary_gives_raw_figures(ledger.engine, cfg, time.time())
    _assert_summary_gives_raw_figures(ledger.engine, None, time.time())  # no in-house list

    before = build_report(ledger.engine, None, cfg)
    with ledger.engine.begin() as conn:
        for table in TABLES.values():
            conn.execute(table.delete())
    assert backfill_if_needed(ledger.engine) == 400 + 40
    assert backfill_if_needed(ledger.engine) == 0  # once
    clear_cache()
    assert differences(before, build_report(ledger.engine, None, cfg)) == []
    _assert_summary_gives_raw_figures(ledger.engine, cfg, time.time())
    ledger.close()


def test_random_cached_traffic_gives_the_same_cache_figures_from_the_summary(
        database_url: str, tmp_path: Path) -> None:
    """Random traffic with random cache outcomes (hits of external and in-house answers,
    semantic hits, misses, bypasses), some written twice; then a database summarised before
    migration 0012 (daily_cache empty) gets daily_cache rebuilt from its rows at start."""
    ledger = Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    ctxs = record_random_traffic(ledger, n=400, days=90, cached=True)
    doc = gateway_config(database_url, tmp_path / "router.json")
    doc["routes"]["assistant"] = doc["routes"]["chat"]  # no router file: no what-if curve
    cfg = parse_config(doc)
    hits = sum(c.extra.get("cache") == "hit" for c in ctxs)
    assert hits > 50
    clear_cache()
    rep = build_report(ledger.engine, None, cfg)
    assert rep["cache"]["hits"] == hits and rep["totals"]["cache_hits"] == hits
    assert rep["cache"]["vendor_calls_avoided"] == sum(
        c.extra.get("cache") == "hit" and "cache_vendor" in c.extra for c in ctxs)
    assert rep["cache"]["semantic_hits"] == sum("cache_similarity" in c.extra for c in ctxs)
    _assert_summary_gives_raw_figures(ledger.engine, cfg, time.time())

    with ledger.engine.begin() as conn:
        conn.execute(schema.daily_cache.delete())
    lookups = sum("cache" in c.extra for c in ctxs)
    assert backfill_if_needed(ledger.engine) == lookups
    assert backfill_if_needed(ledger.engine) == 0
    clear_cache()
    assert differences(rep, build_report(ledger.engine, None, cfg)) == []
    ledger.close()


def test_two_writers_on_one_database_add_up_in_one_summary(database_url: str,
                                                          tmp_path: Path) -> None:
    """Two replicas' ledgers writing at once, onto the same summary rows (same days, vendors,
    buckets): no lost update, no deadlock, and the raw figures."""
    ledgers = [Ledger.open(database_url, LedgerConfig(spill_dir=str(tmp_path / f"spill{i}"),
                                                      batch_size=25))
               for i in range(2)]

    def write(ledger: Ledger, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            ledger.record(random_context(rng, time.time() - rng.random() * 2 * DAY))
            if rng.random() < 0.1:
                ledger.flush()
        ledger.flush()

    threads = [threading.Thread(target=write, args=(lg, i)) for i, lg in enumerate(ledgers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledgers[0].count() == 600
    clear_cache()
    raw = build_report(ledgers[0].engine, None, None, source="raw")
    assert raw["totals"]["requests"] == 600
    assert differences(raw, build_report(ledgers[1].engine, None, None)) == []
    for ledger in ledgers:
        ledger.close()


def test_hhi_and_the_doj_bands() -> None:
    assert hhi({"a": 1}) == 10_000
    assert hhi({"a": 1, "b": 1, "c": 1, "d": 1}) == 2500
    assert hhi({}) == 0.0
    assert [hhi_band(x) for x in (0, 999.9, 1000, 1800, 1800.1, 10_000)] == [
        "unconcentrated", "unconcentrated", "moderately concentrated",
        "moderately concentrated", "highly concentrated", "highly concentrated"]


def test_renderers_escape_names(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'x.db'}",
                         LedgerConfig(spill_dir=str(tmp_path / "spill")))
    evil = Target("p", "m", "</script><script>alert(1)</script>", "external")
    ledger.record(_ctx(evil, time.time(), cost=0.1))
    ledger.flush()
    rep = build_report(ledger.engine, None, None)
    html = render_html(rep)
    assert "</script><script>alert(1)" not in html
    assert "\\u003c/script\\u003e" in html
    assert "Chart.js v4" in html  # the chart library is inline: the file works offline
    assert "</script><script>alert(1)</script>" in render_table(rep)  # text output is text
    ledger.close()


# --- CLI --------------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emancipate", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def seeded_config(database_url: str, tmp_path: Path) -> Path:
    """A gateway YAML on a seeded ledger (SQLite, then PostgreSQL)."""
    url = database_url
    ledger = Ledger.open(url, LedgerConfig(spill_dir=str(tmp_path / "spill")))
    seed_known_traffic(ledger)
    ledger.close()
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway_config(url, write_router(tmp_path / "router.json"))))
    return path


def test_cli_table_json_and_html(seeded_config: Path, tmp_path: Path) -> None:
    out = _cli("report", "--config", str(seeded_config), "--since", "7d")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "BY VENDOR" in text and "openai" in text and "anthropic" in text
    assert "HHI 4,062 (highly concentrated)" in text
    assert "kept in-house 4 of 6 routed" in text
    assert "LEAKS PREVENTED  3 (redacted 1, kept in-house 1, blocked 1)" in text
    assert "survived 1 of 2" in text
    assert "WHAT-IF  route assistant (current threshold 0.500)" in text

    out = _cli("report", "--config", str(seeded_config), "--since", "all", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["totals"]["requests"] == 19 and data["since"] is None

    target = tmp_path / "report.html"
    out = _cli("report", "-c", str(seeded_config), "--format", "html", "--out", str(target))
    assert out.returncode == 0, out.stderr
    html = target.read_text()
    assert html.startswith("<!doctype html>") and "EmancipateReport.renderAll" in html
    assert '"vendor":"anthropic"' in html

    bad = _cli("report", "--config", str(seeded_config), "--since", "yesterday")
    assert bad.returncode == 2 and "neither a duration" in bad.stderr
    bad = _cli("report", "--config", str(seeded_config), "--format", "pdf")
    assert bad.returncode == 2 and "--format must be one of" in bad.stderr


# --- admin endpoint through a real gateway ----------------------------------------------------


def test_admin_report_endpoint(start_gateway: Any, seeded_config: Path) -> None:
    config = yaml.safe_load(seeded_config.read_text())
    gw = start_gateway(config, env={"EMANCIPATE_ADMIN_KEY": ADMIN_KEY})
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.get(gw.url + "/admin/report?since=7d", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "independence_report"
    assert data["totals"]["requests"] == 18
    assert data["protection"]["leaks_prevented"] == 3
    assert data["what_if"][0]["route"] == "assistant"

    r = httpx.get(gw.url + "/admin/report?since=all&format=html", headers=auth, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Chart.js v4" in r.text and '"requests":19' in r.text

    for headers in ({"authorization": "Bearer wrong-key"}, {}):
        r = httpx.get(gw.url + "/admin/report", headers=headers, timeout=30)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["type"] == "authentication_error" and err["code"] == "invalid_admin_key"
        assert set(err) == {"message", "type", "param", "code"}

    r = httpx.get(gw.url + "/admin/report?since=soon", headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "since"
    r = httpx.get(gw.url + "/admin/report?format=pdf", headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "format"
