"""``aigi detect``, ``aigi demo`` and ``aigi augment --preview``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from aigi.cli.common import (
    DETECTOR_HELP,
    app,
    check_operating_point,
    err_console,
    error_line,
    expand_inputs,
    fail,
    load,
    log,
    operating_point_note,
    out_console,
    output_format,
    plural,
    read_data,
    run_detect,
)
from aigi.cli.output import RecordWriter, open_output, render_records


@app.command()
def detect(
    inputs: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or glob patterns."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="table, csv, json or jsonl (csv and jsonl are written as results come); default: the one -o's "
        "extension names (.csv, .json, .jsonl), else table.",
    ),
    threshold: Optional[float] = typer.Option(None, help="Flag as fake when p_fake >= this."),
    fpr: Optional[float] = typer.Option(
        None,
        help="Pick the threshold that flags this fraction of the detector's validation reals, all its real sources "
        "pooled (e.g. 0.01). The default threshold holds every source under a cap, so it can be stricter.",
    ),
    unsure_band: Optional[float] = typer.Option(
        None,
        help="Answer 'unsure' when p_fake is this close to the threshold (default: the detector's; 0 turns it off).",
    ),
    ensemble: bool = typer.Option(
        False,
        "--ensemble",
        metavar="",  # a flag, not "<bool>"
        help="Also score mild degradations (JPEG q85, 0.75x, blur) and answer 'unsure' if the verdict flips.",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the result to this file (its folder is created) instead of stdout."
    ),
    batch_size: int = typer.Option(16, help="Images per forward pass."),
    device: Optional[str] = typer.Option(None, help="auto (default), cpu or cuda."),
    explain: Optional[Path] = typer.Option(
        None,
        "--explain",
        help="Write a heatmap overlay per image into this folder: the default's evidence map (what each patch adds "
        "toward AI-generated or real) or a mask head's region (gamma).",
    ),
    no_provenance: bool = typer.Option(
        False,
        "--no-provenance",
        metavar="",
        help="Do not read what files declare (C2PA, generator metadata, watermarks); the pixels alone decide.",
    ),
    runtime: str = typer.Option(
        "torch", "--runtime", help="torch (default) or onnx: the graph `aigi export` wrote into the detector directory."
    ),
):
    """Give every image a verdict (real/fake/unsure/error) and a calibrated probability of being AI-generated.

    Exit status: 0 all scored, 1 some inputs were bad (their records say why), 2 the run failed."""
    fmt = output_format(fmt, output)
    skipped: dict[str, int] = {}
    paths, problems = expand_inputs(inputs, skipped)
    for p in problems:
        error_line(p)
    if not paths:
        raise typer.Exit(1)
    det = load(detector, device)
    if runtime not in ("torch", "onnx"):
        fail(f"--runtime must be torch or onnx, not {runtime!r}")
    if runtime == "onnx":
        from aigi.export import ONNX_FILE

        graph = Path(detector or "").expanduser() / ONNX_FILE
        if not graph.is_file():
            fail(
                f"--runtime onnx needs {ONNX_FILE} in the detector directory: run "
                f"`aigi export --detector {detector or 'univfd'} --out DIR` and pass --detector DIR"
            )
        det.use_onnx(graph)
    from aigi.contract import draws_map

    if explain is not None and not draws_map(det):
        fail(f"--explain needs a detector with a mask head or an evidence map (univfd, gamma); {det.name} has neither")
    thr = check_operating_point(det, threshold, fpr, unsure_band)  # before any output is written
    writer = RecordWriter(fmt, open_output(output))
    n_heatmaps = 0

    def on_record(rec):
        nonlocal n_heatmaps
        if explain is not None:
            from aigi.explain import write_heatmap

            n_heatmaps += write_heatmap(rec, det, explain)
        writer.write(rec)

    try:
        records = run_detect(
            paths, det, threshold, fpr, batch_size, unsure_band, ensemble, on_record, provenance=not no_provenance
        )
    finally:
        writer.close()
    if explain is not None:
        log(f"{plural(n_heatmaps, 'heatmap')} written to {explain}")
    errors = [r for r in records if r["verdict"] == "error"]
    for r in errors:
        error_line(f"{r['path']}: {r['error']}")
    for r in records:
        if r["verdict"] == "unsure":
            error_line(f"{r['path']}: {r['reason']}", "unsure")
    n_fake = sum(r["verdict"] == "fake" for r in records)
    n_real = sum(r["verdict"] == "real" for r in records)
    n_unsure = sum(r["verdict"] == "unsure" for r in records)
    err_console.print(
        f"{plural(len(records), 'image')}: {n_fake} fake, {n_real} real, {n_unsure} unsure, "
        f"{plural(len(errors), 'error')} (detector {det.name} {det.version}; "
        f"{operating_point_note(det, thr, threshold, fpr)})"
        + (
            "; skipped " + str(sum(skipped.values())) + ": " + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items()))
            if skipped
            else ""
        ),
        highlight=False,
    )
    if errors or problems:
        raise typer.Exit(1)


@app.command()
def augment(
    preview: Path = typer.Option(
        ..., "--preview", help="Write a PNG grid of manipulated samples with their masks here."
    ),
    data: Optional[str] = typer.Option(None, "--data", help="Images to manipulate (default: the bundled sample)."),
    n: int = typer.Option(8, "--n", help="How many samples."),
    seed: int = typer.Option(0, help="Seed of the draws (the same seed gives the same grid)."),
):
    """Preview GAMMA's manipulation augmentation: inpainting, copy-move and splicing, each with its mask."""
    from aigi.augment.preview import preview_grid

    if data:
        manifest = read_data(data)
    else:
        from aigi.paths import cache_dir
        from aigi.samples import build_sample

        manifest = build_sample(cache_dir() / "demo-sample")
    try:
        grid, errors = preview_grid(manifest, n=n, seed=seed)
    except (ValueError, ImportError) as e:
        fail(str(e))
    for e in errors:
        error_line(e)
    preview.parent.mkdir(parents=True, exist_ok=True)
    grid.save(preview)
    log(f"{n - len(errors)} manipulated samples written to {preview}")


