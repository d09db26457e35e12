"""What every ``aigi`` command shares: the app, the consoles, error lines, reading ``--data`` and
``--detector``, progress bars, expanding inputs and rendering records and metric tables."""

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


def error_line(msg: str, label: str = "error") -> None:
    """One line on stderr: a coloured label, then the message verbatim (paths may contain [brackets])."""
    from rich.markup import escape

    colour = {"error": "bold red", "warning": "bold yellow", "unsure": "yellow"}[label]
    err_console.print(f"[{colour}]{label}:[/] {escape(str(msg))}", highlight=False, soft_wrap=True)


def log(msg: str) -> None:
    """A progress line on stderr, printed verbatim."""
    err_console.print(msg, highlight=False, markup=False)


def fail(msg: str, code: int = 2) -> None:
    error_line(msg)
    raise typer.Exit(code)


def read_data(source: str):
    """A manifest from ``--data`` (or ``--test-data``); a bad source is one error line and exit 2."""
    from aigi.data import ManifestError, load_data

    try:
        return load_data(source)
    except ManifestError as e:
        fail(str(e))


def progress_bar(total: int, label: str):
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


def load(detector: Optional[str], device: Optional[str]):
    from aigi import load_detector

    try:
        return load_detector(detector, device)
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(str(e))


def unreserved(det, manifest):
    """The data minus the images the detector was pre-trained on (ITEM's alignment slice), said aloud."""
    from aigi.data.splits import without

    idx = det.reserved(manifest)
    if len(idx):
        err_console.print(f"left out {len(idx)} images {det.name} reserved for its pre-training", highlight=False)
    return without(manifest, idx)


def run_detect(paths, det, threshold, fpr, batch_size, unsure_band=None, ensemble=False):
    prog, advance = progress_bar(len(paths), "detect")
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
            fail(str(e))


def metrics_table(title: str, rows: list[tuple[str, dict]], cols: list[str]) -> Table:
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
