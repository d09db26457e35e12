"""Renders of drawn graphics: logos and flat graphics, diagrams, slides, data figures with image-like
content (heatmaps, contours, surfaces)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from aigi.data.renders.drawing import colour, figure_image, font, pyplot, sentence, word
from aigi.data.renders.screens import render_chart


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
        text = word(rng).title() if rng.random() < 0.6 else word(rng).upper()
        f = font(rng, max(size, 8))
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
    bg, ink = colour(rng, not dark), colour(rng, dark)
    fills = [tuple(int(v) for v in rng.integers(120, 256, 3)) for _ in range(int(rng.integers(1, 5)))]
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    size = int(rng.integers(11, 22))

    def draw(d: ImageDraw.ImageDraw, ss: int) -> None:
        f = font(rng, size * ss)
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
                label = word(rng)[:14]
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
        img = Image.new("RGB", (w, h), colour(rng, True))
        fg = colour(rng, False)
    elif theme == 1:
        img = Image.new("RGB", (w, h), colour(rng, False))
        fg = colour(rng, True)
    else:
        img = _gradient(w, h, colour(rng, False), accent, float(rng.uniform(0, np.pi)))
        fg = (255, 255, 255)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        band = int(h * rng.uniform(0.12, 0.22))
        d.rectangle([0, 0, w, band], fill=accent)
    title = font(rng, int(h * rng.uniform(0.06, 0.1)))
    d.text((int(w * 0.06), int(h * 0.05)), sentence(rng, 2, 6), font=title, fill=fg)
    body = font(rng, int(h * rng.uniform(0.035, 0.05)))
    text_w = w * (0.5 if rng.random() < 0.4 else 0.9)
    y = int(h * 0.28)
    while y < h * 0.88:
        d.ellipse([w * 0.07, y + h * 0.012, w * 0.07 + h * 0.018, y + h * 0.03], fill=accent)
        line = sentence(rng, 2, 9)
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
    plt = pyplot()

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
    ax.set_title(sentence(rng, 2, 5))
    return figure_image(fig)
