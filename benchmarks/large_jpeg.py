"""What decoding a 48-megapixel phone JPEG costs, whole and at reduced scale (``io.decode_bytes(min_short_side=)``,
DCT scaling), and the default detector's score both ways. Each mode runs in its own process so its peak resident
memory is its own.

    python benchmarks/large_jpeg.py        # writes benchmarks/results/large-jpeg.{json,md}
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZE = (8000, 6000)  # 48 MP, a phone's full-resolution photo


def make_jpeg(path: Path) -> None:
    from PIL import Image

    from aigi.samples import package_photo

    rng = np.random.default_rng(0)
    img = package_photo("rocket").resize(SIZE, Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (SIZE[1], SIZE[0], 3), dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())


def one(mode: str, path: str) -> dict:
    from aigi import load_detector
    from aigi.io import load_image

    det = load_detector()
    side = det.decode_short_side() if mode == "reduced" else 0
    t = time.perf_counter()
    for _ in range(3):
        img = load_image(path, min_short_side=side)
    decode_s = (time.perf_counter() - t) / 3
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    from aigi.scoring import predict

    rec = predict(det, [path], lambda p: load_image(p, min_short_side=side), [path], batch_size=1)[0]
    return {"mode": mode, "decoded_size": list(img.image.size), "decode_s": round(decode_s, 3),
            "predict_s": round(time.perf_counter() - t, 3), "p_fake": rec["p_fake"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_predict_mb": round(base / 1024, 1)}  # fmt: skip


def main():
    if len(sys.argv) == 3:
        print(json.dumps(one(sys.argv[1], sys.argv[2])))
        return
    path = Path("/tmp/aigi-48mp.jpg")
    make_jpeg(path)
    rows = []
    for mode in ("full", "reduced"):
        out = subprocess.run([sys.executable, __file__, mode, str(path)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    res = {"file": f"{SIZE[0]}x{SIZE[1]} JPEG q90, {path.stat().st_size:,} bytes", "rows": rows}
    (HERE / "results" / "large-jpeg.json").write_text(json.dumps(res, indent=1))
    lines = ["# A 48-megapixel JPEG, decoded whole and at reduced scale", "",
             f"`benchmarks/large_jpeg.py`, 2 cores; {res['file']}; the default detector. Decode time is the mean of 3;",
             "peak RSS is the whole process (model loaded). The reduced decode keeps the shorter side at least twice",
             "the backbone's input (DCT scaling, `io.decode_bytes(min_short_side=)`); the record keeps the stored size.", "",
             "| decode | decoded size | decode s | predict s (decode + score) | p_fake | peak RSS MB |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['mode']} | {r['decoded_size'][0]}x{r['decoded_size'][1]} | {r['decode_s']} | "
                     f"{r['predict_s']} | {r['p_fake']:.4f} | {r['peak_rss_mb']} |")  # fmt: skip
    (HERE / "results" / "large-jpeg.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
