"""The `emancipate` command."""

from __future__ import annotations

import http.client
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import urlsplit

import typer

from emancipate.clikit import ConfigOption, load
from emancipate.config import ConfigError, GatewayConfig

app = typer.Typer(help="emancipate: an OpenAI-compatible gateway that keeps you independent.",
                  no_args_is_help=True, add_completion=False)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

def load_or_exit(path: Path | None) -> GatewayConfig:
    """Load config; on error print `file: key: reason` and exit 2 (never a traceback)."""
    return load(path)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[Optional[str], typer.Option(help="override server.host")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(help="override server.port")] = None,  # noqa: UP045
) -> None:
    """Start the gateway (embedded in-house model and SQLite when no config is given)."""
    cfg = load_or_exit(config)
    from emancipate.server import run

    try:
        run(cfg, host=host, port=port)
    except ConfigError as exc:  # raised by a stage at start-up: name the file it came from
        if exc.source == "<config>":
            source = config or os.environ.get("EMANCIPATE_CONFIG") or "<embedded defaults>"
            exc = ConfigError(str(source), exc.key, exc.reason)
        typer.echo(f"emancipate: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def models(config: ConfigOption = None) -> None:
    """List the public model names (routes) and the targets behind each."""
    cfg = load_or_exit(config)
    for name, route in sorted(cfg.routes.items()):
        targets = ", ".join(
            f"{t.provider}/{t.model} ({cfg.providers[t.provider].ownership})"
            for t in route.targets
        )
        typer.echo(f"{name}\t{route.strategy}\t{targets}")


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="the user message")],
    model: Annotated[str, typer.Option("--model", "-m")] = "default",
    url: Annotated[str, typer.Option(envvar="EMANCIPATE_URL", help="gateway base URL")] = (
        "http://127.0.0.1:8000"
    ),
    key: Annotated[Optional[str], typer.Option(envvar="EMANCIPATE_API_KEY",  # noqa: UP045
                                               help="virtual key")] = None,
    max_tokens: Annotated[Optional[int], typer.Option()] = None,  # noqa: UP045
) -> None:
    """Send one message to a running gateway and stream the answer to stdout."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=600)
    body: dict[str, object] = {"model": model, "stream": True,
                               "messages": [{"role": "user", "content": prompt}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        conn.request("POST", parts.path.rstrip("/") + "/v1/chat/completions",
                     json.dumps(body), headers)
        resp = conn.getresponse()
    except OSError as exc:
        typer.echo(f"emancipate: cannot reach the gateway at {url} ({exc})", err=True)
        raise typer.Exit(1) from None
    if resp.status != 200:
        try:
            message = json.loads(resp.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {resp.status}"
        typer.echo(f"emancipate: {message}", err=True)
        raise typer.Exit(1)
    served = f"{resp.getheader('x-emancipate-provider')}/{resp.getheader('x-emancipate-model')}"
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        if "error" in event:
            typer.echo(f"\nemancipate: {event['error']['message']}", err=True)
            raise typer.Exit(1)
        for choice in event.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
    sys.stdout.write("\n")
    typer.echo(f"[served by {served}]", err=True)


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="gateway YAML file")]) -> None:
    """Validate a config file; print what it declares, or the file, key and reason."""
    cfg = load_or_exit(file)
    typer.echo(f"{file}: OK — {len(cfg.providers)} providers, {len(cfg.routes)} routes")
    for name, p in cfg.providers.items():
        typer.echo(f"  provider {name}: {p.kind}, {p.ownership}, vendor {p.vendor}")


def _mount_stage_clis() -> None:
    """Each stage that has a CLI contributes its own sub-command."""
    from importlib import import_module

    for module, name in (
        ("emancipate.guard.cli", "guard"),
        ("emancipate.routing.cli", "router"),
        ("emancipate.auth.cli", "keys"),
        ("emancipate.auth.admin_cli", "admin"),
        ("emancipate.auth.team_cli", "teams"),
        ("emancipate.ledger.cli", "usage"),
        ("emancipate.ledger.maintenance", "ledger"),
        ("emancipate.report.cli", "report"),
    ):
        try:
            sub = import_module(module).app
        except (ImportError, AttributeError):
            continue
        app.add_typer(sub, name=name)


_mount_stage_clis()


def main() -> None:
    app()
