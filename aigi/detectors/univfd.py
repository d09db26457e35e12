"""UnivFD: frozen pretrained features + a linear head.

Ojha, Li, Lee. "Towards Universal Fake Image Detectors that Generalize Across Generative
Models", CVPR 2023. The paper uses CLIP ViT-L/14 image embeddings; offline we use the
DINOv2-S CLS token concatenated with the mean patch token (768 values), and any
transformers backbone when the user has one.

Choices written down (not all from the paper):
- The head is logistic regression on standardised features, fit exactly (L-BFGS, scikit-learn)
  with the inverse regularisation C chosen by 5-fold cross-validation grouped by image, so
  augmented views of one image never sit on both sides of a CV split. The fitted
  coefficients are copied into a ``torch.nn.Linear`` so inference, export and the detector
  contract are plain torch.
- Training uses K cached, seeded augmented views per image (random rescale, crop, flip and
  JPEG re-compression of both classes) to deny the size/format shortcut.
- ``launder: true`` makes it AlignGemini's semantic branch: every image, in training and at
  inference, is first laundered (``augment.launder_fixed``: 64 px, blur, noise, JPEG q45, back to
  224 px), so only semantics reach the head; augmented views are then pointless and unused.
- ``blocks`` (e.g. 0..11): the descriptor is the class token and the mean patch token of each of those
  transformer blocks' outputs, concatenated (12 x 768 for DINOv2-S), instead of the final output's
  alone. Early blocks see texture and resampling traces, late ones semantics; the regularised linear
  head weighs them (RINE, Koutlis & Papadopoulos, ECCV 2024, learns such a weighting on CLIP).
- ``crops`` (the crop plan, ``transforms.crop_plan``): view 0 is the resized image as the backbone
  preprocesses it, then up to ``crops`` crops at the image's own scale on a grid (when the resize shrank
  it: shorter side over 256 px). The head scores each crop; the image's logit is the mean over its crops (SAFE and
  B-Free also look at the image at its own scale at test time). Training draws the same plan from
  every training view, each crop a row of the head's fit (grouped by image for cross-validation).
- Stages: ``inputs`` = the preprocessed pixels of each planned crop [P, 3, H, W] (NaN where an image has
  fewer crops; laundered first when asked); ``features`` = the descriptor of each crop [P, F] float16
  (NaN rows for absent crops; cached under the backbone's key, the blocks and the plan, folder
  ``pooled``); ``forward`` = standardise, the linear head per crop, the mean over present crops.
  ``views`` in the output (and the record) counts the forward passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from aigi.contract import ModelConfig
from aigi.detectors.base import Detector
from aigi.detectors.logistic import balanced_weights, fit_standardised
from aigi.detectors.registry import register
from aigi.transforms import to_array

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


@dataclass
class UnivFDConfig(ModelConfig):
    backbone: str = "dinov2-s14"
    Cs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
    cv_folds: int = 5
    max_iter: int = 3000
    feature_dim: int = 768  # 2 x backbone width (CLS + mean patch), per block
    launder: bool = False  # see every image (training and inference) through augment.launder_fixed first
    blocks: tuple[int, ...] = ()  # () = the final (normalised) output; else these blocks' outputs, concatenated
    crops: int = 0  # the crop plan: native-scale crops beside the resized view (0 = the resized view alone)
    # which of each block's two tokens the head reads: "both", "patch" (the mean patch token alone: every part
    # of the logit then comes from a patch) or "cls". The features stage keeps both, so one cache serves all.
    tokens: str = "both"
    # "group": each real source and each generator weighs the same in the head's loss, and both classes alike
    # (needs the generator names, which ``fit`` has); "none": every row the same
    balance: str = "none"
    # also fit an open-set attribution head (aigi.attribution) on the training fakes: records of fake or unsure
    # images then name the generator family, or "unknown"
    attribution: bool = False
    # adapt the encoder's blocks from ``from_block`` on with LoRA over cached tokens ({}: frozen); the settings of
    # aigi.training.adapt.AdaptSettings. Only the adapter ships; it is merged into the encoder at load.
    adapt: dict = field(default_factory=dict)


class _PixelsToLogit(torch.nn.Module):
    """The exported graph: planned crops [B, P, 3, H, W] (NaN for absent ones) -> {"logit"}."""

    def __init__(self, backbone, head: UnivFD):
        super().__init__()
        from aigi.backbones.hf import torch_vision_tokens

        self.tokens, self.head = torch_vision_tokens(backbone), head

    def forward(self, pixels):
        b, p = pixels.shape[:2]
        flat = pixels.flatten(0, 1)
        absent = torch.isnan(flat.flatten(1)[:, 0])
        flat = torch.where(absent[:, None, None, None], torch.zeros_like(flat), flat)
        blocks = self.head.config.blocks
        if blocks and min(blocks) >= 0:  # the graph stops after the last block the head reads
            hidden = self.tokens.blocks(flat, max(blocks) + 1)
        else:
            pooled, patches, _, hidden = self.tokens(flat, hidden_states=True)
        if blocks:
            desc = torch.cat([torch.cat([hidden[i][:, 0], hidden[i][:, 1:].mean(1)], 1) for i in blocks], 1)
        else:
            desc = torch.cat([pooled, patches.mean(1)], 1)
        desc = torch.where(absent[:, None], torch.full_like(desc, float("nan")), desc.half().float())
        out = self.head({"features": desc.reshape(b, p, -1)})
        return {"logit": out["logit"], "views": out["views"]}


TOKENS = ("both", "patch", "cls")


def token_columns(feature_dim: int, n_blocks: int, tokens: str) -> torch.Tensor:
    """The descriptor's columns the head reads: each block's part is [class token | mean patch token], half of
    ``feature_dim`` each; ``tokens`` keeps both, the patch half or the class half of every block."""
    half = feature_dim // 2
    keep = {"both": (0, feature_dim), "patch": (half, feature_dim), "cls": (0, half)}[tokens]
    return torch.cat([torch.arange(b * feature_dim + keep[0], b * feature_dim + keep[1]) for b in range(n_blocks)])


@register("univfd")
class UnivFD(Detector):
    Config = UnivFDConfig
    exportable = True
    feature_mean: torch.Tensor  # buffers
    feature_scale: torch.Tensor
    columns: torch.Tensor  # (not saved: follows the settings)
    attr_weight: torch.Tensor  # the attribution head, when fitted or loaded
    attr_bias: torch.Tensor
    feature_kind = "pooled"

    def __init__(self, config: UnivFDConfig):
        super().__init__(config)
        if config.tokens not in TOKENS:
            raise ValueError(f"univfd: tokens must be one of {', '.join(TOKENS)}, not {config.tokens!r}")
        if config.balance not in ("none", "group"):
            raise ValueError(f"univfd: balance must be 'none' or 'group', not {config.balance!r}")
        self.descriptor_dim = config.feature_dim * max(1, len(config.blocks))
        cols = token_columns(config.feature_dim, max(1, len(config.blocks)), config.tokens)
        self.register_buffer("columns", cols, persistent=False)  # follows the settings, not saved
        d = len(self.columns)
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_scale", torch.ones(d))
        self.head = torch.nn.Linear(d, 1)
        self.families: list[str] = []  # the attribution head's families (none: no attribution)
        self.unknown_below = 1.0
        self.adapter = torch.nn.Module()  # the LoRA tensors as buffers (aigi.detectors.adapted), when adapted
        if config.adapt:
            from aigi.detectors.adapted import check_settings

            check_settings(config)

    @property
    def adapter_digest(self) -> str:
        """A hash of the adapter's tensors ("" when the encoder is frozen): part of the feature-cache key."""
        from aigi.detectors.adapted import adapter_tensors
        from aigi.training.adapt import digest

        tensors = adapter_tensors(self)
        return digest(tensors) if tensors else ""

    @property
    def backbone_runtime(self) -> str:  # type: ignore[override]
        return "torch" if self.config.adapt else "auto"

    def backbone_loaded(self, backbone) -> None:
        if self.adapter_digest:
            from aigi.detectors.adapted import merge_into

            merge_into(self, backbone)

    def _attribution_buffers(self, k: int) -> None:
        d = len(self.columns)
        self.register_buffer("attr_weight", torch.zeros(k, d))
        self.register_buffer("attr_bias", torch.zeros(k))

    def get_state(self) -> dict:
        from aigi.detectors.adapted import adapter_tensors

        state: dict[str, Any] = {}
        if self.families:
            state.update(families=self.families, unknown_below=self.unknown_below)
        if tensors := adapter_tensors(self):
            state["adapter"] = {k: list(v.shape) for k, v in tensors.items()}
        return state

    def set_state(self, state: dict) -> None:
        if state.get("families"):
            self.families, self.unknown_below = list(state["families"]), float(state["unknown_below"])
            self._attribution_buffers(len(self.families))
        if state.get("adapter"):  # shapes now, values from the weights file; merged when the encoder loads
            from aigi.detectors.adapted import expect_adapter

            expect_adapter(self, state["adapter"])

    def extra_fields(self, out: dict, i: int) -> dict:
        """``attribution`` ({"family", "p", "top3"}) when the head has one; the record keeps it only for a
        ``fake`` or ``unsure`` verdict (records.make_record)."""
        if "family_logits" not in out:
            return {}
        from aigi.attribution import answer

        probs = torch.softmax(out["family_logits"][i].double(), 0).numpy()
        return {"attribution": answer(probs, self.families, self.unknown_below)}

    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        from aigi.transforms import crop_plan

        if self.config.launder:
            from aigi.augment.launder import launder_fixed

            image = launder_fixed(image)
        pre = self.backbone.preprocess
        views = [to_array(v, pre.mean, pre.std) for v in crop_plan(image, pre, self.config.crops)]
        pixels = np.full((1 + self.config.crops, *views[0].shape), np.nan, np.float32)
        pixels[: len(views)] = views
        return {"pixels": pixels}

    def decode_short_side(self) -> int:
        """Without native-scale crops the head sees the image resized for the backbone: twice that is plenty."""
        from aigi.backbones import preprocess_for

        return 0 if self.config.crops else 2 * preprocess_for(self.config.backbone, lambda: self.backbone).resize

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        pixels = inputs["pixels"]  # [B, P, 3, H, W]
        b, p = pixels.shape[:2]
        flat = pixels.reshape(b * p, *pixels.shape[2:])
        present = ~np.isnan(flat[:, 0, 0, 0])
        out = np.full((b * p, self.descriptor_dim), np.nan, np.float16)
        if present.any():
            blocks = list(self.config.blocks)
            if blocks and min(blocks) >= 0:  # the backbone stops after the last block the head reads
                desc = self.backbone.encode_blocks(flat[present], max(blocks) + 1)[:, blocks]
            elif blocks:
                desc = self.backbone.encode_images(flat[present], blocks=True).blocks[:, blocks]
            else:
                desc = self.backbone.encode_images(flat[present]).pooled()
            out[present] = desc.reshape(int(present.sum()), -1)
        return {"features": out.reshape(b, p, -1)}

    def feature_key(self) -> str:
        key = self.backbone.cache_key()
        if self.config.blocks:
            key += "+blocks" + "-".join(map(str, self.config.blocks))
        key += f"+plan{self.config.crops}"
        if self.adapter_digest:
            key += f"+lora{self.adapter_digest}"
        if self.config.launder:
            from aigi.augment.launder import FIXED_LAUNDERING_KEY

            key += f"+{FIXED_LAUNDERING_KEY}"
        return key

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        """Descriptors [..., F] -> the head's standardised input [..., d] (absent crops' NaN rows read as 0)."""
        return (torch.nan_to_num(features.float()[..., self.columns]) - self.feature_mean) / self.feature_scale

    def crop_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Descriptors [..., F] (NaN rows: absent crops) -> the head's logit per crop [...] (NaN where absent)."""
        absent = torch.isnan(features.float()[..., 0])
        return self.head(self.standardised(features)).squeeze(-1).masked_fill(absent, float("nan"))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        feats = batch["features"]
        feats = feats if feats.dim() == 3 else feats[:, None]
        z = self.crop_logits(feats)  # [B, P]
        present = ~torch.isnan(z)
        views = present.sum(1)
        logit = torch.nan_to_num(z).sum(1) / views.clamp(min=1)
        out = {"logit": logit, "views": views}
        if self.families:  # the attribution head's logits, averaged over the present crops like the logit
            fz = self.standardised(feats) @ self.attr_weight.T + self.attr_bias  # [B, P, k]
            out["family_logits"] = (fz * present[..., None]).sum(1) / views.clamp(min=1)[:, None]
        if "label" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
        return out

    @property
    def has_evidence_map(self) -> bool:
        """The map is exact for one view of the image as it reaches the head (no crop plan, no laundering)."""
        return self.config.crops == 0 and not self.config.launder

    def evidence(self, image: Image.Image) -> dict[str, Any]:
        """The head is linear over standardised block descriptors, and a block's mean patch token is the mean of
        its N patch tokens, so the logit splits exactly: patch p contributes ``(1/N) sum_k (w_k / s_k) h_k[p]``
        over the head's mean-patch columns k (``h_k[p]``: that block's token of patch p), and the rest — the
        intercept, ``-sum_k w_k m_k / s_k`` over every column, and the class-token columns when the head reads
        them (``tokens`` "both" or "cls") — is one global, not spatial, term. Computed in float32 from one
        backbone pass with the blocks' token sequences; the scored logit reads float16 descriptors, so the two
        agree to about 1e-2. Returns {"contributions": [gh, gw], "global": float, "logit": float}."""
        if not self.has_evidence_map:
            raise NotImplementedError("univfd: the evidence map needs crops: 0 and no laundering")
        pixels = self.inputs(image)["pixels"][:1]
        blocks = tuple(self.config.blocks)
        f = self.backbone.encode_images(pixels, tokens=not blocks, block_tokens=blocks)
        seq = f.block_tokens if blocks else f.tokens  # [1, 1+N, k*D]
        half = self.config.feature_dim // 2
        full_w = torch.zeros(self.descriptor_dim)
        full_w[self.columns] = self.head.weight[0].detach().float() / self.feature_scale
        glob = float(self.head.bias.detach()) - float((full_w[self.columns] * self.feature_mean).sum())
        contrib = np.zeros(seq.shape[1] - 1)
        for i in range(max(1, len(blocks))):
            w_cls = full_w[i * 2 * half : i * 2 * half + half].numpy()
            w_patch = full_w[i * 2 * half + half : (i + 1) * 2 * half].numpy()
            tok = seq[0, :, i * half : (i + 1) * half].astype(np.float64)
            # the descriptor's class half is the pooled output when no blocks are read
            cls = f.cls[0] if not blocks else tok[0]
            glob += float(cls @ w_cls)
            contrib += tok[1:] @ w_patch / (seq.shape[1] - 1)
        side = int(round(np.sqrt(len(contrib))))
        grid = contrib.reshape(side, side) if side * side == len(contrib) else contrib[None]
        return {"contributions": grid.astype(np.float32), "global": glob, "logit": glob + float(contrib.sum())}

    def export_module(self) -> torch.nn.Module:
        """Pixels -> {"logit"}: the backbone through transformers/torch, then the head (aigi.export)."""
        from aigi.backbones import load_backbone

        backbone = load_backbone(self.config.backbone, runtime="torch")
        self.backbone_loaded(backbone)
        return _PixelsToLogit(backbone, self)

    # --- training ---------------------------------------------------------------------
    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        from aigi.scoring import extract

        views = [0] if self.config.launder else train_config.train_views()
        feats, errors = extract(
            self,
            [s.path for s in manifest],
            views,
            train_config.view_recipe,
            train_config.seed,
            batch_size=train_config.batch_size,
            progress=progress,
        )
        ok = np.array([e is None for e in errors])
        if not ok.any():
            raise ValueError(f"univfd: none of the {len(errors)} training images could be read (first: {errors[0]})")
        gens = np.asarray([s.generator for s in manifest])[ok]
        labels = np.asarray(manifest.labels)[ok]
        X = feats["features"][ok]
        info = self.fit_head(X, labels, gens if self.config.balance == "group" else None)
        if self.config.adapt:  # the head above starts the adapter's fit; the attribution head reads its output
            from aigi.detectors.adapted import fit_adapter

            paths = [s.path for s, good in zip(manifest, ok) if good]
            X, info["adapt"] = fit_adapter(self, paths, X, labels, gens, train_config)
        if self.config.attribution:
            info["attribution"] = self.fit_attribution(X, labels, gens, train_config.seed)
        return {**info, "skipped_files": [e for e in errors if e]}

    def fit_attribution(self, feats: np.ndarray, labels: np.ndarray, generators: np.ndarray, seed: int = 0) -> dict:
        """The open-set attribution head (:func:`aigi.attribution.fit_attribution`) on the fakes' standardised
        descriptors [n, V, P, F] (after :meth:`fit_head`), its temperature folded into the weights. Returns its
        report (families, temperature, the unknown rule and its leave-family-out rates)."""
        from aigi.attribution import fit_attribution

        fakes = np.flatnonzero(labels == 1)
        flat = feats[fakes].reshape(len(fakes), -1, feats.shape[-1])
        present = ~np.isnan(flat[..., 0])
        with torch.no_grad():
            X = self.standardised(torch.from_numpy(flat[present].astype(np.float32))).numpy()
        rows = np.repeat(np.arange(len(fakes)), present.sum(1))
        head = fit_attribution(X, np.asarray(generators)[fakes][rows], rows, seed=seed)
        if head is None:
            return {"skipped": "fewer than two generator families with enough images"}
        self.families, self.unknown_below = head.families, head.unknown_below
        self._attribution_buffers(len(head.families))
        with torch.no_grad():  # the temperature folded in: softmax(family_logits) is the calibrated probability
            self.attr_weight.copy_(torch.from_numpy(head.weight / head.temperature))
            self.attr_bias.copy_(torch.from_numpy(head.bias / head.temperature))
        return head.report

    def fit_head(self, feats: np.ndarray, labels: np.ndarray, generators: np.ndarray | None = None) -> dict:
        """Fit the standardisation and the logistic head (:func:`fit_standardised`) on descriptors [n, V, P, F]
        of n images (V views each, P planned crops per view; NaN rows = absent crops), every present crop a row;
        the head reads the ``tokens`` columns. ``generators`` (each image's generator or real source) weighs the
        rows when ``balance`` is "group" (:func:`balanced_weights`)."""
        if self.config.balance == "group" and generators is None:
            raise ValueError("univfd: balance 'group' needs each image's generator or source")
        n, v = feats.shape[:2]
        d = feats.shape[-1]
        flat = feats.reshape(n, -1, d)
        present = ~np.isnan(flat[..., 0])
        X = flat[present][:, self.columns.numpy()].astype(np.float32)
        y = np.repeat(labels, present.sum(1))
        groups = np.repeat(np.arange(n), present.sum(1))
        weight = None
        if self.config.balance == "group":
            weight = balanced_weights(labels, np.asarray(generators))[groups]
        cfg = self.config
        head = fit_standardised(X, y, cfg.Cs, cfg.max_iter, weight, groups, cfg.cv_folds)
        with torch.no_grad():
            self.feature_mean.copy_(torch.from_numpy(head.mean))
            self.feature_scale.copy_(torch.from_numpy(head.scale))
            self.head.weight.copy_(torch.from_numpy(np.asarray(head.weight, np.float32)[None]))
            self.head.bias.fill_(head.bias)
        return {"C": head.C, "cv_auroc": head.cv_auroc, "n_images": int(n), "n_views": int(v), "n_rows": int(len(X))}
