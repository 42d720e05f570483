"""Leave-subjects-out evaluation of the independence router on the shared MMLU routing data.

Every subject (CSV file) is held out in turn: a router is trained by the product's own
`train_router` on the other subjects (its calibration folds are by subject too) and scores the
held-out subject's prompts. The held-out scores of all subjects are pooled and measured as
the RouteLLM paper does (APGR, CPT(50%), CPT(80%), 10 equal-count bins), next to a random
router and the prompt-length rule. It also checks the calibration: does the threshold each
fold's router picks for a quality floor deliver that floor on the subject it never saw?
And it times the routing decision (score + compare) per prompt.

    .venv/bin/python bench/router_eval.py            # about 10-15 min on 2 cores
    .venv/bin/python bench/router_eval.py --folds 6  # grouped 6-fold, faster

Writes bench/results/router_eval.json and bench/results/router_eval.png.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emancipate.routing.learned import IndependenceRouter, train_router
from emancipate.routing.learned_data import read_csvs
from emancipate.routing.learned_metrics import (
    evaluate_scores,
    length_scores,
    plot_curves,
    random_baseline,
)

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data" / "routing" / "mmlu"
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def folds_of(groups: list[str], k: int | None) -> list[list[str]]:
    """Leave-one-subject-out (k None), or k folds of whole subjects balanced by size."""
    subjects = sorted(set(groups))
    if k is None or k >= len(subjects):
        return [[s] for s in subjects]
    sizes = {s: groups.count(s) for s in subjects}
    bins: list[list[str]] = [[] for _ in range(k)]
    load = [0] * k
    for s in sorted(subjects, key=lambda s: -sizes[s]):
        i = load.index(min(load))
        bins[i].append(s)
        load[i] += sizes[s]
    return bins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--strong", default=STRONG)
    ap.add_argument("--weak", default=WEAK)
    ap.add_argument("--folds", type=int, default=None, help="default: leave one subject out")
    ap.add_argument("--length-weight", default="1.25",
                    help="text-score sds per unit of log length, or 'learn'")
    ap.add_argument("--max-features", type=int, default=50_000, help="vocabulary size cap")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "router_eval")
    args = ap.parse_args()
    args.length_weight = None if args.length_weight == "learn" else float(args.length_weight)

    data = read_csvs([args.data], args.strong, args.weak)
    groups = np.array(data.groups)
    oof = np.zeros(len(data))
    floors = (0.8, 0.9, 0.95)
    realised: dict[float, list[tuple[int, int, float]]] = {f: [] for f in floors}
    fold_list = folds_of(data.groups, args.folds)
    started = time.time()
    for i, held in enumerate(fold_list, 1):
        te = np.isin(groups, held)
        router = train_router(data.subset(~te), length_weight=args.length_weight,
                              max_features=args.max_features)
        idx = np.flatnonzero(te)
        oof[idx] = router.score_many([data.prompts[j] for j in idx])
        for f in floors:
            t = router.threshold_for(quality_floor=f)
            home = oof[idx] < t
            # (prompts kept in-house, prompts, strong-minus-routed correctness lost)
            lost = float(np.sum(np.where(home, data.strong[idx] - data.weak[idx], 0.0)))
            realised[f].append((int(home.sum()), len(idx), lost))
        print(f"[{i}/{len(fold_list)}] held out {', '.join(held)} "
              f"({te.sum()} prompts, {time.time() - started:.0f}s)", file=sys.stderr, flush=True)

    s, w = data.strong, data.weak
    results = [
        evaluate_scores("independence router", oof, s, w),
        random_baseline(s, w),
        evaluate_scores("prompt length", length_scores(data.prompts), s, w),
    ]
    gap = float(np.sum(s - w))
    calibration_check = {
        str(f): {
            "inhouse_share": sum(r[0] for r in realised[f]) / len(data),
            "gap_recovered": 1.0 - sum(r[2] for r in realised[f]) / gap,
        }
        for f in floors
    }

    # routing decision latency: score + compare, one prompt at a time, with a router trained
    # on everything (what `emancipate router train` ships)
    full = train_router(data, length_weight=args.length_weight, max_features=args.max_features)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        router_path = Path(tmp) / "router.json"
        full.save(router_path)
        router_bytes = router_path.stat().st_size
        t0 = time.perf_counter()
        loaded = IndependenceRouter.load(router_path)
        load_ms = (time.perf_counter() - t0) * 1000
    threshold = loaded.threshold_for(quality_floor=0.95)
    lat = []
    for _ in range(3):
        for p in data.prompts:
            a = time.perf_counter_ns()
            _ = loaded.score(p) < threshold
            lat.append(time.perf_counter_ns() - a)
    lat.sort()
    p50 = lat[len(lat) // 2] / 1000
    p99 = lat[int(len(lat) * 0.99)] / 1000

    out = {
        "command": " ".join(["python", "bench/router_eval.py", *sys.argv[1:]]),
        "data": str(args.data), "strong": args.strong, "weak": args.weak,
        "prompts": len(data), "subjects": len(set(data.groups)),
        "folds": "leave-one-subject-out" if args.folds is None else f"{args.folds} by subject",
        "length_weight": args.length_weight, "max_features": args.max_features,
        "results": [r.as_dict() for r in results],
        "calibration_check_on_unseen_subjects": calibration_check,
        "decision_latency_us": {"p50": p50, "p99": p99, "mean": statistics.fmean(lat) / 1000},
        "router_file": {"bytes": router_bytes,
                        "load_ms": load_ms, "terms": len(loaded.terms)},
        "seconds": round(time.time() - started, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1))
    plot_curves(results, args.out.with_suffix(".png"),
                title="MMLU, leave-subjects-out: GPT-4 vs Mixtral-8x7B")

    def pct(x: float) -> str:
        return "  n/a " if x is None or math.isnan(x) else f"{100 * x:5.1f}%"

    print(f"{len(data)} prompts, {out['subjects']} subjects, {out['folds']}; "
          f"strong {100 * s.mean():.1f}% weak {100 * w.mean():.1f}%")
    print(f"{'router':22s} {'APGR':>6s} {'CPT50':>7s} {'CPT80':>7s}")
    for r in results:
        print(f"{r.name:22s} {r.apgr:6.3f} {pct(r.cpt50):>7s} {pct(r.cpt80):>7s}")
    for f, c in calibration_check.items():
        print(f"quality floor {f}: on unseen subjects kept {pct(c['inhouse_share'])} in-house, "
              f"recovered {pct(c['gap_recovered'])} of the gap")
    print(f"decision latency p50 {p50:.1f} us, p99 {p99:.1f} us; router file "
          f"{out['router_file']['bytes'] / 1e6:.1f} MB, loads in {load_ms:.0f} ms")


if __name__ == "__main__":
    main()
