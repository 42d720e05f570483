"""The table: one column per target, ratios emancipate/peer, Markdown for the terminal and docs.

Ratios are emancipate ÷ peer for every row; the arrow in the row label says which way is
better (↑ higher is better, ↓ lower is better), so 0.1 on a ↓ row means ten times less.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]
MARK_BEGIN = "<!-- overhead:begin (written by bench/run.py) -->"
MARK_END = "<!-- overhead:end -->"
SECTION = "## Gateway overhead (issue 7)"


def _nonstream(r: Row, c: int) -> Row | None:
    return (r.get("nonstream") or {}).get(str(c))


def _rps(c: int) -> Callable[[Row, Row], float | None]:
    def get(r: Row, direct: Row) -> float | None:
        run = _nonstream(r, c)
        return run["rps"] if run else None
    return get


def _lat(c: int) -> Callable[[Row, Row], tuple[float, ...] | None]:
    def get(r: Row, direct: Row) -> tuple[float, ...] | None:
        run = _nonstream(r, c)
        return (run["p50_ms"], run["p90_ms"], run["p99_ms"]) if run else None
    return get


def _added(c: int, pct: str) -> Callable[[Row, Row], float | None]:
    def get(r: Row, direct: Row) -> float | None:
        run, base = _nonstream(r, c), _nonstream(direct, c)
        if not run or not base or r.get("kind") == "baseline":
            return None
        return float(run[pct] - base[pct])
    return get


def _paced(r: Row, direct: Row) -> tuple[float, ...] | None:
    run = r.get("paced")
    return (run["p50_ms"], run["p90_ms"], run["p99_ms"]) if run else None


def _added_paced(r: Row, direct: Row) -> float | None:
    run, base = r.get("paced"), direct.get("paced")
    if not run or not base or r.get("kind") == "baseline":
        return None
    return float(run["p99_ms"] - base["p99_ms"])


def _cpu(c: int) -> Callable[[Row, Row], float | None]:
    def get(r: Row, direct: Row) -> float | None:
        run = _nonstream(r, c)
        return run.get("cpu_ms_per_req") if run else None
    return get


def _stream(key: str) -> Callable[[Row, Row], float | None]:
    def get(r: Row, direct: Row) -> float | None:
        run = r.get("stream")
        return run.get(key) if run else None
    return get


def _ttfb(r: Row, direct: Row) -> float | None:
    t = r.get("ttfb")
    return t["ttfb_p50_ms"] if t else None


def _added_ttfb(r: Row, direct: Row) -> float | None:
    t, base = r.get("ttfb"), direct.get("ttfb")
    if not t or not base or r.get("kind") == "baseline":
        return None
    return float(t["ttfb_p50_ms"] - base["ttfb_p50_ms"])


def _mib(key: str) -> Callable[[Row, Row], float | None]:
    def get(r: Row, direct: Row) -> float | None:
        v = r.get(key)
        return v / 2**20 if v is not None else None
    return get


def _startup(r: Row, direct: Row) -> float | None:
    return r.get("startup_s")


@dataclass
class Metric:
    label: str
    better: str  # "higher" or "lower"
    get: Callable[[Row, Row], Any]
    digits: int = 2


def metrics(concurrency: list[int], stream_c: int, paced_rate: float = 0.0) -> list[Metric]:
    """The table's rows, for the concurrencies that were run."""
    rows = [Metric(f"req/s, c={c} ↑", "higher", _rps(c), 0) for c in concurrency]
    rows += [Metric(f"latency p50 / p90 / p99, c={c} (ms) ↓", "lower", _lat(c))
             for c in concurrency]
    c_lo, c_hi = concurrency[0], concurrency[-1]
    mid = 16 if 16 in concurrency else c_hi
    rows += [
        Metric(f"added latency p50, c={c_lo} (ms) ↓", "lower", _added(c_lo, "p50_ms")),
        Metric(f"added latency p99, c={c_hi} (ms) ↓", "lower", _added(c_hi, "p99_ms")),
    ]
    if paced_rate:
        rows += [
            Metric(f"latency p50 / p90 / p99, c={c_hi} at {paced_rate:,.0f} req/s (ms) ↓",
                   "lower", _paced),
            Metric(f"added latency p99, c={c_hi} at {paced_rate:,.0f} req/s (ms) ↓", "lower",
                   _added_paced),
        ]
    rows += [
        Metric(f"CPU per request, c={mid} (ms) ↓", "lower", _cpu(mid), 3),
        Metric(f"streaming req/s, c={stream_c} ↑", "higher", _stream("rps"), 0),
        Metric(f"streaming CPU per request, c={stream_c} (ms) ↓", "lower",
               _stream("cpu_ms_per_req"), 3),
        Metric("time to first event p50, c=1 (ms) ↓", "lower", _ttfb),
        Metric("added time to first event p50 (ms) ↓", "lower", _added_ttfb),
        Metric("RSS at ready (MiB) ↓", "lower", _mib("rss_ready"), 0),
        Metric("RSS after load (MiB) ↓", "lower", _mib("rss_after_load"), 0),
        Metric("start-up to first answer (s) ↓", "lower", _startup),
    ]
    return rows


