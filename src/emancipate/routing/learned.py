"""The independence router: how likely a prompt needs the strong (external) model.

Model (chosen by leave-subjects-out measurement, see docs/router.md):

* text: word 1-2-gram TF-IDF (sklearn's tokenizer, sublinear tf, l2 norm) into a logistic
  regression of "the strong model is right and the weak one wrong", fitted with one
  fixed effect per training file (subject) so that the word weights learn what makes a
  prompt hard *within* a subject instead of memorising which subjects are hard;
* length: log prompt length, the one prior that carries across subjects;
* both combined by a logistic (Platt) layer fitted on cross-fitted, held-out scores, so the
  score reads as P(strong model needed).

Scoring is pure Python over a dict (no numpy, sklearn or torch on the request path); the
router file is plain JSON, safe to load. Training needs numpy and scikit-learn.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

FORMAT = "emancipate-router"
VERSION = 1
DEFAULT_QUALITY_FLOOR = 0.95
MAX_CHARS = 32_000  # text features read at most this much; length uses the whole prompt
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # sklearn's default token_pattern


class RouterFileError(ValueError):
    """A router file that cannot be used; the message names the file and the reason."""


def _ngrams(prompt: str) -> list[str]:
    toks = _TOKEN.findall(prompt[:MAX_CHARS].lower())
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class IndependenceRouter:
    """Scores prompts and turns an operator's target into a calibrated threshold.

    A request goes in-house when `score(prompt) < threshold`.
    """

    def __init__(self, terms: dict[str, tuple[float, float]], combine: dict[str, float],
                 calibration: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.terms = terms  # term -> (idf, idf * coefficient)
        self.combine = combine  # bias, text, log_length
        self.calibration = calibration
        self.meta = meta or {}

    # ---- scoring -------------------------------------------------------------------

    def text_logit(self, prompt: str) -> float:
        """The word model's logit (before combining with length): TF-IDF dot coefficients."""
        counts = Counter(t for t in _ngrams(prompt) if t in self.terms)
        num = den = 0.0
        for term, c in counts.items():
            idf, w = self.terms[term]
            tf = 1.0 + math.log(c)
            a = tf * idf
            den += a * a
            num += tf * w
        return num / math.sqrt(den) if den > 0.0 else 0.0

    def score(self, prompt: str) -> float:
        """P(strong model needed) for one prompt; higher means keep it external."""
        c = self.combine
        z = (c["bias"] + c["text"] * self.text_logit(prompt)
             + c["log_length"] * math.log1p(len(prompt)))
        return _sigmoid(z)

    def score_many(self, prompts: list[str]) -> list[float]:
        return [self.score(p) for p in prompts]

    # ---- calibration ---------------------------------------------------------------

    def threshold_for(self, *, quality_floor: float | None = None,
                      inhouse_share: float | None = None) -> float:
        """Threshold meeting the operator's target on held-out data from training time.

        `quality_floor`: share of the strong-vs-weak quality gap to keep (0.95 = keep 95%);
        the largest in-house share whose held-out gap recovered, and that of every smaller
        share, stays at or above it. `inhouse_share`: fraction of traffic to keep in-house.
        Neither given: quality_floor 0.95. Route in-house when score < threshold.
        """
        if quality_floor is not None and inhouse_share is not None:
            raise ValueError("give quality_floor or inhouse_share, not both")
        cal = self.calibration
        shares: list[float] = cal["inhouse_share"]
        thresholds: list[float] = cal["threshold"]
        if inhouse_share is not None:
            if not 0.0 <= inhouse_share <= 1.0:
                raise ValueError(f"inhouse_share must be within 0..1, got {inhouse_share}")
            return self._threshold_at_share(inhouse_share)
        floor = DEFAULT_QUALITY_FLOOR if quality_floor is None else quality_floor
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"quality_floor must be within 0..1, got {floor}")
        if cal["strong_quality"] <= cal["weak_quality"]:
            return math.inf  # the strong model recovers nothing here: everything in-house
        best = 0  # index 0: in-house share 0, all external, gap recovered 1 by definition
        worst_so_far = math.inf
        for i, recovered in enumerate(cal["gap_recovered"]):
            worst_so_far = min(worst_so_far, recovered)
            if worst_so_far + 1e-12 >= floor:
                best = i
            else:
                break
        if shares[best] >= 1.0:
            return math.inf
        return thresholds[best]

    def _threshold_at_share(self, share: float) -> float:
        shares: list[float] = self.calibration["inhouse_share"]
        thresholds: list[float] = self.calibration["threshold"]
        if share >= 1.0:
            return math.inf
        if share <= 0.0:
            return 0.0
        for i in range(1, len(shares)):
            if shares[i] >= share:
                lo, hi = shares[i - 1], shares[i]
                if hi == lo:
                    return thresholds[i]
                f = (share - lo) / (hi - lo)
                return thresholds[i - 1] + f * (thresholds[i] - thresholds[i - 1])
        return math.inf

    def estimate(self, threshold: float) -> dict[str, float]:
        """Held-out in-house share and gap recovered at `threshold` (for the what-if)."""
        cal = self.calibration
        best = 0
        for i, t in enumerate(cal["threshold"]):
            if t <= threshold:
                best = i
        return {"threshold": threshold, "inhouse_share": cal["inhouse_share"][best],
                "quality": cal["quality"][best], "gap_recovered": cal["gap_recovered"][best]}

    # ---- file ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "meta": self.meta,
            "features": {"ngrams": [1, 2], "token_pattern": _TOKEN.pattern,
                         "lowercase": True, "sublinear_tf": True, "norm": "l2",
                         "max_chars": MAX_CHARS},
            "combine": self.combine,
            "calibration": self.calibration,
            # parallel arrays: the fastest JSON to parse (a dict of pairs takes twice as long)
            "terms": {"vocab": list(self.terms),
                      "idf": [_r(i) for i, _ in self.terms.values()],
                      "weight": [_r(w) for _, w in self.terms.values()]},
        }

    def save(self, path: str | Path) -> None:
        """Write the router as one JSON file (no pickle: safe to load from anywhere)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False),
                       encoding="utf-8")
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | Path) -> IndependenceRouter:
        """Read a router file written by `save` (or `emancipate router train`)."""
        p = Path(path)
        try:
            doc = _loads(p.read_bytes())
        except FileNotFoundError:
            raise RouterFileError(f"{p}: no such router file") from None
        except (OSError, ValueError) as exc:
            raise RouterFileError(f"{p}: not a router file ({exc})") from None
        return cls.from_dict(doc, source=str(p))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "router") -> IndependenceRouter:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise RouterFileError(f"{source}: not an {FORMAT} file")
        if doc.get("version") != VERSION:
            raise RouterFileError(f"{source}: router file version {doc.get('version')!r} is "
                                  f"not supported (this emancipate reads version {VERSION}); "
                                  "retrain it with `emancipate router train`")
        try:
            t = doc["terms"]
            vocab, idf, weight = t["vocab"], t["idf"], t["weight"]
            if not len(vocab) == len(idf) == len(weight):
                raise ValueError("terms: vocab, idf and weight differ in length")
            if not all(isinstance(x, (int, float)) for x in idf + weight):
                raise ValueError("terms: idf and weight must be numbers")
            terms = dict(zip(map(str, vocab), zip(idf, weight, strict=True), strict=True))
            combine = {k: float(doc["combine"][k]) for k in ("bias", "text", "log_length")}
            cal = doc["calibration"]
            for key in ("threshold", "inhouse_share", "quality", "gap_recovered",
                        "strong_quality", "weak_quality"):
                cal[key]  # noqa: B018 - presence check
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RouterFileError(f"{source}: malformed router file ({exc!r})") from None
        return cls(terms, combine, cal, doc.get("meta", {}))


def _loads(raw: bytes) -> Any:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
        return json.loads(raw)
    return orjson.loads(raw)


def _r(x: float) -> float:
    return float(f"{x:.6g}")


# ---- training ---------------------------------------------------------------------------


def train_router(data: Any, *, c: float = 1.0, length_weight: float | None = 1.25,
                 folds: int = 5, max_features: int = 50_000, seed: int = 0) -> IndependenceRouter:
    """Fit the router on a `learned_data.Dataset` and calibrate it on held-out folds.

    `length_weight` fixes how much log length counts: standard deviations of the text score
    per unit of log(1 + chars) (1.25 is about one per sd of log length on MMLU, which measured
    best on unseen subjects; absolute units so that data of near-constant length gets no
    length term). None learns it from the held-out scores instead (worse on unseen subjects).
    Calibration uses GroupKFold over files when there are at least `folds` files (so the
    curve is measured on unseen subjects), otherwise a shuffled KFold.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold, KFold

    from emancipate.routing.learned_data import DataError
    from emancipate.routing.learned_metrics import fine_curve

    started = time.perf_counter()
    n = len(data)
    y = data.strong * (1.0 - data.weak)  # the strong model is right where the weak one is not
    if n < 10:
        raise DataError(f"need at least 10 labelled prompts to train, got {n}")
    if not 0.0 < float(np.mean(y > 0.5)) < 1.0:
        raise DataError("the labels never (or always) show the strong model right where the "
                        "weak one is wrong: nothing to learn")
    groups = np.asarray(data.groups)
    loglen = np.log1p(np.array([len(p) for p in data.prompts], dtype=float))

    n_groups = len(set(data.groups))
    if n_groups >= folds:
        splits = list(GroupKFold(n_splits=folds).split(np.zeros(n), groups=groups))
        cv_kind = f"{folds}-fold by file (unseen files)"
    else:
        splits = list(KFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
                      .split(np.zeros(n)))
        cv_kind = f"{min(folds, n)}-fold shuffled (fewer than {folds} files)"

    oof = np.zeros(n)
    for tr, te in splits:
        terms = _fit_text(data.prompts, y, groups, tr, c=c, max_features=max_features)
        oof[te] = _text_logits(terms, [data.prompts[i] for i in te])

    # Platt layer on held-out scores: P(strong needed | text logit, log length)
    bias, a_text, a_len = _fit_combine(oof, loglen, y, length_weight)
    held_out = 1.0 / (1.0 + np.exp(-(bias + a_text * oof + a_len * loglen)))
    curve = fine_curve(held_out, data.strong, data.weak, points=201)
    calibration = {
        **curve,
        "strong_quality": float(np.mean(data.strong)),
        "weak_quality": float(np.mean(data.weak)),
        "n": n,
        "method": cv_kind,
    }
    calibration = {k: ([_r(x) for x in v] if isinstance(v, list) else v)
                   for k, v in calibration.items()}

    terms = _fit_text(data.prompts, y, groups, np.arange(n), c=c, max_features=max_features)
    meta = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_prompts": n, "n_files": n_groups, "files": sorted(set(data.groups)),
        "target": "strong right and weak wrong",
        "c": c, "length_weight": length_weight, "train_seconds": 0.0,
    }
    router = IndependenceRouter(terms, {"bias": bias, "text": a_text, "log_length": a_len},
                                calibration, meta)
    router.meta["train_seconds"] = round(time.perf_counter() - started, 2)
    return router


