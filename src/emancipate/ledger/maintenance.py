"""`emancipate ledger`: upkeep of the ledger database (`prune`)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from emancipate.clikit import ConfigOption, JsonOption, load, open_ledger

app = typer.Typer(help="Upkeep of the ledger database.", add_completion=False,
                  no_args_is_help=True)


@app.command()
def prune(
    older_than: Annotated[Optional[int], typer.Option(  # noqa: UP045 - typer needs Optional
        "--older-than", min=1, metavar="DAYS",
        help="delete the UTC days before today minus DAYS (default: ledger.retention_days)",
    )] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="count what would be deleted; delete nothing")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete old requests (attempts, decisions, findings, contents) and shadow verdicts.

    The daily summary is kept: the independence report still shows those days.
    """
    from emancipate.ledger.config import MIN_RETENTION_DAYS
    from emancipate.ledger.retention import cutoff_day
    from emancipate.ledger.retention import prune as prune_rows

    days = older_than if older_than is not None else load(config).ledger.retention_days
    if days is None:
        typer.echo("emancipate: give --older-than DAYS, or set ledger.retention_days in the "
                   "config", err=True)
        raise typer.Exit(2)
    if days < MIN_RETENTION_DAYS:
        typer.echo(f"emancipate: warning: keeping fewer than {MIN_RETENTION_DAYS} days: "
                   "monthly budgets of keys and teams will miss this month's deleted "
                   "requests", err=True)
    before = cutoff_day(days)
    ledger = open_ledger(config)
    try:
        counts = prune_rows(ledger.engine, before, dry_run=dry_run) or {}
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps({"before": before, "dry_run": dry_run,
                               "deleted": None if dry_run else counts,
                               "would_delete": counts if dry_run else None}, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} the rows of UTC days before {before}:")
    for name, n in counts.items():
        typer.echo(f"  {name:<16}{n:>12,}")
    typer.echo("the daily summary keeps those days' figures for the report")
