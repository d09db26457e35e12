"""univfd's ``adapt:``: the glue between the detector, the feature cache and :mod:`aigi.training.adapt`.

Training (:func:`fit_adapter`, after the frozen head's fit): the sequence entering block ``from_block`` of every
training view is extracted through the feature cache (kind ``entering``; a killed run keeps what it wrote), the
adapter and the head are trained over it, the adapter's tensors become the detector's ``adapter`` buffers (saved
in ``model.safetensors``, so the version covers them) and are merged into its encoder. Loading: ``state.json``
lists the adapter's tensors, :func:`expect_adapter` makes room for them before the weights load, and the encoder
gets them merged the moment it loads (``UnivFD.backbone_loaded``), for scoring, the service, Ray and export alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aigi.detectors.univfd import UnivFD

if TYPE_CHECKING:
    from aigi.config import TrainConfig

log = logging.getLogger("aigi.train")
SEP = "__"  # buffer names cannot hold dots: "3.self_attn.q_proj.lora_A" is kept as "3__self_attn__q_proj__lora_A"


def settings(det: UnivFD):
    """The detector's ``adapt:`` settings."""
    from aigi.training.adapt import AdaptSettings

    return AdaptSettings.from_dict(det.config.adapt)


def check_settings(config) -> None:
    """A clear error for ``adapt:`` settings univfd cannot follow (at construction, before any image)."""
    from aigi.training.adapt import AdaptSettings

    s = AdaptSettings.from_dict(config.adapt)
    blocks = list(config.blocks)
    if not blocks or min(blocks) < 0:
        raise ValueError("univfd: adapt needs blocks (the head's per-block descriptor), counted from 0")
    if not 0 <= s.from_block <= max(blocks):
        raise ValueError(f"univfd: adapt.from_block {s.from_block} is not among blocks 0..{max(blocks)}")
    if config.launder:
        raise ValueError("univfd: adapt and launder do not go together")


def adapter_tensors(det: UnivFD) -> dict[str, torch.Tensor]:
    """The adapter as ``{"<block>.<layer path>.lora_A|B": tensor}`` (empty when the encoder is frozen)."""
    return {k.replace(SEP, "."): v for k, v in det.adapter.named_buffers()}


def set_adapter(det: UnivFD, tensors: dict[str, torch.Tensor]) -> None:
    for k, v in tensors.items():
        det.adapter.register_buffer(k.replace(".", SEP), v.detach().float().clone())


def expect_adapter(det: UnivFD, shapes: dict[str, list[int]]) -> None:
    """Buffers of the saved adapter's shapes (``state.json``), filled when ``model.safetensors`` loads."""
    for k, shape in shapes.items():
        det.adapter.register_buffer(k.replace(".", SEP), torch.zeros(shape))


def merge_into(det: UnivFD, backbone) -> None:
    """Merge ``det``'s adapter into ``backbone`` (its own freshly loaded encoder), in place."""
    from aigi.backbones.hf import torch_vision_tokens
    from aigi.training.adapt import merge

    if not hasattr(backbone, "model"):
        raise ValueError(f"univfd: an adapted encoder needs {det.config.backbone} run through torch")
    merge(torch_vision_tokens(backbone), adapter_tensors(det), settings(det).alpha)


class EnteringTokens(UnivFD):
    """The sequence entering block ``block`` of ``parent``'s (frozen) encoder for each planned crop, as a cached
    stage: ``features`` [B, P, T, D] float16 (NaN for absent crops)."""

    feature_kind = "entering"

    def __init__(self, parent: UnivFD, block: int):
        super().__init__(dataclasses.replace(parent.config, adapt={}, attribution=False))
        self._backbone = parent.backbone
        self.device_name = parent.device_name
        self.parity = parent.parity
        self.block = block

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        from aigi.backbones.hf import torch_vision_tokens

        pixels = inputs["pixels"]
        b, p = pixels.shape[:2]
        flat = pixels.reshape(b * p, *pixels.shape[2:])
        present = ~np.isnan(flat[:, 0, 0, 0])
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(flat[present])).to(self.device_name)
            h = torch_vision_tokens(self.backbone).entering(x, self.block).half().cpu().numpy()
        out = np.full((b * p, *h.shape[1:]), np.nan, np.float16)
        out[present] = h
        return {"features": out.reshape(b, p, *h.shape[1:])}

    def feature_key(self) -> str:
        return f"{self.backbone.cache_key()}+entering{self.block}+plan{self.config.crops}"


