"""The package's layers import one way: a module may import its own unit and lower layers only, and no two
units import each other (directly or around a cycle). Lazy imports inside functions count too.

A unit is a top-level module (``aigi/io.py`` -> ``io``) or a subpackage (``aigi/detectors/...`` ->
``detectors``); ``aigi`` itself is the public API (``load_detector``). ARCHITECTURE.md shows the same order.
"""

import ast
from pathlib import Path

import pytest

import aigi

PACKAGE = Path(aigi.__file__).parent

LAYERS = [
    {"paths", "device", "records", "io", "transforms", "calibration", "pipeline", "config", "provenance", "contract"},
    {"data", "samples"},  # manifests, splits, the demo sample
    {"backbones", "augment", "misalignment", "attribution"},  # frozen encoders, training-set builders, pure math
    {"training"},  # feature cache, gradient loop, alignment of the lit space
    {"captions"},  # ITEM's captioners (their cache is training.cache's)
    {"scoring"},  # the one scoring engine
    {"evaluation"},  # metrics, fusion, robustness, audit, format swap, localisation, reports
    {"detectors"},  # the methods
    {"workflows", "export", "explain"},  # training a detector end to end, protocols, compare; ONNX; heatmaps
    {"aigi", "serve", "scale", "cli"},  # what users call
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "aigi":
        return None
    return parts[1] if len(parts) > 1 else "aigi"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every ``aigi`` module ``path`` imports, with the line (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            # "from aigi import detectors" imports the subpackage
            out += [
                (f"{mod}.{a.name}", node.lineno) for a in node.names if mod == "aigi" and (PACKAGE / a.name).is_dir()
            ]
    return [(m, line) for m, line in out if m == "aigi" or m.startswith("aigi.")]


def unit_graph():
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = unit_of(module_name(path))
        for mod, line in imports_of(path):
            dst = unit_of(mod)
            if dst is None or dst == src:
                continue
            if mod == "aigi" and src != "aigi":
                # "from aigi import X" where X is a subpackage was resolved above; a name from the root is the API
                names = {
                    a.name
                    for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, ast.ImportFrom) and n.module == "aigi" and n.lineno == line
                    for a in n.names
                }
                if all((PACKAGE / n).is_dir() for n in names):
                    continue
            edges.setdefault(src, set()).add(dst)
            where.setdefault((src, dst), f"{path.relative_to(PACKAGE.parent)}:{line}")
    return edges, where


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units - set(LAYER) == set(), "add new modules to LAYERS (and to ARCHITECTURE.md)"


def test_no_import_goes_up_a_layer():
    edges, where = unit_graph()
    upward = [
        f"{where[(a, b)]}: {a} (layer {LAYER[a]}) imports {b} (layer {LAYER[b]})"
        for a, targets in edges.items()
        for b in targets
        if LAYER[b] > LAYER[a]
    ]
    assert not upward, "\n".join(upward)


def test_no_cycle_between_units():
    edges, where = unit_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                cycle = stack[stack.index(v) :] + [v]
                pytest.fail("import cycle: " + " -> ".join(f"{a} ({where[(a, b)]})" for a, b in zip(cycle, cycle[1:])))
            if v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            visit(u)


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The walk sees lazy imports inside functions, and relative ones."""
    f = tmp_path / "aigi" / "io.py"
    f.parent.mkdir()
    f.write_text("def load():\n    from .detectors import base\n    import aigi.cli\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "aigi")
    assert [m for m, _ in imports_of(f)] == ["aigi.detectors", "aigi.cli"]


def test_only_the_engine_prepares_images():
    """Parity (``Detector.prepare``) is applied by the scoring engine alone: code that reads images for a
    detector goes through ``scoring.prepared``/``load_prepared``, so no caller can forget it or apply it twice."""
    callers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE / "scoring":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "prepare":
                callers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert callers == []


def test_no_module_passes_400_lines():
    """A module past 400 lines is split by what its parts do (a package, like ``scoring/`` or ``serve/``)."""
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}
