"""What the CLI commands share: finding the config and the database, printing tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Option("--config", "-c", help="gateway YAML file (default: $EMANCIPATE_CONFIG, "
                 "else the embedded defaults: in-house model, ./emancipate.db)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def load(path: Path | None) -> Any:
    """The gateway config, or exit 2 with `file: key: reason`."""
    from emancipate.config import ConfigError, load_config

    if path is None and os.environ.get("EMANCIPATE_CONFIG"):
        path = Path(os.environ["EMANCIPATE_CONFIG"])
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"emancipate: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def open_ledger(path: Path | None) -> Any:
    """The ledger on the configured database (migrated to head), or exit 1 with the reason."""
    from sqlalchemy.exc import SQLAlchemyError

    from emancipate.ledger.store import Ledger

    cfg = load(path)
    try:
        return Ledger.open(cfg.server.database_url, cfg.ledger)
    except SQLAlchemyError as exc:
        typer.echo(f"emancipate: cannot open the database {_safe(cfg.server.database_url)}: "
                   f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database_url>"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain aligned text table."""
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1000 else f"{v:.2f}"
        if isinstance(v, list):
            return ",".join(map(str, v))
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)
