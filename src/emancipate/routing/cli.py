"""`emancipate router`: train, apply and measure the independence router.

Every form works on any data in the RouteLLM layout (a `prompt` column and one True/False or
0/1 correctness column per model), so an organisation can evaluate on its own data.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from emancipate.clikit import ConfigOption

app = typer.Typer(help="Train, apply and measure the independence router.",
                  no_args_is_help=True, add_completion=False)

DataOpt = Annotated[
    Optional[list[Path]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--data", help="CSV file or directory of CSV files (repeatable; more paths "
                 "may follow it: --data a.csv b/ c.csv)"),
]
MorePaths = Annotated[
    Optional[list[Path]],  # noqa: UP045
    typer.Argument(help="more data paths, so that `--data PATH PATH…` works", show_default=False),
]
StrongOpt = Annotated[str, typer.Option("--strong", help="column: the strong (external) model")]
WeakOpt = Annotated[str, typer.Option("--weak", help="column: the weak (in-house) model")]
RouterOpt = Annotated[Path, typer.Option("--router", help="router file from `router train`")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"emancipate router: {message}", err=True)
    return typer.Exit(2)


def _paths(data: list[Path] | None, more: list[Path] | None) -> list[Path]:
    paths = list(data or []) + list(more or [])
    if not paths:
        raise _fail("--data PATH is required (a CSV file or a directory of CSV files)")
    return paths


def _load_router(path: Path):  # -> IndependenceRouter (imported lazily: keep the CLI fast)
    from emancipate.routing.learned import IndependenceRouter, RouterFileError

    try:
        return IndependenceRouter.load(path)
    except RouterFileError as exc:
        raise _fail(str(exc)) from None


def _read(paths: list[Path], strong: str, weak: str):
    from emancipate.routing.learned_data import DataError, read_csvs

    try:
        return read_csvs(paths, strong, weak)
    except (DataError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(str(exc)) from None


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _save(router, out: Path) -> None:  # an IndependenceRouter
    try:
        router.save(out)
    except OSError as exc:
        raise _fail(f"{out}: cannot write ({exc})") from None


def _print_heldout(router) -> None:  # an IndependenceRouter
    """Held-out-group figures beside the length rule's, and a warning when not better."""
    h = router.heldout
    if h.get("apgr") is None:
        return
    typer.echo(f"held out ({h['method']}): APGR {h['apgr']:.3f}, CPT(50%) {_pct(h['cpt50'])}; "
               f"prompt-length rule APGR {h['length_apgr']:.3f}, CPT(50%) "
               f"{_pct(h['length_cpt50'])}")
    words = (f"words admitted at weight {h['words_weight']}" if h.get("words_weight")
             else f"words not admitted (held-out gain {h.get('words_gain', 0.0):+.3f})")
    typer.echo(f"feature families kept: {', '.join(h.get('families_kept', []))}; {words}")
    if not router.calibration_applies():
        typer.echo("warning: the router is not better than the prompt-length rule on held-out "
                   "groups: its calibration does not apply (the gateway will say so at start-up "
                   "and in /readyz)", err=True)


def _print_floors(router) -> None:  # an IndependenceRouter
    """The calibrated threshold and in-house share at a few quality floors."""
    for floor in (0.8, 0.9, 0.95, 0.99):
        t = router.threshold_for(quality_floor=floor)
        est = router.estimate(t)
        typer.echo(f"  quality floor {floor:.2f}: threshold {t:.4f}, "
                   f"in-house {_pct(est['inhouse_share'])} (held-out estimate)")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="router file to write (JSON)")],
    data: DataOpt = None,
    more: MorePaths = None,
    strong: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--strong", help="column: the strong (external) model")] = None,
    weak: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--weak", help="column: the weak (in-house) model")] = None,
    from_ledger: Annotated[bool, typer.Option(
        "--from-ledger", help="retrain on shadow verdicts from the ledger (needs "
        "shadow.keep_prompts: true)")] = False,
    config: ConfigOption = None,
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--since", help="--from-ledger: only verdicts since (7d, 24h, or an ISO date)")] = None,
    route: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--route", help="--from-ledger: only this route's verdicts")] = None,
) -> None:
    """Learn which prompts need the strong model, and calibrate thresholds on held-out data."""
    if from_ledger:
        if data or more or strong or weak:
            raise _fail("--from-ledger trains on shadow verdicts: drop --data/--strong/--weak")
        _train_from_ledger(out, config, since, route)
        return
    if config is not None or since is not None or route is not None:
        raise _fail("--config, --since and --route go with --from-ledger")
    if not strong or not weak:
        raise _fail("--strong COL and --weak COL are required (the two correctness columns)")
    from emancipate.routing.learned import train_router
    from emancipate.routing.learned_data import DataError

    dataset = _read(_paths(data, more), strong, weak)
    try:
        router = train_router(dataset)
    except DataError as exc:
        raise _fail(str(exc)) from None
    router.meta.update({"strong": strong, "weak": weak})
    _save(router, out)
    cal = router.calibration
    typer.echo(f"trained on {len(dataset)} prompts from {router.meta['n_files']} file(s) "
               f"in {router.meta['train_seconds']}s; wrote {out}")
    typer.echo(f"strong model {_pct(cal['strong_quality'])} correct, weak "
               f"{_pct(cal['weak_quality'])}; calibration: {cal['method']}")
    _print_heldout(router)
    _print_floors(router)


