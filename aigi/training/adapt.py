"""Adapting a frozen ViT's top blocks over cached tokens: LoRA on the attention and MLP projections (or, with
``mode: full``, the blocks' own weights: the GPU user's option).

The encoder runs once per training view up to block ``k`` (``from_block``); that sequence is cached (float16,
the feature cache's ``entering`` kind). Training then runs only blocks ``k .. depth - 1`` (copies, with peft's
LoRA adapters on every linear layer named in ``targets``) and the detector's linear head over the cached
sequences, so an epoch costs a fraction of a pass through the whole encoder. The frozen blocks below ``k``
never change, so their pooled tokens come from the ordinary feature cache.

What ships is the adapter alone: for each adapted linear layer ``W`` (out x in), ``A`` (rank x in) and ``B``
(out x rank); at load ``W + (alpha / rank) B A`` replaces ``W`` in the detector's own copy of the encoder
(:func:`merge`, peft's convention), so scoring, the service, Ray and the exported graph run the ordinary
encoder with merged weights at the frozen encoder's speed. ``mode: full`` ships the adapted blocks' weights
instead (about 7 MB per CLIP-B block), copied over the encoder's at load.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from aigi.backbones.base import pool_sequence

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "o_proj", "fc1", "fc2", "query", "key", "value", "dense")


@dataclass(frozen=True)
class AdaptSettings:
    """``adapt:`` of a univfd recipe. ``from_block``: the first adapted block (the head's blocks from there on
    are recomputed through the adapted copies); ``rank``/``alpha``: LoRA's; ``epochs`` over the cached views,
    ``lr`` (AdamW), ``batch_size``; ``patience``: epochs without a better early-stopping loss before stopping
    (the loss of ``holdout`` of the training images, whole generators and real sources kept out of the
    adapter's fit; 0: no early stopping, the last epoch is kept)."""

    from_block: int
    rank: int = 8
    alpha: float = 16.0
    epochs: int = 4
    lr: float = 5e-4
    batch_size: int = 32
    patience: int = 2
    head_lr: float = -1.0  # the head's learning rate (< 0: ``lr``; 0: the head stays as the frozen fit left it)
    holdout: float = 0.15
    targets: tuple[str, ...] = LORA_TARGETS
    mode: str = "lora"  # "lora" | "full" (train the blocks' own weights; the adapter is then those weights)

    @classmethod
    def from_dict(cls, d: dict) -> AdaptSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"adapt: unknown settings {unknown}; known: {sorted(known)}")
        if "from_block" not in d:
            raise ValueError("adapt: from_block (the first adapted block) is required")
        s = cls(**{k: tuple(v) if k == "targets" else v for k, v in d.items()})
        if s.mode not in ("lora", "full"):
            raise ValueError(f"adapt: mode must be 'lora' or 'full', not {s.mode!r}")
        if s.rank < 1 or s.epochs < 1 or s.batch_size < 1 or not 0 <= s.holdout < 1:
            raise ValueError(f"adapt: rank, epochs and batch_size must be >= 1 and 0 <= holdout < 1 ({s})")
        return s


def adapted_copies(tokens, start: int, stop: int, settings: AdaptSettings) -> torch.nn.ModuleList:
    """Copies of blocks ``start .. stop - 1`` of ``tokens`` (a :class:`~aigi.backbones.hf.TorchVisionTokens`),
    frozen, with LoRA adapters (peft) on each linear layer whose name is in ``settings.targets``; with ``mode:
    full``, the copies themselves trainable."""
    blocks = torch.nn.ModuleList(copy.deepcopy(tokens.layers()[0][start:stop]))
    for p in blocks.parameters():
        p.requires_grad_(settings.mode == "full")
    if settings.mode == "full":
        return blocks
    from peft import LoraConfig, inject_adapter_in_model

    names = {n.rsplit(".", 1)[-1] for n, m in blocks.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = sorted(names & set(settings.targets))
    if not targets:
        raise ValueError(f"adapt: none of the targets {list(settings.targets)} is a linear layer of these blocks")
    cfg = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=targets, lora_dropout=0.0)
    return inject_adapter_in_model(cfg, blocks)


def lora_tensors(blocks: torch.nn.ModuleList, start: int) -> dict[str, torch.Tensor]:
    """The adapter of :func:`adapted_copies`' blocks as ``{"<block>.<path>.lora_A": A, ...lora_B: B}`` with the
    encoder's own block numbers (float32, detached); with ``mode: full``, every weight ``{"<block>.<path>": W}``."""
    out = {}
    for name, p in blocks.named_parameters():
        if p.requires_grad and ".lora_" not in name:  # mode full
            i, rest = name.split(".", 1)
            out[f"{int(i) + start}.{rest}"] = p.detach().float().clone()
        elif ".lora_A." in name or ".lora_B." in name:
            i, rest = name.split(".", 1)
            path, kind = rest.split(".lora_")
            out[f"{int(i) + start}.{path}.lora_{kind[0]}"] = p.detach().float().clone()
    return out


