"""Any transformers image or vision-language checkpoint, by hub id or local directory.

CLIP / SigLIP (``model_type`` clip, siglip, siglip2, ...): image features from the vision
tower (pooled + patch tokens), joint-space image and text embeddings through
``get_image_features`` / ``get_text_features``. Plain vision models (DINOv2, ViT, ...):
the first token and the mean of the rest. Preprocessing is read from the checkpoint's
``preprocessor_config.json`` and done with Pillow/NumPy (no torchvision).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from aigi.backbones.base import Backbone, ImageFeatures, block_fields
from aigi.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess

_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
VL_TYPES = {"clip", "siglip", "siglip2", "chinese_clip", "altclip"}


def preprocess_from_config(cfg: dict) -> Preprocess:
    """Map a transformers image-processor config onto :class:`Preprocess`."""
    size = cfg.get("size") or {"shortest_edge": 224}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop = cfg.get("crop_size") or {}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    square = "shortest_edge" not in size
    resize = int(size.get("shortest_edge") or size.get("height") or 224)
    do_crop = cfg.get("do_center_crop", bool(crop))
    crop_px = int(crop.get("height", resize)) if do_crop else resize
    return Preprocess(
        resize=resize,
        crop=crop_px,
        square=square,
        mean=tuple(cfg.get("image_mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("image_std", IMAGENET_STD)),
        resample=_PIL_RESAMPLE.get(int(cfg.get("resample", 3)), "bicubic"),
    )


def _tensor(out) -> torch.Tensor:
    """transformers 4 returns a tensor from get_*_features, 5 a model output."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class TorchVisionTokens(torch.nn.Module):
    """pixels -> (pooled [B, D], patch tokens [B, N, D], the whole sequence [B, T, D]) of a torch-run
    backbone, as ``encode_images`` computes them (the graph ``aigi export`` traces); with
    ``hidden_states`` also every block's output sequence."""

    def __init__(self, model, model_type: str):
        super().__init__()
        self.model, self.model_type = model, model_type

    def forward(self, pixels, hidden_states: bool = False):
        vl = self.model_type in VL_TYPES
        out = (self.model.vision_model if vl else self.model)(pixel_values=pixels, output_hidden_states=hidden_states)
        seq = out.last_hidden_state
        has_cls = self.model_type not in ("siglip", "siglip2")
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else seq[:, 0]
        if hidden_states:  # each block's output (the embeddings, hidden_states[0], left out)
            return pooled, (seq[:, 1:] if has_cls else seq), seq, out.hidden_states[1:]
        return pooled, (seq[:, 1:] if has_cls else seq), seq

    def layers(self) -> tuple[list[torch.nn.Module], tuple]:
        """(the transformer blocks in order, the extra positional arguments each takes) of CLIP-type towers and
        DINOv2; ``ValueError`` for any other model (it can only run whole)."""
        vm = self.model.vision_model if hasattr(self.model, "vision_model") else self.model
        if hasattr(vm, "pre_layrnorm"):  # CLIP: (hidden, attention mask)
            return list(vm.encoder.layers), (None,)
        if self.model_type == "dinov2":
            return list(vm.encoder.layer), ()
        raise ValueError(f"a {self.model_type} model runs whole: its blocks cannot be run one by one")

    def stem(self, pixels) -> torch.Tensor:
        """The sequence entering block 0: the embeddings (and CLIP's pre-norm)."""
        vm = self.model.vision_model if hasattr(self.model, "vision_model") else self.model
        h = vm.embeddings(pixels)
        return vm.pre_layrnorm(h) if hasattr(vm, "pre_layrnorm") else h

    def run(self, h, start: int, stop: int, layers: list[torch.nn.Module] | None = None) -> list[torch.Tensor]:
        """The residual stream after each block ``start .. stop - 1`` from ``h``, the sequence entering block
        ``start`` (``layers``: other modules standing in for those blocks, e.g. adapted copies)."""
        blocks, extra = self.layers()
        if not 0 <= start < stop <= len(blocks):
            raise ValueError(f"blocks {start}..{stop - 1} asked for; this backbone has {len(blocks)} blocks")
        out = []
        for layer in layers if layers is not None else blocks[start:stop]:
            r = layer(h, *extra)
            h = r[0] if isinstance(r, tuple) else r
            out.append(h)
        return out

    def entering(self, pixels, block: int) -> torch.Tensor:
        """The sequence entering ``block`` (the output of the block before it; the stem's for block 0)."""
        h = self.stem(pixels)
        return self.run(h, 0, block)[-1] if block else h

    def blocks(self, pixels, depth: int) -> list[torch.Tensor]:
        """The residual stream after each of the first ``depth`` blocks (as ``hidden_states[1 : depth + 1]``),
        the later blocks never run: CLIP-type towers (embeddings, pre-norm, encoder layers) and DINOv2
        (embeddings, layers); any other model runs whole and is cut."""
        try:
            n = len(self.layers()[0])
        except ValueError:
            return list(self.forward(pixels, hidden_states=True)[3][:depth])
        if not 0 < depth <= n:
            raise ValueError(f"depth {depth} asked for; this backbone has {n} blocks")
        return self.run(self.stem(pixels), 0, depth)


