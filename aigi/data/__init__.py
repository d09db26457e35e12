"""Data sets: manifests, the folder layouts users have, and splits by generator."""

from aigi.data.manifest import Manifest, ManifestError, Sample, load_data
from aigi.data.splits import leave_generator_out, stratified_split

__all__ = ["Manifest", "ManifestError", "Sample", "load_data", "leave_generator_out", "stratified_split"]
