"""What a detector owes the rest of aigi, written down as types (the bottom layer: it imports nothing of aigi).

:class:`DetectorContract` is what every detector has; ``aigi.detectors.base.Detector`` implements it and every
registered detector subclasses that. Capabilities that only some detectors have are separate protocols, and
callers ask for the capability, never for a class:

- :class:`MaskHead` — ``forward`` gives a per-patch ``mask`` (``has_mask``), drawn over ``preprocessing``;
- :class:`EvidenceMap` — ``evidence(image)`` splits the logit exactly into per-patch parts and a global term
  (where ``has_evidence_map``: it can depend on the settings);
- :class:`Localiser` — a mask head that can be scored on held-out manipulated images (its manipulation tools,
  recipe and token caches);
- :class:`ModelConfig` — the settings every detector's ``Config`` starts from (``backbone`` optional).

:func:`draws_map` is the one question the CLI, the service and ``explain`` ask before drawing a heatmap.
``aigi.detectors.conformance.check_detector`` checks each declared capability against its protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

NO_BACKBONE = (None, "none")


@dataclass
class ModelConfig:
    """Settings every detector's ``Config`` dataclass has: the frozen encoder it reads, if any (``None`` or
    ``"none"``: it works on pixels alone)."""

    backbone: str | None = None


@runtime_checkable
class DetectorContract(Protocol):
    """Every detector: four stages run by the scoring engine, its calibration and version, its preparation
    (parity) and its declared capabilities."""

    name: ClassVar[str]
    config: Any
    calibration: Any
    training_info: dict[str, Any]
    has_mask: ClassVar[bool]
    has_branches: ClassVar[bool]
    exportable: ClassVar[bool]
    has_validation_stage: ClassVar[bool]
    reserves_samples: ClassVar[bool]
    cached_features: ClassVar[tuple[str, ...]]
    feature_kind: ClassVar[str]

    @property
    def version(self) -> str: ...

    @property
    def parity(self) -> bool: ...

    def inputs(self, image: Any) -> dict[str, np.ndarray]: ...

    def features(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]: ...

    def feature_key(self) -> str | None: ...

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]: ...

    def extra_fields(self, out: dict[str, Any], i: int) -> dict[str, Any]: ...

    def fit(self, manifest: Any, train_config: Any, progress: Callable[[int], None] | None = None) -> dict: ...

    def prepare(self, img: Any) -> Any: ...

    def ready(self) -> Any: ...

    def decode_short_side(self) -> int: ...


@runtime_checkable
class MaskHead(Protocol):
    """``forward`` gives ``mask`` [B, g, g] (per-patch probabilities) over the view ``preprocessing`` makes."""

    has_mask: ClassVar[bool]

    @property
    def preprocessing(self) -> Any: ...


@runtime_checkable
class EvidenceMap(Protocol):
    """An exact split of the logit over the image's patches, where ``has_evidence_map``."""

    @property
    def has_evidence_map(self) -> bool: ...

    @property
    def preprocessing(self) -> Any: ...

    def evidence(self, image: Any) -> dict[str, Any]:
        """A prepared image -> {"contributions": [gh, gw] per-patch parts of the logit, "global": the part that
        is not spatial, "logit": their sum}."""
        ...


@runtime_checkable
class Localiser(Protocol):
    """A mask head scored on held-out manipulated images (``detectors.gamma.localisation``)."""

    has_mask: ClassVar[bool]

    @property
    def preprocessing(self) -> Any: ...

    def manipulation_tools(self) -> Any: ...

    def manipulation_recipe(self) -> Any: ...

    def token_caches(self) -> tuple[Any, Any]: ...

    def encode_tokens(self, pixels: np.ndarray) -> np.ndarray: ...


def draws_map(det: Any) -> bool:
    """Whether a heatmap can be drawn for ``det``'s records: a mask head, or an evidence map its settings allow."""
    return bool(det.has_mask) or (isinstance(det, EvidenceMap) and det.has_evidence_map)


def has_backbone(config: Any) -> bool:
    """Whether a detector's settings name a frozen encoder."""
    return getattr(config, "backbone", None) not in NO_BACKBONE
