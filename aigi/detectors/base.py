"""The detector contract, the name registry, and save/load.

Every detector is a ``torch.nn.Module`` whose ``forward(batch) -> dict`` returns
``logit`` [B] always, ``loss`` when the batch has ``label``, and optionally ``mask`` or
``branch_logits``. It declares the backbone it reads (``config.backbone``), turns
preprocessed pixels into its batch (``featurize``), and knows how to ``fit`` itself on a
manifest. A trained detector is a directory: ``config.json`` + ``model.safetensors``
(+ ``calibration.json``), never a pickle.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aigi.calibration import Calibration
from aigi.io import DEFAULT_LIMITS, DecodeLimits, ImageDecodeError, load_image
from aigi.pipeline import iter_batches
from aigi.records import make_record

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1

REGISTRY: dict[str, type["Detector"]] = {}


def register(name: str):
    """Class decorator: make a detector available by ``name``."""

    def wrap(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"detector name {name!r} is already registered by {REGISTRY[name].__name__}")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


class UnknownDetectorError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def get_detector_class(name: str) -> type["Detector"]:
    import aigi.detectors  # noqa: F401 - importing registers the built-in detectors

    if name in REGISTRY:
        return REGISTRY[name]
    near = difflib.get_close_matches(name, REGISTRY, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise UnknownDetectorError(f"unknown detector {name!r}.{hint} Known: {', '.join(sorted(REGISTRY))}")


class Detector(torch.nn.Module):
    """Base class. Subclasses define ``Config`` (a dataclass with a ``backbone`` field),
    build their modules in ``__init__``, and implement ``forward``, ``featurize`` and ``fit``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.calibration = Calibration()
        self.training_info: dict[str, Any] = {}
        self.device_name = "cpu"
        self.parity = False  # re-encode every input identically first (see transforms.parity_image)
        self._backbone = None
        self._version = ""
        self._onnx = None  # an onnxruntime session after use_onnx()

    # --- what subclasses implement ---------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def featurize(self, pixels: np.ndarray) -> dict[str, torch.Tensor]:
        """Preprocessed pixels [B, 3, H, W] -> the batch ``forward`` takes."""
        raise NotImplementedError

    def fit(self, manifest, train_config, progress: Callable[[int], None] | None = None) -> dict:
        """Train on ``manifest``; return a dict describing the run (stored in config.json)."""
        raise NotImplementedError

    def extra_fields(self, out: dict[str, torch.Tensor], i: int) -> dict[str, Any]:
        """Method-specific record fields for item ``i`` of a forward output."""
        return {}

    def fit_validation(self, val_set, train_config) -> dict | None:
        """Optional second stage on the validation split, after ``fit`` and before calibration
        (e.g. AlignGemini's fusion). Returns a description for config.json, or None."""
        return None

    def reserved(self, manifest) -> np.ndarray:
        """Indices of ``manifest`` this detector keeps for its own pre-training (ITEM's alignment slice):
        they are removed before any split, so no detector split ever holds them. Default: none."""
        return np.array([], dtype=int)

    def pretrain(self, reserved, train_config) -> dict | None:
        """Optional first stage on the reserved samples, before ``fit``. Returns a description or None."""
        return None

    # The raw score at which the detector's own decision rule flips, when it has one (AlignGemini's
    # OR rule); calibration then stores that point, mapped, as the default threshold.
    raw_decision_threshold: float | None = None

    # --- backbone and preprocessing ---------------------------------------------------
    @property
    def backbone(self):
        if self._backbone is None:
            from aigi.backbones import load_backbone

            self._backbone = load_backbone(self.config.backbone, self.device_name)
        return self._backbone

    def prepare(self, img):
        """What every input image goes through first: parity re-encoding, when the detector was
        trained with it (see ``transforms.parity_image``)."""
        if self.parity:
            from aigi.transforms import parity_image

            img = parity_image(img)
        return img

    def input_array(self, img) -> np.ndarray:
        """A prepared image -> the array ``featurize`` takes (default: the backbone's preprocessing)."""
        return self.backbone.preprocess(img)

    def preprocess(self, img) -> np.ndarray:
        return self.input_array(self.prepare(img))

    def to_device(self, device: str) -> "Detector":
        self.device_name = device
        self._backbone = None
        return self.to(device)

    # --- inference --------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version or "untrained"

    @torch.inference_mode()
    def score_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        """Raw (uncalibrated) p_fake for a batch of preprocessed images, and the forward output
        (through the exported ONNX graph after ``use_onnx``)."""
        if self._onnx is not None:
            names = [o.name for o in self._onnx.get_outputs()]
            got = self._onnx.run(names, {"pixels": np.ascontiguousarray(pixels, np.float32)})
            out = {n: torch.from_numpy(v) for n, v in zip(names, got)}
        else:
            self.eval()
            out = self.forward(self.featurize(pixels))
        return torch.sigmoid(out["logit"].float()).cpu().numpy(), out

    def use_onnx(self, path) -> "Detector":
        """Score through an exported ONNX graph (``aigi export``) with onnxruntime instead of torch."""
        from aigi.export import onnx_session

        self._onnx = onnx_session(path, self.device_name)
        return self

    def preprocess_size(self) -> int:
        """The side of the square the detector's preprocessing produces (what an exported graph takes)."""
        return int(self.backbone.preprocess.crop)

    def _score_paths(self, paths: list, load: Callable, batch_size: int,
                     progress: Callable[[int], None] | None):
        """Decode ahead of the model and score in batches; ``load(path)`` returns (sha256, [views]).

        Yields ``(index, sha256, raw p_fake of each view, forward output, row of its first view)``
        per scored file, and ``(index, None, error message, None, None)`` per failure, whether the
        file could not be decoded or the model failed on its batch (the other batches go on).
        """
        for batch in iter_batches(paths, load, batch_size):
            ok = []
            for i, x in batch:
                if isinstance(x, Exception):
                    yield i, None, (x.reason if isinstance(x, ImageDecodeError) else f"{type(x).__name__}: {x}"), None, None
                else:
                    ok.append((i, x))
            if ok:
                try:
                    raw, out = self.score_pixels(np.stack([v for _, (_, views) in ok for v in views]))
                except Exception as e:  # noqa: BLE001 - a failing batch must not lose the others
                    for i, _ in ok:
                        yield i, None, f"model failed on this batch: {e}", None, None
                else:
                    row = 0
                    for i, (sha, views) in ok:
                        yield i, sha, raw[row:row + len(views)], out, row
                        row += len(views)
            if progress:
                progress(len(batch))

    def predict(self, paths: Sequence[str], threshold: float | None = None, fpr: float | None = None,
                unsure_band: float | None = None, ensemble: bool = False, batch_size: int = 16,
                limits: DecodeLimits = DEFAULT_LIMITS,
                progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """One record per path, in order (see :mod:`aigi.records`); bad files get ``verdict="error"``.

        ``p_fake`` is calibrated (``calibration.json``). ``unsure_band`` (default: the stored one) turns
        scores near the threshold into ``unsure``; ``ensemble`` also scores mild degradations of each
        image (JPEG q85, 0.75x, slight blur) and answers ``unsure`` when the verdict flips under one.
        """
        paths = [str(p) for p in paths]
        return self._records(paths, lambda p: load_image(p, limits), threshold, fpr, unsure_band, ensemble,
                             batch_size, progress)

    def predict_decoded(self, images: Sequence, names: Sequence[str], threshold: float | None = None,
                        fpr: float | None = None, unsure_band: float | None = None, ensemble: bool = False,
                        batch_size: int = 16) -> list[dict[str, Any]]:
        """``predict`` for images already decoded (``io.DecodedImage``, e.g. uploads held in memory);
        ``names`` fill the records' ``path`` field and are never opened."""
        return self._records(list(range(len(images))), lambda i: images[i], threshold, fpr, unsure_band, ensemble,
                             batch_size, None, [str(n) for n in names])

    def _records(self, keys: list, decode: Callable, threshold, fpr, unsure_band, ensemble, batch_size, progress,
                 names: list[str] | None = None) -> list[dict[str, Any]]:
        from aigi.records import verdict_for
        from aigi.transforms import MILD_DEGRADATIONS

        cal = self.calibration
        thr = cal.threshold_for(threshold, fpr)
        band = cal.unsure_band if unsure_band is None else float(unsure_band)
        names = names or [str(k) for k in keys]
        variants = list(MILD_DEGRADATIONS.items()) if ensemble else []

        def load(key):
            img = decode(key)
            return img.sha256, [self.preprocess(img.image)] + [self.preprocess(f(img.image)) for _, f in variants]

        records: list[dict[str, Any] | None] = [None] * len(keys)
        common = {"threshold": thr, "detector": self.name, "detector_version": self.version}
        for i, sha, result, out, row in self._score_paths(keys, load, batch_size, progress):
            if sha is None:
                records[i] = make_record(names[i], error=result, **common)
                continue
            p = cal.apply(result)
            clean = float(p[0])
            extra = self.extra_fields(out, row)
            reason = None
            if variants:
                alt = {name: float(q) for (name, _), q in zip(variants, p[1:])}
                extra["ensemble_p_fake"] = alt
                flips = [f"{n} gives {q:.3f}" for n, q in alt.items() if verdict_for(q, thr) != verdict_for(clean, thr)]
                if flips:
                    reason = f"verdict changes under mild degradation ({'; '.join(flips)})"
            records[i] = make_record(names[i], sha256=sha, p_fake=clean, unsure_band=band, unsure_reason=reason,
                                     **common, **extra)
        return records  # type: ignore[return-value]

    def score_manifest(self, manifest, batch_size: int = 16, progress: Callable[[int], None] | None = None,
                       perturb: tuple[str, Callable] | None = None) -> tuple[np.ndarray, list[str | None]]:
        """Raw (uncalibrated) p_fake for every sample (NaN where the file failed) and per-sample
        errors; ``perturb=(key, fn)`` degrades each decoded image first. Detectors with a feature
        cache override this to reuse cached features."""
        paths = [s.path for s in manifest]

        def load(path: str):
            d = load_image(path)
            return d.sha256, [self.preprocess(perturb[1](d.image) if perturb else d.image)]

        p = np.full(len(paths), np.nan)
        errors: list[str | None] = [None] * len(paths)
        for i, sha, result, _, _ in self._score_paths(paths, load, batch_size, progress):
            if sha is None:
                errors[i] = f"{paths[i]}: {result}"
            else:
                p[i] = result[0]
        return p, errors

    def calibrated_scores(self, manifest, perturb: tuple[str, Callable] | None = None,
                          progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[str | None]]:
        """Calibrated p_fake for every sample (NaN where the file failed) and per-sample errors."""
        raw, errors = self.score_manifest(manifest, progress=progress, perturb=perturb)
        p = np.full(raw.shape, np.nan)
        ok = ~np.isnan(raw)
        p[ok] = self.calibration.apply(raw[ok])
        return p, errors

    # --- persistence ------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``calibration.json`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(d / WEIGHTS_FILE), metadata={"detector": self.name})
        meta = {"format_version": FORMAT_VERSION, "detector": self.name, "parity": self.parity,
                "config": dataclasses.asdict(self.config), "training": self.training_info}
        (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=_jsonable))
        self.calibration.save(d)
        self._version = _weights_version(d)
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> "Detector":
        """Load a directory written by ``save_pretrained`` (safetensors only; nothing is unpickled)."""
        d = Path(directory)
        cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
        if not cfg_path.is_file() or not w_path.is_file():
            raise FileNotFoundError(f"{d}: not a saved detector (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        meta = json.loads(cfg_path.read_text())
        klass = get_detector_class(meta["detector"]) if cls is Detector else cls
        if klass.name != meta["detector"]:
            raise ValueError(f"{d} holds a {meta['detector']!r} detector, not {klass.name!r}")
        config = _config_from_dict(klass.Config, meta.get("config", {}))
        det = klass(config)
        state = load_file(str(w_path))
        missing, unexpected = det.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{w_path}: weights do not match the {klass.name} model "
                             f"(missing {missing}, unexpected {unexpected})")
        det.training_info = meta.get("training", {})
        det.parity = bool(meta.get("parity", False))
        det.calibration = Calibration.load(d)
        det._version = _weights_version(d)
        det.eval()
        return det.to_device(device)


def _config_from_dict(config_cls, data: dict):
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} options {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return config_cls(**kwargs)


def _weights_version(d: Path) -> str:
    """``<dir name>@<hash of weights + calibration>``: a recalibrated detector is a new version."""
    h = hashlib.sha256((d / WEIGHTS_FILE).read_bytes())
    cal = d / "calibration.json"
    if cal.is_file():
        h.update(cal.read_bytes())
    return f"{d.name}@{h.hexdigest()[:12]}"


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    return str(o)
