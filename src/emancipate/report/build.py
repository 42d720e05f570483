"""The independence report's figures, aggregated in SQL (GROUP BY), folded in Python.

Every query groups by UTC day (and a few low-cardinality columns: vendor, ownership, class,
action, route), so what comes back to Python is at most days x vendors rows whatever the
traffic; the only per-request work is the database's scan. Works on SQLite and PostgreSQL.

Definitions (also in docs/report.md):

* shares: of requests, tokens (prompt + completion) and spend (cost), among requests a target
  served (``vendor`` not null); requests no target served count in ``totals.unserved``.
* concentration: Herfindahl-Hirschman index on request shares by vendor, in percent points
  squared (0-10,000), with the bands of the US DOJ/FTC merger guidelines.
* kept in-house by the router: requests with a routing decision ``in-house``; quality cost:
  the sum of their router scores (each is P(external model needed)), i.e. the expected number
  of answers worse than the external model's would have been.
* leaks prevented: requests where a policy decision redacted data for, or withheld the request
  from, a target that is not in-house (redact, in-house-only = kept in-house, block); a
  target's ownership comes from the config, else from the ledger's own records of it.
* failovers survived: requests with more than one attempt that ended with status 200.
* cache: requests of routes with a response cache (``requests.cache`` not null); a hit
  (``hit``, or ``semantic``) answered from the cache with no target, so it is in
  ``totals.requests`` but neither served (not in the shares) nor unserved nor an error;
  vendor calls avoided: hits whose cached answer an external vendor gave (``cache_vendor``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Engine,
    Integer,
    and_,
    case,
    cast,
    func,
    inspect,
    or_,
    select,
)

from emancipate.ledger import schema
from emancipate.ledger.summary import CACHE_HITS

if TYPE_CHECKING:
    from emancipate.config import GatewayConfig

# US DOJ/FTC: below 1,000 unconcentrated; above 1,800 highly concentrated (2023 Merger
# Guidelines; 1,000-1,800 "moderately concentrated" as in the 1992 guidelines).
HHI_BANDS: tuple[tuple[float, str], ...] = (
    (1000.0, "unconcentrated"),
    (1800.0, "moderately concentrated"),
    (math.inf, "highly concentrated"),
)
SCORE_BUCKETS = 100  # router-score histogram resolution for the what-if (0.01)
PARALLEL_QUERIES = 3  # queries run side by side (bounded by the CPU count)
CACHE_SECONDS = 600.0  # closed (past) days' query results are reused this long
CACHE_ENTRIES = 64
SHORT_WINDOW_DAYS = 62  # up to this, joins start from the requests of the period
PROTECTIVE = ("redact", "in-house-only", "block")
ACTION_NAMES = {"redact": "redacted", "in-house-only": "kept_in_house", "block": "blocked"}


def hhi_band(hhi: float) -> str:
    """The DOJ band of an HHI value (0-10,000)."""
    if hhi < HHI_BANDS[0][0]:
        return HHI_BANDS[0][1]
    return HHI_BANDS[1][1] if hhi <= HHI_BANDS[1][0] else HHI_BANDS[2][1]


def hhi(counts: dict[Any, float]) -> float:
    """Herfindahl-Hirschman index of `counts` (shares in percent, squared, summed)."""
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    return round(sum((100.0 * c / total) ** 2 for c in counts.values()), 1)


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _rows(conn: Any, stmt: Any) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(stmt)]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bucket(col: Any, n: int, dialect: str) -> Any:
    """floor(col * n) as an integer, portably (SQLite's CAST truncates; PG's rounds)."""
    if dialect == "postgresql":
        return cast(func.floor(col * n), Integer)
    return cast(col * n, Integer)


class _Window:
    """The created_at bounds of the report, as SQL conditions on a table's column."""

    def __init__(self, since: datetime | None, until: datetime | None,
                 dialect: str = "sqlite") -> None:
        self.dialect = dialect
        self.since = _utc(since) if since is not None else None
        self.until = _utc(until) if until is not None else None

    def join(self, r: Any, child: Any) -> Any:
        """The join condition requests <-> child table, written so that SQLite starts from
        the side that reads fewer rows: for a short period, the period's requests (day index)
        then each one's child rows by primary key (`id || ''` hides the requests key from the
        planner); for a long one, the child table then each row's request by key."""
        short = (self.since is not None and self.dialect == "sqlite"
                 and ((self.until or datetime.now(UTC)) - self.since).days <= SHORT_WINDOW_DAYS)
        return (r.c.id + "" if short else r.c.id) == child.c.request_id

    def whole_days(self) -> bool:
        """True when both bounds are UTC midnights (or open): the daily summary answers."""
        return all(b is None or b == _midnight(b) for b in (self.since, self.until))

    def days(self, table: Any) -> list[Any]:
        """The window's days on a summary table (whole days only: see `whole_days`)."""
        conds = []
        if self.since is not None:
            conds.append(table.c.day >= self.since.strftime("%Y-%m-%d"))
        if self.until is not None:
            conds.append(table.c.day < self.until.strftime("%Y-%m-%d"))
        return conds

    def on(self, col: Any) -> list[Any]:
        """Bounds on `created_at`, plus the same bounds on the indexed UTC `day` column of
        that table: the day index narrows the scan (a short period reads only its days)."""
        conds = []
        day = col.table.c.get("day")
        if self.since is not None:
            conds.append(col >= self.since)
            if day is not None:
                conds.append(day >= self.since.strftime("%Y-%m-%d"))
        if self.until is not None:
            conds.append(col < self.until)
            if day is not None:
                conds.append(day <= self.until.strftime("%Y-%m-%d"))
        return conds


def _midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _split(win: _Window) -> list[tuple[_Window, bool]]:
    """The period cut at UTC midnights: [since, first midnight) and [today, until) are read
    live; the whole days in between are closed (True) and may come from the cache."""
    today = _midnight(datetime.now(UTC))
    end = win.until if win.until is not None and win.until < today else today
    end = _midnight(end)
    start = win.since
    first = None if start is None else (start if start == _midnight(start)
                                        else _midnight(start) + timedelta(days=1))
    if first is not None and first >= end:
        return [(win, False)]
    out: list[tuple[_Window, bool]] = []
    if start is not None and first is not None and start < first:
        out.append((_Window(start, first, win.dialect), False))
    out.append((_Window(first, end, win.dialect), True))
    if win.until is None or win.until > end:
        out.append((_Window(end, win.until, win.dialect), False))
    return out


