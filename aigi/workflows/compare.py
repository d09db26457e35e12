"""Several detectors side by side on one data set, and the rule that picks the embedded default.

For each training config: leave-generator-out AUROC per held-out generator; a model trained on
a stratified 80% and calibrated on the other 20%; on that held-out 20%: calibrated metrics,
reliability, the unsure trade-off, the format swap, and a robustness sweep on a seeded subset.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aigi.config import TrainConfig
from aigi.data.manifest import Manifest
from aigi.data.splits import seeded_subset, validation_split
from aigi.evaluation import report as R
from aigi.evaluation.format_swap import format_swap
from aigi.evaluation.metrics import reliability_curve, selective_metrics
from aigi.evaluation.robustness import robustness_sweep
from aigi.evaluation.scores import score
from aigi.workflows.protocols import run_leave_generator_out

DEFAULT_MARGIN = 0.02


MAX_LEFT_OUT_SOURCE_FPR = 0.05  # the rule's cap on every real source's leave-source-out false-positive rate


def choose_default(
    logo: dict[str, dict[str, float]],
    current: str,
    margin: float = DEFAULT_MARGIN,
    loso: dict[str, dict[str, float]] | None = None,
    max_source_fpr: float = MAX_LEFT_OUT_SOURCE_FPR,
) -> dict:
    """The default rule (ARCHITECTURE.md): the candidate with the best mean LOGO (or leave-family-out) AUROC
    replaces ``current`` only if it beats it by >= ``margin`` on the mean, loses >= ``margin`` on no generator
    and, when ``loso`` (name -> real source -> leave-source-out false-positive rate) is given, holds every left-out
    real source at or under ``max_source_fpr``; a candidate that does not is never chosen.
    (The rule's last condition, README command 1 under 5 minutes, is checked by running it.)"""
    means = {name: float(np.mean(list(g.values()))) for name, g in logo.items()}
    if current not in logo:
        raise ValueError(f"the current default {current!r} is not among the compared detectors {sorted(logo)}")
    over = {
        name: {s: f for s, f in (loso or {}).get(name, {}).items() if f > max_source_fpr}
        for name in logo
        if loso is not None
    }
    eligible = [n for n in logo if not over.get(n) or n == current]
    best = max(eligible, key=lambda n: means[n])
    excluded = sorted(n for n in logo if over.get(n) and n != current)
    note = (
        "; left out of the choice for a left-out real source over "
        + f"{max_source_fpr:.0%}: "
        + ", ".join(f"{n} ({', '.join(f'{s} {f:.3f}' for s, f in sorted(over[n].items()))})" for n in excluded)
        if excluded
        else ""
    )
    if best == current:
        return {
            "default": current,
            "changed": False,
            "means": means,
            "reason": f"{current} has the best mean AUROC ({means[current]:.3f}) among the eligible" + note,
        }
    gain = means[best] - means[current]
    losses = {g: logo[current][g] - logo[best][g] for g in logo[current] if logo[current][g] - logo[best][g] >= margin}
    failed = []
    if gain < margin:
        failed.append(f"beats {current} by only {gain:+.3f} on the mean (< {margin})")
    if losses:
        failed.append(f"loses ≥ {margin} on " + ", ".join(f"{g} (−{d:.3f})" for g, d in sorted(losses.items())))
    if failed:
        return {
            "default": current,
            "changed": False,
            "means": means,
            "reason": f"{best} has the best mean ({means[best]:.3f}) but " + " and ".join(failed) + note,
        }
    return {
        "default": best,
        "changed": True,
        "means": means,
        "reason": f"{best} beats {current} by {gain:+.3f} on the mean and loses ≥ {margin} on no generator" + note,
    }


def compare(
    configs: dict[str, TrainConfig],
    manifest: Manifest,
    out_dir: str | Path,
    current_default: str,
    seeds=(0,),
    per_group: int = 50,
    log: Callable[[str], None] = print,
) -> dict:
    from aigi.data.splits import without
    from aigi.workflows.train import build_detector, train_detector

    full_manifest = manifest
    out = Path(out_dir)
    # Samples any detector reserves for pre-training leave the data of every detector: all are
    # compared on the same folds and the same validation split.
    reserved = {name: build_detector(cfg).reserved(manifest) for name, cfg in configs.items()}
    manifest = without(manifest, np.unique(np.concatenate([np.asarray(r, dtype=int) for r in reserved.values()])))
    results: dict[str, dict] = {}
    for name, cfg in configs.items():
        own = full_manifest.subset(reserved[name])
        log(f"[{name}] leave-generator-out, seeds {list(seeds)}")
        logo = run_leave_generator_out(
            cfg,
            manifest,
            seeds,
            on_fold=functools.partial(_log_fold, log, name),
            reserved=own,
        )
        log(f"[{name}] training on 80%, calibrating on 20%")
        det = train_detector(cfg, manifest, out / "detectors" / name, reserved=own)
        val = manifest.subset(validation_split(manifest, cfg.val_fraction, cfg.seed)[1])
        s = score(det, val)
        p, thr = s.p(det), det.calibration.threshold
        log(f"[{name}] format swap on the validation split")
        swap = format_swap(det, val)
        log(f"[{name}] robustness sweep on ≤{per_group} validation images per generator and source")
        sweep = robustness_sweep(
            det, seeded_subset(val, per_group, cfg.seed), progress=functools.partial(_log_named, log, name)
        )
        seed0 = [f for f in logo["folds"] if f["seed"] == seeds[0]]
        results[name] = {
            "config": dataclasses.asdict(cfg),
            "detector_version": det.version,
            "logo": {g: v["auroc_mean"] for g, v in logo["auroc"].items()},
            "logo_sd": {g: v["auroc_sd"] for g, v in logo["auroc"].items()},
            "logo_folds": [{k: v for k, v in f.items() if k != "scores"} for f in logo["folds"]],
            "pooled_heldout": _pooled(seed0),
            "validation": {
                "metrics": s.metrics(p, thr),
                "selective": selective_metrics(s.labels[s.ok], p[s.ok], thr, det.calibration.unsure_band),
                "reliability": reliability_curve(s.labels[s.ok], p[s.ok]),
                "calibration": det.calibration.method,
            },
            "format_swap": swap,
            "robustness": sweep["rows"],
        }
    decision = choose_default({n: r["logo"] for n, r in results.items()}, current_default)
    data = {
        "data": manifest.source,
        "summary": manifest.summary(),
        "seeds": list(seeds),
        "per_group": per_group,
        "n_reserved": int(len(full_manifest) - len(manifest)),
        "detectors": results,
        "default_rule": decision,
    }
    write_compare_report(out / "report.html", data)
    return data


def _log_fold(log: Callable[[str], None], name: str, seed: int, result: dict) -> None:
    log(f"[{name}] seed {seed} held-out {result['fold']}: {result['metrics']['auroc']:.3f}")


def _log_named(log: Callable[[str], None], name: str, message: str) -> None:
    log(f"[{name}] {message}")


def _pooled(folds: list[dict]) -> dict:
    """Held-out fakes of every fold, plus the held-out reals once (they are the same in every fold)."""
    y, p, g = [], [], []
    for k, f in enumerate(folds):
        s = f["scores"]
        for yy, pp, gg in zip(s["labels"], s["p_fake"], s["generators"]):
            if yy == 1 or k == 0:
                y.append(yy)
                p.append(pp)
                g.append(gg)
    return {"labels": y, "p_fake": p, "generators": g}


def write_compare_report(path: Path, data: dict) -> Path:
    dets = data["detectors"]
    names = list(dets)
    gens = sorted({g for r in dets.values() for g in r["logo"]})
    d = data["default_rule"]
    sections = [
        (
            "Summary",
            f"<p>Data: {data['summary']}. Leave-generator-out seeds {data['seeds']}.</p>"
            f"<p class='note'><b>Embedded default:</b> {d['default']} "
            f"({'changed' if d['changed'] else 'unchanged'}). {d['reason']}.</p>",
        )
    ]
    rows = [[n] + [dets[n]["logo"][g] for g in gens] + [float(np.mean(list(dets[n]["logo"].values())))] for n in names]
    sections.append(
        (
            "Leave-generator-out AUROC (held-out generator vs held-out reals)",
            R.table(["detector"] + gens + ["mean"], rows)
            + R.img(
                R.plot_per_generator({n: dets[n]["logo"] for n in names}, "AUROC per held-out generator"),
                "per-generator AUROC",
            ),
        )
    )
    roc, pr = R.plot_roc_pr(
        {
            n: (np.array(dets[n]["pooled_heldout"]["labels"]), np.array(dets[n]["pooled_heldout"]["p_fake"]))
            for n in names
        }
    )
    sections.append(
        (
            "ROC and precision-recall (pooled held-out generators, seed " + str(data["seeds"][0]) + ")",
            R.img(roc, "ROC") + R.img(pr, "PR"),
        )
    )
    keys = [
        "auroc",
        "ap",
        "accuracy",
        "real_accuracy",
        "fake_accuracy",
        "eer",
        "tpr@1%fpr",
        "tpr@5%fpr",
        "ece",
        "brier",
    ]
    rows = [
        [n, dets[n]["validation"]["calibration"]]
        + [dets[n]["validation"]["metrics"][k] for k in keys]
        + [
            dets[n]["validation"]["selective"]["unsure_fraction"],
            dets[n]["validation"]["selective"]["accuracy_confident"],
        ]
        for n in names
    ]
    sections.append(
        (
            "Calibrated, on the held-out 20% validation split",
            R.table(["detector", "calibration"] + keys + ["unsure fraction", "accuracy when sure"], rows)
            + R.img(R.plot_reliability({n: dets[n]["validation"]["reliability"] for n in names}), "reliability"),
        )
    )
    rows = []
    for n in names:
        s = dets[n]["format_swap"]
        rows.append(
            [
                n,
                s["auroc_before"],
                s["auroc_after"],
                s["auroc_change"],
                f"{s['mean_p_fake_real_before']:.3f} → {s['mean_p_fake_real_after']:.3f}",
                f"{s['mean_p_fake_fake_before']:.3f} → {s['mean_p_fake_fake_after']:.3f}",
                "YES" if s["learned_the_format"] else "no",
            ]
        )
    sections.append(
        (
            "Format swap: reals stored as the fakes are (256×256 JPEG q95), fakes as the reals are (333×314 JPEG q80)",
            R.table(
                [
                    "detector",
                    "AUROC as stored",
                    "AUROC swapped",
                    "change",
                    "mean p_fake reals",
                    "mean p_fake fakes",
                    "learned the format (drop > 0.05)?",
                ],
                rows,
            ),
        )
    )
    rows = [
        [
            n,
            f"{r['perturbation']} {r['severity']}" if r["perturbation"] != "none" else "clean",
            r["auroc"],
            r["balanced_accuracy"],
            r["mean_p_fake_real"],
            r["mean_p_fake_fake"],
        ]
        for n in names
        for r in dets[n]["robustness"]
    ]
    sections.append(
        (
            "Robustness (seeded subset of the validation split)",
            R.img(R.plot_robustness({n: dets[n]["robustness"] for n in names}), "robustness curves")
            + R.table(
                ["detector", "condition", "AUROC", "balanced accuracy", "mean p_fake reals", "mean p_fake fakes"], rows
            ),
        )
    )
    return R.write_report(path, "aigi compare", sections, data)
