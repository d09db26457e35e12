"""Manipulation augmentation with pixel masks (GAMMA, Yan et al., arXiv 2509.10250).

Every function returns a :class:`Manipulated`: the new image, a boolean ``mask`` of exactly the pixels
the manipulation wrote (everything outside it is byte-identical to the input), and a per-pixel
``source`` map (indices into :data:`SOURCES`). Kinds:

- inpainting: classical (OpenCV Telea / Navier-Stokes), through the reconstruction autoencoder (the
  hole is filled classically, then the whole image goes through the autoencoder and only the hole is
  kept, so those pixels carry a learned decoder's up-sampling traces), or through any diffusers
  inpainting pipeline the user has weights for;
- copy-move within an image; splicing between images (generated into real, real into generated);
- masks shaped like objects: free-form strokes, rotated ellipses, grown superpixel regions;
- semantics-preserving perturbations (JPEG, WebP, resize, blur, noise, colour jitter), applied alike to
  both classes with the functions of :mod:`aigi.transforms` that the robustness sweep uses.

Unpublished choices (the paper gives none of these): the five source classes, the mask area range, and
that a manipulated real image is labelled fake at image level (some of its pixels are not authentic).
Variants are reproducible: every draw comes from an RNG seeded by (image hash, variant, seed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from aigi.transforms import (
    colour_jitter,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    rescale,
    resize_shorter,
    stable_key,
    webp,
)

SOURCES = ("real", "generated", "inpainted", "copy-moved", "spliced")
REAL, GENERATED, INPAINTED, COPY_MOVED, SPLICED = range(len(SOURCES))
MASK_SHAPES = ("strokes", "ellipse", "superpixels")
INPAINT_KINDS = ("inpaint-classical", "inpaint-autoencoder", "inpaint-generative")
KINDS = INPAINT_KINDS + ("copy-move", "splice")


@dataclass
class Manipulated:
    image: Image.Image
    mask: np.ndarray  # bool [H, W]: the pixels this manipulation wrote
    source: np.ndarray  # uint8 [H, W]: index into SOURCES per pixel
    kind: str = "none"

    @property
    def label(self) -> int:
        """Image-level label: fake as soon as one pixel is not authentic."""
        return int((self.source != REAL).any())


def unmanipulated(img: Image.Image, label: int) -> Manipulated:
    """An image as it is: all pixels real, or all generated."""
    w, h = img.size
    return Manipulated(img, np.zeros((h, w), bool), np.full((h, w), GENERATED if label else REAL, np.uint8))


def _composite(base: Image.Image, new: Image.Image, mask: np.ndarray) -> Image.Image:
    a, b = np.asarray(base.convert("RGB")), np.asarray(new.convert("RGB"))
    return Image.fromarray(np.where(mask[..., None], b, a).astype(np.uint8), "RGB")


def _result(
    host: Manipulated | Image.Image, new: Image.Image, mask: np.ndarray, source_id: int, kind: str
) -> Manipulated:
    """Write ``new`` into the host where ``mask`` is set; pixels that come out equal are not marked."""
    if isinstance(host, Image.Image):
        host = unmanipulated(host, 0)
    out = _composite(host.image, new, mask)
    changed = (np.asarray(out) != np.asarray(host.image.convert("RGB"))).any(axis=-1)
    written = mask & changed
    source = host.source.copy()
    source[written] = source_id
    return Manipulated(out, host.mask | written, source, kind)


# --- object-like masks -----------------------------------------------------------------------


def stroke_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Free-form brush strokes: a few random walks drawn with a thick round brush."""
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    s = min(h, w)
    for _ in range(int(rng.integers(1, 4))):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        width = int(rng.uniform(0.05, 0.12) * s) + 1
        pts = [(x, y)]
        for _ in range(int(rng.integers(3, 7))):
            angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3) * s
            x = float(np.clip(x + length * np.cos(angle), 0, w - 1))
            y = float(np.clip(y + length * np.sin(angle), 0, h - 1))
            pts.append((x, y))
        d.line(pts, fill=255, width=width, joint="curve")
        for px, py in pts:
            d.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=255)
    return np.asarray(m) > 0


