"""ARCHITECTURE.md's "Adding a detector", followed as a newcomer would, outside the aigi package: one module,
one entry-point line in the newcomer's own pyproject.toml, installed with pip; then the CLI trains, saves,
loads and scores with it, and the conformance check passes on it."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import run_cli

DETECTOR = '''
"""Mean colour: a toy detector (each channel's mean and spread at 32 x 32, a logistic head)."""

from dataclasses import dataclass

import numpy as np
import torch

from aigi.contract import ModelConfig
from aigi.detectors import Detector, register


@dataclass
class MeanColourConfig(ModelConfig):  # backbone None: no frozen encoder
    size: int = 32  # the side images are resized to
    C: float = 1.0  # inverse L2 strength of the logistic head


@register("mean-colour")
class MeanColour(Detector):
    Config = MeanColourConfig

    def __init__(self, config: MeanColourConfig):
        super().__init__(config)
        self.head = torch.nn.Linear(6, 1)

    def inputs(self, image):
        size = (self.config.size, self.config.size)
        return {"pixels": np.asarray(image.convert("RGB").resize(size), np.float32) / 255}

    def features(self, inputs):
        x = inputs["pixels"]
        return {"features": np.concatenate([x.mean((1, 2)), x.std((1, 2))], 1).astype(np.float32)}

    def feature_key(self):
        return f"mean-colour-{self.config.size}"

    def forward(self, batch):
        return {"logit": self.head(torch.as_tensor(batch["features"]).float()).squeeze(-1)}

    def fit(self, manifest, train_config, progress=None):
        from sklearn.linear_model import LogisticRegression

        from aigi.scoring import extract

        feats, errors = extract(self, [s.path for s in manifest], [0])
        ok = np.array([e is None for e in errors])
        X, y = feats["features"][ok, 0], np.asarray(manifest.labels)[ok]
        lr = LogisticRegression(C=self.config.C).fit(X, y)
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(lr.coef_.astype(np.float32)))
            self.head.bias.fill_(float(lr.intercept_[0]))
        return {"n_images": int(ok.sum())}
'''

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "aigi-mean-colour"
version = "0.1"

[project.entry-points."aigi.detectors"]
mean-colour = "aigi_mean_colour"
half-written = "aigi_mean_colour_not_written_yet"
"""


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The newcomer's package, installed (pip, offline, no build isolation) into its own folder."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    (src / "aigi_mean_colour").mkdir(parents=True)
    (src / "aigi_mean_colour" / "__init__.py").write_text(textwrap.dedent(DETECTOR))
    (src / "pyproject.toml").write_text(PYPROJECT)
    site = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*cmd, "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    return site


def test_a_detector_added_outside_the_package_trains_scores_and_conforms(plugin, sample_dir, tmp_path, monkeypatch):
    env = {"PYTHONPATH": str(plugin)}
    cfg = tmp_path / "mean-colour.yaml"
    cfg.write_text("detector: mean-colour\noptions: {size: 32}\nval_fraction: 0.5\n")
    out = tmp_path / "det"
    r = run_cli("train", "--config", cfg, "--data", sample_dir / "manifest.csv", "--out", out, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["detector"] == "mean-colour"
    r = run_cli("detect", sample_dir, "--detector", out, "--format", "json", "--no-provenance", env_extra=env)
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert len(records) == 16 and {x["detector"] for x in records} == {"mean-colour"}
    assert all(x["verdict"] in ("real", "fake", "unsure") for x in records)
    assert "detector plugin 'half-written' (aigi_mean_colour_not_written_yet) failed to import" in r.stderr
    # in this process too: the entry point is found on sys.path, and the trained detector keeps the contract
    monkeypatch.syspath_prepend(str(plugin))
    from aigi import load_detector
    from aigi.detectors import registry
    from aigi.detectors.conformance import check_detector

    try:
        with pytest.warns(UserWarning, match="'half-written'"):  # the broken plugin is named, the others still load
            det = load_detector(str(out))
        assert type(det).__module__ == "aigi_mean_colour"
        check_detector(det, [x["path"] for x in records[:3]])
    finally:  # the other tests see only the built-in detectors
        registry.REGISTRY.pop("mean-colour", None)
        registry._loaded_plugins.clear()
        sys.modules.pop("aigi_mean_colour", None)
