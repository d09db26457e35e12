"""Open-set attribution: which maker and line of generators made a fake, or ``unknown``.

A multinomial logistic head over the same standardised descriptor as the detector's own head (so it costs one
small matrix product per image), trained on the fakes of the detector's training data, grouped into families by
maker and line (:data:`FAMILIES`). Its answer is a likelihood among the families it was trained on, never proof.
Its probabilities are calibrated by one temperature (``softmax(z / T)``, the ranking kept) fitted on held-out
logits: the training fakes are split into :data:`CALIBRATION_FOLDS` folds by image, each fold scored by a head
fitted without it, and ``T`` minimises the log-loss of those out-of-fold answers. An image whose top probability
is under ``unknown_below`` is answered ``unknown``: that rule is fitted by leave-family-out on the training fakes
(each family in turn is held out of the head; its images should come out ``unknown``, the other families'
images should not), on the same tempered probabilities, at the threshold that maximises the mean of the two
rates.
Declared generators from provenance (C2PA, EXIF signatures) are shown beside it by the records and never mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

# family -> generator names of the shared data sets (a name not listed is its own family)
FAMILIES: dict[str, list[str]] = {
    "openai": ["dalle-2", "dalle-3", "gpt-4o", "gpt-image-1", "chatgpt-image-gallery"],
    "google": ["imagen", "imagen-4", "nano-banana", "nano-banana-pro"],
    "midjourney": ["midjourney-v5", "midjourney-v6", "midjourney-v7"],
    "stability": ["sd-1.4", "sd-1.5", "sd-2.1", "sdxl", "sd-3.5", "sd-1.5-face"],
    "bfl": ["flux-1-dev", "flux-1-schnell", "flux-2"],
    "bytedance": ["seedream", "seedream-4", "seedream-5"],
    "compvis": ["ldm", "glid3"],  # latent diffusion and the models built directly on it
    "craiyon": ["dalle-mini"],
    "disco-diffusion": ["disco-diffusion"],
    "alibaba": ["qwen-image"],
    "kuaishou": ["kolors"],
    "sber": ["kandinsky-3"],
    "pixart": ["pixart-alpha"],
    "playground": ["playground-v2"],
    "gan": ["stylegan2", "stylegan1-3-face", "progan", "biggan"],
}
MIN_IMAGES = 20  # a family with fewer training images is not one the head names
CALIBRATION_FOLDS = 5  # out-of-fold logits for the temperature
NOT_A_GENERATOR = ("autoencoder-reconstruction",)  # fake twins of real images (augment.reconstruct)


def family_of(generator: str) -> str:
    for fam, names in FAMILIES.items():
        if generator in names:
            return fam
    return generator


def fit_softmax(X: torch.Tensor, y: torch.Tensor, k: int, C: float, max_iter: int = 200) -> torch.Tensor:
    """L2-regularised multinomial logistic regression (``C * sum(log-loss) + ||W||^2 / 2``, intercepts
    unpenalised) by full-batch L-BFGS; returns [k, d + 1] (weights, then the intercept)."""
    n, d = X.shape
    theta = torch.zeros(k, d + 1, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = X @ theta[:, :d].T + theta[:, d]
        loss = F.cross_entropy(z, y) + 0.5 / (C * n) * theta[:, :d].square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach()


def softmax_nll(z: np.ndarray, y: np.ndarray, T: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes ``y`` under ``softmax(z / T)``."""
    from scipy.special import log_softmax

    return float(-log_softmax(np.asarray(z, np.float64) / T, axis=1)[np.arange(len(y)), y].mean())


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimising :func:`softmax_nll` of held-out logits ``z`` [n, k] with true classes
    ``y`` (searched over log T in [-5, 5])."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: softmax_nll(z, y, float(np.exp(lt))), bounds=(-5, 5), method="bounded")
    return float(np.exp(res.x))


def best_unknown_threshold(known_top: np.ndarray, held_top: np.ndarray) -> tuple[float, float, float]:
    """The top-probability threshold that maximises the mean of (share of held-out-family images under it:
    ``unknown``) and (share of known-family images at or over it). Returns (threshold, those two shares)."""
    cands = np.unique(np.concatenate([known_top, held_top, [0.0, 1.0]]))
    best = (0.0, 0.0, 1.0)
    for t in cands:
        unk, acc = float((held_top < t).mean()), float((known_top >= t).mean())
        if (unk + acc) / 2 > (best[1] + best[2]) / 2:
            best = (float(t), unk, acc)
    return best


