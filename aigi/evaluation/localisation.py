"""Localisation quality of a predicted manipulation mask: pixel F1 and IoU against the true mask, and the
held-out manipulated images a mask-head detector is scored on (``score_manipulated``)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def pixel_f1_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """F1 and IoU of two boolean masks of the same shape. Both empty counts as a perfect match."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    tp = float((pred & truth).sum())
    fp = float((pred & ~truth).sum())
    fn = float((~pred & truth).sum())
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def upsample_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A [g, g] probability grid bilinearly resized to [size, size]."""
    img = Image.fromarray(np.asarray(mask, np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))


def localisation_scores(pred_grids: np.ndarray, truths: np.ndarray, threshold: float = 0.5) -> dict:
    """Mean per-image pixel F1 and IoU (and pooled over all pixels) of predicted per-patch grids
    [N, g, g] against true masks [N, S, S], at ``threshold`` after upsampling to S x S."""
    f1s, ious = [], []
    tp = fp = fn = 0.0
    for grid, truth in zip(pred_grids, truths):
        pred = upsample_mask(grid, truth.shape[0]) >= threshold
        f1, iou = pixel_f1_iou(pred, truth)
        f1s.append(f1)
        ious.append(iou)
        tp += float((pred & truth).sum())
        fp += float((pred & ~truth).sum())
        fn += float((~pred & truth).sum())
    denom = 2 * tp + fp + fn
    return {
        "n": len(f1s),
        "f1_mean": float(np.mean(f1s)) if f1s else float("nan"),
        "iou_mean": float(np.mean(ious)) if ious else float("nan"),
        "f1_pooled": 2 * tp / denom if denom else float("nan"),
        "iou_pooled": tp / (tp + fp + fn) if denom else float("nan"),
        "true_fraction": float(np.mean([t.mean() for t in truths])) if len(truths) else float("nan"),
    }


def score_manipulated(det, hosts, kinds: list[str], donors=None, seed: int = 0, batch_size: int = 16, progress=None):
    """For a mask-head detector (GAMMA): manipulate every host image (``kinds[i]``: an inpainting,
    copy-move, or splice with a donor drawn from ``donors``), without perturbation or augmented view,
    and score it. Returns (raw p_fake per host, NaN where it failed; predicted mask grids and true masks
    [S, S] at the model's crop, one per host that did not fail, in order; errors per host)."""
    import dataclasses

    from aigi.augment.manipulate import manipulate, rendezvous_donor, sha_keys, variant_rngs
    from aigi.scoring import forward, load_prepared
    from aigi.training.cache import compute_cached, hash_files

    recipe = dataclasses.replace(det.config.recipe, perturb_p=0.0)
    donor_shas, _ = hash_files([s.path for s in donors]) if donors is not None else ([], [])
    pool = [j for j, sha in enumerate(donor_shas) if sha]  # unreadable donors leave the pool
    donor_keys = sha_keys([donor_shas[j] for j in pool]) if pool else None
    shas, errors = hash_files([s.path for s in hosts])
    idx = [i for i, sha in enumerate(shas) if sha]
    keys: list[tuple[str, str]] = []
    plans = []
    for i in idx:
        sha, kind = str(shas[i]), kinds[i]
        d = pool[rendezvous_donor(sha, 0, seed, donor_keys)] if kind == "splice" and donor_keys is not None else -1
        plans.append((sha, kind, d))
        keys.append(
            (sha, f"heldout-{kind}-{recipe.key()}-seed{seed}" + (f"-donor{str(donor_shas[d])[:16]}" if d >= 0 else ""))
        )
    tools = det.manipulation_tools()
    pre = det.preprocessing

    def make(n):
        sha, kind, d = plans[n]
        s = hosts.samples[idx[n]]
        _, rng = variant_rngs(sha, 0, seed)
        donor = load_prepared(det, donors.samples[d].path) if d >= 0 else None
        m = manipulate(load_prepared(det, s.path), s.label, kind, rng, recipe, tools, donor)
        truth = np.asarray(pre.geometry(Image.fromarray(m.mask.astype(np.uint8)), "nearest"))
        return pre(m.image), truth

    tok_cache, tgt_cache = det.token_caches()
    feats, truths, job_errors = compute_cached(
        tok_cache, keys, make, det.encode_tokens, tgt_cache, batch_size, progress
    )
    for n, e in enumerate(job_errors):
        if e:
            errors[idx[n]] = e
    ok = [n for n, f in enumerate(feats) if f is not None]
    p = np.full(len(hosts), np.nan)
    grids = truth_out = None
    if ok:
        out = forward(det, {"tokens": np.stack([f for f in feats if f is not None])})
        p[[idx[n] for n in ok]] = 1.0 / (1.0 + np.exp(-out["logit"].double().numpy()))
        grids = out["mask"].numpy()
        truth_out = np.stack([np.asarray(truths[n]).astype(bool) for n in ok])
    return p, grids, truth_out, errors
