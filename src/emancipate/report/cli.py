"""`emancipate report`: the independence report in a terminal, as JSON, or as an HTML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from emancipate.clikit import ConfigOption, load, open_ledger

app = typer.Typer(help="The independence report from the ledger.", add_completion=False)

FORMATS = ("table", "json", "html")


@app.callback(invoke_without_command=True)
def report(
    since: Annotated[str, typer.Option(
        "--since", help="7d, 24h, 30m, an ISO date (UTC), or 'all'")] = "30d",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table|json|html")] = "table",
    config: ConfigOption = None,
    out: Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional
        "--out", "-o", help="write to this file instead of standard output")] = None,
    raw: Annotated[bool, typer.Option(
        "--raw", help="read every day from the detail rows instead of the daily summary "
        "(slower; days deleted by retention are missing)")] = False,
) -> None:
    """Shares by vendor and ownership, concentration, trend, router, leaks, failovers, what-if."""
    from emancipate.ledger.store import parse_since
    from emancipate.report import build_report, render_html, render_table

    if fmt not in FORMATS:
        typer.echo(f"emancipate: --format must be one of: {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    try:
        start = None if since.strip().lower() == "all" else parse_since(since)
    except ValueError as exc:
        typer.echo(f"emancipate: {exc}", err=True)
        raise typer.Exit(2) from None
    cfg = load(config)
    ledger = open_ledger(config)
    try:
        data = build_report(ledger.engine, start, cfg, source="raw" if raw else "summary")
    finally:
        ledger.close()
    if fmt == "json":
        text = json.dumps(data, indent=2)
    elif fmt == "html":
        text = render_html(data)
    else:
        text = render_table(data)
    if out is not None:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        typer.echo(f"report written to {out}", err=True)
    else:
        typer.echo(text.rstrip("\n"))