def ledger_dataset(rows: list[dict]):  # -> learned_data.Dataset
    """Shadow verdicts as labelled data: the external model is the reference (always
    "right"), the in-house one is right where the judge found it as good (`inhouse_ok`);
    so "strong needed" = not inhouse_ok. One group per route; judge errors are left out."""
    import numpy as np

    from emancipate.routing.learned_data import Dataset

    usable = [r for r in rows if r.get("prompt") and r.get("verdict") != "error"]
    return Dataset(
        prompts=[r["prompt"] for r in usable],
        strong=np.ones(len(usable)),
        weak=np.array([1.0 if r["inhouse_ok"] else 0.0 for r in usable]),
        groups=[r.get("route") or "ledger" for r in usable],
    )


def readiness_by_day(days: list[dict]) -> list[dict]:
    """Per-route rows of `Ledger.shadow_readiness` summed per day (all routes together)."""
    out: dict[str, dict] = {}
    for d in days:
        agg = out.setdefault(d["day"], {"day": d["day"], "verdicts": 0, "errors": 0,
                                        "inhouse_ok": 0})
        for k in ("verdicts", "errors", "inhouse_ok"):
            agg[k] += d[k]
    for agg in out.values():
        judged = agg["verdicts"] - agg["errors"]
        agg["readiness"] = round(agg["inhouse_ok"] / judged, 4) if judged else None
    return [out[k] for k in sorted(out)]


def _train_from_ledger(out: Path, config: Path | None, since: str | None,
                       route: str | None) -> None:
    from emancipate.clikit import open_ledger
    from emancipate.ledger.store import parse_since
    from emancipate.routing.learned import train_router
    from emancipate.routing.learned_data import DataError

    try:
        since_at = parse_since(since)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    ledger = open_ledger(config)
    try:
        rows = ledger.shadow_verdicts(since_at, route=route)
        days = ledger.shadow_readiness(since_at)
    finally:
        ledger.close()
    if route is not None:
        days = [d for d in days if d["route"] == route]
    scope = (f" for route {route!r}" if route else "") + (f" since {since}" if since else "")
    with_prompt = [r for r in rows if r.get("prompt")]
    dataset = ledger_dataset(rows)
    if not rows:
        raise _fail(f"0 shadow verdicts in the ledger{scope}; shadow a share of traffic with "
                    "routes.<name>.shadow_rate (e.g. 0.05) and shadow.keep_prompts: true, let "
                    "it run, then retry")
    if not with_prompt:
        raise _fail(f"{len(rows)} shadow verdicts{scope} but 0 with prompts; set "
                    "shadow.keep_prompts: true (prompts are kept only for requests in which the "
                    "guard found nothing) and let traffic accumulate")
    if len(dataset) < 10:
        raise _fail(f"only {len(dataset)} usable shadow verdicts with prompts{scope} "
                    f"({len(with_prompt) - len(dataset)} judge errors left out); need at "
                    "least 10: let more traffic be shadowed, or raise shadow_rate")
    try:
        router = train_router(dataset)
    except DataError as exc:
        ok = int(dataset.weak.sum())
        raise _fail(f"{exc} ({ok} of {len(dataset)} verdicts found the in-house answer as "
                    "good as the external one; both outcomes are needed)") from None
    trend = readiness_by_day(days)
    router.meta.update({"strong": "external", "weak": "in-house", "source": "ledger",
                        "since": since, "route": route, "readiness_by_day": trend})
    _save(router, out)
    typer.echo(f"trained on {len(dataset)} shadow verdicts from {router.meta['n_files']} "
               f"route(s) in {router.meta['train_seconds']}s; wrote {out}")
    typer.echo(f"in-house answer as good as the external one: "
               f"{_pct(float(dataset.weak.mean()))} of these prompts")
    typer.echo("estimated readiness per day (share of judged verdicts in-house ok):")
    for d in trend:
        typer.echo(f"  {d['day']}  {_pct(d['readiness']):>6s}  "
                   f"({d['verdicts']} verdicts, {d['errors']} errors)")
    _print_heldout(router)
    _print_floors(router)


