"""One ONNX graph per trained detector: preprocessed pixels -> the detector's outputs, backbone included.

``export_onnx(detector, out_dir)`` writes a copy of the saved detector (config, weights, calibration)
plus ``model.onnx`` into ``out_dir``; ``aigi detect --detector out_dir --runtime onnx`` then scores with
onnxruntime alone (the calibration, unsure band and records stay the detector's own). The graph takes
``pixels`` [B, 3, H, W] or, with a crop plan, [B, P, 3, H, W] (the detector's ``inputs``, done in Python)
and returns what ``forward`` returns as tensors (``logit``; GAMMA also ``mask`` and ``source``).

A detector opts in with ``exportable = True`` and ``export_module()`` (a torch module over pixels with the
frozen backbone run through transformers/torch): univfd and GAMMA do. ITEM cannot: its captions are text
encoded at run time; the pixel expert scores a variable grid of native-resolution crops.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from aigi.scoring import onnx_session

ONNX_FILE = "model.onnx"
OPSET = 17


class ExportError(ValueError):
    pass


def export_onnx(
    detector, out_dir: str | Path, source_dir: str | Path | None = None, check_images: np.ndarray | None = None
) -> dict:
    """Export ``detector`` to ``out_dir``/model.onnx (next to a copy of its saved files) and check that
    onnxruntime matches torch on ``check_images`` (preprocessed pixels; random ones when None).
    Returns {"path", "max_abs_diff", "outputs"}."""
    if not detector.exportable:
        raise ExportError(f"{detector.name} cannot be exported to one ONNX graph")
    module = detector.export_module().eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if source_dir is not None and Path(source_dir).resolve() != out.resolve():
        for f in Path(source_dir).iterdir():
            if f.is_file() and f.name != ONNX_FILE:
                shutil.copy2(f, out / f.name)
    else:
        detector.save_pretrained(out)
    size = detector.preprocess_size()
    from PIL import Image

    # one input as the detector builds it ([3, H, W], or [P, 3, H, W] for a crop plan), twice
    one = detector.inputs(Image.new("RGB", (2 * size, 2 * size), (128, 128, 128)))["pixels"]
    example = torch.zeros(2, *one.shape)
    with torch.no_grad():
        names = list(module(example).keys())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(
            _Tuple(module, names),
            (example,),
            str(out / ONNX_FILE),
            dynamo=False,
            opset_version=OPSET,
            input_names=["pixels"],
            output_names=names,
            dynamic_axes={"pixels": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        )
    x = (
        check_images
        if check_images is not None
        else np.random.default_rng(0).standard_normal((3, *one.shape)).astype(np.float32)
    )
    got = onnx_session(out / ONNX_FILE).run(names, {"pixels": x})
    with torch.no_grad():
        want = module(torch.from_numpy(x))
    diff = max(float(np.abs(g - want[n].numpy()).max()) for g, n in zip(got, names))
    return {"path": str(out / ONNX_FILE), "max_abs_diff": diff, "outputs": names}


class _Tuple(torch.nn.Module):
    """The exporter wants tensors out, in a fixed order."""

    def __init__(self, module, names):
        super().__init__()
        self.module, self.names = module, names

    def forward(self, pixels):
        out = self.module(pixels)
        return tuple(out[n] for n in self.names)


__all__ = ["export_onnx", "onnx_session", "ExportError", "ONNX_FILE"]
