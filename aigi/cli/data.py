"""``aigi data``: build training sets (reconstruction pairs, laundered images, rendered non-photos)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aigi.cli.common import (
    app,
    error_line,
    fail,
    log,
    out_console,
    read_data,
)

data_app = typer.Typer(
    no_args_is_help=True, help="Build training sets: reconstruction pairs, laundered images, rendered non-photos."
)
app.add_typer(data_app, name="data")


@data_app.command("train-reconstructor")
def train_reconstructor(
    data: str = typer.Option(..., "--data", help="Images to learn from; only the real ones are used."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the autoencoder (.safetensors)."),
    steps: int = typer.Option(2000),
    crop: int = typer.Option(96),
    width: int = typer.Option(32, help="Channels of the first layer (doubled twice)."),
    upsample: str = typer.Option(
        "transposed",
        help="The decoder's 2x up-sampling: transposed | nearest | bilinear "
        "(the last two followed by a 3x3 convolution).",
    ),
    seed: int = typer.Option(0, help="Seed of the training run (initialisation, crops)."),
    holdout: float = typer.Option(
        0.0,
        help="Leave out this stratified fraction (seeded like `aigi train`'s validation "
        "split), so evaluation reals are never seen.",
    ),
    split_seed: int = typer.Option(0, help="Seed of the --holdout split (keep it equal to `aigi train`'s seed)."),
):
    """Train the offline reconstruction autoencoder (learned up-sampling) on real photos."""
    from aigi.augment.reconstruct import train_autoencoder
    from aigi.data.splits import validation_split
    from aigi.io import ImageDecodeError, load_image

    manifest = read_data(data)
    if holdout > 0:
        manifest = manifest.subset(validation_split(manifest, holdout, split_seed)[0])
    reals = [s for s in manifest if s.label == 0]
    images = []
    for s in reals:
        try:
            images.append(load_image(s.path).image)
        except ImageDecodeError as e:
            error_line(e)
    try:
        model = train_autoencoder(images, steps=steps, crop=crop, width=width, upsample=upsample, seed=seed, log=log)
    except ValueError as e:
        fail(str(e))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    out_console.print(
        f"saved the reconstruction autoencoder ({len(images)} real images, {steps} steps) to {out}", highlight=False
    )


@data_app.command("build-pixel")
def build_pixel(
    data: str = typer.Option(..., "--data", help="Real images to reconstruct (fakes in the data are ignored)."),
    out: Path = typer.Option(..., "--out", "-o"),
    reconstructor: Optional[list[Path]] = typer.Option(
        None,
        "--reconstructor",
        "-r",
        help="An autoencoder .safetensors from `aigi data train-reconstructor`, or a diffusers AutoencoderKL "
        "directory (SD/SDXL/FLUX VAE); repeat for several. Default: the autoencoders aigi ships.",
    ),
    max_side: int = typer.Option(512, help="Bring larger images down to this many pixels on the longer side first."),
):
    """Pairs of (real image, its reconstruction): same content, same size, same format; only pixel artefacts differ."""
    from aigi.augment.reconstruct import build_pixel_pairs, load_reconstructor, shipped_reconstructors

    manifest = read_data(data)
    try:
        recs = [load_reconstructor(r) for r in (reconstructor or shipped_reconstructors())]
    except (OSError, ValueError) as e:
        fail(str(e))
    m, errors = build_pixel_pairs(manifest, recs, out, max_side, log=log)
    for e in errors:
        error_line(e)
    n_real = sum(1 for s in m if s.label == 0)
    out_console.print(
        f"{n_real} real images and {len(m) - n_real} reconstructions ({len(recs)} reconstructors) "
        f"written to {out} (manifest {out / 'manifest.csv'})",
        highlight=False,
    )


@data_app.command("build-semantic")
def build_semantic(
    data: str = typer.Option(..., "--data", help="Real and fake images to launder."),
    out: Path = typer.Option(..., "--out", "-o"),
    seed: int = typer.Option(0),
):
    """Launder every image (hard downscale, blur, noise, low-quality JPEG) so only semantics remain."""
    from aigi.augment.launder import build_semantic_set

    manifest = read_data(data)
    m, errors = build_semantic_set(manifest, out, seed, log=log)
    for e in errors:
        error_line(e)
    out_console.print(f"{len(m)} laundered images written to {out} (manifest {out / 'manifest.csv'})", highlight=False)


@data_app.command("render")
def render(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the images and their manifest.csv."),
    count: int = typer.Option(
        300,
        help="How many images (every kind in turn: charts, UI, documents, code, graphics, diagrams, slides, figures).",
    ),
    seed: int = typer.Option(1, help="Seed; `aigi train` draws its own with the training seed (`renders:`)."),
):
    """Render real non-photographic images (charts, UI and text screenshots, documents, code, logos and flat
    graphics, diagrams, slides, heatmaps and other data figures): negatives to train on, or a held-out set to
    measure false positives on."""
    from aigi.data.renders import render_set

    if count < 1:
        fail(f"--count must be at least 1, got {count}")
    manifest = render_set(out, count, seed)
    out_console.print(f"{count} rendered images written to {out} (manifest {manifest})", highlight=False)
