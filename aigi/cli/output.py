"""How records leave the CLI: the output file ``-o`` names (checked before any work), the streaming writer
(CSV, JSON, JSON lines, Parquet) and the table with its evidence, decided-by and attribution columns."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aigi.cli.common import fail, out_console


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
