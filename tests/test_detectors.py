import json

import numpy as np
import pytest
import torch

from aigi.config import ConfigError, train_config_from_dict
from aigi.detectors import get_detector_class
from aigi.detectors.base import Detector
from aigi.detectors.univfd import UnivFD, UnivFDConfig


def test_unknown_name_suggests_the_nearest():
    with pytest.raises(KeyError, match="Did you mean 'univfd'"):
        get_detector_class("unifvd")


def test_forward_contract_logit_and_loss():
    det = UnivFD(UnivFDConfig(feature_dim=4))
    with torch.no_grad():
        det.head.weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 2.0]]))
        det.head.bias.fill_(0.5)
        det.feature_mean.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        det.feature_scale.copy_(torch.tensor([2.0, 1.0, 1.0, 1.0]))
    x = torch.tensor([[3.0, 1.0, 5.0, 0.5]])
    out = det({"features": x, "label": torch.tensor([1])})
    # ((3-1)/2)*1 + 1*(-1) + 0 + 0.5*2 + 0.5 = 1.5
    assert out["logit"].item() == pytest.approx(1.5)
    assert out["loss"].item() == pytest.approx(float(np.log1p(np.exp(-1.5))))
    assert "loss" not in det({"features": x})


def test_save_and_load_round_trip_with_safetensors_only(tmp_path):
    det = UnivFD(UnivFDConfig(feature_dim=6))
    torch.manual_seed(0)
    with torch.no_grad():
        det.head.weight.normal_()
    det.calibration.real_scores = [0.1, 0.2]
    d = det.save_pretrained(tmp_path / "det")
    assert sorted(p.name for p in d.iterdir()) == ["calibration.json", "config.json", "model.safetensors"]
    meta = json.loads((d / "config.json").read_text())
    assert meta["detector"] == "univfd" and meta["config"]["feature_dim"] == 6
    loaded = Detector.from_pretrained(d)
    assert isinstance(loaded, UnivFD) and loaded.calibration.real_scores == [0.1, 0.2]
    x = torch.randn(3, 6)
    torch.testing.assert_close(loaded({"features": x})["logit"], det({"features": x})["logit"])
    assert loaded.version.startswith("det@")
    (d / "model.safetensors").write_bytes(b"not safetensors")  # a tampered file is refused, not unpickled
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type; what matters is that it refuses
        Detector.from_pretrained(d)


