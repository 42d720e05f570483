"""The report as text (terminal) or as one self-contained HTML page with charts.

The HTML page inlines the dashboard's own Chart.js copy and chart code (``report.js``), so
the file opens offline and draws exactly what the dashboard's Independence and Protection
tabs draw. Every value reaches the page as JSON and is written with ``textContent``: a route
or vendor name can never inject markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | int) -> str:
    """Thousands separated; two decimals only for small fractional values."""
    return f"{x:,.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:,.2f}"


def render_table(report: dict[str, Any], trend_days: int = 14) -> str:
    """Plain text for a terminal: headline figures, then one aligned table per section."""
    from emancipate.clikit import table

    t = report["totals"]
    cur = report["currency"]
    c = report["concentration"]
    since = (report["since"] or "the first request")[:16].replace("T", " ")
    out = [
        f"Independence report since {since} UTC (generated {report['generated_at'][:16]}Z)",
        f"requests {_num(t['requests'])} (served {_num(t['served'])}, errors "
        f"{_num(t['errors'])}), tokens {_num(t['tokens'])}, spend {t['cost']:.2f} {cur}",
        f"in-house share: {_pct(t['inhouse_share_requests'])} of requests, "
        f"{_pct(t['inhouse_share_tokens'])} of tokens, {_pct(t['inhouse_share_cost'])} of spend",
        "",
    ]
    if not t["requests"]:
        out.append("no requests recorded in this period")
        return "\n".join(out)

    def shares(rows: list[dict[str, Any]], key: str) -> str:
        view = [{key: r[key], "requests": _num(r["requests"]),
                 "req_share": _pct(r["share_requests"]), "tokens": _num(r["tokens"]),
                 "tok_share": _pct(r["share_tokens"]), "cost": f"{r['cost']:,.2f}",
                 "cost_share": _pct(r["share_cost"]),
                 "failovers_survived": _num(r["failovers_survived"])} for r in rows]
        return table(view, [key, "requests", "req_share", "tokens", "tok_share", "cost",
                            "cost_share", "failovers_survived"])

    out += ["BY OWNERSHIP", shares(report["by_ownership"], "ownership"), ""]
    out += ["BY VENDOR", shares(report["by_vendor"], "vendor"), ""]
    out += [f"CONCENTRATION  HHI {c['hhi']:,.0f} ({c['band']}); external vendors only "
            f"{c['hhi_external']:,.0f} ({c['band_external']}); trend {c['hhi_direction']} "
            f"({c['hhi_slope_30d']:+,.0f} per 30 days); top vendor {c['top_vendor']} "
            f"at {_pct(c['top_share'])}", ""]

    out += _cache_lines(report)

    r = report["router"]
    out.append(f"ROUTER  kept in-house {_num(r['kept_in_house'])} of {_num(r['routed'])} "
               f"routed requests ({_pct(r['inhouse_share'])}); estimated quality cost "
               f"{r['expected_worse_answers']:,.1f} answers worse than external "
               f"({_pct(r['expected_worse_share'])} of those kept in-house)")
    if r["routes"]:
        out.append(table([{**g, "share": _pct(g["inhouse_share"]),
                           "worse_share": _pct(g["expected_worse_share"])}
                          for g in r["routes"]],
                         ["route", "kept_in_house", "sent_external", "share",
                          "expected_worse_answers", "worse_share"]))
    out.append("")

    p = report["protection"]
    out.append(f"LEAKS PREVENTED  {_num(p['leaks_prevented'])} (redacted {_num(p['redacted'])}, "
               f"kept in-house {_num(p['kept_in_house'])}, blocked {_num(p['blocked'])})")
    if p["by_class"]:
        out.append(table(p["by_class"], ["cls", "findings", "requests", "redacted",
                                         "kept_in_house", "blocked"]))
    out.append("")

    f = report["failovers"]
    out.append(f"FAILOVERS  survived {_num(f['survived'])} of {_num(f['multi_attempt'])} "
               "requests that needed more than one attempt")
    if f["failed_attempts"]:
        out.append(table(f["failed_attempts"][:10], ["target", "outcome", "attempts",
                                                     "requests"]))
    out.append("")

    s = report["shadow"]
    if s["routes"]:
        out.append("SHADOW READINESS (share of shadow comparisons the in-house answer passed)")
        out.append(table([{**g, "readiness": _pct(g["readiness"]),
                           "ci95": "-".join(_pct(x) for x in g["readiness_ci95"])}
                          for g in s["routes"]],
                         ["route", "verdicts", "errors", "inhouse_ok", "readiness", "ci95"]))
    else:
        out.append(f"SHADOW READINESS  {s['note'] or 'no shadow data'}")
    spend = s.get("spend") or {}
    if spend.get("by_vendor"):
        out.append(f"Shadow evaluation spend (not in the shares above): "
                   f"{spend['cost']:,.4f} {report['currency']}, {_num(spend['tokens'])} tokens")
        out.append(table([{**v, "cost": f"{v['cost']:,.4f}", "tokens": _num(v["tokens"])}
                          for v in spend["by_vendor"]],
                         ["vendor", "shadow_calls", "judge_calls", "tokens", "cost"]))
    out.append("")

    for w in report["what_if"]:
        head = f"WHAT-IF  route {w['route']}"
        if w.get("threshold") is not None:
            head += f" (current threshold {w['threshold']:.3f})"
        if w.get("error"):
            head += f": {w['error']}"
        out.append(head)
        if w.get("warning"):
            out.append(f"  warning: router {w['router']}: {w['warning']}")
        cols = ["threshold"] + [k for k in ("inhouse_share_heldout", "quality_heldout",
                                            "gap_recovered_heldout", "inhouse_share_live",
                                            "quality_live_est", "inhouse_ok_when_kept_live")
                                if any(k in pt for pt in w["points"])]
        if len(cols) > 1:
            out.append(table(w["points"][::2] if len(w["points"]) > 12 else w["points"], cols))
        out.append("")

    days = report["trend"][-trend_days:]
    if days:
        out.append(f"TREND (last {len(days)} days with traffic)")
        out.append(table([{**d, "requests": _num(d["requests"]), "tokens": _num(d["tokens"]),
                           "cost": f"{d['cost']:,.2f}", "hhi": f"{d['hhi']:,.0f}",
                           "inhouse": _pct(d["inhouse_share"]),
                           "readiness": _pct(d["shadow_readiness"])} for d in days],
                         ["day", "requests", "tokens", "cost", "inhouse", "hhi",
                          "kept_in_house", "findings", "failovers_survived", "readiness"]))
    return "\n".join(out).rstrip() + "\n"


def _cache_lines(report: dict[str, Any]) -> list[str]:
    """Vendor calls avoided by the response cache (nothing when no route is cached)."""
    from emancipate.clikit import table

    k = report.get("cache") or {}
    if not k.get("lookups"):
        return []
    out = [f"VENDOR CALLS AVOIDED BY CACHE  {_num(k['vendor_calls_avoided'])} "
           f"({_pct(k['avoided_share'])} of external calls); {_num(k['hits'])} hits "
           f"({_num(k['inhouse_hits'])} of in-house answers, {_num(k['semantic_hits'])} "
           f"semantic), hit rate {_pct(k['hit_rate'])} of {_num(k['lookups'])} requests on "
           f"cached routes; avoided {_num(k['tokens_avoided'])} tokens, "
           f"{k['cost_avoided']:,.2f} {report['currency']}"]
    if k["by_vendor"]:
        out.append(table([{**v, "tokens": _num(v["tokens"]), "cost": f"{v['cost']:,.4f}"}
                          for v in k["by_vendor"]],
                         ["vendor", "calls_avoided", "tokens", "cost"]))
    return [*out, ""]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Independence report</title>
<style>{css}</style></head>
<body class="report-page"><main id="report"></main>
<script id="report-data" type="application/json">{data}</script>
<script>{chart}</script>
<script>{js}</script>
<script>EmancipateReport.renderAll(document.getElementById("report"),
  JSON.parse(document.getElementById("report-data").textContent));</script>
</body></html>
"""


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page (no network needed): data, Chart.js and the chart code inline."""
    data = json.dumps(report, separators=(",", ":"))
    # inside <script>: no "</" (closing tag) nor "<!--" may appear in the JSON text
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.format(
        css=(STATIC / "dashboard.css").read_text(encoding="utf-8"),
        data=data,
        chart=(STATIC / "chart.umd.min.js").read_text(encoding="utf-8"),
        js=(STATIC / "report.js").read_text(encoding="utf-8"),
    )
