"""GAMMA: manipulations and their masks, the multi-task model, fine-tuning options, heatmaps."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli
from PIL import Image

from aigi.augment.manipulate import (
    COPY_MOVED,
    GENERATED,
    INPAINTED,
    REAL,
    SPLICED,
    DiffusersInpainter,
    ManipulationRecipe,
    Tools,
    copy_move,
    inpaint_autoencoder,
    inpaint_classical,
    manipulate,
    object_mask,
    perturb_alike,
    plan_kind,
    splice,
    unmanipulated,
)
from aigi.augment.seeding import rendezvous_donor, sha_keys
from aigi.config import TrainConfig
from aigi.data import load_data
from aigi.detectors.gamma import Gamma, GammaConfig, patch_targets, soft_cross_entropy, variant_labels
from aigi.evaluation.localisation import localisation_scores, pixel_f1_iou

TINY = {"steps": 40, "batch_size": 16, "hidden": 32, "queries": 2, "heads": 2}


def noise(h=72, w=96, seed=0):
    """Random pixels: every pixel a manipulation writes differs from the original (up to ~1e-7)."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def ellipse(h=72, w=96):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - 30) / 15.0) ** 2 + ((xx - 40) / 20.0) ** 2 <= 1


def changed(a, b):
    return (np.asarray(a) != np.asarray(b)).any(axis=-1)


@pytest.fixture(scope="module")
def tools():
    return Tools.default()


@pytest.mark.parametrize("label", [0, 1])
def test_every_manipulation_marks_exactly_the_pixels_it_changed(label, tools):
    img, mask = noise(), ellipse()
    host = unmanipulated(img, label)
    rng = np.random.default_rng(1)
    results = {
        INPAINTED: [
            inpaint_classical(host, mask),
            inpaint_classical(host, mask, "ns"),
            inpaint_autoencoder(host, mask, tools.reconstructor),
        ],
        COPY_MOVED: [copy_move(host, mask, rng)],
        SPLICED: [splice(host, noise(50, 60, seed=2), mask, rng)],
    }
    for source_id, outs in results.items():
        for m in outs:
            assert m.image.size == img.size
            np.testing.assert_array_equal(m.mask, changed(m.image, img))  # exactly, no more, no less
            assert m.mask.sum() == mask.sum()  # on noise every written pixel differs
            assert (m.source[m.mask] == source_id).all()
            assert (m.source[~m.mask] == (GENERATED if label else REAL)).all()
            assert m.label == 1


def test_copy_move_copies_pixels_of_the_same_image():
    img, mask = noise(), ellipse()
    a = np.asarray(img).astype(np.int64)
    as_int = lambda x: (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]  # noqa: E731
    m = copy_move(unmanipulated(img, 0), mask, np.random.default_rng(3))
    written = as_int(np.asarray(m.image).astype(np.int64))[m.mask]
    assert np.isin(written, as_int(a)).all()  # every written pixel comes from the same image
    spliced = splice(unmanipulated(img, 0), noise(50, 60, seed=2), mask, np.random.default_rng(3))
    assert np.isin(as_int(np.asarray(spliced.image).astype(np.int64))[spliced.mask], as_int(a)).mean() < 0.1


def test_masks_are_object_sized_and_reproducible():
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((300, 240))
    for shapes in [("strokes",), ("ellipse",), ("superpixels",)]:
        areas = [object_mask(photo, np.random.default_rng(s), (0.05, 0.3), shapes).mean() for s in range(12)]
        assert 0.05 <= min(areas) and max(areas) <= 0.3, (shapes, areas)
    a = manipulate(photo, 0, "splice", np.random.default_rng(7), ManipulationRecipe(), Tools(), noise())
    b = manipulate(photo, 0, "splice", np.random.default_rng(7), ManipulationRecipe(), Tools(), noise())
    c = manipulate(photo, 0, "splice", np.random.default_rng(8), ManipulationRecipe(), Tools(), noise())
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_perturbations_change_no_source_and_resizing_carries_the_masks():
    m = inpaint_classical(unmanipulated(noise(), 0), ellipse())
    for name in ("jpeg", "webp", "blur", "noise", "colour"):
        p, _ = perturb_alike(m, np.random.default_rng(0), name)
        assert p.image.size == m.image.size and np.array_equal(p.source, m.source)
    p, _ = perturb_alike(m, np.random.default_rng(0), "resize")
    assert p.source.shape == (p.image.height, p.image.width) == p.mask.shape
    assert abs(p.mask.mean() - m.mask.mean()) < 0.02