def ellipse_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One rotated ellipse."""
    s = min(h, w)
    a, b = rng.uniform(0.12, 0.35) * s, rng.uniform(0.12, 0.35) * s
    cy = rng.uniform(a, h - a) if h > 2 * a else h / 2  # draws in this order: cached variants depend on it
    cx = rng.uniform(a, w - a) if w > 2 * a else w / 2
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def superpixel_mask(img: Image.Image, rng: np.random.Generator, target: float = 0.15) -> np.ndarray:
    """Grow a region of SLIC superpixels (an object-like, content-following shape) from a random seed
    superpixel, adding the nearest ones until about ``target`` of the image is covered."""
    from skimage.segmentation import slic

    a = np.asarray(img.convert("RGB"))
    seg = slic(a, n_segments=40, compactness=10, start_label=0)
    ids = np.unique(seg)
    if len(ids) < 3:  # featureless image (flat, or pure noise): no object-like regions to follow
        return ellipse_mask(*a.shape[:2], rng)
    ys, xs = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    counts = np.bincount(seg.ravel(), minlength=ids.max() + 1)
    cy = np.bincount(seg.ravel(), ys.ravel(), minlength=ids.max() + 1) / np.maximum(counts, 1)
    cx = np.bincount(seg.ravel(), xs.ravel(), minlength=ids.max() + 1) / np.maximum(counts, 1)
    start = int(rng.choice(ids))
    order = np.argsort((cy - cy[start]) ** 2 + (cx - cx[start]) ** 2)
    chosen, area = [], 0
    for sid in order:
        if counts[sid] == 0:
            continue
        chosen.append(sid)
        area += counts[sid]
        if area >= target * seg.size:
            break
    return np.isin(seg, chosen)


def object_mask(
    img: Image.Image,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.05, 0.3),
    shapes: tuple[str, ...] = MASK_SHAPES,
) -> np.ndarray:
    """A mask of one drawn shape covering a fraction of the image within ``area`` (a few draws are
    tried; the last one is clipped to the range by growing or accepting it)."""
    w, h = img.size
    shape = shapes[int(rng.integers(len(shapes)))]
    m = None
    for _ in range(8):
        if shape == "strokes":
            m = stroke_mask(h, w, rng)
        elif shape == "ellipse":
            m = ellipse_mask(h, w, rng)
        elif shape == "superpixels":
            m = superpixel_mask(img, rng, float(rng.uniform(*area)))
        else:
            raise ValueError(f"unknown mask shape {shape!r}; known: {', '.join(MASK_SHAPES)}")
        if area[0] <= m.mean() <= area[1]:
            return m
    if not area[0] <= m.mean() <= area[1]:  # no draw fitted: an ellipse, whose area is bounded
        m = ellipse_mask(h, w, rng)
    return m


# --- manipulations -----------------------------------------------------------------------------


def inpaint_classical(host: Manipulated, mask: np.ndarray, method: str = "telea", radius: int = 5) -> Manipulated:
    """OpenCV inpainting (``telea`` or ``ns``, Navier-Stokes) of the masked pixels."""
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "classical inpainting needs OpenCV: bash scripts/install.sh gamma (or pip install -e '.[gamma]' in a clone)"
        ) from None
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    if method not in flags:
        raise ValueError(f"unknown inpainting method {method!r}; known: telea, ns")
    a = np.ascontiguousarray(np.asarray(host.image.convert("RGB")))
    out = cv2.inpaint(a, mask.astype(np.uint8) * 255, radius, flags[method])
    return _result(host, Image.fromarray(out, "RGB"), mask, INPAINTED, "inpaint-classical")


def inpaint_autoencoder(host: Manipulated, mask: np.ndarray, reconstructor) -> Manipulated:
    """Regenerate the masked region through a learned decoder: fill it classically, pass the image
    through ``reconstructor`` (``augment.reconstruct``), keep only the region."""
    filled = inpaint_classical(host, mask).image
    return _result(host, reconstructor.reconstruct(filled), mask, INPAINTED, "inpaint-autoencoder")


class DiffusersInpainter:
    """Generative inpainting through any diffusers inpainting pipeline (a directory or hub id, or a
    pipeline object). The pipeline repaints the whole frame through its VAE; only the masked pixels are
    kept, so the mask stays exact."""

    def __init__(self, pipeline_or_path, steps: int = 20, prompt: str = "", size: int = 512, device: str = "cpu"):
        if isinstance(pipeline_or_path, str):
            from diffusers import AutoPipelineForInpainting

            pipeline_or_path = AutoPipelineForInpainting.from_pretrained(pipeline_or_path)
        self.pipe = pipeline_or_path.to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.prompt, self.size, self.device = steps, prompt, size, device

    def __call__(self, host: Manipulated, mask: np.ndarray, rng: np.random.Generator) -> Manipulated:
        import torch

        img = host.image.convert("RGB")
        side = self.size
        gen = torch.Generator(self.device).manual_seed(int(rng.integers(2**31)))
        out = self.pipe(
            prompt=self.prompt,
            image=img.resize((side, side), Image.Resampling.BICUBIC),
            mask_image=Image.fromarray(mask.astype(np.uint8) * 255).resize((side, side)),
            num_inference_steps=self.steps,
            height=side,
            width=side,
            generator=gen,
            output_type="pil",
        ).images[0]
        return _result(host, out.resize(img.size, Image.Resampling.BICUBIC), mask, INPAINTED, "inpaint-generative")


def copy_move(host: Manipulated, mask: np.ndarray, rng: np.random.Generator) -> Manipulated | None:
    """Copy the pixels under ``mask``, shifted from elsewhere in the same image. None when the mask
    leaves no room for a shift."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    dy_range, dx_range = (-y0, h - 1 - y1), (-x0, w - 1 - x1)
    if dy_range == (0, 0) and dx_range == (0, 0):
        return None
    for _ in range(20):
        dy = int(rng.integers(dy_range[0], dy_range[1] + 1))
        dx = int(rng.integers(dx_range[0], dx_range[1] + 1))
        if abs(dy) >= (y1 - y0) // 2 or abs(dx) >= (x1 - x0) // 2:
            break
    if dy == 0 and dx == 0:
        return None
    a = np.asarray(host.image.convert("RGB"))
    shifted = a.copy()
    shifted[ys, xs] = a[ys + dy, xs + dx]
    return _result(host, Image.fromarray(shifted, "RGB"), mask, COPY_MOVED, "copy-move")


