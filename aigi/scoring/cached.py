"""The engine's cached path: the same stages over many files and views through the feature cache (``extract``),
and the forward output, logits and calibrated scores of a whole manifest."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aigi.io import DEFAULT_LIMITS, DecodeLimits, load_image
from aigi.pipeline import iter_batches
from aigi.scoring.engine import Perturb, error_text, forward, stack_inputs, view_inputs
from aigi.training.cache import FeatureCache, hash_files, view_key
from aigi.transforms import DEFAULT_VIEW_RECIPE, ViewRecipe


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
                errors[jobs[k][0]] = f"{paths[jobs[k][0]]}: {error_text(x)}"
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
