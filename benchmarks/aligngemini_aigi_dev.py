"""AlignGemini on aigi-dev beside univfd: the two-generator recipe, leave-generator-out, orthogonality
of the two supervisions, and robustness of each branch and of the fusion.

    python benchmarks/aligngemini_aigi_dev.py --pixel-expert runs/pixel-expert-3ae \
        --pixel-reals runs/train-reals.csv [--work runs/ag] [--part all|two|logo]

``--pixel-expert``: a pixel detector trained only on reconstruction pairs of ``--pixel-reals`` (the
seed-0 80% split's reals; see benchmarks/results/aligngemini-aigi-dev.md for the commands). It depends
on reals only, so one expert serves every fold; the script checks that no test real is among
``--pixel-reals``. Writes benchmarks/results/aligngemini-aigi-dev.{json,md}; each part's numbers are
kept in ``--work`` so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aigi.config import load_train_config
from aigi.data import load_data
from aigi.data.splits import leave_generator_out, train_on_generators
from aigi.evaluation.metrics import auroc
from aigi.scoring import score_manifest
from aigi.transforms import perturbation
from aigi.workflows.protocols import fit_for_protocol

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = [("clean", None), ("jpeg q75", ("jpeg", 75)), ("jpeg q50", ("jpeg", 50)), ("resize 0.5x", ("resize", 0.5))]
COLUMNS = ["semantic", "pixel", "or", "logistic", "univfd"]


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def columns(det, z, z_univfd) -> dict[str, np.ndarray]:
    """Raw logits per column (branch logits ``z`` [N, 2]); AUROC needs no calibration."""
    return {
        "semantic": z[:, 0],
        "pixel": z[:, 1],
        "or": det.fuse_logits(z, "or"),
        "logistic": det.fuse_logits(z, "logistic"),
        "univfd": z_univfd,
    }


def per_generator_auroc(test, scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    y = np.asarray(test.labels)
    g = np.asarray([s.generator for s in test])
    out = {}
    for gen in sorted(set(g[y == 1])):
        rows = (y == 0) | (g == gen)
        out[gen] = {k: auroc(y[rows], v[rows]) for k, v in scores.items()}
    out["all held-out"] = {k: auroc(y, v) for k, v in scores.items()}
    return out


def train_pair(manifest, fold, ag_cfg, uv_cfg):
    train, test = manifest.subset(fold.train), manifest.subset(fold.test)
    t = time.time()
    ag, ag_info = fit_for_protocol(ag_cfg, train)
    uv, _ = fit_for_protocol(uv_cfg, train)
    log(f"{fold.name}: trained both in {time.time() - t:.0f} s")
    return ag, ag_info, uv, test


def or_decisions(det, zb, test) -> dict:
    """The OR rule on held-out data: fused FPR on test reals, recall and the branch that fired per generator."""
    y = np.asarray(test.labels)
    g = np.asarray([x.generator for x in test])
    z = zb - det.or_thresholds.numpy()
    fired = z >= 0
    out = {
        "fused_fpr_test_reals": float(fired[y == 0].any(axis=1).mean()),
        "semantic_fpr_test_reals": float(fired[y == 0, 0].mean()),
        "pixel_fpr_test_reals": float(fired[y == 0, 1].mean()),
    }
    for gen in sorted(set(g[y == 1])):
        f = fired[g == gen]
        out[gen] = {
            "recall": float(f.any(axis=1).mean()),
            "semantic_only": float((f[:, 0] & ~f[:, 1]).mean()),
            "pixel_only": float((f[:, 1] & ~f[:, 0]).mean()),
            "both": float(f.all(axis=1).mean()),
        }
    return out


def part_two(manifest, ag_cfg, uv_cfg, work: Path) -> dict:
    fold = train_on_generators(manifest, ["stylegan2", "ldm"], seed=0)
    ag, info, uv, test = train_pair(manifest, fold, ag_cfg, uv_cfg)
    res = {"fit_validation": info["fit_validation"], "semantic_fit": info["fit"]["semantic"], "robustness": {}}
    for name, cond in CONDITIONS:
        pert = perturbation(*cond) if cond else None
        t = time.time()
        s, errors = ag.branch_logits(test, perturb=pert)
        pu, _ = score_manifest(uv, test, perturb=pert)
        ok = ~np.isnan(s).any(axis=1) & ~np.isnan(pu)
        sub = test.subset(np.flatnonzero(ok))
        cols = columns(ag, s[ok], pu[ok])
        table = per_generator_auroc(sub, cols)
        log(
            f"two-generator, {name}: {time.time() - t:.0f} s, all held-out "
            + " ".join(f"{k} {v:.3f}" for k, v in table["all held-out"].items())
        )
        if name == "clean":
            res["per_generator"] = table
            res["or_rule"] = or_decisions(ag, s[ok], sub)
            res["n_test"] = int(ok.sum())
            res["orthogonality"] = orthogonality(ag, test, work)
        res["robustness"][name] = table["all held-out"]
    return res


def orthogonality(ag, test, work: Path) -> dict:
    """Pixel expert on the semantic set (laundered test images); semantic branch on the pixel set
    (test reals and their reconstructions by the shipped autoencoders)."""
    from aigi.augment.launder import build_semantic_set
    from aigi.augment.reconstruct import build_pixel_pairs, load_reconstructor, shipped_reconstructors

    sem_dir, pix_dir = work / "semantic-set-test", work / "pixel-set-test"
    sem = (
        load_data(sem_dir / "manifest.csv")
        if (sem_dir / "manifest.csv").is_file()
        else build_semantic_set(test, sem_dir)[0]
    )
    pix = (
        load_data(pix_dir / "manifest.csv")
        if (pix_dir / "manifest.csv").is_file()
        else build_pixel_pairs(test, [load_reconstructor(p) for p in shipped_reconstructors()], pix_dir)[0]
    )
    out = {}
    for set_name, m in (("semantic set", sem), ("pixel set", pix)):
        y = np.asarray(m.labels)
        s, _ = ag.branch_logits(m)
        out[set_name] = {
            "n": len(m),
            "semantic_branch_auroc": auroc(y, s[:, 0]),
            "pixel_expert_auroc": auroc(y, s[:, 1]),
        }
        log(f"orthogonality on the {set_name}: {out[set_name]}")
    return out


def part_logo(manifest, ag_cfg, uv_cfg) -> dict:
    res = {}
    for fold in leave_generator_out(manifest, seed=0):
        ag, info, uv, test = train_pair(manifest, fold, ag_cfg, uv_cfg)
        s, _ = ag.branch_logits(test)
        pu, _ = score_manifest(uv, test)
        ok = ~np.isnan(s).any(axis=1) & ~np.isnan(pu)
        sub = test.subset(np.flatnonzero(ok))
        res[fold.name] = per_generator_auroc(sub, columns(ag, s[ok], pu[ok]))[fold.name]
        res[fold.name]["or_rule"] = or_decisions(ag, s[ok], sub)
        log(f"LOGO {fold.name}: " + " ".join(f"{k} {res[fold.name][k]:.3f}" for k in COLUMNS))
    return res


def part_swap(manifest, ag_cfg) -> dict:
    """The format swap on the validation split, for a detector trained as `aigi train` does (80/20)."""
    from aigi.data.splits import validation_split
    from aigi.evaluation.format_swap import format_swap
    from aigi.workflows.train import train_detector

    det = train_detector(ag_cfg, manifest)
    val = manifest.subset(validation_split(manifest, ag_cfg.val_fraction, ag_cfg.seed)[1])
    res = {name: format_swap(d, val) for name, d in (("semantic", det.semantic), ("pixel", det.pixel), ("or", det))}
    for name, r in res.items():
        log(f"format swap {name}: {r['auroc_before']:.3f} -> {r['auroc_after']:.3f}")
    return res


def markdown(data: dict) -> str:
    def table(rows: dict, keys=COLUMNS):
        lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for name, r in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
        return "\n".join(lines)

    out = [
        "# AlignGemini on aigi-dev, beside univfd",
        "",
        "Generated by `benchmarks/aligngemini_aigi_dev.py` (numbers in `aligngemini-aigi-dev.json`). AUROC of each "
        "held-out generator's fakes against all held-out reals. Columns: each branch alone, the OR-rule fusion, "
        "the logistic fusion, and univfd (configs/univfd.yaml) trained on the same images. What the numbers say: "
        "[aligngemini-aigi-dev-reading.md](aligngemini-aigi-dev-reading.md).",
        "",
    ]
    if "two" in data:
        t = data["two"]
        out += [
            "## Trained on stylegan2 + ldm only (the paper's two-generator recipe)",
            "",
            table(t["per_generator"]),
            "",
            f"OR rule on the held-out test set: fused FPR on test reals {t['or_rule']['fused_fpr_test_reals']:.3f} "
            f"(budget {t['fit_validation']['or']['fpr_budget']}, on validation {t['fit_validation']['or']['fused_fpr']:.3f}).",
            "",
            "| generator | recall | semantic only | pixel only | both |",
            "|---|---|---|---|---|",
        ]
        for g, r in t["or_rule"].items():
            if isinstance(r, dict):
                out.append(
                    f"| {g} | {r['recall']:.3f} | {r['semantic_only']:.3f} | {r['pixel_only']:.3f} | {r['both']:.3f} |"
                )
        out += [
            "",
            "### Orthogonality",
            "",
            "| set | n | semantic branch AUROC | pixel expert AUROC |",
            "|---|---|---|---|",
        ]
        for name, r in t["orthogonality"].items():
            out.append(f"| {name} | {r['n']} | {r['semantic_branch_auroc']:.3f} | {r['pixel_expert_auroc']:.3f} |")
        out += [
            "",
            "### Robustness (all held-out generators pooled against held-out reals)",
            "",
            table(t["robustness"]),
            "",
        ]
    if "logo" in data:
        rows = {g: {k: v for k, v in r.items() if k in COLUMNS} for g, r in data["logo"].items()}
        rows["mean"] = {k: float(np.mean([r[k] for r in rows.values()])) for k in COLUMNS}
        out += ["## Leave-generator-out (seed 0)", "", table(rows), ""]
    if "swap" in data:
        out += [
            "## Format swap (validation split of the 80/20 `aigi train` split)",
            "",
            "Reals re-stored as the fakes are (256x256 JPEG q95), fakes as the reals are (333x314 JPEG q80).",
            "",
            "| | AUROC as stored | AUROC swapped | change |",
            "|---|---|---|---|",
        ]
        for name, r in data["swap"].items():
            out.append(f"| {name} | {r['auroc_before']:.3f} | {r['auroc_after']:.3f} | {r['auroc_change']:+.3f} |")
        out.append("")
    if "default_rule" in data:
        d = data["default_rule"]
        out += [
            "## The embedded-default rule",
            "",
            f"**{d['default']}** ({'changed' if d['changed'] else 'unchanged'}): {d['reason']}.",
            "",
        ]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/aigi-dev/manifest.csv"))
    ap.add_argument("--pixel-expert", required=True)
    ap.add_argument("--pixel-reals", required=True, help="The reals the pixel expert's pairs were built from.")
    ap.add_argument("--work", default=str(ROOT / "runs/ag"))
    ap.add_argument("--part", default="all", choices=["all", "two", "logo", "swap"])
    args = ap.parse_args()
    manifest = load_data(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    seen = {s.path for s in load_data(args.pixel_reals)}
    test_reals = {
        manifest.samples[i].path
        for i in train_on_generators(manifest, ["stylegan2", "ldm"], 0).test
        if manifest.samples[i].label == 0
    }
    if seen & test_reals:
        raise SystemExit(f"{len(seen & test_reals)} test reals are among the pixel expert's training reals")

    ag_cfg = load_train_config(ROOT / "configs/aligngemini.yaml")
    ag_cfg.options = {**ag_cfg.options, "pixel_expert": str(Path(args.pixel_expert).resolve())}
    uv_cfg = load_train_config(ROOT / "configs/univfd.yaml")

    parts = ["two", "logo", "swap"] if args.part == "all" else [args.part]
    for part in parts:
        f = work / f"{part}.json"
        if f.is_file():
            log(f"{part}: reusing {f}")
            continue
        res = (
            part_two(manifest, ag_cfg, uv_cfg, work)
            if part == "two"
            else part_logo(manifest, ag_cfg, uv_cfg)
            if part == "logo"
            else part_swap(manifest, ag_cfg)
        )
        f.write_text(json.dumps(res, indent=1))

    data = {"data": manifest.source, "pixel_expert": args.pixel_expert}
    for part in ("two", "logo", "swap"):
        if (work / f"{part}.json").is_file():
            data[part] = json.loads((work / f"{part}.json").read_text())
    if "logo" in data:
        from aigi.workflows.compare import choose_default

        logo = {name: {g: r[name] for g, r in data["logo"].items()} for name in ("univfd", "or", "logistic")}
        data["default_rule"] = choose_default(
            {"univfd": logo["univfd"], "aligngemini": logo["or"], "aligngemini-logistic": logo["logistic"]}, "univfd"
        )
    res_dir = ROOT / "benchmarks/results"
    (res_dir / "aligngemini-aigi-dev.json").write_text(json.dumps(data, indent=1))
    (res_dir / "aligngemini-aigi-dev.md").write_text(markdown(data))
    log("wrote benchmarks/results/aligngemini-aigi-dev.{json,md}")


if __name__ == "__main__":
    main()
