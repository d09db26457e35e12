"""The embedded default through the Python API, as a user calls it."""

import math

import numpy as np
import pytest
from PIL import Image

from aigi import load_detector, shipped_detectors
from aigi.records import RECORD_FIELDS, decide


def test_load_detector_predict_returns_records(sample_dir, tmp_path):
    from aigi.detectors.registry import REGISTRY

    assert set(shipped_detectors()) == set(REGISTRY)  # every method ships weights
    det = load_detector()
    paths = (
        sorted(str(p) for p in (sample_dir / "real").glob("*.png"))[:3]
        + sorted(str(p) for p in (sample_dir / "fake").glob("*.png"))[:3]
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    recs = det.predict(paths + [str(bad)])
    assert [r["path"] for r in recs] == paths + [str(bad)]
    for r in recs[:-1]:
        assert tuple(r)[: len(RECORD_FIELDS)] == RECORD_FIELDS
        assert r["verdict"] == decide(r["p_fake"], r["threshold"], det.calibration.unsure_band)[0]
        assert 0.0 <= r["p_fake"] <= 1.0 and not math.isnan(r["p_fake"])
        assert r["detector"] == "univfd" and r["detector_version"].startswith("univfd@") and r["error"] is None
    assert recs[-1]["verdict"] == "error" and "bad.png" not in recs[-1]["error"] and recs[-1]["p_fake"] is None
    # the same image gives the same score on its own and in a batch
    alone = det.predict(paths[:1])[0]
    assert abs(alone["p_fake"] - recs[0]["p_fake"]) < 1e-4


def test_degradation_ensemble_flags_flipping_verdicts(sample_dir):
    det = load_detector()
    path = str(sample_dir / "real" / "coffee.png")
    first = det.predict([path], unsure_band=0.0, ensemble=True)[0]
    alt = first["ensemble_p_fake"]
    assert set(alt) == {"jpeg-q85", "rescale-0.75", "blur-0.7"}
    clean = first["p_fake"]
    far = max(alt.values(), key=lambda q: abs(q - clean))
    assert far != clean
    cut = (clean + far) / 2  # the clean score and the farthest degraded one fall on opposite sides
    rec = det.predict([path], threshold=cut, unsure_band=0.0, ensemble=True)[0]
    assert rec["verdict"] == "unsure" and "verdict changes under mild degradation" in rec["reason"]
    plain = det.predict([path], threshold=cut, unsure_band=0.0)[0]
    assert plain["verdict"] in ("real", "fake") and "reason" not in plain
    # the reported score is the clean image's (a batch of 1 against one of 4: float rounding apart)
    assert abs(plain["p_fake"] - clean) < 1e-5


def test_calibration_is_applied_to_scores(sample_dir):
    from aigi.calibration import Calibration

    det = load_detector()
    path = str(sample_dir / "real" / "rocket.png")
    saved = det.calibration
    try:
        det.calibration = Calibration()
        raw = det.predict([path])[0]["p_fake"]
        det.calibration = Calibration(method="temperature", params={"T": 2.0})
        softened = det.predict([path])[0]["p_fake"]
    finally:
        det.calibration = saved
    import math

    expect = 1 / (1 + math.exp(-math.log(raw / (1 - raw)) / 2.0))
    assert abs(softened - expect) < 1e-5


def test_predict_takes_what_a_user_holds_and_refuses_the_rest(sample_dir):
    det = load_detector()
    path = sorted((sample_dir / "real").glob("*.png"))[0]
    one = det.predict(str(path))  # a single path is one image, not its characters
    assert len(one) == 1 and one[0]["path"] == str(path) and one[0]["verdict"] != "error"
    img = Image.open(path).convert("RGB")
    recs = det.predict([path, path.read_bytes(), img, np.asarray(img)])
    assert [r["path"] for r in recs] == [str(path), "<bytes 1>", "<image 2>", "<array 3>"]
    assert all(r["verdict"] != "error" for r in recs)
    p = [r["p_fake"] for r in recs]
    # the same pixels, however given (float noise of their places in the batch aside)
    assert p[1] == pytest.approx(p[0], abs=1e-6) and p[3] == pytest.approx(p[2], abs=1e-6)
    assert p[2] == pytest.approx(p[0], abs=1e-3)  # the same pixels (PNG), decoded by us or by the caller
    assert recs[1]["sha256"] == recs[0]["sha256"] and recs[2]["format"] == "PIL" and recs[3]["format"] == "array"
    with pytest.raises(TypeError, match="a path .* bytes, a PIL.Image, a uint8 numpy array"):
        det.predict(42)
    with pytest.raises(TypeError, match="item 1 is a dict"):
        det.predict([str(path), {"path": str(path)}])
    bad = det.predict([np.zeros((8, 8, 3), np.float32)])[0]
    assert bad["verdict"] == "error" and "uint8" in bad["error"]


def test_records_carry_size_format_frames_and_tiny_images_are_unsure(tmp_path):
    det = load_detector()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "one.png")
    Image.new("RGB", (16, 16), (200, 10, 10)).save(tmp_path / "small.png")
    frames = [Image.new("RGB", (80, 72), (40 * i, 90, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    one, small, anim = det.predict([tmp_path / "one.png", tmp_path / "small.png", tmp_path / "anim.gif"])
    assert one["verdict"] == "unsure" and one["reason"].startswith("too small to judge (1x1")
    assert small["verdict"] == "unsure" and "16x16" in small["reason"] and small["p_fake"] is not None
    assert (anim["width"], anim["height"], anim["format"], anim["frames"]) == (80, 72, "GIF", 3)
    assert anim["note"] == "animated: only the first of 3 frames was judged"
    assert (one["width"], one["height"], one["format"], one["frames"]) == (1, 1, "PNG", 1) and "note" not in one


def test_records_count_the_forward_passes_of_the_crop_plan(tmp_path):
    """The default looks at the resized image and, when the image is large enough, at a native-scale crop."""
    det = load_detector()
    crops = det.config.crops
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    Image.new("RGB", (200, 150), (10, 120, 30)).save(tmp_path / "small.png")
    big, small = det.predict([tmp_path / "big.png", tmp_path / "small.png"])
    assert big["views"] == 1 + crops and small["views"] == 1
    ens = det.predict([tmp_path / "big.png"], ensemble=True)[0]
    assert ens["views"] == 4 * (1 + crops)  # the image and its three mild degradations, each on the plan
