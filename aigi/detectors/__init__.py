"""Detectors, one file per method. Importing this package registers them all."""

from aigi.detectors.base import REGISTRY, Detector, get_detector_class, register
from aigi.detectors import aligngemini, gamma, item, pixel, univfd  # noqa: F401,E402 - registers them

__all__ = ["REGISTRY", "Detector", "get_detector_class", "register"]
