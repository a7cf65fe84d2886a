"""The paired permutation test (random sign flips of paired differences)."""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from .checks import accepts_axis, check_choice, check_n_resamples, paired_arrays
from .intervals import mean_diff, paired_bootstrap
from .result import ConfidenceInterval, Result

__all__ = ["paired_permutation_test"]


def paired_permutation_test(x, y, statistic=None, *, alternative: str = "two-sided",
                            n_resamples: int = 9999, rng: np.random.Generator | int = 0) -> Result:
    """Sign-flip (paired permutation) test that the paired differences are centred on zero.

    Parameters
    ----------
    x, y : (n,) arrays
        Paired observations, n >= 2.
    statistic : callable ``f(d) -> float`` of the differences ``d = x - y``, optional
        Default: the mean difference. Vectorised if it takes an ``axis`` keyword.
    alternative : {"two-sided", "greater", "less"}
        "greater": the statistic of ``x - y`` is larger than under exchangeability.
    n_resamples : int
        Random sign flips; when ``2**n <= n_resamples`` the exact null distribution is used.
    rng : int seed or numpy Generator

    Returns
    -------
    Result
        ``statistic`` and the permutation ``pvalue``; the interval is the two-sided 95%
        Student-t interval of the mean difference for the default statistic, otherwise a
        95% paired percentile bootstrap interval of the statistic (drawn from ``rng``). When
        every sign flip gives the same statistic (e.g. every difference is 0) the null
        distribution is a point mass and the test has no information: ``pvalue`` is NaN with
        the ``reason``; the estimate and interval stay.

    Notes
    -----
    Fisher (1935), *The Design of Experiments*, sec. 21; wraps ``scipy.stats.permutation_test``
    with ``permutation_type="samples"`` (swapping x[i] and y[i] flips the sign of d[i]). The
    Monte-Carlo p-value counts the observed statistic, (k + 1) / (B + 1), so it is never 0
    (Phipson & Smyth 2010).
    """
    check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    n_resamples = check_n_resamples(n_resamples)
    x, y = paired_arrays(x, y)
    rng = np.random.default_rng(rng)
    if statistic is None:
        stat, vectorized, name = mean_diff, True, "mean difference"
    elif callable(statistic):
        if accepts_axis(statistic):
            def stat(a, b, axis=-1):
                return statistic(a - b, axis=axis)
            vectorized = True
        else:
            def stat(a, b):
                return statistic(a - b)
            vectorized = False
        name = getattr(statistic, "__name__", "statistic")
    else:
        raise TypeError(f"statistic={statistic!r}: must be a callable f(d) or None")
    res = sps.permutation_test((x, y), stat, permutation_type="samples", vectorized=vectorized,
                               n_resamples=n_resamples, alternative=alternative, rng=rng)
    d = x - y
    if statistic is None:
        if np.ptp(d) == 0:
            ci = ConfidenceInterval(float(d[0]), float(d[0]))
        else:
            t = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
            ci = ConfidenceInterval(float(t.low), float(t.high))
        ci_name = "t interval"
    else:
        ci = paired_bootstrap(x, y, lambda a, b: float(statistic(a - b)), method="percentile",
                              n_resamples=2000, rng=rng).confidence_interval
        ci_name = "percentile bootstrap interval"
    pvalue, reason = float(res.pvalue), ""
    null = np.asarray(res.null_distribution, float)
    if np.ptp(null) <= 1e-12 * max(1.0, float(np.abs(null).max())):
        pvalue = float("nan")
        reason = ("every sign flip gives the same statistic (all paired differences are 0): the null "
                  "distribution is a point mass and the test has no information")
    return Result(float(res.statistic), ci, len(x),
                  f"{name}, paired sign-flip permutation test ({alternative}), {ci_name}", pvalue, reason)
