"""The request path's speed at two commits, side by side: this checkout against another one.

    .venv/bin/python bench/speed_compare.py 7de6301            # 5 rounds
    .venv/bin/python bench/speed_compare.py HEAD~3 --rounds 9

A shared machine's speed drifts by 2x within minutes (other tenants, frequency), so two runs
made at different times do not compare. Here each round runs both checkouts one after the
other (which goes first alternates), in fresh processes: the leak guard on the bodies of
`bench/guard_bench.py` (2 KB of prose, as typed and with curly apostrophes and dashes, 2 KB
secret-dense, 1 MB holding 16,000 secrets) and the independence router's decision on every
shared MMLU prompt (`bench/router_eval.py --latency-only`: alone, and with an online
estimate); the table reports the best and the median round of each with their ratio. The
other commit is checked out with `git worktree` into a temporary directory and run with this
checkout's virtual environment (and its bench code, so both scan the very same bodies).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Run in a child process: the bench module of this checkout, the `emancipate` package of the
# checkout under test (argv[1]).
_CHILD = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1] + "/src", sys.argv[2]]
# imported first: guard_bench puts this checkout's src first on the path
import emancipate.guard, emancipate.routing.learned
assert emancipate.guard.__file__.startswith(sys.argv[1]), emancipate.guard.__file__
import guard_bench as gb
records = gb.load_corpus()
guard = gb.bench_guard()
out = {}
for kind, runs in (("prose", 2000), ("mixed", 1000)):
    body = gb.build_body(records, 2048, kind, seed=2048 + len(kind))
    p50, p99, _ = gb.timeit(lambda body=body: guard.scan_request(body), runs)
    out[kind] = p50
    if kind == "prose":  # the same prose as pasted from a word processor
        typo = {**body, "messages": [{**m, "content": m["content"].replace("'", "\u2019")
                                      .replace(" - ", " \u2014 ")} for m in body["messages"]]}
        out["typography"] = gb.timeit(lambda typo=typo: guard.scan_request(typo), runs)[0]
out["dense_1mb"] = gb.dense_megabyte(guard)[1] * 1e6
import router_eval as re_
from emancipate.routing.features import view
data = re_.read_csvs([re_.DATA], re_.STRONG, re_.WEAK)
lat = re_.latency(data)
for key, name in (("router", "router"), ("online", "router + online estimate")):
    out[key + "_p50"], out[key + "_p99"] = lat[name]["cpu_p50_us"], lat[name]["cpu_p99_us"]
best = [float("inf")] * len(data.prompts)  # each prompt's fastest of 5: steadier than one
for _ in range(5):
    for i, p in enumerate(data.prompts):
        c = time.thread_time_ns()
        view(p)
        best[i] = min(best[i], (time.thread_time_ns() - c) / 1000)
best.sort()
out["features_p50"], out["features_p99"] = best[len(best) // 2], best[int(len(best) * 0.99)]
print(json.dumps(out))
"""
ROWS = (("prose", "guard, 2 KB prose, p50"),
        ("typography", "guard, the same prose with curly apostrophes and dashes, p50"),
        ("mixed", "guard, 2 KB secret-dense, p50"),
        ("dense_1mb", "guard, 1 MB holding 16,000 secrets"),
        ("features_p50", "router feature pass, p50 (a prompt's best of 5)"),
        ("features_p99", "router feature pass, p99 (a prompt's best of 5)"),
        ("router_p50", "router decision, p50"), ("router_p99", "router decision, p99"),
        ("online_p50", "router + online estimate, p50"),
        ("online_p99", "router + online estimate, p99"))


def measure(checkout: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(checkout), str(HERE)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _us(v: float) -> str:
    return f"{v / 1e6:.3f} s" if v >= 1e5 else f"{v:,.0f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="the commit to compare this checkout with")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref],
                         check=True, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(other), rev], check=True)
        try:
            runs: dict[str, list[dict[str, float]]] = {"other": [], "this": []}
            for i in range(args.rounds):  # which goes first alternates (drift within a round)
                for name in ("other", "this")[:: 1 if i % 2 == 0 else -1]:
                    runs[name].append(measure(other if name == "other" else ROOT))
                print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(other)], check=False)
    print(f"{rev} against this checkout, {args.rounds} rounds (CPU time of one guard scan "
          "or routing decision; best and median round)\n")
    print(f"| | {rev} best | this best | ratio | {rev} median | this median | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, label in ROWS:
        a = [r[key] for r in runs["other"]]
        b = [r[key] for r in runs["this"]]
        best_a, best_b = min(a), min(b)
        med_a, med_b = statistics.median(a), statistics.median(b)
        print(f"| {label} | {_us(best_a)} | {_us(best_b)} | {best_b / best_a:.2f} | "
              f"{_us(med_a)} | {_us(med_b)} | {med_b / med_a:.2f} |")


if __name__ == "__main__":
    main()