def test_rendezvous_donors_stay_in_the_pool_and_move_only_when_theirs_is_removed():
    import hashlib

    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    pool = [sha(f"donor {i}") for i in range(40)]
    hosts = [sha(f"host {i}") for i in range(200)]
    keys = sha_keys(pool)
    full = [rendezvous_donor(h, 1, 0, keys) for h in hosts]
    held = set(range(0, 40, 5))  # a "held-out generator": every fifth donor leaves the pool
    rest = [j for j in range(40) if j not in held]
    reduced = [rest[rendezvous_donor(h, 1, 0, keys[rest])] for h in hosts]
    for before, after in zip(full, reduced):
        assert after not in held
        if before not in held:
            assert after == before
    assert len(set(full)) > 20  # donors are spread over the pool


def test_patch_targets_soft_cross_entropy_and_labels_by_hand():
    src = np.zeros((4, 4), np.uint8)
    src[:2, :2] = SPLICED
    src[0, 2] = INPAINTED
    t = patch_targets(src, 2)
    assert t.shape == (5, 2, 2)
    np.testing.assert_allclose(t[SPLICED], [[1, 0], [0, 0]])
    np.testing.assert_allclose(t[INPAINTED], [[0, 0.25], [0, 0]])
    np.testing.assert_allclose(t[REAL], [[0, 0.75], [1, 1]])
    # soft CE of uniform logits over 5 classes is log(5) whatever the target
    logits = torch.zeros(1, 5, 2, 2)
    assert soft_cross_entropy(logits, torch.from_numpy(t)[None]).item() == pytest.approx(np.log(5), abs=1e-6)
    # one-hot target, logits (2, 0, 0, 0, 0): -log(e^2 / (e^2 + 4))
    lg = torch.tensor([2.0, 0, 0, 0, 0]).reshape(1, 5, 1, 1)
    tg = torch.tensor([1.0, 0, 0, 0, 0]).reshape(1, 5, 1, 1)
    assert soft_cross_entropy(lg, tg).item() == pytest.approx(-np.log(np.e**2 / (np.e**2 + 4)), abs=1e-6)
    # a real image whose manipulated pixels fell outside the crop is real again; a fake stays fake
    clean = np.zeros((5, 2, 2), np.float32)
    clean[REAL] = 1
    assert variant_labels(np.stack([clean, t, clean]), [0, 0, 1]).tolist() == [0, 1, 1]
    # "generative" policy: a copy-moved real stays real, a spliced one is fake
    both = np.stack([t, t, clean])
    assert variant_labels(both, [0, 0, 1], ["copy-move", "splice", "none"], "generative").tolist() == [0, 1, 1]


def test_pixel_f1_and_iou_by_hand():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[:2, 1:3] = True  # 2 hits, 2 false positives, 2 misses
    f1, iou = pixel_f1_iou(pred, truth)
    assert f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 2)) and iou == pytest.approx(2 / 6)
    assert pixel_f1_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == (1.0, 1.0)
    grid = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    r = localisation_scores(grid[None], truth[None])
    assert r["f1_mean"] > 0.6 and r["n"] == 1


