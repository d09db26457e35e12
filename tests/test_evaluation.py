import io
import json

import numpy as np
import pytest
from conftest import run_cli, two_generator_manifest
from PIL import Image

from aigi.data import load_data
from aigi.data.splits import seeded_subset
from aigi.evaluation.audit import audit, estimate_jpeg_quality, file_metadata
from aigi.transforms import crop_fraction, jpeg_bytes_parity, perturbation, social_media
from aigi.workflows.compare import choose_default


def test_default_rule_by_hand():
    cur = {"a": 0.90, "b": 0.80, "c": 0.60}
    # best is the current one
    assert choose_default({"cur": cur, "x": {"a": 0.89, "b": 0.80, "c": 0.60}}, "cur")["default"] == "cur"
    # better on the mean by only 0.01: stays
    d = choose_default({"cur": cur, "x": {"a": 0.92, "b": 0.81, "c": 0.60}}, "cur")
    assert d["default"] == "cur" and "only" in d["reason"]
    # +0.05 on the mean but -0.03 on one generator: stays, and says which
    d = choose_default({"cur": cur, "x": {"a": 0.87, "b": 0.89, "c": 0.69}}, "cur")
    assert d["default"] == "cur" and "a (−0.030)" in d["reason"]
    # both conditions fail: both are named
    d = choose_default({"cur": cur, "x": {"a": 0.86, "b": 0.85, "c": 0.62}}, "cur")
    assert "only +0.010" in d["reason"] and "a (−0.040)" in d["reason"]
    # +0.03 on the mean, no generator worse by >= 0.02: switches
    d = choose_default({"cur": cur, "x": {"a": 0.89, "b": 0.83, "c": 0.67}}, "cur")
    assert d["default"] == "x" and d["changed"]
    with pytest.raises(ValueError):
        choose_default({"x": cur}, "cur")
    # leave-source-out: a candidate that flags over 5 % of a real source it never saw is never chosen
    better, best = {"a": 0.89, "b": 0.83, "c": 0.67}, {"a": 0.95, "b": 0.95, "c": 0.95}
    logo = {"cur": cur, "x": better, "y": best}
    loso = {"cur": {"faces": 0.20}, "x": {"faces": 0.05, "art": 0.0}, "y": {"faces": 0.06, "art": 0.0}}
    d = choose_default(logo, "cur", loso=loso)
    assert d["default"] == "x" and "y (faces 0.060)" in d["reason"]
    assert choose_default(logo, "cur")["default"] == "y"  # without the leave-source-out numbers
    loso["x"]["art"] = 0.051
    d = choose_default(logo, "cur", loso=loso)
    assert d["default"] == "cur" and not d["changed"] and "x (art 0.051)" in d["reason"]


@pytest.mark.parametrize("q", [30, 50, 75, 80, 95])
def test_jpeg_quality_is_estimated_from_the_tables(q):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 30, 200)).save(buf, "JPEG", quality=q)
    meta = file_metadata(buf.getvalue())
    assert meta["format"] == "JPEG" and abs(meta["jpeg_quality"] - q) <= 1
    from aigi.evaluation.audit import _IJG_LUMA

    assert estimate_jpeg_quality(_IJG_LUMA) == 50  # the standard table is quality 50 by definition
    assert estimate_jpeg_quality(2 * _IJG_LUMA) == 25  # scale 200% -> 5000 / 200
    assert estimate_jpeg_quality(np.ones(64)) > 99  # all-ones tables: quality ~100


