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

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from aigi.io import DEFAULT_LIMITS, DecodeLimits, ImageDecodeError, load_image
from aigi.pipeline import iter_batches
from aigi.records import make_record, verdict_for
from aigi.training.cache import FeatureCache, hash_files, view_key
from aigi.transforms import DEFAULT_VIEW_RECIPE, MILD_DEGRADATIONS, ViewRecipe, augmented_view, view_rng

Perturb = tuple[str, Callable]


# --- batches ------------------------------------------------------------------------------
def stack_inputs(items: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-image input dicts -> one dict of arrays with a leading batch axis."""
    return {k: np.stack([it[k] for it in items]) for k in items[0]}


def take(features: dict[str, Any], rows) -> dict[str, Any]:
    """Rows ``rows`` (a slice or index list) of every field of a feature batch (arrays and per-image lists)."""
    out = {}
    for k, v in features.items():
        if isinstance(v, (np.ndarray, torch.Tensor)):
            out[k] = v[rows]
        else:
            out[k] = [v[i] for i in (range(len(v))[rows] if isinstance(rows, slice) else rows)]
    return out


def to_batch(det, features: dict[str, Any]) -> dict[str, Any]:
    """Arrays become tensors on the detector's device; per-image lists pass through."""
    dev = det.device_name
    return {
        k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) if isinstance(v, np.ndarray) else v
        for k, v in features.items()
    }


@torch.inference_mode()
def forward(det, features: dict[str, Any], chunk: int = 256) -> dict[str, Any]:
    """``det.forward`` on a feature batch, ``chunk`` rows at a time, outputs on the CPU."""
    det.eval()
    n = _rows(features)
    outs = [det(to_batch(det, take(features, slice(a, a + chunk)))) for a in range(0, max(n, 1), chunk)] if n else []
    if not outs:
        return {"logit": torch.zeros(0)}
    merged: dict[str, Any] = {}
    for k in outs[0]:
        if isinstance(outs[0][k], torch.Tensor):
            merged[k] = torch.cat([o[k].detach().float().cpu() for o in outs])
        else:
            merged[k] = [x for o in outs for x in o[k]]
    return merged


def _rows(features: dict[str, Any]) -> int:
    return len(next(iter(features.values()))) if features else 0


