"""Statistics with intervals: result objects with scipy's field names, wrapping scipy/statsmodels.

Every estimate dint reports comes with a confidence interval, and every test with its p-value;
results are frozen dataclasses (``statistic``, ``pvalue``, ``confidence_interval.low/high``,
``method``, ``n``), never bare tuples. Randomness only through an explicit ``rng``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from .divergence import ConfidenceInterval

__all__ = ["ConfidenceInterval", "Result", "pearson", "proportion", "bootstrap_mean"]


@dataclass(frozen=True)
class Result:
    """An estimate with its interval (and a p-value where a test is made)."""

    statistic: float
    confidence_interval: ConfidenceInterval
    n: int
    method: str
    pvalue: float = float("nan")

    def asdict(self) -> dict:
        """Flat dict for tables and the paper's macros."""
        d = asdict(self)
        ci = d.pop("confidence_interval")
        return {**d, "ci_low": ci["low"], "ci_high": ci["high"]}


def _check_level(confidence_level):
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")


def pearson(x, y, *, confidence_level: float = 0.95, alternative: str = "two-sided") -> Result:
    """Pearson correlation with its Fisher-z interval and test of zero correlation.

    Parameters
    ----------
    x, y : (n,) arrays of paired observations, n >= 3

    Notes
    -----
    Wraps ``scipy.stats.pearsonr``; the interval is Fisher's z-transform interval
    (Fisher 1921).
    """
    _check_level(confidence_level)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if len(x) < 3:
        raise ValueError(f"x has {len(x)} observations; pearson needs at least 3")
    r = sps.pearsonr(x, y, alternative=alternative)
    ci = r.confidence_interval(confidence_level)
    return Result(float(r.statistic), ConfidenceInterval(float(ci.low), float(ci.high)), len(x),
                  "Pearson r, Fisher-z interval", float(r.pvalue))


def proportion(k: int, n: int, *, confidence_level: float = 0.95) -> Result:
    """A proportion k/n with its Wilson score interval (sound at 0 and 1, unlike the Wald stderr).

    Notes
    -----
    Wilson (1927); wraps ``statsmodels.stats.proportion.proportion_confint``.
    """
    _check_level(confidence_level)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    low, high = proportion_confint(k, n, alpha=1 - confidence_level, method="wilson")
    low, high = (0.0 if k == 0 else low), (1.0 if k == n else high)  # exact at the bounds (no rounding)
    return Result(k / n, ConfidenceInterval(float(low), float(high)), int(n), "proportion, Wilson interval")


def bootstrap_mean(x, *, confidence_level: float = 0.95, n_resamples: int = 2000,
                   rng: np.random.Generator | int = 0) -> Result:
    """Mean with a BCa bootstrap interval (percentile when n is too small for BCa).

    Notes
    -----
    Efron (1987); wraps ``scipy.stats.bootstrap``.
    """
    _check_level(confidence_level)
    x = np.asarray(x, float)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError("x must be a 1-D array with at least 2 observations")
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())):  # every resample has the same mean
        m = float(x.mean())
        return Result(m, ConfidenceInterval(m, m), len(x), "mean, degenerate (constant data)")
    method = "BCa" if len(x) >= 10 else "percentile"
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence_level, n_resamples=n_resamples,
                        method=method, rng=np.random.default_rng(rng))
    ci = res.confidence_interval
    return Result(float(x.mean()), ConfidenceInterval(float(ci.low), float(ci.high)), len(x),
                  f"mean, {method} bootstrap interval")
