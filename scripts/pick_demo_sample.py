"""Pick the demo's bundled images from the shared data sets: a seeded draw among the files whose licence allows
redistribution (CC0, Apache-2.0, MIT, CC BY 4.0 with attribution, "free to use"), copied byte for byte into
aigi/demo/ with SOURCES.csv (file, label, generator, source, licence, sha256). Every training recipe leaves these
files out (aigi.workflows.train.recipe_manifest drops aigi.samples.demo_sha256()).

    python scripts/pick_demo_sample.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# (data set, generator, source repo, licence, how many)
PERMISSIVE = [
    ("aigi-wild", "gpt-4o", "jamez-bondos/awesome-gpt4o-images", "CC BY 4.0 (awesome-gpt4o-images contributors)", 2),
    ("aigi-wild", "nano-banana", "PicoTrex/Awesome-Nano-Banana-images", "Apache-2.0", 2),
    ("aigi-wild", "nano-banana-pro", "PicoTrex/Awesome-Nano-Banana-images", "Apache-2.0", 1),
    ("aigi-wild", "midjourney-v7", "Pixmind-io/awesome-midjourney-v7-example-prompts", "CC0", 2),
    ("aigi-wild", "sd-1.5", "SupaGruen/StableDiffusion-CheatSheet", "MIT", 1),
    ("aigi-wild", "camera-photo", "drewnoakes/metadata-extractor-images", "free to use however you wish (its README)", 3),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = ROOT / "aigi" / "demo"
    out.mkdir(exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rows = []
    for dataset, gen, repo, licence, n in PERMISSIVE:
        cands = [r for r in csv.DictReader(open(args.data_root / dataset / "manifest.csv"))
                 if r["generator"] == gen and r["source_repo"] == repo]  # fmt: skip
        for r in sorted(rng.choice(len(cands), n, replace=False)):
            src = cands[r]
            data = (args.data_root / dataset / src["path"]).read_bytes()
            name = f"{src['label']}-{gen}-{src['sha256'][:8]}.jpg"
            shutil.copyfile(args.data_root / dataset / src["path"], out / name)
            rows.append({"file": name, "label": src["label"], "generator": gen,
                         "source": f"{repo} @ {src['source_commit']}: {src['source_path']}", "licence": licence,
                         "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
    with open(out / "SOURCES.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} images, {sum((out / r['file']).stat().st_size for r in rows):,} bytes in {out}")


if __name__ == "__main__":
    main()