def _run(det, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Features then forward for one batch of inputs (or the exported graph, after ``use_onnx``)."""
    if det.onnx is not None:
        names = [o.name for o in det.onnx.get_outputs()]
        got = det.onnx.run(names, {"pixels": np.ascontiguousarray(inputs["pixels"], np.float32)})
        return {n: torch.from_numpy(v) for n, v in zip(names, got)}
    return forward(det, det.features(inputs))


def prepared(det, image):
    """What every decoded image goes through before any view, crop or manipulation: the detector's
    preparation (parity re-encoding when it was trained with it). Only the engine calls ``det.prepare``; code
    that reads images for a detector (training sets, maps, localisation) goes through here."""
    return det.prepare(image)


def load_prepared(det, path, limits: DecodeLimits = DEFAULT_LIMITS):
    """A file decoded with ``limits`` (``io.load_image``), then :func:`prepared`."""
    return prepared(det, load_image(path, limits).image)


def view_inputs(
    det,
    image,
    sha: str,
    view: int = 0,
    recipe: ViewRecipe = DEFAULT_VIEW_RECIPE,
    seed: int = 0,
    perturb: Perturb | None = None,
) -> dict[str, np.ndarray]:
    """A decoded image -> the detector's inputs for one view: parity (:func:`prepared`), then the
    perturbation or the seeded k-th augmented view, then ``inputs``."""
    img = prepared(det, image)
    if perturb is not None:
        img = perturb[1](img)
    elif view:
        img = augmented_view(img, view_rng(sha, view, seed), recipe)
    return det.inputs(img)


def _error_text(x: Exception) -> str:
    return x.reason if isinstance(x, ImageDecodeError) else f"{type(x).__name__}: {x}"


# --- users: fresh scores and records ----------------------------------------------------------
def predict(
    det,
    keys: Sequence,
    decode: Callable,
    names: Sequence[str],
    threshold: float | None = None,
    fpr: float | None = None,
    unsure_band: float | None = None,
    ensemble: bool = False,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One record per key, in order; ``on_record`` gets each one as soon as it and all before it are done
    (so a caller can write results as they come). ``decode(key)`` gives an ``io.DecodedImage``; failures become
    error records (a decode failure, or the model failing on a batch: the other batches go on).

    ``p_fake`` is the calibrated probability of the detector's logit; ``unsure_band`` (default: the
    stored one) turns scores near the threshold into ``unsure``; ``ensemble`` also scores mild
    degradations of each image (JPEG q85, 0.75x, slight blur) and answers ``unsure`` when one flips
    the verdict."""
    cal = det.calibration
    thr = cal.threshold_for(threshold, fpr)
    band = cal.unsure_band if unsure_band is None else float(unsure_band)
    variants = list(MILD_DEGRADATIONS.items()) if ensemble else []
    det.ready()  # the model is built before any image: its failure is the run's, not an image's
    common = {"threshold": thr, "detector": det.name, "detector_version": det.version}

    def load(key):
        img = decode(key)
        views = [view_inputs(det, img.image, img.sha256)]
        views += [view_inputs(det, img.image, img.sha256, perturb=(name, f)) for name, f in variants]
        return img, views

    records: list[dict[str, Any] | None] = [None] * len(keys)
    emitted = 0
    for batch in iter_batches(list(keys), load, batch_size):
        ok = []
        for i, x in batch:
            if isinstance(x, Exception):
                records[i] = make_record(names[i], error=_error_text(x), **common)
            else:
                ok.append((i, x))
        if ok:
            try:
                out = _run(det, stack_inputs([v for _, (_, views) in ok for v in views]))
            except Exception as e:  # noqa: BLE001 - a failing batch must not lose the others
                for i, _ in ok:
                    records[i] = make_record(names[i], error=f"model failed on this batch: {e}", **common)
            else:
                p = cal.apply_logit(out["logit"].double().numpy())
                passes = out["views"].long().tolist() if "views" in out else [1] * len(p)
                row = 0
                for i, (img, views) in ok:
                    clean = float(p[row])
                    extra = det.extra_fields(out, row)
                    reason = None
                    if variants:
                        alt = {name: float(q) for (name, _), q in zip(variants, p[row + 1 : row + len(views)])}
                        extra["ensemble_p_fake"] = alt
                        flips = [
                            f"{n} gives {q:.3f}"
                            for n, q in alt.items()
                            if verdict_for(q, thr) != verdict_for(clean, thr)
                        ]
                        if flips:
                            reason = f"verdict changes under mild degradation ({'; '.join(flips)})"
                    records[i] = make_record(
                        names[i],
                        sha256=img.sha256,
                        width=img.size[0],
                        height=img.size[1],
                        format=img.format,
                        frames=img.frames,
                        views=int(sum(passes[row : row + len(views)])),
                        p_fake=clean,
                        unsure_band=band,
                        unsure_reason=reason,
                        provenance=img.provenance,
                        **common,
                        **extra,
                    )
                    row += len(views)
        if progress:
            progress(len(batch))
        while on_record is not None and emitted < len(records) and records[emitted] is not None:
            on_record(records[emitted])  # type: ignore[arg-type]
            emitted += 1
    return records  # type: ignore[return-value]


ACCEPTED = "a path (str or os.PathLike), bytes, a PIL.Image, a uint8 numpy array [H, W, 3], or a list of these"


def predict_images(
    det, images, limits: DecodeLimits = DEFAULT_LIMITS, provenance: bool = True, **kw
) -> list[dict[str, Any]]:
    """``predict`` for what a user holds: one path, image, array or bytes, or a list of them. Paths are
    named by themselves; the others ``<bytes 0>``, ``<image 1>``, ``<array 2>`` by their position.
    ``provenance`` reads what files and bytes declare (``aigi.provenance``) into each record."""
    import os

    from PIL import Image

    from aigi.io import decode_bytes, from_pixels

    single = isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray))
    items = [images] if single else images
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"predict takes {ACCEPTED}; got {type(images).__name__}")
    names: list[str] = []
    for i, x in enumerate(items):
        if isinstance(x, (str, os.PathLike)):
            names.append(str(x))
        elif isinstance(x, (bytes, bytearray, Image.Image, np.ndarray)):
            kind = "bytes" if isinstance(x, (bytes, bytearray)) else "image" if isinstance(x, Image.Image) else "array"
            names.append(f"<{kind} {i}>")
        else:
            raise TypeError(f"predict takes {ACCEPTED}; item {i} is a {type(x).__name__}")

    side = det.decode_short_side()

    def decode(i: int):
        x = items[i]
        if isinstance(x, (str, os.PathLike)):
            return load_image(x, limits, provenance, side)
        if isinstance(x, (bytes, bytearray)):
            return decode_bytes(bytes(x), names[i], limits, provenance, side)
        return from_pixels(x, names[i], limits)

    return predict(det, list(range(len(items))), decode, names, **kw)


