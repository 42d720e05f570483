"""Bounded soak: 2,000 requests at concurrency 32 over three targets, two faulty, one restarted.

Every request must end as a complete correct answer, or a clear 503 when no target was
eligible, or (only for a stream whose vendor died under it) an explicit interruption
error; never a hang, never a short answer passed off as complete.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import httpx
import openai
import pytest
import sqlalchemy as sa

from emancipate.testing import (
    CutStream,
    GarbageJSON,
    HangBeforeHeaders,
    RateLimit,
    Reset,
    SimulatedVendor,
    Status,
)

TOTAL = 2000
CONCURRENCY = 32


def _provider(vendor: SimulatedVendor, kind: str) -> dict:
    return {"kind": kind, "base_url": vendor.url, "ownership": "external", "vendor": vendor.name,
            "timeouts": {"connect": 1, "first_token": 2, "total": 10},
            "retries": {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.05,
                        "max_retry_after": 0.2},
            "breaker": {"failures": 20, "window": 5, "cooldown": 0.5}}


@pytest.mark.timeout(600)
def test_soak_with_faults_and_a_restart(start_gateway) -> None:
    faulty_a = SimulatedVendor("openai", name="alpha", chunks=4).start()
    faulty_b = SimulatedVendor("anthropic", name="beta", chunks=4).start()
    healthy = SimulatedVendor("openai", name="gamma", chunks=4).start()
    try:
        gw = start_gateway({
            "providers": {"alpha": _provider(faulty_a, "openai-compatible"),
                          "beta": _provider(faulty_b, "anthropic"),
                          "gamma": _provider(healthy, "openai-compatible")},
            "routes": {"soak": {"strategy": "least-busy", "targets": [
                {"provider": "alpha", "model": "a"}, {"provider": "beta", "model": "b"},
                {"provider": "gamma", "model": "g"}]}},
            "auth": {"enabled": False},
        })
        for vendor in (faulty_a, faulty_b):
            for fault in (RateLimit(retry_after=0.05), Status(500), Status(503), Reset(),
                          GarbageJSON(), CutStream(after_events=0)):
                vendor.inject(fault, probability=0.06)  # six kinds: 1 - 0.94**6 ≈ 31% fail
        faulty_a.inject(HangBeforeHeaders(5), probability=0.01)

        killer = threading.Thread(target=_kill_and_restart, args=(faulty_b,))
        ids: dict[str, list[str]] = {}
        attempts: dict[str, int] = {}  # request id -> x-emancipate-attempts of an answer
        outcomes = asyncio.run(_drive(gw.url, killer, ids, attempts))
        killer.join()
        answered = _metric_sum(gw.url, 'emancipate_requests_total{', 'status="200"')
        # SIGTERM: the ledger writes everything queued before the process exits.
        assert gw.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    finally:
        for v in (faulty_a, faulty_b, healthy):
            v.stop()

    assert sum(outcomes.values()) == TOTAL
    assert set(outcomes) <= {"ok", "unavailable", "interrupted"}, outcomes
    assert outcomes["ok"] >= TOTAL * 0.95, outcomes
    # Interrupted streams had sent their 200 headers; they are recorded with status 502.
    assert answered == outcomes["ok"]
    assert faulty_b.served > 0 and healthy.served > 0 and faulty_a.served > 0

    # The ledger: one row per request, the answered ones (and only they) with status 200.
    engine = sa.create_engine(f"sqlite:///{gw.workdir / 'gateway.db'}")
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, status FROM requests")).all())
            recorded = dict(conn.execute(sa.text("SELECT id, attempts FROM requests")).all())
            paths = dict(conn.execute(sa.text(
                "SELECT request_id, count(*) FROM attempts GROUP BY request_id")).all())
            served = dict(conn.execute(sa.text(
                "SELECT request_id, count(*) FROM attempts WHERE outcome = 'ok' "
                "GROUP BY request_id")).all())
    finally:
        engine.dispose()
    assert len(rows) == TOTAL
    assert sum(status == 200 for status in rows.values()) == outcomes["ok"]
    assert all(rows[rid] == 200 for rid in ids["ok"])
    assert all(rows[rid] == 503 for rid in ids.get("unavailable", ()))
    assert all(rows[rid] == 502 for rid in ids.get("interrupted", ()))
    # Each answer's full path is there: as many attempts as its header said, one of them ok.
    assert all(recorded[rid] == paths[rid] == tries for rid, tries in attempts.items())
    assert all(served[rid] == 1 for rid in attempts)
    assert sum(tries > 1 for tries in attempts.values()) > 0  # failovers did happen
    print(f"\nsoak: {TOTAL} requests at concurrency {CONCURRENCY}: {dict(outcomes)}; "
          f"answers after a failover or retry: {sum(t > 1 for t in attempts.values())}; "
          f"ledger rows {len(rows)}, with status 200: {int(answered)}")


def _kill_and_restart(vendor: SimulatedVendor) -> None:
    time.sleep(1.5)
    vendor.stop()
    time.sleep(1.5)
    vendor.restart()


async def _drive(url: str, killer: threading.Thread, ids: dict[str, list[str]],
                 attempts: dict[str, int]) -> Counter[str]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30,
                                http_client=None)
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(TOTAL):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            if i == 200:
                killer.start()
            outcome, request_id, tries = await _one(client, i, rng.random() < 0.5)
            outcomes[outcome] += 1
            ids.setdefault(outcome, []).append(request_id)
            if tries is not None:
                attempts[request_id] = tries

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 500)
    await client.close()
    return outcomes


async def _one(client: openai.AsyncOpenAI, i: int, stream: bool
               ) -> tuple[str, str, int | None]:
    """The outcome, the request id and the attempts header of request number `i`."""
    words = f"request number {i} please"
    messages = [{"role": "user", "content": words}]
    request_id = ""
    tries: int | None = None
    try:
        if stream:
            text, finished = "", False
            chunks = await client.chat.completions.create(
                model="soak", messages=messages, stream=True
            )
            request_id = chunks.response.headers["x-request-id"]
            tries = int(chunks.response.headers["x-emancipate-attempts"])
            async for chunk in chunks:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finished = finished or choice.finish_reason == "stop"
            assert finished, f"stream {i} ended without a finish_reason"
        else:
            raw = await client.chat.completions.with_raw_response.create(
                model="soak", messages=messages)
            request_id = raw.headers["x-request-id"]
            tries = int(raw.headers["x-emancipate-attempts"])
            text = raw.parse().choices[0].message.content
    except openai.APIStatusError as exc:
        assert exc.status_code == 503, (exc.status_code, exc.body)
        return "unavailable", exc.response.headers["x-request-id"], None
    except openai.APIError as exc:  # an interruption event on a committed stream
        assert stream and "interrupted" in str(exc), exc
        return "interrupted", request_id, None
    speaker = text.split(" says: ")[0]
    assert text == f"{speaker} says: {words}", text
    return "ok", request_id, tries


def _metric_sum(url: str, prefix: str, label: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(prefix) and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
