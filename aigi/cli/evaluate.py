"""``aigi eval``, ``aigi compare``, ``aigi audit`` and ``aigi robustness``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aigi.cli.common import (
    DETECTOR_HELP,
    app,
    err_console,
    error_line,
    fail,
    load,
    log,
    metrics_table,
    out_console,
    progress_bar,
    read_data,
    unreserved,
)

PIXELS_ONLY = (
    "provenance: not used (eval scores the pixels alone; `aigi detect` also reads what files declare, so its "
    "verdicts can differ on files with C2PA, generator metadata or a watermark)"
)


@app.command("eval")
def evaluate(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help="Evaluate this trained detector."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="With --protocol: train per fold from this config."
    ),
    protocol: Optional[str] = typer.Option(
        None,
        help="leave-generator-out, leave-family-out (generator families by maker and line), leave-source-out "
        "(each real source left out of training whole: its false-positive rate at the rule's threshold), "
        "train-on:GEN1,GEN2, or cross-dataset (with --test-data)",
    ),
    test_data: Optional[str] = typer.Option(
        None, "--test-data", help="With --protocol cross-dataset: the data set to test on."
    ),
    seeds: str = typer.Option("0", help="Comma-separated split seeds for the protocol (e.g. 0,1,2,3,4)."),
    sources: Optional[str] = typer.Option(
        None, "--sources", help="With --protocol leave-source-out: leave out only these real sources (comma-separated)."
    ),
    threshold: Optional[float] = typer.Option(None),
    fpr: Optional[float] = typer.Option(None),
    unsure_band: Optional[float] = typer.Option(None, help="Override the stored unsure band."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write all numbers to this JSON file."),
    device: Optional[str] = typer.Option(None),
):
    """Metrics per generator for a trained detector, or a protocol that trains one model per fold."""
    from aigi.config import ConfigError
    from aigi.workflows.evaluate import evaluate as run_eval

    manifest = read_data(data)
    test_manifest = read_data(test_data) if test_data else None
    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    try:
        if protocol:
            result = run_eval(
                manifest, config=config, protocol=protocol, seeds=seed_list, test_data=test_manifest,
                device=device, on_fold=_fold_line(protocol),
                sources=[x for x in sources.split(",") if x.strip()] if sources else None,
            )  # fmt: skip
            _print_protocol(result, protocol, seed_list)
        else:
            det = load(detector, device)
            prog, advance = progress_bar(len(manifest), "eval")
            with prog:
                result = run_eval(
                    manifest, det, threshold=threshold, fpr=fpr, unsure_band=unsure_band, progress=advance
                )
            _print_detector(result)
    except (ConfigError, ValueError) as e:
        fail(str(e))
    # eval measures what the pixels say; detect also reads what files declare, so the two can differ
    err_console.print(PIXELS_ONLY, highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, default=str))
        err_console.print(f"wrote {json_out}", highlight=False)


def _fold_line(protocol: str):
    """What ``aigi eval`` prints as each protocol fold ends."""
    if protocol == "leave-source-out":
        return lambda seed, r: err_console.print(
            f"seed {seed} left out {r['fold']}: {r['fpr']:.3f} of {r['n']} flagged at {r['threshold']:.3f}",
            highlight=False,
        )
    return lambda seed, r: err_console.print(
        f"seed {seed} held-out {r['fold']}: AUROC {r['metrics']['auroc']:.3f}", highlight=False
    )


def _print_protocol(result: dict, protocol: str, seeds: list[int]) -> None:
    if protocol in ("leave-generator-out", "leave-family-out"):
        rows = [(g, {"AUROC": v["auroc_mean"], "sd": v["auroc_sd"]}) for g, v in result["auroc"].items()]
        rows.append(("mean", {"AUROC": result["mean_auroc"]}))
        held = "family" if protocol == "leave-family-out" else "generator"
        title = f"{protocol} AUROC per held-out {held} (seeds {seeds})"
        out_console.print(metrics_table(title, rows, ["AUROC", "sd"]))
    elif protocol == "leave-source-out":
        rows = [(g, {"FPR": v["fpr_mean"], "max": v["fpr_max"]}) for g, v in result["fpr"].items()]
        title = f"leave-source-out: false-positive rate of each real source left out (seeds {seeds})"
        out_console.print(metrics_table(title, rows, ["FPR", "max"]))
    elif protocol.startswith("train-on:"):
        rows = [(g, m) for g, m in result["per_generator"].items() if m["label"] == "fake"]
        out_console.print(metrics_table(result["protocol"], rows, ["auroc_vs_all_reals", "recall"]))
    else:  # cross-dataset
        rows = [("all", result["metrics"])] + [(g, m) for g, m in result["per_generator"].items()]
        out_console.print(metrics_table(result["fold"], rows, ["auroc", "recall", "specificity", "mean_p_fake"]))


OVERALL_KEYS = [
    "n", "n_real", "n_fake", "auroc", "ap", "accuracy@0.5", "threshold", "accuracy", "real_accuracy",
    "fake_accuracy", "balanced_accuracy", "eer", "tpr@1%fpr", "tpr@5%fpr", "ece", "brier", "unsure_band",
    "unsure_fraction", "accuracy_confident",
]  # fmt: skip


def _print_detector(result: dict) -> None:
    for w in result["warnings"]:
        error_line(w, "warning")
    o = result["overall"]
    title = f"{result['detector']} {result['detector_version']} on {result['data']}"
    out_console.print(metrics_table(title, [(k, {"value": o[k]}) for k in OVERALL_KEYS], ["value"]))
    rows = [(g, {**m, "rate": m.get("recall", m.get("specificity"))}) for g, m in result["per_generator"].items()]
    out_console.print(
        metrics_table(
            f"per generator (fake: recall, real: specificity, at threshold {o['threshold']:.3f})",
            rows,
            ["label", "n", "rate", "mean_p_fake", "auroc_vs_all_reals"],
        )
    )
    att = result.get("attribution")
    if att:
        rows = [(f, {**m, "known": "yes" if m["known"] else "no"}) for f, m in sorted(att["per_family"].items())]
        out_console.print(
            metrics_table(
                "attribution of the flagged fakes (a family it knows should be named; a new one, unknown)",
                rows,
                ["known", "n", "named_right", "unknown"],
            )
        )
        if att["p_ece"] is not None:
            out_console.print(f"attribution p: expected calibration error {att['p_ece']:.3f} (known families)")
    for e in result["errors"]:
        error_line(e)


@app.command()
def compare(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    config: list[Path] = typer.Option(..., "--config", "-c", help="One training config per detector (repeat)."),
    out: Path = typer.Option(
        Path("compare-report"), "--out", "-o", help="Folder for report.html, report.json, detectors/."
    ),
    seeds: str = typer.Option("0", help="Comma-separated leave-generator-out split seeds."),
    per_group: int = typer.Option(50, help="Robustness subset: at most this many images per generator and source."),
    current_default: Optional[str] = typer.Option(
        None, help="Name (config file stem) of the current default; default: the first config."
    ),
):
    """Evaluate several detectors side by side (LOGO, calibration, format swap, robustness) into one HTML report,
    and apply the rule that chooses the embedded default."""
    from aigi.config import ConfigError, load_train_config
    from aigi.data import ManifestError, load_data
    from aigi.workflows.compare import compare as run_compare

    try:
        manifest = load_data(data)
        configs = {c.stem: load_train_config(c) for c in config}
    except (ConfigError, ManifestError) as e:
        fail(str(e))
    if len(configs) != len(config):
        fail("two configs share a file name; names in the report come from the file stems")
    current = current_default or next(iter(configs))
    if current not in configs:
        fail(f"--current-default {current!r} is not one of {sorted(configs)}")
    result = run_compare(
        configs, manifest, out, current, [int(s) for s in seeds.split(",") if s.strip()], per_group, log=log
    )
    rows = [
        (n, {**r["logo"], "mean": sum(r["logo"].values()) / len(r["logo"])}) for n, r in result["detectors"].items()
    ]
    gens = sorted(next(iter(result["detectors"].values()))["logo"])
    out_console.print(metrics_table("leave-generator-out AUROC", rows, gens + ["mean"]))
    d = result["default_rule"]
    out_console.print(
        f"default: {d['default']} ({'changed' if d['changed'] else 'unchanged'}): {d['reason']}", highlight=False
    )
    out_console.print(f"report: {out / 'report.html'}", highlight=False)


@app.command()
def audit(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    parity: bool = typer.Option(
        False,
        "--parity",
        metavar="",  # a flag, not "<bool>"
        help="Audit the images after re-encoding each identically (256 px square, JPEG q90, no metadata).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the findings to this JSON file."),
):
    """Does metadata alone (format, size, aspect, bytes/pixel, JPEG tables, EXIF) predict real vs fake?"""
    from aigi.evaluation.audit import WARN_AUROC
    from aigi.evaluation.audit import audit as run_audit

    manifest = read_data(data)
    prog, advance = progress_bar(len(manifest), "audit")
    with prog:
        try:
            res = run_audit(manifest, parity=parity, progress=advance)
        except ValueError as e:
            fail(str(e))
    rows = [
        (cue, {"AUROC": a, "warning": "SHORTCUT" if a >= WARN_AUROC else ""}) for cue, a in res["auroc_by_cue"].items()
    ]
    out_console.print(
        metrics_table(
            f"metadata-only AUROC (5-fold CV){' after parity re-encoding' if parity else ''}, {res['n']} images",
            rows,
            ["AUROC", "warning"],
        )
    )
    for cls, v in res["by_class"].items():
        out_console.print(
            f"{cls}: median {v['median_width']}x{v['median_height']}, JPEG quality {v['median_jpeg_quality']}, "
            f"{v['median_bytes_per_pixel']:.2f} bytes/pixel, formats {v['formats']}",
            highlight=False,
        )
        d = res["declarations"][cls]
        out_console.print(
            f"{cls}: {d['ai']} of {d['files']} files declare AI origin, {d['camera']} a camera "
            "(C2PA, metadata, watermark)",
            highlight=False,
        )
    for w in res["warnings"]:
        error_line(
            f"{w}: a detector trained on this set can learn it instead of generation artefacts. Train with "
            "shortcut-denial views (configs/univfd.yaml) or parity, and check the format swap.",
            "warning",
        )
    for e in res["errors"]:
        error_line(e)
    if json_out:
        json_out.write_text(json.dumps(res, indent=2))


@app.command()
def robustness(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    per_group: int = typer.Option(50, help="At most this many images per generator and per real source (seeded)."),
    seed: int = typer.Option(0),
    perturbations: Optional[str] = typer.Option(
        None,
        help="Comma-separated subset of: jpeg, webp, resize, blur, noise, crop, social; name:severity for one "
        "severity (jpeg:50, resize:0.5).",
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write robustness.html and .json into this folder."),
    device: Optional[str] = typer.Option(None),
):
    """AUROC and accuracy under JPEG, WebP, resizing, blur, noise, cropping and social-media laundering."""
    from aigi.data.splits import seeded_subset
    from aigi.evaluation import report as R
    from aigi.evaluation.robustness import robustness_sweep

    det = load(detector, device)
    manifest = seeded_subset(unreserved(det, read_data(data)), per_group, seed)
    names = [n.strip() for n in perturbations.split(",")] if perturbations else None
    try:
        res = robustness_sweep(det, manifest, names, progress=log)
    except ValueError as e:
        fail(str(e))
    rows = [
        (f"{r['perturbation']} {r['severity']}" if r["perturbation"] != "none" else "clean", r) for r in res["rows"]
    ]
    out_console.print(
        metrics_table(
            f"{det.name} {det.version} on {manifest.summary()}",
            rows,
            ["auroc", "balanced_accuracy", "mean_p_fake_real", "mean_p_fake_fake"],
        )
    )
    if out:
        R.write_report(
            out / "robustness.html",
            f"aigi robustness: {det.name}",
            [
                (
                    "AUROC under perturbation",
                    R.img(R.plot_robustness({det.name: res["rows"]}), "robustness")
                    + R.table(
                        ["condition", "AUROC", "balanced accuracy"],
                        [[n, r["auroc"], r["balanced_accuracy"]] for n, r in rows],
                    ),
                )
            ],
            res,
        )
        err_console.print(f"wrote {out / 'robustness.html'}", highlight=False)
