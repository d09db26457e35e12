"""AlignGemini: the fused detector, its two branches and its protocol runs."""

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, two_generator_manifest

from aigi.config import TrainConfig
from aigi.data import load_data
from aigi.detectors.aligngemini import AlignGemini, AlignGeminiConfig
from aigi.detectors.base import Detector
from aigi.detectors.univfd import UnivFD, UnivFDConfig
from aigi.scoring import calibrated_scores

TINY_PIXEL = {"crop": 32, "width": 8, "depth": 3, "steps": 20, "batch_size": 8, "inference_crops": 3}


def test_fusion_by_hand():
    det = AlignGemini(AlignGeminiConfig(pixel=TINY_PIXEL))
    det.or_thresholds.copy_(torch.tensor([1.0, -0.5]))
    bl = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.5, -1.0]])
    # OR: max(semantic - 1, pixel + 0.5) -> [1, 0.5, -0.5]: fires on the first two, not the third
    torch.testing.assert_close(det.fuse(bl), torch.tensor([1.0, 0.5, -0.5]))
    det.config.fusion = "logistic"
    det.fusion_weights.copy_(torch.tensor([2.0, 0.5, -1.0]))
    # 2 * (bl_s - 1) + 0.5 * (bl_p + 0.5) - 1 -> [1.25, -2.75, -2.25]
    torch.testing.assert_close(det.fuse(bl), torch.tensor([1.25, -2.75, -2.25]))


def test_unknown_fusion_is_named():
    with pytest.raises(ValueError, match="unknown fusion 'and'"):
        AlignGemini(AlignGeminiConfig(fusion="and"))


@pytest.mark.slow
def test_semantic_branch_trains_on_laundered_images_only(sample_dir):
    m = load_data(sample_dir / "manifest.csv")
    sem = UnivFD(UnivFDConfig(launder=True, cv_folds=2))
    info = sem.fit(m, TrainConfig(views=3))
    assert info["n_views"] == 1 and info["n_images"] == 16  # laundering makes augmented views pointless
    # what it scores is the laundered image: predict (laundering in inputs) and the cached path agree
    p_cached, _ = calibrated_scores(sem, m)
    p_pred = [r["p_fake"] for r in sem.predict([s.path for s in m])]  # calibration "none": raw scores
    np.testing.assert_allclose(p_cached, p_pred, atol=1e-6)


@pytest.mark.slow
def test_trains_fuses_and_reports_both_branches_through_the_cli(sample_dir, tmp_path):
    cfg = tmp_path / "ag.yaml"
    cfg.write_text(
        "detector: aligngemini\n"
        f"options: {{pixel: {json.dumps(TINY_PIXEL)}, max_side: 96, fpr_budget: 0.25}}\n"
        "val_fraction: 0.5\nunsure_band: 0.0\n"
    )
    out = tmp_path / "ag"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out)
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "training.json").read_text())
    fit = record["fit"]
    # the pixel expert saw only reconstruction pairs built from the training reals (4 reals x 3 autoencoders)
    assert fit["pixel"]["pairs"].startswith("16 images") and fit["pixel"]["fit"]["n_images"] == 16
    assert len(fit["pixel"]["reconstructors"]) == 3
    fv = record["fit_validation"]
    assert fv["or"]["fused_fpr"] <= 0.25 and fv["n"] == 8

    paths = sorted(str(p) for p in (sample_dir / "real").glob("*.png")) + sorted(
        str(p) for p in (sample_dir / "fake").glob("*.png")
    )
    r = run_cli("detect", *paths, "--detector", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    det = Detector.from_pretrained(out)
    for rec in recs:
        assert set(rec["branch_scores"]) == {"semantic", "pixel"}
        assert rec["fired"] in ("semantic", "pixel", "both", "none")
        # the default threshold is the OR rule: fake exactly when a branch fired
        assert (rec["verdict"] == "fake") == (rec["fired"] != "none"), rec
    # the cached manifest path gives the same calibrated scores as predict
    m = load_data(sample_dir / "manifest.csv")
    p, errors = calibrated_scores(det, m)
    by_path = {rec["path"]: rec["p_fake"] for rec in recs}
    np.testing.assert_allclose(p, [by_path[s.path] for s in m], atol=1e-6)


@pytest.mark.slow
def test_train_on_protocol_fits_the_fusion_inside_the_fold(sample_dir, tmp_path):
    data = two_generator_manifest(sample_dir, tmp_path / "two.csv")
    cfg = tmp_path / "ag.yaml"
    cfg.write_text(
        f"detector: aligngemini\noptions: {{pixel: {json.dumps(TINY_PIXEL)}, max_side: 96}}\nval_fraction: 0.3\n"
    )
    r = run_cli(
        "eval", "--config", cfg, "--data", data, "--protocol", "train-on:dcgan-a", "--json", tmp_path / "ev.json"
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "ev.json").read_text())
    assert "fit_validation" in res["fit"] and "dcgan-b" in res["per_generator"]


@pytest.mark.slow
def test_a_reused_pixel_expert_is_state_not_configuration(sample_dir, tmp_path):
    """The reused expert's own architecture travels in state.json; the Config stays what the user wrote."""
    from aigi.detectors.pixel import PixelConfig, PixelExpert

    m = load_data(sample_dir / "manifest.csv")
    expert = PixelExpert(PixelConfig(**{**TINY_PIXEL, "steps": 5}))
    expert.fit(m, TrainConfig(seed=0))
    expert.save_pretrained(tmp_path / "expert")
    det = AlignGemini(AlignGeminiConfig(pixel_expert=str(tmp_path / "expert"), semantic={"cv_folds": 2}))
    det.fit(m, TrainConfig(views=1))
    assert det.config.pixel == {} and det.pixel.config.crop == TINY_PIXEL["crop"]
    d = det.save_pretrained(tmp_path / "ag")
    meta = json.loads((d / "config.json").read_text())
    assert meta["config"]["pixel"] == {} and json.loads((d / "state.json").read_text())["pixel_config"]["crop"] == 32
    back = Detector.from_pretrained(d)
    paths = [s.path for s in m][:3]
    assert [r["p_fake"] for r in back.predict(paths)] == pytest.approx(
        [r["p_fake"] for r in det.predict(paths)], abs=1e-6
    )
