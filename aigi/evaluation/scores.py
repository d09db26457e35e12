"""Score a manifest once, then read metrics from it: the one "score -> drop failures -> metrics" path used by
``aigi eval``, the protocols, ``compare`` and training's validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aigi.calibration import sigmoid
from aigi.evaluation.metrics import binary_metrics, per_generator, selective_metrics
from aigi.scoring import Perturb, calibrated, forward_manifest, logits


@dataclass
class Scores:
    """One forward pass of a detector over a manifest. ``z``: each sample's raw logit (NaN where the file
    failed); ``out``/``read``: the forward output over the readable samples and which samples they are (record
    fields such as attribution: ``det.extra_fields(out, row)``)."""

    z: np.ndarray
    labels: np.ndarray
    generators: np.ndarray
    errors: list[str | None]
    out: dict[str, Any] | None = None
    read: np.ndarray | None = None

    @property
    def ok(self) -> np.ndarray:
        return ~np.isnan(self.z)

    def p(self, det=None) -> np.ndarray:
        """p_fake per sample (NaN kept): the detector's calibration when given, else the raw sigmoid (what a
        protocol fold, which is never calibrated, ranks by)."""
        return sigmoid(self.z) if det is None else calibrated(det, self.z)

    def metrics(self, p: np.ndarray, threshold: float = 0.5, unsure_band: float | None = None) -> dict:
        """Binary metrics over the scored samples (and the selective ones when an unsure band is given)."""
        ok = self.ok
        m = binary_metrics(self.labels[ok], p[ok], threshold)
        if unsure_band is not None:
            m.update(selective_metrics(self.labels[ok], p[ok], threshold, unsure_band))
        return m

    def per_generator(self, p: np.ndarray, threshold: float = 0.5) -> dict:
        ok = self.ok
        return per_generator(self.labels[ok], p[ok], self.generators[ok].tolist(), threshold)


def score(det, manifest, perturb: Perturb | None = None, progress: Callable[[int], None] | None = None) -> Scores:
    """Every sample's plain view (or ``perturb`` of it) through the detector, once, through the feature cache."""
    out, read, errors = forward_manifest(det, manifest, perturb, progress=progress)
    return Scores(
        logits(out, read),
        np.asarray(manifest.labels),
        np.array([s.generator for s in manifest], dtype=object),
        errors,
        out,
        read,
    )
