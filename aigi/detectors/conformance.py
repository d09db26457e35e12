"""``check_detector``: what every detector must do to plug into the scoring engine, checked on real images.

Run it on an instance of a new detector (trained or freshly initialised) and a few image files; it raises
``AssertionError`` naming the first broken promise. ``tests/test_conformance.py`` runs it for every
registered detector.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from aigi.contract import DetectorContract, EvidenceMap, Localiser, MaskHead, ModelConfig
from aigi.data.manifest import Manifest, Sample
from aigi.detectors.base import Detector
from aigi.detectors.registry import get_detector_class
from aigi.io import load_image
from aigi.scoring import calibrated_scores, extract, forward, load_prepared, stack_inputs, view_inputs


def check_detector(det: Detector, images: list[str], atol: float = 1e-6) -> dict:
    """Check ``det`` against the contract on ``images`` (paths); returns what was checked."""
    cls = type(det)
    assert get_detector_class(cls.name) is cls, f"{cls.__name__} is not registered as {cls.name!r}"
    assert hasattr(cls, "Config"), f"{cls.name}: no Config dataclass"
    det = det.eval()

    # the stages, by hand
    inputs = [view_inputs(det, load_image(p).image, "") for p in images]
    for x in inputs:
        assert x and all(isinstance(v, np.ndarray) for v in x.values()), f"{cls.name}.inputs must give named arrays"
    feats = det.features(stack_inputs(inputs))
    key = det.feature_key()
    if key is not None:
        missing = set(det.cached_features) - set(feats)
        assert not missing, f"{cls.name}: cached_features {sorted(missing)} are not features() fields"
        for f in det.cached_features:
            assert isinstance(feats[f], np.ndarray) and len(feats[f]) == len(images), f"{cls.name}: {f} is not a batch"
    out = forward(det, feats)
    assert tuple(out["logit"].shape) == (len(images),), f"{cls.name}: forward must give one logit per image"
    assert ("mask" in out) == cls.has_mask, f"{cls.name}: has_mask={cls.has_mask} but forward gives {sorted(out)}"
    assert ("branch_logits" in out) == cls.has_branches, f"{cls.name}: has_branches disagrees with forward"
    # the contract and each declared capability against its protocol (aigi.contract)
    assert isinstance(det, DetectorContract), f"{cls.name}: not a DetectorContract"
    assert isinstance(det.config, ModelConfig), f"{cls.name}: its Config does not start from contract.ModelConfig"
    if cls.has_mask:
        assert isinstance(det, MaskHead), f"{cls.name}: has_mask without a MaskHead's preprocessing"
    if isinstance(det, Localiser):
        assert cls.has_mask, f"{cls.name}: a Localiser must be a mask head"
    if isinstance(det, EvidenceMap) and det.has_evidence_map:  # the map adds up to the logit it explains
        ev = det.evidence(load_prepared(det, images[0]))
        total = float(np.sum(ev["contributions"]) + ev["global"])
        assert abs(total - ev["logit"]) < 1e-3, f"{cls.name}: evidence parts sum to {total}, not {ev['logit']}"
    if cls.exportable:
        assert callable(getattr(det, "export_module", None)), f"{cls.name}: exportable without export_module()"
    if cls.has_validation_stage:
        assert cls.fit_validation is not Detector.fit_validation, f"{cls.name}: has_validation_stage, no stage"
    if cls.reserves_samples:
        assert cls.reserved is not Detector.reserved, f"{cls.name}: reserves_samples without reserved()"

    # predict and the cached engine path give the same scores, before and after the cache is filled
    records = det.predict(images)
    assert [r["path"] for r in records] == [str(p) for p in images] and all(r["verdict"] != "error" for r in records)
    p_pred = np.array([r["p_fake"] for r in records])
    manifest = Manifest([Sample(str(p), 0, "check") for p in images], "conformance")
    for run in ("fills the cache", "reads the cache"):
        p_engine, errors = calibrated_scores(det, manifest)
        assert errors == [None] * len(images), errors
        assert np.allclose(p_engine, p_pred, atol=atol), f"{cls.name}: predict != engine when it {run}"
    if key is not None:
        cached, _ = extract(det, [str(p) for p in images])
        assert set(cached) == set(det.cached_features), f"{cls.name}: the cache returned {sorted(cached)}"

    # save -> load gives the same detector, from safetensors, files readable by all
    with tempfile.TemporaryDirectory() as tmp:
        d = det.save_pretrained(Path(tmp) / cls.name)
        for saved_file in d.iterdir():
            mode = os.stat(saved_file).st_mode & 0o777
            assert mode == 0o644, f"{cls.name}: {saved_file.name} is {oct(mode)}, not 0o644"
        back = Detector.from_pretrained(d)
        assert type(back) is cls and back.version.startswith(f"{cls.name}@")
        p_back = np.array([r["p_fake"] for r in back.predict(images)])
        assert np.allclose(p_back, p_pred, atol=atol), f"{cls.name}: a saved and loaded copy scores differently"
    return {
        "detector": cls.name,
        "images": len(images),
        "cached": key is not None,
        "outputs": sorted(k for k in out if k != "loss"),
    }
