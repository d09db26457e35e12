"""ITEM's training side: the reserved alignment slice, aligning the offline lit space on it, and the
cached tokens, captions and D features of every training view (the caption of an augmented view is
its plain image's, so a view's features depend on two token sets: this stays out of the scoring engine).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from aigi.captions.captioners import CaptionCache, RetrievalCaptioner
from aigi.captions.vocabulary import class_name_from_path


def alignment_slice(manifest, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a seeded choice of ``n`` captioned reals (a manifest caption, or a class name in an
    ImageNet-style file name such as ``n01440764_tench.JPEG``), reserved for aligning the lit space and
    kept out of every detector split."""
    candidates = [
        i for i, s in enumerate(manifest.samples) if s.label == 0 and (s.caption or class_name_from_path(s.path))
    ]
    candidates.sort(key=lambda i: manifest.samples[i].path)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(candidates))[: min(n, len(candidates))]
    return np.sort(np.asarray([candidates[j] for j in chosen], dtype=int))


def align_space(det, reserved, train_config) -> dict:
    """Align the lit space's heads on the reserved captioned reals (cached on disk by data and settings);
    the aligned concepts and the reserved sha256s become the detector's learned state."""
    from safetensors.torch import load_file, save_file

    from aigi.paths import cache_dir
    from aigi.training.alignment import fit_alignment
    from aigi.training.cache import hash_files

    cfg = det.config
    names = [s.caption or class_name_from_path(s.path) for s in reserved]
    shas, errors = hash_files([s.path for s in reserved])
    ok = [i for i, (n, sha) in enumerate(zip(names, shas)) if n and sha]
    if len(ok) < 4:
        raise ValueError(
            f"item: aligning the lit space needs captioned reals (got {len(ok)}; "
            "ImageNet-style file names such as n01440764_tench.JPEG, or manifest captions)"
        )
    views = list(range(cfg.align_views))
    settings = {
        k: getattr(cfg, k)
        for k in (
            "embed_dim",
            "align_views",
            "align_steps",
            "align_batch",
            "align_lr",
            "align_heldout",
            "align_seed",
        )
    }
    key = hashlib.sha256(
        json.dumps(
            [
                settings,
                [shas[i] for i in ok],
                [names[i] for i in ok],
                train_config.view_recipe.key(),
                train_config.seed,
                det.lit.token_cache_key(),
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:20]
    store = cache_dir() / "alignment" / key
    if (store / "heads.safetensors").is_file():
        det.lit.load_state_dict(load_file(str(store / "heads.safetensors")))
        info = json.loads((store / "info.json").read_text())
    else:
        sub = reserved.subset(ok)
        tokens, errs = view_tokens(det, sub, views, train_config)
        good = [j for j, e in enumerate(errs) if e is None]
        info = fit_alignment(
            det.lit,
            tokens[good],
            [str(names[ok[j]]) for j in good],
            cfg.align_steps,
            cfg.align_batch,
            cfg.align_lr,
            heldout_fraction=cfg.align_heldout,
            seed=cfg.align_seed,
        )
        store.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in det.lit.state_dict().items()}, str(store / "heads.safetensors"))
        (store / "info.json").write_text(json.dumps(info, indent=1))
    det.aligned_terms = tuple(sorted({str(names[i]) for i in ok}))
    det.reserved_sha256 = tuple(sorted(str(shas[i]) for i in ok))
    det.forget_captioner()
    return {**info, "unreadable": [e for e in errors if e]}


def view_key_of(det, view: int, train_config, perturb=None) -> str:
    from aigi.training.cache import view_key

    return view_key(view, train_config.view_recipe, train_config.seed, perturb, det.parity)


def view_tokens(det, manifest, views, train_config, perturb=None, progress=None, shas=None):
    """Encoder tokens [n, V, T, D] (float16) of every sample and view through the token cache (the same
    entries GAMMA uses for a DINOv2 space), and per-sample errors."""
    from aigi.scoring import load_prepared
    from aigi.training.cache import FeatureCache, compute_cached, hash_files
    from aigi.transforms import augmented_view, view_rng

    paths = [s.path for s in manifest]
    if shas is None:
        shas, errors = hash_files(paths)
    else:
        errors = [None if s else f"{p}: cannot read file" for s, p in zip(shas, paths)]
    cache = FeatureCache(det.space.token_cache_key(), kind="tokens")
    jobs = [(i, v) for i in range(len(paths)) if shas[i] for v in views]

    def make(n):
        i, v = jobs[n]
        img = load_prepared(det, paths[i])
        if perturb:
            img = perturb[1](img)
        elif v:
            img = augmented_view(img, view_rng(shas[i], v, train_config.seed), train_config.view_recipe)
        return det.space.preprocess(img), None

    feats, _, errs = compute_cached(
        cache,
        [(shas[i], view_key_of(det, v, train_config, perturb)) for i, v in jobs],
        make,
        det.space.image_tokens,
        None,
        train_config.batch_size,
        progress,
    )
    shape = next((f.shape for f in feats if f is not None), (1, 1))
    out = np.zeros((len(paths), len(views), *shape), np.float16)
    for (i, v), f, e in zip(jobs, feats, errs):
        if f is None:
            errors[i] = errors[i] or e or f"{paths[i]}: failed"
        else:
            out[i, views.index(v)] = f
    return out, errors