def test_ablation_switches_change_the_loss_as_documented():
    torch.manual_seed(0)
    tokens = torch.randn(3, 1 + 16, 384)
    targets = torch.rand(3, 5, 4, 4)
    targets = targets / targets.sum(1, keepdim=True)
    label = torch.tensor([0, 1, 1])
    no_seg = Gamma(GammaConfig(hidden=16, queries=2, heads=2, segmentation=False))
    out = no_seg({"tokens": tokens, "targets": targets, "label": label})
    assert out["loss"].item() == pytest.approx(F.binary_cross_entropy_with_logits(out["logit"], label.float()).item())
    assert out["mask"].shape == (3, 4, 4) and out["source"].shape == (3, 5, 4, 4)
    with_seg = Gamma(GammaConfig(hidden=16, queries=2, heads=2))
    with_seg.load_state_dict(no_seg.state_dict())
    out2 = with_seg({"tokens": tokens, "targets": targets, "label": label})
    assert out2["loss"].item() > out["loss"].item()  # + the two segmentation losses
    flat = Gamma(GammaConfig(hidden=16, queries=2, heads=2, reverse_attention=False))
    flat.load_state_dict(no_seg.state_dict())
    assert not torch.allclose(flat({"tokens": tokens})["logit"], out["logit"])


@pytest.mark.slow
def test_trains_loss_falls_round_trips_and_predicts_a_mask(sample_dir, tmp_path):
    m = load_data(sample_dir / "manifest.csv")
    det = Gamma(GammaConfig(**TINY, clean_views=1, manipulated_views=1))
    info = det.fit(m, TrainConfig())
    assert info["n_images"] == 16 and info["n_variants"] == 48
    assert info["loss_last"] < info["loss_first"]
    assert set(info["variants_by_kind"]) - {"none"} <= {
        "inpaint-classical",
        "inpaint-autoencoder",
        "copy-move",
        "splice",
    }
    det.save_pretrained(tmp_path / "g")
    back = Gamma.from_pretrained(tmp_path / "g")
    paths = [s.path for s in m][:4]
    a, b = det.predict(paths), back.predict(paths)
    assert [r["p_fake"] for r in a] == pytest.approx([r["p_fake"] for r in b], abs=1e-6)
    assert np.asarray(a[0]["mask"]).shape == (16, 16) and set(a[0]["source_fractions"]) >= {"real", "spliced"}
    # the cached-token path and predict agree (calibration is the identity here)
    from aigi.scoring import calibrated_scores

    p_cached, _ = calibrated_scores(back, m.subset(np.arange(4)))
    np.testing.assert_allclose(p_cached, [r["p_fake"] for r in b], atol=1e-6)


@pytest.mark.slow
def test_lora_and_last_blocks_train_through_a_tiny_transformers_vit(sample_dir, tmp_path):
    from aigi.backbones.tiny import build_tiny_clip

    vit = build_tiny_clip(tmp_path / "tiny-clip")
    m = load_data(sample_dir / "manifest.csv").subset(np.arange(0, 16, 2))
    for mode in ("lora", "last"):
        det = Gamma(
            GammaConfig(
                backbone=str(vit),
                finetune=mode,
                blocks=(0, 1) if mode == "last" else (),  # trained through, the blocks' sequences side by side
                **{**TINY, "steps": 15},
                lora_rank=2,
                last_blocks=1,
                clean_views=0,
                manipulated_views=1,
                lr=5e-3,
            )
        )
        trainable = {n for n, p in det.named_parameters() if p.requires_grad and n.startswith("encoder.")}
        if mode == "lora":
            assert trainable and all("lora_" in n for n in trainable)
        else:
            assert trainable and all("layers.1." in n or "post_layernorm" in n for n in trainable)
        before = {n: p.detach().clone() for n, p in det.named_parameters() if n in trainable}
        info = det.fit(m, TrainConfig())
        assert info["n_variants"] == 16
        assert any(not torch.equal(before[n], p) for n, p in det.named_parameters() if n in trainable)
        det.save_pretrained(tmp_path / mode)
        back = Gamma.from_pretrained(tmp_path / mode)
        paths = [s.path for s in m][:3]
        assert [r["p_fake"] for r in det.predict(paths)] == pytest.approx(
            [r["p_fake"] for r in back.predict(paths)], abs=1e-5
        )
        assert np.asarray(back.predict(paths[:1])[0]["mask"]).shape == (4, 4)  # 32 px, patch 8


