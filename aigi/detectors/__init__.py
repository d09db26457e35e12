"""Detectors, one file per method. Importing this package registers them all."""

from aigi.detectors.base import REGISTRY, Detector, get_detector_class, register
from aigi.detectors import univfd  # noqa: F401,E402 - registers "univfd"

__all__ = ["REGISTRY", "Detector", "get_detector_class", "register"]
