"""UnivFD: frozen pretrained features + a linear head.

Ojha, Li, Lee. "Towards Universal Fake Image Detectors that Generalize Across Generative
Models", CVPR 2023. The paper uses CLIP ViT-L/14 image embeddings; offline we use the
DINOv2-S CLS token concatenated with the mean patch token (768 values), and any
transformers backbone when the user has one.

Choices written down (not all from the paper):
- The head is logistic regression on standardised features, fit exactly (L-BFGS, scikit-learn)
  with the inverse regularisation C chosen by 5-fold cross-validation grouped by image, so
  augmented views of one image never sit on both sides of a CV split. The fitted
  coefficients are copied into a ``torch.nn.Linear`` so inference, export and the detector
  contract are plain torch.
- Training uses K cached, seeded augmented views per image (random rescale, crop, flip and
  JPEG re-compression of both classes) to deny the size/format shortcut.
- ``launder: true`` makes it AlignGemini's semantic branch: every image, in training and at
  inference, is first laundered (``augment.launder_fixed``: 64 px, blur, noise, JPEG q45, back to
  224 px), so only semantics reach the head; augmented views are then pointless and unused.
- Stages: ``inputs`` = the backbone's preprocessed pixels (laundered first when asked);
  ``features`` = the pooled descriptor (cached under the backbone's key, folder ``pooled``);
  ``forward`` = standardise, then the linear head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aigi.detectors.base import Detector
from aigi.detectors.registry import register


@dataclass
class UnivFDConfig:
    backbone: str = "dinov2-s14"
    Cs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
    cv_folds: int = 5
    max_iter: int = 3000
    feature_dim: int = 768  # 2 x backbone width (CLS + mean patch)
    launder: bool = False  # see every image (training and inference) through augment.launder_fixed first


def fit_logistic_cv(X: np.ndarray, y: np.ndarray, groups: np.ndarray, Cs, n_folds: int, max_iter: int):
    """L2 logistic regression with C chosen by grouped k-fold CV (AUROC), then refit on all rows.

    Within a fold, C is walked from small to large with warm starts (each fit starts from the
    previous solution). BLAS runs single-threaded here: for problems this small, threads contend
    (with each other and with a backbone running beside them) and were measured 26x slower.
    Returns (fitted model, best C, mean CV AUROC at the best C).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _fit_logistic_cv(X, y, groups, Cs, n_folds, max_iter)


def _fit_logistic_cv(X, y, groups, Cs, n_folds, max_iter):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    Cs = sorted(float(c) for c in Cs)
    scores = np.zeros((n_folds, len(Cs)))
    for k, (tr, va) in enumerate(GroupKFold(n_splits=n_folds).split(X, y, groups)):
        clf = LogisticRegression(max_iter=max_iter, warm_start=True)
        for j, c in enumerate(Cs):
            clf.set_params(C=c).fit(X[tr], y[tr])
            scores[k, j] = roc_auc_score(y[va], clf.decision_function(X[va])) if len(set(y[va])) == 2 else np.nan
    mean = np.nanmean(scores, axis=0) if np.isfinite(scores).any() else np.zeros(len(Cs))
    j = int(np.argmax(mean))
    final = LogisticRegression(C=Cs[j], max_iter=max_iter).fit(X, y)
    return final, Cs[j], float(mean[j])


class _PixelsToLogit(torch.nn.Module):
    def __init__(self, backbone, head: UnivFD):
        super().__init__()
        from aigi.backbones.hf import torch_vision_tokens

        self.tokens, self.head = torch_vision_tokens(backbone), head

    def forward(self, pixels):
        pooled, patches, _ = self.tokens(pixels)
        return {"logit": self.head({"features": torch.cat([pooled, patches.mean(1)], 1)})["logit"]}


@register("univfd")
class UnivFD(Detector):
    Config = UnivFDConfig
    exportable = True
    feature_mean: torch.Tensor  # buffers
    feature_scale: torch.Tensor
    feature_kind = "pooled"

    def __init__(self, config: UnivFDConfig):
        super().__init__(config)
        d = config.feature_dim
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_scale", torch.ones(d))
        self.head = torch.nn.Linear(d, 1)

    def inputs(self, image):
        if self.config.launder:
            from aigi.augment.launder import launder_fixed

            image = launder_fixed(image)
        return {"pixels": self.backbone.preprocess(image)}

    def features(self, inputs):
        return {"features": self.backbone.encode_images(inputs["pixels"]).pooled()}

    def feature_key(self) -> str:
        key = self.backbone.cache_key()
        if self.config.launder:
            from aigi.augment.launder import FIXED_LAUNDERING_KEY

            key += f"+{FIXED_LAUNDERING_KEY}"
        return key

    def forward(self, batch):
        x = (batch["features"] - self.feature_mean) / self.feature_scale
        logit = self.head(x).squeeze(-1)
        out = {"logit": logit}
        if "label" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
        return out

    def export_module(self) -> torch.nn.Module:
        """Pixels -> {"logit"}: the backbone through transformers/torch, then the head (aigi.export)."""
        from aigi.backbones import load_backbone

        return _PixelsToLogit(load_backbone(self.config.backbone, runtime="torch"), self)

    # --- training ---------------------------------------------------------------------
    def fit(self, manifest, train_config, progress: Callable[[int], None] | None = None) -> dict:
        from aigi.scoring import extract

        views = [0] if self.config.launder else train_config.train_views()
        feats, errors = extract(
            self,
            [s.path for s in manifest],
            views,
            train_config.view_recipe,
            train_config.seed,
            batch_size=train_config.batch_size,
            progress=progress,
        )
        ok = np.array([e is None for e in errors])
        if not ok.any():
            raise ValueError(f"univfd: none of the {len(errors)} training images could be read (first: {errors[0]})")
        info = self.fit_head(feats["features"][ok], np.asarray(manifest.labels)[ok])
        return {**info, "skipped_files": [e for e in errors if e]}

    def fit_head(self, feats: np.ndarray, labels: np.ndarray) -> dict:
        """Fit the standardisation and the logistic head on features [n, V, D] of n images (V views each)."""
        from sklearn.preprocessing import StandardScaler

        n, v, d = feats.shape
        X = feats.reshape(n * v, d)
        y = np.repeat(labels, v)
        groups = np.repeat(np.arange(n), v)
        scaler = StandardScaler().fit(X)
        Xs = scaler.transform(X)
        clf, best_c, cv_auroc = fit_logistic_cv(
            Xs, y, groups, self.config.Cs, self.config.cv_folds, self.config.max_iter
        )
        with torch.no_grad():
            self.feature_mean.copy_(torch.from_numpy(scaler.mean_.astype(np.float32)))
            self.feature_scale.copy_(
                torch.from_numpy(np.where(scaler.scale_ > 0, scaler.scale_, 1.0).astype(np.float32))
            )
            self.head.weight.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
            self.head.bias.copy_(torch.from_numpy(clf.intercept_.astype(np.float32)))
        return {"C": best_c, "cv_auroc": cv_auroc, "n_images": int(n), "n_views": int(v)}
