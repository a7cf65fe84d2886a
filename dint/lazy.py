"""Deferred imports of the heavy libraries.

torch and transformers take about ten seconds to import on a small CPU. Most of dint's commands
never touch a model — reading a profile, running the statistics, writing macros, building the
paper, starting a notebook — and every step of the pipeline is a new process, so the modules
that wrap models import those libraries on first use instead of at import time.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType


class LazyModule(ModuleType):
    """A module imported the first time one of its attributes is read.

    ``torch = LazyModule("torch")`` at the top of a module; ``torch.tensor(...)`` inside a function
    imports torch then (once; later reads go straight to the module).
    """

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_module"] = None

    def _load(self) -> ModuleType:
        if self.__dict__["_module"] is None:
            self.__dict__["_module"] = importlib.import_module(self.__name__)
        return self.__dict__["_module"]

    def __getattr__(self, attr: str):
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "imported" if self.__dict__["_module"] is not None else "not imported yet"
        return f"<lazy module {self.__name__!r} ({state})>"


def _under(context: str, f):
    """``f`` run inside ``torch.<context>()``, importing torch at its first call."""
    @functools.wraps(f)
    def run(*args, **kwargs):
        import torch

        with getattr(torch, context)():
            return f(*args, **kwargs)
    return run


def no_grad(f):
    """``@torch.no_grad()`` for a function or method, importing torch at its first call rather than
    when the module that defines it is imported."""
    return _under("no_grad", f)


def inference_mode(f):
    """``@torch.inference_mode()``, importing torch at the first call rather than at import."""
    return _under("inference_mode", f)


def submodules(package: str, names, namespace: dict):
    """``__getattr__`` and ``__dir__`` for a package whose submodules ``names`` load on first use.

    ``__getattr__, __dir__ = submodules(__name__, ("stats", ...), globals())`` in a package's
    ``__init__``: ``package.stats`` imports ``package.stats`` the first time it is read.
    """
    names = tuple(names)

    def __getattr__(name):
        if name in names:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*namespace, *names})
    return __getattr__, __dir__
