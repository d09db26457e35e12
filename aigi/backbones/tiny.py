"""A tiny, randomly initialised CLIP written to a directory, exactly as a real checkpoint is.

Nothing can be fetched from a model hub here, so tests (and users checking their set-up)
build this in-process and load it through the same code path as a real CLIP directory.
Its tokenizer is a genuine CLIP byte-level BPE tokenizer. With ``bpe=True`` (default, when the
``open_clip_torch`` wheel is installed with ``--no-deps``) it is OpenAI's full CLIP vocabulary
(49,408 tokens, read from the wheel's ``bpe_simple_vocab_16e6.txt.gz``; the package is never
imported); otherwise a minimal vocabulary (every byte, with and without the end-of-word marker, no
merges), so text splits into characters. Either way the code path is the real one.

:func:`build_tiny_blip` does the same for a BLIP image-captioning model (a tiny BERT WordPiece
vocabulary of common caption words).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def clip_bpe_file() -> Path | None:
    """OpenAI's CLIP BPE merges inside the open_clip_torch wheel (located, not imported), or None."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    return f if f.is_file() else None


def clip_vocab_and_merges(bpe: bool = True) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's tokenizer vocabulary: every byte symbol, with and without ``</w>``, then (with ``bpe``) one
    token per merge of the first 48,894 merges, then the start and end tokens (as CLIP builds it)."""
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    merges: list[tuple[str, str]] = []
    f = clip_bpe_file() if bpe else None
    if f is not None:
        lines = gzip.open(f, "rt", encoding="utf-8").read().split("\n")
        merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
        tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_tiny_clip(directory: str | Path, image_size: int = 32, seed: int = 0, bpe: bool = True) -> Path:
    """Write a tiny random CLIP (model, image preprocessing config, tokenizer) to ``directory``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges(bpe)
    tok = CLIPTokenizer(vocab=vocab, merges=merges)  # transformers >= 5 takes the objects
    tok.save_pretrained(d)

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(d)
    (d / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "do_resize": True,
                "size": {"shortest_edge": image_size},
                "do_center_crop": True,
                "crop_size": {"height": image_size, "width": image_size},
                "do_normalize": True,
                "image_mean": list(CLIP_MEAN),
                "image_std": list(CLIP_STD),
                "resample": 3,
            },
            indent=1,
        )
    )
    return d


CAPTION_WORDS = (
    "a photo of an the and with on in at dog cat person man woman car tree street table "
    "sitting standing red blue green white black small large two"
).split()


def build_tiny_blip(directory: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """Write a tiny random BLIP captioning model (model, processor: image processor + WordPiece tokenizer)."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"] + CAPTION_WORDS
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizer(str(d / "vocab.txt"), bos_token="[DEC]")
    proc = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}), tokenizer=tok
    )
    torch.manual_seed(seed)
    ids = {w: i for i, w in enumerate(words)}
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(words),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            encoder_hidden_size=32,
            max_position_embeddings=64,
            bos_token_id=ids["[DEC]"],
            pad_token_id=ids["[PAD]"],
            eos_token_id=ids["[SEP]"],
            sep_token_id=ids["[SEP]"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=16,
    )
    model = BlipForConditionalGeneration(config).eval()
    model.generation_config.bos_token_id = ids["[DEC]"]
    model.generation_config.eos_token_id = ids["[SEP]"]
    model.generation_config.pad_token_id = ids["[PAD]"]
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


__all__ = ["build_tiny_clip", "build_tiny_blip", "clip_vocab_and_merges", "clip_bpe_file", "CLIP_MEAN", "CLIP_STD"]
