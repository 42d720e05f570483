"""`emancipate guard …`: try the leak guard and the policy on a file before deploying them.

Output never contains a detected value: only classes, detectors and character offsets (and
line:column in the table, to find them in the file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from emancipate.context import Finding, Principal, Target
from emancipate.guard import Guard, Unscannable
from emancipate.guard.config import GuardConfig
from emancipate.guard.view import describe

app = typer.Typer(help="Leak guard: scan a text or a request for sensitive data.",
                  no_args_is_help=True, add_completion=False)

ConfigOpt = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Option("--config", "-c", help="gateway YAML (its guard: and policy: sections); "
                 "default: $EMANCIPATE_CONFIG, else the built-in defaults"),
]


def _load(config: Path | None) -> Any:
    from emancipate.clikit import load

    return load(config)


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        typer.echo(f"emancipate: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{col}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


@app.command()
def scan(
    file: Annotated[str, typer.Argument(help="text file to scan, or - for standard input")],
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of findings")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print the findings of a text: class, detector and offsets (never the values)."""
    cfg = _load(config)
    guard_cfg: GuardConfig = cfg.guard
    text = _read(file)
    try:
        findings = Guard.from_config(guard_cfg).scan(text)
    except Unscannable as exc:
        typer.echo(f"emancipate: unscannable: {exc}; the gateway refuses such a request or "
                   "keeps it in-house (guard.over_budget)", err=True)
        raise typer.Exit(3) from None
    if as_json:
        typer.echo(json.dumps([{"class": f.cls, "detector": f.detector, "start": f.start,
                                "end": f.end} for f in findings]))
        return
    if not findings:
        typer.echo("clean: no finding")
        return
    rows = [[f.cls, f.detector, str(f.start), str(f.end), _line_col(text, f.start)]
            for f in findings]
    typer.echo(_table(rows, ["class", "detector", "start", "end", "line:col"]))
    typer.echo(f"{len(findings)} finding(s)")


@app.command()
def plan(
    file: Annotated[str, typer.Argument(help="a chat-completions JSON body, a text, or -")],
    config: ConfigOpt = None,
    model: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--model", "-m", help="route whose targets to plan for (default: the body's model)")
    ] = None,
    team: Annotated[Optional[str], typer.Option(help="caller's team")] = None,  # noqa: UP045
    key: Annotated[str, typer.Option(help="caller's key id")] = "anonymous",
    show_bodies: Annotated[bool, typer.Option(
        "--show-bodies", help="print the (redacted) messages each external target would get")
    ] = False,
) -> None:
    """What the policy would do with a request: eligible targets, redactions, decisions."""
    from emancipate.policy import Policy

    cfg = _load(config)
    raw = _read(file)
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise ValueError
    except ValueError:
        body = {"messages": [{"role": "user", "content": raw}]}
    route_name = model or body.get("model") or "default"
    route = cfg.routes.get(route_name)
    if route is None:
        typer.echo(f"emancipate: no route {route_name!r} (routes: "
                   f"{', '.join(sorted(cfg.routes)) or 'none'})", err=True)
        raise typer.Exit(2)
    targets = [Target(t.provider, t.model, cfg.providers[t.provider].vendor,
                      cfg.providers[t.provider].ownership, t.weight) for t in route.targets]
    findings: list[Finding] = Guard.from_config(cfg.guard).scan_request(body)
    result = Policy.from_config(cfg).plan(body, findings, targets,
                                          Principal(key_id=key, name=key, team=team))
    typer.echo(f"route {route_name}: {len(findings)} finding(s)")
    for f in findings:
        typer.echo(f"  {describe(f.path)} {f.cls}/{f.detector} {f.start}-{f.end}")
    for d in result.decisions:
        typer.echo(f"  {d.target or '-'}: {d.action} by {d.rule}: {d.reason}")
    if result.blocked is not None:
        typer.echo(f"BLOCKED (403 policy_blocked) by rule '{result.blocked.rule}': "
                   f"{result.blocked.reason}")
        return
    for t in result.targets:
        redacted = result.restorer_for(t) is not None
        typer.echo(f"eligible: {t.id} ({t.ownership}){' redacted' if redacted else ''}")
        if show_bodies and redacted:
            for m in result.body_for(t, body)["messages"]:
                typer.echo(f"    {m.get('role')}: {json.dumps(m.get('content'))[:400]}")
