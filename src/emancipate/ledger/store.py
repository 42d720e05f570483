"""The request ledger: recorded off the hot path, written in batches, nothing lost on shutdown.

``record`` turns the finished request into plain rows and appends them to an in-memory queue
(O(1), no I/O, never raises). A writer thread with its own connection commits the queue every
``flush_interval`` seconds, or as soon as ``batch_size`` records wait. Inserts are idempotent
(primary keys + ON CONFLICT DO NOTHING), so a batch retried after an ambiguous failure, or a
spill file replayed twice, never duplicates a request. The same transaction adds the batch's
figures to the daily summary that the report reads (``ledger/summary.py``), counting only the
requests the insert really added.

Loss bound on a hard kill (SIGKILL, OOM, a crash): none with ``ledger.journal`` on (the
default, ``write``): ``record`` also appends the record to a local journal before the answer's
last byte is sent, and the next ``Ledger.open`` replays dead processes' journals
(``ledger/journal.py``). A power cut may lose the journal's last lines unless
``journal: fsync``. With ``journal: off``: the records queued since the last commit, about
``flush_interval`` seconds of traffic (0.2 s by default) plus the batch being committed.
``aclose`` (SIGTERM) drains everything; if the database is unreachable it retries
for ``shutdown_timeout`` seconds, then writes what is left to ``spill_dir`` as JSON lines,
which the next ``Ledger.open`` replays.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, Engine, and_, case, desc, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from emancipate.context import RequestContext
from emancipate.ledger import db, schema
from emancipate.ledger.config import LedgerConfig
from emancipate.ledger.journal import Journal, dead_segments, forget_owners
from emancipate.ledger.retention import Retention
from emancipate.ledger.summary import DailySummary, Record, backfill_if_needed

log = logging.getLogger("emancipate.ledger")
# Seconds past shutdown_timeout that a database call may take at shutdown before it is
# considered hung (a partition, a frozen server) and its batch spilled.
_STUCK_GRACE = 2.0


USAGE_GROUPS = {
    "key": schema.requests.c.key_id,
    "team": schema.requests.c.team,
    "vendor": schema.requests.c.vendor,
    "ownership": schema.requests.c.ownership,
    "model": schema.requests.c.model,
    "route": schema.requests.c.route,
    "target": schema.requests.c.target,
    "provider": schema.requests.c.provider,
    "endpoint": schema.requests.c.endpoint,
    "day": schema.requests.c.day,
}


_DAY: list[Any] = [0.0, 0.0, ""]  # [start, end, 'YYYY-MM-DD'] of the last day asked for


def utc_day(ts: float) -> str:
    """The UTC day of `ts`; the last day is cached (one strftime per day, not per request)."""
    cached = _DAY
    if cached[0] <= ts < cached[1]:
        return str(cached[2])
    day = time.strftime("%Y-%m-%d", time.gmtime(ts))
    start = ts - ts % 86400
    _DAY[:] = [start, start + 86400, day]
    return day


def _s(value: Any, n: int) -> str | None:
    """A string that fits its column: one odd value must not poison a whole batch."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:  # PostgreSQL refuses NUL in text
        text = text.replace("\x00", "")
    return text if len(text) <= n else text[: n - 1] + "…"


def _i(value: Any) -> int | None:
    return None if value is None else int(value)


