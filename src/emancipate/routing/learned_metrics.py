"""Router quality metrics as the RouteLLM paper computes them (APGR, CPT(x%), the curve).

Follows lm-sys/RouteLLM `routellm/evals/benchmarks.py` and `evaluate.py`:
thresholds are the edges of 10 equal-count bins of the router's scores (`pd.qcut`); at
every edge but the last a prompt goes to the strong model when `score >= edge`, at the last
edge when `score > edge` (so the curve runs from 100% strong calls to 0%). Quality is the
mean correctness of whichever model each prompt was sent to. APGR is the area under the
quality-vs-strong-share curve (trapezoids) minus the weak model's, over the strong's minus
the weak's. CPT(x%) is the strong-call share at which quality reaches
`weak + x * (strong - weak)`, interpolated linearly between curve points.

One deliberate difference: RouteLLM passes the curve straight to `np.interp`, which needs
increasing quality; where a noisy curve is not monotone we take the first crossing instead
(identical whenever `np.interp` is well defined).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class CurvePoint:
    threshold: float
    strong_share: float  # fraction of prompts sent to the strong model, 0..1
    quality: float  # mean correctness, 0..1


@dataclass
class RouterMetrics:
    name: str
    apgr: float
    cpt50: float  # strong-call share (0..1) needed to recover 50% of the gap; nan if never
    cpt80: float
    curve: list[CurvePoint]
    strong_quality: float
    weak_quality: float

    def as_dict(self) -> dict:
        """Plain JSON-ready dict; NaN (undefined: e.g. a CPT never reached) becomes None."""
        return _no_nan(asdict(self))


def _no_nan(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nan(x) for x in v]
    return v


def routellm_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                   bins: int = 10) -> list[CurvePoint]:
    """Quality and strong-call share at the edges of `bins` equal-count score bins."""
    scores = np.asarray(scores, dtype=float)
    edges = np.quantile(scores, np.linspace(0.0, 1.0, bins + 1))
    points = []
    for i, t in enumerate(edges):
        sel = scores >= t if i != len(edges) - 1 else scores > t
        quality = float(np.where(sel, strong, weak).mean())
        points.append(CurvePoint(float(t), float(sel.mean()), quality))
    return points


def _sorted(curve: list[CurvePoint]) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted(curve, key=lambda p: p.strong_share)
    return (np.array([p.strong_share for p in pts]), np.array([p.quality for p in pts]))


def apgr(curve: list[CurvePoint], strong_q: float, weak_q: float) -> float:
    """Average performance gap recovered: normalised area under the quality/share curve."""
    x, y = _sorted(curve)
    span = x[-1] - x[0]
    gap = strong_q - weak_q
    if span <= 0 or gap == 0:
        return float("nan")
    auc = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return (auc - weak_q * span) / (gap * span)


def cpt(curve: list[CurvePoint], strong_q: float, weak_q: float, frac: float) -> float:
    """Smallest strong-call share at which quality reaches `frac` of the gap (first crossing)."""
    x, y = _sorted(curve)
    target = weak_q + frac * (strong_q - weak_q)
    if strong_q <= weak_q:
        return float("nan")
    if y[0] >= target:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return float("nan")


def evaluate_scores(name: str, scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                    bins: int = 10) -> RouterMetrics:
    """APGR, CPT(50%), CPT(80%) and the curve for one set of router scores."""
    curve = routellm_curve(scores, strong, weak, bins)
    sq, wq = float(np.mean(strong)), float(np.mean(weak))
    return RouterMetrics(name, apgr(curve, sq, wq), cpt(curve, sq, wq, 0.5),
                         cpt(curve, sq, wq, 0.8), curve, sq, wq)


def random_baseline(strong: np.ndarray, weak: np.ndarray, seeds: int = 20,
                    bins: int = 10) -> RouterMetrics:
    """RouteLLM's `random` router (uniform score per prompt), averaged over `seeds` draws."""
    runs = [evaluate_scores("random", np.random.default_rng(s).random(len(strong)), strong, weak,
                            bins) for s in range(seeds)]
    curve = [
        CurvePoint(float("nan"), float(np.mean([r.curve[i].strong_share for r in runs])),
                   float(np.mean([r.curve[i].quality for r in runs])))
        for i in range(len(runs[0].curve))
    ]
    return RouterMetrics(
        "random", float(np.nanmean([r.apgr for r in runs])),
        float(np.nanmean([r.cpt50 for r in runs])), float(np.nanmean([r.cpt80 for r in runs])),
        curve, runs[0].strong_quality, runs[0].weak_quality,
    )


def length_scores(prompts: list[str]) -> np.ndarray:
    """Prompt-length baseline: longer prompt, more need of the strong model."""
    return np.array([len(p) for p in prompts], dtype=float)


def fine_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
               points: int = 101) -> dict[str, list[float]]:
    """Thresholds at every percentile of the scores, with in-house share and gap recovered.

    Used for calibration and the report's what-if; finer than the 10-bin curve.
    """
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    s_sorted, w_sorted = strong[order], weak[order]
    n = len(scores)
    sq, wq = float(np.mean(strong)), float(np.mean(weak))
    # quality when the k highest-scored prompts go to the strong model, k = 0..n
    gain = np.concatenate([[0.0], np.cumsum(s_sorted - w_sorted)])
    out: dict[str, list[float]] = {"threshold": [], "inhouse_share": [], "quality": [],
                                   "gap_recovered": []}
    for q in np.linspace(0.0, 1.0, points):
        t = float(np.quantile(scores, q)) if q < 1.0 else float(np.nextafter(scores.max(), np.inf))
        k = int(np.sum(scores >= t))
        quality = wq + gain[k] / n
        out["threshold"].append(t)
        out["inhouse_share"].append(1.0 - k / n)
        out["quality"].append(quality)
        out["gap_recovered"].append((quality - wq) / (sq - wq) if sq != wq else 1.0)
    return out


def plot_curves(results: list[RouterMetrics], path: Path, title: str = "") -> None:
    """Save the quality/strong-share curves (RouteLLM's figure) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        x, y = _sorted(r.curve)
        ax.plot(x * 100, y * 100, marker=".", label=f"{r.name} (APGR {r.apgr:.3f})")
    if results:
        ax.axhline(results[0].strong_quality * 100, color="red", linestyle="--", label="strong")
        ax.axhline(results[0].weak_quality * 100, color="grey", linestyle="--", label="weak")
    ax.set_xlabel("Strong model calls (%)")
    ax.set_ylabel("Quality (% correct)")
    ax.set_title(title or "Quality vs strong-model calls")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
