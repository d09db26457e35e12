"""Renders of screens and pages: charts, UI screenshots, documents, code."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from aigi.data.renders.drawing import colour, figure_image, font, pyplot, sentence, word


def render_chart(rng: np.random.Generator) -> Image.Image:
    plt = pyplot()

    styles = ["default", "ggplot", "bmh", "seaborn-v0_8-whitegrid", "fivethirtyeight", "grayscale", "dark_background"]
    w, h = float(rng.uniform(4, 10)), float(rng.uniform(3, 7))
    with plt.style.context(str(rng.choice(styles))):
        fig, ax = plt.subplots(figsize=(w, h), dpi=int(rng.integers(70, 140)))
        kind = rng.integers(0, 5)
        n = int(rng.integers(3, 12))
        labels = [word(rng)[:10] for _ in range(n)]
        if kind == 0:
            ax.bar(labels, rng.gamma(2, 10, n))
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                ax.plot(np.cumsum(rng.normal(0, 1, 50)), label=word(rng))
            ax.legend()
        elif kind == 2:
            ax.scatter(rng.normal(size=200), rng.normal(size=200), s=8, c=rng.random(200))
        elif kind == 3:
            ax.pie(rng.gamma(2, 1, min(n, 6)), labels=labels[: min(n, 6)], autopct="%1.0f%%")
        else:
            ax.hist(rng.normal(size=500), bins=int(rng.integers(10, 40)))
        ax.set_title(sentence(rng, 2, 6))
        if kind != 3:
            ax.set_xlabel(word(rng))
            ax.set_ylabel(word(rng))
        return figure_image(fig)


def render_ui(rng: np.random.Generator) -> Image.Image:
    """An application or web page: a title bar, a sidebar, buttons, fields and lists of text."""
    w, h = int(rng.integers(480, 1600)), int(rng.integers(360, 1000))
    dark = rng.random() < 0.3
    bg = colour(rng, not dark)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    fg = colour(rng, dark)
    accent = tuple(int(v) for v in rng.integers(0, 256, 3))
    bar = int(rng.integers(28, 64))
    d.rectangle([0, 0, w, bar], fill=accent)
    d.text((12, bar // 4), sentence(rng, 1, 4), font=font(rng, int(bar * 0.45)), fill=(255, 255, 255))
    side = int(rng.integers(0, w // 4)) if rng.random() < 0.6 else 0
    if side:
        d.rectangle([0, bar, side, h], fill=colour(rng, not dark))
        f = font(rng, int(rng.integers(11, 18)))
        for k, y in enumerate(range(bar + 16, h - 20, int(rng.integers(24, 40)))):
            d.text((10, y), word(rng).title(), font=f, fill=fg if k else accent)
    y = bar + 20
    size = int(rng.integers(11, 20))
    f = font(rng, size)
    while y < h - 40:
        x = side + 20
        r = rng.random()
        if r < 0.2:  # a row of buttons
            for _ in range(int(rng.integers(1, 4))):
                label = word(rng).title()
                bw = int(d.textlength(label, font=f)) + 24
                d.rounded_rectangle([x, y, x + bw, y + size + 14], radius=int(rng.integers(0, 10)), fill=accent)
                d.text((x + 12, y + 6), label, font=f, fill=(255, 255, 255))
                x += bw + 12
            y += size + 30
        elif r < 0.35:  # an input field
            d.text((x, y), word(rng).title() + ":", font=f, fill=fg)
            d.rectangle([x, y + size + 6, min(w - 20, x + int(rng.integers(150, 500))), y + 2 * size + 18], outline=fg)
            y += 2 * size + 34
        else:  # a line of text, sometimes with an icon-like square
            if rng.random() < 0.3:
                d.ellipse([x, y, x + size, y + size], fill=accent)
                x += size + 8
            d.text((x, y), sentence(rng, 3, 14), font=f, fill=fg)
            y += int(size * rng.uniform(1.5, 2.4))
    return img


def render_document(rng: np.random.Generator) -> Image.Image:
    """A page of a document or a scan of one: headings, justified paragraphs, sometimes a table."""
    w = int(rng.integers(500, 1300))
    h = int(w * rng.uniform(1.2, 1.5))
    paper = tuple(int(v) for v in rng.integers(235, 256, 3))
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    ink = colour(rng, False)
    margin = int(w * rng.uniform(0.06, 0.14))
    size = int(w * rng.uniform(0.014, 0.024))
    body, head = font(rng, size), font(rng, int(size * 1.6))
    y = margin
    while y < h - margin - 2 * size:
        r = rng.random()
        if r < 0.15:
            d.text((margin, y), sentence(rng, 2, 6), font=head, fill=ink)
            y += int(size * 2.6)
        elif r < 0.25:  # a small table
            cols, rows = int(rng.integers(2, 6)), int(rng.integers(2, 7))
            cw = (w - 2 * margin) // cols
            for i in range(rows):
                for j in range(cols):
                    box = [margin + j * cw, y, margin + (j + 1) * cw, y + int(size * 1.8)]
                    d.rectangle(box, outline=ink)
                    cell = word(rng) if i == 0 else f"{rng.gamma(2, 50):.1f}"
                    d.text((box[0] + 4, y + 3), cell, font=body, fill=ink)
                y += int(size * 1.8)
            y += size
        else:
            for _ in range(int(rng.integers(2, 8))):
                line = ""
                while d.textlength(line, font=body) < w - 2 * margin - 8 * size:
                    line += word(rng) + " "
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
    img = Image.new("RGB", (w, h), colour(rng, not dark))
    d = ImageDraw.Draw(img)
    size = int(rng.integers(11, 19))
    f = font(rng, size, mono=True)
    palette = [colour(rng, dark)] + [tuple(int(v) for v in rng.integers(60, 256, 3)) for _ in range(3)]
    y, n = 8, 1
    while y < h - size:
        x = 8
        if rng.random() < 0.5:
            d.text((x, y), f"{n:>3}", font=f, fill=palette[0])
            x += 5 * size
        indent = int(rng.integers(0, 4)) * 4
        tokens = [word(rng) for _ in range(int(rng.integers(1, 7)))]
        line = " " * indent + str(rng.choice(["", "def ", "if ", "return ", "$ ", "let ", "# "])) + "_".join(tokens[:2])
        line += "(" + ", ".join(tokens[2:]) + ")" if len(tokens) > 2 else ""
        d.text((x, y), line, font=f, fill=palette[int(rng.integers(0, len(palette)))])
        y += int(size * 1.4)
        n += 1
    return img