def to_rows(ctx: RequestContext) -> Record:
    """The ledger's view of a request: metadata only, never contents or detected values."""
    served = ctx.served_by
    rid = _s(ctx.request_id, 64)
    req = {
        "id": rid,
        "created_at": float(ctx.started_at),
        "day": utc_day(ctx.started_at),
        "endpoint": _s(ctx.endpoint, 32) or "chat.completions",
        "key_id": _s(ctx.principal.key_id, 64),
        "team": _s(ctx.principal.team, 200),
        "route": _s(ctx.route, 200),
        "target": _s(served.id, 400) if served else None,
        "provider": _s(served.provider, 200) if served else None,
        "model": _s(served.model, 200) if served else None,
        "vendor": _s(served.vendor, 200) if served else None,
        "ownership": _s(served.ownership, 16) if served else None,
        "status": int(ctx.status),
        "error_code": _s(ctx.error_code, 64),
        "stream": bool(ctx.stream),
        "prompt_tokens": int(ctx.prompt_tokens or 0),
        "completion_tokens": int(ctx.completion_tokens or 0),
        "cost": float(ctx.cost or 0.0),
        "latency_ms": float(ctx.latency_ms or 0.0),
        "router_score": None if ctx.router_score is None else float(ctx.router_score),
        "attempts": len(ctx.attempts),
        "cache": _s(ctx.extra.get("cache"), 8),
        "cache_vendor": _s(ctx.extra.get("cache_vendor"), 200),
        "saved_cost": ctx.extra.get("saved_cost"),
        "cache_similarity": ctx.extra.get("cache_similarity"),
        "saved_tokens": _i(ctx.extra.get("saved_tokens")),
    }
    attempts = [
        {"request_id": rid, "n": n, "target": _s(a.target, 400) or "",
         "vendor": _s(a.vendor, 200), "ownership": _s(a.ownership, 16),
         "outcome": _s(a.outcome, 64) or "", "status": _i(a.status),
         "latency_ms": float(a.latency_ms or 0.0), "error": _s(a.error, 64)}
        for n, a in enumerate(ctx.attempts)
    ]
    decisions = [
        {"request_id": rid, "n": n, "stage": _s(d.stage, 32) or "",
         "action": _s(d.action, 32) or "", "rule": _s(d.rule, 200), "cls": _s(d.cls, 64),
         "detector": _s(d.detector, 200), "target": _s(d.target, 400),
         "reason": _s(d.reason, 4000) or ""}
        for n, d in enumerate(ctx.decisions)
    ]
    findings = [
        {"request_id": rid, "n": n, "cls": _s(f.cls, 64) or "",
         "detector": _s(f.detector, 200) or "", "domain": _s(f.domain, 200),
         "message_index": int(f.message_index)}
        for n, f in enumerate(ctx.findings)
    ]
    content = ctx.extra.get("content")
    if content is not None:  # ledger.log_content: already masked; split off by `_write`
        req["_content"] = {"request_id": rid, **content}
    return req, attempts, decisions, findings


_SQLITE_INSERTS: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {}


def _sqlite_insert(table: Any) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    """`INSERT ... ON CONFLICT DO NOTHING` with qmark parameters, its columns, and the
    positions of its DateTime columns; built once per table."""
    hit = _SQLITE_INSERTS.get(table.name)
    if hit is None:
        columns = tuple(c.name for c in table.columns)
        dates = tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime))
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
               f"({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING")
        hit = _SQLITE_INSERTS[table.name] = (sql, columns, dates)
    return hit


