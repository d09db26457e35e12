"""Robustness sweep: metrics of a detector as its inputs are JPEG/WebP-compressed, resized,
blurred, noised, cropped or laundered through a social-media pipeline.

Run on a seeded subset (at most ``per_group`` images per generator and per real source) so it
fits a 2-core machine. The perturbations are the ones training augmentation draws from
(``aigi/transforms.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from aigi.data.manifest import Manifest
from aigi.evaluation.metrics import auroc, average_precision, balanced_accuracy
from aigi.scoring import calibrated_scores
from aigi.transforms import PERTURBATIONS, perturbation


def conditions(names: list[str] | None = None) -> list[tuple[str, Any]]:
    """(perturbation, severity) pairs: every listed severity of each name (default: of every perturbation), or
    one severity where a name reads ``name:severity`` (``jpeg:50``, ``resize:0.5``)."""
    out: list[tuple[str, Any]] = []
    for n in names or list(PERTURBATIONS):
        name, _, sev = n.partition(":")
        if name not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
        listed = PERTURBATIONS[name][0]
        if not sev:
            out += [(name, s) for s in listed]
            continue
        kind = type(listed[0])
        try:
            value = float(sev)
            ok = math.isfinite(value) and value > 0 and kind(value) == value
        except (ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(
                f"perturbation {n!r}: the severity must be a positive {kind.__name__}, e.g. {name}:{listed[0]}"
            )
        out.append((name, kind(value)))
    return out


def robustness_sweep(
    detector, manifest: Manifest, names: list[str] | None = None, progress: Callable[[str], None] | None = None
) -> dict:
    """Calibrated metrics on the clean images and under every condition of ``names`` (see :func:`conditions`)."""
    y = np.asarray(manifest.labels)
    gens = np.asarray([s.generator for s in manifest])
    cal = detector.calibration

    def measure(name, severity, perturb):
        p, _ = calibrated_scores(detector, manifest, perturb=perturb)
        ok = ~np.isnan(p)
        row = {
            "perturbation": name,
            "severity": severity,
            "n": int(ok.sum()),
            "auroc": auroc(y[ok], p[ok]),
            "ap": average_precision(y[ok], p[ok]),
            "balanced_accuracy": balanced_accuracy(y[ok], p[ok], cal.threshold),
            "mean_p_fake_real": float(p[ok & (y == 0)].mean()),
            "mean_p_fake_fake": float(p[ok & (y == 1)].mean()),
            "auroc_per_generator": {
                g: auroc(y[ok & ((gens == g) | (y == 0))], p[ok & ((gens == g) | (y == 0))])
                for g in sorted(set(gens[y == 1]))
            },
        }
        if progress:
            progress(f"{name} {severity}: AUROC {row['auroc']:.3f}")
        return row

    rows = [measure("none", 0, None)]
    for name, sev in conditions(names):
        rows.append(measure(name, sev, perturbation(name, sev)))
    return {"detector": detector.name, "detector_version": detector.version, "data": manifest.summary(), "rows": rows}
