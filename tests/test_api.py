"""The embedded default through the Python API, as a user calls it."""

import math

from aigi import load_detector, shipped_detectors
from aigi.records import RECORD_FIELDS


def test_load_detector_predict_returns_records(sample_dir, tmp_path):
    assert "univfd" in shipped_detectors()
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
        assert tuple(r)[:8] == RECORD_FIELDS
        assert r["verdict"] == ("fake" if r["p_fake"] >= r["threshold"] else "real")
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
    assert abs(plain["p_fake"] - clean) < 1e-6  # the reported score is the clean image's


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
