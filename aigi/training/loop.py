"""The gradient loop the trained heads share: class-balanced mini-batches, AdamW, one-cycle learning rate.

Data-parallel when ``torch.distributed`` is initialised (``torchrun``; gloo on CPU, nccl on GPUs):
every process draws the same global batch from the same seeded generator, keeps its contiguous share,
and gradients are averaged across processes before each step (parameters and buffers start from rank
0's). For the same seed and global batch size, 1 and N processes then take the same steps up to
floating-point summation order. Heads with dropout draw their masks per process, so they match only in
distribution; set dropout to 0 where bit-level agreement matters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train_balanced(
    model: torch.nn.Module,
    labels: np.ndarray,
    batch_for: Callable[[np.ndarray, list[np.ndarray]], dict],
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    rng: np.random.Generator,
    pct_start: float = 0.3,
) -> list[float]:
    """Train ``model`` (its parameters that require grad) for ``steps`` steps; return the loss per step.

    Each step draws ``batch_size`` classes uniformly (so a skewed data set does not bias the model) and
    asks ``batch_for(classes, indices_by_class)`` for the batch, which draws its items with ``rng``
    and carries ``label``; ``model(batch)["loss"]`` is minimised. The model is left in eval mode.
    """
    import torch.distributed as dist

    rank, size = world()
    if batch_size % size:
        raise ValueError(f"the global batch size {batch_size} must divide among {size} processes")
    by_class = [np.flatnonzero(np.asarray(labels) == c) for c in (0, 1)]
    params = [p for p in model.parameters() if p.requires_grad]
    if size > 1:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=pct_start)
    model.train()
    losses = []
    share = batch_size // size
    for _ in range(steps):
        batch = batch_for(rng.integers(0, 2, batch_size), by_class)
        if size > 1:
            batch = {k: v[rank * share : (rank + 1) * share] for k, v in batch.items()}
        out = model(batch)
        opt.zero_grad()
        out["loss"].backward()
        loss = out["loss"].detach().clone()
        if size > 1:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= size
            dist.all_reduce(loss)
            loss /= size
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


__all__ = ["train_balanced", "world"]
