"""What every image backbone offers: preprocessing, pooled and patch-token features, text features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aigi.transforms import Preprocess


@dataclass
class ImageFeatures:
    """Features of a batch of images.

    ``cls``: [B, D] the class/pooled token; ``patch_mean``: [B, D] mean of patch tokens;
    ``tokens``: [B, 1+N, D] the full final token sequence (None when not asked for);
    ``blocks``: [B, L, 2D] the class token and the mean patch token of the output of each of the L
    transformer blocks (the residual stream, before the final norm; None when not asked for).
    """

    cls: np.ndarray
    patch_mean: np.ndarray
    tokens: np.ndarray | None = None
    blocks: np.ndarray | None = None

    def pooled(self) -> np.ndarray:
        """CLS concatenated with the mean patch token, [B, 2D]: the UnivFD-style descriptor."""
        return np.concatenate([self.cls, self.patch_mean], axis=1)


def pool_blocks(sequences) -> np.ndarray:
    """Per-block token sequences (L arrays [B, 1+N, D], class token first) -> [B, L, 2D]: each block's
    class token beside the mean of its patch tokens."""
    return np.stack([np.concatenate([s[:, 0], s[:, 1:].mean(axis=1)], axis=1) for s in sequences], axis=1)


class Backbone:
    """A frozen image encoder. Subclasses set ``name``, ``dim`` and ``preprocess``."""

    name: str
    dim: int
    preprocess: Preprocess
    has_text: bool = False

    def encode_images(self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False) -> ImageFeatures:
        """``pixels``: [B, 3, H, W] float32 already preprocessed by ``self.preprocess``; ``blocks`` also
        returns every block's pooled tokens."""
        raise NotImplementedError

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(f"backbone {self.name} has no text tower")

    def cache_key(self) -> str:
        """Identifies the features this backbone produces (for the feature cache)."""
        return f"{self.name}-{self.preprocess.key()}"
