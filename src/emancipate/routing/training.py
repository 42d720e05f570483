"""Training of the independence router (numpy and scikit-learn; never on the request path).

Every choice is validated on folds of whole groups (subjects, data sets, routes): a prompt
is only ever scored by a model that did not see its group. See `learned.train_router`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from emancipate.routing.features import FAMILIES, FEATURES, OPTIONS, rare_format, view
from emancipate.routing.learned_metrics import evaluate_scores, fine_curve

ADMIT_MARGIN = 0.005  # held-out APGR the word model must add (or a prior family cost) to count
WORD_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)  # word-model weights tried, in sds of the prior's logit
NEAR_Q, FAR_Q = 0.90, 0.999  # distance quantiles of unseen-group prompts: shrink starts, ends
# An answer format (number of options) held by fewer than this share of the training prompts
# is one the router has not learned: such prompts are routed by the length rule alone.
RARE_FORMAT = 0.01
CLIP_Q = 0.005  # standardised features are clipped to their training [0.5%, 99.5%] range

Split = tuple[np.ndarray, np.ndarray]


def format_shares(options: Any) -> dict[str, float]:
    """Share of prompts per number of options (the answer format), as stored in the file."""
    values, counts = np.unique(np.asarray(options, dtype=int), return_counts=True)
    return {str(int(v)): round(float(c) / len(options), 5) for v, c in zip(values, counts,
                                                                            strict=True)}


def group_splits(groups: np.ndarray, folds: int, seed: int) -> tuple[list[Split], str]:
    """Folds of whole groups, balanced by size; shuffled folds when there is one group."""
    from sklearn.model_selection import GroupKFold, KFold

    n, k = len(groups), len(set(groups.tolist()))
    if k >= 2:
        f = min(folds, k)
        return (list(GroupKFold(n_splits=f).split(np.zeros(n), groups=groups)),
                f"{f}-fold by file (unseen files)")
    f = min(folds, n)
    return (list(KFold(n_splits=f, shuffle=True, random_state=seed).split(np.zeros(n))),
            f"{f}-fold shuffled (one file: not measured on unseen data)")


# ---- the prior: a logistic regression over clipped, standardised features ---------------


def fit_prior(X: np.ndarray, y: np.ndarray, cols: list[int], c: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    Xc = X[:, cols]
    mean = Xc.mean(axis=0)
    scale = Xc.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (Xc - mean) / scale
    low, high = np.quantile(Z, CLIP_Q, axis=0), np.quantile(Z, 1 - CLIP_Q, axis=0)
    Z = np.clip(Z, low, high)
    if y.min() == y.max():
        weight, bias = np.zeros(len(cols)), 0.0
    else:
        m = LogisticRegression(C=c, max_iter=2000).fit(Z, y)
        weight, bias = m.coef_[0], float(m.intercept_[0])
    names = list(FEATURES)
    return {"features": [names[j] for j in cols], "mean": mean, "scale": scale, "low": low,
            "high": high, "weight": weight, "bias": bias}


def prior_logits(prior: dict[str, Any], X: np.ndarray, cols: list[int]) -> np.ndarray:
    Z = np.clip((X[:, cols] - prior["mean"]) / prior["scale"], prior["low"], prior["high"])
    return np.asarray(Z @ prior["weight"] + prior["bias"])


# ---- words: TF-IDF over a fold's vocabulary, fixed effects per group, group centroids ----


def build_vocab(words: list[list[str]], size: int) -> tuple[list[str], np.ndarray]:
    """The `size` words found in most prompts (at least 2), and their smoothed idf."""
    df: Counter[str] = Counter()
    for ws in words:
        df.update(set(ws))
    vocab = [t for t, c in df.most_common(size) if c >= 2]
    n = len(words)
    idf = np.array([np.log((1 + n) / (1 + df[t])) + 1.0 for t in vocab])
    return vocab, idf


def tfidf(words: list[list[str]], vocab: list[str], idf: np.ndarray) -> Any:
    """Sublinear tf × idf, l2-normalised rows, as a CSR matrix (what `_words` computes)."""
    from scipy import sparse

    col = {t: i for i, t in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for r, ws in enumerate(words):
        for t, c in Counter(ws).items():
            j = col.get(t)
            if j is not None:
                rows.append(r)
                cols.append(j)
                vals.append((1.0 + np.log(c)) * idf[j])
    M = sparse.csr_matrix((vals, (rows, cols)), shape=(len(words), len(vocab)))
    norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.diags(1.0 / norms) @ M


def fit_words(M: Any, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Word coefficients of a logistic regression with one fixed effect per group."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    names = sorted(set(groups.tolist()))
    col = {v: i for i, v in enumerate(names)}
    fe = sparse.csr_matrix((np.full(len(groups), 10.0),
                            (np.arange(len(groups)), [col[g] for g in groups.tolist()])),
                           shape=(len(groups), len(names)))
    if y.min() == y.max():
        return np.zeros(M.shape[1])
    m = LogisticRegression(C=1.0, max_iter=3000, fit_intercept=False)
    m.fit(sparse.hstack([M, fe]).tocsr(), y)
    return np.asarray(m.coef_[0][: M.shape[1]])


def centroids(M: Any, groups: np.ndarray) -> np.ndarray:
    """One l2-normalised mean TF-IDF vector per group."""
    out = []
    for g in sorted(set(groups.tolist())):
        v = np.asarray(M[groups == g].mean(axis=0)).ravel()
        norm = float(np.linalg.norm(v))
        out.append(v / norm if norm else v)
    return np.vstack(out)


def distances(M: Any, cents: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.asarray((M @ cents.T).max(axis=1)).ravel())


# ---- the whole fit ---------------------------------------------------------------------


def _apgr(score: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    return float(evaluate_scores("x", score, strong, weak).apgr)


def _surely_better(a: np.ndarray, b: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                   groups: np.ndarray, seed: int, resamples: int = 100) -> bool:
    """Is score `a`'s APGR above `b`'s in 90% of paired bootstrap resamples (prompts drawn
    within each group)? A gain picked as the best of a few tries must also be stable."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in sorted(set(groups.tolist()))]
    wins = 0
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(m, len(m)) for m in members])
        wins += _apgr(a[idx], strong[idx], weak[idx]) > _apgr(b[idx], strong[idx], weak[idx])
    return wins >= 0.9 * resamples


