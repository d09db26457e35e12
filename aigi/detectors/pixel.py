"""Pixel-artefact expert: a small CNN on neighbouring-pixel residuals, at native resolution.

In the spirit of NPR (Tan et al., CVPR'24) and CNNDetection (Wang et al., CVPR'20); AlignGemini's
pixel branch (Chen et al., arXiv 2512.06746) when trained only on reconstruction pairs
(``aigi data build-pixel``); a baseline on its own when trained on ordinary real/fake data.

Choices written down (the papers leave them open or differ):
- Input: NPR residual x - up(down(x)) with 2x nearest-neighbour resampling, which isolates the
  local correlations that up-sampling layers leave, and suppresses content. ``residual: none``
  feeds raw pixels instead.
- The image is never resized: training draws random ``crop`` x ``crop`` crops (flipped at random,
  JPEG re-compressed with probability ``jpeg_p`` alike for both classes); inference averages the
  logits of a fixed grid of ``inference_crops`` crops. Images smaller than a crop are
  reflect-padded.
- Network: ``depth`` conv-BN-ReLU blocks (stride 2 after the first), global average pooling, linear.
- Stages: ``inputs`` = the crops as uint8 [K, 3, c, c]; no frozen stage (``features`` passes them on,
  nothing is cached); ``forward`` scales them to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from aigi.contract import ModelConfig
from aigi.detectors.base import Detector
from aigi.detectors.registry import register
from aigi.training.loop import train_balanced

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """x - nearest_up(nearest_down(x)) for [B, 3, H, W] with even H, W."""
    down = x[..., ::2, ::2]
    return x - down.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def grid_crops(arr: np.ndarray, crop: int, n: int) -> np.ndarray:
    """``n`` crops (centre first, then a regular grid) of an [H, W, 3] uint8 array -> [n, 3, crop, crop] uint8."""
    h, w = arr.shape[:2]
    if h < crop or w < crop:
        arr = np.pad(
            arr, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge"
        )
        h, w = arr.shape[:2]
    side = int(np.ceil(np.sqrt(max(1, n - 1))))
    ys = np.linspace(0, h - crop, side).round().astype(int) if side > 1 else np.array([(h - crop) // 2])
    xs = np.linspace(0, w - crop, side).round().astype(int) if side > 1 else np.array([(w - crop) // 2])
    corners = [((h - crop) // 2, (w - crop) // 2)] + [(y, x) for y in ys for x in xs]
    out = [arr[y : y + crop, x : x + crop] for y, x in corners[:n]]
    return np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2))


@dataclass
class PixelConfig(ModelConfig):  # backbone None: it works on pixels, no frozen encoder
    crop: int = 64
    residual: str = "npr"  # npr | none
    width: int = 32
    depth: int = 4
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (70, 95)
    inference_crops: int = 5
    max_side: int = 512  # larger training images are downscaled once, both classes alike


@register("pixel")
class PixelExpert(Detector):
    Config = PixelConfig
    cached_features = ()

    def __init__(self, config: PixelConfig):
        super().__init__(config)
        if config.crop % 2:
            raise ValueError("pixel: crop must be even (the NPR residual works on 2x2 cells)")
        layers, cin = [], 3
        for i in range(config.depth):
            cout = config.width * (2 ** min(i, 2))
            layers += [
                nn.Conv2d(cin, cout, 3, 1 if i == 0 else 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        x = batch["crops"].float() / 255.0  # [B, K, 3, c, c]
        b, k = x.shape[:2]
        x = x.reshape(b * k, *x.shape[2:])
        if self.config.residual == "npr":
            x = npr_residual(x) * 4.0
        logit = self.head(self.net(x).mean(dim=(2, 3))).reshape(b, k).mean(dim=1)
        out = {"logit": logit}
        if "label" in batch:
            out["loss"] = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
        return out

    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        return {"crops": grid_crops(np.asarray(image.convert("RGB")), self.config.crop, self.config.inference_crops)}

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        return dict(inputs)

    def _training_crop(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random native-resolution crop of [H, W, 3] ``a``, flipped and JPEG re-compressed at random
        (the same augmentation for both classes), uint8 [3, c, c]; images smaller than a crop give their padded
        centre."""
        from aigi.transforms import jpeg

        cfg = self.config
        if min(a.shape[:2]) < cfg.crop:
            return grid_crops(a, cfg.crop, 1)[0]
        y = int(rng.integers(0, a.shape[0] - cfg.crop + 1))
        x = int(rng.integers(0, a.shape[1] - cfg.crop + 1))
        patch = a[y : y + cfg.crop, x : x + cfg.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < cfg.jpeg_p:
            q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            patch = np.asarray(jpeg(Image.fromarray(np.ascontiguousarray(patch)), q))
        return np.ascontiguousarray(patch.transpose(2, 0, 1))

    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        from aigi.io import load_image
        from aigi.scoring import prepared
        from aigi.transforms import rescale

        cfg = self.config
        rng = np.random.default_rng(train_config.seed)
        torch.manual_seed(train_config.seed)
        arrays, labels, skipped = [], [], []
        for s in manifest:
            try:
                img = load_image(s.path).image
            except Exception as e:  # noqa: BLE001 - reported in the training info
                skipped.append(str(e))
                continue
            img = prepared(self, img)  # parity, as the scoring engine does
            if max(img.size) > cfg.max_side:
                img = rescale(img, cfg.max_side / max(img.size), "lanczos")
            arrays.append(np.asarray(img))
            labels.append(s.label)
            if progress:
                progress(1)
        y_all = np.asarray(labels)
        if not arrays:
            raise ValueError(
                f"none of the {len(skipped)} training images could be read (first: {skipped[0] if skipped else '-'})"
            )
        if len(set(labels)) < 2:
            raise ValueError("pixel: training needs both real and fake images that can be read")

        def batch_for(cls, by_class):
            crops = [self._training_crop(arrays[int(rng.choice(by_class[c]))], rng) for c in cls]
            return {"crops": torch.from_numpy(np.stack(crops)[:, None]), "label": torch.from_numpy(cls)}

        losses = train_balanced(self, y_all, batch_for, cfg.steps, cfg.batch_size, cfg.lr, 1e-4, rng)
        k = max(1, cfg.steps // 10)
        return {
            "n_images": len(arrays),
            "steps": cfg.steps,
            "loss_first": float(np.mean(losses[:k])),
            "loss_last": float(np.mean(losses[-k:])),
            "skipped_files": skipped,
        }
