"""The independence router: how likely a prompt needs the strong (external) model.

Model (version 2, chosen by leave-group-out measurement, see docs/router.md):

* **prior**: a logistic regression over a few features that carry across subjects and data
  sets (`features.FEATURES`: length, numbers/maths/code, question format, language,
  lexical), standardised and *clipped to the range seen in training*, so a prompt unlike the
  training data cannot push a feature's weight beyond what was measured. Feature families
  are kept only if leaving them out does not improve held-out-group performance.
* **words** (optional): TF-IDF over the training vocabulary into a logistic regression with
  one fixed effect per training group, admitted only when it improves the held-out-group
  APGR, at the weight that measured best (often none: words rarely carry to new subjects).
* **distance to the training data**: 1 − the largest cosine between the prompt's TF-IDF
  vector and a training group's centroid. Past the distances measured on groups held out in
  training, the score slides toward the length rule (longer → external), the one prior that
  carries everywhere: `z = (1 − s)·model + s·length`, `s` from 0 (as near as a typical
  unseen group) to 1 (farther than almost any).
* a logistic (Platt) layer over the held-out scores makes the score read as
  P(in-house answer not good enough), and the held-out curve is stored as `calibration`,
  with the length rule's held-out APGR beside the router's (`heldout`): a router that does
  not beat it has no calibration that applies (`calibration_applies`).

Scoring is pure Python plus a few numpy operations (no scikit-learn or torch on the request
path); the router file is plain JSON, safe to load. Training needs numpy and scikit-learn.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from emancipate.routing.features import FAMILIES, FEATURES, MAX_CHARS, OPTIONS, rare_format, view

FORMAT = "emancipate-router"
VERSION = 2
DEFAULT_QUALITY_FLOOR = 0.95


class RouterFileError(ValueError):
    """A router file that cannot be used; the message names the file and the reason."""


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class IndependenceRouter:
    """Scores prompts and turns an operator's target into a calibrated threshold.

    A request goes in-house when `score(prompt) < threshold`.
    """

    def __init__(self, model: dict[str, Any], calibration: dict[str, Any],
                 meta: dict[str, Any] | None = None) -> None:
        self.model = model
        self.calibration = calibration
        self.meta = meta or {}
        prior = model["prior"]
        self._names = list(prior["features"])
        self._index = [list(FEATURES).index(f) for f in self._names]
        self._lin = [(j, m, s, lo, hi, w) for j, m, s, lo, hi, w in zip(
            self._index, prior["mean"], prior["scale"], prior["low"], prior["high"],
            prior["weight"], strict=True)]
        self._bias = float(prior["bias"])
        words = model.get("words")
        self._vocab: dict[str, int] = ({t: i for i, t in enumerate(words["vocab"])}
                                       if words else {})
        if words:
            self._idf = np.asarray(words["idf"], dtype=float)
            self._coef = np.asarray(words["coef"], dtype=float)
            self._centroids = np.asarray(words["centroids"], dtype=float)
            self._by_term = np.ascontiguousarray(self._centroids.T)  # one row per term
        c = model["combine"]
        self._text_w = float(c.get("text", 0.0))
        self._m_mean, self._m_sd = float(c["model_mean"]), float(c["model_sd"]) or 1.0
        self._l_mean, self._l_sd = float(c["length_mean"]), float(c["length_sd"]) or 1.0
        self._near, self._far = float(c["near"]), float(c["far"])
        # answer formats (number of options) and their training shares; a format rarer than
        # `rare_format` was not learned: the length rule routes it (absent in older files)
        self._formats: dict[str, float] = dict(c.get("formats") or {})
        self._rare_format = float(c.get("rare_format", 0.0))
        self._a, self._b = float(c["bias"]), float(c["scale"])

    @classmethod
    def length_rule(cls, calibration: dict[str, Any],
                    meta: dict[str, Any] | None = None) -> IndependenceRouter:
        """The prompt-length rule as a router (score = sigmoid(log(1 + chars) − 6)), with a
        given calibration: a baseline, and a known router for tests."""
        big = 1e9
        model = {
            "prior": {"features": ["log_chars"], "mean": [0.0], "scale": [1.0], "low": [-big],
                      "high": [big], "weight": [1.0], "bias": -6.0},
            "combine": {"text": 0.0, "model_mean": 0.0, "model_sd": 1.0, "length_mean": 0.0,
                        "length_sd": 1.0, "near": 2.0, "far": 3.0, "bias": 0.0, "scale": 1.0},
        }
        return cls(model, calibration, meta)

    # ---- scoring -------------------------------------------------------------------

    def parts(self, prompt: str) -> dict[str, Any]:
        """What the score is made of: prior and word logits, distance, shrink, final logit."""
        feats, words = view(prompt)
        prior = self._bias
        for j, m, s, lo, hi, w in self._lin:
            z = (feats[j] - m) / s
            prior += w * (lo if z < lo else hi if z > hi else z)
        text, distance = self._words(words)
        model = (prior + self._text_w * text - self._m_mean) / self._m_sd
        length = (feats[0] - self._l_mean) / self._l_sd
        shrink = self.shrink_for(distance)
        if self._formats and rare_format(self._formats, feats[OPTIONS], self._rare_format):
            shrink = 1.0  # an answer format the training data hardly holds
        logit = self._a + self._b * ((1.0 - shrink) * model + shrink * length)
        return {"prior": prior, "text": text, "distance": distance, "shrink": shrink,
                "length": length, "logit": logit, "words": words}

    def _words(self, words: list[str]) -> tuple[float, float]:
        """(word-model logit, distance to the nearest training group) of the prompt's words."""
        if not self._vocab:
            return 0.0, 0.0
        vocab = self._vocab
        terms: list[int] = []
        counts: list[int] = []
        for t, c in Counter(words).items():
            j = vocab.get(t)
            if j is not None:
                terms.append(j)
                counts.append(c)
        if not terms:
            return 0.0, 1.0
        ix = np.array(terms)
        v = (1.0 + np.log(np.array(counts, dtype=float))) * self._idf[ix]
        v /= float(np.sqrt(v @ v))
        text = float(v @ self._coef[ix]) if self._text_w else 0.0
        nearest = float(np.max(v @ self._by_term[ix]))
        return text, max(0.0, 1.0 - nearest)

    def word_idf(self) -> dict[str, float]:
        """The training vocabulary's idf (the online estimate weighs words with it)."""
        return {t: float(self._idf[i]) for t, i in self._vocab.items()} if self._vocab else {}

    def shrink_for(self, distance: float) -> float:
        """0 up to the `near` distance, 1 from `far` on, linear between."""
        if distance <= self._near:
            return 0.0
        if distance >= self._far:
            return 1.0
        return (distance - self._near) / (self._far - self._near)

    def logit(self, prompt: str) -> float:
        return float(self.parts(prompt)["logit"])

    def score(self, prompt: str) -> float:
        """P(strong model needed) for one prompt; higher means keep it external."""
        return _sigmoid(self.logit(prompt))

    def score_many(self, prompts: list[str]) -> list[float]:
        return [self.score(p) for p in prompts]

    # ---- what the router knows about itself ------------------------------------------

    @property
    def heldout(self) -> dict[str, Any]:
        """Held-out-group APGR of the router and of the length rule, measured in training."""
        return dict(self.meta.get("heldout") or {})

    def calibration_applies(self) -> bool:
        """False when the held-out estimate is not better than the length rule's."""
        h = self.heldout
        apgr, length = h.get("apgr"), h.get("length_apgr")
        if apgr is None or length is None:
            return False
        return bool(apgr > length)

    def calibration_warning(self) -> str | None:
        """Why the calibration does not apply (for logs, /readyz and the report), or None."""
        if self.calibration_applies():
            return None
        h = self.heldout
        if h.get("apgr") is None or h.get("length_apgr") is None:
            return ("no held-out estimate in the router file: its thresholds are not known to "
                    "hold on new prompts")
        return (f"held-out APGR {h['apgr']:.3f} is not better than the prompt-length rule's "
                f"{h['length_apgr']:.3f}: no calibration applies; retrain it on data closer to "
                "this route's traffic (`emancipate router train --from-ledger`)")

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
            "features": {"max_chars": MAX_CHARS, "all": list(FEATURES)},
            "model": self.model,
            "calibration": self.calibration,
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
            doc = json.loads(p.read_bytes())
        except FileNotFoundError:
            raise RouterFileError(f"{p}: no such router file") from None
        except (OSError, ValueError) as exc:
            raise RouterFileError(f"{p}: not a router file ({exc})") from None
        return cls.from_dict(doc, source=str(p))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "router") -> IndependenceRouter:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise RouterFileError(f"{source}: not an {FORMAT} file")
        version = doc.get("version")
        if version == 1:
            raise RouterFileError(
                f"{source}: router file version 1 (a word model without held-out-group "
                "validation, which measured worse than the prompt-length rule on data it had "
                f"not seen) is no longer read; this emancipate reads version {VERSION}: "
                "retrain it with `emancipate router train` (same data, same command)")
        if version != VERSION:
            raise RouterFileError(f"{source}: router file version {version!r} is not supported "
                                  f"(this emancipate reads version {VERSION}); retrain it with "
                                  "`emancipate router train`")
        try:
            model, cal = doc["model"], doc["calibration"]
            unknown = [f for f in model["prior"]["features"] if f not in FEATURES]
            if unknown:
                raise ValueError(f"unknown feature(s) {unknown}")
            for key in ("threshold", "inhouse_share", "quality", "gap_recovered",
                        "strong_quality", "weak_quality"):
                cal[key]  # noqa: B018 - presence check
            router = cls(model, cal, doc.get("meta", {}))
            words = model.get("words")
            if words and not (len(words["vocab"]) == len(words["idf"]) == len(words["coef"])
                              == router._centroids.shape[1]):
                raise ValueError("words: vocab, idf, coef and centroids differ in length")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RouterFileError(f"{source}: malformed router file ({exc!r})") from None
        return router


