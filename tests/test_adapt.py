"""univfd's ``adapt:``: LoRA over cached tokens, shipped as the adapter alone and merged at load."""

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file

from aigi.training.adapt import AdaptedTop, AdaptSettings, holdout_split, lora_tensors, merge


def tiny_tokens(tmp_path):
    from aigi.backbones import load_backbone
    from aigi.backbones.hf import torch_vision_tokens
    from aigi.backbones.tiny import build_tiny_clip

    backbone = load_backbone(str(build_tiny_clip(tmp_path / "clip", image_size=32)))
    return backbone, torch_vision_tokens(backbone)


def test_the_descriptor_is_the_class_token_beside_the_mean_patch_token_in_numpy_and_torch():
    from aigi.backbones.base import pool_blocks, pool_sequence

    seq = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 8.0]]], dtype=np.float32)  # class token, two patches
    np.testing.assert_array_equal(pool_sequence(seq), [[1.0, 2.0, 4.0, 6.0]])
    np.testing.assert_array_equal(pool_blocks([seq, 2 * seq]), [[[1, 2, 4, 6], [2, 4, 8, 12]]])
    t = torch.tensor(seq, requires_grad=True)
    out = pool_sequence(t)
    out.sum().backward()  # the class token counts once, each of the two patches half
    np.testing.assert_array_equal(out.detach().numpy(), [[1.0, 2.0, 4.0, 6.0]])
    np.testing.assert_array_equal(t.grad.numpy(), [[[1, 1], [0.5, 0.5], [0.5, 0.5]]])


def test_merge_adds_alpha_over_rank_times_b_a_to_the_named_weight(tmp_path):
    _, tokens = tiny_tokens(tmp_path)
    w = tokens.layers()[0][1].self_attn.q_proj.weight
    before = w.detach().clone()
    a = torch.zeros(1, w.shape[1])
    a[0, 0] = 2.0  # rank 1: A picks input 0 (x2), B writes to output 1 (x0.5)
    b = torch.zeros(w.shape[0], 1)
    b[1, 0] = 0.5
    merge(tokens, {"1.self_attn.q_proj.lora_A": a, "1.self_attn.q_proj.lora_B": b}, alpha=3.0)
    delta = (w.detach() - before).numpy()
    assert delta[1, 0] == pytest.approx(3.0 * 2.0 * 0.5)  # (alpha / rank) B A = 3 * 0.5 * 2 at [1, 0]
    delta[1, 0] = 0.0
    assert np.abs(delta).max() == 0.0


def test_the_adapted_copies_and_the_merged_encoder_give_the_same_descriptor(tmp_path):
    backbone, tokens = tiny_tokens(tmp_path)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32))
    top = AdaptedTop(tokens, 1, [1], AdaptSettings(from_block=1, rank=2, alpha=4.0))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in top.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (an identity adapter); give it a value
                p.normal_(std=0.5)
        entering = tokens.entering(x, 1)
        adapted = top(entering).numpy()
        frozen = backbone.encode_images(x.numpy(), blocks=True).blocks[:, 1]
    assert np.abs(adapted - frozen).max() > 1e-3  # the adapter changes block 1
    adapter = lora_tensors(top.blocks, 1)
    assert set(adapter) >= {"1.self_attn.q_proj.lora_A", "1.mlp.fc2.lora_B"}
    merge(tokens, adapter, alpha=4.0)
    merged = backbone.encode_images(x.numpy(), blocks=True).blocks[:, 1]
    np.testing.assert_allclose(merged, adapted, rtol=1e-4, atol=1e-4)


def test_early_stopping_holds_out_whole_sources_and_generators_on_each_side():
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    held = holdout_split(groups, labels, 0.5, seed=0)
    for g in "abcd":  # a group is held whole or not at all
        assert len(set(held[groups == g].tolist())) == 1
    assert held[labels == 0].sum() == 2 and held[labels == 1].sum() == 2  # one of two groups per side
    one = holdout_split(np.array(["r"] * 4 + ["g"] * 4), labels, 0.25, seed=0)  # one group a side: images
    assert one[labels == 0].sum() == 1 and one[labels == 1].sum() == 1