def _z(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, sd = float(np.mean(x)), float(np.std(x)) or 1.0
    return (x - mu) / sd, mu, sd


def oof_prior(X: np.ndarray, y: np.ndarray, cols: list[int], splits: list[Split],
              c: float) -> np.ndarray:
    out = np.zeros(len(y))
    for tr, te in splits:
        out[te] = prior_logits(fit_prior(X[tr], y[tr], cols, c), X[te], cols)
    return out


def choose_families(X: np.ndarray, y: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                    splits: list[Split], c: float) -> tuple[list[str], dict[str, float]]:
    """Keep every prior family unless leaving it out raises the held-out APGR by the margin
    (length is always kept). Returns the kept families and each family's contribution."""
    fams = list(FAMILIES)
    kept = list(fams)

    def cols_of(fs: list[str]) -> list[int]:
        return [j for j, f in enumerate(FEATURES.values()) if f in fs]

    full = _apgr(oof_prior(X, y, cols_of(kept), splits, c), strong, weak)
    contribution: dict[str, float] = {}
    for fam in fams:
        if fam == "length":
            continue
        without = [f for f in kept if f != fam]
        a = _apgr(oof_prior(X, y, cols_of(without), splits, c), strong, weak)
        contribution[fam] = round(full - a, 4)
        if a - full >= ADMIT_MARGIN:
            kept, full = without, a
    return kept, contribution


def fit_router(data: Any, *, families: tuple[str, ...] | None, words: str, folds: int,
               vocab_size: int, c_prior: float, seed: int, shrink: bool = True
               ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, calibration, held-out summary) for `learned.IndependenceRouter`."""
    from sklearn.linear_model import LogisticRegression

    views = [view(p) for p in data.prompts]
    X = np.array([v[0] for v in views])
    W = [v[1] for v in views]
    y = (np.asarray(data.weak) < 0.5).astype(int)
    strong, weak = np.asarray(data.strong, float), np.asarray(data.weak, float)
    groups = np.asarray(data.groups)
    splits, method = group_splits(groups, folds, seed)

    if families is None:
        kept, contribution = choose_families(X, y, strong, weak, splits, c_prior)
    else:
        kept, contribution = list(families), {}
    cols = [j for j, f in enumerate(FEATURES.values()) if f in kept]
    m_oof = oof_prior(X, y, cols, splits, c_prior)

    t_oof, d_oof = np.zeros(len(y)), np.zeros(len(y))
    rare_oof = np.zeros(len(y), dtype=bool)
    for tr, te in splits:
        shares = format_shares(X[tr, OPTIONS])
        rare_oof[te] = [rare_format(shares, v, RARE_FORMAT) for v in X[te, OPTIONS]]
        vocab, idf = build_vocab([W[i] for i in tr], vocab_size)
        Mtr, Mte = tfidf([W[i] for i in tr], vocab, idf), tfidf([W[i] for i in te], vocab, idf)
        if words != "off":
            t_oof[te] = Mte @ fit_words(Mtr, y[tr], groups[tr])
        d_oof[te] = distances(Mte, centroids(Mtr, groups[tr]))

    base = _apgr(m_oof, strong, weak)
    text_w, text_gain = 0.0, 0.0
    if words != "off" and float(np.std(t_oof)) > 0:
        ratio = float(np.std(m_oof)) / float(np.std(t_oof))
        tried = {lam: _apgr(m_oof + lam * ratio * t_oof, strong, weak) for lam in WORD_WEIGHTS}
        lam = max(tried, key=lambda k: tried[k])
        text_gain = tried[lam] - base
        sure = _surely_better(m_oof + lam * ratio * t_oof, m_oof, strong, weak, groups, seed)
        if words == "on" or (text_gain >= ADMIT_MARGIN and sure):
            text_w = lam * ratio
    model_oof, m_mean, m_sd = _z(m_oof + text_w * t_oof)
    length_z, l_mean, l_sd = _z(X[:, 0])
    near = float(np.quantile(d_oof, NEAR_Q))
    far = max(float(np.quantile(d_oof, FAR_Q)), near + 1e-3)
    if not shrink:  # a cosine distance is at most 1: never shrunk
        near, far = 2.0, 3.0
    slide = np.clip((d_oof - near) / (far - near), 0.0, 1.0)
    if shrink:
        slide[rare_oof] = 1.0
    z_oof = (1.0 - slide) * model_oof + slide * length_z

    platt = LogisticRegression(C=1.0).fit(z_oof.reshape(-1, 1), y)
    a, b = float(platt.intercept_[0]), float(platt.coef_[0][0])
    held = 1.0 / (1.0 + np.exp(-(a + b * z_oof)))
    calibration = {**fine_curve(held, strong, weak, points=201),
                   "strong_quality": float(strong.mean()), "weak_quality": float(weak.mean()),
                   "n": len(y), "method": method}
    calibration = {k: (_rl(v) if isinstance(v, list) else v) for k, v in calibration.items()}
    router_m = evaluate_scores("router", held, strong, weak)
    length_m = evaluate_scores("length", X[:, 0], strong, weak)
    heldout = {
        "method": method, "apgr": _f(router_m.apgr), "cpt50": _f(router_m.cpt50),
        "cpt80": _f(router_m.cpt80), "length_apgr": _f(length_m.apgr),
        "length_cpt50": _f(length_m.cpt50), "length_cpt80": _f(length_m.cpt80),
        "families_kept": kept, "family_contribution": contribution,
        "words_weight": round(text_w, 4), "words_gain": round(text_gain, 4),
        "shrunk_share": round(float(np.mean(slide > 0)), 4),
        "rare_format_share": round(float(np.mean(rare_oof)), 4),
        "note": "the same folds chose the families and the word weight: mildly optimistic",
    }

    prior = fit_prior(X, y, cols, c_prior)
    model: dict[str, Any] = {
        "prior": {k: (_rl(v) if isinstance(v, np.ndarray) else v) for k, v in prior.items()},
        "combine": {"text": _r(text_w), "model_mean": _r(m_mean), "model_sd": _r(m_sd),
                    "length_mean": _r(l_mean), "length_sd": _r(l_sd), "near": _r(near),
                    "far": _r(far), "bias": _r(a), "scale": _r(b),
                    "formats": format_shares(X[:, OPTIONS]) if shrink else {},
                    "rare_format": RARE_FORMAT},
    }
    vocab, idf = build_vocab(W, vocab_size)
    if vocab:
        M = tfidf(W, vocab, idf)
        coef = fit_words(M, y, groups) if text_w else np.zeros(len(vocab))
        model["words"] = {"vocab": vocab, "idf": _rl(idf), "coef": _rl(coef),
                          "centroids": [[round(float(x), 5) for x in row]
                                        for row in centroids(M, groups)]}
    return model, calibration, heldout


def _f(x: float) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 4)


def _r(x: float) -> float:
    return float(f"{float(x):.6g}")


def _rl(xs: Any) -> list[float]:
    return [_r(x) for x in xs]
