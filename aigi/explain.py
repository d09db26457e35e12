"""Heatmap overlays: where a detector with a mask head (GAMMA's head A) sees manipulated or generated
pixels, drawn on the user's own image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from aigi.transforms import Preprocess


def heatmap_overlay(img: Image.Image, mask: np.ndarray, preprocess: Preprocess, alpha: float = 0.55) -> Image.Image:
    """``img`` with ``mask`` (per-patch probabilities of the region the model saw) blended in red over
    that region; what the model never saw (outside the centre crop) is dimmed."""
    img = img.convert("RGB")
    left, top, right, bottom = preprocess.crop_box(img.size)
    box = (round(left), round(top), round(right), round(bottom))
    size = (max(1, box[2] - box[0]), max(1, box[3] - box[1]))
    heat = (
        np.asarray(
            Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
        / 255.0
    )
    base = np.asarray(img, dtype=np.float32) * 0.45  # dimmed everywhere, then the seen region restored
    region = np.asarray(img, dtype=np.float32)[box[1] : box[1] + size[1], box[0] : box[0] + size[0]]
    h = heat[: region.shape[0], : region.shape[1], None] * alpha
    red = np.array([255.0, 30.0, 30.0], np.float32)
    base[box[1] : box[1] + region.shape[0], box[0] : box[0] + region.shape[1]] = region * (1 - h) + red * h
    return Image.fromarray(base.clip(0, 255).astype(np.uint8), "RGB")


def heatmap_name(path: str, sha256: str) -> str:
    """A safe, unique file name for an image's heatmap (from its stem and content hash)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60] or "image"
    return f"{stem}-{sha256[:10]}.png"


def write_heatmap(record: dict, detector, out_dir: str | Path) -> bool:
    """Write the overlay of one scored record that carries a ``mask`` (its file is read again) and set
    ``record["heatmap"]`` to its path; False when the record has no mask."""
    from aigi.io import load_image

    if record.get("mask") is None or record["verdict"] == "error":
        return False
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = detector.prepare(load_image(record["path"]).image)
    target = out / heatmap_name(record["path"], record["sha256"])
    heatmap_overlay(img, np.asarray(record["mask"], np.float32), detector.preprocessing).save(target)
    record["heatmap"] = str(target)
    return True
