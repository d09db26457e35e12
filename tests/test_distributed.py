"""Data-parallel training: `aigi train` under torchrun (2 processes, gloo on CPU) ends with the same
weights as 1 process for the same seed and global batch size."""

import sys
from pathlib import Path

import pytest
from conftest import run_cli
from safetensors.torch import load_file

CONFIG = """
detector: item
views: 1
val_fraction: 0.25
batch_size: 8
seed: 3
options: {{backbone: {clip}, vocabulary: coco, steps: 25, batch_size: 8, hidden: 16, dropout: 0.0, lr: 0.003}}
"""


@pytest.mark.slow
def test_two_processes_end_with_the_weights_of_one(sample_dir, tmp_path):
    import subprocess

    from aigi.backbones.tiny import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip", image_size=32)
    cfg = tmp_path / "item.yaml"
    cfg.write_text(CONFIG.format(clip=clip))
    one = tmp_path / "one"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", one)
    assert r.returncode == 0, r.stderr
    bindir = Path(sys.executable).parent
    two = tmp_path / "two"
    r = subprocess.run(
        [
            str(bindir / "torchrun"),
            "--standalone",
            "--nproc_per_node",
            "2",
            str(bindir / "aigi"),
            "train",
            "--config",
            str(cfg),
            "--data",
            str(sample_dir / "manifest.csv"),
            "--out",
            str(two),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "with 2 processes" in r.stderr
    a, b = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert set(a) == set(b)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff <= 1e-5
    import json

    fits = [json.loads((d / "training.json").read_text())["fit"] for d in (one, two)]
    assert fits[0]["loss_last"] < fits[0]["loss_first"]  # it trained, and both runs saw the same losses
    assert fits[0]["loss_first"] == pytest.approx(fits[1]["loss_first"], abs=1e-5)
    assert fits[0]["loss_last"] == pytest.approx(fits[1]["loss_last"], abs=1e-5)
