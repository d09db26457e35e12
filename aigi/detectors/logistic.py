"""The linear heads' fitting (univfd's, AlignGemini's semantic branch, the benchmarks): L2-regularised logistic
regression by L-BFGS with optional per-row weights, C by cross-validation grouped by image, standardisation,
and weights that give every real source and generator the same total."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def logistic_l2(
    X: torch.Tensor,
    y: torch.Tensor,
    C: float,
    init: torch.Tensor | None = None,
    max_iter: int = 500,
    weight: torch.Tensor | None = None,
):
    """L2-regularised logistic regression, the objective scikit-learn's ``LogisticRegression(C=C)`` minimises
    (``C * sum(w_i * log-loss_i) + ||w||^2 / 2``, the intercept unpenalised; ``weight`` = sample weights,
    rescaled to mean 1 so C keeps its meaning), solved by full-batch L-BFGS in float32 torch: on thousands of
    rows of thousands of features it is far faster than scikit-learn's float64 copy. Returns the parameters
    [d + 1] (weights, then the intercept)."""
    n, d = X.shape
    sw = None if weight is None else (weight / weight.mean()).float()
    theta = (init.clone() if init is not None else torch.zeros(d + 1)).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [theta],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    scale = 1.0 / (C * n)  # the objective divided by C * n, for a well-scaled gradient

    def closure():
        opt.zero_grad()
        z = X @ theta[:d] + theta[d]
        loss = F.binary_cross_entropy_with_logits(z, y, weight=sw, reduction="mean")
        loss = loss + 0.5 * scale * theta[:d].square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach()


def balanced_weights(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sample weights under which every group (a real source, a generator) of a class weighs the same in
    total, and the two classes weigh the same: ``1 / (n_group * groups_in_class)``, rescaled to mean 1. So
    700 StyleGAN2 faces count no more than 100 Urban100 photos."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    w = np.ones(len(labels))
    for cls in np.unique(labels):
        k = labels == cls
        names = np.unique(groups[k])
        for g in names:
            m = k & (groups == g)
            w[m] = 1.0 / (m.sum() * len(names))
    return w / w.mean()


def fit_logistic_cv(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Cs,
    n_folds: int,
    max_iter: int,
    weight: np.ndarray | None = None,
):
    """L2 logistic regression (:func:`logistic_l2`) with C chosen by grouped k-fold CV (AUROC; the
    augmented views and crops of one image never sit on both sides of a split), then refit on all rows.
    Within a fold, C is walked from small to large with warm starts. Returns (weights [d], intercept,
    best C, mean CV AUROC at the best C)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    Cs = sorted(float(c) for c in Cs)
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(np.asarray(y, np.float32))
    scores = np.full((n_folds, len(Cs)), np.nan)
    folds = GroupKFold(n_splits=n_folds).split(X, y, groups) if n_folds > 1 and len(set(groups)) >= n_folds else []
    wt = None if weight is None else torch.from_numpy(np.asarray(weight, np.float32))
    for k, (tr, va) in enumerate(folds):
        theta = None
        for j, c in enumerate(Cs):
            theta = logistic_l2(Xt[tr], yt[tr], c, theta, max_iter, None if wt is None else wt[tr])
            if len(set(y[va])) == 2:
                z = (Xt[va] @ theta[:-1] + theta[-1]).numpy()
                scores[k, j] = roc_auc_score(y[va], z, sample_weight=None if weight is None else weight[va])
    mean = np.nanmean(scores, axis=0) if np.isfinite(scores).any() else np.zeros(len(Cs))
    j = int(np.argmax(mean))
    theta = logistic_l2(Xt, yt, Cs[j], None, max_iter, wt)
    return theta[:-1].numpy(), float(theta[-1]), Cs[j], float(mean[j])


@dataclass
class StandardisedHead:
    """A logistic head over standardised rows: ``logit = ((x - mean) / scale) @ weight + bias``."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: float
    C: float
    cv_auroc: float

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return ((x - self.mean) / self.scale) @ self.weight + self.bias


def fit_standardised(
    X: np.ndarray,
    y: np.ndarray,
    Cs,
    max_iter: int,
    weight: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    cv_folds: int = 0,
) -> StandardisedHead:
    """The recipe's head fit, for the detector (:meth:`UnivFD.fit_head`) and the benchmarks alike: standardise
    the rows (population sd; a constant column keeps scale 1), then :func:`fit_logistic_cv` (C by grouped CV
    over ``Cs`` when ``cv_folds`` > 1 and ``groups`` are given, else the first C)."""
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, np.float32)
    scaler = StandardScaler().fit(X)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0).astype(np.float32)
    mean = scaler.mean_.astype(np.float32)
    groups = np.arange(len(X)) if groups is None else groups
    w, b, c, auc = fit_logistic_cv((X - mean) / scale, y, groups, Cs, cv_folds, max_iter, weight)
    return StandardisedHead(mean, scale, w, b, c, auc)
