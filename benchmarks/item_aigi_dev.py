"""ITEM on aigi-dev beside univfd: leave-generator-out, the ablation (global / local / both levels x the
misalignment representation D / raw distance / cosines only), the alignment's recall, the format-swap
check, and caption/objects/scores for 5 real and 5 fake validation images. One command:

    python benchmarks/item_aigi_dev.py [--work runs/item] [--seeds 0 1] [--ship] [--robustness]

The 300 reserved alignment images (``configs/item.yaml``) leave the data before the folds are drawn, for
ITEM and for univfd alike, so both are scored on the same folds. Every fold of every variant is kept in
``--work``, so an interrupted run resumes where it stopped. ``--ship`` also trains ITEM on the 80% split
(``aigi train``'s recipe) into ``aigi/weights/item`` before the examples and the format swap read it.
Writes benchmarks/results/item-aigi-dev.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aigi.config import load_train_config
from aigi.data import load_data
from aigi.data.splits import leave_generator_out, validation_split
from aigi.evaluation.metrics import auroc
from aigi.scoring import calibrated_scores, score_manifest
from aigi.workflows.protocols import fit_for_protocol
from aigi.workflows.train import split_reserved

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared/data/aigi-dev/manifest.csv"
VARIANTS = {
    "item (both levels, D)": {},
    "global only, D": {"levels": "global"},
    "local only, D": {"levels": "local"},
    "both levels, raw distance": {"representation": "raw"},
    "global only, raw distance": {"levels": "global", "representation": "raw"},
    "local only, raw distance": {"levels": "local", "representation": "raw"},
    "both levels, cosines only": {"representation": "cosine"},
}
UNIVFD = "univfd (same folds)"


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def run_fold(rest, reserved, fold, cfg) -> dict:
    train, test = rest.subset(fold.train), rest.subset(fold.test)
    t = time.time()
    det, info = fit_for_protocol(cfg, train, reserved=reserved)
    fit_s = time.time() - t
    p, _ = score_manifest(det, test)  # raw logits: AUROC needs no calibration
    y = np.asarray(test.labels)
    ok = ~np.isnan(p)
    gens = np.asarray([s.generator for s in test])
    fakes = ok & (y == 1)
    by_source = {}
    for src in sorted(set(gens[y == 0])):
        reals = ok & (y == 0) & (gens == src)
        by_source[src] = auroc(np.r_[np.zeros(int(reals.sum())), np.ones(int(fakes.sum()))], np.r_[p[reals], p[fakes]])
    return {
        "fold": fold.name,
        "auroc": auroc(y[ok], p[ok]),
        "auroc_by_real_source": by_source,
        "fit_seconds": round(fit_s, 1),
        "n_test_real": int((y == 0).sum()),
        "n_test_fake": int((y == 1).sum()),
        "n_errors": int((~ok).sum()),
        "fit": info if isinstance(info, dict) else {},
    }


def part_logo(rest, reserved, item_cfg, univfd_cfg, work: Path, seeds, variants) -> dict:
    results: dict = {}
    runs = [(name, item_cfg.with_options(**VARIANTS[name])) for name in variants]
    runs.append((UNIVFD, univfd_cfg))
    for seed in seeds:
        for name, cfg in runs:
            if seed and name not in (UNIVFD, "item (both levels, D)"):
                continue  # extra split seeds: the full method and the baseline only
            for fold in leave_generator_out(rest, seed=seed):
                f = work / f"logo-{name.split(' (')[0].replace(' ', '_').replace(',', '')}-{fold.name}-seed{seed}.json"
                if not f.exists():
                    log(f"{name}: fold {fold.name}, split seed {seed}")
                    r = run_fold(rest, reserved if cfg is not univfd_cfg else None, fold, cfg)
                    f.write_text(json.dumps(r, indent=1, default=float))
                    log(f"  AUROC {r['auroc']:.3f} ({r['fit_seconds']} s)")
                results.setdefault(seed, {}).setdefault(name, {})[fold.name] = json.loads(f.read_text())
    return results


def part_ship(manifest, item_cfg, out: Path):
    from aigi.workflows.train import train_detector

    log(f"training the shipped ITEM on the 80% split into {out}")
    train_detector(item_cfg, manifest, out)


def part_examples_and_swap(manifest, det_dir: Path, work: Path) -> dict:
    """Caption/objects/scores of 5 validation reals and 5 validation fakes (one per generator); format swap."""
    from aigi import load_detector
    from aigi.data.splits import without
    from aigi.evaluation.format_swap import format_swap

    det = load_detector(str(det_dir))
    rest = without(manifest, det.reserved(manifest))
    cfg = det.training_info["config"]
    val = rest.subset(validation_split(rest, cfg["val_fraction"], cfg["seed"])[1])
    rng = np.random.default_rng(0)
    picks = []
    for gen in sorted({s.generator for s in val if s.label == 0}):
        idx = [i for i, s in enumerate(val) if s.generator == gen]
        picks += list(rng.choice(idx, 3 if gen == "imagenet-photo" else 2, replace=False))
    for gen in sorted({s.generator for s in val if s.label == 1}):
        picks.append(int(rng.choice([i for i, s in enumerate(val) if s.generator == gen])))
    sub = val.subset(picks)
    details = det.explain_manifest(sub)
    p, _ = calibrated_scores(det, sub)
    examples = [
        {
            "file": Path(s.path).name,
            "label": "fake" if s.label else "real",
            "generator": s.generator,
            "p_fake": round(float(q), 3),
            **d,
        }
        for s, q, d in zip(sub, p, details)
    ]
    f = work / "format-swap.json"
    if not f.exists():
        log("format swap on the validation split")
        r = format_swap(det, val)
        f.write_text(json.dumps(r, indent=1, default=float))
    return {
        "examples": examples,
        "format_swap": json.loads(f.read_text()),
        "validation": det.training_info.get("validation", {}).get("metrics"),
        "alignment": det.training_info.get("pretrain"),
        "n_validation": len(val),
    }


ROBUSTNESS = ["jpeg", "blur", "noise", "resize", "social"]


def part_robustness(manifest, det_dir: Path, univfd_cfg, work: Path, per_group: int = 40) -> dict:
    """The paper claims robustness to JPEG, blur and noise: AUROC of the shipped ITEM and of univfd trained
    on the same 80% split, on <= ``per_group`` validation images per generator and real source."""
    from aigi import load_detector
    from aigi.data.splits import seeded_subset, without
    from aigi.evaluation.robustness import robustness_sweep
    from aigi.workflows.train import train_detector

    f = work / "robustness.json"
    if f.exists():
        return json.loads(f.read_text())
    item = load_detector(str(det_dir))
    reserved = item.reserved(manifest)
    rest = without(manifest, reserved)
    cfg = item.training_info["config"]
    sub = seeded_subset(rest.subset(validation_split(rest, cfg["val_fraction"], cfg["seed"])[1]), per_group, 0)
    uv_dir = work / "univfd-same-split"
    if not (uv_dir / "model.safetensors").exists():
        log("training univfd on ITEM's 80% split")
        train_detector(univfd_cfg, rest, uv_dir, reserved=manifest.subset(reserved))
    out = {"data": sub.summary()}
    for name, det in (("item", item), ("univfd", load_detector(str(uv_dir)))):
        out[name] = robustness_sweep(det, sub, ROBUSTNESS, progress=lambda m, n=name: log(f"{n}: {m}"))["rows"]
    f.write_text(json.dumps(out, indent=1, default=float))
    return out


def table(per_variant: dict, gens: list[str]) -> list[str]:
    lines = ["| detector | " + " | ".join(gens) + " | mean |", "|---" * (len(gens) + 2) + "|"]
    for name, folds in per_variant.items():
        if len(folds) < len(gens):
            continue
        vals = [folds[g]["auroc"] for g in gens]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |")
    return lines


def write_report(logo: dict, extra: dict | None, n_reserved: int, out: Path):
    seed0 = logo[0]
    gens = sorted(next(iter(seed0.values())))
    md = [
        "# ITEM on aigi-dev (leave-generator-out)",
        "",
        "Written by `benchmarks/item_aigi_dev.py`. AUROC on the held-out generator's fakes against the fold's 20% "
        f"test reals. The {n_reserved} reserved alignment images are outside every fold, for both detectors; univfd "
        "(`configs/univfd.yaml`) is retrained on exactly these folds.",
        "",
        "## Split seed 0: ITEM, its ablation, and univfd",
        "",
    ]
    md += table(seed0, gens)
    md += [
        "",
        "Held-out fakes against each real source alone (faces vs faces separates artefacts from content):",
        "",
        "| detector | fold | "
        + " | ".join(sorted(next(iter(next(iter(seed0.values())).values()))["auroc_by_real_source"]))
        + " |",
        "|---|---|---|---|",
    ]
    for name in ("item (both levels, D)", UNIVFD):
        for g in gens:
            if g in seed0.get(name, {}):
                s = seed0[name][g]["auroc_by_real_source"]
                md.append(f"| {name} | {g} | " + " | ".join(f"{s[k]:.3f}" for k in sorted(s)) + " |")
    if len(logo) > 1:
        md += ["", "## Mean over split seeds " + ", ".join(str(s) for s in sorted(logo)), ""]
        mean = {}
        for name in ("item (both levels, D)", UNIVFD):
            if all(len(logo[s].get(name, {})) == len(gens) for s in logo):
                mean[name] = {g: {"auroc": float(np.mean([logo[s][name][g]["auroc"] for s in logo]))} for g in gens}
        md += table(mean, gens)
    # the default rule on the mean over every split seed on disk (seed 0 alone when there is one)
    full = [s for s in logo if all(len(logo[s].get(n, {})) == len(gens) for n in ("item (both levels, D)", UNIVFD))]
    if full:
        per = {
            n: {g: np.mean([logo[s][n][g]["auroc"] for s in full]) for g in gens}
            for n in ("item (both levels, D)", UNIVFD)
        }
        gain = np.mean(list(per["item (both levels, D)"].values())) - np.mean(list(per[UNIVFD].values()))
        worst = min(per["item (both levels, D)"][g] - per[UNIVFD][g] for g in gens)
        keep = gain >= 0.02 and worst > -0.02
        md += [
            "",
            "## Default rule (ARCHITECTURE.md)",
            "",
            f"ITEM minus univfd, mean over split seeds {', '.join(map(str, full))}: {gain:+.3f}; worst generator: "
            f"{worst:+.3f}. " + ("ITEM would become the default." if keep else "univfd stays the default."),
        ]
    if extra and extra.get("robustness"):
        rb = extra["robustness"]
        md += [
            "",
            "## Robustness (validation images, calibrated AUROC)",
            "",
            f"{rb['data']}. univfd is trained on the same 80% split.",
            "",
            "| condition | item | univfd |",
            "|---|---|---|",
        ]
        for a, b in zip(rb["item"], rb["univfd"]):
            cond = "clean" if a["perturbation"] == "none" else f"{a['perturbation']} {a['severity']}"
            md.append(f"| {cond} | {a['auroc']:.3f} | {b['auroc']:.3f} |")
    if extra:
        a = extra.get("alignment") or {}
        if a:
            h, s = a["heldout_classes"], a["seen_classes_unseen_view"]
            md += [
                "",
                "## The offline vision-language space (DINOv2-S + MiniLM-L6, LiT heads)",
                "",
                f"Aligned on {a['n_pairs']} reserved ImageNet reals ({a['n_classes']} classes, {a['n_views']} views each). "
                f"Image -> text recall@{a['k']}:",
                "",
                "| queries | candidates | recall | chance |",
                "|---|---|---|---|",
                f"| {h['n_images']} images of held-out classes | their {h['n_candidates']} captions | {h['recall']:.3f} | {h['chance']:.3f} |",
                f"| the same images | all {a['n_classes']} captions | {h['recall_all_captions']:.3f} | {h['chance_all_captions']:.3f} |",
                f"| {s['n_images']} seen images, an unseen view | all {s['n_candidates']} captions | {s['recall']:.3f} | {s['chance']:.3f} |",
            ]
        fs = extra["format_swap"]
        md += [
            "",
            "## Format swap (validation split of the shipped ITEM)",
            "",
            f"AUROC {fs['auroc_before']:.3f} -> {fs['auroc_after']:.3f} ({fs['auroc_change']:+.3f}) when the reals are "
            "stored as the fakes are (256 px, JPEG q95)"
            + (" - FLAGGED" if fs.get("learned_the_format") else "; not flagged")
            + ".",
        ]
        md += [
            "",
            f"## What ITEM sees: 5 real and 5 fake validation images (of {extra['n_validation']})",
            "",
            "Misalignment = 1 - cosine in the joint space; local: per object, against its image region.",
            "",
            "| file | truth | generator | caption | objects | global | local | p_fake |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in extra["examples"]:
            local = ", ".join(f"{o}: {1 - c:.3f}" for o, c in zip(e["objects"], e["local_cosine"]))
            md.append(
                f"| {e['file'][:40]} | {e['label']} | {e['generator']} | {e['caption']} | {', '.join(e['objects'])} | "
                f"{1 - e['global_cosine']:.3f} | {local} | {e['p_fake']:.3f} |"
            )
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"logo": {str(k): v for k, v in logo.items()}, "extra": extra, "n_reserved": n_reserved},
            indent=1,
            default=float,
        )
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "runs/item"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--robustness", action="store_true", help="also sweep JPEG, blur, noise, resize, social")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    manifest = load_data(args.data)
    item_cfg = load_train_config(ROOT / "configs/item.yaml")
    univfd_cfg = load_train_config(ROOT / "configs/univfd.yaml")
    reserved, rest = split_reserved(item_cfg, manifest)
    log(f"{len(reserved)} reserved for alignment; {rest.summary()}")
    logo = part_logo(rest, reserved, item_cfg, univfd_cfg, work, args.seeds, args.variants)
    ship = ROOT / "aigi/weights/item"
    if args.ship:
        part_ship(manifest, item_cfg, ship)
    extra = part_examples_and_swap(manifest, ship, work) if (ship / "config.json").exists() else None
    if extra is not None and (args.robustness or (work / "robustness.json").exists()):
        extra["robustness"] = part_robustness(manifest, ship, univfd_cfg, work)
    write_report(logo, extra, len(reserved), ROOT / "benchmarks/results/item-aigi-dev")
    log("wrote benchmarks/results/item-aigi-dev.{md,json}")


if __name__ == "__main__":
    main()
