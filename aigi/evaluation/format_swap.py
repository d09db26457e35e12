"""Did a detector learn the data set's storage format instead of generation artefacts?

On aigi-dev, reals are camera/web JPEGs (median 333x314, quality ~80) and fakes 256x256 JPEG q95.
The swap re-encodes held-out reals the way the fakes are stored and held-out fakes the way the
reals are, then compares AUROC and mean p_fake before and after. A detector that learned
generation artefacts barely moves; one that learned the format loses AUROC (flagged above 0.05).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigi.data.manifest import Manifest
from aigi.evaluation.metrics import auroc
from aigi.io import load_image


@dataclass(frozen=True)
class StorageFormat:
    width: int
    height: int
    jpeg_quality: int


AIGI_DEV_REAL = StorageFormat(333, 314, 80)  # median real size and JPEG quality (data set README)
AIGI_DEV_FAKE = StorageFormat(256, 256, 95)
FLAG_DROP = 0.05


def reencode(src: str, dst: Path, fmt: StorageFormat) -> None:
    img = load_image(src).image.resize((fmt.width, fmt.height), resample=3)
    img.save(dst, "JPEG", quality=fmt.jpeg_quality)


def format_swap(detector, manifest: Manifest, real_as: StorageFormat = AIGI_DEV_FAKE,
                fake_as: StorageFormat = AIGI_DEV_REAL, batch_size: int = 16) -> dict:
    """Scores ``manifest`` as stored and format-swapped; returns the changes and a flag."""
    paths = [s.path for s in manifest]
    y = np.asarray(manifest.labels)
    with tempfile.TemporaryDirectory(prefix="aigi-swap-") as tmp:
        swapped = []
        for i, s in enumerate(manifest):
            dst = Path(tmp) / f"{i:06d}.jpg"
            reencode(s.path, dst, fake_as if s.label else real_as)
            swapped.append(str(dst))
        before = detector.predict(paths, threshold=0.5, batch_size=batch_size)
        after = detector.predict(swapped, threshold=0.5, batch_size=batch_size)
    pb = np.array([r["p_fake"] for r in before], dtype=float)
    pa = np.array([r["p_fake"] for r in after], dtype=float)
    ok = ~np.isnan(pb) & ~np.isnan(pa)
    y, pb, pa = y[ok], pb[ok], pa[ok]
    res = {
        "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
        "real_stored_as": vars(real_as), "fake_stored_as": vars(fake_as),
        "auroc_before": auroc(y, pb), "auroc_after": auroc(y, pa),
        "mean_p_fake_real_before": float(pb[y == 0].mean()), "mean_p_fake_real_after": float(pa[y == 0].mean()),
        "mean_p_fake_fake_before": float(pb[y == 1].mean()), "mean_p_fake_fake_after": float(pa[y == 1].mean()),
    }
    res["auroc_change"] = res["auroc_after"] - res["auroc_before"]
    res["learned_the_format"] = bool(res["auroc_change"] < -FLAG_DROP)
    return res