@pytest.mark.slow
def test_audit_finds_a_planted_format_shortcut_and_parity_removes_it(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        arr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        (tmp_path / "real").mkdir(exist_ok=True)
        (tmp_path / "fake").mkdir(exist_ok=True)
        Image.fromarray(arr).save(tmp_path / "real" / f"{i}.jpg", quality=80)  # camera-like
        Image.fromarray(arr[:40, :40]).save(tmp_path / "fake" / f"{i}.png")  # same content, other storage
    m = load_data(tmp_path)
    res = audit(m)
    assert res["auroc_by_cue"]["format"] > 0.95 and res["auroc_by_cue"]["size"] > 0.95
    assert any("format alone" in w for w in res["warnings"])
    par = audit(m, parity=True)
    for cue in ("format", "size", "aspect", "jpeg_settings", "metadata"):
        assert par["auroc_by_cue"][cue] == 0.5
    # training on such data warns, and names the recipe's own shortcut denial
    from aigi.config import TrainConfig
    from aigi.workflows.train import data_warnings

    warned = data_warnings(m, m.subset(range(60)), TrainConfig(views=3))
    assert any("metadata alone tells real from fake" in w and "3 shortcut-denial views" in w for w in warned)
    assert any("calibration split holds 60 images" in w for w in warned)
    assert Image.open(io.BytesIO(jpeg_bytes_parity(Image.new("RGB", (500, 300))))).size == (256, 256)


def test_perturbations_do_what_they_say():
    img = Image.new("RGB", (2000, 1000), (10, 200, 30))
    out = social_media(img)
    assert out.size == (1080, 540)
    assert crop_fraction(img, 0.5).size == (1000, 500)
    key, fn = perturbation("resize", 0.25)
    assert key == "perturb-resize-0.25" and fn(img).size == (500, 250)
    _, noise = perturbation("noise", 8.0)
    a, b = np.asarray(noise(img)), np.asarray(noise(img))
    assert np.array_equal(a, b) and not np.array_equal(a, np.asarray(img))  # seeded by content
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturbation("sharpen", 1)


def test_seeded_subset_caps_every_group(sample_dir):
    m = load_data(sample_dir / "manifest.csv")
    sub = seeded_subset(m, per_group=3, seed=0)
    assert len(sub) == 6 and [s.path for s in sub] == [s.path for s in seeded_subset(m, 3, 0)]


def test_robustness_conditions_every_severity_or_one_named():
    from aigi.evaluation.robustness import conditions

    assert conditions(["jpeg"]) == [("jpeg", 90), ("jpeg", 70), ("jpeg", 50), ("jpeg", 30)]
    assert conditions(["jpeg:50", "resize:0.5", "social", "crop:0.5"]) == [
        ("jpeg", 50), ("resize", 0.5), ("social", 1), ("crop", 0.5)
    ]  # fmt: skip
    assert conditions(["jpeg:40"]) == [("jpeg", 40)] and isinstance(conditions(["jpeg:40"])[0][1], int)
    assert len(conditions()) == 15  # every listed severity of every perturbation
    bad_ones = [
        ("jpeg:50.5", "positive int, e.g. jpeg:90"),
        ("resize:-1", "positive float"),
        ("resize:inf", "positive float"),
        ("jpeg:x", "positive int"),
        ("blurry", "unknown perturbation 'blurry'"),
    ]
    for bad, says in bad_ones:
        with pytest.raises(ValueError, match=says):
            conditions([bad])


@pytest.mark.slow
def test_robustness_and_compare_commands(sample_dir, tmp_path):
    r = run_cli(
        "robustness",
        "--data",
        sample_dir / "manifest.csv",
        "--per-group",
        "2",
        "--perturbations",
        "jpeg:30,social",
        "--out",
        tmp_path / "rob",
    )
    assert r.returncode == 0, r.stderr
    assert "jpeg 30" in r.stdout and "social 1" in r.stdout and (tmp_path / "rob" / "robustness.html").is_file()
    assert "jpeg 90" not in r.stdout  # one severity asked for
    r = run_cli("robustness", "--data", sample_dir / "manifest.csv", "--perturbations", "jpeg:hi")
    assert r.returncode != 0 and "perturbation 'jpeg:hi': the severity must be a positive int" in r.stderr + r.stdout

    m = two_generator_manifest(sample_dir, tmp_path / "two.csv")
    (tmp_path / "a.yaml").write_text("detector: univfd\noptions: {cv_folds: 2}\nviews: 1\nval_fraction: 0.25\n")
    (tmp_path / "b.yaml").write_text(
        "detector: univfd\noptions: {cv_folds: 2}\nviews: 0\nval_fraction: 0.25\ncalibration: isotonic\n"
    )
    r = run_cli(
        "compare",
        "--data",
        m,
        "--config",
        tmp_path / "a.yaml",
        "--config",
        tmp_path / "b.yaml",
        "--per-group",
        "2",
        "--out",
        tmp_path / "cmp",
    )
    assert r.returncode == 0, r.stderr
    assert "default: a" in r.stdout
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert (
        page.count("data:image/png;base64,") >= 5
        and "Embedded default" in page
        and "http" not in page.split("<body>")[1]
    )
    data = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert set(data["detectors"]) == {"a", "b"} and data["default_rule"]["default"] == "a"
    assert data["detectors"]["b"]["validation"]["calibration"] == "isotonic"
    assert {r["perturbation"] for r in data["detectors"]["a"]["robustness"]} >= {"none", "jpeg", "social"}


def test_source_fpr_threshold_lets_the_worst_real_source_set_the_bar():
    from aigi.workflows.train import source_fpr_threshold

    a = [0.95, 0.85] + [0.1] * 18  # 20 reals: at 5 % one may be flagged, so the bar sits just above 0.85
    b = [0.2] * 20
    c = [0.99] * 5  # too few images to set a bar
    p = np.array(a + b + c + [0.9, 0.3])
    y = np.array([0] * 45 + [1, 1])
    src = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 5 + ["gen", "gen"])
    t = source_fpr_threshold(p, y, src, 0.05)
    assert 0.85 < t < 0.85 + 1e-9
    assert source_fpr_threshold(np.array(b + [0.9]), np.array([0] * 20 + [1]), np.array(["b"] * 21), 0.05) == 0.5


