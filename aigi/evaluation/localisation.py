"""Localisation quality of a predicted manipulation mask: pixel F1 and IoU against the true mask (pure). The
held-out manipulated images a localiser is scored on are made by ``detectors.gamma.localisation``."""

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
