"""Shortcut audit: can file metadata alone, never a pixel, tell real from fake in a data set?

Groups of cues, each scored by 5-fold cross-validated AUROC of a gradient-boosted classifier:
format, size (width, height), aspect ratio, bytes per pixel, JPEG settings (quality estimated
from the quantisation tables, chroma subsampling, progressive), metadata (EXIF, ICC), and all
together. An AUROC well above 0.5 means a detector trained on this set can score well by
learning the cue instead of generation artefacts. ``parity`` audits the set after re-encoding
every image identically, which is what a parity-preprocessed training would see.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from aigi.data.manifest import Manifest
from aigi.io import ALLOWED_FORMATS, load_image, read_bytes
from aigi.transforms import jpeg_bytes_parity

WARN_AUROC = 0.65
# IJG (libjpeg) standard luminance table, quality 50; quality q scales it by 5000/q (q < 50) or 200-2q.
_IJG_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=float,
)


def estimate_jpeg_quality(luma_table) -> float:
    """Invert the IJG scaling from the luminance quantisation table (order-independent: uses sums)."""
    scale = 100.0 * float(np.sum(np.asarray(luma_table, float))) / float(_IJG_LUMA.sum())
    q = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return float(np.clip(q, 1, 100))


def file_metadata(data: bytes) -> dict:
    """Metadata of one file, read from its header and tables (no pixel is decoded)."""
    img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    w, h = img.size
    meta = {
        "format": img.format or "unknown",
        "width": w,
        "height": h,
        "aspect": w / h,
        "bytes_per_pixel": len(data) / (w * h),
        "jpeg_quality": -1.0,
        "subsampling": -1,
        "progressive": int(bool(img.info.get("progressive") or img.info.get("progression"))),
        "has_exif": int(bool(img.info.get("exif"))),
        "has_icc": int(bool(img.info.get("icc_profile"))),
    }
    if img.format in ("JPEG", "MPO") and getattr(img, "quantization", None):
        from PIL import JpegImagePlugin

        meta["jpeg_quality"] = estimate_jpeg_quality(img.quantization[0])  # type: ignore[attr-defined]
        meta["subsampling"] = int(JpegImagePlugin.get_sampling(img))
    return meta


CUE_GROUPS: dict[str, Callable[[dict], list[float]]] = {
    "format": lambda m: [float(m["format"] == f) for f in ALLOWED_FORMATS],
    "size": lambda m: [m["width"], m["height"]],
    "aspect": lambda m: [m["aspect"]],
    "bytes_per_pixel": lambda m: [m["bytes_per_pixel"]],
    "jpeg_settings": lambda m: [m["jpeg_quality"], m["subsampling"], m["progressive"]],
    "metadata": lambda m: [m["has_exif"], m["has_icc"]],
}


def cue_auroc(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if np.all(X == X[0]):  # a constant cue predicts nothing
        return 0.5
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    p = cross_val_predict(
        HistGradientBoostingClassifier(max_iter=200, random_state=seed), X, y, cv=cv, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(y, p))


def audit(manifest: Manifest, parity: bool = False, progress: Callable[[int], None] | None = None) -> dict:
    """Per cue group and for all together: cross-validated AUROC of metadata alone."""
    from aigi.provenance import read_provenance

    metas, labels, errors = [], [], []
    declared = {"real": {"ai": 0, "camera": 0, "files": 0}, "fake": {"ai": 0, "camera": 0, "files": 0}}
    for s in manifest:
        try:
            data = read_bytes(s.path)
            said = {f["says"] for f in read_provenance(data)}
            cls = "fake" if s.label else "real"
            declared[cls]["files"] += 1
            declared[cls]["ai"] += bool(said & {"ai", "edited"})
            declared[cls]["camera"] += "camera" in said
            if parity:
                data = jpeg_bytes_parity(load_image(s.path).image)
            metas.append(file_metadata(data))
            labels.append(s.label)
        except Exception as e:  # noqa: BLE001 - an unreadable file is reported, not fatal
            errors.append(f"{s.path}: {e}")
        if progress:
            progress(1)
    y = np.asarray(labels)
    if len(set(labels)) < 2:
        raise ValueError("the audit needs both real and fake images")
    groups = {name: np.array([f(m) for m in metas], dtype=float) for name, f in CUE_GROUPS.items()}
    result = {name: cue_auroc(X, y) for name, X in groups.items()}
    result["all"] = cue_auroc(np.concatenate(list(groups.values()), axis=1), y)

    def median(key, label):
        vals = [m[key] for m, lab_ in zip(metas, labels) if lab_ == label and m[key] != -1]
        return float(np.median(vals)) if vals else None

    summary = {
        cls: {
            "median_width": median("width", lab),
            "median_height": median("height", lab),
            "median_jpeg_quality": median("jpeg_quality", lab),
            "median_bytes_per_pixel": median("bytes_per_pixel", lab),
            "formats": {
                f: sum(1 for m, lab_ in zip(metas, labels) if lab_ == lab and m["format"] == f)
                for f in sorted({m["format"] for m in metas})
            },
        }
        for cls, lab in (("real", 0), ("fake", 1))
    }
    warnings = [f"{name} alone predicts the label (AUROC {a:.3f})" for name, a in result.items() if a >= WARN_AUROC]
    for kind in ("ai", "camera"):
        r, f = declared["real"][kind], declared["fake"][kind]
        if (r == 0) != (f == 0):
            warnings.append(
                f"only the {'fakes' if f else 'reals'} declare {kind} origin ({max(r, f)} files): a provenance "
                "declaration is the label here, so metadata must never reach a learned detector"
            )
    return {
        "data": manifest.source,
        "parity": parity,
        "n": len(metas),
        "auroc_by_cue": result,
        "by_class": summary,
        "declarations": declared,  # files whose metadata, manifest or watermark declare an origin (aigi.provenance)
        "warnings": warnings,
        "errors": errors,
    }
