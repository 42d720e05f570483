"""A gateway killed with SIGKILL under load loses no answered request (issue 17 §4).

A real gateway on a SQLite ledger serves a bounded concurrent load (streaming and not) from a
simulated vendor; it is killed outright mid-load, with most records still queued for the
batch writer (a long `flush_interval`). A second gateway started on the same database and
directory replays the journal the first one left, then stops gracefully. Every request whose
client got a whole answer (a 200 with its body, or a stream up to `data: [DONE]`) must then be
in the ledger, exactly once, with status 200.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from emancipate.testing import SimulatedVendor
from tests.gateway_process import GatewayProcess, ledger_rows

CONNECTIONS = 16
REQUESTS = 2_000
KILL_AFTER = 800  # answered requests before the kill: the rest are in flight or never sent


async def _one(client: httpx.AsyncClient, i: int) -> str | None:
    """One request; its request id if the client got the whole answer, else None."""
    stream = i % 2 == 1
    text = f"question {i}"
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": text}]}
    try:
        if not stream:
            r = await client.post("/v1/chat/completions", json=body)
            whole = (r.status_code == 200
                     and r.json()["choices"][0]["message"]["content"] == f"v says: {text}")
            return r.headers["x-request-id"] if whole else None
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                return None
            async for line in r.aiter_lines():
                if line == "data: [DONE]":
                    return r.headers["x-request-id"]
                if line.startswith("data: "):
                    json.loads(line[6:])
            return None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def _load_then_kill(gw: GatewayProcess) -> tuple[list[str], int]:
    """Drive `REQUESTS` over `CONNECTIONS`; SIGKILL the gateway once `KILL_AFTER` are
    answered. Returns the answered ids and how many were answered before the kill."""
    answered: list[str] = []
    enough = asyncio.Event()
    counter = iter(range(REQUESTS))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            rid = await _one(client, i)
            if rid is not None:
                answered.append(rid)
                if len(answered) >= KILL_AFTER:
                    enough.set()

    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, limits=limits) as client:
        workers = [asyncio.ensure_future(worker(client)) for _ in range(CONNECTIONS)]
        await asyncio.wait_for(enough.wait(), timeout=120)
        assert gw.proc is not None
        os.killpg(gw.proc.pid, signal.SIGKILL)
        before_kill = len(answered)
        await asyncio.gather(*workers)
    gw.proc.wait()
    return answered, before_kill


def _config(vendor_url: str) -> dict[str, Any]:
    return {
        "providers": {"v": {"kind": "openai-compatible", "base_url": vendor_url,
                            "ownership": "external", "vendor": "v"}},
        "routes": {"chat": {"targets": [{"provider": "v", "model": "m"}]}},
        # Long enough that most answered records are only queued, not committed, at the kill.
        "ledger": {"flush_interval": 5},
    }


@pytest.mark.timeout(300)
def test_sigkill_under_load_loses_no_answered_request(tmp_path: Path) -> None:
    with SimulatedVendor("openai", name="v") as vendor:
        killed = GatewayProcess(_config(vendor.url), tmp_path).start()
        answered, before_kill = asyncio.run(_load_then_kill(killed))
        assert killed.proc is not None and killed.proc.returncode == -signal.SIGKILL
        assert before_kill >= KILL_AFTER
        assert len(answered) < REQUESTS  # the kill really cut the load short
        assert list(tmp_path.glob("ledger-spill/journal-*.jsonl")), "no journal left to replay"

        with GatewayProcess(_config(vendor.url), tmp_path):
            pass  # start-up replays the dead process's journal; SIGTERM drains the rest

    ledger = ledger_rows(f"sqlite:///{tmp_path / 'gateway.db'}")
    missing = [rid for rid in answered if rid not in ledger]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests not in the ledger"
    assert all(ledger[rid] == (1, 200) for rid in answered)
    assert not list(tmp_path.glob("ledger-spill/*"))  # replayed, then cleaned up
