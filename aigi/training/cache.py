"""Frozen-backbone features on disk, so each image passes through the backbone once (the scoring
engine, :func:`aigi.scoring.extract`, fills and reads it; ``compute_cached`` serves other job lists).

An entry is keyed by (feature kind, backbone + its preprocessing, view, image content hash):
``$AIGI_CACHE_DIR/features/<kind>/<backbone key>/<view key>/<sha[:2]>/<sha>.npy``.
View 0 is the plain image; view k >= 1 is the k-th seeded augmented view drawn by a
:class:`~aigi.transforms.ViewRecipe` (its key and the seed are part of the view key), so
training can use K cached augmented views per image instead of fresh augmentation.

Writes go to a temporary file that is renamed into place, so a killed run leaves no
partial entry, and a rerun computes only what is missing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from aigi.io import sha256_file
from aigi.paths import cache_dir
from aigi.pipeline import iter_batches
from aigi.transforms import ViewRecipe


def hash_files(paths: Sequence[str]) -> tuple[list[str | None], list[str | None]]:
    """The content hash of every file (the cache's key), and per file ``None`` or why it cannot be read."""
    shas: list[str | None] = [None] * len(paths)
    errors: list[str | None] = [None] * len(paths)
    for i, p in enumerate(paths):
        try:
            shas[i] = sha256_file(p)
        except OSError as e:
            errors[i] = f"{p}: cannot read file ({e.strerror or e})"
    return shas, errors


def view_key(
    view: int, recipe: ViewRecipe, seed: int, perturb: tuple[str, Callable] | None = None, parity: bool = False
) -> str:
    """The cache's view key: ``plain``, the k-th augmented view of ``recipe`` and ``seed``, or a
    perturbation's key; prefixed when every image is parity re-encoded first."""
    key = perturb[0] if perturb else ("plain" if view == 0 else f"{recipe.key()}-seed{seed}-view{view}")
    return f"parity-{key}" if parity else key


class FeatureCache:
    """A directory of per-image feature vectors for one (kind, backbone)."""

    def __init__(self, backbone_key: str, kind: str = "pooled", root: str | os.PathLike | None = None):
        self.root = Path(root) if root else cache_dir() / "features" / kind / backbone_key
        self._lock = threading.Lock()

    def _path(self, sha256: str, vkey: str) -> Path:
        return self.root / vkey / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str, vkey: str) -> np.ndarray | None:
        p = self._path(sha256, vkey)
        try:
            return np.load(p, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError):  # unreadable entry: drop it and recompute
            p.unlink(missing_ok=True)
            return None

    def put(self, sha256: str, vkey: str, value: np.ndarray) -> None:
        p = self._path(sha256, vkey)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(value), allow_pickle=False)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def compute_cached(
    cache: FeatureCache,
    keys: Sequence[tuple[str, str]],
    make: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
    encode: Callable[[np.ndarray], np.ndarray],
    aux_cache: FeatureCache | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray | None], list[np.ndarray | None], list[str | None]]:
    """Features for arbitrary jobs (GAMMA's manipulated variants, token sequences...), through the cache.

    ``keys[i] = (sha256, view key)`` names job i's entry; ``make(i)`` builds its preprocessed pixels
    [3, H, W] and an optional auxiliary array (e.g. the variant's mask targets), stored in ``aux_cache``
    beside the features; ``encode(batch)`` runs the backbone on a stack of pixels. Only missing entries
    are made. Returns (features, aux, errors) per job; failed jobs get None and their error.
    """
    feats: list[np.ndarray | None] = [None] * len(keys)
    aux: list[np.ndarray | None] = [None] * len(keys)
    errors: list[str | None] = [None] * len(keys)
    todo = []
    for i, (sha, vkey) in enumerate(keys):
        hit = cache.get(sha, vkey)
        hit_aux = aux_cache.get(sha, vkey) if aux_cache is not None else None
        if hit is not None and (aux_cache is None or hit_aux is not None):
            feats[i], aux[i] = hit, hit_aux
        else:
            todo.append(i)
    if progress:
        progress(len(keys) - len(todo))
    for batch in iter_batches(todo, make, batch_size):
        ok = []
        for k, x in batch:
            if isinstance(x, Exception):
                errors[todo[k]] = str(x)
            else:
                ok.append((todo[k], x))
        if ok:
            out = encode(np.stack([x[0] for _, x in ok]))
            for (i, (_, extra)), f in zip(ok, out):
                sha, vkey = keys[i]
                cache.put(sha, vkey, f)
                feats[i] = f
                if aux_cache is not None and extra is not None:
                    aux_cache.put(sha, vkey, extra)
                    aux[i] = extra
        if progress:
            progress(len(batch))
    return feats, aux, errors
