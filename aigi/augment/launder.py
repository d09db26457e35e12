"""Laundering: destroy pixel-level artefacts, keep semantics (AlignGemini's semantic set).

A laundered image is downscaled hard (shorter side to ``low`` px), blurred, noised, re-encoded as a
low-quality JPEG, then brought back to ``size`` px. What survives is layout, objects and style;
what a pixel-artefact detector reads (up-sampling grids, spectra, compression history) does not.
Real and fake images are laundered identically, with a seed per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from aigi.transforms import center_crop, gaussian_blur, gaussian_noise, jpeg, resize_shorter


@dataclass(frozen=True)
class Laundering:
    low: tuple[int, int] = (48, 80)  # shorter side during laundering, drawn per image
    blur: tuple[float, float] = (0.3, 1.0)
    noise: tuple[float, float] = (2.0, 6.0)
    jpeg_quality: tuple[int, int] = (30, 60)
    size: int = 224  # output: size x size


def launder(img: Image.Image, rng: np.random.Generator, recipe: Laundering = Laundering()) -> Image.Image:
    small = resize_shorter(img.convert("RGB"), int(rng.integers(recipe.low[0], recipe.low[1] + 1)), "lanczos")
    small = gaussian_blur(small, float(rng.uniform(*recipe.blur)))
    small = gaussian_noise(small, float(rng.uniform(*recipe.noise)), rng)
    small = jpeg(small, int(rng.integers(recipe.jpeg_quality[0], recipe.jpeg_quality[1] + 1)))
    return center_crop(resize_shorter(small, recipe.size, "bicubic"), recipe.size)


# What the semantic branch sees at training AND inference: one fixed laundering (the middle of the
# ranges above, seed 0), so an image's laundered form, and its cached features, are deterministic.
FIXED_LAUNDERING = Laundering(low=(64, 64), blur=(0.6, 0.6), noise=(4.0, 4.0), jpeg_quality=(45, 45))
FIXED_LAUNDERING_KEY = "launder-v1"


def launder_fixed(img: Image.Image) -> Image.Image:
    return launder(img, np.random.default_rng(0), FIXED_LAUNDERING)


def build_semantic_set(manifest, out_dir, seed: int = 0, recipe: Laundering = Laundering(), log=None):
    """Launder every image (real and fake alike) into ``out_dir/{real,fake}/<i>.png`` + ``manifest.csv``,
    keeping labels and generators. Bad files are skipped and reported."""
    from pathlib import Path

    from aigi.data.manifest import Manifest, Sample
    from aigi.io import load_image
    from aigi.transforms import view_rng

    out = Path(out_dir).resolve()
    samples, errors = [], []
    for i, s in enumerate(manifest):
        try:
            d = load_image(s.path)
        except Exception as e:  # noqa: BLE001 - reported, the build goes on
            errors.append(str(e))
            continue
        sub = out / ("fake" if s.label else "real")
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"{i:06d}.png"
        launder(d.image, view_rng(d.sha256, 0, seed), recipe).save(p)
        samples.append(Sample(str(p), s.label, s.generator, caption=s.caption))
        if log and len(samples) % 500 == 0:
            log(f"{len(samples)} images")
    m = Manifest(samples, str(out / "manifest.csv"), "csv")
    m.write_csv(out / "manifest.csv")
    return m, errors
