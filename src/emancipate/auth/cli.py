"""`emancipate keys`: create, list, rotate and revoke virtual keys (secrets shown once)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from emancipate.clikit import ConfigOption, JsonOption, open_ledger, table

if TYPE_CHECKING:
    from emancipate.auth.keys import KeyStore
    from emancipate.ledger.store import Ledger

app = typer.Typer(help="Virtual API keys: scopes, budgets, rate limits.",
                  no_args_is_help=True, add_completion=False)

_COLUMNS = ["id", "name", "team", "models", "budget_day", "budget_month", "rpm", "tpm",
            "hint", "status", "created_at", "expires_at"]


def _store(config: Path | None) -> tuple[Ledger, KeyStore]:
    from emancipate.auth.keys import KeyStore

    ledger = open_ledger(config)
    return ledger, KeyStore(ledger.engine)


@contextlib.contextmanager
def _existing_key(config: Path | None, key_id: str) -> Iterator[KeyStore]:
    """The key store, for a change to one key; a missing or revoked key exits 1."""
    from emancipate.auth.keys import KeyNotFound, KeyRevoked

    ledger, store = _store(config)
    try:
        yield store
    except KeyNotFound:
        typer.echo(f"emancipate: no key with id {key_id!r}", err=True)
        raise typer.Exit(1) from None
    except KeyRevoked:
        typer.echo(f"emancipate: key {key_id!r} is revoked; create a new one", err=True)
        raise typer.Exit(1) from None
    finally:
        ledger.close()


def _show_secret(info: dict[str, Any], secret: str, as_json: bool, verb: str) -> None:
    if as_json:
        typer.echo(json.dumps({**info, "key": secret}, indent=2))
        return
    typer.echo(f"{verb} key {info['id']} ({info['name']}). The secret, shown only this once:")
    typer.echo(f"\n    {secret}\n")
    typer.echo("Store it now: the gateway keeps only its hash.", err=True)


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="a label for the key")],
    team: Annotated[Optional[str], typer.Option(help="team charged for its usage")] = None,  # noqa: UP045
    models: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="comma-separated model names or patterns (gpt-*); default: every model")] = None,
    budget_day: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--budget-day", help="spend per UTC day, in the ledger currency")] = None,
    budget_month: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--budget-month", help="spend per UTC month")] = None,
    rpm: Annotated[Optional[int], typer.Option(help="requests per minute")] = None,  # noqa: UP045
    tpm: Annotated[Optional[int], typer.Option(help="tokens per minute")] = None,  # noqa: UP045
    expires_at: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--expires-at", help="ISO 8601 date or date-time the key stops working (UTC unless "
        "it has an offset)")] = None,
    expires_in: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--expires-in", help="lifetime from now: 90d, 12h, 30m, 2w or seconds")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; its secret is printed once."""
    from emancipate.auth.keys import expiry_at, expiry_in

    allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if expires_at is not None and expires_in is not None:
        typer.echo("emancipate: give --expires-at or --expires-in, not both", err=True)
        raise typer.Exit(2)
    ledger, store = _store(config)
    try:
        expiry = (expiry_in(expires_in) if expires_in is not None
                  else expiry_at(expires_at) if expires_at is not None else None)
        info, secret = store.create(name, team=team, models=allowed,
                                    budget_day=budget_day, budget_month=budget_month,
                                    rpm=rpm, tpm=tpm, expires_at=expiry)
    except ValueError as exc:
        typer.echo(f"emancipate: invalid {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        ledger.close()
    _show_secret(info.to_dict(), secret, as_json, "Created")


@app.command("list")
def list_keys(
    active: Annotated[bool, typer.Option("--active", help="hide revoked and expired keys")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List keys (never their secrets)."""
    ledger, store = _store(config)
    try:
        keys = [k.to_dict() for k in store.list(not active)]
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
    elif not keys:
        typer.echo("no keys yet: emancipate keys create --name NAME")
    else:
        for k in keys:
            for column in ("created_at", "expires_at"):
                if k[column]:
                    k[column] = k[column][:19].replace("T", " ")
        typer.echo(table(keys, _COLUMNS))


@app.command()
def rotate(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key id (key_…)")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a key a new secret (printed once); the old secret stops working."""
    with _existing_key(config, key_id) as store:
        info, secret = store.rotate(key_id)
    _show_secret(info.to_dict(), secret, as_json, "Rotated")


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key id (key_…)")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key for good (running gateways refuse it within auth.key_cache_ttl)."""
    with _existing_key(config, key_id) as store:
        info = store.revoke(key_id).to_dict()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(f"Revoked key {info['id']} ({info['name']}) at {info['revoked_at']}")
