"""A trained detector on disk: ``config.json`` + ``model.safetensors`` (+ ``calibration.json``, and the
state file ``state.json`` for learned state that is not a tensor). Nothing is ever unpickled."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from aigi.calibration import Calibration
from aigi.detectors.registry import get_detector_class

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.json"
FORMAT_VERSION = 1


def save_pretrained(det, directory: str | Path) -> Path:
    """Write ``det``'s config, weights, learned state and calibration into ``directory`` (files 0644)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in det.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"detector": det.name})
    meta = {
        "format_version": FORMAT_VERSION,
        "detector": det.name,
        "parity": det.parity,
        "config": dataclasses.asdict(det.config),
        "training": det.training_info,
    }
    (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=_jsonable))
    learned = det.get_state()
    if learned:
        (d / STATE_FILE).write_text(json.dumps(learned, indent=1, default=_jsonable))
    elif (d / STATE_FILE).exists():
        (d / STATE_FILE).unlink()
    det.calibration.save(d)
    for name in (CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, "calibration.json"):
        if (d / name).is_file():
            os.chmod(d / name, 0o644)  # a shipped or shared detector is readable by all (safetensors writes 0600)
    det._weights_version = weights_version(d)
    return d


def from_pretrained(directory: str | Path, device: str = "cpu", expected: Any = None):
    """Load a directory written by :func:`save_pretrained` (safetensors only)."""
    d = Path(directory)
    cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise FileNotFoundError(f"{d}: not a saved detector (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    meta = json.loads(cfg_path.read_text())
    klass = expected or get_detector_class(meta["detector"])
    if klass.name != meta["detector"]:
        raise ValueError(f"{d} holds a {meta['detector']!r} detector, not {klass.name!r}")
    config = config_from_dict(klass.Config, meta.get("config", {}))
    det = klass(config)
    state_path = d / STATE_FILE
    if state_path.is_file():
        det.set_state(json.loads(state_path.read_text()))
    missing, unexpected = det.load_state_dict(load_file(str(w_path)), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{w_path}: weights do not match the {klass.name} model (missing {missing}, unexpected {unexpected})"
        )
    det.training_info = meta.get("training", {})
    det.parity = bool(meta.get("parity", False))
    det.calibration = Calibration.load(d)
    det._weights_version = weights_version(d)
    det.eval()
    return det.to_device(device)


def config_from_dict(config_cls, data: dict):
    """A detector's Config from a dict; unknown keys are an error that lists the known ones."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} options {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return config_cls(**kwargs)


def weights_version(d: Path) -> str:
    """``<dir name>@<hash of weights + state + calibration>``: a recalibrated detector is a new version."""
    h = hashlib.sha256((d / WEIGHTS_FILE).read_bytes())
    for name in (STATE_FILE, "calibration.json"):
        if (d / name).is_file():
            h.update((d / name).read_bytes())
    return f"{d.name}@{h.hexdigest()[:12]}"


def _jsonable(o: Any):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return str(o)
