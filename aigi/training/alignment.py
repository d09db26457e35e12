"""LiT-style alignment of the offline vision-language space (``backbones.vl.LiTSpace``).

The image and text encoders stay frozen; three linear heads (global image, patch, text) are trained
with the symmetric contrastive (InfoNCE) loss on captioned pairs: each image's global embedding, and
the mean of its patch embeddings, against the text of its own caption, with the other captions of the
batch as negatives. Each step draws one seeded augmented view per image and one prompt template per
caption, so a few hundred pairs give many distinct ones.

Offline, the pairs are a reserved, seeded slice of ImageNet reals whose file names carry their class
(``detectors.item.alignment_slice``), excluded from every detector split. Such a space knows only the
concepts it was aligned on; :func:`fit_alignment` measures that (image -> text recall@k on held-out
images of unseen classes, and on unseen views of seen classes, each against chance) before fitting
the final heads on every pair.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

PROMPTS = (
    "a photo of a {}.",
    "a {}.",
    "a close-up photo of the {}.",
    "a picture showing a {}.",
    "an image of a {}.",
    "a photo of the {}, in its surroundings.",
)


def recall_at_k(similarity: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Fraction of queries (rows of ``similarity`` [Q, C]) whose true candidate ``truth[q]`` is among
    the ``k`` most similar candidates (ties count against the query)."""
    sim = np.asarray(similarity, dtype=np.float64)
    true = sim[np.arange(len(sim)), np.asarray(truth)]
    rank = (sim >= true[:, None]).sum(1) - 1  # candidates at least as similar, the truth excluded
    return float(np.mean(rank < k)) if len(sim) else float("nan")


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE for unit vectors where a[i] pairs with b[i]."""
    logits = scale * a @ b.T
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_heads(
    space,
    tokens: np.ndarray,
    class_of: np.ndarray,
    raw_text: np.ndarray,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> list[float]:
    """Fit the heads of ``space`` on tokens [n, V, T, D] with classes ``class_of`` [n] whose prompt
    embeddings are ``raw_text`` [C, P, Dt]. A batch holds images of distinct classes. Returns losses."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    params = [p for p in space.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    by_class: dict[int, np.ndarray] = {c: np.flatnonzero(class_of == c) for c in np.unique(class_of)}
    classes = np.array(sorted(by_class))
    n_views = tokens.shape[1]
    losses = []
    space.train()
    for _ in range(steps):
        cls = rng.choice(classes, size=min(batch_size, len(classes)), replace=False)
        img = np.array([rng.choice(by_class[c]) for c in cls])
        views = rng.integers(0, n_views, len(img))
        tok = torch.from_numpy(tokens[img, views].astype(np.float32))
        txt = torch.from_numpy(raw_text[cls, rng.integers(0, raw_text.shape[1], len(cls))])
        g, p = space.project_image(tok)
        t = F.normalize(space.project_text(txt), dim=-1)
        scale = space.logit_scale.exp().clamp(max=100)
        loss = contrastive_loss(F.normalize(g, dim=-1), t, scale) + contrastive_loss(
            F.normalize(p.mean(1), dim=-1), t, scale
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    space.eval()
    return losses


@torch.no_grad()
def retrieval_recall(space, tokens: np.ndarray, truth: np.ndarray, raw_text: np.ndarray, k: int = 5) -> float:
    """Image -> text recall@k: tokens [Q, T, D] against candidate captions raw_text [C, Dt] (prompt 0)."""
    g, _ = space.joint(torch.from_numpy(tokens.astype(np.float32)))
    t = F.normalize(space.project_text(torch.from_numpy(raw_text)), dim=-1)
    return recall_at_k((g @ t.T).numpy(), truth, k)


def fit_alignment(
    space,
    tokens: np.ndarray,
    names: list[str],
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    heldout_fraction: float = 0.2,
    seed: int = 0,
    k: int = 5,
) -> dict:
    """Measure, then fit, the heads of ``space`` on tokens [n, V, T, D] of images captioned ``names``.

    1. Classes are split (seeded) into seen and held-out ones; heads trained on the seen classes' views
       except the last are scored on (a) the held-out classes' images (the situation of a detector's
       images), among the held-out captions and among all captions, and (b) the seen images' unused last
       view, among all captions. Each recall comes with its chance level k / candidates.
    2. The heads are then trained on every pair and view.
    """
    classes = sorted(set(names))
    class_of = np.array([classes.index(n) for n in names])
    raw = space.raw_text_features([p.format(c) for c in classes for p in PROMPTS]).reshape(
        len(classes), len(PROMPTS), -1
    )
    rng = np.random.default_rng(seed)
    held_cls = rng.permutation(len(classes))[: max(1, int(round(heldout_fraction * len(classes))))]
    held = np.isin(class_of, held_cls)
    info: dict = {"n_pairs": len(names), "n_classes": len(classes), "n_views": int(tokens.shape[1]), "k": k}
    if (~held).sum() >= 2 and held.any() and tokens.shape[1] >= 2:
        start = copy.deepcopy(space.state_dict())
        probe = space
        train_heads(probe, tokens[~held, :-1], class_of[~held], raw, steps, batch_size, lr, weight_decay, seed)
        h_idx = np.flatnonzero(held)
        local = {c: j for j, c in enumerate(sorted(set(class_of[h_idx].tolist())))}
        held_text = raw[sorted(local), 0]
        info["heldout_classes"] = {
            "n_images": int(held.sum()),
            "n_candidates": len(local),
            "recall": retrieval_recall(
                probe, tokens[h_idx, 0], np.array([local[c] for c in class_of[h_idx]]), held_text, k
            ),
            "chance": min(1.0, k / len(local)),
            "recall_all_captions": retrieval_recall(probe, tokens[h_idx, 0], class_of[h_idx], raw[:, 0], k),
            "chance_all_captions": min(1.0, k / len(classes)),
        }
        s_idx = np.flatnonzero(~held)
        info["seen_classes_unseen_view"] = {
            "n_images": len(s_idx),
            "n_candidates": len(classes),
            "recall": retrieval_recall(probe, tokens[s_idx, -1], class_of[s_idx], raw[:, 0], k),
            "chance": min(1.0, k / len(classes)),
        }
        space.load_state_dict(start)  # the final heads start from the same initialisation
    losses = train_heads(space, tokens, class_of, raw, steps, batch_size, lr, weight_decay, seed)
    n = max(1, len(losses) // 10)
    info.update(
        {
            "steps": steps,
            "loss_first": float(np.mean(losses[:n])),
            "loss_last": float(np.mean(losses[-n:])),
            "train_recall": retrieval_recall(space, tokens[:, 0], class_of, raw[:, 0], k),
        }
    )
    return info


__all__ = ["fit_alignment", "train_heads", "recall_at_k", "contrastive_loss", "retrieval_recall", "PROMPTS"]
