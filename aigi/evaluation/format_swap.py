"""Did a detector learn the data set's storage format instead of generation artefacts?

On aigi-dev, reals are camera/web JPEGs (median 333x314, quality ~80) and fakes 256x256 JPEG q95.
The swap re-encodes held-out reals the way the fakes are stored and held-out fakes the way the
reals are, then compares AUROC and mean p_fake before and after. A detector that learned
generation artefacts barely moves; one that learned the format loses AUROC (flagged above 0.05).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from aigi.data.manifest import Manifest
from aigi.evaluation.metrics import auroc
from aigi.scoring import calibrated_scores
from aigi.transforms import jpeg


@dataclass(frozen=True)
class StorageFormat:
    width: int
    height: int
    jpeg_quality: int


AIGI_DEV_REAL = StorageFormat(333, 314, 80)  # median real size and JPEG quality (data set README)
AIGI_DEV_FAKE = StorageFormat(256, 256, 95)
FLAG_DROP = 0.05


def stored_as(fmt: StorageFormat):
    """A perturbation (cache key, fn) that re-stores an image in ``fmt``: resized, JPEG-encoded."""
    key = f"stored-as-{fmt.width}x{fmt.height}-q{fmt.jpeg_quality}"
    return key, lambda img: jpeg(img.resize((fmt.width, fmt.height), Image.Resampling.BICUBIC), fmt.jpeg_quality)


def format_swap(
    detector, manifest: Manifest, real_as: StorageFormat = AIGI_DEV_FAKE, fake_as: StorageFormat = AIGI_DEV_REAL
) -> dict:
    """Calibrated scores of ``manifest`` as stored and format-swapped; the changes and a flag."""
    reals = manifest.subset(lambda s: s.label == 0)
    fakes = manifest.subset(lambda s: s.label == 1)
    before = [calibrated_scores(detector, m)[0] for m in (reals, fakes)]
    after = [
        calibrated_scores(detector, reals, perturb=stored_as(real_as))[0],
        calibrated_scores(detector, fakes, perturb=stored_as(fake_as))[0],
    ]
    y = np.concatenate([np.zeros(len(reals), int), np.ones(len(fakes), int)])
    pb, pa = np.concatenate(before), np.concatenate(after)
    ok = ~np.isnan(pb) & ~np.isnan(pa)
    y, pb, pa = y[ok], pb[ok], pa[ok]
    res: dict[str, Any] = {
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "real_stored_as": vars(real_as),
        "fake_stored_as": vars(fake_as),
        "auroc_before": auroc(y, pb),
        "auroc_after": auroc(y, pa),
        "mean_p_fake_real_before": float(pb[y == 0].mean()),
        "mean_p_fake_real_after": float(pa[y == 0].mean()),
        "mean_p_fake_fake_before": float(pb[y == 1].mean()),
        "mean_p_fake_fake_after": float(pa[y == 1].mean()),
    }
    res["auroc_change"] = res["auroc_after"] - res["auroc_before"]
    res["learned_the_format"] = bool(res["auroc_change"] < -FLAG_DROP)
    return res