def merge(tokens, adapter: dict[str, torch.Tensor], alpha: float) -> None:
    """Add each adapted layer's ``(alpha / rank) B A`` to the weight of the encoder block it names, in place
    (``tokens``: the detector's own :class:`~aigi.backbones.hf.TorchVisionTokens`); a full weight (mode full)
    replaces the one it names."""
    blocks, _ = tokens.layers()
    with torch.no_grad():
        for key in sorted(k for k in adapter if ".lora_" not in k):
            i, path = key.split(".", 1)
            w = blocks[int(i)].get_parameter(path)
            w.copy_(adapter[key].to(w.dtype).to(w.device))
        for key in sorted(k for k in adapter if k.endswith(".lora_A")):
            i, path = key[: -len(".lora_A")].split(".", 1)
            a, b = adapter[key], adapter[key[: -len("A")] + "B"]
            w = blocks[int(i)].get_submodule(path).weight
            w += ((alpha / a.shape[0]) * (b @ a)).to(w.dtype).to(w.device)


def digest(adapter: dict[str, torch.Tensor]) -> str:
    """A short hash of the adapter's tensors (part of the feature-cache key of an adapted encoder)."""
    h = hashlib.sha256()
    for k in sorted(adapter):
        h.update(k.encode())
        h.update(adapter[k].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


class AdaptedTop(torch.nn.Module):
    """The cached sequence entering block ``start`` -> the pooled tokens of each block in ``read`` (all >=
    ``start``), through the adapted copies of blocks ``start .. max(read)``."""

    def __init__(self, tokens, start: int, read: list[int], settings: AdaptSettings, seed: int = 0):
        super().__init__()
        self.run = tokens.run  # (a bound method: the frozen encoder is not a part of this module)
        self.start, self.read = start, list(read)
        with torch.random.fork_rng():  # LoRA's A starts random: seeded, so a run is reproducible
            torch.manual_seed(seed)
            self.blocks = adapted_copies(tokens, start, max(read) + 1, settings)

    def forward(self, entering: torch.Tensor) -> torch.Tensor:
        seq = self.run(entering, self.start, max(self.read) + 1, list(self.blocks))
        return torch.cat([pool_sequence(seq[b - self.start]) for b in self.read], 1)


def holdout_split(groups: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each image is in the early-stopping holdout: on each side (reals, fakes) about ``fraction`` of
    the groups (real sources, generators), whole and seeded, so stopping reads kinds of image the adapter never
    trained on; a side with a single group gives ``fraction`` of its images instead."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(groups), dtype=bool)
    for label in (0, 1) if fraction > 0 else ():
        side = labels == label
        names = sorted(set(groups[side].tolist()))
        if len(names) > 1:
            take = rng.permutation(names)[: max(1, int(round(fraction * len(names))))]
            held |= side & np.isin(groups, take)
        elif side.sum() > 1:
            idx = rng.permutation(np.flatnonzero(side))
            held[idx[: max(1, int(round(fraction * len(idx))))]] = True
    return held


def trainable(top: AdaptedTop) -> dict[str, torch.Tensor]:
    """Copies of ``top``'s trainable tensors (the LoRA matrices, or the blocks' weights in mode full)."""
    return {k: p.detach().clone() for k, p in top.named_parameters() if p.requires_grad}


def _save(path, top: AdaptedTop, params, opt, best_state, best_head, meta: dict) -> None:
    """An epoch's checkpoint: the trainable tensors, the best ones so far, AdamW's moments (safetensors) and
    the loop's state (JSON), each written to a temporary file and renamed."""
    import json
    import os

    from safetensors.torch import save_file

    t = {f"now.{k}": v for k, v in trainable(top).items()}
    t.update({f"now.head.{i}": p.detach() for i, p in enumerate(params)})
    t.update({f"best.{k}": v for k, v in (best_state or {}).items()})
    t.update({f"best.head.{i}": p for i, p in enumerate(best_head or [])})
    for i, st in opt.state_dict()["state"].items():
        t.update({f"opt.{i}.{k}": torch.as_tensor(v).float() for k, v in st.items()})
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in t.items()}, str(path / "state.tmp"))
    (path / "loop.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.tmp", path / "state.safetensors")
    os.replace(path / "loop.tmp", path / "loop.json")


def _resume(path, top: AdaptedTop, params, opt) -> tuple[dict, dict | None, list | None] | None:
    """(the loop's state, the best adapter, the best head) from ``path``'s checkpoint, the trainable tensors
    and AdamW's moments restored in place; None when there is none."""
    import json

    from safetensors.torch import load_file

    if not (path / "loop.json").is_file() or not (path / "state.safetensors").is_file():
        return None
    meta = json.loads((path / "loop.json").read_text())
    t = load_file(str(path / "state.safetensors"))
    now = {k[4:]: v for k, v in t.items() if k.startswith("now.") and not k.startswith("now.head.")}
    top.load_state_dict(now, strict=False)
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(t[f"now.head.{i}"])
    state = opt.state_dict()
    for key, v in t.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state["state"].setdefault(int(i), {})[name] = v if name != "step" else v.reshape(())
    opt.load_state_dict(state)
    best_state = {k[5:]: v for k, v in t.items() if k.startswith("best.") and not k.startswith("best.head.")}
    best_head = [t[f"best.head.{i}"] for i in range(len(params))] if "best.head.0" in t else None
    return meta, best_state or None, best_head


