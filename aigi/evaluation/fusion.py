"""Fusing two detectors' scores (AlignGemini's semantic branch and pixel expert).

- OR rule: flag an image when either branch fires. Each branch's threshold is set on real
  validation images so that the FUSED false-positive rate (reals flagged by either branch) stays
  within a budget. How the budget is split between branches is chosen to maximise the fused
  true-positive rate on validation fakes when they are given, else split evenly.
- Learned fusion: logistic regression on the two branches' logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aigi.calibration import logit, threshold_at_fpr


def or_fire(a, b, ta: float, tb: float) -> np.ndarray:
    """Which images the OR rule flags."""
    return (np.asarray(a) >= ta) | (np.asarray(b) >= tb)


def fired_branch(a: float, b: float, ta: float, tb: float) -> str:
    """'semantic', 'pixel', 'both' or 'none' for one image (a = semantic, b = pixel)."""
    fa, fb = a >= ta, b >= tb
    return "both" if fa and fb else "semantic" if fa else "pixel" if fb else "none"


def _tightest_b(real_a, real_b, ta: float, budget: float) -> float:
    """Smallest tb with mean((a >= ta) | (b >= tb)) <= budget over the reals, given ta."""
    real_a, real_b = np.asarray(real_a), np.asarray(real_b)
    n = real_a.size
    allowed = int(np.floor(budget * n + 1e-9)) - int((real_a >= ta).sum())
    rest = np.sort(real_b[real_a < ta])[::-1]  # reals branch a did not flag, highest b first
    if allowed < 0:
        return np.inf
    if allowed >= rest.size:
        return float(rest[-1]) if rest.size else -np.inf
    return float(np.nextafter(rest[allowed], np.inf))


def fit_or_thresholds(real_a, real_b, budget: float = 0.05, fake_a=None, fake_b=None, steps: int = 21) -> dict:
    """Per-branch thresholds (ta, tb) whose fused FPR on the given reals is <= ``budget``."""
    real_a, real_b = np.asarray(real_a, float), np.asarray(real_b, float)
    if real_a.shape != real_b.shape or real_a.size == 0:
        raise ValueError("fit_or_thresholds needs the same, non-empty set of reals scored by both branches")
    candidates: list[dict[str, Any]] = []
    for alpha in np.linspace(0.0, budget, steps):  # FPR granted to branch a on its own
        ta = threshold_at_fpr(real_a, float(alpha))
        tb = _tightest_b(real_a, real_b, ta, budget)
        fpr = float(or_fire(real_a, real_b, ta, tb).mean())
        tpr = float(or_fire(fake_a, fake_b, ta, tb).mean()) if fake_a is not None else None
        candidates.append({"ta": ta, "tb": tb, "alpha": float(alpha), "fused_fpr": fpr, "fused_tpr": tpr})
    if fake_a is not None:
        best = max(candidates, key=lambda c: (c["fused_tpr"], -abs(c["alpha"] - budget / 2)))
    else:  # no fakes to choose by: the split closest to equal per-branch FPR
        best = min(candidates, key=lambda c: abs(float((real_a >= c["ta"]).mean()) - float((real_b >= c["tb"]).mean())))
    return {**best, "budget": budget}


def fit_logistic_fusion(a, b, labels) -> dict:
    """Weights of sigmoid(w_a * logit(a) + w_b * logit(b) + c)."""
    from sklearn.linear_model import LogisticRegression

    X = np.stack([logit(a), logit(b)], axis=1)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, np.asarray(labels, int))
    return {"w_a": float(lr.coef_[0, 0]), "w_b": float(lr.coef_[0, 1]), "c": float(lr.intercept_[0])}


def logistic_fuse(a, b, params: dict) -> np.ndarray:
    z = params["w_a"] * logit(a) + params["w_b"] * logit(b) + params["c"]
    return 1.0 / (1.0 + np.exp(-z))
