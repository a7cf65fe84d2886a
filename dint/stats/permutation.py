"""The paired permutation test (random sign flips of paired differences)."""
from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import stats as sps

from .checks import accepts_axis, check_choice, check_n_resamples, paired_arrays
from .intervals import mean_diff, paired_bootstrap
from .result import ConfidenceInterval, Result, is_floor

__all__ = ["paired_permutation_test", "sign_flip_sf"]

# Below this many resamples at least as extreme as the data, a Monte-Carlo p-value resolves little (its
# relative error exceeds 30%) and its floor, 1 / (B + 1), would be printed as weak evidence: the tail is then
# the saddlepoint approximation of the exact permutation distribution.
MIN_TAIL_COUNT = 10


def sign_flip_sf(d, x: float) -> float:
    """``P(sum_i s_i |d_i| >= x)`` for independent random signs ``s_i = +-1``: the upper tail of the exact
    sign-flip (paired permutation) distribution of the sum of the differences ``d``.

    Parameters
    ----------
    d : (n,) paired differences (their signs do not matter; zeros are left out)
    x : the threshold, > 0

    Returns
    -------
    The tail probability by the Lugannani-Rice saddlepoint approximation, never below the exact lower
    bound ``2**-m`` (m non-zero differences: only the all-positive signs reach ``sum |d|``).

    Notes
    -----
    The cumulant generating function of the sum is ``K(t) = sum log cosh(t d_i)``; with the saddlepoint
    ``K'(t) = x``, ``w = sqrt(2 (t x - K(t)))`` and ``u = t sqrt(K''(t))``, the tail is
    ``1 - Phi(w) + phi(w) (1/u - 1/w)`` (Lugannani & Rice 1980, *Adv. Appl. Prob.* 12:475; for permutation
    tests Robinson 1982, *JRSS-B* 44:91). Its relative error is O(1/n) uniformly in the tail, where the
    normal approximation ``1 - Phi(x / sqrt(sum d^2))`` is off by orders of magnitude for skewed
    differences; the tests check it against the exact enumeration of 2^n sign flips.
    """
    d = np.abs(np.asarray(d, float))
    d = d[d > 0]
    if not x > 0 or len(d) == 0:
        raise ValueError(f"x={x!r}: the tail is computed for x > 0 and at least one non-zero difference")
    top, floor = float(d.sum()), 0.5 ** len(d)
    if x >= top * (1 - 1e-12):
        return floor

    def k0(t):
        z = np.abs(t * d)
        return float(np.sum(z + np.log1p(np.exp(-2 * z)) - np.log(2)))

    def k1(t):
        return float(np.sum(d * np.tanh(t * d)))

    hi = 1.0 / d.max()
    while k1(hi) < x:
        hi *= 2
    t = optimize.brentq(lambda s: k1(s) - x, 0.0, hi, xtol=1e-14, rtol=1e-12)
    w = np.sqrt(max(2 * (t * x - k0(t)), 0.0))
    u = t * np.sqrt(float(np.sum((d / np.cosh(t * d)) ** 2)))
    if w < 1e-4:   # at the centre the formula is 0/0; the tail is 1/2 there
        return 0.5
    return float(min(0.5, max(floor, sps.norm.sf(w) + sps.norm.pdf(w) * (1 / u - 1 / w))))


def sign_flip_pvalue(d, alternative: str = "two-sided") -> float:
    """The p-value of the sign-flip test of the mean of ``d`` from `sign_flip_sf` (two-sided: twice the tail
    beyond ``|sum d|``, capped at 1)."""
    s = float(np.sum(d))
    if alternative == "two-sided":
        return min(1.0, 2 * sign_flip_sf(d, abs(s))) if s != 0 else 1.0
    s = s if alternative == "greater" else -s
    return sign_flip_sf(d, s) if s > 0 else 1.0 - (sign_flip_sf(d, -s) if s < 0 else 0.0)


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
    (Phipson & Smyth 2010). It cannot go below that floor, which a correction over many tests
    multiplies into weak-looking evidence; so where fewer than ``MIN_TAIL_COUNT`` (10) sign flips
    reach the statistic, the p-value of the mean difference is the saddlepoint tail of the exact
    sign-flip distribution (`sign_flip_sf`), and ``method`` says so. A custom statistic has no such
    tail: its p-value at the floor carries ``pvalue_floor`` (the p-value is a bound, "p < floor").
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
    pvalue, reason, floor = float(res.pvalue), "", None
    null = np.asarray(res.null_distribution, float)
    exact = 2 ** min(len(d), 64) <= n_resamples    # scipy enumerates every sign flip then
    test = f"paired sign-flip permutation test ({alternative})"
    if np.ptp(null) <= 1e-12 * max(1.0, float(np.abs(null).max())):
        pvalue = float("nan")
        reason = ("every sign flip gives the same statistic (all paired differences are 0): the null "
                  "distribution is a point mass and the test has no information")
    elif not exact:
        obs, tol = float(res.statistic), 1e-12 * max(1.0, abs(float(res.statistic)))
        above, below = np.count_nonzero(null >= obs - tol), np.count_nonzero(null <= obs + tol)
        tail = {"two-sided": min(above, below), "greater": above, "less": below}[alternative]
        if tail >= MIN_TAIL_COUNT:
            pass
        elif statistic is None:   # the mean: the saddlepoint tail of the exact distribution
            pvalue = sign_flip_pvalue(d, alternative)
            test += f", saddlepoint tail (fewer than {MIN_TAIL_COUNT} of {n_resamples} sign flips reach the statistic)"
        else:                     # no approximation for a custom statistic: p is at most its Monte-Carlo floor
            floor = float(min(1.0, (2 if alternative == "two-sided" else 1) / (n_resamples + 1)))
    return Result(float(res.statistic), ci, len(x), f"{name}, {test}, {ci_name}", pvalue, reason,
                  pvalue_floor=floor if is_floor(pvalue, floor) else None)