class _ClosedDays:
    """Query results for closed UTC days, per process, for `CACHE_SECONDS`.

    Past days barely change (a request is recorded when it ends, so one that started before
    midnight can land a few minutes later; a spill file replayed at start-up too): within
    this delay a report may miss those. Bounded to `CACHE_ENTRIES` results (LRU)."""

    def __init__(self) -> None:
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_run(self, key: Any, run: Any) -> tuple[Any, bool]:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and hit[0] > now:
                self._data.move_to_end(key)
                return hit[1], True
        value = run()
        with self._lock:
            self._data[key] = (now + CACHE_SECONDS, value)
            while len(self._data) > CACHE_ENTRIES:
                self._data.popitem(last=False)
        return value, False

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_CACHE = _ClosedDays()


def clear_cache() -> None:
    """Forget cached past days (tests, or after importing old records)."""
    _CACHE.clear()


def target_vendors(cfg: GatewayConfig | None) -> dict[str, tuple[str, str]]:
    """provider/model -> (vendor, ownership) for every configured target (and every model an
    in-house provider declares)."""
    out: dict[str, tuple[str, str]] = {}
    if cfg is None:
        return out
    for route in cfg.routes.values():
        for t in route.targets:
            p = cfg.providers.get(t.provider)
            if p is not None:
                out[f"{t.provider}/{t.model}"] = (p.vendor, p.ownership)
    for name, p in cfg.providers.items():
        for m in getattr(p, "models", None) or ():
            out.setdefault(f"{name}/{m}", (p.vendor, p.ownership))
    return out


