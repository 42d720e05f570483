"""Retention: delete the ledger's detail rows of old UTC days, in short batches.

``prune`` deletes the requests of days before a cutoff with everything that hangs off them
(attempts, decisions, findings, contents), then the shadow verdicts of those days, at most
``PRUNE_BATCH`` requests per transaction: each transaction is short, so the ledger writer and
the readers are never held up for long, whatever the backlog. The daily summary
(``ledger/summary.py``) is left alone: the report keeps pruned days' figures.

``Retention`` runs it in the gateway process: one thread, owned by the ``Ledger``, started by
``Ledger.start`` and stopped by ``Ledger.close``; a pass at start, then one every
``INTERVAL`` seconds. When nothing is due a pass costs one indexed SELECT. With several
replicas on PostgreSQL, each batch takes a transaction-level advisory lock without waiting:
the replica that holds it prunes, the others skip that pass (two replicas deleting the same
rows in different orders could deadlock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, text

from emancipate.ledger import schema

log = logging.getLogger("emancipate.ledger")

INTERVAL = 3600.0  # seconds between two passes of the background job
PRUNE_BATCH = 2000  # requests deleted per transaction (tens of ms on SQLite)
PAUSE = 0.05  # seconds between two batches of the background job: the writer gets its turn
_LOCK_ID = 0x656D6172  # "emar": pg_try_advisory_xact_lock key of a prune batch
CHILDREN = ("attempts", "decisions", "findings", "contents")  # rows keyed by request_id
COUNTED = ("requests", *CHILDREN, "shadow_verdicts")


def cutoff_day(older_than_days: int, today: date | None = None) -> str:
    """The first UTC day kept: rows of days before it are deleted. Keeps today and the
    `older_than_days` days before it."""
    today = today or datetime.now(UTC).date()
    return (today - timedelta(days=older_than_days)).isoformat()


def prune(engine: Engine, before: str, *, dry_run: bool = False, wait: bool = True,
          pause: Callable[[], bool] | None = None) -> dict[str, int] | None:
    """Delete detail rows of UTC days before `before` ('YYYY-MM-DD'); rows deleted per table
    (with `dry_run`, the rows that would be). `pause` runs between batches; it returns True
    to stop early. On PostgreSQL, with `wait` False, returns None when another process is
    pruning (its lock is held)."""
    if dry_run:
        return _count(engine, before)
    deleted = dict.fromkeys(COUNTED, 0)
    r, v = schema.requests, schema.shadow_verdicts
    for table, key in ((r, r.c.id), (v, v.c.request_id)):
        while True:
            with engine.begin() as conn:
                if not _locked(conn, wait):
                    return None
                ids = list(conn.execute(select(key).where(table.c.day < before)
                                        .limit(PRUNE_BATCH)).scalars())
                if not ids:
                    break
                if table is r:
                    for name in CHILDREN:
                        child = getattr(schema, name)
                        deleted[name] += _rowcount(conn.execute(
                            delete(child).where(child.c.request_id.in_(ids))))
                deleted[table.name] += _rowcount(conn.execute(delete(table).where(
                    key.in_(ids))))
            if pause is not None and pause():
                return deleted
    return deleted


def _rowcount(result: Any) -> int:
    return max(0, int(result.rowcount or 0))


def _locked(conn: Connection, wait: bool) -> bool:
    """Lock out other pruners for this transaction (the batch)."""
    if conn.dialect.name != "postgresql":
        # A write first: SQLite's write lock from the start, so the ids selected next are
        # still there when deleted (a read first, then a write after another process's
        # commit, fails with SQLITE_BUSY instead of waiting).
        conn.execute(text("DELETE FROM requests WHERE 1 = 0"))
        return True
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                             {"k": _LOCK_ID}).scalar())


def _count(engine: Engine, before: str) -> dict[str, int]:
    r = schema.requests
    old = select(r.c.id).where(r.c.day < before)
    out = {}
    with engine.connect() as conn:
        out["requests"] = int(conn.execute(
            select(func.count()).select_from(r).where(r.c.day < before)).scalar() or 0)
        for name in CHILDREN:
            child = getattr(schema, name)
            out[name] = int(conn.execute(select(func.count()).select_from(child).where(
                child.c.request_id.in_(old))).scalar() or 0)
        v = schema.shadow_verdicts
        out["shadow_verdicts"] = int(conn.execute(
            select(func.count()).select_from(v).where(v.c.day < before)).scalar() or 0)
    return out


class Retention:
    """The background job: prunes days older than `days` at start, then every `interval`."""

    def __init__(self, engine: Engine, days: int, interval: float = INTERVAL) -> None:
        self.engine = engine
        self.days = days
        self.interval = interval
        self.passes = 0  # passes completed (tests, logs)
        self.deleted = dict.fromkeys(COUNTED, 0)  # rows deleted by this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-retention",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current batch (one short transaction)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a database hiccup: the next pass retries
                log.error("ledger retention pass failed (%s: %s); next pass in %.0f s",
                          exc.__class__.__name__, str(exc).splitlines()[0] if str(exc) else "",
                          self.interval)
            self._stop.wait(self.interval)

    def run_once(self) -> dict[str, int] | None:
        """One pass; None when another replica holds the lock (it prunes instead)."""
        before = cutoff_day(self.days)
        deleted = prune(self.engine, before, wait=False,
                        pause=lambda: self._stop.wait(PAUSE))
        if deleted is not None:
            for name, n in deleted.items():
                self.deleted[name] += n
            if any(deleted.values()):
                log.info("ledger retention: deleted rows of days before %s: %s", before,
                         ", ".join(f"{n} {name}" for name, n in deleted.items() if n))
        self.passes += 1
        return deleted


__all__ = ["COUNTED", "INTERVAL", "Retention", "cutoff_day", "prune"]