@dataclass
class AttributionHead:
    families: list[str]
    weight: np.ndarray  # [k, d]
    bias: np.ndarray  # [k]
    unknown_below: float
    temperature: float = 1.0
    report: dict = field(default_factory=dict)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import softmax

        return softmax((X @ self.weight.T + self.bias) / self.temperature, axis=1)


def answer(probs: np.ndarray, families: list[str], unknown_below: float) -> dict:
    """One image's family probabilities -> {"family", "p", "top3"}; ``family`` is ``unknown`` when the top
    probability is under ``unknown_below`` (``p`` is then still the top family's)."""
    order = np.argsort(-probs)[:3]
    top = [[families[i], round(float(probs[i]), 4)] for i in order]
    p = float(probs[order[0]])
    return {"family": families[order[0]] if p >= unknown_below else "unknown", "p": round(p, 4), "top3": top}


def fit_attribution(
    X: np.ndarray, generators: np.ndarray, groups: np.ndarray, C: float = 1e-2, seed: int = 0, max_iter: int = 200
) -> AttributionHead | None:
    """Rows ``X`` (standardised descriptors of fakes; ``groups``: each row's image, so the views of one image
    stay together) with their ``generators``. The closed-set head on every family with at least
    :data:`MIN_IMAGES` images; its temperature from out-of-fold logits (:data:`CALIBRATION_FOLDS` seeded folds
    of images); the ``unknown`` threshold by leave-family-out over those families (each held-out fit sees the
    others; known-family rows scored are a seeded fifth of the images, left out of that fit too), on tempered
    probabilities. None when fewer than two families qualify."""
    fam = np.array([family_of(g) for g in generators])
    keep = ~np.isin(generators, NOT_A_GENERATOR)
    counts = {str(f): len(np.unique(groups[keep & (fam == f)])) for f in np.unique(fam[keep])}
    families = sorted(f for f, c in counts.items() if c >= MIN_IMAGES)
    if len(families) < 2:
        return None
    rows = keep & np.isin(fam, families)
    Xt = torch.from_numpy(np.ascontiguousarray(X[rows], np.float32))
    f_rows, g_rows = fam[rows], groups[rows]
    y = torch.from_numpy(np.array([families.index(f) for f in f_rows]))
    theta = fit_softmax(Xt, y, len(families), C, max_iter)
    rng = np.random.default_rng(seed)
    images = np.unique(g_rows)
    # the temperature, on out-of-fold logits
    fold_of = dict(zip(rng.permutation(images).tolist(), np.arange(len(images)) % CALIBRATION_FOLDS))
    fold = np.array([fold_of[g] for g in g_rows.tolist()])
    z_oof = np.zeros((len(y), len(families)))
    for k in range(CALIBRATION_FOLDS):
        held = torch.from_numpy(fold == k)
        th = fit_softmax(Xt[~held], y[~held], len(families), C, max_iter)
        z_oof[held.numpy()] = (Xt[held] @ th[:, :-1].T + th[:, -1]).double().numpy()
    T = fit_temperature(z_oof, y.numpy())
    # leave-family-out for the unknown rule
    probe = np.isin(g_rows, rng.choice(images, max(1, len(images) // 5), replace=False))
    known_top, held_top, per_family = [], [], {}
    for f in families:
        train = (f_rows != f) & ~probe
        others = [x for x in families if x != f]
        yk = torch.from_numpy(np.array([others.index(x) for x in f_rows[train]]))
        th = fit_softmax(Xt[torch.from_numpy(train)], yk, len(others), C, max_iter)
        z = Xt @ th[:, :-1].T + th[:, -1]
        top = torch.softmax(z / T, 1).max(1).values.numpy()
        held_top.append(top[f_rows == f])
        known_top.append(top[probe & (f_rows != f)])
        per_family[f] = top[f_rows == f]
    known, held = np.concatenate(known_top), np.concatenate(held_top)
    thr, unk, acc = best_unknown_threshold(known, held)
    report = {
        "families": {f: counts[f] for f in families},
        "too_few_images": {f: c for f, c in counts.items() if f not in families},
        "temperature": T,
        "held_out_nll": {"raw": softmax_nll(z_oof, y.numpy()), "tempered": softmax_nll(z_oof, y.numpy(), T)},
        "unknown_below": thr,
        "held_out_answered_unknown": unk,
        "known_kept": acc,
        "held_out_unknown_per_family": {f: float((v < thr).mean()) for f, v in per_family.items()},
    }
    return AttributionHead(families, theta[:, :-1].numpy(), theta[:, -1].numpy(), thr, T, report)