def train_top(
    top: AdaptedTop,
    entering: np.ndarray,
    frozen: np.ndarray,
    adapted_cols: np.ndarray,
    head: Callable[[torch.Tensor], torch.Tensor],
    params: list[torch.nn.Parameter],
    labels: np.ndarray,
    weights: np.ndarray,
    train_rows: np.ndarray,
    stop_rows: np.ndarray,
    settings: AdaptSettings,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    checkpoint=None,
) -> dict:
    """Train ``top``'s LoRA tensors and ``params`` (the head's) on rows: ``entering`` [n, T, D] float16 (the
    cached sequences), ``frozen`` [n, F] the full descriptors (their ``adapted_cols`` are replaced by ``top``'s
    output), weighted BCE of ``head(descriptor)``, on ``train_rows``. ``stop_rows``: the early-stopping rows;
    the adapter and head of the epoch with the lowest loss there are kept (epoch 0: the head as it came).
    ``checkpoint`` (a folder): each epoch's state is written there and a rerun goes on from the last one (each
    epoch's order is drawn from ``(seed, epoch)``, so a resumed run takes the same steps). Returns the report."""
    torch.manual_seed(seed)
    top.to(device)
    start = trainable(top)  # LoRA: B = 0, the encoder unchanged; full: the encoder's own weights
    head_lr = settings.lr if settings.head_lr < 0 else settings.head_lr
    groups = [{"params": [p for p in top.parameters() if p.requires_grad]}]
    groups += [{"params": params, "lr": head_lr}] if head_lr > 0 else []
    opt = torch.optim.AdamW(groups, lr=settings.lr)
    cols = torch.from_numpy(adapted_cols)

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.nan_to_num(frozen[rows]).astype(np.float32)).to(device)
        x[:, cols] = top(torch.from_numpy(entering[rows].astype(np.float32)).to(device))
        z = head(x)
        y = torch.from_numpy(labels[rows].astype(np.float32)).to(device)
        w = torch.from_numpy(weights[rows].astype(np.float32)).to(device)
        return (F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).sum() / w.sum()

    def stop_loss() -> float | None:
        if not len(stop_rows):
            return None
        chunks = np.array_split(stop_rows, max(1, len(stop_rows) // 64))
        with torch.no_grad():
            parts = [(loss_of(r).item(), weights[r].sum()) for r in chunks]
        return float(sum(v * w for v, w in parts) / sum(w for _, w in parts))

    resumed = _resume(checkpoint, top, params, opt) if checkpoint is not None else None
    if resumed:
        meta, best_state, best_head = resumed
        if log:
            log(f"adapt: resuming after epoch {meta['history'][-1]['epoch']} ({checkpoint})")
    else:
        meta = {"history": [{"epoch": 0, "stop_loss": stop_loss()}], "waited": 0, "done": False, "kept": 0}
        best_state, best_head = None, [p.detach().clone() for p in params]  # epoch 0: the head as it came
    history = meta["history"]
    best = min((h["stop_loss"] for h in history if h["epoch"] == meta["kept"]), default=None)
    while not meta["done"] and history[-1]["epoch"] < settings.epochs:
        epoch = history[-1]["epoch"] + 1
        order = np.random.default_rng([seed, epoch]).permutation(train_rows)
        total = 0.0
        for i in range(0, len(order), settings.batch_size):
            loss = loss_of(order[i : i + settings.batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * min(settings.batch_size, len(order) - i)
        history.append({"epoch": epoch, "train_loss": total / max(1, len(order)), "stop_loss": stop_loss()})
        now = history[-1]["stop_loss"]
        if log:
            stop = f", early-stopping loss {now:.4f}" if now is not None else ""
            log(f"adapt epoch {epoch}/{settings.epochs}: train loss {history[-1]['train_loss']:.4f}{stop}")
        if now is None or now < best:  # without a holdout every epoch is the best so far
            best, meta["waited"], meta["kept"] = now, 0, epoch
            best_state = trainable(top)
            best_head = [p.detach().clone() for p in params]
        else:
            meta["waited"] += 1
            meta["done"] = meta["waited"] >= settings.patience
        if checkpoint is not None:
            _save(checkpoint, top, params, opt, best_state, best_head, meta)
    top.load_state_dict(best_state or start, strict=False)  # no epoch beat the start: the adapter as it began
    with torch.no_grad():
        for p, v in zip(params, best_head or []):
            p.copy_(v)
    top.to("cpu")
    rows = {"rows": int(len(train_rows)), "stop_rows": int(len(stop_rows))}
    return {"history": history, "kept_epoch": meta["kept"], **rows}
