"""The ``aigi`` command line. Conventions: ``--detector`` takes a registered name or
a saved directory; data sets are ``--data``; every command prints the same result record."""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Detect AI-generated images; train and evaluate detectors."
)
# Piped output is not cut to 80 columns: tables stay whole in files and logs.
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

FORMATS = ("table", "csv", "json")


def _error_line(msg: str, label: str = "error") -> None:
    """One line on stderr: a coloured label, then the message verbatim (paths may contain [brackets])."""
    from rich.markup import escape

    colour = {"error": "bold red", "warning": "bold yellow", "unsure": "yellow"}[label]
    err_console.print(f"[{colour}]{label}:[/] {escape(str(msg))}", highlight=False, soft_wrap=True)


def _log(msg: str) -> None:
    """A progress line on stderr, printed verbatim."""
    err_console.print(msg, highlight=False, markup=False)


def _fail(msg: str, code: int = 2) -> None:
    _error_line(msg)
    raise typer.Exit(code)


def _data(source: str):
    """A manifest from ``--data`` (or ``--test-data``); a bad source is one error line and exit 2."""
    from aigi.data import ManifestError, load_data

    try:
        return load_data(source)
    except ManifestError as e:
        _fail(str(e))


def _progress(total: int, label: str):
    """A rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task = prog.add_task(label, total=total)
    return prog, (lambda n: prog.advance(task, n))


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """Files as given; folders recursively (image suffixes, or no suffix); quoted globs expanded.
    Returns (paths, problems) where problems are inputs that matched nothing."""
    from aigi.data.manifest import IMAGE_SUFFIXES

    paths: list[str] = []
    problems: list[str] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                str(f)
                for f in p.rglob("*")
                if f.is_file() and not f.name.startswith(".") and (f.suffix.lower() in IMAGE_SUFFIXES or f.suffix == "")
            )
            if not found:
                problems.append(f"{raw}: folder holds no image files")
            paths.extend(found)
        elif p.exists() or p.is_symlink():
            paths.append(str(p))
        elif any(ch in raw for ch in "*?["):
            found = sorted(f for f in glob.glob(raw, recursive=True) if os.path.isfile(f))
            if not found:
                problems.append(f"{raw}: pattern matched no files")
            paths.extend(found)
        else:
            paths.append(str(p))  # reported as 'no such file' by the decoder, in order
    return paths, problems


def _fmt_p(p) -> str:
    return "" if p is None else f"{p:.3f}"


def render_records(records: list[dict], fmt: str, truth: dict[str, str] | None = None) -> str:
    """Render records as a rich table (text), CSV or JSON."""
    from aigi.records import RECORD_FIELDS

    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        extra = sorted({k for r in records for k in r} - set(RECORD_FIELDS))
        w = csv.DictWriter(buf, fieldnames=list(RECORD_FIELDS) + extra, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()})
        return buf.getvalue()
    table = Table(show_lines=False)
    table.add_column("image", overflow="fold")
    if truth is not None:
        table.add_column("truth")
    table.add_column("verdict")
    table.add_column("p_fake", justify="right")
    if truth is not None:
        table.add_column("correct")
    captions = any(r.get("caption") for r in records)  # ITEM: what the image was compared with
    if captions:
        table.add_column("caption (global misalignment)", overflow="fold")
    colours = {"fake": "red", "real": "green", "unsure": "yellow", "error": "magenta"}
    for r in records:
        v = r["verdict"]
        row = [r["path"]]
        if truth is not None:
            row.append(truth.get(r["path"], "?"))
        row += [f"[{colours[v]}]{v}[/]", _fmt_p(r["p_fake"])]
        if truth is not None:
            t = truth.get(r["path"])
            row.append("" if v == "error" or t is None else ("yes" if v == t else "[bold]no[/]"))
        if captions:
            m = (r.get("misalignment") or {}).get("global")
            row.append(f"{r.get('caption', '')}" + (f" ({m:.3f})" if m is not None else ""))
        table.add_row(*row)
    cap = Console(file=io.StringIO(), width=max(100, out_console.width), force_terminal=out_console.is_terminal)
    cap.print(table)
    return cap.file.getvalue()


def _load(detector: Optional[str], device: Optional[str]):
    from aigi import load_detector

    try:
        return load_detector(detector, device)
    except (FileNotFoundError, KeyError, ValueError) as e:
        _fail(str(e))


def _unreserved(det, manifest):
    """The data minus the images the detector was pre-trained on (ITEM's alignment slice), said aloud."""
    from aigi.data.splits import without

    idx = det.reserved(manifest)
    if len(idx):
        err_console.print(f"left out {len(idx)} images {det.name} reserved for its pre-training", highlight=False)
    return without(manifest, idx)


def _run_detect(paths, det, threshold, fpr, batch_size, unsure_band=None, ensemble=False):
    prog, advance = _progress(len(paths), "detect")
    with prog:
        try:
            return det.predict(
                paths,
                threshold=threshold,
                fpr=fpr,
                unsure_band=unsure_band,
                ensemble=ensemble,
                batch_size=batch_size,
                progress=advance,
            )
        except ValueError as e:  # threshold/fpr problems
            _fail(str(e))


@app.command()
def detect(
    inputs: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or glob patterns."),
    detector: Optional[str] = typer.Option(
        None, "--detector", "-d", help="Registered name or saved directory (default: the embedded default)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    threshold: Optional[float] = typer.Option(None, help="Flag as fake when p_fake >= this."),
    fpr: Optional[float] = typer.Option(
        None, help="Pick the threshold that flags this fraction of the detector's validation real photos (e.g. 0.01)."
    ),
    unsure_band: Optional[float] = typer.Option(
        None,
        help="Answer 'unsure' when p_fake is this close to the threshold (default: the detector's; 0 turns it off).",
    ),
    ensemble: bool = typer.Option(
        False,
        "--ensemble",
        help="Also score mild degradations (JPEG q85, 0.75x, blur) and answer 'unsure' if the verdict flips.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the result here instead of stdout."),
    batch_size: int = typer.Option(16, help="Images per forward pass."),
    device: Optional[str] = typer.Option(None, help="auto (default), cpu or cuda."),
    explain: Optional[Path] = typer.Option(
        None,
        "--explain",
        help="Write a heatmap overlay per image into this folder (detectors with a mask head, e.g. gamma).",
    ),
    runtime: str = typer.Option(
        "torch", "--runtime", help="torch (default) or onnx: the graph `aigi export` wrote into the detector directory."
    ),
):
    """Give every image a verdict (real/fake/unsure/error) and a calibrated probability of being AI-generated."""
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    paths, problems = expand_inputs(inputs)
    for p in problems:
        _error_line(p)
    if not paths:
        raise typer.Exit(1)
    det = _load(detector, device)
    if runtime not in ("torch", "onnx"):
        _fail(f"--runtime must be torch or onnx, not {runtime!r}")
    if runtime == "onnx":
        from aigi.export import ONNX_FILE

        graph = Path(detector or "").expanduser() / ONNX_FILE
        if not graph.is_file():
            _fail(
                f"--runtime onnx needs {ONNX_FILE} in the detector directory: run "
                f"`aigi export --detector {detector or 'univfd'} --out DIR` and pass --detector DIR"
            )
        det.use_onnx(graph)
    if explain is not None and not det.has_mask:
        _fail(f"--explain needs a detector with a mask head (gamma); {det.name} gives no mask")
    records = _run_detect(paths, det, threshold, fpr, batch_size, unsure_band, ensemble)
    if explain is not None:
        from aigi.explain import write_heatmaps

        n = write_heatmaps(records, det, explain)
        _log(f"{n} heatmaps written to {explain}")
    text = render_records(records, fmt)
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    errors = [r for r in records if r["verdict"] == "error"]
    for r in errors:
        _error_line(f"{r['path']}: {r['error']}")
    for r in records:
        if r["verdict"] == "unsure":
            _error_line(f"{r['path']}: {r['reason']}", "unsure")
    n_fake = sum(r["verdict"] == "fake" for r in records)
    n_real = sum(r["verdict"] == "real" for r in records)
    n_unsure = sum(r["verdict"] == "unsure" for r in records)
    err_console.print(
        f"{len(records)} images: {n_fake} fake, {n_real} real, {n_unsure} unsure, {len(errors)} errors "
        f"(detector {det.name} {det.version}, threshold {records[0]['threshold']:.3f})",
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
    from aigi.augment.manipulate import preview_grid

    if data:
        manifest = _data(data)
    else:
        from aigi.paths import cache_dir
        from aigi.samples import build_sample

        manifest = build_sample(cache_dir() / "demo-sample")
    try:
        grid, errors = preview_grid(manifest, n=n, seed=seed)
    except (ValueError, ImportError) as e:
        _fail(str(e))
    for e in errors:
        _error_line(e)
    preview.parent.mkdir(parents=True, exist_ok=True)
    grid.save(preview)
    _log(f"{n - len(errors)} manipulated samples written to {preview}")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="Where to write the sample (default: a folder in the cache dir)."),
    n_fake: int = typer.Option(8, help="How many DCGAN faces to generate."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d"),
    device: Optional[str] = typer.Option(None),
):
    """Build a sample of real photos (scikit-image, scikit-learn) and AI faces (DCGAN), detect, and score."""
    from aigi.paths import cache_dir
    from aigi.samples import build_sample

    out = out or cache_dir() / "demo-sample"
    try:
        manifest = build_sample(out, n_fake=n_fake)
    except (ImportError, FileNotFoundError) as e:
        _fail(f"cannot build the demo sample: {e}")
    truth = {s.path: ("fake" if s.label else "real") for s in manifest}
    det = _load(detector, device)
    records = _run_detect([s.path for s in manifest], det, None, None, 16)
    sys.stdout.write(render_records(records, "table", truth))
    correct = sum(r["verdict"] == truth[r["path"]] for r in records)
    real_ok = sum(r["verdict"] == "real" for r in records if truth[r["path"]] == "real")
    fake_ok = sum(r["verdict"] == "fake" for r in records if truth[r["path"]] == "fake")
    n_real = sum(t == "real" for t in truth.values())
    n_unsure = sum(r["verdict"] == "unsure" for r in records)
    out_console.print(
        f"{correct}/{len(records)} correct, {n_unsure} unsure (real photos {real_ok}/{n_real}, "
        f"AI faces {fake_ok}/{len(records) - n_real}) with detector {det.name} {det.version}, "
        f"threshold {records[0]['threshold']:.3f}. Sample written to {out}",
        highlight=False,
    )


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config (see configs/)."),
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the trained detector in."),
):
    """Train a detector (and calibrate it on a held-out validation split).

    Under ``torchrun --nproc_per_node N`` the gradient-trained heads (pixel, gamma, item) train
    data-parallel (gloo on CPU, nccl on GPUs); rank 0 calibrates and saves."""
    from aigi.config import ConfigError, load_train_config
    from aigi.data import ManifestError, load_data
    from aigi.workflows.train import distributed, train_detector

    try:
        cfg = load_train_config(config)
        manifest = load_data(data)
    except (ConfigError, ManifestError) as e:
        _fail(str(e))
    with distributed(cfg.device) as (rank, size):
        if rank == 0:
            err_console.print(
                f"training {cfg.detector} on {manifest.summary()}" + (f" with {size} processes" if size > 1 else ""),
                highlight=False,
            )
        prog, advance = _progress(len(manifest) * len(cfg.train_views()), "features")
        with prog:
            try:
                det = train_detector(cfg, manifest, out, advance)
            except (ValueError, FileNotFoundError, KeyError) as e:
                _fail(f"training failed: {e}")
    if rank != 0:
        return
    v = det.training_info.get("validation", {}).get("metrics", {})
    msg = f"saved {det.name} to {out}"
    if v:
        msg += f"; validation AUROC {v['auroc']:.3f}, accuracy {v['accuracy']:.3f} ({v['n']} images)"
    out_console.print(msg, highlight=False)


def _metrics_table(title: str, rows: list[tuple[str, dict]], cols: list[str]) -> Table:
    t = Table(title=title)
    t.add_column("")
    for c in cols:
        t.add_column(c, justify="right")
    for name, m in rows:
        t.add_row(
            name,
            *[
                (
                    ""
                    if m.get(c) is None or (isinstance(m.get(c), float) and math.isnan(m[c]))
                    else f"{m[c]:.3f}"
                    if isinstance(m[c], float)
                    else str(m[c])
                )
                for c in cols
            ],
        )
    return t


@app.command()
def serve(
    detector: Optional[str] = typer.Option(
        None, "--detector", "-d", help="Registered name or saved directory (default: the embedded default)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000),
    device: Optional[str] = typer.Option(None),
    api_key_hash: list[str] = typer.Option(
        [], "--api-key-hash", help="SHA-256 hex of an accepted X-API-Key (repeatable); none: open."
    ),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Allow this browser origin (repeatable); none: CORS off."
    ),
    max_request_mb: float = typer.Option(64.0, help="Largest request body, MB."),
    max_files: int = typer.Option(64, help="Most images per request."),
    max_pixels: int = typer.Option(40_000_000, help="Most pixels per image (decompression-bomb guard)."),
    decode_timeout: float = typer.Option(10.0, help="Seconds allowed to decode one image."),
    max_batch: int = typer.Option(16, help="Most images per model batch."),
    batch_window_ms: float = typer.Option(10.0, help="How long the first waiting image waits for others."),
    max_queue: int = typer.Option(256, help="Most images waiting for the model; beyond it: 503 + Retry-After."),
):
    """Serve the HTTP API (/v1/detect, /v1/detectors, /healthz, /metrics, /docs) and the web page (/)."""
    try:
        import uvicorn

        from aigi.serve.app import ServeSettings, create_app
    except ImportError as e:
        _fail(f"aigi serve needs the serve extra: pip install 'aigi[serve]' ({e})")
    bad = [h for h in api_key_hash if len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower())]
    if bad:
        _fail(f"--api-key-hash takes the SHA-256 hex of a key (64 hex digits), not {bad[0]!r}")
    det = _load(detector, device)
    settings = ServeSettings(
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        max_files=max_files,
        max_pixels=max_pixels,
        decode_timeout_s=decode_timeout,
        max_batch=max_batch,
        batch_window_ms=batch_window_ms,
        max_queue=max_queue,
        api_key_hashes=tuple(h.lower() for h in api_key_hash),
        cors_origins=tuple(cors_origin),
    )
    err_console.print(f"serving {det.name} {det.version} on http://{host}:{port}/", highlight=False)
    uvicorn.run(create_app(det, settings), host=host, port=port, log_level="warning")


