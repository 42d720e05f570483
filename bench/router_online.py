"""Online learning from shadow verdicts, simulated on the shared MMLU routing data.

The 29 subjects are dealt into three folds (a fixed shuffle); for each fold in turn a router
is trained by the product's `train_router` on the other two, and the fold's subjects (about
2,500 prompts from 9-10 subjects the router never saw) play the organisation's traffic.
Its prompts are shuffled and split: 60% arrive as a stream, each with a shadow verdict
(in-house answer as good as the external one = the weak model right or the strong one
wrong), which the route's `OnlineEstimate` learns from; the other 40% are the evaluation
set. After N verdicts the estimate scores the evaluation set and APGR is measured
(RouteLLM's method) beside the router alone and the prompt-length rule on the same prompts.
Averaged over the three folds and `--seeds` stream orders.

    .venv/bin/python bench/router_online.py            # about 2-3 min on 2 cores
    .venv/bin/python bench/router_online.py --quick    # one seed, fewer checkpoints

Writes bench/results/router_online.json and docs/img/router-online.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emancipate.routing.learned import IndependenceRouter, train_router  # noqa: E402
from emancipate.routing.learned_data import read_csvs  # noqa: E402
from emancipate.routing.learned_metrics import evaluate_scores  # noqa: E402
from emancipate.routing.online import OnlineEstimate  # noqa: E402
from router_eval import DATA, STRONG, WEAK  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = (0, 50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1400)


def run_domain(router: IndependenceRouter, prompts: list[str], strong: np.ndarray,
               weak: np.ndarray, seed: int, checkpoints: tuple[int, ...]) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(prompts))
    cut = int(0.6 * len(order))
    stream, held = order[:cut], order[cut:]
    parts = [router.parts(prompts[i]) for i in range(len(prompts))]
    s, w = strong[held], weak[held]
    length = evaluate_scores("length", np.array([len(prompts[i]) for i in held], float), s, w)
    alone = evaluate_scores("router", np.array([parts[i]["logit"] for i in held]), s, w)
    est = OnlineEstimate(idf=router.word_idf())
    out: dict[str, list] = {"n": [], "online": [], "router": [], "length": []}
    seen = 0
    for n in checkpoints:
        if n > len(stream):
            break
        for i in stream[seen:n]:
            ok = bool(weak[i] >= strong[i])
            est.observe(parts[i]["logit"], parts[i]["words"], ok, len(prompts[i]))
        seen = n
        scores = np.array([est.logit(parts[i]["logit"], parts[i]["words"]) for i in held])
        out["n"].append(n)
        out["online"].append(evaluate_scores("online", scores, s, w).apgr)
        out["router"].append(alone.apgr)
        out["length"].append(length.apgr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one seed, fewer checkpoints")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "router_online")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "router-online.png")
    args = ap.parse_args()
    seeds = 1 if args.quick else args.seeds
    checkpoints = CHECKPOINTS[::2] if args.quick else CHECKPOINTS
    started = time.time()
    data = read_csvs([args.data], STRONG, WEAK)
    subjects = sorted(set(data.groups))
    deal = np.random.default_rng(7).permutation(len(subjects))
    fold_of = {subjects[j]: f"fold {k % 3 + 1}" for k, j in enumerate(deal)}
    fold = np.array([fold_of[g] for g in data.groups])
    runs: dict[str, list[dict[str, list]]] = {}
    for d in sorted(set(fold.tolist())):
        te = fold == d
        router = train_router(data.subset(~te))
        idx = np.flatnonzero(te)
        prompts = [data.prompts[i] for i in idx]
        runs[d] = [run_domain(router, prompts, data.strong[idx], data.weak[idx], seed,
                              checkpoints) for seed in range(seeds)]
        print(f"{d}: {len(idx)} prompts of {sorted(set(np.array(data.groups)[idx]))} "
              f"({time.time() - started:.0f}s)", file=sys.stderr, flush=True)

    # mean over domains and seeds, at the checkpoints every domain reached
    reach = min(len(r["n"]) for rs in runs.values() for r in rs)
    ns = list(runs[next(iter(runs))][0]["n"][:reach])

    def mean(key: str) -> list[float]:
        return [float(np.mean([r[key][k] for rs in runs.values() for r in rs]))
                for k in range(reach)]

    online, router, length = mean("online"), mean("router"), mean("length")
    beats = next((n for n, o, ln in zip(ns, online, length, strict=True) if o > ln), None)
    per_domain = {d: {"online": [float(np.mean([r["online"][k] for r in rs]))
                                 for k in range(reach)],
                      "router": float(np.mean([r["router"][0] for r in rs])),
                      "length": float(np.mean([r["length"][0] for r in rs]))}
                  for d, rs in runs.items()}
    doc = {"command": " ".join(["python", "bench/router_online.py", *sys.argv[1:]]),
           "seeds": seeds, "verdicts": ns, "apgr_online": online, "apgr_router_alone": router,
           "apgr_length_rule": length, "first_checkpoint_above_length": beats,
           "per_domain": per_domain, "seconds": round(time.time() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    plot(ns, online, router, length, per_domain, args.plot)
    print(f"{'verdicts':>8s} {'online':>7s} {'router':>7s} {'length':>7s}")
    for k, n in enumerate(ns):
        print(f"{n:8d} {online[k]:7.3f} {router[k]:7.3f} {length[k]:7.3f}")
    print(f"online estimate above the length rule from {beats} verdicts on"
          if beats is not None else "online estimate never above the length rule")
    for d, v in per_domain.items():
        print(f"  {d:12s} router {v['router']:.3f} length {v['length']:.3f} "
              f"online@{ns[-1]} {v['online'][-1]:.3f}")
    print(f"plot: {args.plot}")


def plot(ns: list[int], online: list[float], router: list[float], length: list[float],
         per_domain: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(ns, online, marker="o", color="C0", label="router + online estimate (mean)")
    ax.plot(ns, router, linestyle="--", color="C0", alpha=0.6, label="router alone")
    ax.plot(ns, length, linestyle="--", color="C3", label="prompt-length rule")
    for k, (d, v) in enumerate(per_domain.items()):
        ax.plot(ns, v["online"], color=f"C{k + 4}", alpha=0.35, linewidth=1,
                label=f"online, {d} of subjects")
    ax.axhline(0.5, color="grey", linestyle=":", label="random")
    ax.set_xlabel("shadow verdicts received on subjects the router never saw")
    ax.set_ylabel("APGR on those subjects' other prompts")
    ax.set_title("Learning from shadow verdicts on unseen MMLU subjects")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