DEMO_SAYS = (
    "The sample: {n_fake} images of today's generators as their public galleries publish them ({gens}; 384 px "
    "JPEG, no metadata, so provenance cannot decide and the pixels do), {n_cam} camera originals and {n_pkg} "
    "photos that scikit-image and matplotlib ship (two of them portraits). None of them was used in training. "
    "It shows what the verdicts look like, not how often they are right: {n} images are no benchmark. Measured "
    "rates, per generator and per kind of real image, are in the model card: {card}"
)


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="Where to write the sample (default: a folder in the cache dir)."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    device: Optional[str] = typer.Option(None),
):
    """Run a detector on a small bundled sample of today's AI images and real photos, with the truth beside."""
    from aigi.paths import cache_dir
    from aigi.samples import build_demo

    out = out or cache_dir() / "demo-sample"
    try:
        manifest, what = build_demo(out)
    except (ImportError, FileNotFoundError) as e:
        fail(f"cannot build the demo sample: {e}")
    truth = {s.path: ("fake" if s.label else "real") for s in manifest}
    det = load(detector, device)
    records = run_detect([s.path for s in manifest], det, None, None, 16)
    sys.stdout.write(render_records(records, "table", truth, what))
    correct = sum(r["verdict"] == truth[r["path"]] for r in records)
    real_ok = sum(r["verdict"] == "real" for r in records if truth[r["path"]] == "real")
    fake_ok = sum(r["verdict"] == "fake" for r in records if truth[r["path"]] == "fake")
    n_real = sum(t == "real" for t in truth.values())
    n_unsure = sum(r["verdict"] == "unsure" for r in records)
    out_console.print(
        f"{correct}/{len(records)} correct, {n_unsure} unsure (real photos {real_ok}/{n_real}, "
        f"AI images {fake_ok}/{len(records) - n_real}) with detector {det.name} {det.version}, "
        f"threshold {records[0]['threshold']:.3f}. Sample written to {out}",
        highlight=False,
    )
    from aigi import WEIGHTS_DIR

    card = WEIGHTS_DIR / (detector or det.name) / "MODEL_CARD.md"
    gens = sorted({s.generator for s in manifest if s.label})
    out_console.print(
        DEMO_SAYS.format(
            n_fake=len(records) - n_real,
            gens=", ".join(gens),
            n_cam=sum(s.generator == "camera-photo" for s in manifest),
            n_pkg=sum(s.generator == "package-photo" for s in manifest),
            n=len(records),
            card=card if card.is_file() else "see the detector's directory",
        ),
        highlight=False,
    )
