"""dint: post-training as distributional intervention, measured against reference states.

Submodules load on first use (``dint.stats``, ``dint.config``, ...), so that ``import dint`` is
quick and torch is imported only by the modules that run a model.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("artifacts", "bench", "cache", "calibration", "card", "cli", "compare", "composition", "config", "countries",
               "divergence", "diversity", "experiments", "fits", "interventions", "macros", "models", "notebooks",
               "paper", "paths", "plot", "proportions", "realworld", "reasoning", "reference", "reliability",
               "report", "resampling", "resources", "sampling", "scoring", "selection", "stacks", "stats",
               "taxonomy", "validate", "verify", "world")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dint' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
