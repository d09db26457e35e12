"""Images/second of `aigi detect`'s pipeline (decode -> preprocess -> backbone -> head) against the
bare backbone forward pass on the same images at the same batch size, and peak memory of each.

Run on demand (not part of the tests):
    .venv/bin/python benchmarks/throughput.py --data ../shared/data/aigi-dev/manifest.csv --n 256
Writes benchmarks/results/throughput.{json,md}. Each mode runs in its own process so that its peak
resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from timing import best_of

HERE = Path(__file__).resolve().parent


def pick_paths(data: str, n: int, seed: int = 0) -> list[str]:
    from aigi.data import load_data

    m = load_data(data)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(m), size=min(n, len(m)), replace=False)
    return [m.samples[i].path for i in sorted(idx)]


def run_mode(mode: str, paths: list[str], batch_size: int, repeats: int, detector: str | None = None) -> dict:
    from aigi import load_detector

    det = load_detector(detector)
    backbone = det.backbone
    # a vision-language space (ITEM) exposes its frozen image encoder as image_tokens
    encode = backbone.encode_images if hasattr(backbone, "encode_images") else backbone.image_tokens
    blocks = list(getattr(det.config, "blocks", ()) or ())
    if mode == "backbone" and blocks and min(blocks) >= 0 and hasattr(backbone, "encode_blocks"):
        depth = max(blocks) + 1  # the blocks the head reads: what the detector runs (the later ones never do)

        def encode(x):
            return backbone.encode_blocks(x, depth)

    if mode in ("backbone", "backbone-whole"):
        from aigi.io import load_image
        from aigi.scoring import view_inputs

        pixels = [view_inputs(det, load_image(p).image, "")["pixels"] for p in paths]  # not timed
        # the same forward passes as the pipeline: every present crop of the crop plan (NaN = absent)
        flat = np.concatenate([x.reshape(-1, *x.shape[-3:]) for x in pixels])
        flat = flat[~np.isnan(flat[:, 0, 0, 0])]
        passes = len(flat) / len(paths)
        batches = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
        best, times, _ = best_of(lambda: [encode(b) for b in batches], repeats, lambda: encode(batches[0]))
    else:
        prov = mode == "pipeline"  # "pipeline-no-provenance": the pixels alone
        best, times, recs = best_of(
            lambda: det.predict(paths, batch_size=batch_size, provenance=prov),
            repeats,
            lambda: det.predict(paths[:batch_size], batch_size=batch_size, provenance=prov),
        )
        assert all(r["verdict"] != "error" for r in recs)
        passes = float(np.mean([r.get("views") or 1 for r in recs]))
    return {
        "mode": mode,
        "forward_passes_per_image": passes,
        "images": len(paths),
        "batch_size": batch_size,
        "seconds_best": best,
        "seconds_all": times,
        "images_per_second": len(paths) / best,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def backbone_name(detector: str | None) -> str:
    from aigi import load_detector

    return str(getattr(load_detector(detector).config, "backbone", "none"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/aigi-dev/manifest.csv"))
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", choices=["backbone", "backbone-whole", "pipeline", "pipeline-no-provenance"])
    ap.add_argument("--detector", default=None, help="a shipped name or a directory (default: the embedded default)")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/throughput[-DETECTOR]")
    a = ap.parse_args()
    a.out = a.out or str(HERE / "results" / ("throughput" + (f"-{Path(a.detector).name}" if a.detector else "")))
    paths = pick_paths(a.data, a.n)
    if a.mode:  # child process
        print(json.dumps(run_mode(a.mode, paths, a.batch_size, a.repeats, a.detector)))
        return
    results = {}
    for mode in ("backbone", "backbone-whole", "pipeline", "pipeline-no-provenance"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--data",
                a.data,
                "--n",
                str(a.n),
                "--batch-size",
                str(a.batch_size),
                "--repeats",
                str(a.repeats),
            ]
            + (["--detector", a.detector] if a.detector else []),
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = results["pipeline"]["images_per_second"] / results["backbone"]["images_per_second"]
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "data": a.data,
        "results": results,
        "pipeline_vs_backbone": ratio,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(report, indent=2))
    b, w = results["backbone"], results["backbone-whole"]
    p, q = results["pipeline"], results["pipeline-no-provenance"]
    added_ms = 1000 * (1 / p["images_per_second"] - 1 / q["images_per_second"])
    md = f"""# Throughput: `aigi detect` pipeline vs bare backbone

Machine: {os.cpu_count()} CPU cores, {platform.platform()}. Data: {a.n} images drawn (seed 0) from
{" + ".join(f"`{Path(d).parent.name}`" for d in a.data.split(","))} (JPEGs of 256x256 to ~500x375 and larger),
batch size {a.batch_size}, best of {a.repeats} runs, detector {a.detector or "univfd (the default)"}
(backbone `{backbone_name(a.detector)}`). A forward pass is one 224 px view through the backbone: the crop plan,
where a detector has one, looks at an image once, or twice when the resize shrank it (a native-scale crop
beside the resized view).

| mode | images/s | forward passes per image | s per image | peak RSS (MB) |
|---|---|---|---|---|
| bare backbone forward, the blocks the detector reads (pixels preprocessed beforehand) | {b["images_per_second"]:.2f} | {b["forward_passes_per_image"]:.2f} | {1 / b["images_per_second"]:.3f} | {b["peak_rss_mb"]:.0f} |
| bare backbone forward, every block | {w["images_per_second"]:.2f} | {w["forward_passes_per_image"]:.2f} | {1 / w["images_per_second"]:.3f} | {w["peak_rss_mb"]:.0f} |
| full pipeline: read + decode + provenance + preprocess + backbone + head + records | {p["images_per_second"]:.2f} | {p["forward_passes_per_image"]:.2f} | {1 / p["images_per_second"]:.3f} | {p["peak_rss_mb"]:.0f} |
| the same with `--no-provenance` | {q["images_per_second"]:.2f} | {q["forward_passes_per_image"]:.2f} | {1 / q["images_per_second"]:.3f} | {q["peak_rss_mb"]:.0f} |

Pipeline throughput = **{ratio:.1%}** of the bare backbone's (target: >= 85%). Provenance (C2PA check, XMP,
EXIF and text chunks, watermark decoder) adds {added_ms:+.1f} ms per image to the pipeline (budget 20 ms). Decoding and
preprocessing run in a thread pool a few batches ahead of the forward pass (`aigi/pipeline.py`).
Re-run: `.venv/bin/python benchmarks/throughput.py --data {a.data} --n {a.n} --repeats {a.repeats}{" --detector " + a.detector if a.detector else ""}`.
"""
    Path(a.out + ".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
