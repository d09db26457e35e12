"""Image preprocessing and perturbations, written with Pillow and NumPy (no torchvision).

One module serves three users: a backbone's deterministic preprocessing, the seeded
augmented views used for training, and (later) the robustness sweep. Keeping them
together means training augmentation and robustness evaluation perturb images the
same way.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def stable_key(obj) -> str:
    """A short hash of a config dataclass's fields that differ from their defaults.

    Adding a field whose default keeps the old behaviour leaves every existing key, and so
    every cached feature, valid.
    """
    changed = sorted(
        (f.name, repr(getattr(obj, f.name)))
        for f in fields(obj)
        if f.default is MISSING or getattr(obj, f.name) != f.default
    )
    return hashlib.sha1(repr(changed).encode()).hexdigest()[:10]


# --- geometry -------------------------------------------------------------------------


def resize_shorter(img: Image.Image, size: int, resample: str = "bicubic") -> Image.Image:
    """Resize so the shorter side is ``size`` pixels, keeping the aspect ratio."""
    w, h = img.size
    if min(w, h) == size:
        return img
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, _RESAMPLE[resample])


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Crop the central ``size`` x ``size`` square (pads with black if the image is smaller)."""
    w, h = img.size
    if w < size or h < size:
        canvas = Image.new("RGB", (max(w, size), max(h, size)))
        canvas.paste(img, ((canvas.width - w) // 2, (canvas.height - h) // 2))
        img, (w, h) = canvas, canvas.size
    left = (w - size) // 2
    top = (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_array(img: Image.Image, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """RGB image -> normalised float32 array, channels first [3, H, W]."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


@dataclass(frozen=True)
class Preprocess:
    """A backbone's deterministic preprocessing: resize shorter side, centre crop, normalise."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resample: str = "bicubic"
    square: bool = False  # resize straight to resize x resize (SigLIP-style) instead of the shorter side

    def __call__(self, img: Image.Image) -> np.ndarray:
        return to_array(self.geometry(img), self.mean, self.std)

    def geometry(self, img: Image.Image, resample: str | None = None) -> Image.Image:
        """Only the resize and crop (no normalisation); ``resample="nearest"`` for label masks."""
        r = resample or self.resample
        if self.square:
            img = img.resize((self.resize, self.resize), _RESAMPLE[r])
        else:
            img = resize_shorter(img, self.resize, r)
        return center_crop(img, self.crop)

    def crop_box(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The region (left, top, right, bottom) of a ``size`` = (w, h) image that the model sees."""
        w, h = size
        if self.square:
            sx, sy = self.resize / w, self.resize / h
        else:
            sx = sy = self.resize / min(w, h)
        cx, cy = w / 2, h / 2
        half_w, half_h = self.crop / (2 * sx), self.crop / (2 * sy)
        return max(0.0, cx - half_w), max(0.0, cy - half_h), min(float(w), cx + half_w), min(float(h), cy + half_h)

    def key(self) -> str:
        """A short stable string identifying this preprocessing (used in cache keys)."""
        return stable_key(self)


# --- the crop plan: the whole image and native-scale crops --------------------------------------


def grid_boxes(size: tuple[int, int], crop: int, n: int) -> list[tuple[int, int, int, int]]:
    """Up to ``n`` ``crop`` x ``crop`` boxes on an even grid over an image of ``size`` = (w, h): one is the
    centre; more spread over a near-square grid (columns along the longer side), from edge to edge."""
    w, h = size
    if n <= 0 or min(w, h) < crop:
        return []
    cols = int(np.ceil(np.sqrt(n))) if w >= h else max(1, n // int(np.ceil(np.sqrt(n))))
    rows = int(np.ceil(n / cols))
    xs = [(w - crop) // 2] if cols == 1 else np.linspace(0, w - crop, cols).round().astype(int).tolist()
    ys = [(h - crop) // 2] if rows == 1 else np.linspace(0, h - crop, rows).round().astype(int).tolist()
    return [(x, y, x + crop, y + crop) for y in ys for x in xs][:n]


def crop_plan(img: Image.Image, preprocess: Preprocess, crops: int) -> list[Image.Image]:
    """What a detector with a crop plan looks at: view 0 is ``preprocess.geometry`` (the image resized, its
    shorter side whole), then up to ``crops`` crops at the image's own scale on a grid (:func:`grid_boxes`)
    when the resize shrank it (shorter side over ``preprocess.resize``; otherwise view 0 already holds its own
    pixels and a native crop would repeat them). Each is one forward pass."""
    views = [preprocess.geometry(img)]
    if min(img.size) > preprocess.resize:
        views += [img.crop(box) for box in grid_boxes(img.size, preprocess.crop, crops)]
    return views


# --- perturbations ----------------------------------------------------------------------


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Re-encode as baseline JPEG at ``quality`` (4:2:0 chroma, as most encoders do)."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def webp(img: Image.Image, quality: int) -> Image.Image:
    """Re-encode as lossy WebP at ``quality``."""
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def rescale(img: Image.Image, factor: float, resample: str = "bicubic") -> Image.Image:
    """Scale both sides by ``factor``."""
    w, h = img.size
    return img.resize((max(1, round(w * factor)), max(1, round(h * factor))), _RESAMPLE[resample])


def gaussian_blur(img: Image.Image, sigma: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(sigma))) if sigma > 0 else img


def gaussian_noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    """Add N(0, sigma^2) noise in 0..255 units."""
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, float(sigma), arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")


def colour_jitter(img: Image.Image, rng: np.random.Generator, strength: float = 0.2) -> Image.Image:
    """Scale brightness, contrast and saturation each by a factor drawn from 1 +/- ``strength``."""
    from PIL import ImageEnhance

    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(float(rng.uniform(1 - strength, 1 + strength)))
    return img


def crop_fraction(img: Image.Image, fraction: float) -> Image.Image:
    """Keep the central ``fraction`` of each side."""
    w, h = img.size
    cw, ch = max(1, round(w * fraction)), max(1, round(h * fraction))
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def social_media(img: Image.Image, long_side: int = 1080, quality: int = 80) -> Image.Image:
    """What a platform does on upload: downscale so the longer side is at most ``long_side``,
    drop metadata (re-encoding from pixels keeps none), JPEG at ``quality``."""
    w, h = img.size
    if max(w, h) > long_side:
        img = rescale(img, long_side / max(w, h))
    return jpeg(img, quality)


PARITY_SHORT_SIDE = 256
PARITY_QUALITY = 90


def jpeg_bytes_parity(img: Image.Image, short_side: int = PARITY_SHORT_SIDE, quality: int = PARITY_QUALITY) -> bytes:
    """Re-encode any image identically: shorter side ``short_side``, centre square crop, baseline
    JPEG at ``quality``, no metadata. After this every file has the same format, size and settings."""
    img = center_crop(resize_shorter(img, short_side), short_side)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def parity_image(img: Image.Image) -> Image.Image:
    """The image as :func:`jpeg_bytes_parity` stores it, decoded again."""
    return Image.open(io.BytesIO(jpeg_bytes_parity(img))).convert("RGB")


def content_rng(img: Image.Image, salt: int = 0) -> np.random.Generator:
    """An RNG seeded by the image's pixels: the same image always gets the same noise."""
    digest = hashlib.sha1(img.tobytes()).digest()
    return np.random.default_rng([int.from_bytes(digest[:8], "little"), salt])


# Robustness sweep: name -> (severities, fn(img, severity)). Severities run mild -> strong.
PERTURBATIONS: dict[str, tuple[list[Any], Callable[[Image.Image, Any], Image.Image]]] = {
    "jpeg": ([90, 70, 50, 30], lambda img, q: jpeg(img, q)),
    "webp": ([80, 50], lambda img, q: webp(img, q)),
    "resize": ([2.0, 0.5, 0.25], lambda img, f: rescale(img, f)),
    "blur": ([1.0, 2.0], lambda img, s: gaussian_blur(img, s)),
    "noise": ([3.0, 8.0], lambda img, s: gaussian_noise(img, s, content_rng(img, int(s * 100)))),
    "crop": ([0.5], lambda img, f: crop_fraction(img, f)),
    "social": ([1], lambda img, _: social_media(img)),
}


def perturbation(name: str, severity) -> tuple[str, Callable[[Image.Image], Image.Image]]:
    """(cache key, fn(img)) for one condition of the sweep."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    fn = PERTURBATIONS[name][1]
    return f"perturb-{name}-{severity}", (lambda img: fn(img, severity))


# --- seeded training views --------------------------------------------------------------


@dataclass(frozen=True)
class ViewRecipe:
    """How augmented training view k of an image is drawn (view 0 is always the plain image).

    Denies the shortcuts measured on aigi-dev (real = larger camera JPEG q~80, fake =
    256 px JPEG q95): every image of either class is rescaled so its shorter side is
    drawn uniformly from ``short_side``, randomly cropped to ``crop_fraction`` of that,
    and re-encoded as JPEG with probability ``jpeg_p`` at a quality drawn from
    ``jpeg_quality``. After this, size, aspect and compression history carry no label.
    """

    name: str = "shortcut-denial-v1"
    short_side: tuple[int, int] = (224, 448)
    crop_fraction: tuple[float, float] = (0.6, 1.0)
    jpeg_p: float = 0.8
    jpeg_quality: tuple[int, int] = (60, 95)
    flip_p: float = 0.5

    def key(self) -> str:
        return f"{self.name}-" + stable_key(self)[:8]


def view_rng(sha256: str, view: int, seed: int) -> np.random.Generator:
    """RNG for one (image, view, seed): the same view is drawn on every machine and run."""
    return np.random.default_rng([int(sha256[:15], 16), int(view), int(seed)])


def augmented_view(img: Image.Image, rng: np.random.Generator, recipe: ViewRecipe, masks: tuple[Image.Image, ...] = ()):
    """Draw one augmented view of ``img`` (see :class:`ViewRecipe`).

    ``masks`` (label images of the same size, e.g. GAMMA's manipulation masks) follow the same
    geometry with nearest-neighbour resampling and are never re-compressed; when given, the
    result is ``(view, [masks])``. The random draws are the same with or without masks.
    """
    short = int(rng.integers(recipe.short_side[0], recipe.short_side[1] + 1))
    img2 = resize_shorter(img, short)
    masks = [m.resize(img2.size, Image.Resampling.NEAREST) for m in masks]
    img = img2
    w, h = img.size
    frac = float(rng.uniform(*recipe.crop_fraction))
    cw, ch = max(1, round(w * frac)), max(1, round(h * frac))
    left = int(rng.integers(0, w - cw + 1))
    top = int(rng.integers(0, h - ch + 1))
    box = (left, top, left + cw, top + ch)
    img, masks = img.crop(box), [m.crop(box) for m in masks]
    if rng.random() < recipe.flip_p:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        masks = [m.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for m in masks]
    if rng.random() < recipe.jpeg_p:
        img = jpeg(img, int(rng.integers(recipe.jpeg_quality[0], recipe.jpeg_quality[1] + 1)))
    return (img, masks) if masks else img


DEFAULT_VIEW_RECIPE = ViewRecipe()


# Mild degradations for the "unsure" ensemble: a verdict that flips under any of these is no verdict.
MILD_DEGRADATIONS = {
    "jpeg-q85": lambda img: jpeg(img, 85),
    "rescale-0.75": lambda img: rescale(img, 0.75),
    "blur-0.7": lambda img: gaussian_blur(img, 0.7),
}