@pytest.mark.slow
def test_training_sets_the_threshold_by_the_worst_validation_source_and_records_the_rates(sample_dir):
    """``max_source_fpr`` end to end: the saved threshold is the lowest at which no validation real source of
    10 or more images flags more than the cap, and the run records every source's rate at it."""
    from aigi.calibration import sigmoid
    from aigi.config import TrainConfig
    from aigi.data.renders import KINDS
    from aigi.data.splits import validation_split
    from aigi.scoring import score_manifest
    from aigi.workflows.train import recipe_manifest, train_detector

    cfg = TrainConfig(
        detector="pixel", options={"steps": 2}, val_fraction=0.5, renders=160, max_source_fpr=0.1, calibration="none"
    )
    m = load_data(sample_dir / "manifest.csv")
    det = train_detector(cfg, m)
    at = det.training_info["validation"]["at_threshold"]
    thr = det.calibration.threshold
    assert at["threshold"] == thr >= 0.5
    val = recipe_manifest(cfg, m).subset(validation_split(recipe_manifest(cfg, m), 0.5, 0)[1])
    p = sigmoid(score_manifest(det, val)[0])
    y, src = np.array(val.labels), np.array([s.generator for s in val])
    big = [g for g in set(src[y == 0]) if ((src == g) & (y == 0)).sum() >= 10]
    assert sorted(big) == sorted(f"render-{k}" for k in KINDS)  # 20 of each kind, 10 in validation
    for g, r in at["fpr_per_real_source"].items():  # the recorded rates are the rates
        m_g = (src == g) & (y == 0)
        assert r == {"n": int(m_g.sum()), "rate": pytest.approx(float((p[m_g] >= thr).mean()))}
    assert all(at["fpr_per_real_source"][g]["rate"] <= 0.1 for g in big)
    if thr > 0.5:  # and it is the lowest: a hair below, some large source is over the cap
        assert any((p[(src == g) & (y == 0)] >= thr - 1e-6).mean() > 0.1 for g in big)
    assert set(at["tpr_per_generator"]) == {"dcgan-face"}


def test_recipe_manifest_adds_renders_then_caps_every_group(sample_dir):
    """What a protocol fold trains on is what ``aigi train`` trains on: renders added, then the cap."""
    from aigi.config import TrainConfig
    from aigi.workflows.train import recipe_manifest

    m = load_data(sample_dir / "manifest.csv")  # 8 real photos of one source per kind, 8 DCGAN faces
    assert recipe_manifest(TrainConfig(detector="univfd"), m) is m
    capped = recipe_manifest(TrainConfig(detector="univfd", max_per_generator=3), m)
    groups = {}
    for s in capped:
        groups[(s.label, s.generator)] = groups.get((s.label, s.generator), 0) + 1
    assert max(groups.values()) == 3 and len(groups) == len({(s.label, s.generator) for s in m})
    with_r = recipe_manifest(TrainConfig(detector="univfd", renders=4, max_per_generator=3), m)
    rendered = [s for s in with_r if s.generator.startswith("render-")]
    assert rendered and all(s.label == 0 for s in rendered)
    assert len(with_r) == len(capped) + len(rendered)
    assert [s.path for s in with_r] == [
        s.path for s in recipe_manifest(TrainConfig(detector="univfd", renders=4, max_per_generator=3), m)
    ]