def torch_vision_tokens(backbone) -> TorchVisionTokens:
    """The token module of a torch-run backbone (``load_backbone(name, runtime="torch")``)."""
    return TorchVisionTokens(backbone.model, getattr(backbone, "model_type", "dinov2"))


class HFBackbone(Backbone):
    def __init__(self, model_id: str, device: str = "cpu"):
        from transformers import AutoConfig, AutoModel
        from transformers.utils import cached_file

        self.name = model_id
        self.device = device
        config = AutoConfig.from_pretrained(model_id)
        self.model_type = config.model_type
        self.model = AutoModel.from_pretrained(model_id).eval().to(device)
        proc_file = cached_file(model_id, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
        self.preprocess = preprocess_from_config(json.loads(open(proc_file).read()) if proc_file else {})
        self.has_text = self.model_type in VL_TYPES
        vision_cfg = getattr(config, "vision_config", config)
        self.dim = int(vision_cfg.hidden_size)
        self.joint_dim = int(getattr(config, "projection_dim", 0) or self.dim)
        self._tokenizer = None

    @torch.inference_mode()
    def encode_images(
        self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False, block_tokens: tuple[int, ...] = ()
    ) -> ImageFeatures:
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
        module = torch_vision_tokens(self)
        want = blocks or bool(block_tokens)
        pooled, patches, seq, *rest = module(x, hidden_states=want)  # SigLIP has no class token
        hidden = rest[0] if rest else ()
        if want and self.model_type in ("siglip", "siglip2"):  # no class token: the patch mean stands in
            hidden = tuple(torch.cat([h.mean(1, keepdim=True), h], 1) for h in hidden)
        return ImageFeatures(
            cls=pooled.float().cpu().numpy(),
            patch_mean=patches.float().mean(1).cpu().numpy(),
            tokens=seq.float().cpu().numpy() if tokens else None,
            **block_fields([h.float().cpu().numpy() for h in hidden], blocks, block_tokens),
        )

    @torch.inference_mode()
    def embed_images(self, pixels: np.ndarray) -> np.ndarray:
        """Image embeddings in the joint image-text space (vision-language models only)."""
        if not self.has_text:
            raise NotImplementedError(f"{self.name} has no joint image-text space")
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
        return _tensor(self.model.get_image_features(pixel_values=x)).float().cpu().numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Text embeddings in the joint space."""
        if not self.has_text:
            raise NotImplementedError(f"{self.name} has no text tower")
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.name)
        batch = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        return _tensor(self.model.get_text_features(**batch)).float().cpu().numpy()
