"""Fit a detector from a :class:`~aigi.config.TrainConfig` on a manifest."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigi.calibration import Calibration
from aigi.config import TrainConfig
from aigi.data.manifest import Manifest
from aigi.data.splits import validation_split, without
from aigi.detectors.base import Detector
from aigi.detectors.registry import get_detector_class
from aigi.detectors.saved import config_from_dict
from aigi.device import resolve_device
from aigi.evaluation.metrics import selective_metrics
from aigi.training.cache import hash_files


def build_detector(cfg: TrainConfig) -> Detector:
    cls = get_detector_class(cfg.detector)
    det = cls(config_from_dict(cls.Config, cfg.options)).to_device(resolve_device(cfg.device))
    det.parity = cfg.parity
    return det


@contextmanager
def distributed(device: str = "auto"):
    """Join the process group when started by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA.
    Yields (rank, world size); (0, 1) otherwise."""
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or dist.is_initialized():
        from aigi.training.loop import world

        yield world()
        return
    backend = "nccl" if resolve_device(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


MIN_CALIBRATION_IMAGES = 200
SHORTCUT_WARN_AUROC = 0.7
SEEN_PREFIX = 16  # hex digits of sha256 kept per training image (64 bits: no accidental collision)


def data_warnings(train_set: Manifest, val_set: Manifest, cfg: TrainConfig) -> list[str]:
    """What a user should know about the data before trusting the detector trained on it."""
    from aigi.evaluation.audit import audit

    out = []
    if len(val_set) < MIN_CALIBRATION_IMAGES:
        out.append(
            f"the calibration split holds {len(val_set)} images (fewer than {MIN_CALIBRATION_IMAGES}): p_fake, "
            "the threshold and --fpr rest on few examples"
        )
    try:
        res = audit(train_set)
    except Exception:  # noqa: BLE001 - too few images or one class: nothing to say
        return out
    worst = max(res["auroc_by_cue"].items(), key=lambda kv: kv[1])
    if worst[1] > SHORTCUT_WARN_AUROC:
        denial = (
            ("parity re-encoding" if cfg.parity else f"{cfg.views} shortcut-denial views per image")
            if (cfg.parity or cfg.views)
            else ""
        )
        fix = f"the recipe's {denial} must take it away" if denial else "train with shortcut-denial views or parity"
        out.append(
            f"file metadata alone tells real from fake in the training data (audit AUROC {worst[1]:.2f} from "
            f"{worst[0]}): {fix}; check the format swap (aigi compare reports it) before trusting the scores"
        )
    return out


def rates_at_threshold(p, y, gens, threshold: float) -> dict:
    """At ``threshold``: the false-positive rate of every real source and the share of every generator's
    images flagged (``gens``: each image's generator or real source), each with its image count."""
    flagged = np.asarray(p) >= threshold
    out: dict = {"threshold": float(threshold), "fpr_per_real_source": {}, "tpr_per_generator": {}}
    for label, key in ((0, "fpr_per_real_source"), (1, "tpr_per_generator")):
        for g in sorted(set(gens[y == label].tolist())):
            m = (gens == g) & (y == label)
            out[key][g] = {"n": int(m.sum()), "rate": float(flagged[m].mean())}
    return out


def source_fpr_threshold(p, y, sources, max_fpr: float, min_images: int = 10) -> float:
    """The lowest threshold (at least 0.5) at which no real source with ``min_images`` or more images has a
    false-positive rate above ``max_fpr``: the sources a user holds differ, and the worst one sets the bar."""
    from aigi.calibration import threshold_at_fpr

    thr = 0.5
    for src in sorted(set(sources[y == 0].tolist())):
        real = p[(y == 0) & (sources == src)]
        if len(real) >= min_images:
            thr = max(thr, threshold_at_fpr(real, max_fpr))
    return float(thr)


def with_renders(manifest: Manifest, count: int, seed: int) -> Manifest:
    """``manifest`` plus ``count`` rendered non-photo reals (drawn once per (count, seed) into the cache
    folder ``renders/``; a rerun reuses them)."""
    from aigi.data import load_data
    from aigi.data.renders import VERSION, render_set
    from aigi.paths import cache_dir

    folder = cache_dir() / "renders" / f"v{VERSION}-seed{seed}-n{count}"
    renders = load_data(str(render_set(folder, count, seed)))
    return Manifest([*manifest, *renders], f"{manifest.source} + {count} renders (seed {seed})", manifest.layout)


def recipe_manifest(cfg: TrainConfig, manifest: Manifest) -> Manifest:
    """The images ``cfg``'s recipe trains on: ``manifest`` plus ``cfg.renders`` rendered non-photo reals,
    then at most ``cfg.max_per_generator`` of every (label, generator or source), seeded, then without the
    demo's bundled images (matched by the manifest's sha256 column; ``aigi.samples.demo_sha256``), which no
    recipe may train on, then a reconstructed fake twin of every real of ``cfg.reconstructions`` (only of the
    reals the fold trains on, so a held-out image never has a twin in training). ``aigi train`` and every
    evaluation protocol's training fold go through here, so a fold
    trains as the shipped run did."""
    from aigi.samples import demo_sha256

    if cfg.renders:
        manifest = with_renders(manifest, cfg.renders, cfg.seed)
    if cfg.max_per_generator:
        from aigi.data.splits import seeded_subset

        manifest = seeded_subset(manifest, cfg.max_per_generator, cfg.seed)
    demo = demo_sha256()
    if any(s.sha256 in demo for s in manifest):
        manifest = manifest.subset(lambda s: s.sha256 not in demo)
    if cfg.reconstructions:
        from aigi.augment.reconstruct import RECONSTRUCTION_VERSION, reconstruct_sources
        from aigi.paths import cache_dir

        twins, _ = reconstruct_sources(
            manifest, cfg.reconstructions, cache_dir() / "reconstructions" / f"v{RECONSTRUCTION_VERSION}"
        )
        manifest = Manifest([*manifest, *twins], f"{manifest.source} + {twins.source}", manifest.layout)
    return manifest


def split_reserved(cfg: TrainConfig, manifest: Manifest, det: Detector | None = None) -> tuple[Manifest, Manifest]:
    """(the samples ``cfg``'s detector reserves for pre-training (``Detector.reserved``), the rest). Training
    and every protocol take them out of the whole data first; only the rest goes through the recipe."""
    idx = (det or build_detector(cfg)).reserved(manifest)
    return manifest.subset(idx), without(manifest, idx)


@dataclass
class Fitted:
    """What :func:`fit_sequence` leaves: the fitted detector, the data it was fitted and validated on (after
    the reservation, the recipe's renders and cap, and the split), and each stage's report."""

    det: Detector
    data: Manifest
    train_set: Manifest
    val_set: Manifest
    info: dict[str, Any]


def fit_sequence(
    cfg: TrainConfig,
    manifest: Manifest,
    reserved: Manifest | None = None,
    progress: Callable[[int], None] | None = None,
    calibrate: bool = True,
) -> Fitted:
    """The one training sequence (``aigi train``, every protocol fold, ``compare``): build (seeded) -> reserve
    (``Detector.reserved`` samples leave the data first, or ``reserved`` when given, already outside
    ``manifest``) -> the recipe's renders and cap (:func:`recipe_manifest`) -> ``pretrain`` -> validation
    split -> ``fit`` -> ``fit_validation``. The split is ``cfg.val_fraction`` when the detector will be
    ``calibrate``-d or has a second stage fitted on a split (AlignGemini's fusion), else none (a protocol fold
    ranks by raw scores). Under data-parallel training only rank 0 runs ``fit_validation``."""
    from aigi.training.loop import world

    torch.manual_seed(cfg.seed)  # the same initial weights in every process and every run
    det = build_detector(cfg)
    if reserved is None:
        reserved, manifest = split_reserved(cfg, manifest, det)
    manifest = recipe_manifest(cfg, manifest)  # after the reservation
    info: dict[str, Any] = {}
    if len(reserved):
        info["pretrain"] = det.pretrain(reserved, cfg)
    fraction = cfg.val_fraction if (calibrate or det.has_validation_stage) else 0.0
    if fraction > 0:
        train_idx, val_idx = validation_split(manifest, fraction, cfg.seed)
    else:
        train_idx, val_idx = np.arange(len(manifest)), np.array([], dtype=int)
    train_set, val_set = manifest.subset(train_idx), manifest.subset(val_idx)
    info["fit"] = det.fit(train_set, cfg, progress)
    if len(val_set) and world()[0] == 0:
        second = det.fit_validation(val_set, cfg)
        if second is not None:
            info["fit_validation"] = second
    return Fitted(det, manifest, train_set, val_set, info)


def train_detector(
    cfg: TrainConfig,
    manifest: Manifest,
    out_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    reserved: Manifest | None = None,
) -> Detector:
    """:func:`fit_sequence`, then calibrate on its validation split, set the threshold by the recipe's rule,
    record the run and save."""
    from aigi.evaluation.scores import score
    from aigi.training.loop import world

    t0 = time.time()
    fitted = fit_sequence(cfg, manifest, reserved, progress)
    det, manifest, train_set, val_set = fitted.det, fitted.data, fitted.train_set, fitted.val_set
    if world()[0] != 0:  # data-parallel training: rank 0 calibrates and saves
        return det
    info: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "data": manifest.source,
        "train": train_set.summary(),
        **{k: v for k, v in fitted.info.items() if v is not None},
    }
    info["warnings"] = data_warnings(train_set, val_set, cfg)
    # what the detector saw, so an evaluation can tell when it is shown the same files again
    info["seen_sha256"] = sorted({s[:SEEN_PREFIX] for s in hash_files([x.path for x in manifest])[0] if s})
    if len(val_set):
        s = score(det, val_set)  # raw logits: the calibration is fitted on these
        ok = s.ok
        det.calibration = Calibration.fit(
            s.z[ok],
            s.labels[ok],
            cfg.calibration,
            cfg.unsure_band,
            source=f"validation split of {manifest.source} ({int(ok.sum())} images)",
        )
        p = s.p(det)
        if cfg.max_source_fpr > 0:  # the per-source rule replaces any decision point of the detector's own
            det.calibration.threshold = source_fpr_threshold(p[ok], s.labels[ok], s.generators[ok], cfg.max_source_fpr)
        elif det.raw_decision_logit is not None:
            det.calibration.threshold = float(det.calibration.apply_logit(np.array([det.raw_decision_logit]))[0])
        info["validation"] = {
            "data": val_set.summary(),
            "metrics": s.metrics(p),
            "metrics_uncalibrated": s.metrics(s.p()),
            "selective": selective_metrics(s.labels[ok], p[ok], 0.5, cfg.unsure_band),
            "at_threshold": rates_at_threshold(p[ok], s.labels[ok], s.generators[ok], det.calibration.threshold),
        }
    info["seconds"] = float(round(time.time() - t0, 1))
    det.training_info = info
    if out_dir is not None:
        det.save_pretrained(out_dir)
    return det
