"""ITEM's misalignment representation D, and the region-level (per object) image embedding.

Pure functions on L2-normalised embeddings (torch tensors, any leading batch shape).

Why not the raw distance: for unit vectors ``||f_i - f_t|| = sqrt(2 (1 - c))`` with ``c`` the cosine.
Its slope, ``1 / sqrt(2 (1 - c))``, is steepest when the cosine is HIGH and flattens as the cosine
falls, so the raw difference spends its resolution on pairs that are already aligned. The paper asks
for the opposite: D small when the cosine is high, growing quickly when it is low. The formula is not
published; ``scaled`` (the default) is

    D(f_i, f_t) = [ (1 - c) * (f_i - f_t),  c ]

whose vector part has norm ``sqrt(2) (1 - c)^(3/2)``: 0 at c = 1, with a slope
``(3 / sqrt(2)) sqrt(1 - c)`` that grows as the cosine falls. The direction of the misalignment is
kept (a head can learn WHICH way generated images drift), its magnitude is reshaped, and the cosine
itself is appended. Variants for the ablation:

- ``raw``: ``[f_i - f_t, ||f_i - f_t||]`` (the raw distance the paper argues against);
- ``cosine``: ``[c]`` only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REPRESENTATIONS = ("scaled", "raw", "cosine")


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of unit vectors along the last axis."""
    return (a * b).sum(-1)


def representation_dim(representation: str, dim: int) -> int:
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown misalignment representation {representation!r}; choose from {REPRESENTATIONS}")
    return 1 if representation == "cosine" else dim + 1


def misalignment(f_img: torch.Tensor, f_txt: torch.Tensor, representation: str = "scaled") -> torch.Tensor:
    """D for unit vectors ``f_img``, ``f_txt`` [..., E] -> [..., representation_dim]."""
    representation_dim(representation, f_img.shape[-1])
    c = cosine(f_img, f_txt).unsqueeze(-1)
    diff = f_img - f_txt
    if representation == "cosine":
        return c
    if representation == "raw":
        return torch.cat([diff, diff.norm(dim=-1, keepdim=True)], -1)
    return torch.cat([(1 - c) * diff, c], -1)


def region_embeddings(patches: torch.Tensor, objects: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """The image region each object points at: patch embeddings [B, N, E] weighted by
    ``softmax_n(<patch_n, object> / temperature)`` for each object [B, K, E]; unit vectors [B, K, E].

    A small temperature approaches "the best-matching patch"; a large one, the mean of all patches
    (the global level again)."""
    w = torch.softmax(torch.einsum("bne,bke->bkn", patches, objects) / temperature, dim=-1)
    return F.normalize(torch.einsum("bkn,bne->bke", w, patches), dim=-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over axis 1 of x [B, K, F] where mask [B, K] is true (zeros where no item is)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def item_features(
    global_img: torch.Tensor,
    caption: torch.Tensor,
    patches: torch.Tensor,
    objects: torch.Tensor,
    object_mask: torch.Tensor,
    levels: str = "both",
    representation: str = "scaled",
    temperature: float = 0.05,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """ITEM's input to the head, and the scores behind it.

    Global level: D(image, caption). Local level: D(region_k, object_k) for each parsed object k,
    averaged over the objects, plus the lowest object cosine (the worst-aligned object). ``levels``:
    ``global``, ``local`` or ``both`` (concatenated). Returns (features [B, F], {"global_cosine": [B],
    "local_cosine": [B, K]} with NaN where there is no object).
    """
    feature_dim(levels, representation, global_img.shape[-1])  # checks both settings
    g_cos = cosine(global_img, caption)
    regions = region_embeddings(patches, objects, temperature)
    l_cos = cosine(regions, objects)
    parts = []
    if levels in ("global", "both"):
        parts.append(misalignment(global_img, caption, representation))
    if levels in ("local", "both"):
        parts.append(masked_mean(misalignment(regions, objects, representation), object_mask))
        worst = torch.where(object_mask, l_cos, torch.full_like(l_cos, 2.0)).min(1).values
        parts.append(torch.where(object_mask.any(1), worst, torch.zeros_like(worst)).unsqueeze(-1))
    scores = {
        "global_cosine": g_cos,
        "local_cosine": torch.where(object_mask, l_cos, torch.full_like(l_cos, float("nan"))),
    }
    return torch.cat(parts, -1), scores


LEVELS = ("global", "local", "both")


def feature_dim(levels: str, representation: str, dim: int) -> int:
    if levels not in LEVELS:
        raise ValueError(f"levels must be global, local or both, not {levels!r}")
    d = representation_dim(representation, dim)
    return {"global": d, "local": d + 1, "both": 2 * d + 1}[levels]


__all__ = [
    "misalignment",
    "region_embeddings",
    "item_features",
    "feature_dim",
    "cosine",
    "masked_mean",
    "REPRESENTATIONS",
    "LEVELS",
]
