"""What every ``aigi`` command shares: the app, the consoles, error lines, reading ``--data`` and
``--detector``, progress bars, expanding inputs and rendering records and metric tables."""

from __future__ import annotations

import glob
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


def _print_version(value: bool) -> None:
    if value:
        from aigi import __version__

        print(f"aigi {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", metavar="", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """Detect AI-generated images; train and evaluate detectors."""


def _detector_help() -> str:
    from aigi import DEFAULT_DETECTOR, EXPERIMENTAL, shipped_detectors

    marked = [n for n in shipped_detectors() if n in EXPERIMENTAL]
    return (
        f"A registered name or a saved directory. Shipped with weights: {', '.join(shipped_detectors())} "
        f"(default: {DEFAULT_DETECTOR})."
        + (
            f" Experimental: {', '.join(marked)} (at the threshold their per-source rule sets each catches few "
            "fakes, or calls over 10 % of a real source it never saw fake; see its model card)."
            if marked
            else ""
        )
    )


DETECTOR_HELP = _detector_help()
# Piped output is not cut to 80 columns: tables stay whole in files and logs.
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

FORMATS = ("table", "csv", "json", "jsonl")
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def output_format(fmt: str | None, output: Path | None) -> str:
    """The record format: ``--format`` when given, else the one ``-o``'s extension names (.csv, .json, .jsonl),
    else the table. A format that contradicts the extension is refused (exit 2), never silently written."""
    implied = SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    if fmt is None:
        return implied or "table"
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if implied is not None and implied != fmt:
        fail(f"-o {output} names a .{implied} file but --format is {fmt}: give one or the other")
    return fmt


def plural(n: int, word: str) -> str:
    """'1 image', '2 images'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


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


def expand_inputs(inputs: list[str], skipped: dict[str, int] | None = None) -> tuple[list[str], list[str]]:
    """Files as given; folders recursively (``data.manifest.find_images``); quoted globs expanded.
    Returns (paths, problems) where problems are inputs that matched nothing; what a folder search
    skipped is added up in ``skipped`` (reason -> count)."""
    from aigi.data.manifest import find_images

    paths: list[str] = []
    problems: list[str] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found, left = find_images(p)
            for reason, n in left.items():
                if skipped is not None:
                    skipped[reason] = skipped.get(reason, 0) + n
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


def load(detector: Optional[str], device: Optional[str]):
    from aigi import EXPERIMENTAL, load_detector

    try:
        det = load_detector(detector, device)
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(str(e))
    if detector in EXPERIMENTAL:
        error_line(f"{detector} is experimental: {EXPERIMENTAL[detector]}", "warning")
    return det


def unreserved(det, manifest):
    """The data minus the images the detector was pre-trained on (ITEM's alignment slice), said aloud."""
    from aigi.data.splits import without

    idx = det.reserved(manifest)
    if len(idx):
        err_console.print(f"left out {len(idx)} images {det.name} reserved for its pre-training", highlight=False)
    return without(manifest, idx)


def check_operating_point(det, threshold, fpr, unsure_band) -> float:
    """The threshold the settings give; a bad threshold, --fpr or --unsure-band is one line and exit 2."""
    if unsure_band is not None and not 0.0 <= unsure_band <= 0.5:
        fail(f"--unsure-band must be between 0 and 0.5 (0 turns it off), not {unsure_band}")
    if fpr is not None and not 0.0 <= fpr < 1.0:  # 0: flag none of the validation reals
        fail(f"--fpr must be a fraction from 0 up to (not including) 1, e.g. 0.01; not {fpr}")
    try:
        return det.calibration.threshold_for(threshold, fpr)
    except ValueError as e:  # threshold/fpr problems
        fail(str(e))
        raise


def operating_point_note(det, threshold_used: float, threshold, fpr) -> str:
    """Where the threshold came from, and the share of the detector's validation reals it flags."""
    import numpy as np

    cal = det.calibration
    how = (
        f"--threshold {threshold}"
        if threshold is not None
        else f"--fpr {fpr}"
        if fpr is not None
        else "the detector's default"
    )
    reals = np.asarray(cal.real_scores, dtype=float)
    rate = (
        f"; flags {(reals >= threshold_used).mean():.1%} of its {len(reals):,} validation reals (all sources pooled)"
        if len(reals)
        else ""
    )
    return f"threshold {threshold_used:.3f} from {how}{rate}"


def run_detect(
    paths, det, threshold, fpr, batch_size, unsure_band=None, ensemble=False, on_record=None, provenance=True
):
    """Score ``paths`` with a progress bar. Bad settings are one error line and exit 2 before any work;
    a run that fails midway is one line and exit 2 (what ``on_record`` got is kept)."""
    from aigi.scoring import predict_images

    check_operating_point(det, threshold, fpr, unsure_band)
    prog, advance = progress_bar(len(paths), "detect")
    with prog:
        try:
            return predict_images(
                det,
                paths,
                threshold=threshold,
                fpr=fpr,
                unsure_band=unsure_band,
                ensemble=ensemble,
                batch_size=batch_size,
                progress=advance,
                on_record=on_record,
                provenance=provenance,
            )
        except Exception as e:  # noqa: BLE001 - the run failed: say so in one line, exit 2
            fail(f"the run failed: {type(e).__name__}: {e}")


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
