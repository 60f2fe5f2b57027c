"""Modules imported on first use, so that ``speakerid --help`` and a single ``verify`` start fast.

pandas, scipy.signal, scipy.ndimage, scipy.special and scipy.stats each take a large share of a second to import,
and most commands need only some of them. :func:`lazy_import` returns a stand-in whose first attribute access
imports the real module (under the import system's own lock, so worker threads may race for it safely) and
whose later accesses go straight to it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading


class _LazyModule:
    __slots__ = ("_name", "_module", "_lock")

    def __init__(self, name: str):
        self._name = name
        self._module = None
        self._lock = threading.Lock()

    def _load(self):
        if self._module is None:
            with self._lock:
                if self._module is None:
                    self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str):
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (loaded)' if self._module is not None else ''}>"


def lazy_import(name: str):
    """A stand-in for the module ``name`` that imports it at its first attribute access.

    Examples
    --------
    >>> json = lazy_import("json")
    >>> json.dumps([1])
    '[1]'
    """
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return _LazyModule(name)


def lazy_exports(package: str, exports: dict):
    """``(__getattr__, __dir__)`` for a package that re-exports ``{name: module}`` on first use (PEP 562).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("pkg", {"dumps": "json"})
    >>> getattr_("dumps")([1])
    '[1]'
    """
    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            if package in sys.modules:  # cached: later lookups skip __getattr__
                sys.modules[package].__dict__[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        module = sys.modules.get(package)
        return sorted(set(vars(module) if module else ()) | set(exports))

    return __getattr__, __dir__
