"""Heatmap overlays drawn on the user's own image: where a detector with a mask head (GAMMA's head A) sees
manipulated or generated pixels, or, for a detector with an evidence map (univfd, the default), how much each
patch adds to the logit, toward AI-generated (red) or toward real (blue)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from aigi.contract import EvidenceMap, MaskHead, draws_map
from aigi.transforms import Preprocess


def _blend(img: Image.Image, colour: np.ndarray, weight: np.ndarray, preprocess: Preprocess, alpha: float):
    """``img`` with per-patch ``colour`` [gh, gw, 3] blended in with per-patch ``weight`` [gh, gw] in [0, 1]
    (resized bilinearly over the region the model saw); what the model never saw (outside the centre crop)
    is dimmed."""
    img = img.convert("RGB")
    left, top, right, bottom = preprocess.crop_box(img.size)
    box = (round(left), round(top), round(right), round(bottom))
    size = (max(1, box[2] - box[0]), max(1, box[3] - box[1]))

    def up(a: np.ndarray) -> np.ndarray:
        return (
            np.asarray(
                Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR),
                dtype=np.float32,
            )
            / 255.0
        )

    heat = up(weight)
    col = np.stack([up(colour[..., c] / 255.0) for c in range(3)], -1) * 255.0
    base = np.asarray(img, dtype=np.float32) * 0.45  # dimmed everywhere, then the seen region restored
    region = np.asarray(img, dtype=np.float32)[box[1] : box[1] + size[1], box[0] : box[0] + size[0]]
    hh, ww = region.shape[:2]
    h = heat[:hh, :ww, None] * alpha
    base[box[1] : box[1] + hh, box[0] : box[0] + ww] = region * (1 - h) + col[:hh, :ww] * h
    return Image.fromarray(base.clip(0, 255).astype(np.uint8), "RGB")


RED = np.array([255.0, 30.0, 30.0], np.float32)
BLUE = np.array([30.0, 90.0, 255.0], np.float32)


def heatmap_overlay(img: Image.Image, mask: np.ndarray, preprocess: Preprocess, alpha: float = 0.55) -> Image.Image:
    """``img`` with ``mask`` (per-patch probabilities of the region the model saw) blended in red over
    that region; what the model never saw (outside the centre crop) is dimmed."""
    mask = np.asarray(mask, np.float32)
    return _blend(img, np.broadcast_to(RED, (*mask.shape, 3)), mask, preprocess, alpha)


def evidence_overlay(img: Image.Image, evidence: dict, preprocess: Preprocess, alpha: float = 0.6) -> Image.Image:
    """``img`` with a detector's evidence map (:meth:`Detector.evidence`): each patch red when it pushes the
    logit toward AI-generated, blue toward real, as strong as its share of the largest contribution; under it
    a legend with the patches' sum, the global term (not spatial: the intercept and standardisation, and any
    class-token part) and the logit they add up to."""
    from PIL import ImageDraw, ImageFont

    c = np.asarray(evidence["contributions"], np.float32)
    scale = float(np.abs(c).max()) or 1.0
    colour = np.where(c[..., None] > 0, RED, BLUE)
    over = _blend(img, colour, np.abs(c) / scale, preprocess, alpha)
    size = max(10, over.width // 40)
    font = ImageFont.load_default(size=size)
    lines = [
        "red: toward AI-generated   blue: toward real",
        f"patches {float(c.sum()):+.2f} + global {evidence['global']:+.2f} (not spatial)"
        f" = logit {evidence['logit']:+.2f}",
    ]
    pad = size // 2
    out = Image.new("RGB", (over.width, over.height + 2 * (size + pad) + pad), "white")
    out.paste(over, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        draw.text((pad, over.height + pad + k * (size + pad)), line, fill="black", font=font)
    return out


def heatmap_name(path: str, sha256: str) -> str:
    """A safe, unique file name for an image's heatmap (from its stem and content hash)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60] or "image"
    return f"{stem}-{sha256[:10]}.png"


def overlay_for(record: dict, img: Image.Image, detector) -> Image.Image | None:
    """The overlay of one scored record on its decoded image (``img``, before ``prepare``): the mask when the
    record carries one, else the detector's evidence map; None when neither applies (an error, no map)."""
    if record.get("verdict") == "error":
        return None
    from aigi.scoring import prepared

    img = prepared(detector, img)
    if record.get("mask") is not None and isinstance(detector, MaskHead):
        return heatmap_overlay(img, np.asarray(record["mask"], np.float32), detector.preprocessing)
    if isinstance(detector, EvidenceMap) and detector.has_evidence_map:
        return evidence_overlay(img, detector.evidence(img), detector.preprocessing)
    return None


def write_heatmap(record: dict, detector, out_dir: str | Path) -> bool:
    """Write the overlay of one scored record (its file is read again; :func:`overlay_for`) and set
    ``record["heatmap"]`` to its path; False when there is nothing to draw."""
    from aigi.io import load_image

    if record.get("verdict") == "error" or not draws_map(detector):
        return False
    over = overlay_for(record, load_image(record["path"]).image, detector)
    if over is None:
        return False
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / heatmap_name(record["path"], record["sha256"])
    over.save(target)
    record["heatmap"] = str(target)
    return True