def _sqlite_datetime(value: Any) -> Any:
    """What SQLAlchemy's SQLite DateTime stores: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC, no offset
    (booleans need nothing: the driver stores True/False as 1/0, as SQLAlchemy does)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class Ledger:
    """One per process; ``record`` from the event loop, everything else from anywhere."""

    def __init__(self, engine: Engine, cfg: LedgerConfig) -> None:
        self.engine = engine
        self.cfg = cfg
        self._queue: collections.deque[Record] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._inflight: list[Record] | None = None  # the batch a write is committing now
        self.written = 0  # records committed by this process (metrics, tests)
        self.spilled = 0
        self.rejected = 0  # records the database refused (kept in spill_dir/rejected-*)
        self.unjournaled = 0  # records the journal could not take (disk full): queued only
        self._journal: Journal | None = None  # from start(): only a serving process journals
        self.retention: Retention | None = None  # from start(), with `retention_days`
        # Names the database in journal file names (a digest of it); the password is masked.
        self._database = engine.url.render_as_string(hide_password=True)
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(cls, database_url: str, cfg: LedgerConfig) -> Ledger:
        """Create the engine, migrate the schema to head, summarise rows older than the daily
        summary (once), replay any spilled records."""
        engine = db.make_engine(database_url)
        db.upgrade(engine)
        summarised = backfill_if_needed(engine)  # once, for rows older than the summary
        if summarised:
            log.info("ledger: %d existing requests and verdicts summarised by day", summarised)
        ledger = cls(engine, cfg)
        ledger.replay_spill()
        return ledger

    def start(self) -> None:
        """Start the background writer, the journal unless ``journal: off``, and the
        retention job when ``retention_days`` is set (idempotent)."""
        if self._thread is None and not self._closed:
            if self.cfg.enabled and self.cfg.journal != "off":
                self._journal = Journal(self._spill_dir(), self._database, self.cfg.journal)
            self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
            self._thread.start()
            if self.cfg.retention_days is not None:
                self.retention = Retention(self.engine, self.cfg.retention_days)
                self.retention.start()

    async def aclose(self) -> None:
        """Write everything queued, then close; nothing recorded before this is lost."""
        if self._closed:
            return
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Synchronous ``aclose`` (CLI, tests).

        Bounded even when the database hangs instead of failing (a network partition, a
        frozen server): a write that does not return within ``shutdown_timeout`` (plus a
        short grace) is given up, and what it held is spilled with the rest of the queue.
        Replaying a batch that did commit after all is harmless (idempotent inserts).
        """
        if self._closed:
            return
        if self.retention is not None:
            self.retention.stop()
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + self.cfg.shutdown_timeout
        stuck = False
        if self._thread is not None:
            self._thread.join(self.cfg.shutdown_timeout + _STUCK_GRACE)
            stuck = self._thread.is_alive()
        if not stuck:  # the drain runs in a thread of its own so that it cannot hang us
            drain = threading.Thread(target=self._final_drain, args=(deadline,),
                                     name="ledger-drain", daemon=True)
            drain.start()
            drain.join(max(0.0, deadline - time.monotonic()) + _STUCK_GRACE)
            stuck = drain.is_alive()
        self._closed = True
        if stuck:
            self._spill_unwritten()
            self._close_journal()
            return  # the engine is left to process exit: its connection is the stuck one
        self._close_journal()
        self.engine.dispose()

    def _close_journal(self) -> None:
        """Everything queued is committed or spilled: the journal is no longer needed. If
        records are left (a spill that failed), its files stay for the next start to replay."""
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close(journal.appended if not self._queue else 0)

    def _spill_unwritten(self) -> None:
        """The writer is stuck in a database call: spill its batch and everything queued."""
        rest = list(self._inflight or ())
        while self._queue:
            rest.append(self._queue.popleft())
        log.error("database not answering at shutdown: spilling %d records", len(rest))
        if rest:
            self._spill(rest)

    # --- write side --------------------------------------------------------------------------

    def record(self, ctx: RequestContext) -> None:
        """Queue one finished request; never raises. Call it from the event loop thread.

        With the journal on, the record is on disk (page cache, or flushed with ``fsync``)
        when this returns: call it before the answer's last byte leaves
        (``Gateway.answered``). O(1) in the number of queued records.
        """
        if not self.cfg.enabled:
            return
        try:
            rec = to_rows(ctx)
            if self._closed:  # a straggler after shutdown: keep it on disk rather than lose it
                self._spill([rec])
                return
            if self._journal is not None:
                self._journal_one(rec, self._journal)
            self._queue.append(rec)
            if len(self._queue) >= self.cfg.batch_size:
                self._wake.set()
        except Exception:  # the ledger must never take a request down
            log.exception("could not record request %s", getattr(ctx, "request_id", "?"))

    def _journal_one(self, rec: Record, journal: Journal) -> None:
        """Append `rec` to the journal and tag it with its number (`_seq`, never stored), which
        the writer hands back to ``Journal.release`` once committed. The queue is FIFO and
        only this thread appends, so committing record n means 1..n are committed too."""
        try:
            rec[0]["_seq"] = journal.append(orjson.dumps(rec) + b"\n")
        except OSError as exc:  # disk full, say: the record still goes to the database
            self.unjournaled += 1
            if self.unjournaled == 1 or self.unjournaled % 10_000 == 0:
                log.error("ledger: journal write failed (%s); %d records not journaled so far",
                          exc, self.unjournaled)

    def _release(self, batch: list[Record]) -> None:
        """`batch` is committed (or spilled): its journal lines are no longer needed."""
        journal = self._journal
        if journal is not None:
            last = max((rec[0].get("_seq") or 0 for rec in batch), default=0)
            if last:
                journal.release(last)

    def pending(self) -> int:
        return len(self._queue)

    # --- shadow verdicts (written by the shadow stage) ---------------------------------------

    def record_shadow(self, row: dict[str, Any]) -> None:
        """Insert one shadow verdict; blocking, so call it off the event loop (to_thread).

        Idempotent on `request_id`. Not batched: verdicts are rare (a sampled share of
        traffic, each one waiting for two model answers), and the shadow stage awaits this
        before shutdown completes, so none is lost on a graceful stop. A database that cannot
        be reached gets the verdict spilled (`shadow-*.jsonl` in `spill_dir`) and replayed at
        the next start, as request records are.
        """
        try:
            self._insert_shadow(row)
        except (OperationalError, InterfaceError) as exc:
            log.error("ledger: shadow verdict of %s not written (%s); spilled",
                      row.get("request_id"), exc.__class__.__name__)
            self._spill([row], prefix="shadow")

    def _insert_shadow(self, row: dict[str, Any]) -> None:
        values = dict(row)
        created = values.get("created_at")
        if isinstance(created, (int, float)):
            values["created_at"] = datetime.fromtimestamp(created, UTC)
            values.setdefault("day", utc_day(created))
        for name, n in (("request_id", 64), ("route", 200), ("primary_target", 400),
                        ("primary_ownership", 16), ("shadow_target", 400),
                        ("shadow_ownership", 16), ("judge", 200), ("verdict", 16)):
            values[name] = _s(values.get(name), n) or ""
        if values.get("prompt") is not None:
            values["prompt"] = _s(values["prompt"], 1_000_000)
        for name, n in (("shadow_vendor", 100), ("judge_target", 400), ("judge_vendor", 100)):
            values[name] = _s(values.get(name), n)
        for name in ("shadow_tokens", "judge_tokens"):
            values[name] = _i(values.get(name)) or 0
        for name in ("shadow_cost", "judge_cost"):
            values[name] = float(values.get(name) or 0.0)
        with self.engine.begin() as conn:
            t = schema.shadow_verdicts
            added = conn.execute(self._insert(t).on_conflict_do_nothing()
                                 .returning(t.c.request_id), values).first()
            if added is not None:  # added now, not a replayed verdict already counted
                summary = DailySummary()
                summary.add_verdict(values)
                summary.write(conn)

    def shadow_verdicts(self, since: datetime | None = None, *, with_prompt: bool = False,
                        route: str | None = None) -> list[dict[str, Any]]:
        """Shadow verdict rows, oldest first (for `router train --from-ledger`, reports)."""
        t = schema.shadow_verdicts
        stmt = select(t).order_by(t.c.created_at, t.c.request_id)
        if since is not None:
            stmt = stmt.where(t.c.created_at >= _utc(since))
        if with_prompt:
            stmt = stmt.where(t.c.prompt.is_not(None))
        if route is not None:
            stmt = stmt.where(t.c.route == route)
        with self.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(stmt)]

    def shadow_readiness(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Per UTC day and route: verdicts, errors, and the in-house-ok share (readiness).

        `readiness` = share of judged (non-error) verdicts whose in-house answer was as good
        as the external one; None on a day with only errors.
        """
        t = schema.shadow_verdicts
        judged = t.c.verdict != "error"
        stmt = select(
            t.c.day, t.c.route, func.count().label("verdicts"),
            func.sum(case((judged, 0), else_=1)).label("errors"),
            func.sum(case((and_(judged, t.c.inhouse_ok), 1), else_=0)).label("inhouse_ok"),
        ).group_by(t.c.day, t.c.route).order_by(t.c.day, t.c.route)
        if since is not None:
            stmt = stmt.where(t.c.created_at >= _utc(since))
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                n, errors, ok = int(row.verdicts), int(row.errors or 0), int(row.inhouse_ok or 0)
                out.append({"day": row.day, "route": row.route, "verdicts": n, "errors": errors,
                            "inhouse_ok": ok,
                            "readiness": round(ok / (n - errors), 4) if n > errors else None})
        return out

    def flush(self) -> None:
        """Write everything queued now, in the calling thread (tests, CLI)."""
        while self._queue:
            self._write_some()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            self._wake.wait(self.cfg.flush_interval)
            self._wake.clear()
            try:
                while self._queue and not self._stop.is_set():
                    self._write_some()
                backoff = 0.1
            except Exception as exc:
                log.error("ledger write failed (%s); %d records kept in memory, retrying",
                          exc.__class__.__name__, len(self._queue))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _write_some(self) -> None:
        with self._write_lock:
            batch: list[Record] = []
            while self._queue and len(batch) < self.cfg.batch_size:
                batch.append(self._queue.popleft())
            if not batch:
                return
            self._inflight = batch
            try:
                self._write(batch)
            except (OperationalError, InterfaceError):  # database unreachable: retry later
                self._queue.extendleft(reversed(batch))  # keep order
                raise
            except Exception as exc:  # a record the database refuses: isolate it
                log.error("ledger batch refused (%s); writing its records one by one",
                          exc.__class__.__name__)
                self._write_one_by_one(batch)
                return
            except BaseException:
                self._queue.extendleft(reversed(batch))
                raise
            finally:
                self._inflight = None
            self.written += len(batch)
            self._release(batch)

    def _write_one_by_one(self, batch: list[Record]) -> None:
        for i, rec in enumerate(batch):
            try:
                self._write([rec])
            except (OperationalError, InterfaceError):
                self._queue.extendleft(reversed(batch[i:]))
                raise
            except Exception as exc:
                log.error("ledger: request %s refused by the database (%s); kept in %s",
                          rec[0].get("id"), exc.__class__.__name__, self.cfg.spill_dir)
                self._spill([rec], prefix="rejected")
                continue
            self.written += 1
        self._release(batch)

    def _write(self, batch: list[Record]) -> None:
        reqs, atts, decs, finds, conts = [], [], [], [], []
        for req, a, d, f in batch:
            row = dict(req)
            row["created_at"] = datetime.fromtimestamp(req["created_at"], UTC)
            row.pop("_seq", None)  # the record's place in the journal, not a column
            content = row.pop("_content", None)
            if content is not None:
                conts.append(content)
            reqs.append(row)
            atts.extend(a)
            decs.extend(d)
            finds.extend(f)
        with self.engine.begin() as conn:
            added = self._insert_requests(conn, reqs)
            for table, rows in ((schema.attempts, atts), (schema.decisions, decs),
                                (schema.findings, finds), (schema.contents, conts)):
                if rows:
                    self._insert_rows(conn, table, rows)
            summary = DailySummary()  # same transaction: the summary never drifts from rows
            for rec in batch:
                if rec[0]["id"] in added:
                    added.discard(rec[0]["id"])  # the same record twice in one batch: once
                    summary.add(rec)
            summary.write(conn)

    def _insert_requests(self, conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """Insert request rows (ON CONFLICT DO NOTHING); the ids really added, which the
        summary counts (a replayed or retried record is already there and counted)."""
        r = schema.requests
        if self.engine.dialect.name == "postgresql":
            result = conn.execute(self._insert(r).on_conflict_do_nothing().returning(r.c.id),
                                  rows)
            return {row[0] for row in result}
        ids = [row["id"] for row in rows]
        present: set[str] = set()
        for i in range(0, len(ids), 10_000):  # under SQLite's 32,766 bound parameters
            chunk = ids[i:i + 10_000]
            present.update(row[0] for row in conn.exec_driver_sql(
                f"SELECT id FROM requests WHERE id IN ({', '.join('?' * len(chunk))})",
                tuple(chunk)))
        self._insert_rows(conn, r, rows)
        return set(ids) - present

    def _insert_rows(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        if self.engine.dialect.name == "sqlite":  # straight to the driver: SQLAlchemy's
            # per-row processing and multi-VALUES rewriting cost ~5x the insert itself
            # (bench/profile_gateway)
            sql, columns, dates = _sqlite_insert(table)
            params = [list(map(r.get, columns)) for r in rows]
            for i in dates:
                for values in params:
                    values[i] = _sqlite_datetime(values[i])
            conn.exec_driver_sql(sql, [tuple(v) for v in params])
        else:
            conn.execute(self._insert(table).on_conflict_do_nothing(), rows)

    def _final_drain(self, deadline: float | None = None) -> None:
        if deadline is None:
            deadline = time.monotonic() + self.cfg.shutdown_timeout
        backoff = 0.1
        while self._queue:
            try:
                self._write_some()
                continue
            except Exception as exc:
                if time.monotonic() >= deadline:
                    log.error("database unreachable at shutdown (%s): spilling %d records",
                              exc.__class__.__name__, len(self._queue))
                    break
            time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(backoff * 2, 2.0)
        if self._queue:
            rest = list(self._queue)
            self._spill(rest)
            self._queue.clear()  # after the spill: if it fails, the journal still has them

    # --- spill -------------------------------------------------------------------------------

    def _spill_dir(self) -> Path:
        return Path(self.cfg.spill_dir).expanduser()

    def _spill(self, records: list[Any], prefix: str = "ledger") -> None:
        """Append records to a JSON-lines file; ``rejected-*`` files are not replayed.

        ``ledger-*`` files hold request records, ``shadow-*`` files shadow verdict rows.
        """
        directory = self._spill_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{prefix}-{os.getpid()}-{time.time_ns()}.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if prefix == "rejected":
            self.rejected += len(records)
        else:
            self.spilled += len(records)
        log.warning("ledger: %d records spilled to %s (replayed at next start)",
                    len(records), path)

    def replay_spill(self) -> int:
        """Write spilled records and verdicts, and dead processes' journals, to the database;
        one process claims each file. Idempotent: a record already stored is skipped."""
        directory = self._spill_dir()
        if not directory.is_dir():
            return 0
        journals, owners = dead_segments(directory, self._database)
        files = [(p, self._replay_records) for p in journals]
        files += [(p, self._replay_records) for p in sorted(directory.glob("ledger-*.jsonl"))]
        files += [(p, self._replay_verdicts) for p in sorted(directory.glob("shadow-*.jsonl"))]
        try:
            return sum(self._replay_file(path, write) for path, write in files)
        finally:
            forget_owners(owners)

    def _replay_file(self, path: Path, write: Any) -> int:
        """Claim `path` (atomic rename), write its rows, delete it; the rows written."""
        claimed = path.with_suffix(f".replaying-{os.getpid()}")
        try:
            path.rename(claimed)
        except OSError:
            return 0  # another replica took it
        rows = _read_rows(claimed)
        try:
            write(rows)
        except Exception as exc:  # the database is not there yet: the file waits
            claimed.rename(path)
            log.error("ledger: could not replay %s (%s); will retry at next start",
                      path.name, exc.__class__.__name__)
            return 0
        claimed.unlink()
        if rows:
            log.info("ledger: replayed %d rows from %s", len(rows), path.name)
        return len(rows)

    def _replay_records(self, rows: list[Any]) -> None:
        for row in rows:
            row[0].pop("_seq", None)  # another process's journal numbers
        self._queue.extend(tuple(r) for r in rows)
        try:
            self.flush()
        except Exception:
            self._queue.clear()  # nothing else is queued before start()
            raise

    def _replay_verdicts(self, rows: list[Any]) -> None:
        for row in rows:  # idempotent on request_id: a partly replayed file replays safely
            self._insert_shadow(row)

    # --- read side ---------------------------------------------------------------------------

    def usage(self, by: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """Requests, errors, failovers, tokens, cost and latency per group, aggregated in SQL."""
        if by not in USAGE_GROUPS:
            raise ValueError(f"by must be one of: {', '.join(USAGE_GROUPS)}")
        r = schema.requests
        group = USAGE_GROUPS[by]
        cols = [
            group.label("group"),
            func.count().label("requests"),
            func.sum(case((r.c.status >= 400, 1), else_=0)).label("errors"),
            func.sum(case((r.c.attempts > 1, 1), else_=0)).label("failovers"),
            func.sum(r.c.prompt_tokens).label("prompt_tokens"),
            func.sum(r.c.completion_tokens).label("completion_tokens"),
            func.sum(r.c.cost).label("cost"),
            func.avg(r.c.latency_ms).label("avg_latency_ms"),
        ]
        frm: Any = r
        group_by: list[Any] = [group]
        if by == "key":
            k = schema.keys
            frm = r.outerjoin(k, k.c.id == r.c.key_id)
            cols.insert(1, func.max(k.c.name).label("name"))
        stmt = select(*cols).select_from(frm).group_by(*group_by)
        if since is not None:  # `day` first: its index narrows the scan (~10x on a year)
            since = _utc(since)
            stmt = stmt.where(r.c.day >= since.strftime("%Y-%m-%d"), r.c.created_at >= since)
        stmt = stmt.order_by(group if by == "day" else desc("cost"), desc("requests"))
        with self.engine.connect() as conn:
            rows = [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(stmt)]
        total_req = sum(row["requests"] for row in rows) or 1
        total_cost = sum(row["cost"] or 0.0 for row in rows)
        out = []
        for row in rows:
            item: dict[str, Any] = {by: row.pop("group")}
            item.update(row)
            for name in ("errors", "failovers", "prompt_tokens", "completion_tokens"):
                item[name] = int(item[name] or 0)
            item["cost"] = float(item["cost"] or 0.0)
            item["avg_latency_ms"] = round(float(item["avg_latency_ms"] or 0.0), 1)
            item["share_requests"] = round(item["requests"] / total_req, 4)
            item["share_cost"] = round(item["cost"] / total_cost, 4) if total_cost else 0.0
            out.append(item)
        return out

    def request_path(self, request_id: str) -> dict[str, Any] | None:
        """One request with its attempts, decisions and findings, in order."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.requests).where(schema.requests.c.id == request_id)
            ).first()
            if row is None:
                return None
            out = {str(k): v for k, v in row._mapping.items()}  # plain str keys (JSON)
            out["created_at"] = _utc(out["created_at"]).isoformat()
            for name, table in (("attempts", schema.attempts), ("decisions", schema.decisions),
                                ("findings", schema.findings)):
                rows = conn.execute(
                    select(table).where(table.c.request_id == request_id).order_by(table.c.n)
                )
                out[name] = [
                    {str(k): v for k, v in r._mapping.items() if k != "request_id"} for r in rows
                ]
        return out

    def spend(self, key_id: str, day: str) -> tuple[float, float]:
        """A key's recorded cost on `day` (UTC, 'YYYY-MM-DD') and in that day's month."""
        r = schema.requests
        stmt = select(
            func.coalesce(func.sum(case((r.c.day == day, r.c.cost), else_=0.0)), 0.0),
            func.coalesce(func.sum(r.c.cost), 0.0),
        ).where(and_(r.c.key_id == key_id, r.c.day >= day[:8] + "01", r.c.day <= day))
        with self.engine.connect() as conn:
            d, m = conn.execute(stmt).one()
        return float(d), float(m)

    def count(self) -> int:
        """Rows in `requests` (tests, health)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.requests)).scalar_one())


def _read_rows(path: Path) -> list[Any]:
    """The JSON lines of a spill file or journal; a line cut short (the journal's last one,
    after a power cut) is skipped with a warning instead of failing the whole file."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("ledger: %s line %d is incomplete; skipped", path.name, n)
    return rows


def _utc(value: datetime) -> datetime:
    """Aware UTC; naive values are taken as UTC (SQLite returns them naive)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """'7d', '24h', '30m', an ISO date or datetime; None for no bound."""
    if not text:
        return None
    text = text.strip()
    now = now or datetime.now(UTC)
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"since: {text!r} is neither a duration (7d, 24h, 30m) nor an ISO date"
        ) from None


