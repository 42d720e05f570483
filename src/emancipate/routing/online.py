"""The per-route online estimate: the router corrected by the organisation's own verdicts.

Each shadow verdict says whether the in-house answer was as good as the external one on a
prompt of this route's traffic. What a router trained elsewhere cannot know is how hard
*this organisation's topics* are for the in-house model: measured on MMLU, knowing each
unseen subject's rate of "in-house not good enough" is worth more than everything the words
say within a subject (docs/router.md). So the estimate learns rates per word, online:

* every word (hashed) counts the verdicts of the prompts it appeared in, and how many found
  the in-house answer not good enough; its rate is shrunk toward the overall rate by
  `prior` pseudo-verdicts, so a word seen a few times says nothing;
* a prompt's logit moves by `weight` × the idf-weighted mean, over its words, of
  logit(word rate) − logit(overall rate). Topic words (rare, high idf) dominate, so the
  prompts of a topic that the in-house model handles badly move up together. Before any
  verdict the router is used unchanged.

`prior` 20 and `weight` 6 were chosen on the simulation of bench/router_online.py (streams
of MMLU subjects the router was not trained on). The words are hashed with Python's `hash`,
so the state lives in one process (rebuilt from verdicts, never stored). Each verdict is
first scored by the estimate as it was *before* learning from it (progressive validation),
so `live()` measures it on traffic it had not seen: the live quality to put next to the
training-time estimate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BITS = 16
WARMUP = 50  # verdicts before the live figures are shown


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass
class Seen:
    """One verdict as it arrived: scores before learning from it, and its label."""

    online: float  # P(external needed) from the online estimate, before this verdict
    offline: float  # the trained router's score
    length: int  # prompt length in characters (for the length-rule comparison)
    inhouse_ok: bool


@dataclass
class OnlineEstimate:
    """Per-word rates of "in-house not good enough", learned one shadow verdict at a time."""

    idf: dict[str, float] = field(default_factory=dict)  # the router's; others count as rare
    prior: float = 20.0
    weight: float = 6.0
    bits: int = BITS
    verdicts: int = 0
    needed: int = 0  # verdicts that found the in-house answer not good enough
    history: deque[Seen] = field(default_factory=lambda: deque(maxlen=5000))

    def __post_init__(self) -> None:
        self._mask = (1 << self.bits) - 1
        self._rare = max(self.idf.values(), default=1.0)
        size = 1 << self.bits
        self._n = np.zeros(size)  # verdicts per hashed word
        self._pos = np.zeros(size)  # of which "in-house not good enough"
        # logit(word rate) - logit(overall), at its last update: a list, read one word at a
        # time on the request path
        self._shift = [0.0] * size

    def _indices(self, words: list[str]) -> np.ndarray:
        distinct = set(words)
        mask = self._mask
        return np.fromiter((hash(t) & mask for t in distinct), np.int64, len(distinct))

    def shift(self, words: list[str]) -> float:
        """How much this route's verdicts move the prompt's logit (0 before any). On the
        request path: one pass in Python over the distinct words (a list read per word is
        cheaper than building two arrays for numpy: 39 against 52 µs for 260 words)."""
        if not self.verdicts or not words:
            return 0.0
        mask, idf, rare, shift = self._mask, self.idf, self._rare, self._shift
        total = weights = 0.0
        for t in set(words):
            w = idf.get(t, rare)
            total += shift[hash(t) & mask] * w
            weights += w
        return self.weight * total / weights

    def logit(self, router_logit: float, words: list[str]) -> float:
        """The corrected logit; equal to `router_logit` before any verdict."""
        return router_logit + self.shift(words)

    def observe(self, router_logit: float, words: list[str], inhouse_ok: bool,
                length: int = 0) -> None:
        """Learn from one verdict (not on the request path: called when it is recorded)."""
        before = self.logit(router_logit, words)
        self.history.append(Seen(_sigmoid(before), _sigmoid(router_logit), length, inhouse_ok))
        needed = 0.0 if inhouse_ok else 1.0
        self.verdicts += 1
        self.needed += int(needed)
        if not words:
            return
        idx = self._indices(words)
        overall = (self.needed + 1.0) / (self.verdicts + 2.0)
        self._n[idx] += 1.0
        self._pos[idx] += needed
        rate = (self._pos[idx] + self.prior * overall) / (self._n[idx] + self.prior)
        shifts = np.log(rate / (1.0 - rate)) - _logit(overall)
        for i, v in zip(idx.tolist(), shifts.tolist(), strict=True):
            self._shift[i] = v

    @property
    def words_seen(self) -> int:
        return int(np.count_nonzero(self._n))

    def live(self, threshold: float) -> dict[str, Any]:
        """Measured on the verdicts as they arrived (each scored before it was learned).

        `inhouse_share`: share of verdicts the estimate would have kept in-house at
        `threshold`; `inhouse_ok_when_kept`: how often the in-house answer was good there;
        `apgr` of the online estimate, of the trained router alone and of the length rule
        on the same verdicts (the external answer counted right, the in-house one right when
        judged as good). Only counts until `WARMUP` verdicts.
        """
        seen = list(self.history)
        out: dict[str, Any] = {"verdicts": self.verdicts, "window": len(seen),
                               "words_seen": self.words_seen}
        if len(seen) < WARMUP:
            return out
        kept = [s for s in seen if s.online < threshold]
        out["inhouse_share"] = round(len(kept) / len(seen), 4)
        out["inhouse_ok_when_kept"] = (round(sum(s.inhouse_ok for s in kept) / len(kept), 4)
                                       if kept else None)
        out["inhouse_ok"] = round(sum(s.inhouse_ok for s in seen) / len(seen), 4)
        if any(s.inhouse_ok for s in seen) and not all(s.inhouse_ok for s in seen):
            from emancipate.routing.learned_metrics import evaluate_scores

            strong = np.ones(len(seen))
            weak = np.array([1.0 if s.inhouse_ok else 0.0 for s in seen])
            for name, scores in (("apgr", [s.online for s in seen]),
                                 ("apgr_router_alone", [s.offline for s in seen]),
                                 ("apgr_length_rule", [float(s.length) for s in seen])):
                value = evaluate_scores(name, np.array(scores), strong, weak).apgr
                out[name] = None if math.isnan(value) else round(float(value), 4)
        return out
