"""Training configuration: a typed dataclass read from YAML (``configs/*.yaml``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aigi.transforms import ViewRecipe


class ConfigError(ValueError):
    pass


@dataclass
class TrainConfig:
    """Everything a training run depends on besides the data. Every default is written here once."""

    detector: str = "univfd"
    options: dict[str, Any] = field(default_factory=dict)  # the detector's own Config fields
    views: int = 3  # K seeded augmented views per training image (+ the plain view)
    plain_view: bool = True  # also train on view 0 (the unaugmented image)
    view_recipe: ViewRecipe = field(default_factory=ViewRecipe)
    seed: int = 0
    max_per_generator: int = 0  # > 0: train on at most this many images of every generator and real source
    renders: int = 0  # rendered non-photo reals (charts, UI, documents, code; aigi.data.renders) added, seeded
    # real sources (generator names) whose images each get a fake twin through a shipped autoencoder
    # (augment.reconstruct.reconstruct_sources): real faces on both sides, so "a face" is no evidence
    reconstructions: list[str] = field(default_factory=list)
    val_fraction: float = 0.2  # held out (stratified by generator) for calibration
    parity: bool = False  # re-encode every image identically (256 px square, JPEG q90) before anything else
    calibration: str = "platt"  # none | temperature | platt | isotonic, fitted on the validation split
    unsure_band: float = 0.1  # calibrated scores this close to the threshold are "unsure"
    # > 0: the default threshold is the lowest (at least 0.5) at which no real source of the validation split
    # (with >= 10 images there) has more than this false-positive rate
    max_source_fpr: float = 0.0
    batch_size: int = 16
    device: str = "auto"

    def train_views(self) -> list[int]:
        return ([0] if self.plain_view else []) + list(range(1, self.views + 1))

    def with_options(self, **changes: Any) -> TrainConfig:
        """This recipe with some of the detector's options changed (the others kept); ``self`` is left as it was."""
        return dataclasses.replace(self, options={**self.options, **changes})


def load_train_config(path: str | Path) -> TrainConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from None
    return train_config_from_dict(data, str(p))


def train_config_from_dict(data: dict, where: str = "config") -> TrainConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    data = dict(data)
    if "view_recipe" in data:
        vr = data["view_recipe"] or {}
        vnames = {f.name for f in dataclasses.fields(ViewRecipe)}
        if set(vr) - vnames:
            raise ConfigError(f"{where}: unknown view_recipe keys {sorted(set(vr) - vnames)}")
        data["view_recipe"] = ViewRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in vr.items()})
    return TrainConfig(**data)
