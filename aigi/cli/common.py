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
            f" Experimental: {', '.join(marked)} (each flags over 10 % of some kind of real image it never "
            "trained on; see its model card)."
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


def _fmt_p(p) -> str:
    return "" if p is None else f"{p:.3f}"


def open_output(output: Path | None):
    """The file ``-o`` names, opened for writing before any scoring (its folder is created), or stdout.
    A folder, or a place that cannot be written, is one error line and exit 2, before the work starts."""
    if output is None:
        return sys.stdout
    if output.is_dir():
        fail(f"{output}: is a folder; give -o a file name (e.g. {output / 'verdicts.csv'})")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return output.open("w", newline="")
    except OSError as e:
        fail(f"{output}: cannot write there ({e.strerror or e})")


class RecordWriter:
    """Writes records as they come: CSV rows (``records.ROW_FIELDS``) and JSON lines are flushed one by
    one, so a run that dies keeps what it scored; JSON and the table are written at the end."""

    def __init__(self, fmt: str, out):
        from aigi.records import ROW_FIELDS

        self.fmt, self.out, self.records = fmt, out, []
        if fmt == "csv":
            self.csv = csv.DictWriter(out, fieldnames=list(ROW_FIELDS))
            self.csv.writeheader()
            out.flush()

    def write(self, rec: dict) -> None:
        from aigi.records import to_row

        self.records.append(rec)
        if self.fmt == "csv":
            self.csv.writerow(to_row(rec))
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(rec) + "\n")
        else:
            return
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "table" and not self.records:  # nothing scored (a usage error): no empty table
            pass
        elif self.fmt in ("table", "json"):
            text = render_records(self.records, self.fmt)
            self.out.write(text if text.endswith("\n") else text + "\n")
        if self.out is not sys.stdout:
            self.out.close()
        else:
            self.out.flush()


def describe_evidence(findings: list[dict]) -> str:
    """One short line per record: what its file declares (``aigi.provenance``)."""
    parts: list[str] = []
    for f in findings:
        who = f["generator"] or f["says"]
        part = (
            f"{f['kind']}: {who}"
            + (" (verified)" if f["verified"] else "")
            + ("" if f["says"] != "unknown" else f" ({f['detail'][:60]})")
        )
        if part not in parts:  # the same declaration in two fields is said once
            parts.append(part)
    return "; ".join(parts)


def decided_by(rec: dict) -> str:
    """What decided a record's verdict, in words: a declaration, the unsure reason, or the score against the
    threshold."""
    reason = rec.get("reason") or ""
    if rec["verdict"] == "error":
        return rec.get("error") or ""
    if reason and (rec["verdict"] == "unsure" or reason.startswith("provenance")):
        return reason
    side = "≥" if rec["p_fake"] >= rec["threshold"] else "<"
    return f"p_fake {rec['p_fake']:.3f} {side} threshold {rec['threshold']:.3f}"


def render_records(
    records: list[dict], fmt: str, truth: dict[str, str] | None = None, what: dict[str, str] | None = None
) -> str:
    """Render records as a rich table (text) or JSON, at the end of a run (CSV and JSON lines are
    written as they come, by ``RecordWriter``). ``truth`` and ``what`` (the demo): each image's true label and
    what it is, shown beside the verdict with what decided it."""
    if fmt == "json":
        return json.dumps(records, indent=2)
    from rich.markup import escape

    table = Table(show_lines=False)
    table.add_column("image", overflow="fold")
    if what is not None:
        table.add_column("what it is", overflow="fold")
    if truth is not None:
        table.add_column("truth")
    table.add_column("verdict")
    table.add_column("p_fake", justify="right")
    if truth is not None:
        table.add_column("correct")
        table.add_column("decided by", overflow="fold")
    evidence = any(r.get("provenance") for r in records)  # what files declare about their origin
    if evidence:
        table.add_column("evidence", overflow="fold")
    families = any(r.get("attribution") for r in records)  # the learned family of a fake or unsure image
    if families:
        table.add_column("likely family", overflow="fold")
    notes = any(r.get("note") for r in records)  # e.g. only the first frame of an animation was judged
    if notes:
        table.add_column("note", overflow="fold")
    captions = any(r.get("caption") for r in records)  # ITEM: what the image was compared with
    if captions:
        table.add_column("caption (global misalignment)", overflow="fold")
    colours = {"fake": "red", "real": "green", "unsure": "yellow", "error": "magenta"}
    for r in records:
        v = r["verdict"]
        row = [Path(r["path"]).name if what is not None else r["path"]]
        if what is not None:
            row.append(what.get(r["path"], ""))
        if truth is not None:
            row.append(truth.get(r["path"], "?"))
        row += [f"[{colours[v]}]{v}[/]", _fmt_p(r["p_fake"])]
        if truth is not None:
            t = truth.get(r["path"])
            row.append("" if v == "error" or t is None else ("yes" if v == t else "[bold]no[/]"))
            row.append(escape(decided_by(r)))
        if evidence:
            row.append(escape(describe_evidence(r.get("provenance") or [])))
        if families:
            row.append(describe_attribution(r.get("attribution")))
        if notes:
            row.append(escape(r.get("note") or ""))
        if captions:
            m = (r.get("misalignment") or {}).get("global")
            row.append(f"{r.get('caption', '')}" + (f" ({m:.3f})" if m is not None else ""))
        table.add_row(*row)
    cap = Console(file=io.StringIO(), width=max(100, out_console.width), force_terminal=out_console.is_terminal)
    cap.print(table)
    return cap.file.getvalue()


def describe_attribution(a: dict | None) -> str:
    """'google 0.82' or 'unknown (nearest: google 0.41)'; '' without one."""
    if not a:
        return ""
    if a["family"] == "unknown":
        return f"unknown (nearest: {a['top3'][0][0]} {a['p']:.2f})"
    return f"{a['family']} {a['p']:.2f}"


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