def fit_adapter(
    det: UnivFD, paths: list[str], feats: np.ndarray, labels: np.ndarray, generators: np.ndarray, cfg: TrainConfig
) -> tuple[np.ndarray, dict]:
    """Adapt ``det``'s encoder over the cached sequences of the training views (``feats``: their frozen
    descriptors [n, V, P, F], the head already fitted on them). Returns the descriptors with the adapted blocks'
    columns recomputed, and the run's report."""
    from aigi.backbones.hf import torch_vision_tokens
    from aigi.detectors.logistic import balanced_weights
    from aigi.paths import cache_dir
    from aigi.scoring import extract
    from aigi.training.adapt import AdaptedTop, holdout_split, lora_tensors, train_top
    from aigi.training.cache import hash_files

    s = settings(det)
    blocks = list(det.config.blocks)
    read = [b for b in blocks if b >= s.from_block]
    log.info(f"adapt: caching the sequence entering block {s.from_block} of {len(paths)} images")
    stage = EnteringTokens(det, s.from_block)
    tokens, errors = extract(stage, paths, cfg.train_views(), cfg.view_recipe, cfg.seed, batch_size=cfg.batch_size)
    bad = [e for e in errors if e]
    if bad:
        raise ValueError(f"univfd: {len(bad)} training images failed the token pass (first: {bad[0]})")
    n, d = len(paths), feats.shape[-1]
    present = ~np.isnan(feats.reshape(n, -1, d)[..., 0]).ravel()  # one row per (image, view, crop)
    image_of = np.repeat(np.arange(n), len(present) // n)
    entering = tokens["features"].reshape(len(present), *tokens["features"].shape[-2:])  # a view, not a copy
    del tokens
    X = feats.reshape(len(present), d).astype(np.float32)
    weights = balanced_weights(labels, generators) if det.config.balance == "group" else np.ones(n)
    held_images = holdout_split(np.asarray(generators), labels, s.holdout, cfg.seed)
    held = held_images[image_of]
    fd = det.config.feature_dim
    cols = np.concatenate([np.arange(j * fd, (j + 1) * fd) for j, b in enumerate(blocks) if b >= s.from_block])
    top = AdaptedTop(torch_vision_tokens(det.backbone), s.from_block, read, s, cfg.seed)
    run = [stage.feature_key(), det.feature_key(), repr(s), cfg.seed, cfg.train_views(), cfg.view_recipe.key(),
           hash_files(paths)[0], labels.tolist(), weights.tolist(), det.head.weight.sum().item()]  # fmt: skip
    checkpoint = cache_dir() / "adapt" / hashlib.sha256(json.dumps(run, default=str).encode()).hexdigest()[:16]
    report = train_top(
        top, entering, X, cols, lambda x: det.head(det.standardised(x)).squeeze(-1), list(det.head.parameters()),
        labels[image_of], weights[image_of], np.flatnonzero(present & ~held), np.flatnonzero(present & held), s,
        cfg.seed, det.device_name, log.info, checkpoint,
    )  # fmt: skip
    rows = np.flatnonzero(present)
    with torch.no_grad():
        for chunk in np.array_split(rows, max(1, len(rows) // 64)):
            X[chunk[:, None], cols[None]] = top(torch.from_numpy(entering[chunk].astype(np.float32))).numpy()
    set_adapter(det, lora_tensors(top.blocks, s.from_block))  # (mode full: the blocks' weights)
    merge_into(det, det.backbone)
    held_out = sorted(set(np.asarray(generators)[held_images].tolist()))
    report.update({"from_block": s.from_block, "blocks": read, "rank": s.rank, "early_stopping_groups": held_out,
                   "adapter_values": int(sum(v.numel() for v in adapter_tensors(det).values()))})  # fmt: skip
    return X.reshape(feats.shape), report
