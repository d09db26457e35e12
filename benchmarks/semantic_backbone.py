"""AlignGemini's semantic branch on the default's backbone (`clip-b16`) against its own (DINOv2-S), by the default's
rule: the branch (univfd with ``launder: true``, ``configs/aligngemini.yaml``'s ``semantic`` options and data recipe)
trained per fold as ``aigi train`` trains it, on aigi-dev + aigi-wild + aigi-modern + aigi-human + renders.

    python benchmarks/semantic_backbone.py run [--folds ...] [--backbones ...] [--work runs/semantic]
    python benchmarks/semantic_backbone.py report [--work runs/semantic]   # benchmarks/results/semantic-backbone.md

Folds (split seed 0): ``all`` (the shipped recipe: its validation split's AUROC and fakes flagged at the rule's
threshold), leave-source-out of each face and art source (its false-positive rate at the fold's threshold) and
leave-family-out of every family (AUROC, share flagged). One JSON per (backbone, fold); a rerun skips finished
ones. The laundered images' features are cached (``$AIGI_CACHE_DIR``), so folds after the first cost a head fit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from adapt_holdout import SETS, fold_result

from aigi.data.splits import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
BACKBONES = {"dinov2-s14": 768, "clip-b16": 1536}  # feature_dim: class token + mean patch token per block
LOSO = ["face-photo", "unsplash-face", "human-painting", "human-drawing"]
FOLDS = ["all", *LOSO, *FAMILIES]


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def branch_config(backbone: str):
    """AlignGemini's recipe with its semantic branch trained alone (``univfd``, laundered) on ``backbone``."""
    from aigi.config import load_train_config

    cfg = load_train_config(ROOT / "configs" / "aligngemini.yaml")
    options = {**cfg.options["semantic"], "backbone": backbone, "feature_dim": BACKBONES[backbone], "launder": True}
    return dataclasses.replace(cfg, detector="univfd", options=options)


def run(args) -> None:
    from aigi.data import load_data
    from aigi.data.splits import leave_family_out, leave_source_out
    from aigi.workflows.train import train_detector

    data = load_data(",".join(str(args.data_root / s / "manifest.csv") for s in SETS))
    args.work.mkdir(parents=True, exist_ok=True)
    folds = {f.name: ("loso", f) for f in leave_source_out(data, LOSO)}
    folds.update({f.name: ("lofo", f) for f in leave_family_out(data, 0)})
    for name in args.folds:
        for b in args.backbones:
            out = args.work / f"{b}-{name}.json"
            if out.exists():
                continue
            t0 = time.time()
            if name == "all":
                det = train_detector(branch_config(b), data)
                v = det.training_info["validation"]
                fakes = v["at_threshold"]["tpr_per_generator"]
                r = {"kind": "all", "validation_auroc": v["metrics"]["auroc"], "threshold": det.calibration.threshold,
                     "flagged": sum(x["rate"] * x["n"] for x in fakes.values()) / sum(x["n"] for x in fakes.values()),
                     "worst_validation_source": max(v["at_threshold"]["fpr_per_real_source"].items(),
                                                    key=lambda kv: kv[1]["rate"]),
                     "seconds": round(time.time() - t0, 1)}  # fmt: skip
            else:
                kind, fold = folds[name]
                det = train_detector(branch_config(b), data.subset(fold.train))
                r = {"kind": kind, **fold_result(det, data.subset(fold.test), t0)}
            r.update(backbone=b, fold=name)
            out.write_text(json.dumps(r, indent=1, default=str))
            log(f"{b} {name}: " + ", ".join(f"{k} {r[k]:.3f}" for k in ("validation_auroc", "fpr", "auroc", "flagged") if isinstance(r.get(k), float)))  # fmt: skip


def report(args) -> None:
    rows = {
        (r["backbone"], r["fold"]): r for r in (json.loads(p.read_text()) for p in sorted(args.work.glob("*.json")))
    }
    bs = [b for b in BACKBONES if any(k[0] == b for k in rows)]

    def cell(b, fold, fmt):
        r = rows.get((b, fold))
        return fmt(r) if r else "–"

    lines = ["# AlignGemini's semantic branch: DINOv2-S (shipped) against clip-b16", "",
             "From `benchmarks/semantic_backbone.py` (2 CPU cores): univfd with `launder: true` and"
             " `configs/aligngemini.yaml`'s semantic options (every block's class and mean patch token, C by 3-fold"
             " cross-validation) and data recipe (at most 100 images of every generator and real source, 400 renders,"
             " 35 % validation, the per-source threshold rule), trained per fold; split seed 0.", "",
             "| fold | " + " | ".join(bs) + " |", "|---|" + "---|" * len(bs)]  # fmt: skip
    lines.append("| all data: validation AUROC (fakes flagged at the threshold) | " + " | ".join(
        cell(b, "all", lambda r: f"{r['validation_auroc']:.3f} ({r['flagged']:.2f})") for b in bs) + " |")  # fmt: skip
    for src in LOSO:
        lines.append(f"| left out: {src}, FPR | " + " | ".join(cell(b, src, lambda r: f"{r['fpr']:.3f}") for b in bs) + " |")  # fmt: skip
    for fam in FAMILIES:
        lines.append(f"| left out: {fam}, AUROC (flagged) | " + " | ".join(
            cell(b, fam, lambda r: f"{r['auroc']:.3f} ({r['flagged']:.2f})") for b in bs) + " |")  # fmt: skip
    for b in bs:
        fam = [rows[(b, f)]["auroc"] for f in FAMILIES if (b, f) in rows]
        if fam:
            lines.append(f"\n{b}: mean leave-family-out AUROC {np.mean(fam):.3f} over {len(fam)} families; seconds per"
                         f" fold {min(r['seconds'] for k, r in rows.items() if k[0] == b):.0f}-"
                         f"{max(r['seconds'] for k, r in rows.items() if k[0] == b):.0f}.")  # fmt: skip
    (ROOT / "benchmarks/results/semantic-backbone.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "report"])
    ap.add_argument("--folds", nargs="+", default=FOLDS, choices=FOLDS)
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "semantic")
    args = ap.parse_args()
    {"run": run, "report": report}[args.what](args)


if __name__ == "__main__":
    main()
