"""Detectors by name: ``@register("name")`` on the class, ``get_detector_class(name)`` to find it."""

from __future__ import annotations

import difflib
from typing import Any

REGISTRY: dict[str, type[Any]] = {}


def register(name: str):
    """Class decorator: make a detector available by ``name``."""

    def wrap(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"detector name {name!r} is already registered by {REGISTRY[name].__name__}")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


class UnknownDetectorError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def get_detector_class(name: str) -> type[Any]:
    """The class registered as ``name``; an unknown name fails with the nearest known one."""
    import aigi.detectors  # noqa: F401 - importing registers the built-in detectors

    if name in REGISTRY:
        return REGISTRY[name]
    near = difflib.get_close_matches(name, REGISTRY, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise UnknownDetectorError(f"unknown detector {name!r}.{hint} Known: {', '.join(sorted(REGISTRY))}")
