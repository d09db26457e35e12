"""The opt-in methods (pixel, item, gamma, aligngemini) retrained with aigi-human and aigi-modern, by the default's
per-source rule: what their shipped weights do on their validation split, and what they do on a real source left
out of training whole.

    python benchmarks/methods_holdout.py run [--methods item-clip-b16] [--sources face-photo human-drawing] [--work runs/retrain/loso]
    python benchmarks/methods_holdout.py report [--work runs/retrain/loso]   # benchmarks/results/methods-holdout.md

``run`` trains each method's recipe (``configs/<method>.yaml``) per fold as ``aigi train`` does (split seed 0) and
writes one JSON per (method, left-out source); a rerun skips finished folds. ``report`` reads those and the
shipped detectors' own training records (``aigi/weights/<method>/training.json``). A variant (``VARIANTS``: a
method's recipe with some options changed) has no shipped weights: ``run`` also trains it on everything (as the
shipped ones were) and keeps its training record, which ``report`` reads in their place.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("aigi-dev", "aigi-wild", "aigi-modern", "aigi-human")
METHODS = ("pixel", "item", "gamma", "aligngemini")
VARIANTS = {  # name: (method, options changed from configs/<method>.yaml, what the change is, for the report)
    "item-clip-b16": (
        "item",
        {"image_backbone": "clip-b16"},
        "ITEM's recipe with CLIP ViT-B/16 in place of DINOv2-S on the image side of its offline space",
    ),
}
FACES_AND_ART = ("face-photo", "unsplash-face", "human-painting", "human-drawing")


def recipe(name: str):
    from aigi.config import load_train_config

    method, changes, _ = VARIANTS.get(name, (name, {}, ""))
    cfg = load_train_config(ROOT / "configs" / f"{method}.yaml")
    return cfg.with_options(**changes)


def training_record(name: str, work: Path) -> Path:
    return (work / f"{name}-all" if name in VARIANTS else ROOT / "aigi" / "weights" / name) / "training.json"


def run(args) -> None:
    from aigi.data import load_data
    from aigi.workflows.protocols import run_leave_source_out
    from aigi.workflows.train import train_detector

    data = load_data(",".join(str(args.data_root / s / "manifest.csv") for s in SETS))
    args.work.mkdir(parents=True, exist_ok=True)
    for m in args.methods:
        if m in VARIANTS and not training_record(m, args.work).exists():
            t = time.time()
            train_detector(recipe(m), data, out_dir=args.work / f"{m}-all")
            print(time.strftime("%H:%M:%S"), m, "trained on everything", round(time.time() - t, 1), flush=True)
    for src in args.sources:
        for m in args.methods:
            f = args.work / f"{m}-{src}.json"
            if f.exists():
                continue
            t = time.time()
            r = run_leave_source_out(recipe(m), data, (0,), [src])
            r["seconds"] = round(time.time() - t, 1)
            f.write_text(json.dumps(r, indent=1, default=str))
            print(time.strftime("%H:%M:%S"), m, src, r["fpr"][src], r["seconds"], flush=True)


def report(args) -> None:
    rows = {}
    for m in [*METHODS, *(v for v in VARIANTS if training_record(v, args.work).exists())]:
        rec = json.loads(training_record(m, args.work).read_text())
        v = rec["validation"]
        at = v.get("at_threshold", {})
        fakes = at.get("tpr_per_generator", {})
        flagged = sum(x["rate"] * x["n"] for x in fakes.values()) / max(1, sum(x["n"] for x in fakes.values()))
        rows[m] = {"auroc": v["metrics"]["auroc"], "n_val": v["metrics"]["n"], "threshold": at.get("threshold"), "flagged": flagged,
                   "unsure": v.get("selective", {}).get("unsure_fraction"),
                   "worst_validation_source": max(at.get("fpr_per_real_source", {}).items(), key=lambda kv: kv[1]["rate"],
                                                  default=(None, {"rate": None})),
                   "loso": {}}  # fmt: skip
        for f in sorted(args.work.glob(f"{m}-*.json")):
            r = json.loads(f.read_text())
            for src, x in r["fpr"].items():
                rows[m]["loso"][src] = x["fpr_mean"]
    (ROOT / "benchmarks/results/methods-holdout.json").write_text(json.dumps(rows, indent=1))
    sources = [s for s in FACES_AND_ART if any(s in r["loso"] for r in rows.values())]
    lines = ["# The opt-in methods by the default's rule", "",
             "From `benchmarks/methods_holdout.py`. Each method retrained on aigi-dev + aigi-wild + aigi-modern +"
             " aigi-human + 400 renders (+ fake twins of real faces and art, except AlignGemini, whose pixel expert"
             " trains on reconstruction pairs of every real anyway), 35 % validation split, threshold by the"
             " per-source rule (no validation real source over 4 %). Left-out columns: the method's recipe trained"
             " without that real source at all (split seed 0), its false-positive rate at the rule's threshold."
             + "".join(f" {v}: {what} (not shipped; trained on everything here for its validation columns)."
                       for v, (_, _, what) in VARIANTS.items() if v in rows), "",
             "| method | validation AUROC | threshold | validation fakes flagged | unsure | "
             + " | ".join(f"left out: {s}" for s in sources) + " |",
             "|---|---|---|---|---|" + "---|" * len(sources)]  # fmt: skip
    for m, r in rows.items():
        cells = [f"{r['loso'][s]:.3f}" if s in r["loso"] else "–" for s in sources]
        lines.append(f"| {m} | {r['auroc']:.3f} | {r['threshold']:.3f} | {r['flagged']:.3f} | {r['unsure']:.3f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    for v, (base, changes, _) in VARIANTS.items():
        if v not in rows or base not in rows:
            continue
        a, b = rows[v], rows[base]
        worst = max(a["loso"].items(), key=lambda kv: kv[1], default=("–", float("nan")))
        lines += ["", f"Reading, {v} ({changes}) against {base}: validation AUROC {a['auroc']:.3f} vs {b['auroc']:.3f},"
                  f" validation fakes flagged {a['flagged']:.3f} vs {b['flagged']:.3f}; worst left-out source"
                  f" {worst[0]} {worst[1]:.3f} vs {b['loso'].get(worst[0], float('nan')):.3f}."
                  + (" It keeps every left-out source at or under 10 %." if worst[1] <= 0.10 else
                     " Over the 10 % a shipped method may reach on a left-out source: not shipped.")]  # fmt: skip
    (ROOT / "benchmarks/results/methods-holdout.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "report"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=[*METHODS, *VARIANTS])
    ap.add_argument("--sources", nargs="+", default=["face-photo", "human-drawing"])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "retrain" / "loso")
    args = ap.parse_args()
    run(args) if args.what == "run" else report(args)


if __name__ == "__main__":
    main()
