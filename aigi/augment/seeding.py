"""Where a manipulated variant's randomness comes from, known before anything is decoded: its RNGs from
(image hash, variant, seed), and its donor by rendezvous hashing over a pool (so removing images from the pool
changes only the hosts whose donor was removed)."""

from __future__ import annotations

import numpy as np


def variant_rngs(sha256: str, k: int, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(plan RNG, pixel RNG) for variant ``k`` of one image: the plan (which manipulation, which donor)
    is known without decoding anything."""
    base = [int(sha256[:15], 16), int(k), int(seed), 0x6A77]
    return np.random.default_rng(base + [0]), np.random.default_rng(base + [1])


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps by design)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def sha_keys(shas) -> np.ndarray:
    return np.array([int(s[:16], 16) for s in shas], dtype=np.uint64)


def rendezvous_donor(host_sha: str, k: int, seed: int, donor_keys: np.ndarray) -> int:
    """Index of the donor for (host, variant): the highest-random-weight member of the pool. Removing
    images from the pool (a held-out generator) changes only the hosts whose donor was removed, so
    cached variants stay valid across protocol folds, and no donor ever comes from outside the pool."""
    with np.errstate(over="ignore"):
        h = mix64(np.array([int(host_sha[:16], 16) ^ (k * 0x9E3779B97F4A7C15 % 2**64) ^ seed], dtype=np.uint64))
        return int(np.argmax(mix64(donor_keys ^ h)))
