"""Detectors by name: ``@register("name")`` on the class, ``get_detector_class(name)`` to find it.

A detector outside this package registers with one line in its own package's ``pyproject.toml``::

    [project.entry-points."aigi.detectors"]
    my-detector = "my_package.my_detector"   # the module whose @register("my-detector") class it is

Installed, it is found by name like the built-in ones (``--detector``, ``configs``, saved directories): a name
that is not registered yet loads the entry points first.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

REGISTRY: dict[str, type[Any]] = {}
ENTRY_POINT_GROUP = "aigi.detectors"
_loaded_plugins: set[str] = set()


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


def load_plugins() -> None:
    """Import every installed :data:`ENTRY_POINT_GROUP` entry point not imported yet (importing registers its
    detector). A plugin that fails to import is a warning naming it, never the end of a run that does not use it."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value in _loaded_plugins:
            continue
        _loaded_plugins.add(ep.value)
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break the built-in detectors
            warnings.warn(f"detector plugin {ep.name!r} ({ep.value}) failed to import: {e}", stacklevel=2)
            continue
        if ep.name not in REGISTRY:
            warnings.warn(f"detector plugin {ep.value} registered no detector named {ep.name!r}", stacklevel=2)


def get_detector_class(name: str) -> type[Any]:
    """The class registered as ``name`` (built in, or an installed plugin: :func:`load_plugins`); an unknown
    name fails with the nearest known one."""
    import aigi.detectors  # noqa: F401 - importing registers the built-in detectors

    if name not in REGISTRY:
        load_plugins()
    if name in REGISTRY:
        return REGISTRY[name]
    near = difflib.get_close_matches(name, REGISTRY, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise UnknownDetectorError(f"unknown detector {name!r}.{hint} Known: {', '.join(sorted(REGISTRY))}")
