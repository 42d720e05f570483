"""`emancipate usage`: who used which vendor, for what, at what cost."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from emancipate.clikit import ConfigOption, JsonOption, open_ledger, table

app = typer.Typer(help="Usage aggregated from the ledger.", add_completion=False)

BY = ("key", "team", "vendor", "ownership", "model", "route", "target", "provider",
      "endpoint", "day")


@app.callback(invoke_without_command=True)
def usage(
    by: Annotated[str, typer.Option("--by", help="key|team|vendor|ownership|model|route|"
                                    "target|provider|endpoint|day")] = "key",
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional
        "--since", help="7d, 24h, 30m or an ISO date (UTC)")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Requests, errors, failovers, tokens, cost and latency per group (a table by default)."""
    from emancipate.ledger.store import parse_since

    if by not in BY:
        typer.echo(f"emancipate: --by must be one of: {', '.join(BY)}", err=True)
        raise typer.Exit(2)
    try:
        start = parse_since(since)
    except ValueError as exc:
        typer.echo(f"emancipate: {exc}", err=True)
        raise typer.Exit(2) from None
    ledger = open_ledger(config)
    try:
        rows = ledger.usage(by, start)
        currency = ledger.cfg.currency
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps({"by": by, "since": start.isoformat() if start else None,
                               "currency": currency, "data": rows}, indent=2))
        return
    if not rows:
        typer.echo("no requests recorded" + (f" since {start:%Y-%m-%d %H:%M} UTC" if start
                                             else ""))
        return
    columns = [by] + (["name"] if by == "key" else []) + [
        "requests", "errors", "failovers", "prompt_tokens", "completion_tokens", "cost",
        "share_cost", "avg_latency_ms"]
    typer.echo(table(rows, columns))
    total = sum(r["cost"] for r in rows)
    typer.echo(f"\ntotal: {sum(r['requests'] for r in rows)} requests, {total:.4f} {currency}")