@app.command("export")
def export_cmd(
    detector: Optional[str] = typer.Option(
        None, "--detector", "-d", help="Registered name or saved directory (default: the embedded default)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the detector's files plus model.onnx."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Write the ONNX graph (the only format for now)."),
):
    """Export a trained detector (backbone + head) to one ONNX graph; check onnxruntime against torch."""
    from aigi import WEIGHTS_DIR
    from aigi.export import ExportError, export_onnx

    if not onnx:
        _fail("nothing to export: --onnx is the only format")
    det = _load(detector, "cpu")
    src = (
        Path(detector).expanduser()
        if detector and Path(detector).expanduser().is_dir()
        else WEIGHTS_DIR / (detector or det.name)
    )
    try:
        r = export_onnx(det, out, source_dir=src)
    except ExportError as e:
        _fail(str(e))
    status = "ok" if r["max_abs_diff"] <= 1e-4 else "MISMATCH"
    out_console.print(
        f"wrote {r['path']} (outputs {', '.join(r['outputs'])}); onnxruntime vs torch max |diff| "
        f"{r['max_abs_diff']:.2e} ({status}). Use: aigi detect --detector {out} --runtime onnx IMAGES",
        highlight=False,
    )
    if status != "ok":
        raise typer.Exit(1)


@app.command("score")
def score_cmd(
    data: str = typer.Option(..., "--data", help="A folder, a manifest CSV, or a Parquet file with a `path` column."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the Parquet shards (a rerun resumes here)."),
    detector: Optional[str] = typer.Option(
        None, "--detector", "-d", help="Registered name or saved directory (default: the embedded default)."
    ),
    workers: int = typer.Option(1, help="Ray actors, each holding one loaded detector."),
    shard_size: int = typer.Option(256, help="Images per shard (one Parquet file each)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Join this Ray cluster (default: a local one)."
    ),
    batch_size: int = typer.Option(16, help="Images per forward pass within a shard."),
    device: Optional[str] = typer.Option(None),
):
    """Score a corpus with Ray Data into sharded Parquet (the detect record per row); resumable."""
    try:
        from aigi.scale import score
    except ImportError as e:
        _fail(f"aigi score needs Ray Data: pip install 'aigi[scale]' ({e})")

    def progress(done, total):
        err_console.print(f"shards done: {done}/{total}", highlight=False)

    try:
        summary = score(data, out, detector, shard_size, workers, ray_address, device, batch_size, progress)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    out_console.print(
        f"{summary['n_inputs']} inputs in {summary['n_shards']} shards under {out}: "
        f"{summary['scored_shards']} scored now ({summary['scored_images']} images, {summary['errors']} "
        f"errors, {summary['seconds']} s), {summary['skipped_shards']} already done",
        highlight=False,
    )


@app.command("eval")
def evaluate(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help="Evaluate this trained detector."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="With --protocol: train per fold from this config."
    ),
    protocol: Optional[str] = typer.Option(
        None, help="leave-generator-out, train-on:GEN1,GEN2, or cross-dataset (with --test-data)"
    ),
    test_data: Optional[str] = typer.Option(
        None, "--test-data", help="With --protocol cross-dataset: the data set to test on."
    ),
    seeds: str = typer.Option("0", help="Comma-separated split seeds for the protocol (e.g. 0,1,2,3,4)."),
    threshold: Optional[float] = typer.Option(None),
    fpr: Optional[float] = typer.Option(None),
    unsure_band: Optional[float] = typer.Option(None, help="Override the stored unsure band."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write all numbers to this JSON file."),
    device: Optional[str] = typer.Option(None),
):
    """Metrics per generator for a trained detector, or a protocol that trains one model per fold."""
    from aigi.evaluation.metrics import binary_metrics, per_generator

    manifest = _data(data)
    if protocol:
        from aigi.config import ConfigError, load_train_config
        from aigi.workflows.protocols import run_cross_dataset, run_leave_generator_out, run_train_on

        if config is None:
            _fail("--protocol needs --config (the recipe to train per fold)")
        try:
            cfg = load_train_config(config)
        except ConfigError as e:
            _fail(str(e))
        if device:
            cfg.device = device
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        if protocol == "leave-generator-out":

            def on_fold(seed, r):
                err_console.print(
                    f"seed {seed} held-out {r['fold']}: AUROC {r['metrics']['auroc']:.3f}", highlight=False
                )

            result = run_leave_generator_out(cfg, manifest, seed_list, on_fold=on_fold)
            rows = [(g, {"AUROC": v["auroc_mean"], "sd": v["auroc_sd"]}) for g, v in result["auroc"].items()]
            rows.append(("mean", {"AUROC": result["mean_auroc"]}))
            out_console.print(
                _metrics_table(
                    f"leave-generator-out AUROC per held-out generator ({cfg.detector}, seeds {seed_list})",
                    rows,
                    ["AUROC", "sd"],
                )
            )
        elif protocol.startswith("train-on:"):
            gens = [g for g in protocol.split(":", 1)[1].split(",") if g]
            try:
                result = run_train_on(cfg, manifest, gens, seed_list[0])
            except ValueError as e:
                _fail(str(e))
            rows = [(g, m) for g, m in result["per_generator"].items() if m["label"] == "fake"]
            out_console.print(_metrics_table(result["protocol"], rows, ["auroc_vs_all_reals", "recall"]))
        elif protocol == "cross-dataset":
            if not test_data:
                _fail("--protocol cross-dataset needs --test-data")
            test_manifest = _data(test_data)
            result = run_cross_dataset(cfg, manifest, test_manifest)
            rows = [("all", result["metrics"])] + [(g, m) for g, m in result["per_generator"].items()]
            out_console.print(_metrics_table(result["fold"], rows, ["auroc", "recall", "specificity", "mean_p_fake"]))
        else:
            _fail(f"unknown protocol {protocol!r}: use leave-generator-out, train-on:GEN1,GEN2 or cross-dataset")
    else:
        from aigi.scoring import calibrated_scores

        det = _load(detector, device)
        manifest = _unreserved(det, manifest)
        prog, advance = _progress(len(manifest), "eval")
        with prog:
            p, errors = calibrated_scores(det, manifest, progress=advance)
        import numpy as np

        try:
            thr = det.calibration.threshold_for(threshold, fpr)
        except ValueError as e:
            _fail(str(e))
        from aigi.evaluation.metrics import selective_metrics

        y = np.asarray(manifest.labels)
        ok = ~np.isnan(p)
        band = det.calibration.unsure_band if unsure_band is None else unsure_band
        gens = [s.generator for s, k in zip(manifest, ok) if k]
        result = {
            "detector": det.name,
            "detector_version": det.version,
            "data": manifest.source,
            "calibration": det.calibration.method,
            "overall": {**binary_metrics(y[ok], p[ok], thr), **selective_metrics(y[ok], p[ok], thr, band)},
            "per_generator": per_generator(y[ok], p[ok], gens, thr),
            "errors": [e for e in errors if e],
        }
        o = result["overall"]
        keys = [
            "n",
            "n_real",
            "n_fake",
            "auroc",
            "ap",
            "accuracy@0.5",
            "threshold",
            "accuracy",
            "real_accuracy",
            "fake_accuracy",
            "balanced_accuracy",
            "eer",
            "tpr@1%fpr",
            "tpr@5%fpr",
            "ece",
            "brier",
            "unsure_band",
            "unsure_fraction",
            "accuracy_confident",
        ]
        out_console.print(
            _metrics_table(
                f"{det.name} {det.version} on {manifest.source}", [(k, {"value": o[k]}) for k in keys], ["value"]
            )
        )
        rows = [(g, {**m, "rate": m.get("recall", m.get("specificity"))}) for g, m in result["per_generator"].items()]
        out_console.print(
            _metrics_table(
                f"per generator (fake: recall, real: specificity, at threshold {thr:.3f})",
                rows,
                ["label", "n", "rate", "mean_p_fake", "auroc_vs_all_reals"],
            )
        )
        for e in result["errors"]:
            _error_line(e)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, default=str))
        err_console.print(f"wrote {json_out}", highlight=False)


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
        _fail(str(e))
    if len(configs) != len(config):
        _fail("two configs share a file name; names in the report come from the file stems")
    current = current_default or next(iter(configs))
    if current not in configs:
        _fail(f"--current-default {current!r} is not one of {sorted(configs)}")
    result = run_compare(
        configs, manifest, out, current, [int(s) for s in seeds.split(",") if s.strip()], per_group, log=_log
    )
    rows = [
        (n, {**r["logo"], "mean": sum(r["logo"].values()) / len(r["logo"])}) for n, r in result["detectors"].items()
    ]
    gens = sorted(next(iter(result["detectors"].values()))["logo"])
    out_console.print(_metrics_table("leave-generator-out AUROC", rows, gens + ["mean"]))
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
        help="Audit the images after re-encoding each identically (256 px square, JPEG q90, no metadata).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the findings to this JSON file."),
):
    """Does metadata alone (format, size, aspect, bytes/pixel, JPEG tables, EXIF) predict real vs fake?"""
    from aigi.evaluation.audit import WARN_AUROC
    from aigi.evaluation.audit import audit as run_audit

    manifest = _data(data)
    prog, advance = _progress(len(manifest), "audit")
    with prog:
        try:
            res = run_audit(manifest, parity=parity, progress=advance)
        except ValueError as e:
            _fail(str(e))
    rows = [
        (cue, {"AUROC": a, "warning": "SHORTCUT" if a >= WARN_AUROC else ""}) for cue, a in res["auroc_by_cue"].items()
    ]
    out_console.print(
        _metrics_table(
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
    for w in res["warnings"]:
        _error_line(
            f"{w}: a detector trained on this set can learn it instead of generation artefacts. Train with "
            "shortcut-denial views (configs/univfd.yaml) or parity, and check the format swap.",
            "warning",
        )
    for e in res["errors"]:
        _error_line(e)
    if json_out:
        json_out.write_text(json.dumps(res, indent=2))


@app.command()
def robustness(
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d"),
    per_group: int = typer.Option(50, help="At most this many images per generator and per real source (seeded)."),
    seed: int = typer.Option(0),
    perturbations: Optional[str] = typer.Option(
        None, help="Comma-separated subset of: jpeg, webp, resize, blur, noise, crop, social."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write robustness.html and .json into this folder."),
    device: Optional[str] = typer.Option(None),
):
    """AUROC and accuracy under JPEG, WebP, resizing, blur, noise, cropping and social-media laundering."""
    from aigi.evaluation import report as R
    from aigi.evaluation.robustness import robustness_sweep, seeded_subset

    det = _load(detector, device)
    manifest = seeded_subset(_unreserved(det, _data(data)), per_group, seed)
    names = [n.strip() for n in perturbations.split(",")] if perturbations else None
    try:
        res = robustness_sweep(det, manifest, names, progress=_log)
    except ValueError as e:
        _fail(str(e))
    rows = [
        (f"{r['perturbation']} {r['severity']}" if r["perturbation"] != "none" else "clean", r) for r in res["rows"]
    ]
    out_console.print(
        _metrics_table(
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


data_app = typer.Typer(no_args_is_help=True, help="Build training sets: reconstruction pairs, laundered images.")
app.add_typer(data_app, name="data")


@data_app.command("train-reconstructor")
def train_reconstructor(
    data: str = typer.Option(..., "--data", help="Images to learn from; only the real ones are used."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the autoencoder (.safetensors)."),
    steps: int = typer.Option(2000),
    crop: int = typer.Option(96),
    width: int = typer.Option(32, help="Channels of the first layer (doubled twice)."),
    upsample: str = typer.Option(
        "transposed",
        help="The decoder's 2x up-sampling: transposed | nearest | bilinear "
        "(the last two followed by a 3x3 convolution).",
    ),
    seed: int = typer.Option(0, help="Seed of the training run (initialisation, crops)."),
    holdout: float = typer.Option(
        0.0,
        help="Leave out this stratified fraction (seeded like `aigi train`'s validation "
        "split), so evaluation reals are never seen.",
    ),
    split_seed: int = typer.Option(0, help="Seed of the --holdout split (keep it equal to `aigi train`'s seed)."),
):
    """Train the offline reconstruction autoencoder (learned up-sampling) on real photos."""
    from aigi.augment.reconstruct import train_autoencoder
    from aigi.data.splits import validation_split
    from aigi.io import ImageDecodeError, load_image

    manifest = _data(data)
    if holdout > 0:
        manifest = manifest.subset(validation_split(manifest, holdout, split_seed)[0])
    reals = [s for s in manifest if s.label == 0]
    images = []
    for s in reals:
        try:
            images.append(load_image(s.path).image)
        except ImageDecodeError as e:
            _error_line(e)
    try:
        model = train_autoencoder(images, steps=steps, crop=crop, width=width, upsample=upsample, seed=seed, log=_log)
    except ValueError as e:
        _fail(str(e))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    out_console.print(
        f"saved the reconstruction autoencoder ({len(images)} real images, {steps} steps) to {out}", highlight=False
    )


@data_app.command("build-pixel")
def build_pixel(
    data: str = typer.Option(..., "--data", help="Real images to reconstruct (fakes in the data are ignored)."),
    out: Path = typer.Option(..., "--out", "-o"),
    reconstructor: Optional[list[Path]] = typer.Option(
        None,
        "--reconstructor",
        "-r",
        help="An autoencoder .safetensors from `aigi data train-reconstructor`, or a diffusers AutoencoderKL "
        "directory (SD/SDXL/FLUX VAE); repeat for several. Default: the autoencoders aigi ships.",
    ),
    max_side: int = typer.Option(512, help="Bring larger images down to this many pixels on the longer side first."),
):
    """Pairs of (real image, its reconstruction): same content, same size, same format; only pixel artefacts differ."""
    from aigi.augment.reconstruct import build_pixel_pairs, load_reconstructor, shipped_reconstructors

    manifest = _data(data)
    try:
        recs = [load_reconstructor(r) for r in (reconstructor or shipped_reconstructors())]
    except (OSError, ValueError) as e:
        _fail(str(e))
    m, errors = build_pixel_pairs(manifest, recs, out, max_side, log=_log)
    for e in errors:
        _error_line(e)
    n_real = sum(1 for s in m if s.label == 0)
    out_console.print(
        f"{n_real} real images and {len(m) - n_real} reconstructions ({len(recs)} reconstructors) "
        f"written to {out} (manifest {out / 'manifest.csv'})",
        highlight=False,
    )


@data_app.command("build-semantic")
def build_semantic(
    data: str = typer.Option(..., "--data", help="Real and fake images to launder."),
    out: Path = typer.Option(..., "--out", "-o"),
    seed: int = typer.Option(0),
):
    """Launder every image (hard downscale, blur, noise, low-quality JPEG) so only semantics remain."""
    from aigi.augment.launder import build_semantic_set

    manifest = _data(data)
    m, errors = build_semantic_set(manifest, out, seed, log=_log)
    for e in errors:
        _error_line(e)
    out_console.print(f"{len(m)} laundered images written to {out} (manifest {out / 'manifest.csv'})", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
