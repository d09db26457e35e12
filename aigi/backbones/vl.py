"""Vision-language spaces: images (whole and per patch) and texts embedded in one joint space.

Two kinds, one interface (what ITEM reads):

- :class:`CLIPSpace`: any transformers CLIP or SigLIP checkpoint (hub id or local directory), the
  setting of the ITEM paper. Global image embedding = ``get_image_features``; patch embeddings = the
  same head applied to every patch token (CLIP: ``post_layernorm`` then ``visual_projection``;
  SigLIP: the post-layernormed tokens, whose width is the joint width, with the attention-pooling
  head giving the global embedding). Nothing is trained.
- :class:`LiTSpace`: the offline default. A frozen image encoder (DINOv2-S, or ``image_backbone:
  clip-b16``, CLIP ViT-B/16's image tower) and frozen MiniLM-L6 (texts) joined by three linear
  projection heads (global image, patch, text) trained contrastively, LiT-style, on captioned pairs
  (``aigi.training.alignment``). Only the heads are parameters; they are saved with the detector. With
  ``blocks`` the image side reads those blocks' token sequences side by side (each layer-normed on its
  own) instead of the final tokens.

Both expose ``image_tokens(pixels)`` (the frozen encoder's token sequence, cacheable) and
``joint(tokens) -> (global [B, E], patches [B, N, E])``, L2-normalised, and ``encode_texts``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from aigi.transforms import Preprocess

LIT = "lit"


class VisionLanguageSpace(torch.nn.Module):
    dim: int
    preprocess: Preprocess

    def token_cache_key(self) -> str:
        raise NotImplementedError

    def image_tokens(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed pixels [B, 3, H, W] -> the frozen encoder's tokens [B, 1+N, D] (float16)."""
        raise NotImplementedError

    def joint(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def key(self) -> str:
        """Identifies the space (encoders and trained heads), e.g. for caption caches."""
        h = hashlib.sha256(self.token_cache_key().encode())
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode() + v.detach().cpu().numpy().tobytes())
        return h.hexdigest()[:16]


