"""AlignGemini: a semantic branch and a pixel-artefact expert, each trained only on its own kind of
supervision, fused.

Chen et al., arXiv 2512.06746. Choices written down (the paper leaves them
open or its parts are not public):
- Semantic branch: :class:`~aigi.detectors.univfd.UnivFD` with ``launder: true``: the frozen
  encoder's pooled features of the LAUNDERED image (``augment.launder_fixed``) and a logistic head.
  Trained on the laundered training images (the semantic set: real vs generated, pixel artefacts
  gone); at inference the input is laundered the same way, so this branch can only read semantics.
- Pixel expert: :class:`~aigi.detectors.pixel.PixelExpert` trained ONLY on reconstruction pairs
  (real image, its reconstruction by each of several autoencoders: ``augment.reconstruct``), built
  from the training manifest's reals. It never sees a generated image. ``pixel_expert`` reuses an
  expert trained before (it depends only on reals, so one expert serves every generator split).
- Fusion, fitted on the validation split after both branches are trained:
  (a) ``or``: each branch's threshold is set on the validation reals so that the fused FPR (reals
  flagged by either branch) stays within ``fpr_budget``; the budget's split between branches is
  the one with the highest fused TPR on the validation fakes. The fused logit is
  ``max(z_sem, z_pix)`` with ``z = branch logit - branch threshold logit``, so the fused raw score
  crosses 0.5 exactly when either branch fires, and the stored default threshold is that point
  after calibration.
  (b) ``logistic``: ``w_s * z_sem + w_p * z_pix + c`` fitted on the validation split.
  Both are always fitted and stored; ``fusion`` picks the one that decides. Every record carries
  both branch scores and which branch fired (under the OR thresholds).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aigi.contract import ModelConfig
from aigi.detectors.base import Detector
from aigi.detectors.pixel import PixelConfig, PixelExpert
from aigi.detectors.registry import register
from aigi.detectors.univfd import UnivFD, UnivFDConfig

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


FUSIONS = ("or", "logistic")
_LOGIT_LIMIT = float(np.log((1 - 1e-6) / 1e-6))
BRANCHES = ("semantic", "pixel")


@dataclass
class AlignGeminiConfig(ModelConfig):
    backbone: str = "dinov2-s14"  # the semantic branch's encoder
    semantic: dict = field(default_factory=dict)  # UnivFD options (launder is always on)
    pixel: dict = field(default_factory=dict)  # PixelExpert options
    pixel_expert: str = ""  # a saved pixel detector trained on reconstruction pairs, reused as is
    reconstructors: tuple[str, ...] = ()  # for building the pairs; default: the shipped autoencoders
    max_side: int = 512  # pair building: larger reals are brought down to this first
    fusion: str = "or"  # or | logistic
    fpr_budget: float = 0.05  # the OR rule's fused false-positive rate on validation reals


def _branch_configs(config: AlignGeminiConfig) -> tuple[UnivFDConfig, PixelConfig]:
    from aigi.detectors.saved import config_from_dict

    sem = config_from_dict(UnivFDConfig, {**config.semantic, "backbone": config.backbone, "launder": True})
    return sem, config_from_dict(PixelConfig, config.pixel)


@register("aligngemini")
class AlignGemini(Detector):
    Config = AlignGeminiConfig
    has_branches = True
    has_validation_stage = True
    cached_features = ("features", "crops")
    feature_kind = "aligngemini"
    or_thresholds: torch.Tensor  # buffers
    fusion_weights: torch.Tensor

    def __init__(self, config: AlignGeminiConfig):
        super().__init__(config)
        if config.fusion not in FUSIONS:
            raise ValueError(f"aligngemini: unknown fusion {config.fusion!r}; known: {', '.join(FUSIONS)}")
        if not 0.0 < config.fpr_budget < 1.0:
            raise ValueError(f"aligngemini: fpr_budget must be in (0, 1), got {config.fpr_budget}")
        sem_cfg, pix_cfg = _branch_configs(config)
        self.semantic = UnivFD(sem_cfg)
        self.pixel = PixelExpert(pix_cfg)
        # OR rule: each branch's threshold as a logit; logistic fusion: (w_sem, w_pix, c).
        self.register_buffer("or_thresholds", torch.zeros(2))
        self.register_buffer("fusion_weights", torch.tensor([1.0, 1.0, 0.0]))

    @property
    def raw_decision_logit(self) -> float | None:  # type: ignore[override]
        """Under the OR rule the fused logit 0 is where a branch fires; the logistic fusion keeps 0 calibrated."""
        return 0.0 if self.config.fusion == "or" else None

    def branches(self) -> tuple[Detector, ...]:
        """The two branches share this detector's parity and device (``Detector.parity``, ``to_device``)."""
        return (self.semantic, self.pixel)

    @property
    def backbone(self):
        return self.semantic.backbone

    # --- learned state: a reused pixel expert brings its own architecture (state.json, not Config) ----
    def get_state(self) -> dict:
        own = dataclasses.asdict(self.pixel.config)
        return {"pixel_config": own} if own != dataclasses.asdict(_branch_configs(self.config)[1]) else {}

    def set_state(self, state: dict) -> None:
        if "pixel_config" in state:
            from aigi.detectors.saved import config_from_dict

            self.pixel = PixelExpert(config_from_dict(PixelConfig, state["pixel_config"]))
            self.pixel.parity = self.parity  # a new branch follows this detector's parity

    # --- fusion ------------------------------------------------------------------------
    def fuse(self, branch_logits: torch.Tensor, fusion: str | None = None) -> torch.Tensor:
        """[B, 2] branch logits (semantic, pixel) -> [B] fused logit (see the module docstring);
        ``fusion`` overrides the configured rule (to compare both on the same scores)."""
        z = branch_logits - self.or_thresholds
        if (fusion or self.config.fusion) == "or":
            return z.max(dim=1).values
        w = self.fusion_weights
        return w[0] * z[:, 0] + w[1] * z[:, 1] + w[2]

    def fuse_logits(self, branch_logits: np.ndarray, fusion: str | None = None) -> np.ndarray:
        """``fuse`` for numpy branch logits [N, 2] (from ``branch_logits``)."""
        with torch.inference_mode():
            return self.fuse(torch.from_numpy(np.asarray(branch_logits, np.float32)), fusion).double().numpy()

    # --- the stages: the laundered image for the semantic branch, native crops for the pixel one ----
    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        return {**self.semantic.inputs(image), **self.pixel.inputs(image)}  # image is prepared (parity)

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        return {**self.semantic.features({"pixels": inputs["pixels"]}), "crops": inputs["crops"]}

    def feature_key(self) -> str:
        import hashlib
        import json

        c = self.pixel.config
        parts = [self.semantic.feature_key(), c.crop, c.inference_crops]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        la = self.semantic({"features": batch["features"]})["logit"]
        lb = self.pixel({"crops": batch["crops"]})["logit"]
        # clamped so that a branch granted no FPR (its threshold set beyond the clamp) never fires
        branch_logits = torch.stack([la, lb], dim=1).clamp(-_LOGIT_LIMIT, _LOGIT_LIMIT)
        out = {"logit": self.fuse(branch_logits), "branch_logits": branch_logits}
        if "label" in batch:
            out["loss"] = torch.nn.functional.binary_cross_entropy_with_logits(out["logit"], batch["label"].float())
        return out

    def extra_fields(self, out: dict[str, Any], i: int) -> dict[str, Any]:
        from aigi.evaluation.fusion import fired_branch

        bl = out["branch_logits"][i].float()
        z = (bl - self.or_thresholds).tolist()
        return {
            "branch_scores": dict(zip(BRANCHES, (round(x, 6) for x in torch.sigmoid(bl).tolist()))),
            "fired": fired_branch(z[0], z[1], 0.0, 0.0),
        }

    def branch_logits(
        self, manifest, perturb=None, batch_size: int = 16, progress=None
    ) -> tuple[np.ndarray, list[str | None]]:
        """Raw branch logits [N, 2] (semantic, pixel; NaN where a file failed, clamped as in ``forward``)
        and errors, through the engine; ``perturb=(key, fn)`` degrades every image first."""
        from aigi.scoring import extract, forward

        feats, errors = extract(
            self, [s.path for s in manifest], perturb=perturb, batch_size=batch_size, progress=progress
        )
        out = np.full((len(manifest), 2), np.nan)
        ok = np.array([e is None for e in errors], dtype=bool)
        if ok.any():
            out[ok] = forward(self, {k: v[ok, 0] for k, v in feats.items()})["branch_logits"].double().numpy()
        return out, errors

    # --- training ------------------------------------------------------------------------
    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        info = {"semantic": self.semantic.fit(manifest, train_config, progress)}
        if self.config.pixel_expert:
            expert = PixelExpert.from_pretrained(self.config.pixel_expert)
            self.pixel = expert.to_device(self.device_name)  # type: ignore[assignment] # a PixelExpert, checked by class
            self.pixel.parity = self.parity  # a new branch follows this detector's parity
            info["pixel"] = {
                "reused": self.config.pixel_expert,
                "data": expert.training_info.get("data"),
                "train": expert.training_info.get("train"),
                "fit": expert.training_info.get("fit"),
            }
        else:
            info["pixel"] = self.fit_pixel(manifest, train_config)
        return info

    def fit_pixel(self, manifest: Manifest, train_config: TrainConfig) -> dict:
        """Train the pixel branch on reconstruction pairs of ``manifest``'s real images (fakes are ignored)."""
        from aigi.augment.reconstruct import build_pixel_pairs, load_reconstructor, shipped_reconstructors

        specs = list(self.config.reconstructors) or [str(p) for p in shipped_reconstructors()]
        recs = [load_reconstructor(s) for s in specs]
        with tempfile.TemporaryDirectory(prefix="aigi-pixel-set-") as tmp:
            pairs, errors = build_pixel_pairs(manifest, recs, tmp, self.config.max_side)
            if not len(pairs):
                raise ValueError("aligngemini: no real image in the training data could be reconstructed")
            fit = self.pixel.fit(pairs, train_config)
        return {"reconstructors": [r.name for r in recs], "pairs": pairs.summary(), "fit": fit, "skipped_files": errors}

    def fit_validation(self, val_set: Manifest, train_config: TrainConfig) -> dict:
        """Fit both fusions on the validation split (both branches already trained)."""
        from aigi.calibration import logit, sigmoid
        from aigi.evaluation.fusion import fit_logistic_fusion, fit_or_thresholds

        zb, _ = self.branch_logits(val_set)
        y = np.asarray(val_set.labels)
        ok = ~np.isnan(zb).any(axis=1)
        zb, y = zb[ok], y[ok]
        s = sigmoid(zb)
        real, fake = s[y == 0], s[y == 1]
        if not len(real) or not len(fake):
            raise ValueError("aligngemini: the validation split needs real and fake images to fit the fusion")
        t = fit_or_thresholds(real[:, 0], real[:, 1], self.config.fpr_budget, fake[:, 0], fake[:, 1])
        # a threshold above every score (a branch granted no FPR) lies beyond the clamped logits, so
        # that branch never fires; one below every score always fires
        ts = np.array([t["ta"], t["tb"]], dtype=float)
        thr = np.where(ts >= 1.0, _LOGIT_LIMIT + 1.0, np.where(ts <= 0.0, -_LOGIT_LIMIT - 1.0, logit(ts)))
        with torch.no_grad():
            self.or_thresholds.copy_(torch.tensor(thr, dtype=torch.float32))
        z = zb - thr
        w = fit_logistic_fusion(sigmoid(z[:, 0]), sigmoid(z[:, 1]), y)
        with torch.no_grad():
            self.fusion_weights.copy_(torch.tensor([w["w_a"], w["w_b"], w["c"]], dtype=torch.float32))
        fired = z >= 0
        return {
            "or": {
                "fpr_budget": self.config.fpr_budget,
                "fused_fpr": t["fused_fpr"],
                "fused_tpr": t["fused_tpr"],
                "semantic_fpr": float(fired[y == 0, 0].mean()),
                "pixel_fpr": float(fired[y == 0, 1].mean()),
                "semantic_threshold": float(t["ta"]),
                "pixel_threshold": float(t["tb"]),
            },
            "logistic": {"w_semantic": w["w_a"], "w_pixel": w["w_b"], "c": w["c"]},
            "n": int(len(y)),
        }
