"""Turning a detector's score into a decision: the threshold, and thresholds at a target FPR.

Stored beside a detector as ``calibration.json``. It keeps the p_fake scores of held-out
validation real images, so a user can ask for the threshold that flags at most a given
fraction of real photos (``--fpr``) instead of the arbitrary 0.5.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"


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
    threshold: float = 0.5
    real_scores: list[float] = field(default_factory=list)  # validation reals' p_fake
    source: str = ""  # which data the real scores came from

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
                raise ValueError("this detector stores no validation real scores, so --fpr cannot be used; "
                                 "pass --threshold instead")
            return threshold_at_fpr(np.asarray(self.real_scores), fpr)
        return float(self.threshold)

    def save(self, directory: str | Path) -> None:
        data = {"threshold": self.threshold, "real_scores": [round(float(x), 6) for x in self.real_scores],
                "source": self.source}
        (Path(directory) / CALIBRATION_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> "Calibration":
        p = Path(directory) / CALIBRATION_FILE
        if not p.is_file():
            return cls()
        d = json.loads(p.read_text())
        return cls(threshold=float(d.get("threshold", 0.5)), real_scores=list(d.get("real_scores", [])),
                   source=d.get("source", ""))
