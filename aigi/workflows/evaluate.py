"""``aigi eval`` as Python: :func:`evaluate` returns the dict the command prints and writes as JSON.

Two kinds of evaluation: a trained detector on a manifest (:func:`evaluate_detector`: metrics overall and per
generator at its operating point, attribution of the flagged fakes), or a protocol that trains one detector per
fold from a recipe (:func:`run_protocol`). Both score the pixels alone: provenance is not read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigi.config import TrainConfig
from aigi.data.manifest import Manifest

PROTOCOLS = ("leave-generator-out", "leave-family-out", "leave-source-out", "train-on:GEN1,GEN2", "cross-dataset")


def seen_count(det, manifest: Manifest) -> int:
    """How many images of ``manifest`` are byte-identical to images ``det`` was trained or calibrated on (their
    sha256 prefixes are saved with it)."""
    seen = set(det.training_info.get("seen_sha256", []))
    if not seen:
        return 0
    from aigi.training.cache import hash_files

    width = len(next(iter(seen)))
    return sum(1 for s in hash_files([x.path for x in manifest])[0] if s and s[:width] in seen)


def evaluate_detector(
    det,
    manifest: Manifest,
    threshold: float | None = None,
    fpr: float | None = None,
    unsure_band: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """A trained detector on ``manifest`` (minus the images it reserved for pre-training), at the operating
    point ``threshold``/``fpr`` give (default: its own): overall and selective metrics, per generator, the
    attribution of the flagged fakes (when it has an attribution head), per-file errors, and ``warnings`` (images
    left out, images it has seen). A bad ``threshold``/``fpr`` is a ``ValueError``."""
    from aigi.data.splits import without
    from aigi.evaluation.attribution import attribution_metrics, family_answers
    from aigi.evaluation.scores import score
    from aigi.records import unsure_interval

    thr = det.calibration.threshold_for(threshold, fpr)
    warnings = []
    reserved = det.reserved(manifest)
    if len(reserved):
        warnings.append(f"left out {len(reserved)} images {det.name} reserved for its pre-training")
        manifest = without(manifest, reserved)
    seen = seen_count(det, manifest)
    if seen:
        warnings.append(
            f"{seen} of the {len(manifest)} images are byte-identical to images {det.name} was trained or "
            "calibrated on: their scores say nothing about images it has not seen"
        )
    s = score(det, manifest, progress=progress)  # one pass: scores and families
    p = s.p(det)
    band = det.calibration.unsure_band if unsure_band is None else unsure_band
    result: dict[str, Any] = {
        "detector": det.name,
        "detector_version": det.version,
        "data": manifest.source,
        "calibration": det.calibration.method,
        "overall": s.metrics(p, thr, band),
        "per_generator": s.per_generator(p, thr),
        "errors": [e for e in s.errors if e],
        "warnings": warnings,
        "n_seen": seen,
    }
    answers = family_answers(det, s.out, s.read) if s.read is not None else []
    if answers:
        lo = unsure_interval(thr, band)[0]
        flagged = [bool(q > lo) for q in p]  # fake or unsure
        result["attribution"] = attribution_metrics(
            s.generators.tolist(), s.labels.tolist(), flagged, answers, list(det.families)
        )
    result["provenance"] = "not used"
    return result


def run_protocol(
    cfg: TrainConfig,
    manifest: Manifest,
    protocol: str,
    seeds: list[int],
    test_manifest: Manifest | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """One of :data:`PROTOCOLS` with the recipe ``cfg`` (one detector trained per fold; leave-source-out leaves
    out each name of ``sources``, or every real source). An unknown protocol, a cross-data-set run without
    ``test_manifest``, ``sources`` with another protocol or a protocol the data cannot support is a
    ``ValueError``."""
    from aigi.workflows.protocols import run_cross_dataset, run_leave_generator_out, run_leave_source_out, run_train_on

    if sources and protocol != "leave-source-out":
        raise ValueError("--sources goes with --protocol leave-source-out")
    if protocol in ("leave-generator-out", "leave-family-out"):
        families = protocol == "leave-family-out"
        return run_leave_generator_out(cfg, manifest, seeds, on_fold=on_fold, families=families)
    if protocol == "leave-source-out":
        return run_leave_source_out(cfg, manifest, seeds, sources, on_fold=on_fold)
    if protocol.startswith("train-on:"):
        return run_train_on(cfg, manifest, [g for g in protocol.split(":", 1)[1].split(",") if g], seeds[0])
    if protocol == "cross-dataset":
        if test_manifest is None:
            raise ValueError("--protocol cross-dataset needs --test-data")
        return run_cross_dataset(cfg, manifest, test_manifest)
    raise ValueError(f"unknown protocol {protocol!r}: use {', '.join(PROTOCOLS[:-1])} or {PROTOCOLS[-1]}")


def evaluate(
    data: str | Manifest,
    detector=None,
    config: TrainConfig | str | None = None,
    protocol: str | None = None,
    seeds: list[int] | tuple[int, ...] = (0,),
    test_data: str | Manifest | None = None,
    threshold: float | None = None,
    fpr: float | None = None,
    unsure_band: float | None = None,
    device: str | None = None,
    progress: Callable[[int], None] | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
    sources: list[str] | None = None,
) -> dict[str, Any]:
    """``aigi eval``: with ``protocol``, :func:`run_protocol` with the recipe ``config`` (a TrainConfig or a
    YAML path); else :func:`evaluate_detector` with ``detector`` (a loaded detector, e.g. ``aigi.load_detector()``,
    or a saved directory). ``data``/``test_data``: a manifest or what ``--data`` takes."""
    from aigi.data import load_data

    manifest = load_data(data) if isinstance(data, str) else data
    if protocol:
        if config is None:
            raise ValueError("--protocol needs --config (the recipe to train per fold)")
        if not isinstance(config, TrainConfig):
            from aigi.config import load_train_config

            config = load_train_config(config)
        if device:
            config.device = device
        test = load_data(test_data) if isinstance(test_data, str) else test_data
        result = run_protocol(config, manifest, protocol, list(seeds), test, on_fold, sources)
        result["provenance"] = "not used"
        return result
    if detector is None:
        raise ValueError("evaluate needs a detector (a loaded one, or a saved directory) or a protocol")
    if isinstance(detector, (str, os.PathLike)):
        from aigi.detectors.saved import from_pretrained

        detector = from_pretrained(Path(detector), device or "cpu")
    return evaluate_detector(detector, manifest, threshold, fpr, unsure_band, progress)
