"""GAMMA: manipulation-augmented multi-task detection with pixel-level source attribution.

Yan et al., "GAMMA: Generalizable Alignment via Multi-task and Manipulation-Augmented Training for
AI-Generated Image Detection", arXiv 2509.10250 (ICASSP'26). The paper's code is not public; everything
below that the paper does not pin down is our choice, written here.

Model (on the backbone's final tokens, or with ``blocks`` the token sequences of those blocks concatenated
channel-wise, e.g. ``[8, 11]`` for a middle and the last block; DINOv2-S offline, any transformers ViT by
id or directory):
- tokens -> LayerNorm -> linear projection to ``hidden``; patch tokens laid out on their grid;
- segmentation features: a depthwise-separable 3x3 convolution with a residual on the grid;
- head A (``mask``): per patch, authentic vs manipulated/generated (sigmoid);
- head B (``source``): per patch, which of ``augment.manipulate.SOURCES`` produced it
  (real / generated / inpainted / copy-moved / spliced; softmax);
- reverse cross-attention: the class token plus ``queries`` learned query tokens attend to the
  segmentation features (cls <- seg, the reverse of the usual flow); their mean goes through an MLP to
  the image logit.
Loss = BCE(image) + ``mask_weight`` x BCE(head A, fraction of manipulated pixels per patch)
+ ``source_weight`` x soft cross-entropy(head B, fraction of each source per patch). A fully generated
image's target is all-generated; a manipulated real image is labelled fake.

Training data: for every training image, view 0 (as it is), ``clean_views`` shortcut-denial views
(random rescale/crop/flip/JPEG, both classes alike, as univfd), and ``manipulated_views`` variants drawn
by ``augment.manipulate`` (inpainting, copy-move, splicing; then perhaps a semantics-preserving
perturbation) and passed through the same shortcut-denial view, masks following the geometry. Splice
donors come only from the training images (see ``rendezvous_donor``). Tokens of every variant are cached
(frozen backbone), so a variant costs one backbone pass, ever.

Ablations (options): ``manipulations: false`` (no manipulated variants), ``segmentation: false`` (no
segmentation heads or losses; the attention then reads unsupervised features), ``reverse_attention:
false`` (the image head reads the class token and the mean patch token).

``finetune``: ``frozen`` (default; cached tokens), ``last`` (also train the last ``last_blocks``
transformer blocks) or ``lora`` (peft LoRA adapters of rank ``lora_rank`` on the attention
projections). The last two train through the backbone on in-memory variants (use a GPU), and the
saved detector holds the whole backbone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aigi.augment.manipulate import REAL, SOURCES, ManipulationRecipe
from aigi.contract import ModelConfig
from aigi.detectors.base import Detector
from aigi.detectors.gamma.variants import LABEL_POLICIES, in_memory_set, tools, training_set
from aigi.detectors.registry import register
from aigi.training.loop import train_balanced

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


FINETUNE = ("frozen", "last", "lora")


@dataclass
class GammaConfig(ModelConfig):
    backbone: str = "dinov2-s14"
    blocks: tuple[int, ...] = ()  # empty: the final (normed) tokens; else these blocks' sequences, concatenated
    hidden: int = 128
    queries: int = 4
    heads: int = 4
    segmentation: bool = True
    reverse_attention: bool = True
    manipulations: bool = True
    # which manipulated real images count as fake at image level: "any" manipulation, or only "generative"
    # ones (a generated donor spliced in, autoencoder or diffusers inpainting); masks are the same either way
    manipulated_real_label: str = "any"
    mask_weight: float = 1.0
    source_weight: float = 0.5
    clean_views: int = 1
    manipulated_views: int = 2
    recipe: ManipulationRecipe = field(default_factory=ManipulationRecipe)
    steps: int = 800
    batch_size: int = 48
    lr: float = 1e-3
    weight_decay: float = 0.05
    finetune: str = "frozen"
    last_blocks: int = 2
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj", "query", "value")
    generative_inpainter: str = ""  # a diffusers inpainting pipeline directory or hub id (optional)
    n_sources: int = len(SOURCES)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution over dim 1 ([B, C, ...]), averaged over the rest."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def block_sequence(hidden_states, blocks) -> torch.Tensor:
    """The listed blocks' output sequences (``hidden_states`` without the embeddings) side by side."""
    return torch.cat([hidden_states[i] for i in blocks], dim=-1)


def _torch_encoder(name: str):
    """A trainable transformers vision model for ``name`` (the offline DINOv2-S, a hub id or a directory)."""
    if name == "dinov2-s14":
        from aigi.backbones.dinov2 import load_dinov2_torch

        return load_dinov2_torch()
    from transformers import AutoModel

    model = AutoModel.from_pretrained(name)
    return getattr(model, "vision_model", model)


