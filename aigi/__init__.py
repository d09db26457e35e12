"""aigi: detect AI-generated images, and keep working on generators never seen in training.

>>> from aigi import load_detector
>>> det = load_detector()            # the embedded default
>>> det.predict(["photo.jpg"])       # one record per image (see aigi.records)
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

DEFAULT_DETECTOR = "univfd"
WEIGHTS_DIR = Path(__file__).parent / "weights"


# Shipped detectors not fit to give verdicts: at the threshold the per-source rule sets they catch few fakes, or
# they flag more than 10 % of a real source left out of their training (benchmarks/results/methods-holdout.md).
# `--help` marks them and the CLI says why when one is loaded. Name -> the measurement, in a line.
EXPERIMENTAL: dict[str, str] = {
    "pixel": "at its threshold it catches only 9 % of fakes "
    "(left out of training, up to 9 % of a real source called fake)",
    "item": "at its threshold it catches only 7 % of fakes "
    "(left out of training, up to 8 % of a real source called fake)",
    "gamma": "at its threshold it catches only 8 % of fakes "
    "(left out of training, up to 5 % of a real source called fake)",
    "aligngemini": "at its threshold it catches only 19 % of fakes "
    "(left out of training, up to 19 % of a real source called fake)",
}


def shipped_detectors() -> list[str]:
    """Registered names that ship trained weights inside the package."""
    return (
        sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "config.json").is_file()) if WEIGHTS_DIR.is_dir() else []
    )


def load_detector(detector: str | None = None, device: str | None = None):
    """A trained detector: ``None`` for the embedded default, a registered name that ships
    weights, or a directory written by ``save_pretrained``."""
    from aigi.detectors.base import Detector
    from aigi.detectors.registry import get_detector_class
    from aigi.device import resolve_device

    dev = resolve_device(device)
    name = detector or DEFAULT_DETECTOR
    path = Path(name).expanduser()
    if path.is_dir():
        return Detector.from_pretrained(path, dev)
    if ("/" in name or name.startswith(".")) and not path.exists():
        raise FileNotFoundError(f"{name}: no such detector directory")
    get_detector_class(name)  # unknown names fail here with a suggestion
    shipped = WEIGHTS_DIR / name
    if not (shipped / "config.json").is_file():
        raise FileNotFoundError(
            f"detector {name!r} is known but ships no trained weights; train one with "
            f"`aigi train --config configs/{name}.yaml --data MANIFEST --out DIR` and pass --detector DIR"
        )
    return Detector.from_pretrained(shipped, dev)


__all__ = ["load_detector", "shipped_detectors", "DEFAULT_DETECTOR", "EXPERIMENTAL", "__version__"]
