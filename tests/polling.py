"""Waiting for what the gateway does just after it answers (the ledger record, settlement,
a revocation reaching the other replica). A hang guard, not a timing claim: the deadline is
generous, nothing asserts how long the wait took, and a wait fails only when the awaited
thing never happens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30,
               interval: float = 0.05) -> T:
    """`probe()`'s first result that is not None; fails with `what` if none comes."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout:g} s)")
        time.sleep(interval)


def ledger_record(admin: httpx.Client, request_id: str) -> dict[str, Any]:
    """The ledger's record of one request (written a fraction of a second later)."""
    def probe() -> dict[str, Any] | None:
        r = admin.get(f"/admin/requests/{request_id}")
        if r.status_code == 200:
            return dict(r.json())
        assert r.status_code == 404, r.text
        return None

    return eventually(probe, f"request {request_id} never reached the ledger")