def test_bad_adapt_settings_are_clear_errors(tmp_path):
    from aigi.detectors.univfd import UnivFD, UnivFDConfig

    with pytest.raises(ValueError, match="unknown settings"):
        AdaptSettings.from_dict({"from_block": 1, "rnk": 4})
    with pytest.raises(ValueError, match="from_block 5 is not among blocks 0..1"):
        UnivFD(UnivFDConfig(backbone="clip-b16", blocks=(0, 1), adapt={"from_block": 5}))
    with pytest.raises(ValueError, match="adapt needs blocks"):
        UnivFD(UnivFDConfig(backbone="clip-b16", adapt={"from_block": 0}))


def test_early_stopping_keeps_the_epoch_with_the_lowest_held_out_loss_and_resumes_a_killed_run(tmp_path):
    from aigi.training.adapt import train_top

    _, tokens = tiny_tokens(tmp_path)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(24, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        entering = tokens.entering(x, 1).numpy().astype(np.float16)
    labels = np.arange(24) % 2
    stop = np.arange(16, 24)
    flipped = labels.copy()
    flipped[stop] = 1 - flipped[stop]  # the held-out rows say the opposite: any training makes them worse

    def run(epochs, checkpoint=None, flip=True):
        settings = AdaptSettings(from_block=1, rank=2, epochs=epochs, lr=0.05, patience=9)
        top = AdaptedTop(tokens, 1, [1], settings)
        head = torch.nn.Linear(64, 1)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        frozen = np.zeros((24, 64), np.float32)
        y = flipped if flip else labels
        fit = np.arange(16)
        report = train_top(top, entering, frozen, np.arange(64), lambda v: head(v).squeeze(-1), list(head.parameters()),
                           y, np.ones(24), fit, stop, settings, checkpoint=checkpoint)  # fmt: skip
        return report, lora_tensors(top.blocks, 1), head

    report, adapter, head = run(3)
    assert report["kept_epoch"] == 0 and report["history"][1]["stop_loss"] > report["history"][0]["stop_loss"]
    assert all(float(v.abs().max()) == 0.0 for k, v in adapter.items() if k.endswith("lora_B"))  # nothing kept
    assert float(head.weight.detach().abs().max()) == 0.0
    # a run stopped after 2 of 4 epochs and started again ends where an unbroken run of 4 does
    whole, adapter4, _ = run(4, flip=False)
    run(2, tmp_path / "ck", flip=False)
    resumed, adapter_r, _ = run(4, tmp_path / "ck", flip=False)
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3, 4] and resumed["kept_epoch"] == whole["kept_epoch"]
    for k in adapter4:
        torch.testing.assert_close(adapter_r[k], adapter4[k], rtol=1e-5, atol=1e-6)


ADAPT_CONFIG = """
detector: univfd
options:
  backbone: {clip}
  feature_dim: 64
  blocks: [0, 1]
  tokens: patch
  balance: group
  Cs: [0.1]
  cv_folds: 2
  adapt: {{from_block: 1, rank: 2, epochs: 2, batch_size: 8, lr: 0.01, holdout: 0}}
views: 1
val_fraction: 0.25
batch_size: 8
"""


