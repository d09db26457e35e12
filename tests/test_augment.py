"""AlignGemini's data builders and fusion math."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from aigi.augment.launder import Laundering, build_semantic_set, launder
from aigi.augment.reconstruct import (
    UPSAMPLING,
    AutoencoderReconstructor,
    DiffusersVAEReconstructor,
    UpsamplingAutoencoder,
    build_pixel_pairs,
    shipped_reconstructors,
    train_autoencoder,
)
from aigi.data import load_data
from aigi.evaluation.fusion import fired_branch, fit_logistic_fusion, fit_or_thresholds, or_fire


def photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return Image.fromarray(np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("upsample", UPSAMPLING)
def test_autoencoder_training_lowers_the_loss_and_round_trips(tmp_path, upsample):
    imgs = [photo(64, 48, s) for s in range(4)]
    x = torch.from_numpy(np.asarray(imgs[0], np.float32) / 255).permute(2, 0, 1)[None][..., :32, :32]
    torch.manual_seed(0)
    before = (UpsamplingAutoencoder(8, upsample)(x) - x).abs().mean().item()
    model = train_autoencoder(imgs, steps=80, crop=32, batch_size=4, width=8, upsample=upsample)
    after = (model(x) - x).abs().mean().item()
    assert after < before * 0.85  # measured (transposed): 0.252 -> 0.194
    model.save(tmp_path / "ae.safetensors")
    back = UpsamplingAutoencoder.load(tmp_path / "ae.safetensors")
    assert back.upsample == upsample and back.width == 8
    torch.testing.assert_close(back(x), model(x))


def test_unknown_upsampling_is_named():
    with pytest.raises(ValueError, match="unknown up-sampling 'pixelshuffle'"):
        UpsamplingAutoencoder(8, "pixelshuffle")


@pytest.mark.parametrize("size", [(37, 29), (64, 64), (1, 9)])
def test_reconstructions_are_pixel_aligned(size):
    rec = AutoencoderReconstructor(UpsamplingAutoencoder(8))
    img = photo(*size)
    assert rec.reconstruct(img).size == img.size


def test_diffusers_autoencoderkl_path_on_a_tiny_random_vae(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
    )
    vae.save_pretrained(tmp_path / "vae")  # loaded from a directory, as a user's SD/FLUX VAE would be
    rec = DiffusersVAEReconstructor(str(tmp_path / "vae"))
    assert rec.stride == 2
    img = photo(37, 29)
    out = rec.reconstruct(img)
    assert out.size == img.size and out.mode == "RGB"


def test_pixel_pairs_are_aligned_and_share_a_format(sample_dir, tmp_path):
    m = load_data(sample_dir / "manifest.csv")
    recs = [
        AutoencoderReconstructor(
            train_autoencoder(
                [photo(64, 64, s) for s in range(2)], steps=20, crop=32, batch_size=2, width=8, upsample=u
            )
        )
        for u in ("transposed", "nearest")
    ]
    pairs, errors = build_pixel_pairs(m, recs, tmp_path / "pixel", max_side=96)
    assert errors == [] and len(pairs) == 24  # 8 reals, each with 2 reconstructions; the DCGAN fakes are not used
    reals = {Path(s.path).stem: s for s in pairs if s.label == 0}
    fakes = [s for s in pairs if s.label == 1]
    assert len(reals) == 8 and len(fakes) == 16
    for f in fakes:
        r = reals[Path(f.path).stem.split("-")[0]]  # fake/<i>-<r>.png pairs with real/<i>.png
        a, b = Image.open(r.path), Image.open(f.path)
        assert a.format == b.format == "PNG" and a.size == b.size and max(a.size) <= 96
        assert not np.array_equal(np.asarray(a), np.asarray(b))
    assert load_data(tmp_path / "pixel" / "manifest.csv").generators(label=1) == [
        "reconstruction:autoencoder-nearest-w8",
        "reconstruction:autoencoder-transposed-w8",
    ]


def test_shipped_reconstructors_cover_several_upsampling_operators():
    ops = {UpsamplingAutoencoder.load(p).upsample for p in shipped_reconstructors()}
    assert ops == set(UPSAMPLING)


def test_laundering_is_seeded_and_uniform(sample_dir, tmp_path):
    img = Image.open(sample_dir / "real" / "astronaut.png")
    a = launder(img, np.random.default_rng(1))
    assert a.size == (224, 224)
    assert np.array_equal(np.asarray(a), np.asarray(launder(img, np.random.default_rng(1))))
    m, errors = build_semantic_set(
        load_data(sample_dir / "manifest.csv"), tmp_path / "sem", seed=0, recipe=Laundering(size=64)
    )
    assert errors == [] and len(m) == 16 and sorted(set(m.labels)) == [0, 1]
    assert {Image.open(s.path).size for s in m} == {(64, 64)}


def test_or_rule_thresholds_by_hand():
    # 10 reals; budget 20% -> at most 2 reals may be flagged by either branch
    ra = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    rb = np.array([0.95, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    fit = fit_or_thresholds(ra, rb, budget=0.2)
    assert or_fire(ra, rb, fit["ta"], fit["tb"]).sum() <= 2
    # granting branch a nothing (ta above every real) leaves branch b the 2 flags: tb just above its 3rd score
    zero = fit_or_thresholds(ra, rb, budget=0.2, steps=1)
    assert zero["ta"] > 0.95 and 0.8 < zero["tb"] <= 0.8 + 1e-12 and zero["fused_fpr"] == 0.2
    assert fired_branch(0.99, 0.1, 0.9, 0.85) == "semantic" and fired_branch(0.1, 0.99, 0.9, 0.85) == "pixel"
    assert fired_branch(0.99, 0.99, 0.9, 0.85) == "both" and fired_branch(0.1, 0.1, 0.9, 0.85) == "none"


def test_fused_fpr_budget_holds_on_held_out_reals_and_fakes_choose_the_split():
    rng = np.random.default_rng(0)
    val_a, val_b = rng.beta(2, 5, 3000), rng.beta(2, 5, 3000)
    fake_a, fake_b = rng.beta(5, 2, 500), rng.beta(2, 5, 500)  # only branch a separates
    fit = fit_or_thresholds(val_a, val_b, budget=0.05, fake_a=fake_a, fake_b=fake_b)
    assert fit["fused_fpr"] <= 0.05
    assert fit["alpha"] == pytest.approx(0.05)  # all of the budget goes to the useful branch
    test_a, test_b = rng.beta(2, 5, 30000), rng.beta(2, 5, 30000)
    assert or_fire(test_a, test_b, fit["ta"], fit["tb"]).mean() < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 3000)


def test_logistic_fusion_weights_the_informative_branch():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    a = 1 / (1 + np.exp(-(2.0 * (y * 2 - 1) + rng.normal(0, 1, y.size))))
    b = rng.uniform(0.01, 0.99, y.size)
    w = fit_logistic_fusion(a, b, y)
    assert w["w_a"] > 0.5 and abs(w["w_b"]) < 0.1


@pytest.mark.slow
def test_data_commands(sample_dir, tmp_path):
    ae = tmp_path / "ae.safetensors"
    r = run_cli(
        "data",
        "train-reconstructor",
        "--data",
        sample_dir / "manifest.csv",
        "--out",
        ae,
        "--steps",
        "5",
        "--crop",
        "32",
        "--width",
        "8",
        "--upsample",
        "bilinear",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "data",
        "build-pixel",
        "--data",
        sample_dir / "manifest.csv",
        "--out",
        tmp_path / "px",
        "-r",
        ae,
        "--max-side",
        "64",
    )
    assert r.returncode == 0, r.stderr
    assert "8 real images and 8 reconstructions (1 reconstructors)" in r.stdout
    r = run_cli(
        "data", "train-reconstructor", "--data", sample_dir / "manifest.csv", "--out", ae, "--upsample", "cubic"
    )
    assert r.returncode == 2 and "unknown up-sampling 'cubic'" in r.stderr
    r = run_cli("data", "build-semantic", "--data", sample_dir / "manifest.csv", "--out", tmp_path / "sem")
    assert r.returncode == 0 and "16 laundered images" in r.stdout
    r = run_cli(
        "data", "build-pixel", "--data", sample_dir / "manifest.csv", "--out", tmp_path / "x", "-r", tmp_path / "nope"
    )
    assert r.returncode == 2 and "no such autoencoder" in r.stderr


def test_the_recipe_gives_named_real_sources_fake_twins_through_the_shipped_autoencoders(tmp_path):
    from aigi.augment.reconstruct import RECONSTRUCTED
    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest, Sample
    from aigi.workflows.train import recipe_manifest

    rng = np.random.default_rng(0)
    samples = []
    for i, (label, gen) in enumerate([(0, "faces")] * 4 + [(0, "streets"), (1, "sdxl")]):
        p = tmp_path / f"{gen}-{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(p, quality=90)
        samples.append(Sample(str(p), label, gen))
    m = Manifest(samples, "test")
    out = recipe_manifest(TrainConfig(reconstructions=["faces"]), m)
    twins = [s for s in out if s.generator == RECONSTRUCTED]
    assert len(out) == 10 and len(twins) == 4 and all(s.label == 1 for s in twins)
    # one twin per face, the autoencoder picked by the file's sha256 (in the name too), the same size, stored as
    # the shared sets are
    import hashlib

    for src, twin in zip(samples[:4], twins):
        key = hashlib.sha256(Path(src.path).read_bytes()).hexdigest()
        assert Path(twin.path).stem == f"{Path(src.path).stem}-{key[:10]}-r{int(key[:8], 16) % 3}"
    # a face's twin does not change when more sources get twins
    more = recipe_manifest(TrainConfig(reconstructions=["streets", "faces"]), m)
    assert [s.path for s in more if s.generator == RECONSTRUCTED and "faces" in s.path] == [s.path for s in twins]
    for s in twins:
        with Image.open(s.path) as img:
            assert img.size == (56, 40) and img.format == "JPEG"
    # only the reals a fold trains on get a twin
    assert len([s for s in recipe_manifest(TrainConfig(reconstructions=["faces"]), m.subset([0, 4, 5]))
                if s.generator == RECONSTRUCTED]) == 1  # fmt: skip
