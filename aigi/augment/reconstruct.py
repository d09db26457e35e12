"""Reconstruction through an autoencoder: same content, only pixel artefacts differ.

AlignGemini's pixel expert learns from pairs (real image, its reconstruction). Two reconstructors:
- :class:`UpsamplingAutoencoder`, the offline default: a small convolutional autoencoder whose decoder
  up-samples with learned transposed convolutions, as generators do. Trained by aigi on real photos
  only, it leaves the up-sampling traces of a generator without needing any generator (the idea of
  AutoGAN, Zhang, Karaman and Chang, 2019).
- :class:`DiffusersVAEReconstructor`: any diffusers ``AutoencoderKL`` (SD / SDXL / FLUX VAE) from a
  local directory or hub id, when the user has its weights.
Both take and return a PIL image of exactly the same size (inputs are reflect-padded to the
network's stride and cropped back), so a pair is pixel-aligned.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def _to_image(x: torch.Tensor) -> Image.Image:
    arr = (x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return x, (h, w)


UPSAMPLING = ("transposed", "nearest", "bilinear")


def _up(cin: int, cout: int, mode: str) -> nn.Module:
    """One 2x up-sampling step as generators' decoders do it: a learned 4x4 stride-2 transposed
    convolution, or a fixed nearest/bilinear 2x resize followed by a 3x3 convolution."""
    if mode == "transposed":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1)
    if mode in ("nearest", "bilinear"):
        return nn.Sequential(nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(cin, cout, 3, 1, 1))
    raise ValueError(f"unknown up-sampling {mode!r}; known: {', '.join(UPSAMPLING)}")


class UpsamplingAutoencoder(nn.Module):
    """Three stride-2 convolutions down, three 2x up-sampling steps up (``upsample``: the operator)."""

    stride = 8

    def __init__(self, width: int = 32, upsample: str = "transposed"):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1),
            nn.LeakyReLU(0.2),
        )
        self.decoder = nn.Sequential(
            _up(4 * w, 2 * w, upsample),
            nn.ReLU(),
            _up(2 * w, w, upsample),
            nn.ReLU(),
            _up(w, 3, upsample),
            nn.Sigmoid(),
        )
        self.width = width
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def save(self, path: str | Path) -> None:
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()},
            str(path),
            metadata={"width": str(self.width), "upsample": self.upsample},
        )

    @classmethod
    def load(cls, path: str | Path) -> UpsamplingAutoencoder:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        m = cls(int(meta.get("width", 32)), meta.get("upsample", "transposed"))
        m.load_state_dict(load_file(str(path)))
        return m.eval()


def train_autoencoder(
    images: list[Image.Image],
    steps: int = 2000,
    crop: int = 96,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 32,
    upsample: str = "transposed",
    seed: int = 0,
    log=None,
) -> UpsamplingAutoencoder:
    """Fit the autoencoder to reconstruct random crops of real photos (L1 loss). Returns it in eval mode."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = UpsamplingAutoencoder(width, upsample)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    arrays = [np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images]
    arrays = [a for a in arrays if min(a.shape[:2]) >= crop]
    if not arrays:
        raise ValueError(f"no training image is at least {crop} px on its shorter side")
    model.train()
    for step in range(steps):
        batch = []
        for k in rng.integers(0, len(arrays), batch_size):
            a = arrays[k]
            y, x = rng.integers(0, a.shape[0] - crop + 1), rng.integers(0, a.shape[1] - crop + 1)
            batch.append(a[y : y + crop, x : x + crop])
        xb = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
        loss = (model(xb) - xb).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step % 200 == 0 or step == steps - 1):
            log(f"step {step}: L1 {loss.item():.4f}")
    return model.eval()


class AutoencoderReconstructor:
    def __init__(self, model: UpsamplingAutoencoder):
        self.model = model.eval()
        self.name = f"autoencoder-{model.upsample}-w{model.width}"

    @torch.inference_mode()
    def reconstruct(self, img: Image.Image) -> Image.Image:
        x, (h, w) = _pad_to(_to_tensor(img), self.model.stride)
        return _to_image(self.model(x)[..., :h, :w])


class DiffusersVAEReconstructor:
    """Encode and decode through a diffusers ``AutoencoderKL`` (the latent's mode, no sampling)."""

    def __init__(self, model_or_path, device: str = "cpu"):
        from diffusers import AutoencoderKL

        self.vae = (
            model_or_path if isinstance(model_or_path, nn.Module) else AutoencoderKL.from_pretrained(model_or_path)
        )
        self.vae = self.vae.eval().to(device)
        self.device = device
        self.stride = 2 ** (len(self.vae.config.block_out_channels) - 1)
        where = "in-memory" if isinstance(model_or_path, nn.Module) else model_or_path
        self.name = f"autoencoderkl:{getattr(model_or_path, 'name_or_path', where)}"

    @torch.inference_mode()
    def reconstruct(self, img: Image.Image) -> Image.Image:
        x, (h, w) = _pad_to(_to_tensor(img) * 2 - 1, self.stride)
        latent = self.vae.encode(x.to(self.device)).latent_dist.mode()
        y = self.vae.decode(latent).sample.cpu()
        return _to_image((y[..., :h, :w] + 1) / 2)