def build_report(engine: Engine, since: datetime | None, cfg: GatewayConfig | None = None,
                 *, until: datetime | None = None,
                 source: Literal["summary", "raw"] = "summary") -> dict[str, Any]:
    """The whole report as plain JSON-able data (see the module docstring for definitions).

    `cfg` adds what the ledger alone cannot know: which targets are in-house (for leaks
    prevented), target vendors, and the independence routes' router files (for the what-if).
    `source`: whole UTC days are read from the daily summary (``ledger/summary.py``), which
    gives the same figures as the detail rows in a fraction of the time and keeps days that
    retention deleted; a period's partial first or last day is always read from the detail
    rows. ``raw`` reads every day from the detail rows (a check, or a ledger from before the
    summary: then it is the only source).
    """
    started = time.perf_counter()
    dialect = engine.dialect.name
    win = _Window(since, until, dialect)
    timings: dict[str, float] = {}

    windows = _split(win)
    engine_key = (id(engine), str(engine.url))
    cached: list[str] = []

    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    has_shadow = "shadow_verdicts" in tables
    has_cache = "daily_cache" in tables  # migration 0012 (requests.saved_tokens too)
    summarised = source == "summary" and "daily_traffic" in tables

    def timed(name: str, fn: Any, *args: Any) -> Any:
        """One query over each window (closed days from the cache when fresh), each on its
        own connection: queries run side by side (WAL readers on SQLite, pooled
        connections on PostgreSQL). Rows of disjoint windows simply add up when folded.
        Whole-day windows read the daily summary's version of the query."""
        t0 = time.perf_counter()
        parts = []
        for w, closed in windows:
            # A query without a summary twin reads the detail rows (and misses pruned days).
            from_summary = summarised and w.whole_days() and fn in SUMMARY_QUERIES
            query = SUMMARY_QUERIES[fn] if from_summary else fn

            def run(w: _Window = w, query: Any = query) -> Any:
                with engine.connect() as conn:
                    return query(conn, w, *args)
            if closed:
                key = (engine_key, name, w.since, w.until, repr(args), from_summary)
                part, hit = _CACHE.get_or_run(key, run)
                if hit:
                    cached.append(name)
            else:
                part = run()
            parts.append(part)
        timings[name] = round((time.perf_counter() - t0) * 1000, 1)
        if parts and isinstance(parts[0], dict):
            return {k: [row for part in parts for row in part[k]] for k in parts[0]}
        return [row for part in parts for row in part]

    workers = max(1, min(PARALLEL_QUERIES, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report") as pool:
        f_traffic = pool.submit(timed, "traffic", _q_traffic)
        f_routing = pool.submit(timed, "routing", _q_routing, dialect)
        f_findings = pool.submit(timed, "findings", _q_findings)
        f_failovers = pool.submit(timed, "failovers", _q_failovers)
        f_shadow = pool.submit(timed, "shadow", _q_shadow) if has_shadow else None
        f_spend = pool.submit(timed, "shadow_spend", _q_shadow_spend) if has_shadow else None
        f_vscores = (pool.submit(timed, "shadow_scores", _q_shadow_scores, dialect)
                     if has_shadow else None)
        f_cache = pool.submit(timed, "cache", _q_cache) if has_cache else None
        traffic = f_traffic.result()
        known = target_vendors(cfg)
        for row in traffic:  # every target the ledger saw serving, config or not
            if row["target"] is not None and row["vendor"] is not None:
                known.setdefault(row["target"], (row["vendor"], row["ownership"] or "unknown"))
        inhouse = sorted(t for t, (_v, o) in known.items() if o == "in-house")
        protection = pool.submit(timed, "protection", _q_protection, inhouse).result()
        protection["vendors"] = known
        routing, findings = f_routing.result(), f_findings.result()
        failovers = f_failovers.result()
        shadow = f_shadow.result() if f_shadow is not None else None
        shadow_spend = f_spend.result() if f_spend is not None else None
        verdict_scores = f_vscores.result() if f_vscores is not None else []
        cache = f_cache.result() if f_cache is not None else None

    report: dict[str, Any] = {
        "object": "independence_report",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "since": win.since.isoformat() if win.since else None,
        "until": win.until.isoformat() if win.until else None,
        "currency": cfg.ledger.currency if cfg is not None else "USD",
        "source": "summary" if summarised else "raw",
    }
    report.update(_fold_traffic(traffic))
    report["router"] = _fold_routing(routing["per_day"])
    report["protection"] = _fold_protection(findings["detail"], protection)
    report["failovers"] = failovers_summary = _fold_failovers(traffic, failovers)
    report["shadow"] = _fold_shadow(shadow)
    report["shadow"]["spend"] = _fold_shadow_spend(shadow_spend or [])
    report["what_if"] = _what_if(cfg, routing["hist"], verdict_scores)
    report["cache"] = _fold_cache(cache, report)
    _merge_trend(report, routing["per_day"], findings["per_day"], protection, shadow,
                 cache or [])
    report["totals"]["failovers_survived"] = failovers_summary["survived"]
    timings["total"] = round((time.perf_counter() - started) * 1000, 1)
    report["timing_ms"] = timings
    report["cached_closed_days"] = sorted(set(cached))  # queries whose past days were cached
    return report


# --- queries ------------------------------------------------------------------------------


def _q_traffic(conn: Any, win: _Window) -> list[dict[str, Any]]:
    r = schema.requests
    ok = r.c.status < 400
    stmt = (
        select(
            r.c.day, r.c.vendor, r.c.ownership, r.c.target,
            func.count().label("requests"),
            func.sum(case((ok, 0), else_=1)).label("errors"),
            func.sum(r.c.prompt_tokens).label("prompt_tokens"),
            func.sum(r.c.completion_tokens).label("completion_tokens"),
            func.sum(r.c.cost).label("cost"),
            func.sum(case((and_(r.c.attempts > 1, r.c.status == 200), 1), else_=0))
            .label("failovers_survived"),
            func.sum(case((r.c.attempts > 1, 1), else_=0)).label("multi_attempt"),
        )
        .where(*win.on(r.c.created_at))
        .group_by(r.c.day, r.c.vendor, r.c.ownership, r.c.target)
    )
    return _rows(conn, stmt)


def _q_routing(conn: Any, win: _Window, dialect: str) -> dict[str, Any]:
    """Routing decisions of the independence router per day, route, action and score bucket.

    One pass gives both the kept-in-house trend (`per_day`: the folds sum the buckets) and
    the score histogram of the what-if (`hist`: the what-if sums the days): the same rows.
    """
    r, d = schema.requests, schema.decisions
    b = _bucket(r.c.router_score, SCORE_BUCKETS, dialect).label("bucket")
    stmt = (
        select(
            r.c.day, r.c.route, d.c.action, b,
            func.count().label("requests"),
            func.sum(r.c.router_score).label("score_sum"),
            func.sum(case((r.c.ownership == "in-house", 1), else_=0)).label("served_in_house"),
        )
        .select_from(d.join(r, win.join(r, d)))
        .where(d.c.stage == "routing", d.c.action.in_(("in-house", "external")),
               *win.on(r.c.created_at))
        .group_by(r.c.day, r.c.route, d.c.action, b)
    )
    rows = _rows(conn, stmt)
    return {"per_day": rows, "hist": rows}


def _q_findings(conn: Any, win: _Window) -> dict[str, Any]:
    """Findings per day, class, domain and vendor: the trend sums `per_day` over domains and
    vendors, the protection figures sum `detail` over days (the same rows here)."""
    r, f = schema.requests, schema.findings
    stmt = (
        select(r.c.day, f.c.cls, f.c.domain, r.c.vendor, func.count().label("findings"),
               func.count(func.distinct(f.c.request_id)).label("requests"))
        .select_from(f.join(r, win.join(r, f))).where(*win.on(r.c.created_at))
        .group_by(r.c.day, f.c.cls, f.c.domain, r.c.vendor)
    )
    rows = _rows(conn, stmt)
    return {"per_day": rows, "detail": rows}


def _q_protection(conn: Any, win: _Window, inhouse: list[str]) -> dict[str, Any]:
    """Policy decisions that protected something from a target that is not in-house."""
    r, d = schema.requests, schema.decisions
    frm = d.join(r, win.join(r, d))
    conds = [d.c.stage == "policy", d.c.action.in_(PROTECTIVE), *win.on(r.c.created_at)]
    if inhouse:
        conds.append(or_(d.c.target.is_(None), d.c.target.not_in(inhouse)))
    per_day = (
        select(r.c.day, d.c.cls, d.c.action,
               func.count(func.distinct(d.c.request_id)).label("requests"))
        .select_from(frm).where(*conds).group_by(r.c.day, d.c.cls, d.c.action)
    )
    detail = (
        select(d.c.target, d.c.rule, d.c.cls, d.c.action, func.count().label("decisions"),
               func.count(func.distinct(d.c.request_id)).label("requests"))
        .select_from(frm).where(*conds).group_by(d.c.target, d.c.rule, d.c.cls, d.c.action)
    )
    return {"per_day": _rows(conn, per_day), "detail": _rows(conn, detail)}


def _q_failovers(conn: Any, win: _Window) -> list[dict[str, Any]]:
    """Failed attempts inside requests that still ended 200: what the gateway survived."""
    r, a = schema.requests, schema.attempts
    stmt = (
        select(a.c.target, a.c.vendor, a.c.outcome, func.count().label("attempts"),
               func.count(func.distinct(a.c.request_id)).label("requests"))
        .select_from(a.join(r, r.c.id == a.c.request_id))
        .where(r.c.attempts > 1, r.c.status == 200, a.c.outcome != "ok",
               *win.on(r.c.created_at))
        .group_by(a.c.target, a.c.vendor, a.c.outcome)
    )
    return _rows(conn, stmt)


def _q_shadow(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = getattr(schema, "shadow_verdicts", None)
    if t is None:  # schema module older than the table: use a light definition
        from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table

        t = Table("shadow_verdicts", MetaData(), Column("created_at", DateTime(timezone=True)),
                  Column("day", String(10)), Column("route", String(200)),
                  Column("inhouse_ok", Boolean), Column("verdict", String(16)))
    judged = t.c.verdict != "error"
    stmt = (
        select(t.c.day, t.c.route, func.count().label("verdicts"),
               func.sum(case((judged, 0), else_=1)).label("errors"),
               func.sum(case((and_(judged, t.c.inhouse_ok), 1), else_=0)).label("inhouse_ok"))
        .where(*win.on(t.c.created_at)).group_by(t.c.day, t.c.route)
    )
    return _rows(conn, stmt)


def _q_shadow_scores(conn: Any, win: _Window, dialect: str) -> list[dict[str, Any]]:
    """Judged shadow verdicts per route and router-score bucket: how often the in-house
    answer was good, by the score the router gave (the what-if's live quality)."""
    t = schema.shadow_verdicts
    b = _bucket(t.c.router_score, SCORE_BUCKETS, dialect).label("bucket")
    stmt = (
        select(t.c.route, b, func.count().label("verdicts"),
               func.sum(case((t.c.inhouse_ok, 1), else_=0)).label("inhouse_ok"))
        .where(t.c.verdict != "error", t.c.router_score.is_not(None),
               *win.on(t.c.created_at))
        .group_by(t.c.route, b)
    )
    return _rows(conn, stmt)


def _q_shadow_spend(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.shadow_verdicts
    stmt = (
        select(t.c.shadow_vendor, t.c.judge_vendor, func.count().label("evaluations"),
               func.sum(t.c.shadow_tokens).label("shadow_tokens"),
               func.sum(t.c.shadow_cost).label("shadow_cost"),
               func.sum(t.c.judge_tokens).label("judge_tokens"),
               func.sum(t.c.judge_cost).label("judge_cost"))
        .where(*win.on(t.c.created_at)).group_by(t.c.shadow_vendor, t.c.judge_vendor)
    )
    return _rows(conn, stmt)


def _q_cache(conn: Any, win: _Window) -> list[dict[str, Any]]:
    """Requests of cached routes per day, route, outcome and avoided vendor (hits only), with
    the semantic hits and what the hits avoided (tokens, cost)."""
    r = schema.requests
    hit = r.c.cache.in_(CACHE_HITS)
    vendor = case((hit, r.c.cache_vendor), else_=None).label("vendor")
    stmt = (
        select(
            r.c.day, r.c.route, r.c.cache, vendor,
            func.count().label("requests"),
            func.sum(case((and_(hit, r.c.cache_similarity.is_not(None)), 1), else_=0))
            .label("semantic"),
            func.sum(case((hit, func.coalesce(r.c.saved_tokens, 0)), else_=0))
            .label("saved_tokens"),
            func.sum(case((hit, func.coalesce(r.c.saved_cost, 0.0)), else_=0.0))
            .label("saved_cost"),
        )
        .where(r.c.cache.is_not(None), *win.on(r.c.created_at))
        .group_by(r.c.day, r.c.route, r.c.cache, vendor)
    )
    return _rows(conn, stmt)


# --- the same queries on the daily summary (whole days) --------------------------------------
# Each returns the rows of its raw twin above, same names and values: summary key columns
# hold '' for NULL (and bucket -1 for no score), turned back into None here.


def _plain(value: Any) -> Any:
    """PostgreSQL sums BIGINT columns as NUMERIC: back to int (or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _summary_rows(conn: Any, stmt: Any, nullable: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for row in conn.execute(stmt):
        out = {str(k): _plain(v) for k, v in row._mapping.items()}
        for name in nullable:
            if out[name] == "":
                out[name] = None
        rows.append(out)
    return rows


def _sums(table: Any, *names: str, **renamed: str) -> list[Any]:
    return ([func.sum(table.c[n]).label(n) for n in names]
            + [func.sum(table.c[n]).label(label) for label, n in renamed.items()])


def _s_traffic(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.daily_traffic
    stmt = select(t).where(*win.days(t))  # one row per key and day: nothing to group
    return _summary_rows(conn, stmt, ("vendor", "ownership", "target"))


def _s_routing(conn: Any, win: _Window, dialect: str) -> dict[str, Any]:
    """As `_q_routing`, but two smaller results: per day without the buckets (~2 rows a day
    and route), and the buckets without the days (<= 101 per route and action)."""
    t = schema.daily_routing
    measures = _sums(t, "requests", "score_sum", "served_in_house")
    per_day = (select(t.c.day, t.c.route, t.c.action, *measures).where(*win.days(t))
               .group_by(t.c.day, t.c.route, t.c.action))
    hist = (select(t.c.route, t.c.action, t.c.bucket, *measures).where(*win.days(t))
            .group_by(t.c.route, t.c.action, t.c.bucket))
    buckets = _summary_rows(conn, hist, ("route",))
    for row in buckets:
        if row["bucket"] == -1:
            row["bucket"] = None
    return {"per_day": _summary_rows(conn, per_day, ("route",)), "hist": buckets}


def _s_findings(conn: Any, win: _Window) -> dict[str, Any]:
    """As `_q_findings`, as two small results: per day and class; per class, domain and
    vendor over the period."""
    t = schema.daily_findings
    per_day = (select(t.c.day, t.c.cls, *_sums(t, "findings")).where(*win.days(t))
               .group_by(t.c.day, t.c.cls))
    detail = (select(t.c.cls, t.c.domain, t.c.vendor, *_sums(t, "findings", "requests"))
              .where(*win.days(t)).group_by(t.c.cls, t.c.domain, t.c.vendor))
    return {"per_day": _summary_rows(conn, per_day, ()),
            "detail": _summary_rows(conn, detail, ("domain", "vendor"))}


def _s_protection(conn: Any, win: _Window, inhouse: list[str]) -> dict[str, Any]:
    """As `_q_protection`. A request counts on a day when one of the targets its protective
    decision applied to is not in-house (or the decision had no target): the summary keeps
    each request's set of targets per class and action for that reason."""
    w, p = schema.daily_withheld, schema.daily_protection
    keep = set(inhouse)
    per_day: dict[tuple[Any, Any, Any], int] = {}
    for row in conn.execute(select(w.c.day, w.c.cls, w.c.action, w.c.targets, w.c.requests)
                            .where(*win.days(w))):
        targets = row.targets.split("\n")
        if not keep or any(t == "" or t not in keep for t in targets):
            key = (row.day, row.cls or None, row.action)
            per_day[key] = per_day.get(key, 0) + int(row.requests)
    conds = win.days(p)
    if inhouse:
        conds.append(or_(p.c.target == "", p.c.target.not_in(inhouse)))
    detail = (select(p.c.target, p.c.rule, p.c.cls, p.c.action,
                     *_sums(p, "decisions", "requests"))
              .where(*conds).group_by(p.c.target, p.c.rule, p.c.cls, p.c.action))
    return {"per_day": [{"day": d, "cls": c, "action": a, "requests": n}
                        for (d, c, a), n in per_day.items()],
            "detail": _summary_rows(conn, detail, ("target", "rule", "cls"))}


def _s_failovers(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.daily_failovers
    stmt = (select(t.c.target, t.c.vendor, t.c.outcome, *_sums(t, "attempts", "requests"))
            .where(*win.days(t)).group_by(t.c.target, t.c.vendor, t.c.outcome))
    return _summary_rows(conn, stmt, ("vendor",))


def _s_shadow(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.daily_shadow
    stmt = (select(t.c.day, t.c.route, *_sums(t, "verdicts", "errors", "inhouse_ok"))
            .where(*win.days(t)).group_by(t.c.day, t.c.route))
    return _summary_rows(conn, stmt, ())


def _s_shadow_spend(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.daily_shadow
    stmt = (select(t.c.shadow_vendor, t.c.judge_vendor,
                   *_sums(t, "shadow_tokens", "shadow_cost", "judge_tokens", "judge_cost",
                          evaluations="verdicts"))
            .where(*win.days(t)).group_by(t.c.shadow_vendor, t.c.judge_vendor))
    return _summary_rows(conn, stmt, ("shadow_vendor", "judge_vendor"))


def _s_cache(conn: Any, win: _Window) -> list[dict[str, Any]]:
    t = schema.daily_cache
    stmt = select(t).where(*win.days(t))  # one row per key and day: nothing to group
    return _summary_rows(conn, stmt, ("route", "vendor"))


SUMMARY_QUERIES: dict[Any, Any] = {
    _q_traffic: _s_traffic, _q_routing: _s_routing, _q_findings: _s_findings,
    _q_protection: _s_protection, _q_failovers: _s_failovers, _q_shadow: _s_shadow,
    _q_shadow_spend: _s_shadow_spend, _q_cache: _s_cache,
}


# --- folding (small grouped results only) -----------------------------------------------------


def _i(v: Any) -> int:
    return int(v or 0)


def _f(v: Any) -> float:
    return float(v or 0.0)


def _fold_traffic(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_vendor: dict[str, dict[str, Any]] = {}
    by_owner: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, Any]] = {}
    tot = {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
           "cost": 0.0, "unserved": 0}

    def add(acc: dict[str, Any], row: dict[str, Any]) -> None:
        acc["requests"] += _i(row["requests"])
        acc["errors"] += _i(row["errors"])
        acc["prompt_tokens"] += _i(row["prompt_tokens"])
        acc["completion_tokens"] += _i(row["completion_tokens"])
        acc["cost"] += _f(row["cost"])
        acc["failovers_survived"] = acc.get("failovers_survived", 0) + _i(
            row["failovers_survived"])

    def blank(**kw: Any) -> dict[str, Any]:
        return {**kw, "requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                "cost": 0.0, "failovers_survived": 0}

    for row in rows:
        tot["requests"] += _i(row["requests"])
        tot["errors"] += _i(row["errors"])
        tot["prompt_tokens"] += _i(row["prompt_tokens"])
        tot["completion_tokens"] += _i(row["completion_tokens"])
        tot["cost"] += _f(row["cost"])
        day = days.setdefault(row["day"] or "unknown",
                              {"day": row["day"] or "unknown", "requests": 0, "errors": 0,
                               "tokens": 0, "cost": 0.0, "failovers_survived": 0,
                               "vendors": {}, "ownership": {}})
        day["requests"] += _i(row["requests"])
        day["errors"] += _i(row["errors"])
        day["tokens"] += _i(row["prompt_tokens"]) + _i(row["completion_tokens"])
        day["cost"] += _f(row["cost"])
        day["failovers_survived"] += _i(row["failovers_survived"])
        if row["vendor"] is None:
            tot["unserved"] += _i(row["requests"])
            continue
        owner = row["ownership"] or "unknown"
        add(by_vendor.setdefault(row["vendor"], blank(vendor=row["vendor"], ownership=owner)),
            row)
        add(by_owner.setdefault(owner, blank(ownership=owner)), row)
        for key, name in (("vendors", row["vendor"]), ("ownership", owner)):
            cell = day[key].setdefault(name, {"requests": 0, "tokens": 0, "cost": 0.0})
            cell["requests"] += _i(row["requests"])
            cell["tokens"] += _i(row["prompt_tokens"]) + _i(row["completion_tokens"])
            cell["cost"] += _f(row["cost"])

    served = {k: sum(v[k] for v in by_vendor.values()) for k in ("requests", "cost")}
    served_tokens = sum(v["prompt_tokens"] + v["completion_tokens"] for v in by_vendor.values())

    def finish(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for g in groups.values():
            g["tokens"] = g["prompt_tokens"] + g["completion_tokens"]
            g["cost"] = round(g["cost"], 6)
            g["share_requests"] = _share(g["requests"], served["requests"])
            g["share_tokens"] = _share(g["tokens"], served_tokens)
            g["share_cost"] = _share(g["cost"], served["cost"])
            out.append(g)
        return sorted(out, key=lambda g: (-g["requests"], str(g.get("vendor", "")),
                                          str(g["ownership"])))

    vendors, owners = finish(by_vendor), finish(by_owner)
    inhouse = next((o for o in owners if o["ownership"] == "in-house"), None)
    tot["tokens"] = tot["prompt_tokens"] + tot["completion_tokens"]
    tot["cost"] = round(tot["cost"], 6)
    tot["served"] = served["requests"]
    tot["inhouse_share_requests"] = inhouse["share_requests"] if inhouse else 0.0
    tot["inhouse_share_tokens"] = inhouse["share_tokens"] if inhouse else 0.0
    tot["inhouse_share_cost"] = inhouse["share_cost"] if inhouse else 0.0

    trend = []
    for day in sorted(days.values(), key=lambda d: d["day"]):
        served_day = sum(c["requests"] for c in day["vendors"].values())
        day["cost"] = round(day["cost"], 6)
        day["hhi"] = hhi({v: c["requests"] for v, c in day["vendors"].items()})
        day["inhouse_share"] = _share(
            day["ownership"].get("in-house", {}).get("requests", 0), served_day)
        trend.append(day)

    index = hhi({v["vendor"]: v["requests"] for v in vendors})
    external = {v["vendor"]: v["requests"] for v in vendors if v["ownership"] != "in-house"}
    index_ext = hhi(external)
    top = vendors[0] if vendors else None
    return {
        "totals": tot,
        "by_vendor": vendors,
        "by_ownership": owners,
        "concentration": {
            "hhi": index, "band": hhi_band(index),
            "hhi_external": index_ext, "band_external": hhi_band(index_ext),
            "vendors": len(vendors),
            "top_vendor": top["vendor"] if top else None,
            "top_share": top["share_requests"] if top else 0.0,
            "bands": [{"below": None if math.isinf(u) else u, "band": n} for u, n in HHI_BANDS],
            **_hhi_trend(trend),
        },
        "trend": trend,
    }


def _hhi_trend(trend: list[dict[str, Any]]) -> dict[str, Any]:
    """Least-squares slope of the daily HHI (points per 30 days) and its direction."""
    pts = [(i, d["hhi"]) for i, d in enumerate(trend) if d["vendors"]]
    if len(pts) < 2:
        return {"hhi_slope_30d": 0.0, "hhi_direction": "flat"}
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    den = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / den if den else 0.0
    per30 = round(slope * 30, 1)
    direction = "flat" if abs(per30) < 50 else ("rising" if per30 > 0 else "falling")
    return {"hhi_slope_30d": per30, "hhi_direction": direction}


def _fold_routing(rows: list[dict[str, Any]]) -> dict[str, Any]:
    routes: dict[str, dict[str, Any]] = {}
    for row in rows:
        g = routes.setdefault(row["route"] or "?", {
            "route": row["route"] or "?", "kept_in_house": 0, "sent_external": 0,
            "served_in_house": 0, "expected_worse_answers": 0.0})
        if row["action"] == "in-house":
            g["kept_in_house"] += _i(row["requests"])
            g["served_in_house"] += _i(row["served_in_house"])
            g["expected_worse_answers"] += _f(row["score_sum"])
        else:
            g["sent_external"] += _i(row["requests"])
    out = []
    for g in routes.values():
        decided = g["kept_in_house"] + g["sent_external"]
        g["inhouse_share"] = _share(g["kept_in_house"], decided)
        g["expected_worse_answers"] = round(g["expected_worse_answers"], 2)
        g["expected_worse_share"] = _share(g["expected_worse_answers"], g["kept_in_house"])
        out.append(g)
    out.sort(key=lambda g: (-g["kept_in_house"], g["route"]))  # ties: one order
    kept = sum(g["kept_in_house"] for g in out)
    worse = round(sum(g["expected_worse_answers"] for g in out), 2)
    decided = kept + sum(g["sent_external"] for g in out)
    return {"kept_in_house": kept, "routed": decided, "inhouse_share": _share(kept, decided),
            "served_in_house": sum(g["served_in_house"] for g in out),
            "expected_worse_answers": worse, "expected_worse_share": _share(worse, kept),
            "routes": out}


def _fold_protection(findings: list[dict[str, Any]],
                     protection: dict[str, Any]) -> dict[str, Any]:
    classes: dict[str, dict[str, Any]] = {}

    def cls_row(name: str) -> dict[str, Any]:
        return classes.setdefault(name, {"cls": name, "findings": 0, "requests": 0,
                                         "redacted": 0, "kept_in_house": 0, "blocked": 0})

    for row in findings:
        c = cls_row(row["cls"])
        c["findings"] += _i(row["findings"])
        c["requests"] += _i(row["requests"])
    for row in protection["per_day"]:
        cls_row(row["cls"] or "?")[ACTION_NAMES[row["action"]]] += _i(row["requests"])
    by_domain: dict[str, dict[str, int]] = {}
    by_vendor: dict[str, dict[str, Any]] = {}
    for row in findings:
        if row["domain"]:
            d = by_domain.setdefault(row["domain"], {"findings": 0, "requests": 0})
            d["findings"] += _i(row["findings"])
            d["requests"] += _i(row["requests"])
        v = by_vendor.setdefault(row["vendor"] or "(not served)", {
            "vendor": row["vendor"] or "(not served)", "findings_served": 0, "redacted": 0,
            "kept_in_house": 0, "blocked": 0})
        v["findings_served"] += _i(row["findings"])
    vendors = protection.get("vendors") or {}
    rules: dict[tuple[Any, Any, Any], int] = {}
    for row in protection["detail"]:
        key = (row["rule"], row["cls"], row["action"])
        rules[key] = rules.get(key, 0) + _i(row["requests"])
        if row["target"] is None:
            continue
        vendor = vendors.get(row["target"], (row["target"], ""))[0]
        v = by_vendor.setdefault(vendor, {"vendor": vendor, "findings_served": 0, "redacted": 0,
                                          "kept_in_house": 0, "blocked": 0})
        v[ACTION_NAMES[row["action"]]] += _i(row["decisions"])
    rows = sorted(classes.values(), key=lambda c: (-c["findings"], c["cls"]))
    prevented = {k: sum(c[k] for c in rows) for k in ("redacted", "kept_in_house", "blocked")}
    return {
        "leaks_prevented": sum(prevented.values()),
        **prevented,
        "by_class": rows,
        "by_domain": [{"domain": k, **v} for k, v in sorted(by_domain.items())],
        "by_vendor": sorted(by_vendor.values(), key=lambda v: v["vendor"]),
        # request-target decisions per rule (a request withheld from two targets counts twice)
        "by_rule": sorted(
            [{"rule": k[0], "cls": k[1], "action": k[2], "decisions": v}
             for k, v in rules.items()],
            key=lambda r: (-r["decisions"], str(r["rule"]), str(r["cls"]), r["action"])),
    }


def _fold_failovers(traffic: list[dict[str, Any]],
                    failed: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for r in failed:
        m = merged.setdefault((r["target"], r["vendor"], r["outcome"]), {
            "target": r["target"], "vendor": r["vendor"], "outcome": r["outcome"],
            "attempts": 0, "requests": 0})
        m["attempts"] += _i(r["attempts"])
        m["requests"] += _i(r["requests"])
    survived = sum(_i(r["failovers_survived"]) for r in traffic)
    multi = sum(_i(r["multi_attempt"]) for r in traffic)
    by_vendor: dict[str, int] = {}
    for r in traffic:
        if _i(r["failovers_survived"]) and r["vendor"] is not None:
            by_vendor[r["vendor"]] = by_vendor.get(r["vendor"], 0) + _i(r["failovers_survived"])
    return {
        "survived": survived, "multi_attempt": multi, "not_survived": multi - survived,
        "served_by": [{"vendor": k, "requests": v} for k, v in
                      sorted(by_vendor.items(), key=lambda kv: (-kv[1], kv[0]))],
        "failed_attempts": sorted(merged.values(), key=lambda r: (
            -r["attempts"], str(r["target"]), str(r["vendor"]), str(r["outcome"]))),
    }


def _wilson(ok: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = ok / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def _fold_shadow(rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    if rows is None:
        return {"available": False, "note": "no shadow data: the ledger has no shadow_verdicts "
                "table (database not migrated to revision 0003)", "days": [], "routes": []}
    days = []
    routes: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (r["day"], r["route"])):
        n, err, ok = _i(row["verdicts"]), _i(row["errors"]), _i(row["inhouse_ok"])
        judged = n - err
        days.append({"day": row["day"], "route": row["route"], "verdicts": n, "errors": err,
                     "inhouse_ok": ok,
                     "readiness": round(ok / judged, 4) if judged else None})
        g = routes.setdefault(row["route"], {"verdicts": 0, "errors": 0, "inhouse_ok": 0})
        g["verdicts"] += n
        g["errors"] += err
        g["inhouse_ok"] += ok
    out = []
    for name, g in sorted(routes.items()):
        judged = g["verdicts"] - g["errors"]
        lo, hi = _wilson(g["inhouse_ok"], judged)
        out.append({"route": name, **g,
                    "readiness": round(g["inhouse_ok"] / judged, 4) if judged else None,
                    "readiness_ci95": [lo, hi]})
    note = "" if days else "no shadow verdicts in this period"
    return {"available": True, "note": note, "days": days, "routes": out}


def _fold_shadow_spend(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What shadow answers and judge calls spent, per vendor (not in the traffic shares)."""
    vendors: dict[str, dict[str, Any]] = {}

    def add(vendor: str | None, kind: str, calls: int, tokens: int, spent: float) -> None:
        if vendor is None:  # verdicts older than rev 0005, or answers compared exactly
            return
        v = vendors.setdefault(vendor, {"vendor": vendor, "shadow_calls": 0, "judge_calls": 0,
                                        "tokens": 0, "cost": 0.0})
        v[f"{kind}_calls"] += calls
        v["tokens"] += tokens
        v["cost"] += spent

    for row in rows:
        n = _i(row["evaluations"])
        add(row["shadow_vendor"], "shadow", n, _i(row["shadow_tokens"]), _f(row["shadow_cost"]))
        add(row["judge_vendor"], "judge", n, _i(row["judge_tokens"]), _f(row["judge_cost"]))
    by_vendor = sorted(vendors.values(), key=lambda v: (-v["cost"], v["vendor"]))
    for v in by_vendor:
        v["cost"] = round(v["cost"], 6)
    return {"cost": round(sum(v["cost"] for v in by_vendor), 6),
            "tokens": sum(v["tokens"] for v in by_vendor), "by_vendor": by_vendor}


def _fold_cache(rows: list[dict[str, Any]] | None, report: dict[str, Any]) -> dict[str, Any]:
    """The response cache: outcomes on cached routes, and the vendor calls, tokens and cost
    its hits avoided. Hits have no target: `totals.unserved` (from the traffic rows, where
    they have no vendor) is corrected here and `totals.cache_hits` added."""
    out: dict[str, Any] = {"available": rows is not None, "lookups": 0, "hits": 0,
                           "semantic_hits": 0, "misses": 0, "bypasses": 0, "hit_rate": 0.0,
                           "vendor_calls_avoided": 0, "inhouse_hits": 0, "tokens_avoided": 0,
                           "cost_avoided": 0.0, "avoided_share": 0.0, "by_vendor": [],
                           "by_route": []}
    if rows is None:
        out["note"] = ("no cache figures: the ledger has no daily_cache table (database not "
                       "migrated to revision 0012)")
        report["totals"]["cache_hits"] = 0
        return out
    vendors: dict[str, dict[str, Any]] = {}
    routes: dict[str, dict[str, Any]] = {}
    for row in rows:
        n, hit = _i(row["requests"]), row["cache"] in CACHE_HITS
        name = row["route"] or "?"
        g = routes.setdefault(name, {"route": name, "lookups": 0, "hits": 0, "misses": 0,
                                     "bypasses": 0, "vendor_calls_avoided": 0})
        g["lookups"] += n
        out["lookups"] += n
        if not hit:
            kind = "misses" if row["cache"] == "miss" else "bypasses"
            g[kind] += n
            out[kind] += n
            continue
        g["hits"] += n
        out["hits"] += n
        out["semantic_hits"] += _i(row["semantic"])
        out["tokens_avoided"] += _i(row["saved_tokens"])
        out["cost_avoided"] += _f(row["saved_cost"])
        if row["vendor"] is None:  # an in-house target's answer: no vendor call avoided
            continue
        g["vendor_calls_avoided"] += n
        out["vendor_calls_avoided"] += n
        v = vendors.setdefault(row["vendor"], {"vendor": row["vendor"], "calls_avoided": 0,
                                               "tokens": 0, "cost": 0.0})
        v["calls_avoided"] += n
        v["tokens"] += _i(row["saved_tokens"])
        v["cost"] += _f(row["saved_cost"])
    for g in routes.values():
        g["hit_rate"] = _share(g["hits"], g["lookups"])
    for v in vendors.values():
        v["cost"] = round(v["cost"], 6)
    out["hit_rate"] = _share(out["hits"], out["lookups"])
    out["inhouse_hits"] = out["hits"] - out["vendor_calls_avoided"]
    out["cost_avoided"] = round(out["cost_avoided"], 6)
    external = sum(o["requests"] for o in report["by_ownership"] if o["ownership"] != "in-house")
    out["avoided_share"] = _share(out["vendor_calls_avoided"],
                                  external + out["vendor_calls_avoided"])
    out["by_vendor"] = sorted(vendors.values(), key=lambda v: (-v["calls_avoided"], v["vendor"]))
    out["by_route"] = sorted(routes.values(), key=lambda g: (-g["lookups"], g["route"]))
    report["totals"]["cache_hits"] = out["hits"]
    report["totals"]["unserved"] -= out["hits"]
    return out


_ROUTER_CACHE: dict[str, tuple[float, Any]] = {}


def _load_router(path: str) -> Any:
    """A router file, cached by modification time (files are large; reports are frequent)."""
    from emancipate.routing.learned import IndependenceRouter

    mtime = os.stat(path).st_mtime
    hit = _ROUTER_CACHE.get(path)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    router = IndependenceRouter.load(path)
    _ROUTER_CACHE[path] = (mtime, router)
    return router


def _what_if(cfg: GatewayConfig | None, scores: list[dict[str, Any]],
             verdict_scores: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per independence route: in-house share and quality at other thresholds.

    Held-out figures come from the router file's calibration curve; live figures apply the
    same thresholds to the router scores seen in the ledger (the share that would have stayed
    in-house, and a pessimistic quality: the strong model's held-out quality minus the mean
    score of the requests kept in-house, each score being P(external model needed)).
    Measured live quality comes from the shadow verdicts that carry a router score: of those
    the threshold would keep in-house, how many found the in-house answer as good.
    """
    judged: dict[str, list[tuple[int, int, int]]] = {}
    for row in verdict_scores or []:
        if row["bucket"] is not None:
            judged.setdefault(row["route"] or "?", []).append(
                (min(_i(row["bucket"]), SCORE_BUCKETS - 1), _i(row["verdicts"]),
                 _i(row["inhouse_ok"])))
    hist: dict[str, list[tuple[int, int, float]]] = {}
    acc: dict[str, dict[int, list[float]]] = {}
    for row in scores:
        if row["bucket"] is None:
            continue
        cell = acc.setdefault(row["route"] or "?", {}).setdefault(
            min(_i(row["bucket"]), SCORE_BUCKETS - 1), [0, 0.0])
        cell[0] += _i(row["requests"])
        cell[1] += _f(row["score_sum"])
    for route, buckets in acc.items():
        hist[route] = [(b, int(c), s) for b, (c, s) in buckets.items()]
    routes: list[tuple[str, Any]] = []
    if cfg is not None:
        routes = [(name, rc) for name, rc in cfg.routes.items() if rc.strategy == "independence"]
    names = {name for name, _ in routes}
    routes += [(name, None) for name in sorted(hist) if name not in names]
    out = []
    for name, rc in routes:
        item: dict[str, Any] = {"route": name, "router": rc.router if rc else None,
                                "threshold": None, "points": [], "error": None}
        router = None
        if rc is not None and rc.router:
            try:
                router = _load_router(rc.router)
            except (OSError, ValueError) as exc:
                item["error"] = f"cannot read the router file: {exc}"
        if router is not None:
            try:
                if rc.threshold is not None:
                    current = rc.threshold
                else:
                    current = router.threshold_for(quality_floor=rc.quality_floor,
                                                   inhouse_share=rc.inhouse_share)
            except ValueError as exc:
                current, item["error"] = None, str(exc)
            cal = router.calibration
            item["threshold"] = None if current is None or math.isinf(current) else current
            item["strong_quality"] = cal["strong_quality"]
            item["weak_quality"] = cal["weak_quality"]
            item["calibration_method"] = cal.get("method")
            item["calibrated"] = router.calibration_applies()
            item["heldout"] = {k: router.heldout.get(k) for k in ("apgr", "length_apgr",
                                                                  "cpt50", "method")}
            item["warning"] = router.calibration_warning()
        h = sorted(hist.get(name, []))
        n_live = sum(c for _, c, _ in h)
        item["live_requests"] = n_live
        strong_q = item.get("strong_quality")
        grid = sorted({round(i / 20, 2) for i in range(21)}
                      | ({round(item["threshold"], 4)} if item["threshold"] is not None else set()))
        for t in grid:
            point: dict[str, Any] = {"threshold": t}
            if router is not None:
                est = router.estimate(t)
                point.update(inhouse_share_heldout=round(est["inhouse_share"], 4),
                             quality_heldout=round(est["quality"], 4),
                             gap_recovered_heldout=round(est["gap_recovered"], 4))
            if n_live:
                cut = t * SCORE_BUCKETS
                kept = worse = 0.0
                for b, c, s in h:
                    if b + 1 <= cut:
                        kept, worse = kept + c, worse + s
                    elif b < cut:  # a partly kept bucket: pro rata
                        f = cut - b
                        kept, worse = kept + c * f, worse + s * f
                point["inhouse_share_live"] = round(kept / n_live, 4)
                point["expected_worse_share_live"] = round(worse / n_live, 4)
                if strong_q is not None:
                    point["quality_live_est"] = round(strong_q - worse / n_live, 4)
            verdicts = judged.get(name)
            if verdicts:
                cut = t * SCORE_BUCKETS
                n = sum(c * min(1.0, max(0.0, cut - b)) for b, c, _ in verdicts)
                ok = sum(k * min(1.0, max(0.0, cut - b)) for b, _, k in verdicts)
                point["verdicts_kept_live"] = round(n, 2)
                point["inhouse_ok_when_kept_live"] = round(ok / n, 4) if n else None
            item["points"].append(point)
        if router is not None:
            item["curve_heldout"] = _downsample(router.calibration)
        out.append(item)
    return out


def _downsample(cal: dict[str, Any], points: int = 41) -> list[dict[str, float]]:
    n = len(cal["inhouse_share"])
    idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n > 1 else [0]
    return [{"inhouse_share": cal["inhouse_share"][i], "quality": cal["quality"][i],
             "gap_recovered": cal["gap_recovered"][i], "threshold": cal["threshold"][i]}
            for i in idx if i < n]


_DAY_EXTRA: dict[str, Any] = {
    "kept_in_house": 0, "routed": 0, "findings": 0, "redacted": 0, "kept_in_house_policy": 0,
    "blocked": 0, "shadow_verdicts": 0, "shadow_ok": 0, "shadow_readiness": None,
    "cache_hits": 0, "vendor_calls_avoided": 0,
}
_DAY_KEY = {"redact": "redacted", "in-house-only": "kept_in_house_policy", "block": "blocked"}


def _merge_trend(report: dict[str, Any], routing: list[dict[str, Any]],
                 findings: list[dict[str, Any]], protection: dict[str, Any],
                 shadow: list[dict[str, Any]] | None, cache: list[dict[str, Any]]) -> None:
    """Add per-day router, protection, shadow and cache figures to the traffic trend rows."""
    days = {d["day"]: d for d in report["trend"]}
    for d in days.values():
        d.update(_DAY_EXTRA, findings_by_class={})

    def day(name: str | None) -> dict[str, Any]:
        key = name or "unknown"
        if key not in days:  # e.g. shadow verdicts on a day outside the traffic rows
            days[key] = {"day": key, "requests": 0, "errors": 0, "tokens": 0, "cost": 0.0,
                         "failovers_survived": 0, "vendors": {}, "ownership": {},
                         "hhi": 0.0, "inhouse_share": 0.0, **_DAY_EXTRA,
                         "findings_by_class": {}}
        return days[key]

    for row in routing:
        d = day(row["day"])
        d["routed"] += _i(row["requests"])
        if row["action"] == "in-house":
            d["kept_in_house"] += _i(row["requests"])
    for row in findings:
        d = day(row["day"])
        d["findings"] += _i(row["findings"])
        fc = d["findings_by_class"]
        fc[row["cls"]] = fc.get(row["cls"], 0) + _i(row["findings"])
    for row in protection["per_day"]:
        day(row["day"])[_DAY_KEY[row["action"]]] += _i(row["requests"])
    for row in cache:
        if row["cache"] in CACHE_HITS:
            d = day(row["day"])
            d["cache_hits"] += _i(row["requests"])
            if row["vendor"] is not None:
                d["vendor_calls_avoided"] += _i(row["requests"])
    judged: dict[str, int] = {}
    for row in shadow or ():
        d = day(row["day"])
        d["shadow_verdicts"] += _i(row["verdicts"])
        d["shadow_ok"] += _i(row["inhouse_ok"])
        judged[d["day"]] = judged.get(d["day"], 0) + _i(row["verdicts"]) - _i(row["errors"])
    for name, n in judged.items():
        if n:
            days[name]["shadow_readiness"] = round(days[name]["shadow_ok"] / n, 4)
    report["trend"] = [days[k] for k in sorted(days)]


__all__ = ["HHI_BANDS", "build_report", "clear_cache", "hhi", "hhi_band", "target_vendors"]
