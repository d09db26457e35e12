"""The detectors (importing this package registers them) and their contract."""

from aigi.detectors import aligngemini, gamma, item, pixel, univfd  # noqa: E402,F401 - registers them
from aigi.detectors.base import Detector
from aigi.detectors.registry import REGISTRY, get_detector_class, register

__all__ = ["REGISTRY", "Detector", "get_detector_class", "register"]
