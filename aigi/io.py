"""Safe image decoding: untrusted bytes in, an RGB ``PIL.Image`` out, or one clear error.

Every file a user hands to ``aigi`` passes through :func:`load_image`. It
- reads at most ``max_bytes`` (a file larger than that is refused before it is read),
- identifies the format from the content, never from the file name,
- refuses images whose header declares more than ``max_pixels`` before any pixel is decoded
  (decompression bombs),
- decodes only the first frame of animated or multi-page files (GIF, APNG, WebP, TIFF, HEIF),
- applies the EXIF orientation,
- converts every pixel mode to 8-bit RGB deliberately (see :func:`to_rgb`).
Whatever goes wrong, the caller gets an :class:`ImageDecodeError` whose message names the file
and the problem; nothing else escapes.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF; AVIF is built into Pillow >= 11.3
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional at runtime, required by the package
    pillow_heif = None

# Formats Pillow may identify (multi-picture JPEG, MPO, comes through the JPEG opener). Anything else
# (SVG, PDF, EPS, PSD, ...) is refused: fewer decoders reachable from untrusted input, and none that
# executes code (EPS needs Ghostscript).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")

# Colour used under transparent pixels. Fixed, so the same file always gives the same pixels.
ALPHA_BACKGROUND = (255, 255, 255)


class ImageDecodeError(ValueError):
    """A file could not be turned into an image. ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds applied before decoding. Defaults fit a 48-megapixel phone photo."""

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 64_000_000


DEFAULT_LIMITS = DecodeLimits()


@dataclass
class DecodedImage:
    """An RGB image and what we learned about the file it came from."""

    image: Image.Image
    sha256: str
    format: str
    mode: str  # pixel mode as stored, before conversion to RGB
    size: tuple[int, int]  # (width, height) after EXIF orientation
    n_bytes: int
    frames: int = 1  # frames in the file (animations); only the first is decoded
    provenance: list | None = None  # what the file declares (aigi.provenance), when it was asked for


def read_bytes(path: str | os.PathLike, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a file, refusing it if it is missing, not a regular file, empty or too large."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageDecodeError(path, "no such file") from None
    except OSError as e:
        raise ImageDecodeError(path, f"cannot access file ({e.strerror or e})") from None
    if not p.is_file():
        raise ImageDecodeError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageDecodeError(path, "file is empty (0 bytes)")
    if st.st_size > limits.max_bytes:
        raise ImageDecodeError(path, f"file is {st.st_size:,} bytes, over the limit of {limits.max_bytes:,} bytes")
    try:
        with open(p, "rb") as f:
            data = f.read(limits.max_bytes + 1)
    except OSError as e:
        raise ImageDecodeError(path, f"cannot read file ({e.strerror or e})") from None
    if len(data) > limits.max_bytes:  # grew while we were looking
        raise ImageDecodeError(path, f"file is over the limit of {limits.max_bytes:,} bytes")
    return data


# JPEGs over this many pixels may be decoded at reduced scale (DCT scaling, ``Image.draft``) when the caller needs
# less; the SD watermark is not read past it either (``provenance.WATERMARK_MAX_PIXELS``), so no evidence is lost
DRAFT_OVER_PIXELS = 16_000_000


def decode_bytes(
    data: bytes,
    name: str = "<bytes>",
    limits: DecodeLimits = DEFAULT_LIMITS,
    provenance: bool = False,
    min_short_side: int = 0,
) -> DecodedImage:
    """Decode untrusted image bytes to RGB. ``name`` is only used in error messages. ``provenance`` also
    reads what the original bytes declare (``aigi.provenance``), kept apart from the pixels. ``min_short_side``
    (0: full resolution): a JPEG over ``DRAFT_OVER_PIXELS`` is decoded at the smallest DCT scale (1/2, 1/4, 1/8)
    whose shorter side is still at least this, which saves most of the time and memory of a phone photo when
    the detector looks at a few hundred pixels; ``size`` stays the stored one."""
    if not data:
        raise ImageDecodeError(name, "file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageDecodeError(name, f"file is {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns; ours below is stricter and raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            fmt = img.format or "unknown"
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageDecodeError(name, f"{fmt} image declares an empty size {w}x{h}")
            if w * h > limits.max_pixels:
                raise ImageDecodeError(
                    name,
                    f"{fmt} image is {w}x{h} = {w * h:,} pixels, over the limit of "
                    f"{limits.max_pixels:,} pixels (possible decompression bomb)",
                )
            frames = int(getattr(img, "n_frames", 1) or 1)
            img.seek(0)  # first frame only, whatever the container holds
            if min_short_side and fmt == "JPEG" and w * h > DRAFT_OVER_PIXELS:
                img.draft(img.mode, (min_short_side, min_short_side))
            img.load()
            mode = img.mode
            drafted = img.size
            img = ImageOps.exif_transpose(img)
            rgb = to_rgb(img)
            turned = rgb.size != drafted  # EXIF orientation swapped the axes
            stored = (h, w) if turned else (w, h)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        head = data[:16]
        raise ImageDecodeError(
            name,
            f"not an image in a supported format ({', '.join(ALLOWED_FORMATS)}); content starts with {head!r}",
        ) from None
    except Image.DecompressionBombError as e:
        # Pillow refuses sizes past its own (larger) limit while opening; say it with ours
        import re

        m = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(m.group(1)):,} pixels" if m else "larger than Pillow can open"
        raise ImageDecodeError(
            name, f"image is {size}, over the limit of {limits.max_pixels:,} pixels (possible decompression bomb)"
        ) from None
    except MemoryError:
        raise ImageDecodeError(name, "ran out of memory while decoding") from None
    except Exception as e:  # noqa: BLE001 - decoders raise OSError, SyntaxError, struct.error...
        msg = str(e) or type(e).__name__
        if "truncated" in msg:
            msg = f"image data is truncated or corrupt ({msg})"
        raise ImageDecodeError(name, f"cannot decode image: {msg}") from None
    return DecodedImage(
        image=rgb,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        mode=mode,
        size=stored,
        n_bytes=len(data),
        frames=frames,
        provenance=_provenance(data, rgb) if provenance else None,
    )


def _provenance(data: bytes, rgb: Image.Image) -> list:
    from aigi.provenance import read_provenance

    return read_provenance(data, rgb=rgb)


def from_pixels(image, name: str = "<image>", limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedImage:
    """An image already in memory (a ``PIL.Image`` or an [H, W, 3] / [H, W] uint8 array) as a
    ``DecodedImage``: the same pixel limit and RGB conversion as a file; ``sha256`` is that of its RGB
    pixels with the size (there are no file bytes), ``format`` is ``"PIL"`` or ``"array"``."""
    import numpy as np

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ImageDecodeError(
                name, f"an array image must be uint8 [H, W, 3] (or [H, W], [H, W, 4]); got {image.dtype} {image.shape}"
            )
        fmt, img = "array", Image.fromarray(np.ascontiguousarray(image))
    else:
        fmt, img = "PIL", image
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageDecodeError(name, f"image has an empty size {w}x{h}")
    if w * h > limits.max_pixels:
        raise ImageDecodeError(
            name, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limits.max_pixels:,} pixels"
        )
    mode = img.mode
    rgb = to_rgb(img)
    digest = hashlib.sha256(f"{w}x{h}:".encode() + rgb.tobytes()).hexdigest()
    return DecodedImage(image=rgb, sha256=digest, format=fmt, mode=mode, size=rgb.size, n_bytes=0)


def load_image(
    path: str | os.PathLike, limits: DecodeLimits = DEFAULT_LIMITS, provenance: bool = False, min_short_side: int = 0
) -> DecodedImage:
    """Read and decode one image file; see the module docstring for the guarantees."""
    return decode_bytes(read_bytes(path, limits), str(path), limits, provenance, min_short_side)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, choosing each conversion on purpose.

    - Transparency (RGBA, LA, PA, P with a transparent index) is composited on white,
      not dropped: dropping alpha reveals whatever colour the encoder left under it.
    - 16-bit and 32-bit integer images are scaled by their type's range (Pillow's own
      ``convert`` clips them to 255, turning most 16-bit photos white).
    - Float images in [0, 1] are scaled by 255; any other float range is min-max scaled.
    - CMYK, YCbCr, LAB, HSV, L and 1 go through Pillow's conversions.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        if mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            if lo >= 0.0 and hi <= 1.0:
                scaled = arr * 255.0
            else:
                scaled = (arr - lo) / (hi - lo or 1.0) * 255.0
        elif mode.startswith("I;16"):
            scaled = arr / 257.0  # 65535 -> 255
        else:  # "I": 32-bit signed; the stored range decides
            hi = float(arr.max())
            lo = float(arr.min())
            if lo >= 0 and hi <= 255:
                scaled = arr
            elif lo >= 0 and hi <= 65535:
                scaled = arr / 257.0
            else:
                scaled = (arr - lo) / (hi - lo or 1.0) * 255.0
        gray = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    return img.convert("RGB")


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
