"""Wall time and peak resident memory of ``aigi detect`` on 100 images, as a user runs it (model load included):
the command in a child process, its peak RSS read from the kernel's accounting of that child.

    .venv/bin/python benchmarks/detect_memory.py [--data ../shared/data/aigi-wild/manifest.csv] [--n 100]

Writes benchmarks/results/detect-memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from throughput import pick_paths

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/aigi-wild/manifest.csv"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--detector", default=None)
    a = ap.parse_args()
    paths = pick_paths(a.data, a.n)
    exe = Path(sys.executable).with_name("aigi")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "verdicts.csv"
        cmd = [str(exe), "detect", *paths, "-o", str(out)] + (["--detector", a.detector] if a.detector else [])
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        rows = len(out.read_text().splitlines()) - 1 if out.exists() else 0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "data": a.data,
        "images": len(paths),
        "rows_written": rows,
        "exit": done.returncode,
        "seconds_with_model_load": seconds,
        "peak_rss_mb": peak_mb,
        "summary_line": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
    }
    (HERE / "results" / "detect-memory.json").write_text(json.dumps(report, indent=1))
    (HERE / "results" / "detect-memory.md").write_text(
        f"# `aigi detect` on {len(paths)} images: time and memory\n\n"
        f"{os.cpu_count()} CPU cores; {len(paths)} images drawn (seed 0) from `{Path(a.data).parent.name}`; the "
        f"default detector{'' if not a.detector else ' ' + a.detector}, CSV to a file, provenance read.\n\n"
        f"- wall time, model load included: {seconds:.1f} s ({len(paths) / seconds:.2f} images/s overall)\n"
        f"- peak resident memory: {peak_mb / 1024:.2f} GB\n"
        f"- exit {done.returncode}, {rows} rows written; `{report['summary_line']}`\n"
    )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
