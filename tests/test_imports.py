"""The package's shape: every module imports in a fresh interpreter in any order, no import cycle, no upward import.

The layers, lowest first (a module may import from its own layer or a lower one, at import time or lazily):

    _version, exceptions, _utils  <  data  <  features, degrade  <  evaluation  <  models  <  store  <  backends
    <  verifier  <  scoring  <  pretrained  <  demo, cli, web

``models`` may use ``evaluation.metrics`` (plain numpy: a validation EER while training) but nothing else above
``features``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "speakerid"
LAYERS = [
    {"_version", "exceptions", "_utils"},
    {"data"},
    {"features", "degrade"},
    {"evaluation"},
    {"models"},
    {"store"},
    {"backends"},
    {"verifier"},
    {"scoring"},
    {"pretrained"},
    {"demo", "cli", "web", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """speakerid modules imported by a module (resolved to modules, not names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = []

    def collect(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)) and not (top_level_only and in_function):
                nodes.append(child)
            collect(child, inside)

    collect(tree, False)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("speakerid"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("speakerid"):
            assert node.level == 0, f"{module}: relative import"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    found.discard(module)
    return {m for m in found if m in MODULES}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_is_in_a_layer():
    assert {_area(m) for m in MODULES} - {"__init__"} <= set(RANK)


def test_no_import_cycle_at_import_time():
    graph = {m: _imports(p, m, top_level_only=True) for m, p in MODULES.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_upward_imports():
    bad = []
    for module, path in MODULES.items():
        area = _area(module)
        if area == "__init__":
            continue
        for imported in _imports(path, module, top_level_only=False):
            other = _area(imported)
            if other == "__init__":
                bad.append(f"{module} imports the package root")
            elif RANK[other] > RANK[area]:
                bad.append(f"{module} ({area}) imports {imported} ({other})")
            elif area == "models" and other == "evaluation" and imported != "speakerid.evaluation.metrics":
                bad.append(f"{module} imports {imported}: models may use evaluation.metrics only")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("order", ["alphabetical", "reverse"])
def test_every_module_imports_in_a_fresh_interpreter(order):
    names = sorted(m for m in MODULES if m != "speakerid.__main__")
    if order == "reverse":
        names.reverse()
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                            cwd=PACKAGE.parent, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_package_shape():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 450, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{path.relative_to(PACKAGE)} has no module docstring"
