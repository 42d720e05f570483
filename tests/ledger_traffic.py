"""Random but reproducible ledger traffic written through the ledger's own writer, and the
comparison of two independence reports (raw rows vs daily summary): shared by the report,
migration and retention tests."""

from __future__ import annotations

import math
import random
import time
from typing import Any

from emancipate.context import Attempt, Decision, Finding, Principal, RequestContext, Target
from emancipate.ledger import Ledger

DAY = 86400.0
TARGETS = [Target("openai", "gpt-4o", "openai", "external"),
           Target("claude", "claude-sonnet-4-5", "anthropic", "external"),
           Target("mistral", "large", "mistral", "external"),
           Target("local", "llama-70b", "in-house", "in-house")]
CLASSES = [("personal", "email", None), ("secret", "aws_access_key", None),
           ("domain", "domain:search", "search"), ("code", "code_block", None)]
ACTIONS = ("redact", "in-house-only", "block", "allow")
OUTCOMES = ("timeout", "upstream_5xx", "rate_limited")
# Report keys that differ between two builds whatever the data.
VOLATILE = ("generated_at", "timing_ms", "cached_closed_days", "source")


def random_context(rng: random.Random, at: float, cached: bool = False) -> RequestContext:
    """One request with a random outcome, failovers, findings and decisions; with `cached`,
    also a random response-cache outcome (drawn from its own generator, so that the other
    draws stay those of the traffic without it)."""
    route = rng.choice(["chat", "assistant", None])
    ctx = RequestContext(principal=Principal(f"key_{rng.randint(0, 3)}", team="t"),
                         route=route)
    ctx.started_at = at
    served = rng.choice(TARGETS)
    ctx.status = rng.choice([200] * 8 + [403, 503])
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        failed = rng.choice(TARGETS)
        ctx.attempts.append(Attempt(failed.id, failed.vendor, failed.ownership,
                                    rng.choice(OUTCOMES), 10.0, 503))
    if ctx.status == 200:
        ctx.served_by = served
        ctx.attempts.append(Attempt(served.id, served.vendor, served.ownership, "ok", 20.0, 200))
        ctx.prompt_tokens, ctx.completion_tokens = rng.randint(1, 900), rng.randint(0, 300)
        ctx.cost = round(rng.random() / 10, 6)
    ctx.latency_ms = 25.0
    for _ in range(rng.choice([0, 0, 1, 3])):
        cls, detector, domain = rng.choice(CLASSES)
        ctx.findings.append(Finding(cls, detector, 0, 5, message_index=0, domain=domain))
        action = rng.choice(ACTIONS)
        for target in rng.sample(TARGETS, rng.randint(1, 4)):  # per withheld target
            ctx.decisions.append(Decision("policy", action, "test", rule=f"rule-{cls}",
                                          cls=cls, detector=detector, target=target.id))
        if action == "block" and rng.random() < 0.3:
            ctx.decisions.append(Decision("policy", action, "no target", rule="none",
                                          cls=cls, detector=detector))
    if route == "assistant":
        ctx.router_score = rng.choice([None, rng.random(), 0.0, 1.0, 0.29, 0.57])
        ctx.decisions.append(Decision("routing", rng.choice(["in-house", "external"]),
                                      "score"))
    if cached:
        random_cache(random.Random(at), ctx)
    return ctx


def random_cache(rng: random.Random, ctx: RequestContext) -> None:
    """A cache outcome on `ctx`: none, miss, bypass, or a hit (exact or semantic, of an
    external vendor's answer or an in-house one), recorded as the gateway records a hit: no
    target, no attempt, no tokens, no cost; the vendor call, tokens and cost it avoided."""
    outcome = rng.choice([None, "miss", "bypass", "hit", "hit", "hit"])
    if outcome is None:
        return
    ctx.extra["cache"] = outcome
    if outcome != "hit":
        return
    ctx.served_by, ctx.attempts, ctx.status, ctx.error_code = None, [], 200, None
    ctx.prompt_tokens = ctx.completion_tokens = 0
    ctx.cost = 0.0
    ctx.extra["saved_tokens"] = rng.randint(1, 1200)
    vendor = rng.choice([None, *sorted({t.vendor for t in TARGETS if t.ownership == "external"})])
    if vendor is not None:
        ctx.extra["cache_vendor"] = vendor
        ctx.extra["saved_cost"] = round(rng.random() / 10, 6)
    if rng.random() < 0.3:
        ctx.extra["cache_similarity"] = 0.9 + rng.random() / 10


def random_verdict(rng: random.Random, at: float, n: int) -> dict[str, Any]:
    verdict = rng.choice(["tie", "inhouse_better", "external_better", "error"])
    judged = rng.random() < 0.5
    return {"request_id": f"req_shadow_{n}", "created_at": at,
            "route": rng.choice(["assistant", "chat"]), "primary_target": TARGETS[0].id,
            "primary_ownership": "external", "shadow_target": TARGETS[3].id,
            "shadow_ownership": "in-house", "judge": "j" if judged else "exact",
            "inhouse_ok": verdict in ("tie", "inhouse_better"), "verdict": verdict,
            "router_score": None, "prompt": None, "latency_ms": 5.0,
            "shadow_vendor": rng.choice(["in-house", None]), "shadow_tokens": rng.randint(0, 99),
            "shadow_cost": rng.random() / 100, "judge_target": "claude/x" if judged else None,
            "judge_vendor": "anthropic" if judged else None,
            "judge_tokens": rng.randint(1, 50) if judged else 0,
            "judge_cost": rng.random() / 100 if judged else 0.0}


def record_random_traffic(ledger: Ledger, n: int = 400, days: int = 90, seed: int = 3,
                          now: float | None = None,
                          cached: bool = False) -> list[RequestContext]:
    """`n` requests and n/10 shadow verdicts spread over the last `days` UTC days (today
    included), written by the ledger's writer; some written twice, as a replayed journal
    would (the second write must change nothing)."""
    rng = random.Random(seed)
    now = now or time.time()
    ctxs = [random_context(rng, now - rng.random() * days * DAY, cached) for _ in range(n)]
    for i, ctx in enumerate(ctxs):
        ledger.record(ctx)
        if i % 7 == 0:
            ledger.record(ctx)  # the same record twice in one batch
        if i % 50 == 49:
            ledger.flush()
    ledger.flush()
    for ctx in ctxs[::11]:  # and again in a later batch
        ledger.record(ctx)
    ledger.flush()
    for i in range(n // 10):
        row = random_verdict(rng, now - rng.random() * days * DAY, i)
        ledger.record_shadow(row)
        if i % 5 == 0:
            ledger.record_shadow(dict(row))
    return ctxs


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two reports differ: ints and strings exactly, floats to 1e-9 (sums of the same
    numbers added in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            if not path and k in VOLATILE:
                continue
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(
                a, b, rel_tol=1e-9, abs_tol=1e-9):
            return []
    elif a == b:
        return []
    return [f"{path}: {a!r} != {b!r}"]