def _fit_text(prompts: list[str], y: Any, groups: Any, idx: Any, *, c: float,
              max_features: int) -> dict[str, tuple[float, float]]:
    """TF-IDF + logistic regression with one fixed effect per file; returns term weights."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    sub = [prompts[i] for i in idx]
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True,
                          token_pattern=_TOKEN.pattern, min_df=2 if len(sub) >= 200 else 1,
                          max_features=max_features, dtype=np.float64)
    clipped = [p[:MAX_CHARS] for p in sub]
    X = vec.fit_transform(clipped)
    g = np.asarray(groups)[idx]
    names = sorted(set(g.tolist()))
    col = {v: i for i, v in enumerate(names)}
    # fixed effects scaled up so the L2 penalty barely touches them
    fe = sparse.csr_matrix((np.full(len(g), 10.0), (np.arange(len(g)), [col[v] for v in g])),
                           shape=(len(g), len(names)))
    yy = (np.asarray(y)[idx] > 0.5).astype(int)
    idf = vec.idf_
    if yy.min() == yy.max():  # a small fold with one class only: nothing to learn from words
        return {t: (float(idf[j]), 0.0) for t, j in vec.vocabulary_.items()}
    model = LogisticRegression(C=c, max_iter=5000, fit_intercept=False)
    model.fit(sparse.hstack([X, fe]).tocsr(), yy)
    coef = model.coef_[0][: X.shape[1]]
    return {t: (float(idf[j]), float(idf[j] * coef[j])) for t, j in vec.vocabulary_.items()}


def _text_logits(terms: dict[str, tuple[float, float]], prompts: list[str]) -> Any:
    import numpy as np

    r = IndependenceRouter(terms, {"bias": 0.0, "text": 1.0, "log_length": 0.0}, {})
    return np.array([r.text_logit(p) for p in prompts])


def _fit_combine(text: Any, loglen: Any, y: Any,
                 length_weight: float | None) -> tuple[float, float, float]:
    """Logistic layer over (text logit, log length) fitted on held-out text logits."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    yy = (np.asarray(y) > 0.5).astype(int)
    t_sd = float(np.std(text)) or 1.0
    l_mu, l_sd = float(np.mean(loglen)), float(np.std(loglen)) or 1.0
    tz, lz = text / t_sd, (loglen - l_mu) / l_sd
    if length_weight is None:
        m = LogisticRegression(C=1.0).fit(np.column_stack([tz, lz]), yy)
        a_t, a_l = float(m.coef_[0][0]), float(m.coef_[0][1])
        b = float(m.intercept_[0])
    else:  # length_weight is per unit of log length: in z units that is weight * sd
        m = LogisticRegression(C=1.0).fit((tz + length_weight * l_sd * lz).reshape(-1, 1), yy)
        a = float(m.coef_[0][0])
        a_t, a_l, b = a, a * length_weight * l_sd, float(m.intercept_[0])
    # back to raw units: bias + text * logit + log_length * log1p(len)
    return b - a_l * l_mu / l_sd, a_t / t_sd, a_l / l_sd
