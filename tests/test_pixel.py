import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from aigi.config import TrainConfig
from aigi.data.manifest import Manifest, Sample
from aigi.detectors.base import Detector
from aigi.detectors.pixel import PixelConfig, PixelExpert, grid_crops, npr_residual
from aigi.evaluation.metrics import auroc
from aigi.scoring import score_manifest


def test_npr_residual_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]).repeat(1, 3, 1, 1)
    np.testing.assert_array_equal(npr_residual(x)[0, 0].numpy(), [[0.0, 1.0], [2.0, 3.0]])
    up = torch.rand(1, 3, 4, 4).repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest-up-sampled: no residual
    assert npr_residual(up).abs().max() == 0


def test_grid_crops_never_resize():
    arr = np.arange(100 * 120 * 3, dtype=np.uint8).reshape(100, 120, 3)
    c = grid_crops(arr, 32, 5)
    assert c.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(c[0], arr[34:66, 44:76].transpose(2, 0, 1))  # centre crop first, uint8
    assert c.dtype == np.uint8
    assert grid_crops(np.zeros((10, 7, 3), np.uint8), 16, 3).shape == (3, 3, 16, 16)  # small images are padded


def planted(n, seed, size=64):
    """Fakes carry a generator-like trace (2x nearest up-sampling); reals are plain noise of the same spread."""
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for i in range(n):
        if i % 2:
            small = rng.normal(128, 40, (size // 2, size // 2, 3))
            a = small.repeat(2, 0).repeat(2, 1)
        else:
            a = rng.normal(128, 40, (size, size, 3))
        imgs.append(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)))
        labels.append(i % 2)
    return imgs, labels


def write(imgs, labels, d):
    d.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, (im, y) in enumerate(zip(imgs, labels)):
        p = d / f"{i}.png"
        im.save(p)
        samples.append(Sample(str(p), y, "upsampled" if y else "noise"))
    return Manifest(samples, str(d))


def test_pixel_expert_learns_an_upsampling_trace(tmp_path):
    train = write(*planted(40, 0), tmp_path / "train")
    test = write(*planted(20, 1), tmp_path / "test")
    det = PixelExpert(PixelConfig(crop=32, width=8, depth=3, steps=120, batch_size=16, jpeg_p=0.0, inference_crops=3))
    info = det.fit(train, TrainConfig(seed=0))
    assert info["loss_last"] < info["loss_first"] * 0.5
    p, errors = score_manifest(det, test)
    assert errors == [None] * 20 and auroc(test.labels, p) > 0.95
    d = det.save_pretrained(tmp_path / "pixel-det")
    back = Detector.from_pretrained(d)
    p2, _ = score_manifest(back, test)
    np.testing.assert_allclose(p, p2, atol=1e-6)


@pytest.mark.slow
def test_pixel_trains_and_detects_through_the_cli(sample_dir, tmp_path):
    cfg = tmp_path / "pixel.yaml"
    cfg.write_text(
        "detector: pixel\noptions: {crop: 32, width: 8, depth: 3, steps: 20, batch_size: 8}\nval_fraction: 0.25\n"
    )
    out = tmp_path / "pixel"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["detector"] == "pixel"
    r = run_cli("detect", sample_dir / "real" / "coffee.png", "--detector", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)[0]
    assert rec["detector"] == "pixel" and 0 <= rec["p_fake"] <= 1