@app.command()
def score(
    router: RouterOpt,
    input: Annotated[Path, typer.Option("--input", help="CSV with a `prompt` column")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write: prompt,score")],
) -> None:
    """Write `prompt,score` for every input row, in order (higher: more need of the strong)."""
    from emancipate.routing.learned_data import DataError, read_prompts

    r = _load_router(router)
    try:
        prompts = read_prompts(input)
    except (DataError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(str(exc)) from None
    try:
        with output.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt", "score"])
            for p in prompts:
                w.writerow([p, f"{r.score(p):.6f}"])
    except OSError as exc:
        raise _fail(f"{output}: cannot write ({exc})") from None
    typer.echo(f"scored {len(prompts)} prompts into {output}", err=True)


@app.command("eval")
def eval_(
    router: RouterOpt,
    strong: StrongOpt,
    weak: WeakOpt,
    data: DataOpt = None,
    more: MorePaths = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    plot: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--plot", help="save the quality/share curves as a PNG")] = None,
) -> None:
    """APGR, CPT(50%), CPT(80%) and the curve (RouteLLM's method), beside two baselines."""
    import numpy as np

    from emancipate.routing.learned_metrics import (
        evaluate_scores,
        length_scores,
        plot_curves,
        random_baseline,
    )

    r = _load_router(router)
    paths = _paths(data, more)
    ds = _read(paths, strong, weak)
    scores = np.array(r.score_many(ds.prompts))
    results = [
        evaluate_scores("router", scores, ds.strong, ds.weak),
        random_baseline(ds.strong, ds.weak),
        evaluate_scores("prompt-length", length_scores(ds.prompts), ds.strong, ds.weak),
    ]
    seen = sorted(set(ds.groups) & set(r.meta.get("files", [])))
    if plot is not None:
        try:
            plot_curves(results, plot, title=f"{strong} vs {weak}, {len(ds)} prompts")
        except OSError as exc:
            raise _fail(f"{plot}: cannot write ({exc})") from None
    if as_json:
        doc = {
            "prompts": len(ds), "strong": strong, "weak": weak,
            "strong_quality": float(ds.strong.mean()), "weak_quality": float(ds.weak.mean()),
            "files_seen_in_training": seen,
            "routers": [m.as_dict() for m in results],
        }
        typer.echo(json.dumps(doc, indent=1))
        return
    typer.echo(f"{len(ds)} prompts; strong {_pct(float(ds.strong.mean()))} correct, "
               f"weak {_pct(float(ds.weak.mean()))}")
    if seen:
        typer.echo(f"note: {len(seen)} of these files were in the router's training data: "
                   "its figures below are in-sample (optimistic)")
    typer.echo(f"{'router':15s} {'APGR':>6s} {'CPT(50%)':>9s} {'CPT(80%)':>9s}")
    for m in results:
        apgr = "n/a" if math.isnan(m.apgr) else f"{m.apgr:.3f}"
        typer.echo(f"{m.name:15s} {apgr:>6s} {_pct(m.cpt50):>9s} {_pct(m.cpt80):>9s}")
    typer.echo("\nrouter curve (10 equal-count score bins): threshold, strong calls, quality")
    for p in results[0].curve:
        typer.echo(f"  {p.threshold:9.4f}  {_pct(p.strong_share):>6s}  {_pct(p.quality):>6s}")
    if plot is not None:
        typer.echo(f"\nplot saved to {plot}")
