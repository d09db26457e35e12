"""GAMMA: the detector (``model``) and its training data (``variants``)."""

from aigi.detectors.gamma.model import FINETUNE, Gamma, GammaConfig, soft_cross_entropy
from aigi.detectors.gamma.variants import GENERATIVE_KINDS, LABEL_POLICIES, patch_targets, variant_labels

__all__ = [
    "FINETUNE",
    "GENERATIVE_KINDS",
    "LABEL_POLICIES",
    "Gamma",
    "GammaConfig",
    "patch_targets",
    "soft_cross_entropy",
    "variant_labels",
]
