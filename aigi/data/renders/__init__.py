"""Real non-photographic images, rendered: charts, UI and text screenshots, documents, code, logos and
flat graphics, diagrams, slides, and data figures with image-like content (heatmaps, contours, surfaces).

A training set whose fakes include illustrations, posters and infographics while every real is a
photograph teaches "not a photo = fake", and such a detector accuses every screenshot, chart and scan
a user checks. These renders are real negatives of those kinds, drawn here (seeded, reproducible) with
matplotlib and Pillow: varied fonts (the ones matplotlib ships), sizes, colours, layouts, and saved as
PNG or as JPEG at a random quality. ``render_set`` writes them with a manifest (label ``real``,
generator ``render-<kind>``); a different seed gives a disjoint held-out set for false-positive reports.
``VERSION`` changes whenever what a (kind, seed, index) draws changes, so a folder of older renders is
never reused as if it were current.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from aigi.data.renders.graphics import render_diagram, render_field, render_graphic, render_slide
from aigi.data.renders.screens import render_chart, render_code, render_document, render_ui

VERSION = 2  # 1: four kinds, blank text in the "Display" fonts; 2: eight kinds, fonts fixed
KINDS = ("chart", "ui", "document", "code", "graphic", "diagram", "slide", "field")

RENDERERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "chart": render_chart,
    "ui": render_ui,
    "document": render_document,
    "code": render_code,
    "graphic": render_graphic,
    "diagram": render_diagram,
    "slide": render_slide,
    "field": render_field,
}


def render_one(kind: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """One rendered image of ``kind`` as file bytes and its suffix: PNG, or JPEG at quality 60-95."""
    img = RENDERERS[kind](rng)
    if rng.random() < 0.5:  # shown at another size than drawn (a zoomed screenshot, a downsized scan)
        f = float(rng.uniform(0.5, 1.5))
        img = img.resize((max(64, round(img.width * f)), max(64, round(img.height * f))), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if rng.random() < 0.5:
        img.save(buf, "PNG")
        return buf.getvalue(), ".png"
    img.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return buf.getvalue(), ".jpg"


def render_set(out: str | Path, count: int, seed: int = 0, progress: Callable[[int], None] | None = None) -> Path:
    """Write ``count`` renders (kinds in turn) under ``out`` with ``manifest.csv`` (path, label, generator);
    files already there are kept, so an interrupted run resumes. Returns the manifest's path."""
    import hashlib

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        stem = out / kind / f"{kind}-{seed}-{i:05d}"
        found = [p for p in (stem.with_suffix(".png"), stem.with_suffix(".jpg")) if p.is_file()]
        if found:
            path = found[0]
        else:
            data, suffix = render_one(kind, np.random.default_rng([seed, i]))
            path = stem.with_suffix(suffix)
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        rows.append(
            [str(path.relative_to(out)), "real", f"render-{kind}", hashlib.sha256(path.read_bytes()).hexdigest()]
        )
        if progress:
            progress(1)
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "sha256"])
        w.writerows(rows)
    return manifest