def splice(host: Manipulated, donor: Image.Image, mask: np.ndarray, rng: np.random.Generator) -> Manipulated:
    """Paste the masked pixels of a random crop of ``donor`` (scaled to cover the host) into the host."""
    w, h = host.image.size
    d = donor.convert("RGB")
    scale = max(w / d.width, h / d.height) * float(rng.uniform(1.0, 1.3))
    d = d.resize((max(w, round(d.width * scale)), max(h, round(d.height * scale))), Image.Resampling.BICUBIC)
    left, top = int(rng.integers(0, d.width - w + 1)), int(rng.integers(0, d.height - h + 1))
    return _result(host, d.crop((left, top, left + w, top + h)), mask, SPLICED, "splice")


# --- semantics-preserving perturbations, both classes alike --------------------------------------

SEMANTIC_PERTURBATIONS = ("jpeg", "webp", "resize", "blur", "noise", "colour")


def perturb_alike(m: Manipulated, rng: np.random.Generator, name: str | None = None) -> tuple[Manipulated, str]:
    """One perturbation from :data:`SEMANTIC_PERTURBATIONS` (drawn when ``name`` is None). It changes no
    pixel's source; resizing carries the masks along (nearest neighbour)."""
    name = name or SEMANTIC_PERTURBATIONS[int(rng.integers(len(SEMANTIC_PERTURBATIONS)))]
    img, mask, source = m.image, m.mask, m.source
    if name == "jpeg":
        img = jpeg(img, int(rng.integers(60, 96)))
    elif name == "webp":
        img = webp(img, int(rng.integers(60, 96)))
    elif name == "resize":
        img = rescale(img, float(rng.uniform(0.5, 1.5)))
        mask = np.asarray(Image.fromarray(mask).resize(img.size, Image.Resampling.NEAREST))
        source = np.asarray(Image.fromarray(source).resize(img.size, Image.Resampling.NEAREST))
    elif name == "blur":
        img = gaussian_blur(img, float(rng.uniform(0.3, 1.5)))
    elif name == "noise":
        img = gaussian_noise(img, float(rng.uniform(1.0, 6.0)), rng)
    elif name == "colour":
        img = colour_jitter(img, rng)
    else:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(SEMANTIC_PERTURBATIONS)}")
    return Manipulated(img, mask, source, m.kind), name


