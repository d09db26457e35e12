"""The detector contract.

A detector is a ``torch.nn.Module`` with a ``Config`` dataclass and four stages, run in this order by
the one scoring engine (:mod:`aigi.scoring`):

- ``inputs(image) -> dict[str, ndarray]``: one prepared ``PIL.Image`` -> named arrays (runs in the
  decoding threads; e.g. the backbone's preprocessed pixels, native-resolution crops);
- ``features(inputs) -> dict``: a batch of inputs -> the frozen, cacheable stage (e.g. backbone
  features); cached under ``feature_key()`` (``None``: never cached), fields ``cached_features``;
- ``forward(features) -> dict``: the trained part: ``logit`` [B] always, ``loss`` when the batch has
  ``label``, ``mask`` when ``has_mask``, ``branch_logits`` when ``has_branches``;
- ``fit(manifest, train_config)``: training; ``fit_validation`` when ``has_validation_stage``;
  ``reserved``/``pretrain`` when ``reserves_samples``.

Capabilities are class attributes, read by the CLI, the service and the exporter instead of probing.
Learned state that is not a tensor (ITEM's aligned vocabulary) goes through ``get_state``/``set_state``
into ``state.json``, never into the Config. Saving and loading: :mod:`aigi.detectors.saved`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from aigi.calibration import Calibration
from aigi.contract import has_backbone
from aigi.detectors import saved
from aigi.io import DEFAULT_LIMITS, DecodeLimits

if TYPE_CHECKING:
    from PIL import Image

    from aigi.config import TrainConfig
    from aigi.data.manifest import Manifest


class Detector(torch.nn.Module):
    """Base class; see the module docstring for what a subclass implements."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]

    # --- capabilities ------------------------------------------------------------------
    has_mask: ClassVar[bool] = False  # forward gives a per-patch "mask" (heatmaps, --explain)
    has_branches: ClassVar[bool] = False  # forward gives "branch_logits"
    exportable: ClassVar[bool] = False  # export_module() gives one ONNX-traceable module over pixels
    has_validation_stage: ClassVar[bool] = False  # fit_validation fits a second stage on a validation split
    reserves_samples: ClassVar[bool] = False  # reserved()/pretrain() keep samples out of every split
    # the feature cache: which fields of features() it stores, under which folder
    cached_features: ClassVar[tuple[str, ...]] = ("features",)
    feature_kind: ClassVar[str] = "features"

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.calibration = Calibration()
        self.training_info: dict[str, Any] = {}
        self.device_name = "cpu"
        self._parity = False  # re-encode every input identically first (see transforms.parity_image)
        self._backbone = None
        self._weights_version = ""  # (nn.Module has its own _version)
        self.onnx = None  # an onnxruntime session after use_onnx()

    # --- the stages ----------------------------------------------------------------------
    def inputs(self, image: Image.Image) -> dict[str, np.ndarray]:
        """A prepared image -> named arrays (default: the backbone's preprocessed ``pixels``)."""
        return {"pixels": self.backbone.preprocess(image)}

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        raise NotImplementedError

    def feature_key(self) -> str | None:
        """What the features depend on besides the image and its view (None: do not cache them)."""
        return None

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, manifest: Manifest, train_config: TrainConfig, progress: Callable[[int], None] | None = None) -> dict:
        """Train on ``manifest``; return a dict describing the run (stored in training.json)."""
        raise NotImplementedError

    def extra_fields(self, out: dict[str, Any], i: int) -> dict[str, Any]:
        """Method-specific record fields for row ``i`` of a forward output."""
        return {}

    def fit_validation(self, val_set: Manifest, train_config: TrainConfig) -> dict | None:
        """The second stage on the validation split (``has_validation_stage``), before calibration."""
        return None

    def reserved(self, manifest: Manifest) -> np.ndarray:
        """Indices of ``manifest`` kept for ``pretrain`` and out of every split (``reserves_samples``)."""
        return np.array([], dtype=int)

    def pretrain(self, reserved: Manifest, train_config: TrainConfig) -> dict | None:
        """A first stage on the reserved samples, before ``fit``."""
        return None

    # The raw logit at which the detector's own decision rule flips, when it has one (AlignGemini's
    # OR rule); calibration then stores that point, mapped, as the default threshold.
    raw_decision_logit: float | None = None

    def get_state(self) -> dict[str, Any]:
        """Learned state that is not a tensor, for ``state.json`` (JSON-serialisable)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned."""

    # --- plumbing ----------------------------------------------------------------------------
    _backbone_lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def backbone(self):
        """The frozen encoder, built once. Decoding threads ask for it at once (``inputs``); building it in
        two threads at a time raced in transformers' lazy imports, so one thread builds it under a lock."""
        if self._backbone is None:
            if not has_backbone(self.config):
                raise AttributeError(f"{self.name} reads pixels alone: its settings name no frozen backbone")
            with self._backbone_lock:
                if self._backbone is None:
                    from aigi.backbones import load_backbone

                    backbone = load_backbone(self.config.backbone, self.device_name, self.backbone_runtime)
                    self.backbone_loaded(backbone)
                    self._backbone = backbone
        return self._backbone

    backbone_runtime: str = "auto"  # how ``load_backbone`` runs it ("torch" when the detector changes its weights)

    def backbone_loaded(self, backbone) -> None:
        """Called once on the freshly loaded backbone, before any image reaches it (a detector that ships an
        adapter merges it here)."""

    def decode_short_side(self) -> int:
        """The shorter side a large JPEG may be decoded at for scoring (``io.decode_bytes``: DCT scaling), or 0
        when the detector reads the image at its own resolution (native-scale crops, pixel residuals)."""
        return 0

    def ready(self) -> Detector:
        """Build what scoring needs (the backbone) now, in the caller's thread: a failure to build the model is
        the run's failure, raised here, never recorded against an image."""
        if self.onnx is None and has_backbone(self.config):
            _ = self.backbone  # (an exported graph carries its own backbone)
        return self

    @property
    def preprocessing(self):
        """How the backbone sees an image (resize, centre crop, normalise): what a heatmap is drawn over."""
        from aigi.backbones import preprocess_for

        return preprocess_for(self.config.backbone, lambda: self.backbone)

    @property
    def parity(self) -> bool:
        """Whether every decoded image is re-encoded identically first (``transforms.parity_image``): set from
        the training config or the saved settings; branches (:meth:`branches`) follow it."""
        return self._parity

    @parity.setter
    def parity(self, value: bool) -> None:
        self._parity = bool(value)
        for b in self.branches():
            b.parity = value

    def branches(self) -> tuple[Detector, ...]:
        """Detectors this one is built from (AlignGemini's two), which share its parity and device."""
        return ()

    def prepare(self, img: Image.Image) -> Image.Image:
        """What every decoded image goes through first: parity re-encoding, when the detector was
        trained with it (see ``transforms.parity_image``)."""
        if self.parity:
            from aigi.transforms import parity_image

            img = parity_image(img)
        return img

    def to_device(self, device: str) -> Detector:
        self.device_name = device
        self._backbone = None
        for b in self.branches():
            b.to_device(device)
        return self.to(device)

    def preprocess_size(self) -> int:
        """The side of the square the detector's preprocessing produces (what an exported graph takes)."""
        return int(self.backbone.preprocess.crop)

    def use_onnx(self, path) -> Detector:
        """Score through an exported ONNX graph (``aigi export``) with onnxruntime instead of torch."""
        from aigi.scoring import onnx_session

        self.onnx = onnx_session(path, self.device_name)
        return self

    @property
    def version(self) -> str:
        return self._weights_version or "untrained"

    # --- the engine, for convenience ---------------------------------------------------------
    def predict(
        self,
        images,
        threshold: float | None = None,
        fpr: float | None = None,
        unsure_band: float | None = None,
        ensemble: bool = False,
        batch_size: int = 16,
        limits: DecodeLimits = DEFAULT_LIMITS,
        progress: Callable[[int], None] | None = None,
        provenance: bool = True,
    ) -> list[dict[str, Any]]:
        """One record per image, in order (see :func:`aigi.scoring.predict`). ``images``: a path, bytes, a
        ``PIL.Image``, a uint8 numpy array [H, W, 3], or a list of these; anything else is a ``TypeError``.
        Bad files get ``verdict="error"`` with the reason; they never stop the others. ``provenance``: read
        what each file declares (C2PA, generator metadata, watermark) into the record; a verified or
        unambiguous AI declaration decides the verdict, the detector's kept as ``detector_verdict``."""
        from aigi.scoring import predict_images

        return predict_images(
            self,
            images,
            limits,
            threshold=threshold,
            fpr=fpr,
            unsure_band=unsure_band,
            ensemble=ensemble,
            batch_size=batch_size,
            progress=progress,
            provenance=provenance,
        )

    def predict_decoded(
        self,
        images: Sequence,
        names: Sequence[str],
        threshold: float | None = None,
        fpr: float | None = None,
        unsure_band: float | None = None,
        ensemble: bool = False,
        batch_size: int = 16,
    ) -> list[dict[str, Any]]:
        """``predict`` for images already decoded (``io.DecodedImage``, e.g. uploads held in memory);
        ``names`` fill the records' ``path`` field and are never opened."""
        from aigi.scoring import predict

        return predict(
            self,
            list(range(len(images))),
            lambda i: images[i],
            [str(n) for n in names],
            threshold=threshold,
            fpr=fpr,
            unsure_band=unsure_band,
            ensemble=ensemble,
            batch_size=batch_size,
        )

    # --- persistence ---------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` (settings), ``model.safetensors``, ``state.json``, ``calibration.json`` and
        ``training.json`` (the run's record)."""
        return saved.save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> Detector:
        """Load a directory written by ``save_pretrained`` (safetensors only; nothing is unpickled)."""
        return saved.from_pretrained(directory, device, None if cls is Detector else cls)
