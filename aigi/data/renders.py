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
from PIL import Image, ImageDraw, ImageFont

VERSION = 2  # 1: four kinds, blank text in the "Display" fonts; 2: eight kinds, fonts fixed
KINDS = ("chart", "ui", "document", "code", "graphic", "diagram", "slide", "field")
_SYLLABLES = "ka lo mi ne ta ri su ve an or el is un de ra po li ma te co ber han sto ling mar tec ion ent".split()
_WORDS = (
    "the of and report total users revenue growth account settings profile message search results update "
    "download share open close save cancel delete edit view help file system data value time date name "
    "status active pending error warning info network server request response quarter annual summary "
    "table figure section chapter page note reference method analysis sample average median percent "
    "customer order invoice payment amount balance project team meeting schedule agenda notes draft"
).split()


def _fonts() -> list[str]:
    """The TrueType fonts matplotlib ships (sans, serif, mono; regular, bold, italic). The "Display"
    cuts hold only a handful of glyphs (text set in them comes out blank), so they are left out."""
    import matplotlib

    d = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(str(p) for p in d.glob("DejaVu*.ttf") if "Display" not in p.name)


def _word(rng: np.random.Generator) -> str:
    if rng.random() < 0.7:
        return str(rng.choice(_WORDS))
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(1, 4))))


def _sentence(rng: np.random.Generator, lo: int = 3, hi: int = 12) -> str:
    s = " ".join(_word(rng) for _ in range(int(rng.integers(lo, hi + 1))))
    return s[:1].upper() + s[1:]


def _colour(rng: np.random.Generator, light: bool) -> tuple[int, int, int]:
    base = rng.integers(200, 256, 3) if light else rng.integers(0, 90, 3)
    return tuple(int(v) for v in base)  # type: ignore[return-value]


