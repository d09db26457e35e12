"""ITEM: the detector (``model``) and its training side (``training``: alignment slice, lit-space alignment,
cached view features)."""

from aigi.detectors.item.model import ITEM, ITEMConfig
from aigi.detectors.item.training import alignment_slice

__all__ = ["ITEM", "ITEMConfig", "alignment_slice"]
