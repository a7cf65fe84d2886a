"""Statistics with intervals: result objects with scipy's field names, wrapping scipy/statsmodels.

Every estimate dint reports comes with a confidence interval, and every test with its p-value;
results are frozen dataclasses (``statistic``, ``pvalue``, ``confidence_interval.low/high``,
``method``, ``n``), never bare tuples. Randomness only through an explicit ``rng``. A quantity the
data cannot estimate (a correlation of a constant, a test without information) is NaN, with the
``reason`` in words; what is defined is still reported.
"""
from __future__ import annotations

from ..lazy import submodules
from .clustered import cluster_bootstrap
from .intervals import bootstrap_mean, paired_bootstrap, pearson, proportion
from .multiple import adjust
from .permutation import paired_permutation_test
from .result import ConfidenceInterval, Result

__all__ = [
    "ConfidenceInterval",
    "Result",
    "adjust",
    "bootstrap_mean",
    "cluster_bootstrap",
    "paired_bootstrap",
    "paired_permutation_test",
    "pearson",
    "proportion",
]
# the modules behind them, and the other statistics, load on first use
__getattr__, __dir__ = submodules(__name__, ("checks", "clustered", "fits", "intervals", "multiple", "permutation",
                                             "proportions", "resampling", "result"), globals())
