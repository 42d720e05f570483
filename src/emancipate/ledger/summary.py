"""The daily summary: the independence report's figures per UTC day, kept incrementally.

The ledger writer folds each batch into a `DailySummary` and adds it to the ``daily_*`` tables
(``schema.py``, migration 0008) in the transaction that inserts the batch's requests, counting
only the requests that insert really added (a replayed record is skipped by ON CONFLICT and
is not counted twice). Shadow verdicts are added the same way when they are inserted.

Each table keeps exactly what one of the report's queries groups by (``report/build.py``), per
day, so the report reads the same figures from here as from the detail rows:

* ``daily_traffic``: requests, errors, tokens, cost, failovers per (vendor, ownership, target);
* ``daily_routing``: independence-router decisions per (route, action, 0.01 score bucket);
* ``daily_findings``: guard findings per (class, domain, vendor) and the requests holding them;
* ``daily_protection``: protective policy decisions per (target, rule, class, action);
* ``daily_withheld``: requests per (class, action, set of targets it applied to): whether a
  request protected something from a vendor depends on which targets the report counts as
  in-house, known only when the report is built, so the set is kept (sha1 of it as the key);
* ``daily_failovers``: failed attempts of requests that still ended 200;
* ``daily_shadow``: shadow verdicts and their spend per (route, shadow vendor, judge vendor);
* ``daily_cache`` (migration 0012): requests of cached routes per (route, cache outcome,
  avoided vendor), with the semantic hits among them and the tokens and cost hits avoided.

Retention (``ledger/retention.py``) deletes detail rows, never summary rows: pruned days keep
their figures. Concurrent writers (replicas on PostgreSQL) add to the same rows with
``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``, keys sorted so that two
transactions lock rows in the same order and cannot deadlock.

A database that already held requests when migration 0008 ran is summarised once, at the next
start (``backfill_if_needed``), by folding its rows with this same code; one that held cache
rows when 0012 ran gets ``daily_cache`` filled the same way (those rows only).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, Table, exists, select, text
from sqlalchemy.dialects import postgresql

from emancipate.ledger import schema

PROTECTIVE = ("redact", "in-house-only", "block")  # policy actions the report counts
ROUTING = ("in-house", "external")  # the independence router's decisions
CACHE_HITS = ("hit", "semantic")  # requests.cache values of an answer served from the cache
BACKFILL_CHUNK = 5000  # requests read per query when summarising existing rows
_LOCK_ID = 0x656D6173  # "emas": pg_advisory_xact_lock key held while backfilling

# A ledger record: (request row, attempt rows, decision rows, finding rows), as the writer
# queues it (`store.to_rows`; `created_at` a float epoch until written, so that a record is
# plain JSON for the spill file) or as read back by `stored_records`.
Record = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
Key = tuple[Any, ...]

# table -> its measure columns, in the order `DailySummary` accumulates them
MEASURES: dict[str, tuple[str, ...]] = {
    "daily_traffic": ("requests", "errors", "prompt_tokens", "completion_tokens", "cost",
                      "failovers_survived", "multi_attempt"),
    "daily_routing": ("requests", "score_sum", "served_in_house"),
    "daily_findings": ("findings", "requests"),
    "daily_protection": ("decisions", "requests"),
    "daily_withheld": ("requests",),
    "daily_failovers": ("attempts", "requests"),
    "daily_shadow": ("verdicts", "errors", "inhouse_ok", "shadow_tokens", "shadow_cost",
                     "judge_tokens", "judge_cost"),
    "daily_cache": ("requests", "semantic", "saved_tokens", "saved_cost"),
}
TABLES: dict[str, Table] = {name: getattr(schema, name) for name in MEASURES}


def targets_key(targets: str) -> str:
    """The key of a set of targets ('\\n'-joined, sorted): bounded whatever the set's size."""
    return hashlib.sha1(targets.encode(), usedforsecurity=False).hexdigest()


def score_bucket(score: float | None, buckets: int = 100) -> int:
    """floor(score x buckets), as the report computes it in SQL; -1 for no score."""
    return -1 if score is None else math.floor(score * buckets)