class CLIPSpace(VisionLanguageSpace):
    """A transformers CLIP / SigLIP checkpoint. The model is held outside the module's parameters:
    it is loaded from its own directory, never saved with the detector."""

    def __init__(self, model_id: str, device: str = "cpu"):
        super().__init__()
        from aigi.backbones.hf import HFBackbone

        bb = HFBackbone(model_id, device)
        if not bb.has_text:
            raise ValueError(f"{model_id}: a {bb.model_type} model has no text tower; ITEM needs CLIP or SigLIP")
        self.__dict__["backbone"] = bb  # not a submodule
        self.preprocess = bb.preprocess
        self.dim = bb.joint_dim

    def token_cache_key(self) -> str:
        return self.backbone.cache_key()

    def image_tokens(self, pixels: np.ndarray) -> np.ndarray:
        return self.backbone.token_sequence(pixels)

    @torch.inference_mode()
    def joint(self, tokens: torch.Tensor):
        model = self.backbone.model
        vm = model.vision_model
        h = tokens.to(next(model.parameters()).dtype)
        if self.backbone.model_type in ("siglip", "siglip2"):
            g, p = vm.head(h), h  # SigLIP's tokens are already post-layernormed; no class token
        else:
            h = vm.post_layernorm(h)
            g, p = model.visual_projection(h[:, 0]), model.visual_projection(h[:, 1:])
        return F.normalize(g.float(), dim=-1), F.normalize(p.float(), dim=-1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(torch.from_numpy(self.backbone.encode_texts(list(texts))), dim=-1)


class LiTSpace(VisionLanguageSpace):
    """A frozen offline image encoder (``image_backbone``, a key of ``TOKEN_WIDTH``) + MiniLM-L6, joined by
    trained linear heads (``dim`` wide). ``blocks``: the image tokens are those blocks' output sequences
    concatenated channel-wise (empty: the final tokens)."""

    TOKEN_WIDTH = {"dinov2-s14": 384, "clip-b16": 768}  # the offline image encoders and their token width

    def __init__(
        self,
        dim: int = 128,
        text_width: int = 384,
        device: str = "cpu",
        blocks: tuple[int, ...] = (),
        image_backbone: str = "dinov2-s14",
    ):
        super().__init__()
        from aigi.backbones import preprocess_for

        if image_backbone not in self.TOKEN_WIDTH:
            raise ValueError(
                f"lit space: image_backbone {image_backbone!r} is not an offline encoder "
                f"({', '.join(self.TOKEN_WIDTH)}); a CLIP/SigLIP checkpoint is used as the backbone itself"
            )
        self.dim = dim
        self.image_backbone = image_backbone
        self.blocks = tuple(blocks)
        self.token_width = self.TOKEN_WIDTH[image_backbone]
        image_width = self.token_width * max(1, len(self.blocks))
        self.preprocess = preprocess_for(image_backbone)
        self.image_head = torch.nn.Linear(image_width, dim)
        self.patch_head = torch.nn.Linear(image_width, dim)
        self.text_head = torch.nn.Linear(text_width, dim)
        self.logit_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        self.device_name = device
        self.__dict__["_image_encoder"] = None
        self.__dict__["_text_encoder"] = None
        self.__dict__["_text_memo"] = {}

    def token_cache_key(self) -> str:
        from aigi.backbones import backbone_cache_key

        return backbone_cache_key(self.image_backbone, blocks=self.blocks)

    def image_tokens(self, pixels: np.ndarray) -> np.ndarray:
        if self._image_encoder is None:
            from aigi.backbones import load_backbone

            self.__dict__["_image_encoder"] = load_backbone(self.image_backbone, self.device_name)
        return self._image_encoder.token_sequence(pixels, self.blocks)

    def project_image(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised (global, patches) projections of encoder tokens (each block's part layer-normed on
        its own, no affine)."""
        t = tokens.float()
        parts = t.reshape(*t.shape[:-1], -1, self.token_width)
        h = F.layer_norm(parts, parts.shape[-1:]).reshape(t.shape)
        return self.image_head(h[:, 0]), self.patch_head(h[:, 1:])

    def joint(self, tokens: torch.Tensor):
        g, p = self.project_image(tokens.to(self.image_head.weight.device))
        return F.normalize(g, dim=-1), F.normalize(p, dim=-1)

    def raw_text_features(self, texts: list[str]) -> np.ndarray:
        """MiniLM embeddings (before the text head), memoised per string."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_memo]
        if missing:
            if self._text_encoder is None:
                from aigi.backbones.text import SentenceEncoder

                self.__dict__["_text_encoder"] = SentenceEncoder(device=self.device_name)
            for t, v in zip(missing, self._text_encoder.encode(missing)):
                self._text_memo[t] = v
        return (
            np.stack([self._text_memo[t] for t in texts])
            if texts
            else np.zeros((0, self.text_head.in_features), np.float32)
        )

    def project_text(self, raw: torch.Tensor) -> torch.Tensor:
        return self.text_head(raw.to(self.text_head.weight.device))

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(self.project_text(torch.from_numpy(self.raw_text_features(list(texts)))), dim=-1)


def load_space(
    spec: str, dim: int = 128, device: str = "cpu", blocks: tuple[int, ...] = (), image_backbone: str = "dinov2-s14"
) -> VisionLanguageSpace:
    """``lit`` (an offline image encoder + MiniLM with trained heads; ``blocks``, ``image_backbone``: see
    :class:`LiTSpace`) or a CLIP/SigLIP hub id / directory (its own joint head reads the final tokens of its
    own image tower, so neither ``blocks`` nor ``image_backbone``)."""
    if spec == LIT:
        return LiTSpace(dim, device=device, blocks=blocks, image_backbone=image_backbone)
    if blocks:
        raise ValueError(f"blocks need the lit space: {spec}'s joint head reads its final tokens only")
    if image_backbone != "dinov2-s14":
        raise ValueError(f"image_backbone needs the lit space: {spec} brings its own image tower")
    return CLIPSpace(spec, device)


__all__ = ["VisionLanguageSpace", "CLIPSpace", "LiTSpace", "load_space", "LIT"]
