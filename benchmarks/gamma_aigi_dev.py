"""GAMMA on aigi-dev beside univfd: leave-generator-out (seed 0), the ablations, localisation on held-out
spliced and inpainted images, and the format-swap check.

    python benchmarks/gamma_aigi_dev.py [--work runs/gamma] [--part logo|swap|all]

For every LOGO fold and every variant (full GAMMA and the three ablations) the detector is trained on the
fold's training images only (splice donors too), then scored on the fold's test images: the held-out
generator's fakes against the 20% test reals. Localisation: every test real of the fold is manipulated
once, alternately spliced with a fake of the HELD-OUT generator as donor (a generator no part of training
saw) or inpainted (classical or through the reconstruction autoencoder); head A's mask is compared with
the true mask at the model's 224 px crop. Every fold's numbers are kept in ``--work`` so an interrupted
run resumes where it stopped. Writes benchmarks/results/gamma-aigi-dev.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aigi.calibration import sigmoid
from aigi.config import load_train_config
from aigi.data import load_data
from aigi.data.splits import leave_generator_out
from aigi.detectors.gamma.localisation import score_manipulated
from aigi.evaluation.localisation import localisation_scores
from aigi.evaluation.metrics import auroc
from aigi.scoring import score_manifest
from aigi.workflows.protocols import fit_for_protocol

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "gamma": {},
    "no manipulation aug": {"manipulations": False},
    "no segmentation heads": {"segmentation": False},
    "no reverse attention": {"reverse_attention": False},
    # not an ablation of the paper: only generative manipulations make a real image fake
    "generative-only fake labels": {"manipulated_real_label": "generative"},
}
REAL_SOURCES = ("imagenet-photo", "unsplash-face")
LOC_KINDS = ("splice", "inpaint-classical", "splice", "inpaint-autoencoder")


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def run_fold(manifest, fold, cfg, with_localisation: bool) -> dict:
    train, test = manifest.subset(fold.train), manifest.subset(fold.test)
    t = time.time()
    det, info = fit_for_protocol(cfg, train)
    fit_s = time.time() - t
    z, errors = score_manifest(det, test)
    p = sigmoid(z)  # raw p_fake, comparable with score_manipulated's
    y = np.asarray(test.labels)
    ok = ~np.isnan(p)
    out = {
        "fold": fold.name,
        "fit": info,
        "fit_seconds": round(fit_s, 1),
        "auroc": auroc(y[ok], p[ok]),
        "n_test_real": int((y == 0).sum()),
        "n_test_fake": int((y == 1).sum()),
        "n_errors": int((~ok).sum()),
    }
    # the held-out fakes against each real source alone (faces vs faces tells content from artefacts)
    gens = np.asarray([s.generator for s in test])
    fakes = ok & (y == 1)
    out["auroc_by_real_source"] = {}
    for src in sorted(set(gens[y == 0])):
        reals = ok & (y == 0) & (gens == src)
        out["auroc_by_real_source"][src] = auroc(
            np.r_[np.zeros(int(reals.sum())), np.ones(int(fakes.sum()))], np.r_[p[reals], p[fakes]]
        )
    if with_localisation:
        reals = test.subset(lambda s: s.label == 0)
        donors = test.subset(lambda s: s.label == 1)  # the held-out generator's fakes
        kinds = [LOC_KINDS[i % len(LOC_KINDS)] for i in range(len(reals))]
        pm, grids, truths, errs = score_manipulated(det, reals, kinds, donors, seed=cfg.seed)
        good = [i for i, e in enumerate(errs) if e is None]
        loc = {}
        for kind in ("splice", "inpaint"):
            rows = [j for j, i in enumerate(good) if kinds[i].startswith(kind)]
            loc[kind] = localisation_scores(grids[rows], truths[rows])
            # can the image head tell these manipulated reals from the clean test reals?
            clean = p[ok][y[ok] == 0]
            loc[kind]["auroc_vs_clean_reals"] = auroc(
                np.r_[np.zeros(len(clean)), np.ones(len(rows))], np.r_[clean, pm[good][rows]]
            )
        out["localisation"] = loc
    return out


def part_logo(manifest, base_cfg, work: Path, seed: int = 0, variants=tuple(VARIANTS)) -> dict:
    """LOGO folds of split ``seed`` (the real 80/20 split; variants keep the config's seed)."""
    results = {}
    for name in variants:
        cfg = base_cfg.with_options(**VARIANTS[name])
        for fold in leave_generator_out(manifest, seed=seed):
            f = work / (f"logo-{name.replace(' ', '_')}-{fold.name}" + (f"-seed{seed}" if seed else "") + ".json")
            if not f.exists():
                log(f"{name}: fold {fold.name}, split seed {seed}")
                r = run_fold(manifest, fold, cfg, with_localisation=cfg.options.get("segmentation", True))
                f.write_text(json.dumps(r, indent=1, default=float))
                log(f"  AUROC {r['auroc']:.3f} ({r['fit_seconds']} s)")
            results.setdefault(name, {})[fold.name] = json.loads(f.read_text())
    return results


def part_swap(manifest, base_cfg, work: Path) -> dict:
    """Train on the 80% split (as ``aigi train`` does), format-swap its validation split."""
    from aigi.data.splits import validation_split
    from aigi.evaluation.format_swap import format_swap
    from aigi.workflows.train import train_detector

    f = work / "format-swap.json"
    if f.exists():
        return json.loads(f.read_text())
    det_dir = work / "gamma-full"
    if not (det_dir / "model.safetensors").exists():
        log("training gamma on the 80% split")
        train_detector(base_cfg, manifest, det_dir)
    from aigi import load_detector

    det = load_detector(str(det_dir))
    _, val = validation_split(manifest, base_cfg.val_fraction, base_cfg.seed)
    r = format_swap(det, manifest.subset(val))
    r["validation"] = det.training_info.get("validation", {}).get("metrics")
    f.write_text(json.dumps(r, indent=1, default=float))
    return r


def existing_folds(work: Path, seed: int) -> dict:
    """Every variant whose folds of split ``seed`` are all on disk (seed 0 files carry no suffix)."""
    out = {}
    for name in VARIANTS:
        files = sorted(work.glob(f"logo-{name.replace(' ', '_')}-*" + (f"-seed{seed}.json" if seed else ".json")))
        folds = {
            json.loads(f.read_text())["fold"]: json.loads(f.read_text()) for f in files if seed or "-seed" not in f.name
        }
        if len(folds) == 5:
            out[name] = folds
    return out


def univfd_folds(seed: int = 0) -> dict[str, float]:
    d = json.loads((ROOT / "benchmarks/results/univfd-logo.json").read_text())
    return {f["fold"]: f["metrics"]["auroc"] for f in d["folds"] if f["seed"] == seed}


def write_report(logo: dict, swap: dict | None, out: Path, more_seeds: dict | None = None):
    uv = univfd_folds(0)
    gens = sorted(uv)
    lines = [
        "# GAMMA on aigi-dev",
        "",
        "Leave-generator-out, seed 0 (`benchmarks/gamma_aigi_dev.py`; `configs/gamma.yaml`). AUROC of the",
        "held-out generator's fakes against the 20% test reals. univfd: the seed-0 folds of",
        "`univfd-logo.json` (same protocol, same splits).",
        "",
        "| detector | " + " | ".join(gens) + " | mean |",
        "|---" * (len(gens) + 2) + "|",
    ]
    table = {"univfd": uv}
    for name, folds in logo.items():
        table[name] = {g: folds[g]["auroc"] for g in gens if g in folds}
    for name, row in table.items():
        vals = [row.get(g) for g in gens]
        mean = np.mean([v for v in vals if v is not None]) if all(v is not None for v in vals) else None
        lines.append(
            f"| {name} | "
            + " | ".join("-" if v is None else f"{v:.3f}" for v in vals)
            + f" | {'-' if mean is None else f'{mean:.3f}'} |"
        )
    for seed, rows in (more_seeds or {}).items():
        lines += [
            "",
            f"Split seed {seed} (another 80/20 split of the reals; same variants):",
            "",
            "| detector | " + " | ".join(gens) + " | mean |",
            "|---" * (len(gens) + 2) + "|",
        ]
        for name, row in {
            "univfd": univfd_folds(seed),
            **{n: {g: r["auroc"] for g, r in folds.items()} for n, folds in rows.items()},
        }.items():
            vals = [row.get(g) for g in gens]
            mean = f"{np.mean(vals):.3f}" if all(v is not None for v in vals) else "-"
            lines.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + f" | {mean} |")
    if more_seeds:
        seeds_of = {}
        for seed, rows in [(0, logo)] + sorted(more_seeds.items()):
            for name, folds in rows.items():
                seeds_of.setdefault(name, {})[seed] = {g: r["auroc"] for g, r in folds.items()}
        multi = {n: v for n, v in seeds_of.items() if len(v) > 1}
        if multi:
            lines += [
                "",
                "Mean over the split seeds each row has (univfd over the same seeds):",
                "",
                "| detector | seeds | " + " | ".join(gens) + " | mean |",
                "|---" * (len(gens) + 3) + "|",
            ]
            shown = set()
            for name, by_seed in multi.items():
                seeds = sorted(by_seed)
                rows_of = [(name, [by_seed[sd] for sd in seeds])]
                if tuple(seeds) not in shown:
                    shown.add(tuple(seeds))
                    rows_of.insert(0, ("univfd", [univfd_folds(sd) for sd in seeds]))
                for label, rows in rows_of:
                    vals = [float(np.mean([r[g] for r in rows])) for g in gens]
                    lines.append(
                        f"| {label} | {','.join(map(str, seeds))} | "
                        + " | ".join(f"{v:.3f}" for v in vals)
                        + f" | {np.mean(vals):.3f} |"
                    )
    lines += [
        "",
        "## Localisation on held-out manipulated reals (head A, threshold 0.5, 224 px crop)",
        "",
        "Test reals of each fold, spliced with the held-out generator's fakes or inpainted. F1/IoU are",
        "means over images; `AUROC vs clean` asks the image head to tell them from the clean test reals.",
        "",
        "| detector | fold | splice F1 | splice IoU | inpaint F1 | inpaint IoU | true masked fraction "
        "| splice AUROC vs clean | inpaint AUROC vs clean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, folds in logo.items():
        for g in gens:
            loc = folds.get(g, {}).get("localisation")
            if not loc:
                continue
            s, i = loc["splice"], loc["inpaint"]
            lines.append(
                f"| {name} | {g} | {s['f1_mean']:.3f} | {s['iou_mean']:.3f} | {i['f1_mean']:.3f} | "
                f"{i['iou_mean']:.3f} | {np.mean([s['true_fraction'], i['true_fraction']]):.3f} | "
                f"{s['auroc_vs_clean_reals']:.3f} | {i['auroc_vs_clean_reals']:.3f} |"
            )
    lines += [
        "",
        "## Held-out fakes against each real source alone",
        "",
        "| detector | fold | " + " | ".join(REAL_SOURCES) + " |",
        "|---|---|" + "---|" * len(REAL_SOURCES),
    ]
    for name, folds in logo.items():
        for g in gens:
            by = folds.get(g, {}).get("auroc_by_real_source")
            if by:
                lines.append(
                    f"| {name} | {g} | " + " | ".join(f"{by.get(r, float('nan')):.3f}" for r in REAL_SOURCES) + " |"
                )
    if swap:
        lines += [
            "",
            "## Format swap (validation split of the 80/20 split)",
            "",
            f"AUROC {swap['auroc_before']:.3f} -> {swap['auroc_after']:.3f} (change {swap['auroc_change']:+.3f}); "
            f"flagged as having learned the format: {swap['learned_the_format']}. Mean p_fake of reals "
            f"{swap['mean_p_fake_real_before']:.3f} -> {swap['mean_p_fake_real_after']:.3f}, of fakes "
            f"{swap['mean_p_fake_fake_before']:.3f} -> {swap['mean_p_fake_fake_after']:.3f}.",
        ]
    fit = next(iter(logo.get("gamma", {}).values()), {}).get("fit", {})
    if fit:
        lines += [
            "",
            f"Training set of one fold: {fit.get('n_images')} images, {fit.get('n_variants')} variants "
            f"({fit.get('variants_by_kind')}); {fit.get('steps')} steps.",
        ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"univfd_seed0": uv, "logo": logo, "format_swap": swap, "logo_other_split_seeds": more_seeds or {}},
            indent=1,
            default=float,
        )
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/aigi-dev/manifest.csv"))
    ap.add_argument("--config", default=str(ROOT / "configs/gamma.yaml"))
    ap.add_argument("--work", default=str(ROOT / "runs/gamma"))
    ap.add_argument("--part", default="all", choices=["logo", "swap", "all"])
    ap.add_argument(
        "--more-seeds", default="1", help="Other LOGO split seeds for --more-variants (comma-separated; '' for none)"
    )
    ap.add_argument("--more-variants", default="gamma,no manipulation aug")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    manifest = load_data(a.data)
    cfg = load_train_config(a.config)
    logo = part_logo(manifest, cfg, work) if a.part in ("logo", "all") else {}
    swap = part_swap(manifest, cfg, work) if a.part in ("swap", "all") else None
    more = {}
    if a.part in ("logo", "all"):
        for seed in [int(x) for x in a.more_seeds.split(",") if x.strip()]:
            part_logo(manifest, cfg, work, seed, a.more_variants.split(","))
    for seed in range(1, 5):  # report every other split seed whose folds are on disk
        if existing_folds(work, seed):
            more[seed] = existing_folds(work, seed)
    write_report(logo, swap, ROOT / "benchmarks/results/gamma-aigi-dev", more)
    log("written benchmarks/results/gamma-aigi-dev.{md,json}")


if __name__ == "__main__":
    main()
