"""Evaluation protocols, defined once: leave-generator-out (and -family-out), leave-source-out, train-on-K and
cross-data-set.

Leave-generator-out: for each fake generator G, train on every other generator plus a seeded 80 % of
the reals (stratified by source) and test on G's fakes against the other 20 % of reals. Samples a
detector reserves for pre-training leave the data before any fold is drawn."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from aigi.config import TrainConfig
from aigi.data.manifest import Manifest
from aigi.data.splits import Fold, leave_generator_out, train_on_generators
from aigi.evaluation.scores import score
from aigi.workflows.train import split_reserved


def fit_for_protocol(
    cfg: TrainConfig, train: Manifest, progress: Callable[[int], None] | None = None, reserved: Manifest | None = None
):
    """A detector trained on ``train`` for a protocol fold: AUROC needs no calibration, so there is no
    validation split, except for detectors with a second stage fitted on one (AlignGemini's
    fusion): those get ``cfg.val_fraction`` of ``train`` for it. ``reserved`` samples (see
    :func:`~aigi.workflows.train.split_reserved`) go to the detector's ``pretrain`` first. ``train`` goes
    through the recipe's renders and per-generator cap (:func:`~aigi.workflows.train.recipe_manifest`); the
    test side never does. The sequence is training's own (:func:`~aigi.workflows.train.fit_sequence`, not
    calibrated). Returns (detector, fit info)."""
    from aigi.workflows.train import fit_sequence

    fitted = fit_sequence(cfg, train, reserved, progress, calibrate=False)
    if "fit_validation" in fitted.info:
        return fitted.det, {"fit": fitted.info["fit"], "fit_validation": fitted.info["fit_validation"]}
    return fitted.det, fitted.info["fit"]


def run_fold(
    cfg: TrainConfig,
    manifest: Manifest,
    fold: Fold,
    progress: Callable[[int], None] | None = None,
    reserved: Manifest | None = None,
) -> dict:
    """Train on the fold's train indices (:func:`fit_for_protocol`), score its test indices."""
    det, fit_info = fit_for_protocol(cfg, manifest.subset(fold.train), progress, reserved)
    s = score(det, manifest.subset(fold.test))
    p, ok = s.p(), s.ok  # raw scores: AUROC needs no calibration
    return {
        "fold": fold.name,
        "fit": fit_info,
        "scores": {
            "labels": s.labels[ok].tolist(),
            "p_fake": np.round(p[ok], 6).tolist(),
            "generators": s.generators[ok].tolist(),
        },
        "metrics": s.metrics(p),
        "per_generator": s.per_generator(p),
        "n_errors": int((~ok).sum()),
    }


def run_leave_generator_out(
    cfg: TrainConfig,
    manifest: Manifest,
    seeds=(0,),
    progress: Callable[[int], None] | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
    reserved: Manifest | None = None,
    families: bool = False,
) -> dict:
    """AUROC per held-out generator (or, with ``families``, per held-out family of ``FAMILIES``; mean and
    sd over ``seeds``), plus every fold's metrics. Samples the detector reserves for pre-training are taken
    out before the folds are drawn (or are given as ``reserved``, already outside ``manifest``)."""
    from aigi.data.splits import leave_family_out

    if reserved is None:
        reserved, manifest = split_reserved(cfg, manifest)
    folds_out = []
    for seed in seeds:
        for fold in (leave_family_out if families else leave_generator_out)(manifest, seed=seed):
            r = run_fold(cfg, manifest, fold, progress, reserved)
            r["seed"] = seed
            folds_out.append(r)
            if on_fold:
                on_fold(seed, r)
    summary = {}
    for g in dict.fromkeys(f["fold"] for f in folds_out):
        vals = [f["metrics"]["auroc"] for f in folds_out if f["fold"] == g]
        summary[g] = {"auroc_mean": float(np.mean(vals)), "auroc_sd": float(np.std(vals)), "n_seeds": len(vals)}
    means = [v["auroc_mean"] for v in summary.values()]
    return {
        "protocol": "leave-family-out" if families else "leave-generator-out",
        "seeds": list(seeds),
        "n_reserved": len(reserved),
        "auroc": summary,
        "mean_auroc": float(np.mean(means)),
        "folds": folds_out,
    }


def run_leave_source_out(
    cfg: TrainConfig,
    manifest: Manifest,
    seeds=(0,),
    sources: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
) -> dict:
    """Per real source S and seed: train as ``aigi train`` does (validation split, calibration, the recipe's
    threshold rule) on everything but S, then read S's false-positive rate at that threshold. The rule's own
    in-sample rates say little about a kind of real image the detector never saw; this says how it fares."""
    from aigi.data.splits import leave_source_out
    from aigi.workflows.train import train_detector

    folds_out = []
    for seed in seeds:
        for fold in leave_source_out(manifest, sources):
            det = train_detector(dataclasses.replace(cfg, seed=seed), manifest.subset(fold.train), progress=progress)
            s = score(det, manifest.subset(fold.test))
            p, ok = s.p(det), s.ok
            thr = det.calibration.threshold
            r = {"fold": fold.name, "seed": seed, "n": int(ok.sum()), "threshold": thr,
                 "fpr": float((p[ok] >= thr).mean()) if ok.any() else float("nan"),
                 "mean_p_fake": float(p[ok].mean()) if ok.any() else float("nan")}  # fmt: skip
            folds_out.append(r)
            if on_fold:
                on_fold(seed, r)
    fpr = {}
    for src in dict.fromkeys(f["fold"] for f in folds_out):
        vals = [f["fpr"] for f in folds_out if f["fold"] == src]
        fpr[src] = {"fpr_mean": float(np.mean(vals)), "fpr_max": float(np.max(vals)), "n_seeds": len(vals)}
    return {
        "protocol": "leave-source-out",
        "seeds": list(seeds),
        "fpr": fpr,
        "worst_source": max(fpr, key=lambda k: fpr[k]["fpr_mean"]),
        "folds": folds_out,
    }


def run_train_on(
    cfg: TrainConfig,
    manifest: Manifest,
    generators: list[str],
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Train on the named generators, test on every other one (AUROC per test generator)."""
    reserved, manifest = split_reserved(cfg, manifest)
    r = run_fold(cfg, manifest, train_on_generators(manifest, generators, seed), progress, reserved)
    r["protocol"] = "train-on-" + "+".join(generators)
    return r


def run_cross_dataset(
    cfg: TrainConfig, train: Manifest, test: Manifest, progress: Callable[[int], None] | None = None
) -> dict:
    """Train on every image of ``train``; test on every image of ``test`` (another data set)."""
    reserved, train = split_reserved(cfg, train)
    combined = Manifest(list(train.samples) + list(test.samples), f"{train.source} + {test.source}")
    fold = Fold(
        f"train {train.source} -> test {test.source}",
        np.arange(len(train)),
        np.arange(len(train), len(train) + len(test)),
    )
    r = run_fold(cfg, combined, fold, progress, reserved)
    r["protocol"] = "cross-dataset"
    return r