@pytest.mark.slow
def test_train_ships_the_adapter_alone_and_detect_merges_it_at_load(sample_dir, tmp_path):
    from aigi.backbones.tiny import build_tiny_clip
    from aigi.detectors.saved import from_pretrained

    clip = build_tiny_clip(tmp_path / "clip", image_size=32)
    cfg = tmp_path / "adapt.yaml"
    cfg.write_text(ADAPT_CONFIG.format(clip=clip))
    out = tmp_path / "adapted"
    env = {"AIGI_CACHE_DIR": str(tmp_path / "cache")}
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "adapt epoch 1/2: train loss" in r.stderr and "adapt epoch 2/2" in r.stderr
    weights = load_file(str(out / "model.safetensors"))
    lora = {k: v for k, v in weights.items() if k.startswith("adapter.")}
    assert lora and all("__lora_" in k for k in lora)  # LoRA tensors of block 1 only; no encoder weight
    assert all(k.startswith("adapter.1__") for k in lora)
    state = json.loads((out / "state.json").read_text())
    assert set(state["adapter"]) == {k[len("adapter.") :].replace("__", ".") for k in lora}
    report = json.loads((out / "training.json").read_text())["fit"]["adapt"]
    assert report["from_block"] == 1 and report["kept_epoch"] == 2 and report["stop_rows"] == 0

    det = from_pretrained(out)
    fakes = [str(p) for p in sorted((sample_dir / "fake").iterdir())]
    in_process = [r["p_fake"] for r in det.predict(fakes, provenance=False)]
    r = run_cli("detect", "--detector", out, sample_dir / "fake", "--format", "jsonl", "--no-provenance", env_extra=env)
    assert r.returncode == 0, r.stderr
    by_cli = [json.loads(line)["p_fake"] for line in r.stdout.splitlines()]
    np.testing.assert_allclose(sorted(by_cli), sorted(in_process), atol=1e-6)
    # the adapter is in the detector: zeroing it changes the scores (and the version)
    frozen = from_pretrained(out)
    for _, buf in frozen.adapter.named_buffers():
        buf.zero_()
    assert frozen.adapter_digest != det.adapter_digest
    zeroed = [r["p_fake"] for r in frozen.predict(fakes, provenance=False)]
    assert np.abs(np.array(zeroed) - np.array(in_process)).max() > 1e-4
    # a second run with the same recipe resumes from the finished checkpoint (the token cache is kept too)
    again_dir = tmp_path / "again"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", again_dir, env_extra=env)
    assert r.returncode == 0 and "adapt: resuming after epoch" in r.stderr, r.stderr
    again = load_file(str(again_dir / "model.safetensors"))
    for k in lora:
        assert torch.equal(again[k], weights[k])
    # the exported graph carries the merged encoder: onnxruntime scores as `detect` does
    onnx_dir = tmp_path / "onnx"
    r = run_cli("export", "--detector", out, "--out", onnx_dir, env_extra=env)
    assert r.returncode == 0 and "(ok)" in r.stdout, r.stderr
    r = run_cli("detect", "--detector", onnx_dir, "--runtime", "onnx", sample_dir / "fake", "--format", "jsonl",
                "--no-provenance", env_extra=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    onnx_scores = sorted(json.loads(x)["p_fake"] for x in r.stdout.splitlines())
    np.testing.assert_allclose(onnx_scores, sorted(in_process), atol=2e-3)


def test_mode_full_trains_the_blocks_themselves_and_ships_their_weights(tmp_path):
    backbone, tokens = tiny_tokens(tmp_path)
    top = AdaptedTop(tokens, 1, [1], AdaptSettings(from_block=1, mode="full"))
    assert not any("lora_" in n for n, _ in top.named_parameters())
    with torch.no_grad():
        top.blocks[0].mlp.fc1.weight.mul_(1.5)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        adapted = top(tokens.entering(x, 1)).numpy()
    shipped = lora_tensors(top.blocks, 1)
    assert "1.mlp.fc1.weight" in shipped and "1.self_attn.q_proj.bias" in shipped
    merge(tokens, shipped, alpha=16.0)  # full weights replace the encoder's
    np.testing.assert_allclose(backbone.encode_images(x.numpy(), blocks=True).blocks[:, 1], adapted, atol=1e-5)


def test_head_lr_zero_trains_the_adapter_alone(tmp_path):
    from aigi.training.adapt import train_top

    _, tokens = tiny_tokens(tmp_path)
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(8, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        entering = tokens.entering(x, 1).numpy().astype(np.float16)
    settings = AdaptSettings(from_block=1, rank=2, epochs=2, lr=0.05, head_lr=0.0, holdout=0)
    top = AdaptedTop(tokens, 1, [1], settings)
    head = torch.nn.Linear(64, 1)
    before = head.weight.detach().clone()
    frozen, rows, none = np.zeros((8, 64), np.float32), np.arange(8), np.array([], int)
    report = train_top(top, entering, frozen, np.arange(64), lambda v: head(v).squeeze(-1), list(head.parameters()),
                       rows % 2, np.ones(8), rows, none, settings)  # fmt: skip
    assert report["kept_epoch"] == 2 and torch.equal(head.weight.detach(), before)
    assert max(float(v.abs().max()) for k, v in lora_tensors(top.blocks, 1).items() if k.endswith("lora_B")) > 0
