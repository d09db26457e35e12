"""The gradient loop the trained heads share: class-balanced mini-batches, AdamW, one-cycle learning rate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def train_balanced(model: torch.nn.Module, labels: np.ndarray, batch_for: Callable[[np.ndarray, list[np.ndarray]], dict],
                   steps: int, batch_size: int, lr: float, weight_decay: float, rng: np.random.Generator,
                   pct_start: float = 0.3) -> list[float]:
    """Train ``model`` (its parameters that require grad) for ``steps`` steps; return the loss per step.

    Each step draws ``batch_size`` classes uniformly (so a skewed data set does not bias the model) and
    asks ``batch_for(classes, indices_by_class)`` for the batch, which draws its items with ``rng``
    and carries ``label``; ``model(batch)["loss"]`` is minimised. The model is left in eval mode.
    """
    by_class = [np.flatnonzero(np.asarray(labels) == c) for c in (0, 1)]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=pct_start)
    model.train()
    losses = []
    for _ in range(steps):
        out = model(batch_for(rng.integers(0, 2, batch_size), by_class))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        sched.step()
        losses.append(out["loss"].item())
    model.eval()
    return losses
