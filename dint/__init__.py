"""dint: post-training as distributional intervention, measured against reference states."""
from . import config, divergence, paths, report, stats  # noqa: F401

__version__ = "0.1.0"