# --- seeded variants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManipulationRecipe:
    """How GAMMA's training variant k of an image is drawn. Reals get an inpainting, a copy-move or a
    splice of generated content; generated images get a copy-move, a splice of real content or an
    inpainting. ``generative_p`` is the share of inpaintings done generatively (when an inpainting
    pipeline is given; decided in the plan, so the kind is known before any pixel is touched).
    ``perturb_p``: chance of one semantics-preserving perturbation afterwards."""

    name: str = "gamma-v1"
    real_kinds: tuple[str, ...] = ("inpaint-classical", "inpaint-autoencoder", "copy-move", "splice")
    fake_kinds: tuple[str, ...] = ("copy-move", "splice", "inpaint-classical")
    area: tuple[float, float] = (0.05, 0.3)
    shapes: tuple[str, ...] = MASK_SHAPES
    perturb_p: float = 0.5
    generative_p: float = 0.5
    max_side: int = 512  # larger images are brought down first (classical inpainting is O(pixels))

    def key(self) -> str:
        return f"{self.name}-" + stable_key(self)[:8]


def plan_kind(label: int, plan_rng: np.random.Generator, recipe: ManipulationRecipe, generative: bool = False) -> str:
    """Which manipulation a variant gets; with a generative inpainter at hand, a share ``generative_p``
    of the inpaintings become generative ones."""
    kinds = recipe.fake_kinds if label else recipe.real_kinds
    kind = kinds[int(plan_rng.integers(len(kinds)))]
    if generative and kind in INPAINT_KINDS and plan_rng.random() < recipe.generative_p:
        kind = "inpaint-generative"
    return kind


@dataclass
class Tools:
    """What the manipulations need beyond the image: the reconstruction autoencoder for decoder
    inpainting, and optionally a generative inpainter."""

    reconstructor: object | None = None
    generative: Callable | None = None

    @classmethod
    def default(cls) -> Tools:
        from aigi.augment.reconstruct import load_reconstructor, shipped_reconstructors

        recs = [p for p in shipped_reconstructors() if "transposed" in p.name] or shipped_reconstructors()
        return cls(reconstructor=load_reconstructor(recs[0]) if recs else None)


def manipulate(
    img: Image.Image,
    label: int,
    kind: str,
    rng: np.random.Generator,
    recipe: ManipulationRecipe,
    tools: Tools,
    donor: Image.Image | None = None,
) -> Manipulated:
    """Apply one manipulation ``kind`` to ``img`` (label 0 real, 1 generated), then maybe a perturbation."""
    img = img.convert("RGB")
    if max(img.size) > recipe.max_side:
        img = resize_shorter(img, round(min(img.size) * recipe.max_side / max(img.size)), "lanczos")
    host = unmanipulated(img, label)
    mask = object_mask(img, rng, recipe.area, recipe.shapes)
    out = None
    if kind == "splice":
        if donor is None:
            raise ValueError("a splice needs a donor image")
        out = splice(host, donor, mask, rng)
    elif kind == "copy-move":
        out = copy_move(host, mask, rng)
    elif kind == "inpaint-generative":
        if tools.generative is None:
            raise ValueError("generative inpainting needs a diffusers inpainting pipeline (generative_inpainter)")
        out = tools.generative(host, mask, rng)
    elif kind in INPAINT_KINDS:
        if kind == "inpaint-autoencoder" and tools.reconstructor is not None:
            out = inpaint_autoencoder(host, mask, tools.reconstructor)
        else:
            out = inpaint_classical(host, mask)
    elif kind != "none":
        raise ValueError(f"unknown manipulation {kind!r}; known: none, {', '.join(KINDS)}")
    if out is None:  # nothing to do (kind none, or no room for a copy-move): classical inpainting instead
        out = inpaint_classical(host, mask) if kind != "none" else host
    if rng.random() < recipe.perturb_p:
        out, _ = perturb_alike(out, rng)
    return out


# --- preview -------------------------------------------------------------------------------------