class _GammaFromPixels(torch.nn.Module):
    def __init__(self, det):
        super().__init__()
        self.det = det
        if det.encoder is None:
            from aigi.backbones import load_backbone
            from aigi.backbones.hf import torch_vision_tokens

            self.tokens = torch_vision_tokens(load_backbone(det.config.backbone, runtime="torch"))

    def forward(self, pixels):
        blocks = self.det.config.blocks
        if self.det.encoder is not None:
            batch = {"pixels": pixels}
        elif blocks:
            batch = {"tokens": block_sequence(self.tokens(pixels, hidden_states=True)[3], blocks)}
        else:
            batch = {"tokens": self.tokens(pixels)[2]}
        out = self.det(batch)
        return {k: out[k] for k in ("logit", "mask", "source")}


@register("gamma")
class Gamma(Detector):
    Config = GammaConfig
    has_mask = True
    exportable = True
    cached_features = ("tokens",)
    feature_kind = "tokens"

    def __init__(self, config: GammaConfig):
        super().__init__(config)
        if isinstance(config.recipe, dict):
            config.recipe = ManipulationRecipe(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in config.recipe.items()}  # type: ignore[arg-type]
            )
        if config.finetune not in FINETUNE:
            raise ValueError(f"gamma: unknown finetune {config.finetune!r}; known: {', '.join(FINETUNE)}")
        if config.manipulated_real_label not in LABEL_POLICIES:  # checked before any extraction starts
            raise ValueError(
                f"gamma: unknown manipulated_real_label {config.manipulated_real_label!r}; "
                f"known: {', '.join(LABEL_POLICIES)}"
            )
        self.encoder = None
        dim = self._init_encoder()
        h = config.hidden
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, h)
        self.seg_mix = nn.Sequential(nn.Conv2d(h, h, 3, padding=1, groups=h), nn.Conv2d(h, h, 1))
        self.head_mask = nn.Conv2d(h, 1, 1)
        self.head_source = nn.Conv2d(h, config.n_sources, 1)
        self.queries = nn.Parameter(torch.randn(config.queries, h) * 0.02)
        self.attention = nn.MultiheadAttention(h, config.heads, batch_first=True)
        self.attn_norm = nn.LayerNorm(h)
        self.cls_head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))

    def _init_encoder(self) -> int:
        """Build the trainable backbone when fine-tuning; return the token width."""
        cfg = self.config
        width = max(1, len(cfg.blocks))
        if cfg.finetune == "frozen":
            if cfg.backbone == "dinov2-s14":
                from aigi.backbones.dinov2 import DIM

                return DIM * width
            return self.backbone.dim * width
        enc = _torch_encoder(cfg.backbone)
        for p in enc.parameters():
            p.requires_grad_(False)
        if cfg.finetune == "last":
            layers = getattr(enc.encoder, "layer", None) or enc.encoder.layers  # DINOv2/ViT | CLIP
            for block in list(layers)[-cfg.last_blocks :]:
                for p in block.parameters():
                    p.requires_grad_(True)
            for name in ("layernorm", "post_layernorm"):
                if getattr(enc, name, None) is not None:
                    for p in getattr(enc, name).parameters():
                        p.requires_grad_(True)
        else:
            from peft import LoraConfig, get_peft_model

            names = {n.rsplit(".", 1)[-1] for n, _ in enc.named_modules()}
            targets = [t for t in cfg.lora_targets if t in names]
            if not targets:
                raise ValueError(
                    f"gamma: none of the LoRA targets {list(cfg.lora_targets)} is a module of {cfg.backbone}"
                )
            enc = get_peft_model(enc, LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank, target_modules=targets))
        self.encoder = enc
        return int(enc.config.hidden_size) * width

    # --- model --------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        if "pixels" in batch:  # fine-tuning: the encoder is built (``finetune``) before pixels reach forward
            if self.encoder is None:
                raise RuntimeError("gamma: pixels given but no encoder to fine-tune (finetune is 'none')")
            out = self.encoder(pixel_values=batch["pixels"], output_hidden_states=bool(cfg.blocks))
            tokens = block_sequence(out.hidden_states[1:], cfg.blocks) if cfg.blocks else out.last_hidden_state
        else:
            tokens = batch["tokens"]
        t = self.proj(self.norm(tokens.float()))
        cls, patches = t[:, 0], t[:, 1:]
        b, n, h = patches.shape
        g = int(math.isqrt(n))
        if g * g != n:
            raise ValueError(f"gamma needs a square patch grid, got {n} patch tokens")
        grid = patches.transpose(1, 2).reshape(b, h, g, g)
        seg = F.gelu(self.seg_mix(grid)) + grid
        mask_logit = self.head_mask(seg)[:, 0]
        source_logit = self.head_source(seg)
        if cfg.reverse_attention:
            q = torch.cat([cls[:, None], self.queries.expand(b, -1, -1)], dim=1)
            kv = seg.flatten(2).transpose(1, 2)
            a, _ = self.attention(q, kv, kv, need_weights=False)
            z = self.attn_norm(q + a).mean(dim=1)
        else:
            z = self.attn_norm(cls + patches.mean(dim=1))
        logit = self.cls_head(z).squeeze(-1)
        out = {"logit": logit, "mask": torch.sigmoid(mask_logit), "source": torch.softmax(source_logit, dim=1)}
        if "label" in batch:
            loss = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
            if cfg.segmentation and "targets" in batch:
                tgt = batch["targets"].float()
                loss = loss + cfg.mask_weight * F.binary_cross_entropy_with_logits(mask_logit, 1.0 - tgt[:, REAL])
                loss = loss + cfg.source_weight * soft_cross_entropy(source_logit, tgt)
            out["loss"] = loss
        return out

    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        return {"pixels": self.preprocessing(image)}

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Frozen: the backbone's token sequence (or the ``blocks``' sequences; float16, as cached); fine-tuned:
        the pixels themselves."""
        if self.encoder is not None:
            return {"pixels": inputs["pixels"]}
        return {"tokens": self.backbone.token_sequence(inputs["pixels"], tuple(self.config.blocks))}

    def feature_key(self) -> str | None:
        if self.encoder is not None:  # a trainable backbone: nothing frozen to cache
            return None
        from aigi.backbones import backbone_cache_key

        # the default's without starting onnxruntime
        return backbone_cache_key(self.config.backbone, lambda: self.backbone, tuple(self.config.blocks))

    def preprocess_size(self) -> int:
        return int(self.preprocessing.crop)

    def export_module(self) -> torch.nn.Module:
        """Pixels -> {"logit", "mask", "source"}, the frozen backbone run through torch (aigi.export)."""
        return _GammaFromPixels(self)

    def extra_fields(self, out: dict[str, Any], i: int) -> dict[str, Any]:
        m = out["mask"][i].float().cpu().numpy()
        src = out["source"][i].float().cpu().numpy().mean(axis=(1, 2))
        return {
            "mask": [[round(float(v), 3) for v in row] for row in m],
            "manipulated_fraction": round(float((m >= 0.5).mean()), 4),
            "source_fractions": {name: round(float(v), 4) for name, v in zip(SOURCES, src)},
        }

    def patch_size(self) -> int:
        if self.encoder is not None:
            return int(self.encoder.config.patch_size)
        if self.config.backbone == "dinov2-s14":
            return 14
        cfg = self.backbone.model.config
        return int(getattr(cfg, "vision_config", cfg).patch_size)

    def manipulation_recipe(self):
        """The recipe the manipulated training variants follow (localisation scores held-out ones by it)."""
        return self.config.recipe

    def manipulation_tools(self):
        """The manipulation tools (and the configured generative inpainter), for variants and localisation."""
        return tools(self)

    def token_caches(self):
        from aigi.training.cache import FeatureCache

        key = self.feature_key()
        return FeatureCache(key, kind=self.feature_kind), FeatureCache(key, kind="gamma-targets")

    # --- fitting -----------------------------------------------------------------------
    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        cfg = self.config
        torch.manual_seed(train_config.seed)
        if self.encoder is None:
            tokens, targets, labels, jobs, errors = training_set(self, manifest, train_config, progress)
            data = {"tokens": tokens}
        else:
            data, targets, labels, jobs, errors = in_memory_set(self, manifest, train_config, progress)
        if len(labels) == 0 or len(set(labels.tolist())) < 2:
            raise ValueError(
                "gamma: training needs real and fake images that can be read"
                + (f" (first error: {errors[0]})" if errors else "")
            )
        losses = self._optimise(data, targets, labels, train_config.seed)
        k = max(1, len(losses) // 10)
        return {
            "n_images": len({j[0] for j in jobs}),
            "n_variants": len(jobs),
            "variants_by_kind": dict(Counter(j[2] for j in jobs)),
            "n_fake_variants": int(labels.sum()),
            "steps": cfg.steps,
            "loss_first": float(np.mean(losses[:k])),
            "loss_last": float(np.mean(losses[-k:])),
            "skipped": errors[:20],
            "n_skipped": len(errors),
        }

    def _optimise(self, data: dict[str, np.ndarray], targets: np.ndarray, labels: np.ndarray, seed: int) -> list[float]:
        cfg = self.config
        rng = np.random.default_rng(seed)
        dev = self.proj.weight.device

        def batch_for(cls, by_class):
            idx = np.array([rng.choice(by_class[c]) for c in cls])
            batch = {k: torch.from_numpy(v[idx]).to(dev) for k, v in data.items()}
            batch["targets"] = torch.from_numpy(targets[idx]).to(dev)
            batch["label"] = torch.from_numpy(labels[idx]).to(dev)
            return batch

        return train_balanced(
            self, labels, batch_for, cfg.steps, cfg.batch_size, cfg.lr, cfg.weight_decay, rng, pct_start=0.1
        )

    # --- the frozen stage, for the variant and localisation caches ------------------------------
    def encode_tokens(self, pixels: np.ndarray) -> np.ndarray:
        return self.features({"pixels": pixels})["tokens"]
