"""The one result record, shared by ``detect`` (CSV/JSON/table), the Python API and the service.

Fields: ``path, sha256, width, height, format, frames, verdict (real|fake|unsure|error), p_fake,
threshold, detector, detector_version, error`` plus ``reason`` (why ``unsure``), ``note`` (e.g. only the
first frame of an animation was judged) and method-specific fields (``branch_scores``, ``caption``,
``mask`` ...). ``width``/``height`` are after EXIF orientation; ``frames`` counts the file's frames.
"""

from __future__ import annotations

from typing import Any

RECORD_FIELDS = (
    "path", "sha256", "width", "height", "format", "frames", "views",
    "verdict", "p_fake", "threshold", "detector", "detector_version", "error",
)  # fmt: skip
# A record as one flat row (CSV, JSONL's order, Parquet): the fields, the reason and note, and every
# method-specific field as one JSON object in "extra".
ROW_FIELDS = (*RECORD_FIELDS, "reason", "note", "extra")
INT_FIELDS = ("width", "height", "frames", "views")
FLOAT_FIELDS = ("p_fake", "threshold")
# Below this many pixels on the short side an image is too small to judge: the verdict is "unsure".
MIN_SIDE = 64
VERDICTS = ("real", "fake", "unsure", "error")


def to_row(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as a flat row of ``ROW_FIELDS`` (method-specific fields JSON-encoded in ``extra``)."""
    import json

    extra = {k: v for k, v in rec.items() if k not in ROW_FIELDS}
    row = {k: rec.get(k) for k in ROW_FIELDS if k != "extra"}
    row["extra"] = json.dumps(extra) if extra else None
    return row


def verdict_for(p_fake: float, threshold: float) -> str:
    """``fake`` when p_fake >= threshold, else ``real``."""
    return "fake" if p_fake >= threshold else "real"


def unsure_interval(threshold: float, unsure_band: float) -> tuple[float, float]:
    """The open interval of calibrated scores that get ``unsure``: ``unsure_band`` on each side of the
    threshold, but never more than half the room on that side (between the threshold and 0, or 1).

    So a score far past the threshold is always decided: with threshold 0.969 and band 0.1 the interval
    is (0.869, 0.9845), and 0.99 is ``fake``. At threshold 0.5 the band is used whole: (0.4, 0.6)."""
    if unsure_band <= 0:
        return threshold, threshold
    return threshold - min(unsure_band, threshold / 2), threshold + min(unsure_band, (1.0 - threshold) / 2)


def decide(p_fake: float, threshold: float, unsure_band: float = 0.0) -> tuple[str, str | None]:
    """The verdict and, for ``unsure``, why: a score inside :func:`unsure_interval` is no decision."""
    lo, hi = unsure_interval(threshold, unsure_band)
    if lo < p_fake < hi:
        return (
            "unsure",
            f"p_fake {p_fake:.3f} is between {lo:.3f} and {hi:.3f}, too close to the threshold {threshold:.3f}",
        )
    return verdict_for(p_fake, threshold), None


def make_record(
    path: str,
    *,
    sha256: str | None = None,
    width: int | None = None,
    height: int | None = None,
    format: str | None = None,
    frames: int | None = None,
    views: int | None = None,
    p_fake: float | None = None,
    threshold: float | None = None,
    detector: str = "",
    detector_version: str = "",
    error: str | None = None,
    unsure_band: float = 0.0,
    unsure_reason: str | None = None,
    provenance: list[dict] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a record; ``views`` is how many forward passes the score took (the crop plan, times the
    degradation ensemble). An ``error`` gives verdict ``error`` and no score. ``unsure_reason`` (e.g. from
    the degradation ensemble) forces ``unsure``; the reason goes in the optional ``reason`` field. An image
    under ``MIN_SIDE`` pixels on its short side is ``unsure`` ("too small to judge"), its score kept."""
    reason = None
    if error is None and width is not None and height is not None and min(width, height) < MIN_SIDE:
        unsure_reason = f"too small to judge ({width}x{height}; the minimum is {MIN_SIDE} px on the short side)"
    if error is None and frames is not None and frames > 1:
        extra.setdefault("note", f"animated: only the first of {frames} frames was judged")
    if error is not None:
        verdict, p = "error", None
    else:
        if p_fake is None or threshold is None:
            raise ValueError("a record without error needs p_fake and threshold")
        p = float(p_fake)
        verdict, reason = decide(p, threshold, unsure_band)
        if unsure_reason and verdict != "unsure":
            verdict, reason = "unsure", unsure_reason
    rec = {
        "path": str(path),
        "sha256": sha256,
        "width": width,
        "height": height,
        "format": format,
        "frames": frames,
        "views": views,
        "verdict": verdict,
        "p_fake": p,
        "threshold": None if threshold is None else float(threshold),
        "detector": detector,
        "detector_version": detector_version,
        "error": error,
    }
    if reason:
        rec["reason"] = reason
    if verdict not in ("fake", "unsure"):  # a family is named only for an image judged (maybe) generated
        extra.pop("attribution", None)
    rec.update(extra)
    if provenance is not None:
        apply_provenance(rec, provenance)
    return rec


def apply_provenance(rec: dict[str, Any], findings: list[dict]) -> dict[str, Any]:
    """Put the file's declarations in the record; a verified or unambiguous AI declaration decides the
    verdict (``fake``, reason ``provenance: <generator>``), the detector's own verdict kept beside it as
    ``detector_verdict``. Absence of evidence, or a camera claim, never decides anything."""
    from aigi.provenance import decisive

    rec["provenance"] = findings
    if rec["verdict"] == "error":
        return rec
    rec["detector_verdict"] = rec["verdict"]
    f = decisive(findings)
    if f is not None:
        rec["verdict"] = "fake"
        rec["reason"] = (
            f"provenance: {f['generator'] or 'a generator'} ({f['kind']}{', verified' if f['verified'] else ''})"
        )
    return rec


def with_operating_point(rec: dict[str, Any], threshold: float, unsure_band: float) -> dict[str, Any]:
    """The same record decided at another threshold and unsure band (the service's per-request
    operating point); a degradation-ensemble verdict is not redone, an error stays an error."""
    skip = ("reason", "note", "detector_verdict")
    extra: dict[str, Any] = {k: v for k, v in rec.items() if k not in RECORD_FIELDS and k not in skip}
    base: dict[str, Any] = {k: rec.get(k) for k in RECORD_FIELDS if k not in ("path", "verdict", "threshold")}
    return make_record(rec["path"], threshold=threshold, unsure_band=unsure_band, **base, **extra)