def tiny_inpainting_pipeline(tmp_path):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from aigi.backbones.tiny import build_tiny_clip

    torch.manual_seed(0)
    tok = CLIPTokenizer.from_pretrained(build_tiny_clip(tmp_path / "tok"), model_max_length=77)
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
    )
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tok,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def test_generative_inpainting_through_a_tiny_diffusers_pipeline(tmp_path):
    inpainter = DiffusersInpainter(tiny_inpainting_pipeline(tmp_path), steps=2, size=32)
    img, mask = noise(), ellipse()
    m = inpainter(unmanipulated(img, 0), mask, np.random.default_rng(0))
    assert m.kind == "inpaint-generative" and m.image.size == img.size
    np.testing.assert_array_equal(m.mask, changed(m.image, img))
    assert m.mask.sum() > 0.95 * mask.sum() and not (m.mask & ~mask).any()
    # it is one of the inpainters a training variant can draw
    tools = Tools(generative=inpainter)
    recipe = ManipulationRecipe(generative_p=1.0, perturb_p=0.0, real_kinds=("inpaint-classical",))
    kind = plan_kind(0, np.random.default_rng(0), recipe, generative=True)
    assert kind == "inpaint-generative" and plan_kind(0, np.random.default_rng(0), recipe) == "inpaint-classical"
    assert manipulate(img, 0, kind, np.random.default_rng(0), recipe, tools).kind == "inpaint-generative"


@pytest.mark.slow
def test_cli_trains_explains_with_a_heatmap_and_previews(sample_dir, tmp_path):
    cfg = tmp_path / "gamma.yaml"
    cfg.write_text(
        "detector: gamma\n"
        f"options: {json.dumps({**TINY, 'manipulated_views': 1})}\n"
        "val_fraction: 0.25\nunsure_band: 0.0\n"
    )
    out = tmp_path / "g"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    img = next((sample_dir / "real").iterdir())
    r = run_cli("detect", "--detector", out, img, "--format", "json", "--explain", tmp_path / "heat")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)[0]
    assert np.asarray(rec["mask"]).shape == (16, 16) and rec["verdict"] in ("real", "fake")
    heat = Image.open(rec["heatmap"])
    assert heat.size == Image.open(img).size and heat.format == "PNG"
    r = run_cli("augment", "--preview", tmp_path / "grid.png", "--data", sample_dir / "manifest.csv", "--n", "4")
    assert r.returncode == 0, r.stderr
    grid = Image.open(tmp_path / "grid.png")
    assert grid.width > 400 and grid.height > 200


def test_blocks_feed_the_chosen_blocks_sequences_side_by_side(tmp_path):
    """``blocks: [0, 1]``: the tokens are block 0's and block 1's output sequences concatenated channel-wise
    (as transformers computes them), cached under their own key; the torch export graph reads the same."""
    from aigi.backbones.tiny import build_tiny_clip

    vit = str(build_tiny_clip(tmp_path / "tiny-clip"))
    small = {"hidden": 8, "queries": 1, "heads": 1}
    det = Gamma(GammaConfig(backbone=vit, blocks=(0, 1), **small)).eval()
    last = Gamma(GammaConfig(backbone=vit, **small))
    x = det.inputs(noise(40, 40))["pixels"][None]
    tokens = det.features({"pixels": x})["tokens"]
    with torch.no_grad():
        hs = det.backbone.model.vision_model(pixel_values=torch.from_numpy(x), output_hidden_states=True).hidden_states
    width = hs[0].shape[-1]
    assert tokens.shape == (1, hs[1].shape[1], 2 * width) and det.norm.normalized_shape == (2 * width,)
    np.testing.assert_allclose(tokens[..., :width], hs[1].numpy(), atol=2e-3)  # float16, as cached
    np.testing.assert_allclose(tokens[..., width:], hs[2].numpy(), atol=2e-3)
    assert det.feature_key() != last.feature_key() and det.feature_key().startswith(last.feature_key())
    with torch.no_grad():
        engine = det({"tokens": torch.from_numpy(tokens.astype(np.float32))})["logit"]
        graph = det.export_module()(torch.from_numpy(x))["logit"]
    np.testing.assert_allclose(graph.numpy(), engine.numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="block 7 asked for; this backbone has 2 blocks"):
        Gamma(GammaConfig(backbone=vit, blocks=(7,), **small)).features({"pixels": x})
