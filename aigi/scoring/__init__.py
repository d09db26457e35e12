"""The one scoring engine: every path from an image to a score goes through here.

    decode (io) -> detector.prepare (parity) -> [a view or perturbation] -> detector.inputs(image)
    -> detector.features(batch of inputs)   (frozen, cacheable under detector.feature_key())
    -> detector.forward(features)           ({"logit", "mask"?, "branch_logits"?, ...})
    -> calibration in logit space -> the record

``predict`` (users, the service, ``score``) runs it fresh for every image; ``extract`` (training,
calibration, evaluation, robustness, compare) runs the same stages through the feature cache, so a
cached feature and a fresh one are the same array and both paths give the same logit.

A detector's features are a dict of named arrays with a leading batch axis (plus, when the detector
wants, per-image lists such as ITEM's captions, which are never cached). The cache stores the fields
named in ``detector.cached_features``, one ``.npy`` per (field, view, image):
``$AIGI_CACHE_DIR/features/<kind>/<feature_key>/<view key>/<sha[:2]>/<sha>.npy``.
"""

from aigi.scoring.cached import (
    calibrated,
    calibrated_scores,
    extract,
    feature_caches,
    forward_manifest,
    logits,
    score_manifest,
)
from aigi.scoring.engine import (
    Perturb,
    forward,
    load_prepared,
    onnx_session,
    predict,
    predict_images,
    prepared,
    stack_inputs,
    view_inputs,
)

__all__ = [
    "Perturb",
    "prepared",
    "load_prepared",
    "predict",
    "predict_images",
    "extract",
    "feature_caches",
    "forward_manifest",
    "logits",
    "score_manifest",
    "calibrated",
    "calibrated_scores",
    "forward",
    "view_inputs",
    "stack_inputs",
    "onnx_session",
]
