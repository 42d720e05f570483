"""`emancipate admin`: create, list and revoke admin identities (keys with a role)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from emancipate.clikit import ConfigOption, JsonOption, open_ledger, table

app = typer.Typer(help="Admin identities: keys for the admin API and dashboard, each with a "
                  "role (viewer, operator, admin).", no_args_is_help=True,
                  add_completion=False)

_COLUMNS = ["id", "name", "role", "hint", "status", "created_at"]


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="who holds the key (a person, a tool)")],
    role: Annotated[str, typer.Option(
        "--role", help="viewer (reads), operator (also keys and teams) or admin (also "
        "admin identities)")] = "viewer",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an admin key; its secret is printed once."""
    from emancipate.auth.admins import AdminStore

    ledger = open_ledger(config)
    try:
        info, secret = AdminStore(ledger.engine).create(name, role)
    except ValueError as exc:
        typer.echo(f"emancipate: invalid {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        ledger.close()
    out = info.to_dict()
    if as_json:
        typer.echo(json.dumps({**out, "key": secret}, indent=2))
        return
    typer.echo(f"Created admin key {out['id']} ({out['name']}, role {out['role']}). The "
               "secret, shown only this once:")
    typer.echo(f"\n    {secret}\n")
    typer.echo("Store it now: the gateway keeps only its hash.", err=True)


@app.command("list")
def list_admins(
    active: Annotated[bool, typer.Option("--active", help="hide revoked keys")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List admin identities (never their secrets)."""
    from emancipate.auth.admins import AdminStore

    ledger = open_ledger(config)
    try:
        admins = [a.to_dict() for a in AdminStore(ledger.engine).list(not active)]
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(admins, indent=2))
    elif not admins:
        typer.echo("no admin keys yet: emancipate admin create --name NAME --role ROLE")
    else:
        for a in admins:
            a["created_at"] = a["created_at"][:19].replace("T", " ")
        typer.echo(table(admins, _COLUMNS))


@app.command()
def revoke(
    admin_id: Annotated[str, typer.Argument(metavar="ID", help="the admin key id (adm_…)")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an admin key for good (running gateways refuse it within auth.key_cache_ttl)."""
    from emancipate.auth.admins import AdminNotFound, AdminStore

    ledger = open_ledger(config)
    try:
        info = AdminStore(ledger.engine).revoke(admin_id).to_dict()
    except AdminNotFound:
        typer.echo(f"emancipate: no admin key with id {admin_id!r}", err=True)
        raise typer.Exit(1) from None
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(f"Revoked admin key {info['id']} ({info['name']}) at {info['revoked_at']}")