# ---- training ---------------------------------------------------------------------------


def train_router(data: Any, *, families: tuple[str, ...] | None = None, words: str = "auto",
                 folds: int = 5, vocab_size: int = 1500, c_prior: float = 0.1,
                 shrink: bool = True, seed: int = 0) -> IndependenceRouter:
    """Fit the router on a `learned_data.Dataset` and validate it on held-out groups.

    Groups are the dataset's files (e.g. MMLU subjects, or a route's verdicts). Every choice
    is made on folds of *whole groups* (GroupKFold; shuffled folds when there are fewer than
    two groups, and the calibration is then flagged in-distribution): which feature families
    stay (`families` forces a set), whether the word model is admitted and at what weight
    (`words`: "auto", "on" or "off"), and where the distance starts to shrink the score
    toward the length rule (`shrink=False`: never). The label is "the in-house (weak) model
    is not right", which is what a shadow verdict says (`not inhouse_ok`) and does not
    depend on how the strong model's answers were scored.
    """
    from emancipate.routing.learned_data import DataError
    from emancipate.routing.training import fit_router

    n = len(data)
    if n < 10:
        raise DataError(f"need at least 10 labelled prompts to train, got {n}")
    y = (np.asarray(data.weak) < 0.5).astype(int)
    if not 0 < int(y.sum()) < n:
        raise DataError("the labels never (or always) show the in-house (weak) model wrong: "
                        "nothing to learn")
    started = time.perf_counter()
    model, calibration, heldout = fit_router(
        data, families=families, words=words, folds=folds, vocab_size=vocab_size,
        c_prior=c_prior, shrink=shrink, seed=seed)
    meta = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_prompts": n, "n_files": len(set(data.groups)), "files": sorted(set(data.groups)),
        "target": "in-house (weak) model not right",
        "heldout": heldout, "families": list(FAMILIES),
        "train_seconds": 0.0,
    }
    router = IndependenceRouter(model, calibration, meta)
    router.meta["train_seconds"] = round(time.perf_counter() - started, 2)
    return router
