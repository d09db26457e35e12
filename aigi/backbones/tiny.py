"""A tiny, randomly initialised CLIP written to a directory, exactly as a real checkpoint is.

Nothing can be fetched from a model hub here, so tests (and users checking their set-up)
build this in-process and load it through the same code path as a real CLIP directory.
Its tokenizer is a genuine CLIP byte-level BPE tokenizer with a minimal vocabulary (every
byte, with and without the end-of-word marker, and no merges), so text splits into
characters; the code path is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def build_tiny_clip(directory: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """Write a tiny random CLIP (model, image preprocessing config, tokenizer) to ``directory``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[])  # transformers >= 5 takes the objects
    tok.save_pretrained(d)

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                         pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(d)
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": image_size},
        "do_center_crop": True, "crop_size": {"height": image_size, "width": image_size},
        "do_normalize": True, "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "resample": 3,
    }, indent=1))
    return d


__all__ = ["build_tiny_clip", "CLIP_MEAN", "CLIP_STD"]
