"""Where computation runs: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch


def resolve_device(device: str | None = None) -> str:
    """``None``/``"auto"`` picks ``cuda`` if a GPU is visible, else ``cpu``; anything else is validated."""
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} was asked for, but no CUDA GPU is visible to torch")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return device
