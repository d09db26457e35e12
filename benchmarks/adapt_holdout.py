"""Frozen vs adapted (univfd's ``adapt:``, LoRA over cached tokens) on a capped pool, through the real training
workflow (``train_detector``: the recipe's views, twins, balance, validation split, Platt scaling and the
per-source threshold rule), every fold adapting from scratch.

    python benchmarks/adapt_holdout.py run [--cap 30] [--seeds 0] [--work runs/adapt]   # resumable, per fold
    python benchmarks/adapt_holdout.py report [--work runs/adapt]    # benchmarks/results/adapt-holdout.{json,md}

The recipe is ``configs/univfd.yaml`` with ``max_per_generator`` lowered to ``--cap`` (2 CPU cores: one adapted
fit of the full pool is about half an hour; the protocols are a dozen fits). Folds:

- leave-source-out of the real sources the default fails on (faces, paintings, drawings): the left-out source's
  false-positive rate at the threshold the rule sets without it;
- leave-family-out of the two weakest families (GAN faces, early diffusion): AUROC of the held-out family's fakes
  against the held-out 20 % of reals, and the share of its fakes flagged at the rule's threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETS = ("aigi-dev", "aigi-wild", "aigi-modern", "aigi-human")
RECIPES = {
    "frozen": {},
    "adapted blocks 6-7, rank 8": {"from_block": 6, "rank": 8, "alpha": 16, "epochs": 3, "patience": 1, "lr": 5e-4},
}
LOSO = ["face-photo", "unsplash-face", "human-painting", "human-drawing"]
LOFO = ["gan-faces", "early-diffusion"]


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def recipe(cap: int, adapt: dict):
    from aigi.config import load_train_config

    cfg = load_train_config(ROOT / "configs" / "univfd.yaml")
    options = {**cfg.options, "adapt": adapt} if adapt else dict(cfg.options)
    return dataclasses.replace(cfg, max_per_generator=cap, options=options)


def fold_result(det, test, t0: float) -> dict:
    """Calibrated scores of ``test`` at the detector's own threshold; the fit's adaptation report."""
    from aigi.evaluation.metrics import auroc
    from aigi.evaluation.scores import score

    s = score(det, test)
    p, ok = s.p(det), s.ok
    y, thr = s.labels[ok], det.calibration.threshold
    p = p[ok]
    out = {"threshold": thr, "n": int(ok.sum()), "seconds": round(time.time() - t0, 1)}
    if (y == 0).all():
        out["fpr"] = float((p >= thr).mean())
    else:
        out.update(auroc=auroc(y, p), flagged=float((p[y == 1] >= thr).mean()), fpr_test_reals=float((p[y == 0] >= thr).mean()))  # fmt: skip
    fit = det.training_info.get("fit", {})
    if "adapt" in fit:
        out["adapt"] = {
            k: fit["adapt"][k] for k in ("kept_epoch", "history", "rows", "stop_rows", "early_stopping_groups")
        }
    v = det.training_info.get("validation", {})
    out["validation_auroc"] = v.get("metrics", {}).get("auroc")
    return out


def run(args) -> None:
    from aigi.data import load_data
    from aigi.data.splits import leave_family_out, leave_source_out
    from aigi.workflows.train import train_detector

    data = load_data(",".join(str(args.data_root / s / "manifest.csv") for s in SETS))
    args.work.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        folds = [("loso", f) for f in leave_source_out(data, LOSO)]
        folds += [("lofo", f) for f in leave_family_out(data, seed) if f.name in LOFO]
        for kind, fold in folds:
            for name, adapt in RECIPES.items():
                out = args.work / f"{kind}-{fold.name}-seed{seed}-{'adapted' if adapt else 'frozen'}.json"
                if out.exists():
                    continue
                cfg = dataclasses.replace(recipe(args.cap, adapt), seed=seed)
                t0 = time.time()
                det = train_detector(cfg, data.subset(fold.train))
                r = {"recipe": name, "kind": kind, "fold": fold.name, "seed": seed, "cap": args.cap,
                     **fold_result(det, data.subset(fold.test), t0)}  # fmt: skip
                out.write_text(json.dumps(r, indent=1))
                log(f"{kind} {fold.name} seed {seed} {name}: " + ", ".join(
                    f"{k} {r[k]:.3f}" for k in ("fpr", "auroc", "flagged") if k in r) + f" ({r['seconds']} s)")  # fmt: skip


def report(args) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(args.work.glob("*.json"))]
    res = {"cap": rows[0]["cap"] if rows else None, "folds": rows}
    (ROOT / "benchmarks/results/adapt-holdout.json").write_text(json.dumps(res, indent=1))
    names = list(RECIPES)
    lines = ["# Frozen vs adapted encoder, every fold adapting from scratch", "",
             f"From `benchmarks/adapt_holdout.py` (2 CPU cores): `configs/univfd.yaml` with at most {res['cap']} images"
             " of every generator, real source and render kind, trained by `train_detector` per fold (views, twins,"
             " balance, validation split, Platt scaling, the per-source threshold rule). `adapted`: LoRA rank 8 on"
             " every attention and MLP projection of blocks 6-7, 3 epochs at most, early stopping on whole held-out"
             " sources and generators of the training side.", "",
             "## Leave-source-out: false-positive rate of the left-out real source", "",
             "| real source | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip

    def cell(kind, fold, name, key):
        vals = [r[key] for r in rows if r["kind"] == kind and r["fold"] == fold and r["recipe"] == name]
        return f"{np.mean(vals):.3f}" if vals else "–"

    for src in LOSO:
        lines.append(f"| {src} | " + " | ".join(cell("loso", src, n, "fpr") for n in names) + " |")
    lines += ["", "## Leave-family-out: AUROC (share of the family's fakes flagged at the rule's threshold)", "",
              "| family | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for fam in LOFO:
        lines.append(f"| {fam} | " + " | ".join(
            f"{cell('lofo', fam, n, 'auroc')} ({cell('lofo', fam, n, 'flagged')})" for n in names) + " |")  # fmt: skip
    lines += ["", "## Cost and early stopping (adapted folds)", "",
              "| fold | seconds frozen | seconds adapted | epoch kept | early-stopping loss by epoch |", "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if "adapt" not in r:
            continue
        frozen = [x["seconds"] for x in rows if x["fold"] == r["fold"] and x["seed"] == r["seed"] and "adapt" not in x]
        hist = " / ".join(f"{h['stop_loss']:.3f}" for h in r["adapt"]["history"] if h["stop_loss"] is not None)
        lines.append(f"| {r['kind']} {r['fold']} (seed {r['seed']}) | {frozen[0] if frozen else '–'} | {r['seconds']} |"
                     f" {r['adapt']['kept_epoch']} | {hist} |")  # fmt: skip
    (ROOT / "benchmarks/results/adapt-holdout.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "report"])
    ap.add_argument("--cap", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt")
    args = ap.parse_args()
    run(args) if args.what == "run" else report(args)


if __name__ == "__main__":
    main()
