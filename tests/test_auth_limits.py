"""Scopes, rate limits and budgets: SQLite and PostgreSQL, in-process and Redis counters."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from emancipate.auth import Access, KeyStore
from emancipate.auth.keys import Limits
from emancipate.auth.limits import LocalLimits, periods
from emancipate.context import Principal, RequestContext, Target
from emancipate.ledger import Ledger
from emancipate.protocol import OpenAIError
from tests.test_keys import gateway_cfg

pytest_plugins = ["tests.services"]


@pytest.fixture(params=["sqlite-local", "sqlite-redis", "postgresql-local", "postgresql-redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, pg_server: Any,
          redis_server: Any) -> Any:
    """An `open(**auth)` that builds Access on the chosen database and counter backend."""
    db, backend = request.param.split("-")
    url = (f"sqlite:///{tmp_path / 'gw.db'}" if db == "sqlite"
           else pg_server.create_database())
    redis_url = redis_server.url if backend == "redis" else None
    opened: list[Ledger] = []

    def open_access(**auth: Any) -> Access:
        cfg = gateway_cfg(url, tmp_path, redis_url=redis_url, **auth)
        ledger = Ledger.open(cfg.server.database_url, cfg.ledger)
        opened.append(ledger)
        return Access.open(cfg, ledger)

    yield open_access
    for ledger in opened:
        ledger.close()


async def login(access: Access, **scopes: Any) -> Principal:
    _, secret = access.store.create("team-key", **scopes)
    return await access.authenticate(f"Bearer {secret}")


async def refused(coro: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        await coro
    return info.value


def test_models_scope_with_patterns(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, models=["gpt-4o", "claude-*"])
        await access.admit(p, "gpt-4o", 10)
        await access.admit(p, "claude-haiku-4-5", 10)
        err = await refused(access.admit(p, "gpt-4o-mini", 10))
        assert (err.status, err.code, err.type, err.param) == (
            403, "model_not_allowed", "permission_error", "model")
        assert "gpt-4o, claude-*" in err.message
        await access.aclose()

    asyncio.run(flow())


def test_rpm_is_exact_and_refills(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, rpm=120)
        for _ in range(120):
            await access.admit(p, "chat", 0)
        err = await refused(access.admit(p, "chat", 0))
        assert (err.status, err.code, err.type) == (429, "rate_limit_exceeded",
                                                    "rate_limit_error")
        assert "120 requests per minute" in err.message
        assert int(err.headers["retry-after"]) >= 1
        wait_ms = int(err.headers["retry-after-ms"])
        assert wait_ms > 0  # (its exact value, on a clock the test moves: below)
        await asyncio.sleep(wait_ms / 1000 + 0.01)
        await access.admit(p, "chat", 0)  # the bucket refilled by one
        await access.aclose()

    asyncio.run(flow())


def test_rpm_refills_one_request_per_interval_on_the_limiters_clock() -> None:
    """The in-process limiter on a clock the test moves (no elapsed time): 120 requests per
    minute admit 120 at once, then one every 500 ms; a refusal says how long to wait, and the
    request is admitted exactly then, not a millisecond before."""
    now = [1000.0]  # seconds
    limits = LocalLimits(clock=lambda: now[0])
    subjects = [("key_1", Limits(rpm=120))]
    day, month = periods()
    for _ in range(120):
        assert limits.admit(subjects, 0, True, day, month).ok
    refused = limits.admit(subjects, 0, True, day, month)
    assert (refused.ok, refused.reason) == (False, "rpm")
    assert refused.retry_after == pytest.approx(0.5)
    now[0] += 0.499
    assert limits.admit(subjects, 0, True, day, month).retry_after == pytest.approx(0.001)
    now[0] += 0.001
    assert limits.admit(subjects, 0, True, day, month).ok
    assert not limits.admit(subjects, 0, True, day, month).ok


def test_an_idle_rpm_1_key_is_admitted_whatever_the_clock_reads() -> None:
    """At this clock reading ``(now + 60000) - now`` rounds to a hair above 60000 ms: an
    idle ``rpm: 1`` bucket, exactly full after one request, must still admit that request
    (it was refused once with 'retry in 0.00 s'), and refuse the next one for a minute."""
    now = [16766.063]  # seconds
    limits = LocalLimits(clock=lambda: now[0])
    subjects = [("key_1", Limits(rpm=1))]
    day, month = periods()
    assert limits.admit(subjects, 0, True, day, month).ok
    refused = limits.admit(subjects, 0, True, day, month)
    assert (refused.ok, refused.reason) == (False, "rpm")
    assert refused.retry_after == pytest.approx(60.0)


def test_concurrent_admissions_never_exceed_the_limit(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, rpm=20)
        results = await asyncio.gather(*(access.admit(p, "chat", 0) for _ in range(60)),
                                       return_exceptions=True)
        assert sum(r is None for r in results) == 20
        assert all(isinstance(r, OpenAIError) and r.status == 429 for r in results if r)
        await access.aclose()

    asyncio.run(flow())


def test_tpm_reserves_the_estimate_and_settles_the_real_count(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, tpm=1000)
        first = RequestContext(principal=p)
        await access.admit(p, "chat", 600, first)
        err = await refused(access.admit(p, "chat", 600, RequestContext(principal=p)))
        assert err.code == "rate_limit_exceeded" and "1000 tokens per minute" in err.message
        # The first answer used 100 tokens, not 600: 500 go back into the bucket.
        first.prompt_tokens, first.completion_tokens = 60, 40
        await access.settle(p, first)
        await access.admit(p, "chat", 600, RequestContext(principal=p))
        # A request larger than the whole limit can never pass: say so, no Retry-After.
        err = await refused(access.admit(p, "chat", 5000, RequestContext(principal=p)))
        assert "lower max_tokens" in err.message and "retry-after" not in err.headers
        await access.aclose()

    asyncio.run(flow())


def test_tpm_without_a_reservation_counts_at_settlement(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, tpm=1000)
        ctx = RequestContext(principal=p)
        await access.admit(p, "chat", 900)  # checked, not taken
        await access.admit(p, "chat", 900)
        ctx.prompt_tokens, ctx.completion_tokens = 800, 200
        await access.settle(p, ctx)  # now the bucket is empty
        err = await refused(access.admit(p, "chat", 100))
        assert err.code == "rate_limit_exceeded"
        await access.aclose()

    asyncio.run(flow())


def test_daily_budget(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, budget_day=0.05, budget_month=10)
        ctx = RequestContext(principal=p)
        await access.admit(p, "chat", 10, ctx)
        ctx.cost = 0.06
        await access.settle(p, ctx)
        err = await refused(access.admit(p, "chat", 10))
        assert (err.status, err.code, err.type) == (429, "budget_exceeded", "insufficient_quota")
        assert "daily budget" in err.message and "0.06" in err.message and "USD" in err.message
        assert 1 <= int(err.headers["retry-after"]) <= 86400
        assert await access.spent(p.key_id) == pytest.approx((0.06, 0.06))
        await access.aclose()

    asyncio.run(flow())


def test_monthly_budget(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, budget_month=1.0)
        for _ in range(2):
            ctx = RequestContext(principal=p)
            await access.admit(p, "chat", 10, ctx)
            ctx.cost = 0.5
            await access.settle(p, ctx)
        err = await refused(access.admit(p, "chat", 10))
        assert err.code == "budget_exceeded" and "monthly budget" in err.message
        assert int(err.headers["retry-after"]) <= 31 * 86400
        await access.aclose()

    asyncio.run(flow())


def test_budget_starts_from_what_the_ledger_holds(setup: Any):
    """A restart (or a fresh Redis) does not forget today's spend: it is read from the ledger."""
    async def flow() -> None:
        access = setup()
        p = await login(access, budget_day=1.0)
        for _ in range(3):
            ctx = RequestContext(principal=p, route="chat")
            ctx.served_by = Target("openai", "gpt-4o", "openai", "external")
            ctx.cost = 0.4
            access.ledger.record(ctx)  # written by the previous process
        access.ledger.flush()
        # Concurrent first requests all wait for the spend to be read: none slips through.
        results = await asyncio.gather(*(access.admit(p, "chat", 10) for _ in range(20)),
                                       return_exceptions=True)
        assert all(isinstance(r, OpenAIError) and r.code == "budget_exceeded" for r in results)
        assert "1.2000" in results[0].message
        await access.aclose()

    asyncio.run(flow())


