"""A trained detector on disk: ``config.json`` (the settings only) + ``model.safetensors`` (+ ``state.json``
for learned state that is not a tensor, ``calibration.json``, and ``training.json``: the record of the run that
made it). Nothing is ever unpickled. The version hashes everything that changes a score: the settings, the
weights, the state and the calibration (not the record)."""

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
TRAINING_FILE = "training.json"
FORMAT_VERSION = 2  # 1: the training record inside config.json (still read)


def save_pretrained(det, directory: str | Path) -> Path:
    """Write ``det``'s config, weights, learned state and calibration into ``directory`` (files 0644)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in det.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"detector": det.name})
    meta = {"format_version": FORMAT_VERSION, **settings(det.name, det.parity, dataclasses.asdict(det.config))}
    (d / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=_jsonable))
    for name, content, indent in ((STATE_FILE, det.get_state(), 1), (TRAINING_FILE, det.training_info, 2)):
        if content:
            (d / name).write_text(json.dumps(content, indent=indent, default=_jsonable))
        elif (d / name).exists():
            (d / name).unlink()
    det.calibration.save(d)
    for name in (CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, TRAINING_FILE, "calibration.json"):
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
    record = d / TRAINING_FILE
    det.training_info = json.loads(record.read_text()) if record.is_file() else meta.get("training", {})
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


def settings(detector: str, parity: bool, config: dict) -> dict:
    """What ``config.json`` holds besides its format: the detector's name, parity and its Config."""
    return {"detector": detector, "parity": parity, "config": config}


def weights_version(d: Path) -> str:
    """``<dir name>@<hash of settings + weights + state + calibration>``: a changed setting or a recalibrated
    detector is a new version; the training record is not part of it. The settings are hashed as canonical
    JSON, so the layout of ``config.json`` (and a format-1 file's training record) does not count."""
    meta = json.loads((d / CONFIG_FILE).read_text())
    canonical = settings(meta["detector"], bool(meta.get("parity", False)), meta.get("config", {}))
    h = hashlib.sha256(json.dumps(canonical, sort_keys=True, default=_jsonable).encode())
    h.update((d / WEIGHTS_FILE).read_bytes())
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
