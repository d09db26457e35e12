"""What reading provenance adds per image to decoding (``io.decode_bytes`` with and without
``provenance=True``: the C2PA check, XMP, EXIF and text chunks, the watermark decoder on the decoded pixels),
on files without manifests: per data set and real source / generator, seeded subsets, best of 3.

    .venv/bin/python benchmarks/provenance_cost.py [--per-group 40]

Writes benchmarks/results/provenance-cost.{md,json}. Needs ../shared/data (never the tests)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from aigi.data import load_data
from aigi.data.splits import seeded_subset
from aigi.io import decode_bytes
from aigi.samples import build_sample

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--per-group", type=int, default=40)
    args = a.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sets = {
        "aigi-dev": load_data(DATA / "aigi-dev" / "manifest.csv"),
        "aigi-wild": load_data(DATA / "aigi-wild" / "manifest.csv"),
    }
    sets["demo sample"] = build_sample(Path("/tmp/aigi-provenance-sample"))
    rows = []
    for name, m in sets.items():
        sub = seeded_subset(m, args.per_group, 0)
        groups: dict[str, list[float]] = {}
        found: dict[str, int] = {}
        for s in sub:
            data = Path(s.path).read_bytes()
            times = {}
            for flag in (False, True, False, True, False, True):
                t = time.perf_counter()
                d = decode_bytes(data, s.path, provenance=flag)
                times[flag] = min(times.get(flag, 1e9), time.perf_counter() - t)
            f = d.provenance
            ms = max(0.0, times[True] - times[False]) * 1000
            key = f"{'fake' if s.label else 'real'}/{s.generator}"
            groups.setdefault(key, []).append(ms)
            found[key] = found.get(key, 0) + bool(f)
        for key, ms in sorted(groups.items()):
            rows.append({"data": name, "group": key, "n": len(ms), "mean_ms": float(np.mean(ms)),
                         "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(np.max(ms)), "with_findings": found[key]})  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "provenance-cost"
    out.with_suffix(".json").write_text(json.dumps({"per_group": args.per_group, "rows": rows}, indent=1))
    lines = ["# Provenance: time added per image to decoding", "",
             f"`decode_bytes(..., provenance=True)` minus without, best of 3, at most {args.per_group} seeded files per group, "
             f"{os.cpu_count()} cores. Budget: 20 ms.", "",
             "| data | group | n | mean ms | p95 ms | max ms | files with findings |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {r['data']} | {r['group']} | {r['n']} | {r['mean_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['with_findings']} |"
        for r in rows
    ]
    allms = [r["mean_ms"] for r in rows]
    lines += ["", f"Mean over groups {np.mean(allms):.1f} ms; worst group mean {max(allms):.1f} ms.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
