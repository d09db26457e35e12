"""From decoded uploads to the records a request gets back: the batch scorer the micro-batcher runs, and the
answer of one request (scored images and failed files, in upload order)."""

from __future__ import annotations

import base64
import io

from aigi.explain import overlay_for
from aigi.io import ImageDecodeError
from aigi.records import make_record, with_operating_point


def png_data_url(img, max_side: int) -> str:
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def batch_scorer(detector, max_batch: int, heatmap_max_side: int):
    """The function the micro-batcher runs on items (decoded image, name, wants a heatmap, threshold) from
    several requests at once. The batch is scored at its lowest threshold, then decided at each request's:
    whatever is fake or unsure at a higher threshold is so at a lower one too, so no request loses a field kept
    only for those (attribution)."""

    def score(items: list) -> list[dict]:
        images, names, want, thresholds = zip(*items)
        low = min(thresholds)
        recs = detector.predict_decoded(list(images), list(names), threshold=low, batch_size=max_batch)
        band = detector.calibration.unsure_band
        recs = [r if t == low else with_operating_point(r, t, band) for r, t in zip(recs, thresholds)]
        for rec, img, w in zip(recs, images, want):
            if w:
                over = overlay_for(rec, img.image, detector)
                if over is not None:
                    rec["heatmap_png"] = png_data_url(over, heatmap_max_side)
        return recs

    return score


def request_records(detector, decoded: list, names: list[str], shas: list[str], scored: list[dict], threshold: float):
    """One record per upload, in order: the scored ones (``scored``, in the order of the decoded images) and an
    ``invalid_image`` error record for each file that did not decode."""
    it = iter(scored)
    out = []
    for d, n, sha in zip(decoded, names, shas):
        if isinstance(d, ImageDecodeError):
            out.append(
                make_record(
                    n,
                    sha256=sha,
                    error=d.reason,
                    threshold=threshold,
                    detector=detector.name,
                    detector_version=detector.version,
                    error_code="invalid_image",
                )
            )
        else:
            out.append(next(it))
    return out
