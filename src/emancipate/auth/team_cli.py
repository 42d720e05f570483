"""`emancipate teams`: create, list, change and delete teams (limits their keys inherit)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from emancipate.clikit import ConfigOption, JsonOption, open_ledger, table

app = typer.Typer(help="Teams: allowed models, budgets and rate limits shared by their keys.",
                  no_args_is_help=True, add_completion=False)

_COLUMNS = ["name", "models", "budget_day", "budget_month", "rpm", "tpm", "updated_at"]
_MODELS_HELP = "comma-separated model names or patterns (gpt-*)"
_CLEAR = "none"  # `teams update --rpm none`: remove that limit


def _models(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _show(info: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        limits = ", ".join(f"{k} {info[k]}" for k in _COLUMNS[1:6] if info[k] is not None)
        typer.echo(f"{verb} team {info['name']} ({limits or 'no limits'})")


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="the team label its keys carry")],
    models: Annotated[Optional[str], typer.Option(help=_MODELS_HELP)] = None,  # noqa: UP045
    budget_day: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--budget-day", help="spend per UTC day of all its keys together")] = None,
    budget_month: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--budget-month", help="spend per UTC month")] = None,
    rpm: Annotated[Optional[int], typer.Option(help="requests per minute")] = None,  # noqa: UP045
    tpm: Annotated[Optional[int], typer.Option(help="tokens per minute")] = None,  # noqa: UP045
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a team; keys created with --team NAME inherit its limits."""
    from emancipate.auth.teams import TeamExists, TeamStore

    ledger = open_ledger(config)
    try:
        info = TeamStore(ledger.engine).create(
            name, models=_models(models), budget_day=budget_day, budget_month=budget_month,
            rpm=rpm, tpm=tpm)
    except TeamExists:
        typer.echo(f"emancipate: a team named {name!r} exists; use emancipate teams update",
                   err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"emancipate: invalid {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        ledger.close()
    _show(info.to_dict(), as_json, "Created")


@app.command("list")
def list_teams(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List teams and their limits."""
    from emancipate.auth.teams import TeamStore

    ledger = open_ledger(config)
    try:
        teams = [t.to_dict() for t in TeamStore(ledger.engine).list()]
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(teams, indent=2))
    elif not teams:
        typer.echo("no teams yet: emancipate teams create --name NAME")
    else:
        for t in teams:
            t["updated_at"] = t["updated_at"][:19].replace("T", " ")
        typer.echo(table(teams, _COLUMNS))


@app.command()
def update(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the team")],
    models: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help=_MODELS_HELP + "; 'none' lifts the restriction")] = None,
    budget_day: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--budget-day", help="new daily budget, or 'none'")] = None,
    budget_month: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--budget-month", help="new monthly budget, or 'none'")] = None,
    rpm: Annotated[Optional[str], typer.Option(help="new rpm, or 'none'")] = None,  # noqa: UP045
    tpm: Annotated[Optional[str], typer.Option(help="new tpm, or 'none'")] = None,  # noqa: UP045
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change some of a team's limits (running gateways apply it within auth.key_cache_ttl)."""
    from emancipate.auth.teams import TeamNotFound, TeamStore

    changes: dict[str, Any] = {}
    try:
        if models is not None:
            changes["models"] = None if models == _CLEAR else _models(models)
        for field, value, kind in (("budget_day", budget_day, float),
                                   ("budget_month", budget_month, float),
                                   ("rpm", rpm, int), ("tpm", tpm, int)):
            if value is not None:
                changes[field] = None if value == _CLEAR else kind(value)
    except ValueError:
        typer.echo("emancipate: give numbers, or 'none' to remove a limit", err=True)
        raise typer.Exit(2) from None
    ledger = open_ledger(config)
    try:
        info = TeamStore(ledger.engine).update(name, changes)
    except TeamNotFound:
        typer.echo(f"emancipate: no team named {name!r}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"emancipate: invalid {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        ledger.close()
    _show(info.to_dict(), as_json, "Updated")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the team")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a team: its keys keep the label and lose the team's limits."""
    from emancipate.auth.teams import TeamNotFound, TeamStore

    ledger = open_ledger(config)
    try:
        info = TeamStore(ledger.engine).delete(name)
    except TeamNotFound:
        typer.echo(f"emancipate: no team named {name!r}", err=True)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
    _show(info.to_dict(), as_json, "Deleted")