def captions_for(det, manifest, shas, plain_tokens) -> list | None:
    """Captions per sample: manifest captions (when asked for), else the image-to-text captioner
    (cached per image), else None (retrieval captions come from the plain view's tokens)."""
    cfg = det.config
    given = [s.caption if cfg.use_manifest_captions and s.caption else None for s in manifest]
    if isinstance(det.captioner, RetrievalCaptioner):
        if all(given):
            return given
        if any(given):
            pairs = det.captioner.caption_embeddings(det.space.joint(torch.from_numpy(plain_tokens))[0])
            return [g or c for g, (c, _) in zip(given, pairs)]
        return None
    from aigi.scoring import load_prepared

    cache = CaptionCache(det.captioner.key())
    out = [g or (cache.get(sha) if sha else None) for sha, g in zip(shas, given)]
    todo = [i for i, c in enumerate(out) if c is None]
    for a in range(0, len(todo), 16):  # caption what is missing, in batches
        batch = todo[a : a + 16]
        images = [load_prepared(det, manifest.samples[i].path) for i in batch]
        for i, cap in zip(batch, det.captioner.caption_images(images)):
            out[i] = cap
            if shas[i]:
                cache.put(shas[i], cap)
    return out


def training_feature_key(det) -> str:
    """The key of training views' D features (from cached float16 tokens; parity is part of the key)."""
    return hashlib.sha256(json.dumps([*det.d_settings(), det.parity]).encode()).hexdigest()[:16]


def view_features(
    det, manifest, views, train_config, perturb=None, progress=None, chunk: int = 256, details: bool = False
):
    """ITEM features [n, V, F] of every sample and view (NaN rows where a file failed), per-sample
    errors, and (``details``) the caption, objects and cosines of each sample's first view.

    Features are cached per (space, captioner, D settings, image, view), unless manifest captions
    are in use (then they depend on the manifest, not only on the image)."""
    from aigi.training.cache import FeatureCache, hash_files

    views = list(views)
    need = views if 0 in views or perturb else [0] + views
    shas, errors = hash_files([s.path for s in manifest])
    dim = len(det.feature_mean)
    feats = np.full((len(manifest), len(views), dim), np.nan, np.float32)
    info: list[dict | None] = [None] * len(manifest)
    fcache = None
    if not (details or det.config.use_manifest_captions):
        fcache = FeatureCache(training_feature_key(det), kind="item-features")
    todo = []
    for i, sha in enumerate(shas):
        if sha is None:
            continue
        hits = [fcache.get(sha, view_key_of(det, v, train_config, perturb)) if fcache else None for v in views]
        if all(h is not None and h.shape == (dim,) for h in hits):
            feats[i] = np.stack(hits)  # type: ignore[arg-type] # all hits are arrays here
        else:
            todo.append(i)
    for a in range(0, len(todo), chunk):
        idx = todo[a : a + chunk]
        sub = manifest.subset(idx)
        tokens, errs = view_tokens(det, sub, need, train_config, perturb, progress, [shas[i] for i in idx])
        ok = [j for j, e in enumerate(errs) if e is None]
        for j, e in enumerate(errs):
            if e:
                errors[idx[j]] = e
        if not ok:
            continue
        plain = tokens[ok, need.index(views[0] if perturb else 0)]
        captions = captions_for(det, sub.subset(ok), [shas[idx[j]] for j in ok], plain)
        for vpos, v in enumerate(views):
            b = det.features_from_tokens(torch.from_numpy(tokens[ok, need.index(v)]), captions, torch.from_numpy(plain))
            f = b["features"].cpu().numpy()
            for n, j in enumerate(ok):
                feats[idx[j], vpos] = f[n]
                if fcache:
                    fcache.put(str(shas[idx[j]]), view_key_of(det, v, train_config, perturb), f[n])
                if vpos == 0:
                    info[idx[j]] = {
                        "caption": b["captions"][n],
                        "objects": b["objects"][n],
                        "global_cosine": float(b["global_cosine"][n]),
                        "local_cosine": b["local_cosine"][n].tolist(),
                    }
    return feats, errors, info
