"""Captioners. Every image, real or fake, goes through the same one (otherwise the caption's style
would leak the label).

- :class:`RetrievalCaptioner` (offline default, no captioning weights): names the ``top_k`` vocabulary
  concepts nearest to the image in the joint vision-language space ("a photo of a tench and a
  goldfish."). Its objects are those concepts. With such a captioner the global image-caption cosine
  is the retrieval confidence, so the global level measures "how well does this image match ANY
  concept the space knows" rather than the agreement with an independent description.
- :class:`TransformersCaptioner`: any transformers image-to-text model (BLIP, BLIP-2, ...) by hub id or
  local directory, greedy decoding.
- captions given in the manifest (ITEM's ``use_manifest_captions``), used as they are.

Generated captions are cached per (captioner, image content) in the feature cache (``captions`` kind).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from aigi.training.cache import FeatureCache

PROMPT = "a photo of a {}."


def _article(term: str) -> str:
    return "an" if term[:1] in "aeiou" else "a"


def compose_caption(terms: list[str]) -> str:
    """``["tench", "egg"]`` -> ``"a photo of a tench and an egg."``"""
    if not terms:
        return "a photo."
    return "a photo of " + " and ".join(f"{_article(t)} {t}" for t in terms) + "."


def object_prompt(term: str) -> str:
    return f"a photo of {_article(term)} {term}."


class RetrievalCaptioner:
    def __init__(self, space, terms: list[str], top_k: int = 2):
        if not terms:
            raise ValueError("the retrieval captioner needs a non-empty vocabulary")
        self.space, self.terms, self.top_k = space, list(terms), int(top_k)
        self._emb: torch.Tensor | None = None

    def key(self) -> str:
        h = hashlib.sha256(f"retrieval-{self.space.key()}-{self.top_k}-".encode() + "\n".join(self.terms).encode())
        return h.hexdigest()[:16]

    def term_embeddings(self) -> torch.Tensor:
        if self._emb is None:
            self._emb = self.space.encode_texts([object_prompt(t) for t in self.terms])
        return self._emb

    def caption_embeddings(self, image_emb: torch.Tensor) -> list[tuple[str, list[str]]]:
        """Unit image embeddings [B, E] -> (caption, named concepts) per image."""
        sims = image_emb.float().cpu() @ self.term_embeddings().float().cpu().T
        top = sims.topk(min(self.top_k, len(self.terms)), dim=-1).indices.tolist()
        return [(compose_caption([self.terms[j] for j in row]), [self.terms[j] for j in row]) for row in top]


class TransformersCaptioner:
    """A transformers image-to-text model; ``pixels(img)`` is its preprocessing, ``caption_pixels`` decodes."""

    def __init__(self, model_id: str, device: str = "cpu", max_new_tokens: int = 20):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.model_id, self.device, self.max_new_tokens = model_id, device, int(max_new_tokens)
        self.processor = AutoProcessor.from_pretrained(model_id)
        self.model = AutoModelForImageTextToText.from_pretrained(model_id).eval().to(device)

    def key(self) -> str:
        return hashlib.sha256(f"hf-{self.model_id}-{self.max_new_tokens}".encode()).hexdigest()[:16]

    def pixels(self, img) -> np.ndarray:
        return np.asarray(self.processor(images=img, return_tensors="np")["pixel_values"][0], dtype=np.float32)

    @torch.inference_mode()
    def caption_pixels(self, pixels: np.ndarray) -> list[str]:
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device, next(self.model.parameters()).dtype)
        ids = self.model.generate(pixel_values=x, max_new_tokens=self.max_new_tokens, do_sample=False)
        return [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]

    def caption_images(self, images) -> list[str]:
        return self.caption_pixels(np.stack([self.pixels(im) for im in images])) if images else []


class CaptionCache:
    """Captions on disk, keyed by (captioner key, image sha256)."""

    def __init__(self, captioner_key: str):
        self._cache = FeatureCache(captioner_key, kind="captions")

    def get(self, sha256: str) -> str | None:
        v = self._cache.get(sha256, "plain")
        return None if v is None or v.size != 1 else str(v.reshape(-1)[0])

    def put(self, sha256: str, caption: str) -> None:
        self._cache.put(sha256, "plain", np.array(caption))


__all__ = ["RetrievalCaptioner", "TransformersCaptioner", "CaptionCache", "compose_caption", "object_prompt", "PROMPT"]