def test_univfd_fit_separates_separable_features(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n, v, d = 60, 2, 8
    labels = np.array([0, 1] * (n // 2))
    feats = rng.normal(size=(n, v, d)).astype(np.float32)
    feats[labels == 1, :, 0] += 3.0

    det = UnivFD(UnivFDConfig(feature_dim=d, cv_folds=3))
    info = det.fit_head(feats, labels)
    assert info["n_images"] == n and info["n_views"] == 2 and info["cv_auroc"] > 0.95
    p = torch.sigmoid(det({"features": torch.from_numpy(feats[:, 0])})["logit"]).detach().numpy()
    assert p[labels == 1].mean() > 0.8 > 0.2 > p[labels == 0].mean()


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys"):
        train_config_from_dict({"detector": "univfd", "epochs": 3})
    cfg = train_config_from_dict({"views": 2, "view_recipe": {"jpeg_quality": [70, 90]}})
    assert cfg.train_views() == [0, 1, 2] and cfg.view_recipe.jpeg_quality == (70, 90)


def test_with_options_changes_the_named_options_and_leaves_the_recipe_alone():
    cfg = train_config_from_dict({"detector": "univfd", "views": 2, "options": {"backbone": "clip-b16", "C": 1.0}})
    changed = cfg.with_options(C=0.5, adapt={"blocks": [6, 7]})
    assert changed.options == {"backbone": "clip-b16", "C": 0.5, "adapt": {"blocks": [6, 7]}}
    assert changed.views == 2 and changed.detector == "univfd"
    assert cfg.options == {"backbone": "clip-b16", "C": 1.0}  # the original is untouched


def test_install_hints_name_a_command_that_works_here():
    """aigi is not on the package index: no hint may say `pip install 'aigi[...]'`."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [root / "README.md", *(root / "aigi").rglob("*.py")]
    bad = [
        str(f.relative_to(root))
        for f in files
        if "pip install 'aigi[" in f.read_text() or 'pip install "aigi[' in f.read_text()
    ]
    assert not bad, bad


def test_logistic_l2_minimises_scikit_learns_objective():
    from sklearn.linear_model import LogisticRegression

    from aigi.detectors.logistic import logistic_l2

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.7 * rng.normal(size=200) > 0).astype(np.float32)
    for C in (0.01, 1.0):
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
        theta = logistic_l2(torch.from_numpy(X), torch.from_numpy(y), C).numpy()
        np.testing.assert_allclose(theta[:-1], ref.coef_[0], atol=2e-4)
        np.testing.assert_allclose(theta[-1], ref.intercept_[0], atol=2e-4)


def test_univfd_image_logit_is_the_mean_over_present_crops():
    det = UnivFD(UnivFDConfig(feature_dim=2, crops=2))
    with torch.no_grad():
        det.head.weight.copy_(torch.tensor([[1.0, -1.0]]))
        det.head.bias.fill_(0.5)
    nan = float("nan")
    f = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [nan, nan]], [[0.0, 2.0], [nan, nan], [nan, nan]]])
    out = det({"features": f})
    # image 0: crop logits 1.5 and 3.5 -> 2.5 over 2 passes; image 1: -1.5, one pass
    assert out["logit"].tolist() == [2.5, -1.5] and out["views"].tolist() == [2, 1]


def test_univfd_fit_head_uses_every_present_crop_as_a_row():
    rng = np.random.default_rng(1)
    n = 40
    labels = np.array([0, 1] * (n // 2))
    feats = rng.normal(size=(n, 2, 2, 4)).astype(np.float32)  # 2 views x 2 crops
    feats[labels == 1, ..., 0] += 3.0
    feats[::4, :, 1] = np.nan  # some images have no second crop
    info = UnivFD(UnivFDConfig(feature_dim=4, cv_folds=3, crops=1)).fit_head(feats, labels)
    assert info["n_rows"] == n * 4 - 10 * 2 and info["cv_auroc"] > 0.95


def test_balanced_weights_give_every_group_and_class_the_same_total():
    from aigi.detectors.logistic import balanced_weights

    # reals: source a x3, source b x1; fakes: generator g x2. Raw 1/(n_group * groups_in_class):
    # a 1/6, b 1/2, g 1/2; mean (3/6 + 1/2 + 2/2) / 6 = 1/3, so rescaled a 0.5, b 1.5, g 1.5
    w = balanced_weights(np.array([0, 0, 0, 0, 1, 1]), np.array(["a", "a", "a", "b", "g", "g"]))
    np.testing.assert_allclose(w, [0.5, 0.5, 0.5, 1.5, 1.5, 1.5])


def test_weighted_logistic_equals_repeating_rows():
    from aigi.detectors.logistic import logistic_l2

    rng = np.random.default_rng(3)
    X = torch.from_numpy(rng.normal(size=(6, 3)).astype(np.float32))
    y = torch.tensor([0.0, 1, 0, 1, 1, 0])
    # weights with mean 1: row 0 counted twice, row 1 not at all == the data with row 0 repeated, row 1 dropped
    w = torch.tensor([2.0, 0, 1, 1, 1, 1])
    a = logistic_l2(X, y, 0.5, weight=w, max_iter=300)
    keep = [0, 0, 2, 3, 4, 5]
    b = logistic_l2(X[keep], y[keep], 0.5, max_iter=300)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_univfd_patch_tokens_head_reads_only_the_mean_patch_halves():
    # two blocks of feature_dim 4: [cls0 cls0 patch0 patch0 | cls1 cls1 patch1 patch1]
    det = UnivFD(UnivFDConfig(feature_dim=4, blocks=(0, 1), tokens="patch"))
    assert det.columns.tolist() == [2, 3, 6, 7] and det.head.in_features == 4
    with torch.no_grad():
        det.head.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
        det.head.bias.fill_(-1.0)
    x = torch.tensor([[100.0, 100.0, 1.0, 1.0, -50.0, 7.0, 0.0, 1.0]])
    assert det({"features": x})["logit"].item() == pytest.approx(1 + 2 + 0 + 4 - 1)  # class halves ignored
    assert "columns" not in det.state_dict()
    with pytest.raises(ValueError, match="tokens must be one of"):
        UnivFD(UnivFDConfig(feature_dim=4, tokens="mean"))


def test_univfd_group_balance_needs_the_groups():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(20, 1, 4)).astype(np.float32)
    labels = np.array([0, 1] * 10)
    det = UnivFD(UnivFDConfig(feature_dim=4, cv_folds=2, balance="group"))
    with pytest.raises(ValueError, match="needs each image's generator"):
        det.fit_head(feats, labels)
    info = det.fit_head(feats, labels, np.array(["r1", "g1"] * 5 + ["r2", "g2"] * 5))
    assert info["n_rows"] == 20


@pytest.mark.parametrize("tokens", ["patch", "both"])
def test_univfd_evidence_map_splits_the_logit_exactly_over_patches(tmp_path, tokens):
    from PIL import Image

    from aigi.backbones.tiny import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip", image_size=32)
    det = UnivFD(UnivFDConfig(backbone=str(clip), feature_dim=2 * det_width(clip), blocks=(0, 1), tokens=tokens))
    torch.manual_seed(0)
    with torch.no_grad():
        det.head.weight.normal_()
        det.head.bias.fill_(0.3)
        det.feature_mean.normal_()
        det.feature_scale.uniform_(0.5, 2.0)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    ev = det.evidence(img)
    grid = ev["contributions"]
    side = int(round(np.sqrt(grid.size)))
    assert grid.shape == (side, side) and side > 1
    # the patches plus the global term are the logit, and that is the head's logit on the float32 descriptor
    assert float(grid.sum()) + ev["global"] == pytest.approx(ev["logit"], abs=1e-4)
    pixels = det.inputs(img)["pixels"][:1]
    desc = det.backbone.encode_images(pixels, blocks=True).blocks[:, [0, 1]].reshape(1, -1)
    head = det({"features": torch.from_numpy(desc.astype(np.float32))})["logit"].item()
    assert ev["logit"] == pytest.approx(head, abs=1e-3)
    # and within float16 rounding of what the detector scores (uncalibrated: p_fake is the logit's sigmoid)
    p = det.predict([img])[0]["p_fake"]
    assert ev["logit"] == pytest.approx(float(np.log(p / (1 - p))), abs=5e-2)
    if tokens == "patch":  # a patch-only head: the global term is the intercept and the standardisation alone
        w = det.head.weight[0].detach() / det.feature_scale
        assert ev["global"] == pytest.approx(0.3 - float((w * det.feature_mean).sum()), abs=1e-4)


def det_width(clip_dir) -> int:
    import json as _json

    return int(_json.loads((clip_dir / "config.json").read_text())["vision_config"]["hidden_size"])


def test_config_holds_settings_the_record_its_own_file_and_the_version_covers_settings(tmp_path):
    import shutil

    det = UnivFD(UnivFDConfig(feature_dim=6))
    det.training_info = {"data": "m.csv", "seen_sha256": ["00ff"]}
    d = det.save_pretrained(tmp_path / "det")
    meta = json.loads((d / "config.json").read_text())
    assert set(meta) == {"format_version", "detector", "parity", "config"}  # settings only
    assert json.loads((d / "training.json").read_text()) == det.training_info
    loaded = Detector.from_pretrained(d)
    v = loaded.version
    assert loaded.training_info == det.training_info
    # the record is not part of the version; a changed setting is
    (d / "training.json").write_text("{}")
    assert Detector.from_pretrained(d).version == v
    for key, value in (("parity", True), ("config", {**meta["config"], "crops": 2})):
        shutil.copytree(d, tmp_path / "changed", dirs_exist_ok=True)
        (tmp_path / "changed" / "config.json").write_text(json.dumps({**meta, key: value}))
        assert Detector.from_pretrained(tmp_path / "changed").version.split("@")[1] != v.split("@")[1]
    # a format-1 directory (the record inside config.json) loads, with the same version
    (d / "config.json").write_text(json.dumps({**meta, "format_version": 1, "training": det.training_info}))
    (d / "training.json").unlink()
    old = Detector.from_pretrained(d)
    assert old.version == v and old.training_info == det.training_info
