"""torch vs ONNX runtime for an exported detector (default: univfd): images/s of the whole graph
(backbone + head) on preprocessed pixels, batch 16, best of 3, 2 CPU cores.

    .venv/bin/python benchmarks/onnx_runtime.py [--detector univfd] [--n 128]
Writes benchmarks/results/onnx-runtime.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import best_of

HERE = Path(__file__).resolve().parent


def best_rate(fn, batches, repeats=3) -> float:
    best, _, _ = best_of(lambda: [fn(b) for b in batches], repeats, lambda: fn(batches[0]))
    return sum(len(b) for b in batches) / best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector", default="univfd")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    from aigi import WEIGHTS_DIR, load_detector
    from aigi.export import export_onnx
    from aigi.scoring import forward, onnx_session

    det = load_detector(a.detector)
    size = det.preprocess_size()
    # one planned view per image: the graph takes [B, P, 3, H, W] (P planned crops; the default plans none)
    x = np.random.default_rng(0).standard_normal((a.n, 1, 3, size, size)).astype(np.float32)
    batches = [x[i : i + a.batch_size] for i in range(0, a.n, a.batch_size)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(a.detector) if Path(a.detector).is_dir() else WEIGHTS_DIR / a.detector
        r = export_onnx(det, tmp, source_dir=src)
        sess = onnx_session(Path(tmp) / "model.onnx")
        module = det.export_module().eval()
        with torch.inference_mode():
            rates = {
                "torch (exported module, eager)": best_rate(lambda b: module(torch.from_numpy(b)), batches),
                "onnxruntime (exported graph)": best_rate(lambda b: sess.run(["logit"], {"pixels": b}), batches),
                "aigi default runtime (the detector's own features + forward)": best_rate(
                    lambda b: forward(det, det.features({"pixels": b})), batches
                ),
            }
    report = {
        "detector": det.version,
        "cpus": os.cpu_count(),
        "images": a.n,
        "batch_size": a.batch_size,
        "parity_max_abs_diff": r["max_abs_diff"],
        "images_per_second": rates,
    }
    out = HERE / "results" / "onnx-runtime"
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    rows = "\n".join(f"| {k} | {v:.2f} |" for k, v in rates.items())
    md = f"""# torch vs ONNX runtime ({det.version})

{os.cpu_count()} CPU cores, {a.n} preprocessed 224 px images, batch {a.batch_size}, best of 3; the whole graph
(backbone + head). onnxruntime vs torch max |logit diff| {r["max_abs_diff"]:.1e}.

| runtime | images/s |
|---|---|
{rows}

Re-run: `.venv/bin/python benchmarks/onnx_runtime.py`.
"""
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
