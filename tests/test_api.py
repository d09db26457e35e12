"""The embedded default through the Python API, as a user calls it."""

import math

from aigi import load_detector, shipped_detectors
from aigi.records import RECORD_FIELDS


def test_load_detector_predict_returns_records(sample_dir, tmp_path):
    assert "univfd" in shipped_detectors()
    det = load_detector()
    paths = sorted(str(p) for p in (sample_dir / "real").glob("*.png"))[:3] + \
        sorted(str(p) for p in (sample_dir / "fake").glob("*.png"))[:3]
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