class DailySummary:
    """The summary figures of some records and verdicts, ready to be added to the tables."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[Key, list[Any]]] = {name: {} for name in MEASURES}
        self._targets: dict[str, str] = {}  # targets_key -> targets (daily_withheld)

    def __bool__(self) -> bool:
        return any(self.cells.values())

    def _bump(self, table: str, key: Key, values: tuple[Any, ...]) -> None:
        cell = self.cells[table].get(key)
        if cell is None:
            self.cells[table][key] = list(values)
        else:
            for i, v in enumerate(values):
                cell[i] += v

    def add(self, rec: Record) -> None:
        """Fold one request (a ledger record, or rows read back from the tables)."""
        req, attempts, decisions, findings = rec
        day, vendor, status = req["day"], req["vendor"] or "", int(req["status"])
        multi = int(req["attempts"]) > 1
        self._bump("daily_traffic", (day, vendor, req["ownership"] or "", req["target"] or ""),
                   (1, int(status >= 400), int(req["prompt_tokens"]),
                    int(req["completion_tokens"]), float(req["cost"]),
                    int(multi and status == 200), int(multi)))
        if decisions:
            self._add_decisions(req, day, decisions)
        if findings:
            per_class: dict[tuple[str, str], int] = {}
            for f in findings:
                where = (f["cls"] or "", f["domain"] or "")
                per_class[where] = per_class.get(where, 0) + 1
            for (cls, domain), n in per_class.items():
                self._bump("daily_findings", (day, cls, domain, vendor), (n, 1))
        if req.get("cache"):
            self.add_cache(req)
        if multi and status == 200:
            failed: dict[tuple[str, str, str], int] = {}
            for a in attempts:
                if a["outcome"] != "ok":
                    what = (a["target"] or "", a["vendor"] or "", a["outcome"] or "")
                    failed[what] = failed.get(what, 0) + 1
            for what, n in failed.items():
                self._bump("daily_failovers", (day, *what), (n, 1))

    def add_cache(self, req: dict[str, Any]) -> None:
        """Fold a request of a cached route (`cache` not NULL): its outcome, and for a hit
        the vendor call, tokens and cost it avoided."""
        cache = req["cache"]
        hit = cache in CACHE_HITS
        self._bump("daily_cache", (req["day"], req["route"] or "", cache,
                                   (req.get("cache_vendor") or "") if hit else ""),
                   (1, int(hit and req.get("cache_similarity") is not None),
                    int(req.get("saved_tokens") or 0) if hit else 0,
                    float(req.get("saved_cost") or 0.0) if hit else 0.0))

    def _add_decisions(self, req: dict[str, Any], day: str,
                       decisions: list[dict[str, Any]]) -> None:
        score = req["router_score"]
        protective: dict[tuple[str, str, str, str], int] = {}
        withheld: dict[tuple[str, str], set[str]] = {}
        for d in decisions:
            stage, action = d["stage"], d["action"]
            if stage == "routing" and action in ROUTING:
                self._bump("daily_routing",
                           (day, req["route"] or "", action, score_bucket(score)),
                           (1, float(score or 0.0), int(req["ownership"] == "in-house")))
            elif stage == "policy" and action in PROTECTIVE:
                cls, target = d["cls"] or "", d["target"] or ""
                group = (target, d["rule"] or "", cls, action)
                protective[group] = protective.get(group, 0) + 1
                withheld.setdefault((cls, action), set()).add(target)
        for group, n in protective.items():
            self._bump("daily_protection", (day, *group), (n, 1))
        for (cls, action), targets in withheld.items():
            joined = "\n".join(sorted(targets))
            key = targets_key(joined)
            self._targets[key] = joined
            self._bump("daily_withheld", (day, cls, action, key), (1,))

    def add_verdict(self, row: dict[str, Any]) -> None:
        """Fold one shadow verdict row (as inserted in ``shadow_verdicts``)."""
        error = row["verdict"] == "error"
        self._bump("daily_shadow", (row["day"], row["route"] or "", row["shadow_vendor"] or "",
                                    row["judge_vendor"] or ""),
                   (1, int(error), int(not error and bool(row["inhouse_ok"])),
                    int(row.get("shadow_tokens") or 0), float(row.get("shadow_cost") or 0.0),
                    int(row.get("judge_tokens") or 0), float(row.get("judge_cost") or 0.0)))

    def write(self, conn: Connection) -> None:
        """Add these figures to the tables (call inside the transaction of the detail rows)."""
        sqlite_driver = conn.dialect.name == "sqlite"
        for name, cells in self.cells.items():
            if not cells:
                continue
            table = TABLES[name]
            keys = [c.name for c in table.primary_key.columns]
            columns = keys + list(MEASURES[name]) + (["targets"] if name == "daily_withheld"
                                                     else [])
            rows = []
            for key in sorted(cells):  # one lock order for every writer: no deadlock
                row = [*key, *cells[key]]
                if name == "daily_withheld":
                    row.append(self._targets[key[-1]])
                rows.append(row)
            if sqlite_driver:  # straight to the driver, as the writer's inserts (~3x faster)
                conn.exec_driver_sql(_sqlite_upsert(name, columns, keys), [tuple(r) for r in rows])
            else:
                stmt = postgresql.insert(table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=keys,
                    set_={m: table.c[m] + stmt.excluded[m] for m in MEASURES[name]})
                conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])


_SQLITE_UPSERTS: dict[str, str] = {}


def _sqlite_upsert(name: str, columns: list[str], keys: list[str]) -> str:
    sql = _SQLITE_UPSERTS.get(name)
    if sql is None:
        adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in MEASURES[name])
        sql = _SQLITE_UPSERTS[name] = (
            f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}")
    return sql


# --- backfill -------------------------------------------------------------------------------


def backfill_if_needed(engine: Engine) -> int:
    """Summarise the detail rows of a database that held some before the summary existed.

    Runs once: only when ``requests`` (or ``shadow_verdicts``) has rows and its summary has
    none (one cheap read otherwise). The fold holds a lock (PostgreSQL advisory lock, SQLite's
    write lock), so replicas starting together do it once; call it before the writer starts.
    Returns the number of requests and verdicts summarised.
    """
    with engine.connect() as conn:
        if _needed(conn) == (False, False, False):
            return 0
    with engine.begin() as conn:
        _lock(conn)
        # again, under the lock: another may have done it
        requests, verdicts, cached = _needed(conn)
        summary, n = DailySummary(), 0
        if requests:  # every figure, daily_cache's too
            for rec in stored_records(conn):
                summary.add(rec)
                n += 1
        elif cached:  # summarised before 0012: only the cache rows are missing
            r = schema.requests
            for row in conn.execute(select(*[r.c[c] for c in _CACHE_COLUMNS])
                                    .where(r.c.cache.is_not(None))):
                summary.add_cache(dict(row._mapping))
                n += 1
        if verdicts:
            t = schema.shadow_verdicts
            for row in conn.execute(select(
                    t.c.day, t.c.route, t.c.verdict, t.c.inhouse_ok, t.c.shadow_vendor,
                    t.c.shadow_tokens, t.c.shadow_cost, t.c.judge_vendor, t.c.judge_tokens,
                    t.c.judge_cost)):
                summary.add_verdict(dict(row._mapping))
                n += 1
        summary.write(conn)
    return n


def _needed(conn: Connection) -> tuple[bool, bool, bool]:
    """(requests to summarise, verdicts to summarise, cache rows to summarise)."""
    r = schema.requests
    return (_empty(conn, schema.daily_traffic) and not _empty(conn, r),
            _empty(conn, schema.daily_shadow) and not _empty(conn, schema.shadow_verdicts),
            _empty(conn, schema.daily_cache) and bool(conn.execute(select(
                exists().where(r.c.cache.is_not(None)))).scalar()))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    else:  # a write statement takes SQLite's write lock until this transaction ends
        conn.execute(text("DELETE FROM daily_traffic WHERE 1 = 0"))


def _empty(conn: Connection, table: Table) -> bool:
    return not conn.execute(select(exists().select_from(table))).scalar()


def stored_records(conn: Connection, chunk: int = BACKFILL_CHUNK) -> Iterator[Record]:
    """Every stored request with the child rows the summary reads, in id order, read
    `chunk` requests at a time (keyset pagination: memory stays bounded)."""
    r, a, d, f = schema.requests, schema.attempts, schema.decisions, schema.findings
    columns = [r.c[n] for n in ("id", "target", "vendor", "ownership", "status",
                                "prompt_tokens", "completion_tokens", "cost", "router_score",
                                "attempts", *_CACHE_COLUMNS)]
    last: str | None = None
    while True:
        stmt = select(*columns).order_by(r.c.id).limit(chunk)
        if last is not None:
            stmt = stmt.where(r.c.id > last)
        reqs = [dict(row._mapping) for row in conn.execute(stmt)]
        if not reqs:
            return
        lo, hi = last, reqs[-1]["id"]
        children = [
            _by_request(conn, a, lo, hi, a.c.outcome != "ok"),
            _by_request(conn, d, lo, hi, d.c.stage.in_(("routing", "policy"))),
            _by_request(conn, f, lo, hi, None),
        ]
        for req in reqs:
            rid = req["id"]
            yield req, children[0].get(rid, []), children[1].get(rid, []), children[2].get(
                rid, [])
        last = hi


_CACHE_COLUMNS = ("day", "route", "cache", "cache_vendor", "saved_tokens", "saved_cost",
                  "cache_similarity")


def _by_request(conn: Connection, table: Table, lo: str | None, hi: str,
                cond: Any) -> dict[str, list[dict[str, Any]]]:
    """`table`'s rows whose request id is in (lo, hi], grouped by request, in order."""
    stmt = select(table).where(table.c.request_id <= hi).order_by(table.c.request_id,
                                                                  table.c.n)
    if lo is not None:
        stmt = stmt.where(table.c.request_id > lo)
    if cond is not None:
        stmt = stmt.where(cond)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(stmt):
        m = dict(row._mapping)
        out.setdefault(m["request_id"], []).append(m)
    return out


__all__ = ["CACHE_HITS", "MEASURES", "TABLES", "DailySummary", "Record", "backfill_if_needed",
           "score_bucket", "stored_records", "targets_key"]
