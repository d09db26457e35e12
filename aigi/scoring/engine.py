"""The engine's fresh path: an image (a path, bytes, a PIL image, an array) through parity, a view, the
detector's four stages and calibration into a record (``predict``), plus the stages' shared plumbing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from aigi.io import DEFAULT_LIMITS, DecodeLimits, ImageDecodeError, load_image
from aigi.pipeline import iter_batches
from aigi.records import make_record, verdict_for
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


def error_text(x: Exception) -> str:
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
                records[i] = make_record(names[i], error=error_text(x), **common)
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
def onnx_session(path, device: str = "cpu"):
    """An onnxruntime session for an exported detector graph (CUDA when asked for and available)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=providers)
