"""Turning a detector's raw score into a calibrated probability and a decision.

Stored beside a detector as ``calibration.json``:
- ``method`` and ``params``: a map from the detector's raw logit z to a calibrated p_fake, fitted on
  held-out validation images: ``temperature`` (sigmoid(z / T)), ``platt`` (sigmoid(a z + b)),
  ``isotonic`` (a monotone step function of sigmoid(z), interpolated), or ``none`` (sigmoid(z)). The
  map works on the logit itself, so no probability is ever clipped and turned back into a logit;
- ``threshold``: the default cut on the calibrated p_fake;
- ``real_scores``: calibrated p_fake of the validation reals, so ``--fpr`` can choose the threshold
  that flags at most a given fraction of real photos;
- ``unsure_band``: calibrated scores within this distance of the threshold get the verdict
  ``unsure`` instead of a coin flip.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"
METHODS = ("none", "temperature", "platt", "isotonic")
_EPS = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def fit_temperature(z_raw, labels) -> dict:
    """T minimising the log-loss of sigmoid(z / T) (one parameter; keeps the ranking)."""
    from scipy.optimize import minimize_scalar

    z, y = np.asarray(z_raw, dtype=np.float64), np.asarray(labels, dtype=np.float64)

    def nll(log_t):
        q = np.clip(sigmoid(z / math.exp(log_t)), _EPS, 1 - _EPS)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    res = minimize_scalar(nll, bounds=(-5, 5), method="bounded")
    return {"T": float(math.exp(res.x))}


def fit_platt(z_raw, labels) -> dict:
    """a, b of sigmoid(a z + b), by (practically unregularised) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(z_raw, dtype=np.float64).reshape(-1, 1)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(z, np.asarray(labels, dtype=int))
    return {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def fit_isotonic(z_raw, labels) -> dict:
    """A monotone non-decreasing map of sigmoid(z) fitted by isotonic regression, stored as its knots."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(sigmoid(z_raw), np.asarray(labels, float))
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


FITTERS = {"temperature": fit_temperature, "platt": fit_platt, "isotonic": fit_isotonic}


def apply_calibration(method: str, params: dict, z_raw) -> np.ndarray:
    """Raw logits -> calibrated p_fake."""
    z = np.asarray(z_raw, dtype=np.float64)
    if method == "none":
        return sigmoid(z)
    if method == "temperature":
        return sigmoid(z / params["T"])
    if method == "platt":
        return sigmoid(params["a"] * z + params["b"])
    if method == "isotonic":
        return np.interp(sigmoid(z), params["x"], params["y"])
    raise ValueError(f"unknown calibration method {method!r}; use one of {METHODS}")


def threshold_at_fpr(real_scores: np.ndarray, fpr: float) -> float:
    """The smallest threshold t with ``mean(real_scores >= t) <= fpr``.

    With n real scores sorted in descending order s_1 >= ... >= s_n, at most k = floor(fpr n)
    of them may reach t, so t sits just above s_{k+1}. Ties at s_{k+1} all fall below t.
    """
    s = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if s.size == 0:
        raise ValueError("threshold_at_fpr needs at least one real score")
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    k = int(math.floor(fpr * s.size + 1e-9))
    if k >= s.size:
        return float(s[-1])  # every real may be flagged
    return float(np.nextafter(s[k], np.inf))


@dataclass
class Calibration:
    method: str = "none"
    params: dict = field(default_factory=dict)
    threshold: float = 0.5
    real_scores: list[float] = field(default_factory=list)  # calibrated p_fake of validation reals
    unsure_band: float = 0.0
    source: str = ""  # which data it was fitted on

    @classmethod
    def fit(cls, z_raw, labels, method: str = "platt", unsure_band: float = 0.0, source: str = "") -> Calibration:
        """Fit ``method`` on validation logits; keep the calibrated scores of the reals."""
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; use one of {METHODS}")
        y = np.asarray(labels, dtype=int)
        p = np.asarray(z_raw, dtype=np.float64)
        params = FITTERS[method](p, y) if method != "none" and len(set(y.tolist())) == 2 else {}
        if method != "none" and not params:
            method = "none"  # one class only: nothing to calibrate against
        cal = cls(method=method, params=params, unsure_band=unsure_band, source=source)
        cal.real_scores = sorted(cal.apply_logit(p[y == 0]).round(6).tolist())
        return cal

    def apply_logit(self, z_raw) -> np.ndarray:
        """Raw logits -> calibrated p_fake."""
        return apply_calibration(self.method, self.params, z_raw)

    def threshold_for(self, threshold: float | None = None, fpr: float | None = None) -> float:
        """An explicit threshold wins; else the threshold at ``fpr``; else the stored default."""
        if threshold is not None and fpr is not None:
            raise ValueError("give either a threshold or a target FPR, not both")
        if threshold is not None:
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {threshold}")
            return float(threshold)
        if fpr is not None:
            if not self.real_scores:
                raise ValueError(
                    "this detector stores no validation real scores, so --fpr cannot be used; pass --threshold instead"
                )
            return threshold_at_fpr(np.asarray(self.real_scores), fpr)
        return float(self.threshold)

    def save(self, directory: str | Path) -> None:
        data = {
            "method": self.method,
            "params": self.params,
            "threshold": self.threshold,
            "unsure_band": self.unsure_band,
            "source": self.source,
            "real_scores": [round(float(x), 6) for x in self.real_scores],
        }
        (Path(directory) / CALIBRATION_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> Calibration:
        p = Path(directory) / CALIBRATION_FILE
        if not p.is_file():
            return cls()
        d = json.loads(p.read_text())
        method = d.get("method", "none")
        if method not in METHODS:
            raise ValueError(f"{p}: unknown calibration method {method!r}")
        return cls(
            method=method,
            params=d.get("params", {}),
            threshold=float(d.get("threshold", 0.5)),
            real_scores=list(d.get("real_scores", [])),
            unsure_band=float(d.get("unsure_band", 0.0)),
            source=d.get("source", ""),
        )