def _font(rng: np.random.Generator, size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    fonts = [f for f in _fonts() if ("Mono" in f) == mono] or _fonts()
    return ImageFont.truetype(str(rng.choice(fonts)), size)


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_image(fig) -> Image.Image:
    """A matplotlib figure rasterised as the PNG it would be saved as (then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def render_chart(rng: np.random.Generator) -> Image.Image:
    plt = _pyplot()

    styles = ["default", "ggplot", "bmh", "seaborn-v0_8-whitegrid", "fivethirtyeight", "grayscale", "dark_background"]
    w, h = float(rng.uniform(4, 10)), float(rng.uniform(3, 7))
    with plt.style.context(str(rng.choice(styles))):
        fig, ax = plt.subplots(figsize=(w, h), dpi=int(rng.integers(70, 140)))
        kind = rng.integers(0, 5)
        n = int(rng.integers(3, 12))
        labels = [_word(rng)[:10] for _ in range(n)]
        if kind == 0:
            ax.bar(labels, rng.gamma(2, 10, n))
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                ax.plot(np.cumsum(rng.normal(0, 1, 50)), label=_word(rng))
            ax.legend()
        elif kind == 2:
            ax.scatter(rng.normal(size=200), rng.normal(size=200), s=8, c=rng.random(200))
        elif kind == 3:
            ax.pie(rng.gamma(2, 1, min(n, 6)), labels=labels[: min(n, 6)], autopct="%1.0f%%")
        else:
            ax.hist(rng.normal(size=500), bins=int(rng.integers(10, 40)))
        ax.set_title(_sentence(rng, 2, 6))
        if kind != 3:
            ax.set_xlabel(_word(rng))
            ax.set_ylabel(_word(rng))
        return _figure_image(fig)


def render_ui(rng: np.random.Generator) -> Image.Image:
    """An application or web page: a title bar, a sidebar, buttons, fields and lists of text."""
    w, h = int(rng.integers(480, 1600)), int(rng.integers(360, 1000))
    dark = rng.random() < 0.3
    bg = _colour(rng, not dark)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    fg = _colour(rng, dark)
    accent = tuple(int(v) for v in rng.integers(0, 256, 3))
    bar = int(rng.integers(28, 64))
    d.rectangle([0, 0, w, bar], fill=accent)
    d.text((12, bar // 4), _sentence(rng, 1, 4), font=_font(rng, int(bar * 0.45)), fill=(255, 255, 255))
    side = int(rng.integers(0, w // 4)) if rng.random() < 0.6 else 0
    if side:
        d.rectangle([0, bar, side, h], fill=_colour(rng, not dark))
        f = _font(rng, int(rng.integers(11, 18)))
        for k, y in enumerate(range(bar + 16, h - 20, int(rng.integers(24, 40)))):
            d.text((10, y), _word(rng).title(), font=f, fill=fg if k else accent)
    y = bar + 20
    size = int(rng.integers(11, 20))
    f = _font(rng, size)
    while y < h - 40:
        x = side + 20
        r = rng.random()
        if r < 0.2:  # a row of buttons
            for _ in range(int(rng.integers(1, 4))):
                label = _word(rng).title()
                bw = int(d.textlength(label, font=f)) + 24
                d.rounded_rectangle([x, y, x + bw, y + size + 14], radius=int(rng.integers(0, 10)), fill=accent)
                d.text((x + 12, y + 6), label, font=f, fill=(255, 255, 255))
                x += bw + 12
            y += size + 30
        elif r < 0.35:  # an input field
            d.text((x, y), _word(rng).title() + ":", font=f, fill=fg)
            d.rectangle([x, y + size + 6, min(w - 20, x + int(rng.integers(150, 500))), y + 2 * size + 18], outline=fg)
            y += 2 * size + 34
        else:  # a line of text, sometimes with an icon-like square
            if rng.random() < 0.3:
                d.ellipse([x, y, x + size, y + size], fill=accent)
                x += size + 8
            d.text((x, y), _sentence(rng, 3, 14), font=f, fill=fg)
            y += int(size * rng.uniform(1.5, 2.4))
    return img


def render_document(rng: np.random.Generator) -> Image.Image:
    """A page of a document or a scan of one: headings, justified paragraphs, sometimes a table."""
    w = int(rng.integers(500, 1300))
    h = int(w * rng.uniform(1.2, 1.5))
    paper = tuple(int(v) for v in rng.integers(235, 256, 3))
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    ink = _colour(rng, False)
    margin = int(w * rng.uniform(0.06, 0.14))
    size = int(w * rng.uniform(0.014, 0.024))
    body, head = _font(rng, size), _font(rng, int(size * 1.6))
    y = margin
    while y < h - margin - 2 * size:
        r = rng.random()
        if r < 0.15:
            d.text((margin, y), _sentence(rng, 2, 6), font=head, fill=ink)
            y += int(size * 2.6)
        elif r < 0.25:  # a small table
            cols, rows = int(rng.integers(2, 6)), int(rng.integers(2, 7))
            cw = (w - 2 * margin) // cols
            for i in range(rows):
                for j in range(cols):
                    box = [margin + j * cw, y, margin + (j + 1) * cw, y + int(size * 1.8)]
                    d.rectangle(box, outline=ink)
                    cell = _word(rng) if i == 0 else f"{rng.gamma(2, 50):.1f}"
                    d.text((box[0] + 4, y + 3), cell, font=body, fill=ink)
                y += int(size * 1.8)
            y += size
        else:
            for _ in range(int(rng.integers(2, 8))):
                line = ""
                while d.textlength(line, font=body) < w - 2 * margin - 8 * size:
                    line += _word(rng) + " "
                d.text((margin, y), line.strip(), font=body, fill=ink)
                y += int(size * 1.45)
                if y > h - margin - 2 * size:
                    break
            y += size
    if rng.random() < 0.3:  # a scan: slight rotation, blur and uneven light
        img = img.rotate(float(rng.uniform(-1.5, 1.5)), fillcolor=paper, resample=Image.Resampling.BICUBIC)
        shade = np.linspace(float(rng.uniform(0.85, 1.0)), 1.0, h)[:, None, None]
        img = Image.fromarray((np.asarray(img) * shade).astype(np.uint8))
    return img


def render_code(rng: np.random.Generator) -> Image.Image:
    """A terminal or code editor screenshot: monospace text, light or dark theme, some colour."""
    w, h = int(rng.integers(480, 1400)), int(rng.integers(300, 900))
    dark = rng.random() < 0.6
    img = Image.new("RGB", (w, h), _colour(rng, not dark))
    d = ImageDraw.Draw(img)
    size = int(rng.integers(11, 19))
    f = _font(rng, size, mono=True)
    palette = [_colour(rng, dark)] + [tuple(int(v) for v in rng.integers(60, 256, 3)) for _ in range(3)]
    y, n = 8, 1
    while y < h - size:
        x = 8
        if rng.random() < 0.5:
            d.text((x, y), f"{n:>3}", font=f, fill=palette[0])
            x += 5 * size
        indent = int(rng.integers(0, 4)) * 4
        tokens = [_word(rng) for _ in range(int(rng.integers(1, 7)))]
        line = " " * indent + str(rng.choice(["", "def ", "if ", "return ", "$ ", "let ", "# "])) + "_".join(tokens[:2])
        line += "(" + ", ".join(tokens[2:]) + ")" if len(tokens) > 2 else ""
        d.text((x, y), line, font=f, fill=palette[int(rng.integers(0, len(palette)))])
        y += int(size * 1.4)
        n += 1
    return img


def _supersampled(w: int, h: int, bg, draw: Callable[[ImageDraw.ImageDraw, int], None], ss: int = 3) -> Image.Image:
    """Draw at ``ss`` times the size and downsample: anti-aliased edges, as vector graphics are rasterised."""
    big = Image.new("RGB", (w * ss, h * ss), bg)
    draw(ImageDraw.Draw(big), ss)
    return big.resize((w, h), Image.Resampling.LANCZOS)


def _gradient(w: int, h: int, a, b, angle: float) -> Image.Image:
    """A linear gradient from colour ``a`` to ``b`` at ``angle`` radians."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx / max(w - 1, 1) * np.cos(angle) + yy / max(h - 1, 1) * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    arr = np.asarray(a, np.float32) * (1 - t[..., None]) + np.asarray(b, np.float32) * t[..., None]
    return Image.fromarray(arr.round().astype(np.uint8))


def render_graphic(rng: np.random.Generator) -> Image.Image:
    """A logo, icon set, badge or flat vector illustration: filled shapes (some with gradients and
    transparency), outlines, a word mark; solid, gradient or transparent-looking white background."""
    w, h = int(rng.integers(128, 900)), int(rng.integers(128, 700))
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(int(rng.integers(2, 6)))]
    r = rng.random()
    if r < 0.4:
        img = Image.new("RGB", (w, h), (255, 255, 255))
    elif r < 0.7:
        img = Image.new("RGB", (w, h), palette[0])
    else:
        img = _gradient(w, h, palette[0], palette[-1], float(rng.uniform(0, np.pi)))
    ss = 3
    layer = Image.new("RGBA", (w * ss, h * ss), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(2, 12))):
        c = palette[int(rng.integers(0, len(palette)))]
        fill = (*c, int(rng.choice([255, 255, 200, 140])))
        cx, cy = rng.uniform(0, w * ss), rng.uniform(0, h * ss)
        s = rng.uniform(0.05, 0.45) * min(w, h) * ss
        shape = rng.integers(0, 5)
        box = [cx - s, cy - s * rng.uniform(0.5, 1.0), cx + s, cy + s * rng.uniform(0.5, 1.0)]
        outline = (*palette[int(rng.integers(0, len(palette)))], 255) if rng.random() < 0.3 else None
        width = int(rng.integers(1, 6)) * ss
        if shape == 0:
            d.ellipse(box, fill=fill, outline=outline, width=width)
        elif shape == 1:
            d.rounded_rectangle(box, radius=int(s * rng.uniform(0, 0.5)), fill=fill, outline=outline, width=width)
        elif shape == 2:  # a regular polygon or a star
            k = int(rng.integers(3, 9))
            star = rng.random() < 0.4
            pts = []
            for j in range(k * (2 if star else 1)):
                rad = s * (0.45 if star and j % 2 else 1.0)
                a = 2 * np.pi * j / (k * (2 if star else 1)) + rng.uniform(0, 0.2)
                pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
            d.polygon(pts, fill=fill, outline=outline)
        elif shape == 3:
            d.pieslice(box, float(rng.uniform(0, 360)), float(rng.uniform(0, 360)), fill=fill)
        else:  # strokes: lines and arcs
            for _ in range(int(rng.integers(1, 5))):
                d.line([tuple(rng.uniform(0, [w * ss, h * ss])) for _ in range(2)], fill=fill, width=width * 2)
    if rng.random() < 0.7:  # a word mark
        size = int(rng.uniform(0.08, 0.25) * min(w, h) * ss)
        text = _word(rng).title() if rng.random() < 0.6 else _word(rng).upper()
        f = _font(rng, max(size, 8))
        tw = d.textlength(text, font=f)
        x, y = rng.uniform(0, max(1.0, w * ss - tw)), rng.uniform(0, max(1.0, h * ss - size * 1.3))
        d.text((x, y), text, font=f, fill=(*palette[int(rng.integers(0, len(palette)))], 255))
    layer = layer.resize((w, h), Image.Resampling.LANCZOS)
    img.paste(layer, (0, 0), layer)
    return img


