"""Pictures of manipulations for people: a mask drawn over its image, and a grid of examples (``aigi detect
--preview``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from aigi.augment.manipulate import ManipulationRecipe, Tools, manipulate, plan_kind


def overlay_mask(img: Image.Image, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> Image.Image:
    """``img`` with the pixels of ``mask`` tinted."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    m = mask[..., None].astype(np.float32) * alpha
    return Image.fromarray((a * (1 - m) + np.asarray(colour, np.float32) * m).astype(np.uint8), "RGB")


def preview_grid(
    manifest,
    n: int = 8,
    seed: int = 0,
    recipe: ManipulationRecipe = ManipulationRecipe(),
    tools: Tools | None = None,
    tile: int = 192,
) -> tuple[Image.Image, list[str]]:
    """A grid of ``n`` seeded manipulations of images of ``manifest``: per sample the manipulated image
    and the same with its mask tinted red, captioned with the kind. Returns the grid and any errors."""
    from aigi.io import load_image

    tools = tools or Tools.default()
    rng = np.random.default_rng(seed)
    samples = list(manifest)
    by_label = {c: [s for s in samples if s.label == c] for c in (0, 1)}
    tiles, errors = [], []
    for _ in range(n):
        s = samples[int(rng.integers(len(samples)))]
        try:
            img = load_image(s.path).image
            kind = plan_kind(s.label, rng, recipe, tools.generative is not None)
            donor = None
            if kind == "splice":
                pool = by_label[1 - s.label]
                if pool:
                    donor = load_image(pool[int(rng.integers(len(pool)))].path).image
                else:
                    kind = "copy-move"
            m = manipulate(img, s.label, kind, rng, recipe, tools, donor)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the preview
            errors.append(f"{s.path}: {e}")
            continue
        scale = tile / max(m.image.size)
        size = (max(1, round(m.image.width * scale)), max(1, round(m.image.height * scale)))
        left = m.image.resize(size, Image.Resampling.BICUBIC)
        right = overlay_mask(m.image, m.mask).resize(size, Image.Resampling.BICUBIC)
        cell = Image.new("RGB", (2 * tile + 6, tile + 18), "white")
        cell.paste(left, (0, 18))
        cell.paste(right, (tile + 6, 18))
        caption = f"{m.kind} ({'fake' if s.label else 'real'} host, {m.mask.mean():.0%} masked)"
        ImageDraw.Draw(cell).text((2, 2), caption, fill="black")
        tiles.append(cell)
    if not tiles:
        raise ValueError("no image could be manipulated" + (f" (first error: {errors[0]})" if errors else ""))
    cols = 2 if len(tiles) > 1 else 1
    rows = (len(tiles) + cols - 1) // cols
    w, h = tiles[0].size
    grid = Image.new("RGB", (cols * (w + 8), rows * (h + 8)), "white")
    for k, t in enumerate(tiles):
        grid.paste(t, ((k % cols) * (w + 8), (k // cols) * (h + 8)))
    return grid, errors