def load_reconstructor(spec: str | Path, device: str = "cpu"):
    """An autoencoder ``.safetensors`` (from ``aigi data train-reconstructor``) or a diffusers
    ``AutoencoderKL`` directory -> a reconstructor."""
    p = Path(spec)
    if p.is_dir():
        return DiffusersVAEReconstructor(str(p), device)
    if p.is_file():
        return AutoencoderReconstructor(UpsamplingAutoencoder.load(p))
    raise FileNotFoundError(f"{p}: no such autoencoder file or VAE directory")


def shipped_reconstructors() -> list[Path]:
    """The autoencoders aigi ships (one per up-sampling operator; see their MODEL_CARD.md)."""
    return sorted((Path(__file__).resolve().parent.parent / "weights" / "reconstructor").glob("*.safetensors"))


def build_pixel_pairs(manifest, reconstructors: list, out_dir: str | Path, max_side: int = 512, log=None):
    """For every real image: ``real/<i>.png`` (the image) and, per reconstructor r, ``fake/<i>-<r>.png``
    (its reconstruction), same size and same lossless format, plus ``manifest.csv``. Several
    reconstructors (different up-sampling operators) keep the expert from memorising one
    network's fingerprint. Images are first brought to at most ``max_side`` px (both members of a
    pair alike). Bad files are skipped and reported."""
    from aigi.data.manifest import Manifest, Sample
    from aigi.io import load_image
    from aigi.transforms import rescale

    out = Path(out_dir).resolve()
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    samples, errors = [], []
    for i, s in enumerate(x for x in manifest if x.label == 0):
        try:
            img = load_image(s.path).image
        except Exception as e:  # noqa: BLE001 - reported, the build goes on
            errors.append(str(e))
            continue
        if max(img.size) > max_side:
            img = rescale(img, max_side / max(img.size), "lanczos")
        real_p = out / "real" / f"{i:06d}.png"
        img.save(real_p)
        samples.append(Sample(str(real_p), 0, s.generator))
        for r, rec in enumerate(reconstructors):
            fake_p = out / "fake" / f"{i:06d}-{r}.png"
            rec.reconstruct(img).save(fake_p)
            samples.append(Sample(str(fake_p), 1, f"reconstruction:{rec.name}"))
        if log and (i + 1) % 200 == 0:
            log(f"{i + 1} real images reconstructed")
    m = Manifest(samples, str(out / "manifest.csv"), "csv")
    m.write_csv(out / "manifest.csv")
    return m, errors


RECONSTRUCTED = "autoencoder-reconstruction"  # the generator name of the fakes reconstruct_sources makes
RECONSTRUCTION_VERSION = 2  # bump when what reconstruct_sources writes changes, so old files are never reused


def reconstruct_sources(manifest, sources, out_dir: str | Path):
    """A fake twin for every real image of ``sources`` (generator names) in ``manifest``: the image through one
    of the shipped autoencoders (chosen by the file's sha256, so a twin depends on neither the source list
    nor where the data sits; the hash is in the twin's name, so two same-named files never share one), saved
    as 384 px-class shared sets are (JPEG q90, same size), generator :data:`RECONSTRUCTED`. Real faces then
    appear on both sides of the training data, so "a face" is no evidence either way (the shortcut a detector
    learns when its only fake faces come from one GAN). Files already in ``out_dir`` are reused. Returns (the
    twins' manifest, each twin's index in ``manifest``)."""
    from aigi.data.manifest import Manifest, Sample
    from aigi.io import load_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shipped = shipped_reconstructors()
    recs: list = []  # loaded only when a twin is missing
    samples, parents = [], []
    idx = [i for i, s in enumerate(manifest) if s.label == 0 and s.generator in set(sources)]
    for i in idx:
        key = hashlib.sha256(Path(manifest.samples[i].path).read_bytes()).hexdigest()
        r = int(key[:8], 16) % len(shipped)  # fixed per image, whatever the source list
        path = out / f"{Path(manifest.samples[i].path).stem}-{key[:10]}-r{r}.jpg"
        if not path.is_file():
            recs = recs or [load_reconstructor(p) for p in shipped]
            tmp = path.with_suffix(".tmp.jpg")
            recs[r].reconstruct(load_image(manifest.samples[i].path).image).save(tmp, "JPEG", quality=90)
            tmp.replace(path)
        samples.append(Sample(str(path), 1, RECONSTRUCTED))
        parents.append(i)
    return Manifest(samples, f"{len(samples)} autoencoder reconstructions of {', '.join(sources)}", "csv"), parents