# --- training and evaluation: the same stages through the feature cache --------------------------
def feature_caches(det) -> dict[str, FeatureCache] | None:
    """One cache per cached field, or None when the detector's features are not cached."""
    key = det.feature_key()
    if key is None:
        return None
    fields = det.cached_features
    return {
        f: FeatureCache(key, kind=det.feature_kind if len(fields) == 1 else f"{det.feature_kind}-{f}") for f in fields
    }


def extract(
    det,
    paths: Sequence[str],
    views: Sequence[int] = (0,),
    recipe: ViewRecipe = DEFAULT_VIEW_RECIPE,
    seed: int = 0,
    perturb: Perturb | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """Features of every path and view: ``{field: [N, V, ...]}`` (rows of failed files are NaN, or 0 for
    integer fields) and, per path, ``None`` or why it failed.

    View 0 is the image as it is; view k >= 1 the k-th seeded augmented view of ``recipe``;
    ``perturb=(key, fn)`` degrades the plain view (robustness, format swap). Cached entries are reused
    and missing ones computed (each image decoded once for all its views) and stored; a rerun computes
    only what is missing. The fields are the detector's ``cached_features`` when it caches, else every
    array field of its features."""
    views = list(views)
    if perturb is not None and views != [0]:
        raise ValueError("a perturbation applies to the plain view only")
    caches = feature_caches(det)
    shas, errors = hash_files(paths)

    def vkey(v: int) -> str:
        return view_key(v, recipe, seed, perturb, det.parity)

    out: dict[str, np.ndarray] = {}

    def put(i: int, j: int, feats: dict[str, np.ndarray]) -> None:
        for f, val in feats.items():
            if f not in out:
                fill = np.nan if np.issubdtype(val.dtype, np.floating) else 0
                out[f] = np.full((len(paths), len(views), *val.shape), fill, dtype=val.dtype)
            out[f][i, j] = val

    todo: dict[int, list[int]] = {}  # image -> the view positions still missing
    for i, sha in enumerate(shas):
        if sha is None:
            continue
        for j, v in enumerate(views):
            hit = {f: c.get(sha, vkey(v)) for f, c in caches.items()} if caches else None
            if hit and all(h is not None for h in hit.values()):
                put(i, j, hit)  # type: ignore[arg-type]
            else:
                todo.setdefault(i, []).append(j)
    if progress:
        progress(len(paths) * len(views) - sum(len(js) for js in todo.values()))

    jobs = [(i, j) for i, js in todo.items() for j in js]
    if jobs:
        det.ready()
    decoded: dict[int, Any] = {}
    lock = threading.Lock()
    remaining = {i: len(js) for i, js in todo.items()}

    def load(job):
        i, j = job
        with lock:
            img = decoded.get(i)
        if img is None:
            img = load_image(paths[i], limits).image
            with lock:
                decoded[i] = img
        return view_inputs(det, img, shas[i], views[j], recipe, seed, perturb)  # type: ignore[arg-type]

    for batch in iter_batches(jobs, load, batch_size):
        ok = []
        for k, x in batch:
            if isinstance(x, Exception):
                errors[jobs[k][0]] = f"{paths[jobs[k][0]]}: {_error_text(x)}"
            else:
                ok.append((k, x))
        if ok:
            feats = det.features(stack_inputs([x for _, x in ok]))
            fields = list(caches) if caches else [f for f, v in feats.items() if isinstance(v, np.ndarray)]
            for n, (k, _) in enumerate(ok):
                i, j = jobs[k]
                row = {f: np.asarray(feats[f][n]) for f in fields}
                put(i, j, row)
                if caches:
                    for f, c in caches.items():
                        c.put(shas[i], vkey(views[j]), row[f])  # type: ignore[arg-type]
        for k, _ in batch:
            i = jobs[k][0]
            remaining[i] -= 1
            if remaining[i] == 0:
                with lock:
                    decoded.pop(i, None)
        if progress:
            progress(len(batch))
    return out, errors


def forward_manifest(
    det, manifest, perturb: Perturb | None = None, batch_size: int = 16, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, Any] | None, np.ndarray, list[str | None]]:
    """The detector's whole forward output over every readable sample's plain view (or ``perturb`` of it),
    through the feature cache: (output, or None when nothing could be read; which samples it covers; per-sample
    errors). Row k of the output is the k-th readable sample (``extra_fields(out, k)`` gives its record fields)."""
    feats, errors = extract(
        det, [s.path for s in manifest], [0], perturb=perturb, batch_size=batch_size, progress=progress
    )
    ok = np.array([e is None for e in errors], dtype=bool)
    out = forward(det, {k: v[ok, 0] for k, v in feats.items()}) if ok.any() else None
    return out, ok, errors


