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
    transformer blocks (the residual stream, before the final norm; None when not asked for);
    ``block_tokens``: [B, 1+N, k*D] the whole token sequences of the k blocks asked for (same stream),
    concatenated along the channel axis in the order asked (None when none were).
    """

    cls: np.ndarray
    patch_mean: np.ndarray
    tokens: np.ndarray | None = None
    blocks: np.ndarray | None = None
    block_tokens: np.ndarray | None = None

    def pooled(self) -> np.ndarray:
        """CLS concatenated with the mean patch token, [B, 2D]: the UnivFD-style descriptor."""
        return np.concatenate([self.cls, self.patch_mean], axis=1)


def pool_sequence(seq):
    """One block's token sequence [B, 1+N, D] (class token first) -> [B, 2D]: the class token beside the mean of
    the patch tokens. A numpy array gives a numpy array; a torch tensor a tensor, with its gradient (the adapted
    blocks' training reads the same descriptor as the frozen features it replaces)."""
    cls, mean = seq[:, 0], seq[:, 1:].mean(1)
    if isinstance(seq, np.ndarray):
        return np.concatenate([cls, mean], axis=1)
    import torch

    return torch.cat([cls, mean], 1)


def pool_blocks(sequences) -> np.ndarray:
    """Per-block token sequences (L arrays [B, 1+N, D]) -> [B, L, 2D], each pooled by :func:`pool_sequence`."""
    return np.stack([pool_sequence(s) for s in sequences], axis=1)


def block_fields(sequences, blocks: bool, block_tokens: tuple[int, ...]) -> dict:
    """:class:`ImageFeatures`' per-block fields from every block's sequence (L arrays [B, 1+N, D])."""
    for i in block_tokens:
        if not -len(sequences) <= i < len(sequences):
            raise ValueError(f"block {i} asked for; this backbone has {len(sequences)} blocks")
    return {
        "blocks": pool_blocks(sequences) if blocks else None,
        "block_tokens": np.concatenate([sequences[i] for i in block_tokens], axis=-1) if block_tokens else None,
    }


class Backbone:
    """A frozen image encoder. Subclasses set ``name``, ``dim`` and ``preprocess``."""

    name: str
    dim: int
    preprocess: Preprocess
    has_text: bool = False

    def encode_images(
        self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False, block_tokens: tuple[int, ...] = ()
    ) -> ImageFeatures:
        """``pixels``: [B, 3, H, W] float32 already preprocessed by ``self.preprocess``; ``blocks`` also
        returns every block's pooled tokens, ``block_tokens`` the listed blocks' whole sequences."""
        raise NotImplementedError

    def encode_blocks(self, pixels: np.ndarray, depth: int) -> np.ndarray:
        """The pooled tokens of the first ``depth`` blocks only, [B, depth, 2D] (as ``encode_images(...,
        blocks=True).blocks[:, :depth]``). A backbone that can stop after block ``depth`` overrides this so a
        head reading early blocks does not pay for the later ones."""
        return self.encode_images(pixels, blocks=True).blocks[:, :depth]

    def token_sequence(self, pixels: np.ndarray, blocks: tuple[int, ...] = ()) -> np.ndarray:
        """The final token sequence [B, 1+N, D], or with ``blocks`` those blocks' sequences side by side
        [B, 1+N, k*D]; float16, as the token caches store it."""
        f = self.encode_images(pixels, tokens=not blocks, block_tokens=tuple(blocks))
        return (f.block_tokens if blocks else f.tokens).astype(np.float16)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(f"backbone {self.name} has no text tower")

    def cache_key(self) -> str:
        """Identifies the features this backbone produces (for the feature cache)."""
        return f"{self.name}-{self.preprocess.key()}"
