"""Detection metrics as small pure functions of (labels, scores).

``labels``: 1 = fake (positive), 0 = real. ``scores``: p_fake in [0, 1] (higher = more fake).
AUROC, AP and the ROC curve come from scikit-learn; the rest is written here and unit
tested on hand-computed cases.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from aigi.records import unsure_interval


def _arrays(labels, scores):
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    return y, s


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    y, s = _arrays(labels, scores)
    return float(np.mean((s >= threshold).astype(int) == y)) if y.size else math.nan


def class_accuracy(labels, scores, threshold: float = 0.5) -> tuple[float, float]:
    """(real accuracy = specificity, fake accuracy = recall) at ``threshold``."""
    y, s = _arrays(labels, scores)
    pred = s >= threshold
    real = float(np.mean(~pred[y == 0])) if np.any(y == 0) else math.nan
    fake = float(np.mean(pred[y == 1])) if np.any(y == 1) else math.nan
    return real, fake


def balanced_accuracy(labels, scores, threshold: float = 0.5) -> float:
    r, f = class_accuracy(labels, scores, threshold)
    return (r + f) / 2


def _both_classes(y) -> bool:
    return bool(np.any(y == 0) and np.any(y == 1))


def auroc(labels, scores) -> float:
    y, s = _arrays(labels, scores)
    return float(roc_auc_score(y, s)) if _both_classes(y) else math.nan


def average_precision(labels, scores) -> float:
    y, s = _arrays(labels, scores)
    return float(average_precision_score(y, s)) if _both_classes(y) else math.nan


def eer(labels, scores) -> float:
    """Equal error rate: where the false-positive rate equals the false-negative rate,
    linearly interpolated between the two ROC points that bracket the crossing."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1 - tpr
    diff = fpr - fnr  # goes from <= 0 (at fpr=0) to >= 0 (at fpr=1)
    k = int(np.argmax(diff >= 0))
    if k == 0 or diff[k] == 0:
        return float(fpr[k])
    # interpolate between k-1 and k
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def tpr_at_fpr(labels, scores, target_fpr: float) -> float:
    """The highest true-positive rate reachable by a threshold whose FPR is <= ``target_fpr``."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= target_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def expected_calibration_error(labels, scores, n_bins: int = 15) -> float:
    """ECE with equal-width bins on p_fake: sum_b (n_b/N) |mean(y in b) - mean(p in b)|.
    A score of exactly 1.0 falls in the last bin."""
    y, s = _arrays(labels, scores)
    if y.size == 0:
        return math.nan
    bins = np.minimum((s * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.sum() / y.size * abs(y[m].mean() - s[m].mean())
    return float(total)


def brier(labels, scores) -> float:
    y, s = _arrays(labels, scores)
    return float(np.mean((s - y) ** 2)) if y.size else math.nan


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """Every headline metric at once."""
    real_acc, fake_acc = class_accuracy(labels, scores, threshold)
    return {
        "n": int(np.size(labels)),
        "n_real": int(np.sum(np.asarray(labels) == 0)),
        "n_fake": int(np.sum(np.asarray(labels) == 1)),
        "accuracy@0.5": accuracy(labels, scores, 0.5),
        "threshold": float(threshold),
        "accuracy": accuracy(labels, scores, threshold),
        "real_accuracy": real_acc,
        "fake_accuracy": fake_acc,
        "balanced_accuracy": (real_acc + fake_acc) / 2,
        "auroc": auroc(labels, scores),
        "ap": average_precision(labels, scores),
        "eer": eer(labels, scores),
        "tpr@1%fpr": tpr_at_fpr(labels, scores, 0.01),
        "tpr@5%fpr": tpr_at_fpr(labels, scores, 0.05),
        "ece": expected_calibration_error(labels, scores),
        "brier": brier(labels, scores),
    }


def per_generator(labels, scores, generators, threshold: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per fake generator: recall (and AUROC against all reals); per real source: specificity."""
    y, s = _arrays(labels, scores)
    g = np.asarray(generators)
    reals = y == 0
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(g.tolist())):
        m = g == name
        label = int(y[m][0])
        if label == 1:
            rows = m | reals
            out[name] = {
                "label": "fake",
                "n": int(m.sum()),
                "recall": float(np.mean(s[m] >= threshold)),
                "mean_p_fake": float(s[m].mean()),
                "auroc_vs_all_reals": auroc(y[rows], s[rows]) if reals.any() else math.nan,
            }
        else:
            out[name] = {
                "label": "real",
                "n": int(m.sum()),
                "specificity": float(np.mean(s[m] < threshold)),
                "mean_p_fake": float(s[m].mean()),
            }
    return out


def selective_metrics(labels, scores, threshold: float, unsure_band: float) -> dict[str, float]:
    """With the unsure interval of ``unsure_band`` around ``threshold`` (``records.unsure_interval``): the
    fraction of images left unsure, and the accuracy on the confident rest."""
    y, s = _arrays(labels, scores)
    lo, hi = unsure_interval(threshold, unsure_band)
    confident = ~((s > lo) & (s < hi))
    n = int(confident.sum())
    return {
        "unsure_band": float(unsure_band),
        "unsure_fraction": float(1 - n / y.size) if y.size else math.nan,
        "n_confident": n,
        "accuracy_confident": float(np.mean((s[confident] >= threshold) == (y[confident] == 1))) if n else math.nan,
    }


def reliability_curve(labels, scores, n_bins: int = 10) -> dict[str, list[float]]:
    """Per equal-width bin of p_fake: mean predicted probability, observed fake fraction, count."""
    y, s = _arrays(labels, scores)
    bins = np.minimum((s * n_bins).astype(int), n_bins - 1)
    out: dict[str, list[float]] = {"mean_predicted": [], "fraction_fake": [], "count": []}
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out["mean_predicted"].append(float(s[m].mean()))
            out["fraction_fake"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
    return out