def render_diagram(rng: np.random.Generator) -> Image.Image:
    """A flowchart or architecture diagram: labelled boxes, rounded or not, joined by arrows."""
    w, h = int(rng.integers(400, 1400)), int(rng.integers(300, 1000))
    dark = rng.random() < 0.15
    bg, ink = _colour(rng, not dark), _colour(rng, dark)
    fills = [tuple(int(v) for v in rng.integers(120, 256, 3)) for _ in range(int(rng.integers(1, 5)))]
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    size = int(rng.integers(11, 22))

    def draw(d: ImageDraw.ImageDraw, ss: int) -> None:
        f = _font(rng, size * ss)
        cw, ch = w * ss / cols, h * ss / rows
        boxes = []
        for i in range(rows):
            for j in range(cols):
                if rng.random() < 0.25:
                    continue
                bw, bh = cw * rng.uniform(0.45, 0.75), ch * rng.uniform(0.3, 0.55)
                x0, y0 = j * cw + (cw - bw) / 2, i * ch + (ch - bh) / 2
                box = [x0, y0, x0 + bw, y0 + bh]
                fill = fills[int(rng.integers(0, len(fills)))] if rng.random() < 0.7 else bg
                if rng.random() < 0.2:
                    d.ellipse(box, fill=fill, outline=ink, width=2 * ss)
                else:
                    radius = int(rng.choice([0, 6, 14])) * ss
                    d.rounded_rectangle(box, radius=radius, fill=fill, outline=ink, width=2 * ss)
                label = _word(rng)[:14]
                d.text((x0 + 8 * ss, y0 + bh / 2 - size * ss / 2), label, font=f, fill=ink)
                boxes.append(box)
        order = rng.permutation(len(boxes))
        for a, b in zip(order[:-1], order[1:]):
            if rng.random() < 0.3:
                continue
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            p, q = np.array([(ax0 + ax1) / 2, (ay0 + ay1) / 2]), np.array([(bx0 + bx1) / 2, (by0 + by1) / 2])
            v = q - p
            n = v / max(float(np.linalg.norm(v)), 1.0)
            start, end = p + n * min(ax1 - ax0, ay1 - ay0) / 2, q - n * min(bx1 - bx0, by1 - by0) / 2
            d.line([tuple(start), tuple(end)], fill=ink, width=2 * ss)
            side = np.array([-n[1], n[0]]) * 5 * ss
            tip = end - n * 12 * ss
            d.polygon([tuple(end), tuple(tip + side), tuple(tip - side)], fill=ink)

    return _supersampled(w, h, bg, draw, ss=2)


