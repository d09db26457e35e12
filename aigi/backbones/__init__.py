"""Image (and text) encoders, by name: ``dinov2-s14`` offline, or any transformers checkpoint."""

from __future__ import annotations

from aigi.backbones.base import Backbone, ImageFeatures

OFFLINE_DEFAULT = "dinov2-s14"


def load_backbone(name: str = OFFLINE_DEFAULT, device: str = "cpu", runtime: str = "auto") -> Backbone:
    """``dinov2-s14`` (onnxruntime for inference, ``runtime="torch"`` for the transformers model),
    or a transformers hub id / local directory (CLIP, SigLIP, DINOv2, ViT ...)."""
    if name == OFFLINE_DEFAULT:
        from aigi.backbones.dinov2 import Dinov2OnnxBackbone, Dinov2TorchBackbone

        return Dinov2TorchBackbone(device) if runtime == "torch" else Dinov2OnnxBackbone(device)
    from aigi.backbones.hf import HFBackbone

    return HFBackbone(name, device)


__all__ = ["Backbone", "ImageFeatures", "load_backbone", "OFFLINE_DEFAULT"]
