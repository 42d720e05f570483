"""Does the embedded in-house model's own confidence tell which prompts need the strong model?

A candidate router feature measured, not shipped: run SmolLM2-135M (the embedded model) over
the prompt and read its next-token distribution (for MMLU, whose prompts end in "Answer:",
the distribution over the letters A-D). A model that is unsure, or confidently wrong, might
flag the prompts that the in-house model of the data (Mixtral) gets wrong. It costs a full
prefill of the prompt on the CPU, so it would have to earn a lot.

On `--per-subject` prompts of each subject (the first rows of each file) it prints each
feature's AUC of "strong right, weak wrong" within subjects, then leave-one-subject-out APGR
of the shipped router's features (words with subject fixed effects + log length) with and
without the probe features (stacked by a plain logistic regression, and fitted with subject
fixed effects as the router fits its words), and the probe's time per prompt.

    .venv/bin/python bench/router_probe.py                  # 60 per subject: about 12 min
    .venv/bin/python bench/router_probe.py --per-subject 20 # about 4 min

Features are cached in bench/.work/router_probe-<hash of the prompts>.npz.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from emancipate.routing.features import view
from emancipate.routing.learned_data import read_csvs
from emancipate.routing.learned_metrics import evaluate_scores
from emancipate.routing.training import build_vocab, fit_words, tfidf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routing" / "mmlu"
FEATURES = ["letter entropy", "letter max prob", "letter margin", "letter mass (log)",
            "next-token entropy", "next-token max prob"]


def probe_features(prompts: list[str]) -> tuple[np.ndarray, list[float]]:
    """One row of FEATURES per prompt, and the seconds each prompt took."""
    from llama_cpp import Llama

    from emancipate.providers.embedded import default_model_path

    llm = Llama(model_path=default_model_path(), n_ctx=4096, n_threads=2, n_batch=512,
                verbose=False)
    letters = [[llm.tokenize(f"{sp}{c}".encode(), add_bos=False)[-1] for sp in ("", " ")]
               for c in "ABCD"]
    n_vocab = llm.n_vocab()
    rows, seconds = [], []
    for p in prompts:
        t0 = time.perf_counter()
        toks = llm.tokenize(p.encode(), add_bos=True)[:4000]
        llm.reset()
        llm.eval(toks)
        # without logits_all only the last position's logits exist, in the context itself
        z = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
        logp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
        seconds.append(time.perf_counter() - t0)
        full = np.exp(logp)
        lp = np.array([np.logaddexp(logp[a], logp[b]) for a, b in letters])
        q = np.exp(lp - np.logaddexp.reduce(lp))
        top = np.sort(q)
        rows.append([-(q * np.log(q)).sum(), top[-1], top[-1] - top[-2],
                     float(np.logaddexp.reduce(lp)), -(full * logp).sum(), full.max()])
    return np.array(rows), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--strong", default="gpt-4-1106-preview")
    ap.add_argument("--weak", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    ap.add_argument("--per-subject", type=int, default=60)
    args = ap.parse_args()

    d = read_csvs([args.data], args.strong, args.weak)
    groups = np.array(d.groups)
    taken: dict[str, int] = {}
    idx = []
    for i, u in enumerate(d.groups):
        taken[u] = taken.get(u, 0) + 1
        if taken[u] <= args.per_subject:
            idx.append(i)
    idx = np.array(idx)
    probed = [d.prompts[i] for i in idx]
    key = hashlib.sha256("\0".join(probed).encode()).hexdigest()[:16]  # these very prompts
    cache = ROOT / "bench" / ".work" / f"router_probe-{key}.npz"
    if cache.exists():
        feats, seconds = np.load(cache)["features"], list(np.load(cache)["seconds"])
    else:
        feats, seconds = probe_features(probed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, features=feats, seconds=np.array(seconds))

    # the shipped router's features, leave-one-subject-out over all the data
    y_all = d.strong * (1 - d.weak)
    text = np.zeros(len(d))
    words = [view(p)[1] for p in d.prompts]  # router version 2's words (the figures in
    for u in sorted(set(d.groups)):           # docs/router.md were measured with version 1's)
        te, tr = np.flatnonzero(groups == u), np.flatnonzero(groups != u)
        vocab, idf = build_vocab([words[i] for i in tr], 50_000)
        coef = fit_words(tfidf([words[i] for i in tr], vocab, idf), (y_all[tr] > 0.5)
                         .astype(int), groups[tr])
        text[te] = tfidf([words[i] for i in te], vocab, idf) @ coef
    loglen = np.log1p(np.array([len(p) for p in d.prompts], dtype=float))
    base = (text / text.std() + 1.25 * loglen)[idx]

    s, w, g, y = d.strong[idx], d.weak[idx], groups[idx], y_all[idx]

    def within(x: np.ndarray) -> float:
        r = np.zeros(len(x))
        for u in set(g):
            m = g == u
            r[m] = (rankdata(x[m]) - 0.5) / m.sum()
        return roc_auc_score(y, r)

    print(f"{len(idx)} prompts ({args.per_subject} per subject); AUC of 'strong right, weak "
          "wrong' (0.5 = no signal)")
    print(f"{'feature':28s} {'within subjects':>16s} {'pooled':>8s}")
    for j, name in enumerate(FEATURES):
        print(f"{name:28s} {within(feats[:, j]):16.3f} {roc_auc_score(y, feats[:, j]):8.3f}")
    print(f"{'router (words + length)':28s} {within(base):16.3f} {roc_auc_score(y, base):8.3f}")

    x = np.column_stack([base, feats])
    x = (x - x.mean(0)) / x.std(0)
    z = x[:, 1:]
    stacked, within_fit = np.zeros(len(idx)), np.zeros(len(idx))
    for u in sorted(set(g)):
        te, tr = g == u, g != u
        stacked[te] = LogisticRegression().fit(x[tr], y[tr]).decision_function(x[te])
        # as the router fits words: one fixed effect per training subject, dropped to score
        names = sorted(set(g[tr]))
        fe = 10.0 * (g[tr][:, None] == np.array(names)[None, :])
        m = LogisticRegression(fit_intercept=False, max_iter=2000).fit(
            np.hstack([z[tr], fe]), y[tr])
        within_fit[te] = z[te] @ m.coef_[0][: z.shape[1]]
    with_fe = base / base.std() + 0.25 * within_fit / within_fit.std()
    print("\nleave-one-subject-out on these prompts:")
    for name, sc in (("router features", base), ("router + probe features (LR)", stacked),
                     ("router + 0.25 sd probe (fixed effects)", with_fe)):
        m = evaluate_scores(name, sc, s, w)
        print(f"{name:40s} APGR {m.apgr:.3f}  CPT50 {100 * m.cpt50:5.1f}%  "
              f"CPT80 {100 * m.cpt80:5.1f}%")
    ms = sorted(1000 * t for t in seconds)
    print(f"\nprobe time per prompt (2 threads): p50 {ms[len(ms) // 2]:.0f} ms, "
          f"p99 {ms[int(len(ms) * 0.99)]:.0f} ms")


if __name__ == "__main__":
    main()
