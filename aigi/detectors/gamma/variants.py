"""GAMMA's training data: the plan of every training variant (as-is, shortcut-denial views, manipulated
variants with their splice donors), known without decoding so cached variants stay valid across folds;
building a variant with its per-patch source targets; the cached training set.

Splice donors come only from the training images, chosen by rendezvous hashing, so no donor leaks
from a held-out generator and a variant's cache key names its donor.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from aigi.augment.manipulate import REAL, SOURCES


def patch_targets(source: np.ndarray, grid: int, n_sources: int = len(SOURCES)) -> np.ndarray:
    """Per-patch source fractions [C, grid, grid] of a square [S, S] source map (S a multiple of grid,
    or area-resampled otherwise)."""
    s = source.shape[0]
    onehot = (source[None] == np.arange(n_sources)[:, None, None]).astype(np.float32)
    if s % grid == 0:
        b = s // grid
        return onehot.reshape(n_sources, grid, b, grid, b).mean(axis=(2, 4))
    return np.stack([np.asarray(Image.fromarray(c).resize((grid, grid), Image.Resampling.BOX)) for c in onehot])


GENERATIVE_KINDS = ("splice", "inpaint-autoencoder", "inpaint-generative")
LABEL_POLICIES = ("any", "generative")


def variant_labels(targets: np.ndarray, image_labels, kinds=None, policy: str = "any") -> np.ndarray:
    """Image-level label of each variant: fake when the image is generated, or when any pixel the model
    sees (after the view's crop) is not authentic; with ``policy="generative"`` only when those pixels
    were made by a generative manipulation (``kinds[i]`` in ``GENERATIVE_KINDS``)."""
    if len(targets) == 0:
        return np.zeros(0, np.int64)
    if policy not in LABEL_POLICIES:
        raise ValueError(f"gamma: unknown manipulated_real_label {policy!r}; known: {', '.join(LABEL_POLICIES)}")
    touched = targets[:, REAL].reshape(len(targets), -1).min(axis=1) < 1
    if policy == "generative":
        touched &= np.isin(np.asarray(kinds, dtype=object), GENERATIVE_KINDS)
    return np.maximum(touched.astype(np.int64), np.asarray(image_labels, dtype=np.int64))


def views(det, train_config) -> list[tuple[int, bool]]:
    """(variant number, manipulated?) per training variant; 0 is the image as it is."""
    cfg = det.config
    out = [(0, False)] + [(k, False) for k in range(1, cfg.clean_views + 1)]
    if cfg.manipulations:
        out += [(k, True) for k in range(cfg.clean_views + 1, cfg.clean_views + cfg.manipulated_views + 1)]
    return out


def tools(det):
    from aigi.augment.manipulate import DiffusersInpainter, Tools

    tools = Tools.default()
    if det.config.generative_inpainter:
        tools.generative = DiffusersInpainter(det.config.generative_inpainter, device=det.device_name)
    return tools


def variant_jobs(det, manifest, train_config):
    """The plan of every training variant: (image index, variant, manipulation kind, donor index or
    -1, sha256, cache key), known without decoding (donors come from this manifest only), and the
    errors of files that cannot be read (they get no job)."""
    from aigi.augment.manipulate import plan_kind
    from aigi.augment.seeding import rendezvous_donor, sha_keys, variant_rngs
    from aigi.training.cache import hash_files

    cfg, seed = det.config, train_config.seed
    shas, unreadable = hash_files([s.path for s in manifest])
    labels = np.asarray(manifest.labels)
    pools = {c: np.flatnonzero((labels == c) & np.array([x is not None for x in shas])) for c in (0, 1)}
    pool_keys = {c: sha_keys([shas[j] for j in pools[c]]) for c in (0, 1)}
    vr, recipe = train_config.view_recipe, cfg.recipe
    jobs = []
    for i, sha in enumerate(shas):
        if sha is None:
            continue
        for k, manip in views(det, train_config):
            kind, donor = "none", -1
            if k == 0:
                key = "plain"
            elif not manip:
                key = f"{vr.key()}-seed{seed}-view{k}"
            else:
                plan_rng, _ = variant_rngs(sha, k, seed)
                kind = plan_kind(int(labels[i]), plan_rng, recipe, bool(cfg.generative_inpainter))
                key = f"{recipe.key()}+{vr.key()}-seed{seed}-variant{k}"
                if kind == "splice":
                    other = 1 - int(labels[i])
                    if len(pools[other]):
                        donor = int(pools[other][rendezvous_donor(sha, k, seed, pool_keys[other])])
                        key += f"-donor{shas[donor][:16]}"
                    else:
                        kind = "copy-move"
                        key += "-nodonor"
            if det.parity:
                key = f"parity-{key}"
            jobs.append((i, k, kind, donor, sha, key))
    return jobs, [e for e in unreadable if e]


def make_variant(det, manifest, job, train_config, kit):
    """Decode and build one variant: (preprocessed pixels, per-patch source targets)."""
    from aigi.augment.manipulate import manipulate, unmanipulated
    from aigi.augment.seeding import variant_rngs
    from aigi.scoring import load_prepared
    from aigi.transforms import augmented_view, view_rng

    i, k, kind, donor, sha, _ = job
    label = manifest.samples[i].label
    img = load_prepared(det, manifest.samples[i].path)
    if kind == "none":
        m, rng = unmanipulated(img, label), view_rng(sha, k, train_config.seed)
    else:
        _, rng = variant_rngs(sha, k, train_config.seed)
        donor_img = load_prepared(det, manifest.samples[donor].path) if donor >= 0 else None
        m = manipulate(img, label, kind, rng, det.config.recipe, kit, donor_img)
    if k > 0:  # every variant but the image as it is gets the shortcut-denial view, masks following
        m.image, (src,) = augmented_view(m.image, rng, train_config.view_recipe, masks=(Image.fromarray(m.source),))
        m.source = np.asarray(src)
    pre = det.preprocessing
    source = np.asarray(pre.geometry(Image.fromarray(m.source), "nearest"))
    grid = pre.crop // det.patch_size()
    return pre(m.image), patch_targets(source, grid, det.config.n_sources).astype(np.float16)


def training_set(det, manifest, train_config, progress=None):
    """Tokens [M, 1+N, D] (float16), targets [M, C, g, g], labels [M], the jobs kept and the errors,
    through the cache (frozen backbone only)."""
    from aigi.training.cache import compute_cached

    jobs, errors = variant_jobs(det, manifest, train_config)
    kit = tools(det) if det.config.manipulations else None
    tok_cache, tgt_cache = det.token_caches()

    def make(n):
        return make_variant(det, manifest, jobs[n], train_config, kit)

    feats, targets, job_errors = compute_cached(
        tok_cache,
        [(j[4], j[5]) for j in jobs],
        make,
        det.encode_tokens,
        tgt_cache,
        train_config.batch_size,
        progress,
    )
    keep = [n for n, f in enumerate(feats) if f is not None]
    tokens = np.stack([feats[n] for n in keep]) if keep else np.zeros((0,))
    tg = np.stack([targets[n] for n in keep]).astype(np.float32) if keep else np.zeros((0,))
    kept = [jobs[n] for n in keep]
    return tokens, tg, labels_of(det, manifest, kept, tg), kept, errors + [e for e in job_errors if e]


def labels_of(det, manifest, jobs, targets) -> np.ndarray:
    return variant_labels(
        targets,
        [manifest.samples[j[0]].label for j in jobs],
        [j[2] for j in jobs],
        det.config.manipulated_real_label,
    )


def in_memory_set(det, manifest, train_config, progress):
    """Variants as preprocessed pixels in memory (fine-tuning through the backbone)."""
    jobs, errors = variant_jobs(det, manifest, train_config)
    kit = tools(det) if det.config.manipulations else None
    px, tg, keep = [], [], []
    for j in jobs:
        try:
            x, t = make_variant(det, manifest, j, train_config, kit)
        except Exception as e:  # noqa: BLE001 - reported in the training info
            errors.append(f"{manifest.samples[j[0]].path}: {e}")
            continue
        px.append(x)
        tg.append(t.astype(np.float32))
        keep.append(j)
        if progress:
            progress(1)
    tg = np.stack(tg)
    return {"pixels": np.stack(px)}, tg, labels_of(det, manifest, keep, tg), keep, errors