def _fmt(v: Any, digits: int) -> str:
    if v is None:
        return "–"
    if isinstance(v, tuple):
        return " / ".join(_fmt(x, digits) for x in v)
    if digits == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def _ratio(a: Any, b: Any) -> str:
    if a is None or b is None:
        return "–"
    if isinstance(a, tuple):
        return " / ".join(_ratio(x, y) for x, y in zip(a, b, strict=True))
    if b <= 0 or a <= 0:
        return "n/a" if b <= 0 else "≤0"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def table(results: dict[str, Any]) -> str:
    """The Markdown table of a run's `results` (as saved in JSON)."""
    rows: dict[str, Row] = results["targets"]
    order = [n for n in results["order"] if n in rows]
    direct = rows.get("direct", {})
    ok = [n for n in order if not rows[n].get("error")]
    emancipates = [n for n in ok if rows[n]["kind"] == "emancipate"]
    peers = [n for n in ok if rows[n]["kind"] == "peer"]
    pairs = [(e, p) for e in emancipates for p in peers]
    head = ["", *(rows[n]["label"] for n in order)]
    head += [f"{rows[e]['label']} / {rows[p]['label']}" for e, p in pairs]
    out = ["| " + " | ".join(head) + " |",
           "|---|" + "---:|" * (len(head) - 1)]
    s = results["settings"]
    for m in metrics(s["concurrency"], s["stream_c"], s.get("paced_rate") or 0.0):
        vals = {n: (m.get(rows[n], direct) if not rows[n].get("error") else None)
                for n in order}
        cells = [m.label, *(_fmt(vals[n], m.digits) for n in order)]
        cells += [_ratio(vals[e], vals[p]) for e, p in pairs]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def notes(results: dict[str, Any]) -> list[str]:
    """Failures, errors and noise worth reading next to the table."""
    out = []
    for name in results["order"]:
        row = results["targets"].get(name)
        if not row:
            continue
        if row.get("error"):
            out.append(f"{row['label']}: not measured: {row['error']}")
            continue
        runs = [*(row.get("nonstream") or {}).values(),
                *(row[k] for k in ("paced", "stream") if row.get(k))]
        errs = sum(r.get("errors", 0) for r in runs)
        if errs:
            out.append(f"{row['label']}: {errs} failed requests under load (wrk errors); "
                       "its figures count them")
        noise = []
        if row.get("busy_before", 0.0) >= 0.15:
            noise.append(f"started while other processes kept {row['busy_before']:.0%} of a "
                         "core busy")
        other = max((r.get("core0_other", 0.0) for r in runs), default=0.0)
        if other > 0.10:
            noise.append(f"other processes took up to {other:.0%} of the gateway core during "
                         "its runs")
        if noise:
            out.append(f"{row['label']}: noisy: {'; '.join(noise)}")
    return out


def section(results: dict[str, Any]) -> str:
    """The generated part of the docs section: context, command, table, notes."""
    m, s = results["machine"], results["settings"]
    versions = ", ".join(f"{results['targets'][n]['label']} {v}"
                         for n, v in results.get("versions", {}).items() if v)
    lines = [
        f"Run of {results['date']} on {m['nproc']} cores ({m['cpu_model']}), "
        f"{m['mem_gib']:.0f} GiB, {m['kernel']}; Python {m['python']}, Node {m['node']}, "
        f"wrk {m['wrk']}. Commit `{results.get('commit', '?')}`.",
        "",
        f"Command: `{results['command']}` ({s['duration']:g} s per measured run after "
        f"{s['warmup']:g} s of warm-up; streaming: 22 events; time to first event: "
        f"{s['ttfb_requests']} sequential streams paced at {s['pace_ms']:g} ms per event).",
        "",
        f"Versions: {versions}.",
        "",
        f"Load average before / after: {m['loadavg_before']} / {m['loadavg_after']} "
        "(the machine is shared with other engineers' test runs: expect noise).",
        "",
        table(results),
        "",
    ]
    lines += [f"- {n}" for n in notes(results)]
    return "\n".join(lines).rstrip() + "\n"


def write_docs(path: Path, results: dict[str, Any], intro: str) -> None:
    """Replace the generated block of this bench's section, creating what is missing."""
    block = f"{MARK_BEGIN}\n{section(results)}{MARK_END}"
    text = path.read_text() if path.exists() else ""
    if MARK_BEGIN in text and MARK_END in text:
        pattern = re.escape(MARK_BEGIN) + r".*?" + re.escape(MARK_END)
        text = re.sub(pattern, lambda _: block, text, count=1, flags=re.S)
    elif SECTION in text:
        i = text.index(SECTION) + len(SECTION)
        text = text[:i] + "\n\n" + block + "\n" + text[i:]
    else:
        text = (text.rstrip() + "\n\n" if text else "") + f"{SECTION}\n\n{intro}\n\n{block}\n"
    path.write_text(text)