def render_slide(rng: np.random.Generator) -> Image.Image:
    """A presentation slide: a title, bullet points, coloured bands or shapes, sometimes a chart inset."""
    w = int(rng.integers(640, 1600))
    h = int(w * float(rng.choice([9 / 16, 3 / 4])))
    theme = rng.integers(0, 3)
    accent = tuple(int(v) for v in rng.integers(0, 256, 3))
    if theme == 0:
        img = Image.new("RGB", (w, h), _colour(rng, True))
        fg = _colour(rng, False)
    elif theme == 1:
        img = Image.new("RGB", (w, h), _colour(rng, False))
        fg = _colour(rng, True)
    else:
        img = _gradient(w, h, _colour(rng, False), accent, float(rng.uniform(0, np.pi)))
        fg = (255, 255, 255)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        band = int(h * rng.uniform(0.12, 0.22))
        d.rectangle([0, 0, w, band], fill=accent)
    title = _font(rng, int(h * rng.uniform(0.06, 0.1)))
    d.text((int(w * 0.06), int(h * 0.05)), _sentence(rng, 2, 6), font=title, fill=fg)
    body = _font(rng, int(h * rng.uniform(0.035, 0.05)))
    text_w = w * (0.5 if rng.random() < 0.4 else 0.9)
    y = int(h * 0.28)
    while y < h * 0.88:
        d.ellipse([w * 0.07, y + h * 0.012, w * 0.07 + h * 0.018, y + h * 0.03], fill=accent)
        line = _sentence(rng, 2, 9)
        while d.textlength(line, font=body) > text_w - w * 0.1 and " " in line:
            line = line.rsplit(" ", 1)[0]
        d.text((int(w * 0.1), y), line, font=body, fill=fg)
        y += int(h * rng.uniform(0.07, 0.11))
    if text_w < w * 0.6:  # the right half: a chart or a block of shapes
        inset = render_chart(rng) if rng.random() < 0.5 else render_graphic(rng)
        iw, ih = int(w * 0.4), int(h * 0.55)
        inset.thumbnail((iw, ih))
        img.paste(inset, (int(w * 0.55), int(h * 0.3)))
    return img


