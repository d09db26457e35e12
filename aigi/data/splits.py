"""Splits by generator and stratified splits, all seeded.

Leave-generator-out (LOGO): for each fake generator G, train on
every other fake generator plus a seeded 80% of the reals (stratified by real source), and
test on G's fakes plus the other 20% of the reals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aigi.data.manifest import Manifest


@dataclass(frozen=True)
class Fold:
    name: str  # the held-out generator, or a descriptive name
    train: np.ndarray  # indices into the manifest
    test: np.ndarray


def stratified_split(strata: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, held) with ``fraction`` of every stratum held (at least 1
    when a stratum has 2 or more members)."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    strata_arr = np.asarray(strata)
    for s in sorted(set(strata)):
        idx = np.flatnonzero(strata_arr == s)
        rng.shuffle(idx)
        n = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            n = min(max(n, 1), len(idx) - 1)
        held.extend(idx[:n].tolist())
    held_arr = np.sort(np.asarray(held, dtype=int))
    rest = np.setdiff1d(np.arange(len(strata)), held_arr)
    return rest, held_arr


def validation_split(manifest: Manifest, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: ``fraction`` of every (label, generator) held out, seeded.
    The one split ``aigi train`` calibrates on; everything that must not see those images uses it."""
    return stratified_split([f"{s.label}/{s.generator}" for s in manifest], fraction, seed)


# Generator families over aigi-dev, aigi-wild, aigi-modern and aigi-human, by maker and model line: a family
# is held out whole (leave-family-out), so a detector is tested on a kind of generator, not on a sibling of
# one it trained on. Names absent from a manifest are ignored.
FAMILIES: dict[str, list[str]] = {
    "gan-faces": ["stylegan2", "stylegan1-3-face"],
    "early-diffusion": ["ldm", "glid3", "disco-diffusion", "dalle-mini"],
    "stable-diffusion": ["sd-1.5", "sdxl", "sd-1.5-face"],
    "openai": ["gpt-4o", "gpt-image-1", "chatgpt-image-gallery"],
    "google": ["nano-banana", "nano-banana-pro"],
    "midjourney": ["midjourney-v6", "midjourney-v7"],
    "open-2023-25": ["flux-1-dev", "qwen-image", "pixart-alpha", "playground-v2", "kandinsky-3", "kolors"],
}


def leave_family_out(
    manifest: Manifest, seed: int = 0, real_test_fraction: float = 0.2, families: dict[str, list[str]] | None = None
) -> list[Fold]:
    """One fold per family (default :data:`FAMILIES`, those with fakes in the data) holding out all its
    generators; reals split as in :func:`leave_generator_out`."""
    present = set(manifest.generators(label=1))
    groups = {f: g for f, g in (families or FAMILIES).items() if present & set(g)}
    return leave_generator_out(manifest, seed, real_test_fraction, groups=groups)


def leave_generator_out(
    manifest: Manifest,
    seed: int = 0,
    real_test_fraction: float = 0.2,
    generators: list[str] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> list[Fold]:
    """One fold per fake generator (or per name in ``generators``; or per group of ``groups``, named
    by the group, holding out all its generators at once)."""
    labels = np.asarray(manifest.labels)
    gens = np.asarray([s.generator for s in manifest.samples])
    real_idx = np.flatnonzero(labels == 0)
    if len(real_idx) == 0:
        raise ValueError("leave-generator-out needs real images in the data")
    real_train_local, real_test_local = stratified_split(list(gens[real_idx]), real_test_fraction, seed)
    real_train, real_test = real_idx[real_train_local], real_idx[real_test_local]
    held_out = groups or {g: [g] for g in (generators or manifest.generators(label=1))}
    if len(manifest.generators(label=1)) < 2 or len(held_out) < (2 if groups else 1):
        raise ValueError("leave-generator-out needs at least two fake generators (leave-family-out two families)")
    folds = []
    for name, members in held_out.items():
        out = (labels == 1) & np.isin(gens, members)
        held = np.flatnonzero(out)
        if len(held) == 0:
            raise ValueError(f"generator {name!r} has no fake images in the data")
        train_fake = np.flatnonzero((labels == 1) & ~out)
        folds.append(
            Fold(name, np.sort(np.concatenate([real_train, train_fake])), np.sort(np.concatenate([real_test, held])))
        )
    return folds


def leave_source_out(manifest: Manifest, sources: list[str] | None = None) -> list[Fold]:
    """One fold per real source (or per name in ``sources``): train on everything but that source's images,
    test on them alone. What a user's own photos meet: the false-positive rate of a kind of real image the
    detector never saw, at the threshold set without it."""
    labels = np.asarray(manifest.labels)
    gens = np.asarray([s.generator for s in manifest.samples])
    real_sources = sorted(set(gens[labels == 0].tolist()))
    if len(real_sources) < 2:
        raise ValueError("leave-source-out needs at least two real sources (the generator column of the reals)")
    folds = []
    for src in sources or real_sources:
        held = (labels == 0) & (gens == src)
        if not held.any():
            raise ValueError(f"real source {src!r} has no images in the data; it has {real_sources}")
        folds.append(Fold(src, np.flatnonzero(~held), np.flatnonzero(held)))
    return folds


def train_on_generators(
    manifest: Manifest, train_generators: list[str], seed: int = 0, real_test_fraction: float = 0.2
) -> Fold:
    """Train on the named fake generators (+80% reals); test on all the other fakes (+20% reals)."""
    labels = np.asarray(manifest.labels)
    gens = np.asarray([s.generator for s in manifest.samples])
    unknown = set(train_generators) - set(manifest.generators(label=1))
    if unknown:
        raise ValueError(f"unknown fake generators {sorted(unknown)}; the data has {manifest.generators(label=1)}")
    real_idx = np.flatnonzero(labels == 0)
    rtr, rte = stratified_split(list(gens[real_idx]), real_test_fraction, seed)
    is_train_fake = (labels == 1) & np.isin(gens, train_generators)
    is_test_fake = (labels == 1) & ~np.isin(gens, train_generators)
    return Fold(
        "train-on-" + "+".join(train_generators),
        np.sort(np.concatenate([real_idx[rtr], np.flatnonzero(is_train_fake)])),
        np.sort(np.concatenate([real_idx[rte], np.flatnonzero(is_test_fake)])),
    )


def without(manifest: Manifest, indices) -> Manifest:
    """The manifest minus the given indices."""
    drop = set(int(i) for i in indices)
    return manifest.subset([i for i in range(len(manifest)) if i not in drop])


def seeded_subset(manifest: Manifest, per_group: int = 50, seed: int = 0) -> Manifest:
    """At most ``per_group`` samples of every (label, generator), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, str], list[int]] = {}
    for i, s in enumerate(manifest):
        groups.setdefault((s.label, s.generator), []).append(i)
    keep: list[int] = []
    for key in sorted(groups):
        idx = groups[key]
        keep.extend(sorted(rng.choice(idx, size=min(per_group, len(idx)), replace=False).tolist()))
    return manifest.subset(sorted(keep))
