"""GAMMA: manipulation-augmented multi-task detection with pixel-level source attribution.

Yan et al., "GAMMA: Generalizable Alignment via Multi-task and Manipulation-Augmented Training for
AI-Generated Image Detection", arXiv 2509.10250 (ICASSP'26). The paper's code is not public; everything
below that the paper does not pin down is our choice, written here.

Model (on the backbone's final patch tokens; DINOv2-S offline, any transformers ViT by id or directory):
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

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from aigi.augment.manipulate import REAL, SOURCES, ManipulationRecipe
from aigi.detectors.base import Detector
from aigi.detectors.registry import register
from aigi.training.loop import train_balanced

FINETUNE = ("frozen", "last", "lora")


@dataclass
class GammaConfig:
    backbone: str = "dinov2-s14"
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


def patch_targets(source: np.ndarray, grid: int, n_sources: int = len(SOURCES)) -> np.ndarray:
    """Per-patch source fractions [C, grid, grid] of a square [S, S] source map (S a multiple of grid,
    or area-resampled otherwise)."""
    s = source.shape[0]
    onehot = (source[None] == np.arange(n_sources)[:, None, None]).astype(np.float32)
    if s % grid == 0:
        b = s // grid
        return onehot.reshape(n_sources, grid, b, grid, b).mean(axis=(2, 4))
    return np.stack([np.asarray(Image.fromarray(c).resize((grid, grid), Image.Resampling.BOX)) for c in onehot])


GENERATIVE_KINDS = ("splice", "inpaint-autoencoder", "inpaint-generative")
LABEL_POLICIES = ("any", "generative")


def variant_labels(targets: np.ndarray, image_labels, kinds=None, policy: str = "any") -> np.ndarray:
    """Image-level label of each variant: fake when the image is generated, or when any pixel the model
    sees (after the view's crop) is not authentic; with ``policy="generative"`` only when those pixels
    were made by a generative manipulation (``kinds[i]`` in ``GENERATIVE_KINDS``)."""
    if len(targets) == 0:
        return np.zeros(0, np.int64)
    if policy not in LABEL_POLICIES:
        raise ValueError(f"gamma: unknown manipulated_real_label {policy!r}; known: {', '.join(LABEL_POLICIES)}")
    touched = targets[:, REAL].reshape(len(targets), -1).min(axis=1) < 1
    if policy == "generative":
        touched &= np.isin(np.asarray(kinds, dtype=object), GENERATIVE_KINDS)
    return np.maximum(touched.astype(np.int64), np.asarray(image_labels, dtype=np.int64))


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
        batch = {"pixels": pixels} if self.det.encoder is not None else {"tokens": self.tokens(pixels)[2]}
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
        if cfg.finetune == "frozen":
            if cfg.backbone == "dinov2-s14":
                from aigi.backbones.dinov2 import DIM

                return DIM
            return self.backbone.dim
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
        return int(enc.config.hidden_size)

    # --- model --------------------------------------------------------------------------
    def forward(self, batch):
        cfg = self.config
        if "pixels" in batch:
            tokens = self.encoder(pixel_values=batch["pixels"]).last_hidden_state
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

    @property
    def preprocessing(self):
        from aigi.backbones import preprocess_for

        return preprocess_for(self.config.backbone, lambda: self.backbone)

    def inputs(self, image):
        return {"pixels": self.preprocessing(image)}

    def features(self, inputs):
        """Frozen: the backbone's token sequence (float16, as cached); fine-tuned: the pixels themselves."""
        if self.encoder is not None:
            return {"pixels": inputs["pixels"]}
        return {"tokens": self.backbone.encode_images(inputs["pixels"], tokens=True).tokens.astype(np.float16)}

    def feature_key(self) -> str | None:
        if self.encoder is not None:  # a trainable backbone: nothing frozen to cache
            return None
        from aigi.backbones import backbone_cache_key

        return backbone_cache_key(self.config.backbone, lambda: self.backbone)  # the default's without onnxruntime

    def preprocess_size(self) -> int:
        return int(self.preprocessing.crop)

    def export_module(self) -> torch.nn.Module:
        """Pixels -> {"logit", "mask", "source"}, the frozen backbone run through torch (aigi.export)."""
        return _GammaFromPixels(self)

    def extra_fields(self, out, i):
        m = out["mask"][i].float().cpu().numpy()
        src = out["source"][i].float().cpu().numpy().mean(axis=(1, 2))
        return {
            "mask": [[round(float(v), 3) for v in row] for row in m],
            "manipulated_fraction": round(float((m >= 0.5).mean()), 4),
            "source_fractions": {name: round(float(v), 4) for name, v in zip(SOURCES, src)},
        }

    # --- training data ---------------------------------------------------------------------
    def _views(self, train_config) -> list[tuple[int, bool]]:
        """(variant number, manipulated?) per training variant; 0 is the image as it is."""
        cfg = self.config
        out = [(0, False)] + [(k, False) for k in range(1, cfg.clean_views + 1)]
        if cfg.manipulations:
            out += [(k, True) for k in range(cfg.clean_views + 1, cfg.clean_views + cfg.manipulated_views + 1)]
        return out

    def _tools(self):
        from aigi.augment.manipulate import DiffusersInpainter, Tools

        tools = Tools.default()
        if self.config.generative_inpainter:
            tools.generative = DiffusersInpainter(self.config.generative_inpainter, device=self.device_name)
        return tools

    def variant_jobs(self, manifest, train_config):
        """The plan of every training variant: (image index, variant, manipulation kind, donor index or
        -1, sha256, cache key), known without decoding (donors come from this manifest only), and the
        errors of files that cannot be read (they get no job)."""
        from aigi.augment.manipulate import plan_kind, rendezvous_donor, sha_keys, variant_rngs
        from aigi.training.cache import hash_files

        cfg, seed = self.config, train_config.seed
        shas, unreadable = hash_files([s.path for s in manifest])
        labels = np.asarray(manifest.labels)
        pools = {c: np.flatnonzero((labels == c) & np.array([x is not None for x in shas])) for c in (0, 1)}
        pool_keys = {c: sha_keys([shas[j] for j in pools[c]]) for c in (0, 1)}
        vr, recipe = train_config.view_recipe, cfg.recipe
        jobs = []
        for i, sha in enumerate(shas):
            if sha is None:
                continue
            for k, manip in self._views(train_config):
                kind, donor = "none", -1
                if k == 0:
                    key = "plain"
                elif not manip:
                    key = f"{vr.key()}-seed{seed}-view{k}"
                else:
                    plan_rng, _ = variant_rngs(sha, k, seed)
                    kind = plan_kind(int(labels[i]), plan_rng, recipe, bool(cfg.generative_inpainter))
                    key = f"{recipe.key()}+{vr.key()}-seed{seed}-variant{k}"
                    if kind == "splice":
                        other = 1 - int(labels[i])
                        if len(pools[other]):
                            donor = int(pools[other][rendezvous_donor(sha, k, seed, pool_keys[other])])
                            key += f"-donor{shas[donor][:16]}"
                        else:
                            kind = "copy-move"
                            key += "-nodonor"
                if self.parity:
                    key = f"parity-{key}"
                jobs.append((i, k, kind, donor, sha, key))
        return jobs, [e for e in unreadable if e]

    def _make_variant(self, manifest, job, train_config, tools):
        """Decode and build one variant: (preprocessed pixels, per-patch source targets)."""
        from aigi.augment.manipulate import manipulate, unmanipulated, variant_rngs
        from aigi.io import load_image
        from aigi.transforms import augmented_view, view_rng

        i, k, kind, donor, sha, _ = job
        label = manifest.samples[i].label
        img = self.prepare(load_image(manifest.samples[i].path).image)
        if kind == "none":
            m, rng = unmanipulated(img, label), view_rng(sha, k, train_config.seed)
        else:
            _, rng = variant_rngs(sha, k, train_config.seed)
            donor_img = self.prepare(load_image(manifest.samples[donor].path).image) if donor >= 0 else None
            m = manipulate(img, label, kind, rng, self.config.recipe, tools, donor_img)
        if k > 0:  # every variant but the image as it is gets the shortcut-denial view, masks following
            m.image, (src,) = augmented_view(m.image, rng, train_config.view_recipe, masks=(Image.fromarray(m.source),))
            m.source = np.asarray(src)
        pre = self.preprocessing
        source = np.asarray(pre.geometry(Image.fromarray(m.source), "nearest"))
        grid = pre.crop // self._patch_size()
        return pre(m.image), patch_targets(source, grid, self.config.n_sources).astype(np.float16)

    def _patch_size(self) -> int:
        if self.encoder is not None:
            return int(self.encoder.config.patch_size)
        if self.config.backbone == "dinov2-s14":
            return 14
        cfg = self.backbone.model.config
        return int(getattr(cfg, "vision_config", cfg).patch_size)

    def _token_cache(self):
        from aigi.training.cache import FeatureCache

        key = self.feature_key()
        return FeatureCache(key, kind=self.feature_kind), FeatureCache(key, kind="gamma-targets")

    def training_set(self, manifest, train_config, progress=None):
        """Tokens [M, 1+N, D] (float16), targets [M, C, g, g], labels [M], the jobs kept and the errors,
        through the cache (frozen backbone only)."""
        from aigi.training.cache import compute_cached

        jobs, errors = self.variant_jobs(manifest, train_config)
        tools = self._tools() if self.config.manipulations else None
        tok_cache, tgt_cache = self._token_cache()

        def make(n):
            return self._make_variant(manifest, jobs[n], train_config, tools)

        feats, targets, job_errors = compute_cached(
            tok_cache,
            [(j[4], j[5]) for j in jobs],
            make,
            self._encode_tokens,
            tgt_cache,
            train_config.batch_size,
            progress,
        )
        keep = [n for n, f in enumerate(feats) if f is not None]
        tokens = np.stack([feats[n] for n in keep]) if keep else np.zeros((0,))
        tg = np.stack([targets[n] for n in keep]).astype(np.float32) if keep else np.zeros((0,))
        kept = [jobs[n] for n in keep]
        return tokens, tg, self._labels(manifest, kept, tg), kept, errors + [e for e in job_errors if e]

    def _labels(self, manifest, jobs, targets) -> np.ndarray:
        return variant_labels(
            targets,
            [manifest.samples[j[0]].label for j in jobs],
            [j[2] for j in jobs],
            self.config.manipulated_real_label,
        )

    # --- fitting -----------------------------------------------------------------------
    def fit(self, manifest, train_config, progress: Callable[[int], None] | None = None) -> dict:
        cfg = self.config
        torch.manual_seed(train_config.seed)
        if self.encoder is None:
            tokens, targets, labels, jobs, errors = self.training_set(manifest, train_config, progress)
            data = {"tokens": tokens}
        else:
            data, targets, labels, jobs, errors = self._in_memory_set(manifest, train_config, progress)
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

    def _in_memory_set(self, manifest, train_config, progress):
        """Variants as preprocessed pixels in memory (fine-tuning through the backbone)."""
        jobs, errors = self.variant_jobs(manifest, train_config)
        tools = self._tools() if self.config.manipulations else None
        px, tg, keep = [], [], []
        for j in jobs:
            try:
                x, t = self._make_variant(manifest, j, train_config, tools)
            except Exception as e:  # noqa: BLE001 - reported in the training info
                errors.append(f"{manifest.samples[j[0]].path}: {e}")
                continue
            px.append(x)
            tg.append(t.astype(np.float32))
            keep.append(j)
            if progress:
                progress(1)
        tg = np.stack(tg)
        return {"pixels": np.stack(px)}, tg, self._labels(manifest, keep, tg), keep, errors

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
    def _encode_tokens(self, pixels: np.ndarray) -> np.ndarray:
        return self.features({"pixels": pixels})["tokens"]