def render_field(rng: np.random.Generator) -> Image.Image:
    """A scientific or data figure with image-like content: a heatmap, contour map, 3-D surface or a
    false-colour field (smooth noise through a colour map), with axes and a colour bar."""
    plt = _pyplot()

    n = int(rng.integers(16, 200))
    # smooth random field: white noise, low-passed in the Fourier domain
    spec = np.fft.fft2(rng.normal(size=(n, n)))
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    field = np.real(np.fft.ifft2(spec / (1e-3 + (fx**2 + fy**2)) ** float(rng.uniform(0.6, 1.4))))
    cmap = str(rng.choice(["viridis", "magma", "coolwarm", "jet", "gray", "terrain", "RdBu", "plasma", "cividis"]))
    fig = plt.figure(figsize=(float(rng.uniform(4, 9)), float(rng.uniform(3, 7))), dpi=int(rng.integers(70, 140)))
    kind = rng.integers(0, 4)
    if kind == 3:
        ax = fig.add_subplot(projection="3d")
        yy, xx = np.mgrid[0:n, 0:n]
        ax.plot_surface(xx, yy, field, cmap=cmap, linewidth=0, antialiased=bool(rng.random() < 0.7))
    else:
        ax = fig.add_subplot()
        if kind == 0:
            im = ax.imshow(field, cmap=cmap, interpolation=str(rng.choice(["nearest", "bilinear"])))
        elif kind == 1:
            im = ax.contourf(field, levels=int(rng.integers(5, 25)), cmap=cmap)
            if rng.random() < 0.5:
                ax.contour(field, levels=8, colors="k", linewidths=0.5)
        else:  # a matrix with its values written in
            k = int(rng.integers(3, 12))
            m = rng.random((k, k))
            im = ax.imshow(m, cmap=cmap)
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax)
    ax.set_title(_sentence(rng, 2, 5))
    return _figure_image(fig)


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
