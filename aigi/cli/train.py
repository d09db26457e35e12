"""``aigi train``."""

from __future__ import annotations

from pathlib import Path

import typer

from aigi.cli.common import (
    app,
    err_console,
    error_line,
    fail,
    out_console,
    progress_bar,
)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config (see configs/)."),
    data: str = typer.Option(..., "--data", help="Manifest CSV or folder in a known layout."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the trained detector in."),
):
    """Train a detector (and calibrate it on a held-out validation split).

    Under ``torchrun --nproc_per_node N`` the gradient-trained heads (pixel, gamma, item) train
    data-parallel (gloo on CPU, nccl on GPUs); rank 0 calibrates and saves."""
    import logging

    from aigi.config import ConfigError, load_train_config
    from aigi.data import ManifestError, load_data
    from aigi.workflows.train import distributed, recipe_manifest, split_reserved, train_detector

    try:
        cfg = load_train_config(config)
        manifest = load_data(data)
    except (ConfigError, ManifestError) as e:
        fail(str(e))
    steps = logging.getLogger("aigi.train")  # long stages say how far they are (e.g. univfd's adapt epochs)
    if not steps.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        steps.addHandler(handler)
        steps.setLevel(logging.INFO)
    with distributed(cfg.device) as (rank, size):
        # what the run will see, as train_detector draws it (the renders are drawn once, cached)
        reserved, rest = split_reserved(cfg, manifest)
        used = recipe_manifest(cfg, rest)
        if rank == 0:
            recipe = [f"{len(reserved)} reserved for pre-training"] if len(reserved) else []
            if cfg.renders:
                recipe.append(f"{cfg.renders} rendered non-photo reals added")
            if cfg.max_per_generator:
                recipe.append(f"at most {cfg.max_per_generator} of every generator and real source kept")
            err_console.print(
                f"training {cfg.detector} on {used.summary()}"
                + (f" (from {len(manifest)}: {', '.join(recipe)})" if recipe else "")
                + (f" with {size} processes" if size > 1 else ""),
                highlight=False,
            )
        prog, advance = progress_bar(len(used) * len(cfg.train_views()), "features")
        with prog:
            try:
                det = train_detector(cfg, rest, out, advance, reserved=reserved)
            except (ValueError, FileNotFoundError, KeyError) as e:
                fail(f"training failed: {e}")
    if rank != 0:
        return
    for w in det.training_info.get("warnings", []):
        error_line(w, "warning")
    v = det.training_info.get("validation", {}).get("metrics", {})
    msg = f"saved {det.name} to {out}"
    if v:
        msg += f"; validation AUROC {v['auroc']:.3f}, accuracy {v['accuracy']:.3f} ({v['n']} images)"
    out_console.print(msg, highlight=False)
