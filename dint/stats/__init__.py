"""Statistics with intervals: result objects with scipy's field names, wrapping scipy/statsmodels.

Every estimate dint reports comes with a confidence interval, and every test with its p-value;
results are frozen dataclasses (``statistic``, ``pvalue``, ``confidence_interval.low/high``,
``method``, ``n``), never bare tuples. Randomness only through an explicit ``rng``. A quantity the
data cannot estimate (a correlation of a constant, a test without information) is NaN, with the
``reason`` in words; what is defined is still reported.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..lazy import submodules

if TYPE_CHECKING:   # where each name lives; it is imported on first use (scipy and statsmodels take a second)
    from .clustered import cluster_bootstrap, share_test
    from .intervals import bootstrap_mean, paired_bootstrap, pearson, proportion, ratio_of_means
    from .multiple import adjust, holm
    from .permutation import paired_permutation_test
    from .pooling import Pooled, agreement, mixedlm_components, pool, prediction_interval
    from .result import ROW, ConfidenceInterval, Result, results

__all__ = [
    "ROW",
    "ConfidenceInterval",
    "Pooled",
    "Result",
    "adjust",
    "agreement",
    "bootstrap_mean",
    "cluster_bootstrap",
    "holm",
    "mixedlm_components",
    "paired_bootstrap",
    "paired_permutation_test",
    "pearson",
    "pool",
    "prediction_interval",
    "proportion",
    "ratio_of_means",
    "results",
    "share_test",
]
_HOME = {"ROW": "result", "ConfidenceInterval": "result", "Result": "result", "adjust": "multiple", "bootstrap_mean": "intervals",
         "cluster_bootstrap": "clustered", "holm": "multiple", "paired_bootstrap": "intervals", "paired_permutation_test": "permutation",
         "pearson": "intervals", "proportion": "intervals", "ratio_of_means": "intervals", "results": "result",
         "share_test": "clustered", "Pooled": "pooling", "agreement": "pooling", "mixedlm_components": "pooling",
         "pool": "pooling", "prediction_interval": "pooling"}
_modules, _dir = submodules(__name__, ("checks", "clustered", "fits", "intervals", "multiple", "permutation",
                                          "pooling", "proportions", "resampling", "result"), globals())


def __getattr__(name):
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    return _modules(name)


def __dir__():
    return sorted({*_dir(), *_HOME})