def test_limits_hold_across_two_replicas_sharing_redis(tmp_path: Path, postgres_url: str,
                                                       redis_url: str):
    """Two Access instances (two gateway processes' worth) on one PostgreSQL and one Redis."""
    url = postgres_url
    cfg = gateway_cfg(url, tmp_path, redis_url=redis_url)
    ledgers = [Ledger.open(url, cfg.ledger) for _ in range(2)]

    async def flow() -> None:
        a, b = (Access.open(cfg, ledger) for ledger in ledgers)
        _, secret = a.store.create("shared", rpm=30, budget_day=0.1)
        pa, pb = (await a.authenticate(f"Bearer {secret}"),
                  await b.authenticate(f"Bearer {secret}"))
        calls = [a.admit(pa, "chat", 0) for _ in range(25)] + \
                [b.admit(pb, "chat", 0) for _ in range(25)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert sum(r is None for r in results) == 30

        ctx = RequestContext(principal=pa)
        ctx.cost = 0.2
        await a.settle(pa, ctx)  # spent on replica A ...
        err = await refused(b.admit(pb, "chat", 0))  # ... refused on replica B
        assert err.code == "budget_exceeded"
        await a.aclose()
        await b.aclose()

    asyncio.run(flow())
    for ledger in ledgers:
        ledger.close()


def test_redis_outage_falls_back_to_local_limits(tmp_path: Path, redis_factory: Any):
    """Losing Redis never takes the gateway down: limits continue per process."""
    server = redis_factory()
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    cfg = gateway_cfg(url, tmp_path, redis_url=server.url)
    ledger = Ledger.open(url, cfg.ledger)

    async def flow() -> None:
        access = Access.open(cfg, ledger)
        p = await login(access, rpm=3)
        await access.admit(p, "chat", 0)
        server.stop()
        for _ in range(3):
            await access.admit(p, "chat", 0)  # local bucket: 3
        err = await refused(access.admit(p, "chat", 0))
        assert err.code == "rate_limit_exceeded"
        await access.aclose()

    try:
        asyncio.run(flow())
    finally:
        ledger.close()


def test_concurrent_requests_hold_their_estimated_cost_against_the_budget(setup: Any):
    """100 requests at once on a fresh key: only those whose estimates fit are admitted."""
    async def flow() -> None:
        access = setup()
        p = await login(access, budget_day=0.05)
        contexts = [RequestContext(principal=p) for _ in range(100)]
        results = await asyncio.gather(
            *(access.admit(p, "chat", 10, ctx, lambda: 0.01) for ctx in contexts),
            return_exceptions=True)
        admitted = [ctx for ctx, r in zip(contexts, results, strict=True) if r is None]
        assert len(admitted) == 5  # 0.00, 0.01, ... 0.04 held when each was admitted
        err = next(r for r in results if r is not None)
        assert (err.status, err.code, err.type) == (429, "budget_exceeded", "insufficient_quota")
        assert "held by its requests in flight" in err.message
        # Settled: the holds go, the real costs stay; a failed request (cost 0) frees its hold.
        for ctx in admitted[:4]:
            ctx.cost = 0.005
            await access.settle(p, ctx)
        await access.settle(p, admitted[4])
        assert await access.spent(p.key_id) == pytest.approx((0.02, 0.02))
        again = [RequestContext(principal=p) for _ in range(10)]
        results = await asyncio.gather(
            *(access.admit(p, "chat", 10, ctx, lambda: 0.01) for ctx in again),
            return_exceptions=True)
        assert sum(r is None for r in results) == 3  # 0.02 spent + 0.00..0.02 held < 0.05
        await access.aclose()

    asyncio.run(flow())


def test_a_request_refused_by_a_rate_limit_holds_nothing(setup: Any):
    async def flow() -> None:
        access = setup()
        p = await login(access, budget_day=1.0, tpm=100)
        first = RequestContext(principal=p)
        await access.admit(p, "chat", 0, first, lambda: 0.6)
        err = await refused(access.admit(p, "chat", 500, RequestContext(principal=p),
                                         lambda: 0.5))
        assert err.code == "rate_limit_exceeded"
        await access.admit(p, "chat", 0, RequestContext(principal=p), lambda: 0.3)  # 0.6 held
        await access.settle(p, first)
        assert await access.spent(p.key_id) == (0.0, 0.0)
        await access.aclose()

    asyncio.run(flow())


def test_rate_buckets_start_from_the_ledger_after_a_restart(database_url: str, tmp_path: Path):
    """Without Redis the buckets live in the process: a new one refills them from the ledger."""
    cfg = gateway_cfg(database_url, tmp_path)
    ledger = Ledger.open(database_url, cfg.ledger)
    _, secret = KeyStore(ledger.engine).create("team-key", rpm=5, tpm=1000)

    async def flow() -> None:
        before = Access.open(cfg, ledger)  # the process that served them
        p = await before.authenticate(f"Bearer {secret}")
        for status, code in ((200, None), (200, None), (502, "upstream_error"),
                             (429, "rate_limit_exceeded")):  # the last was refused: took nothing
            ctx = RequestContext(principal=p, route="chat", status=status, error_code=code)
            ctx.prompt_tokens, ctx.completion_tokens = 100, 200
            ledger.record(ctx)
        ledger.flush()
        after = Access.open(cfg, ledger)  # the restarted process
        p = await after.authenticate(f"Bearer {secret}")
        await after.admit(p, "chat", 0)  # 3 taken before the restart: 2 left of 5
        await after.admit(p, "chat", 0)
        err = await refused(after.admit(p, "chat", 0))
        assert err.code == "rate_limit_exceeded" and "5 requests per minute" in err.message
        fresh = Access.open(cfg, ledger)  # 900 of 1000 tokens taken as well
        p = await fresh.authenticate(f"Bearer {secret}")
        err = await refused(fresh.admit(p, "chat", 200))
        assert "1000 tokens per minute" in err.message

    asyncio.run(flow())
    ledger.close()


# --- teams: limits their keys inherit ---------------------------------------------------------
# Team counters are named after the team: each test takes a fresh name, since the Redis server
# is shared by the whole session.


def team_name() -> str:
    return "search-" + uuid.uuid4().hex[:8]


def test_a_team_budget_stops_two_keys_of_the_team_together(setup: Any):
    async def flow() -> None:
        access = setup()
        search = team_name()
        access.teams.create(search, budget_day=0.1)
        a = await login(access, team=search)
        b = await login(access, team=search, budget_day=10.0)  # its own budget is larger
        ctx = RequestContext(principal=a)
        await access.admit(a, "chat", 0, ctx, lambda: 0.01)
        ctx.cost = 0.1
        await access.settle(a, ctx)  # key a spends the team's whole day ...
        err = await refused(access.admit(b, "chat", 0, RequestContext(principal=b),
                                         lambda: 0.01))  # ... and key b is stopped too
        assert (err.status, err.code) == (429, "budget_exceeded")
        assert f"The team '{search}'" in err.message and "daily budget" in err.message
        assert await access.spent("team:" + search) == pytest.approx((0.1, 0.1))
        await access.aclose()

    asyncio.run(flow())


def test_the_stricter_of_key_and_team_refuses_and_a_refusal_takes_from_neither(setup: Any):
    async def flow() -> None:
        access = setup()
        search = team_name()
        access.teams.create(search, rpm=2)
        strict = await login(access, team=search, rpm=1)
        free = await login(access, team=search)
        await access.admit(strict, "chat", 0)
        err = await refused(access.admit(strict, "chat", 0))  # its own rpm: 1
        assert "The API key 'team-key'" in err.message and "1 requests" in err.message
        await access.admit(free, "chat", 0)  # the refusal above took nothing from the team
        err = await refused(access.admit(free, "chat", 0))  # the team's rpm: 2
        assert err.code == "rate_limit_exceeded"
        assert f"The team '{search}'" in err.message and "2 requests" in err.message
        await access.aclose()

    asyncio.run(flow())


def test_team_model_scopes_narrow_its_keys(setup: Any):
    async def flow() -> None:
        access = setup()
        search = team_name()
        access.teams.create(search, models=["gpt-*"])
        p = await login(access, team=search, models=["gpt-4o", "claude-haiku-4-5"])
        assert p.may_use("gpt-4o") and not p.may_use("claude-haiku-4-5")
        await access.admit(p, "gpt-4o", 10)
        err = await refused(access.admit(p, "claude-haiku-4-5", 10))
        assert (err.status, err.code, err.param) == (403, "model_not_allowed", "model")
        assert f"team '{search}'" in err.message and "gpt-*" in err.message
        await access.aclose()

    asyncio.run(flow())


def test_a_deleted_team_lifts_its_limits_and_a_label_alone_limits_nothing(setup: Any):
    async def flow() -> None:
        access = setup(key_cache_ttl=3600)
        search = team_name()
        _, secret = access.store.create("k", team=search)
        p = await access.authenticate(f"Bearer {secret}")
        for _ in range(5):
            await access.admit(p, "chat", 0)  # no team object yet: a label
        access.teams.create(search, rpm=1)
        access.invalidate()  # what the admin API does on a team change
        p = await access.authenticate(f"Bearer {secret}")
        await access.admit(p, "chat", 0)
        await refused(access.admit(p, "chat", 0))
        access.teams.delete(search)
        access.invalidate()
        p = await access.authenticate(f"Bearer {secret}")
        await access.admit(p, "chat", 0)
        await access.aclose()

    asyncio.run(flow())