def score_manifest(
    det, manifest, perturb: Perturb | None = None, batch_size: int = 16, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, list[str | None]]:
    """Raw logits of every sample's plain view (or ``perturb`` of it) through the feature cache (NaN
    where the file failed), and per-sample errors."""
    out, ok, errors = forward_manifest(det, manifest, perturb, batch_size, progress)
    return logits(out, ok), errors


def logits(out: dict[str, Any] | None, ok: np.ndarray) -> np.ndarray:
    """A :func:`forward_manifest` output's logits, one per sample (NaN where the file failed)."""
    z = np.full(len(ok), np.nan)
    if out is not None:
        z[ok] = out["logit"].double().numpy()
    return z


def calibrated(det, z: np.ndarray) -> np.ndarray:
    """Raw logits (NaN for failed files) -> calibrated p_fake (NaN kept)."""
    p = np.full(z.shape, np.nan)
    ok = ~np.isnan(z)
    p[ok] = det.calibration.apply_logit(z[ok])
    return p


def calibrated_scores(
    det, manifest, perturb: Perturb | None = None, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, list[str | None]]:
    """Calibrated p_fake of every sample (NaN where the file failed) and per-sample errors."""
    z, errors = score_manifest(det, manifest, perturb, progress=progress)
    return calibrated(det, z), errors


def onnx_session(path, device: str = "cpu"):
    """An onnxruntime session for an exported detector graph (CUDA when asked for and available)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=providers)


__all__ = [
    "prepared",
    "load_prepared",
    "predict",
    "predict_images",
    "extract",
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
