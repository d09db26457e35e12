"""What every render draws with: the fonts matplotlib ships, made-up words and sentences, colours, and
matplotlib figures as images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

SYLLABLES = "ka lo mi ne ta ri su ve an or el is un de ra po li ma te co ber han sto ling mar tec ion ent".split()
WORDS = (
    "the of and report total users revenue growth account settings profile message search results update "
    "download share open close save cancel delete edit view help file system data value time date name "
    "status active pending error warning info network server request response quarter annual summary "
    "table figure section chapter page note reference method analysis sample average median percent "
    "customer order invoice payment amount balance project team meeting schedule agenda notes draft"
).split()


def font_files() -> list[str]:
    """The TrueType fonts matplotlib ships (sans, serif, mono; regular, bold, italic). The "Display"
    cuts hold only a handful of glyphs (text set in them comes out blank), so they are left out."""
    import matplotlib

    d = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(str(p) for p in d.glob("DejaVu*.ttf") if "Display" not in p.name)


def word(rng: np.random.Generator) -> str:
    if rng.random() < 0.7:
        return str(rng.choice(WORDS))
    return "".join(rng.choice(SYLLABLES, size=int(rng.integers(1, 4))))


def sentence(rng: np.random.Generator, lo: int = 3, hi: int = 12) -> str:
    s = " ".join(word(rng) for _ in range(int(rng.integers(lo, hi + 1))))
    return s[:1].upper() + s[1:]


def colour(rng: np.random.Generator, light: bool) -> tuple[int, int, int]:
    base = rng.integers(200, 256, 3) if light else rng.integers(0, 90, 3)
    return tuple(int(v) for v in base)  # type: ignore[return-value]


def font(rng: np.random.Generator, size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    fonts = [f for f in font_files() if ("Mono" in f) == mono] or font_files()
    return ImageFont.truetype(str(rng.choice(fonts)), size)


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_image(fig) -> Image.Image:
    """A matplotlib figure rasterised as the PNG it would be saved as (then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    pyplot().close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
