"""Paired resampling shared by many tests: bootstrap and permutation draws as weight matrices, drawn once.

*Paired* items are two models' values on the same facts. Both are resampled with the same draws
(common random numbers), so their statistics pair up resample by resample and a notebook's dozens of
comparisons draw once: `mean_difference` here, and `bootstrap_values` / `paired_difference` behind
`dint.calibration.ece_difference` and `dint.analyses.diversity.across_input_difference`.
*Clustered* items (the two prompt forms of a fact share it) are resampled by `dint.stats.clustered`.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import stats as sps

from .checks import check_int, paired_arrays
from .intervals import paired_bootstrap
from .permutation import MIN_TAIL_COUNT, sign_flip_pvalue
from .result import ConfidenceInterval, Result

__all__ = ["bootstrap_values", "common_seed", "mean_difference", "paired_difference"]


# ------------------------------------------------------------------------------ paired resampling
def _make_draws(kind, n, b, gen):
    """(b, n) bootstrap multiplicities of n items drawn with replacement, or random signs ±1."""
    if kind == "signs":
        return 2.0 * gen.integers(0, 2, (b, n)) - 1.0
    cells = (np.arange(b)[:, None] * n + gen.integers(0, n, (b, n))).ravel()
    return np.bincount(cells, minlength=b * n).reshape(b, n).astype(float)


@functools.lru_cache(maxsize=4)
def _seeded_draws(kind, n, b, seed):
    w = _make_draws(kind, n, b, np.random.default_rng(seed))
    w.flags.writeable = False
    return w


def common_seed(rng):
    """An integer seed: two models resampled with it see the same resamples (a Generator would
    give each call new ones, which would unpair them)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2 ** 32))
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise ValueError(f"rng={rng!r}: pass a non-negative int seed or a numpy.random.Generator")
    return int(rng)


def _draws(kind, n, b, rng, max_cells=10_000_000):
    """The resampling draws in chunks of bounded memory. With an integer seed the same draws are
    reused across calls (cached), so every comparison on the same items sees the same resamples
    (common random numbers) and a notebook's dozens of tests draw them once."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and b * n <= max_cells:
        return [_seeded_draws(kind, n, b, int(rng))]
    gen, chunk = np.random.default_rng(rng), max(1, 2_000_000 // n)
    return [_make_draws(kind, n, min(chunk, b - start), gen) for start in range(0, b, chunk)]


def bootstrap_values(sums, value, n, n_resamples, rng):
    """A statistic on the data and on each bootstrap resample of its n items.

    ``sums(W)`` maps item weights ``W`` (R, n) (multiplicities of the n items drawn with
    replacement) to item-additive sums (R, d); ``value`` maps sums (R, d) to the statistic (R,).
    With an integer ``rng`` the resamples are the same for every model (`_draws`), so two models'
    values pair up resample by resample."""
    n_resamples = check_int("n_resamples", n_resamples, 1)
    est = float(value(sums(np.ones((1, n))))[0])
    return est, np.concatenate([value(sums(w)) for w in _draws("bootstrap", n, n_resamples, rng)])


def paired_difference(a, b, confidence_level):
    """Estimate, interval, p-value and reason (empty unless the interval and test are NaN) of the
    difference of two `bootstrap_values` results drawn on the same resamples.

    The interval is the Wald interval ``D -+ z sd(D*)`` with the bootstrap standard error of the
    difference, and the p-value its two-sided Wald test of 0, ``2 Phi(-|D| / sd(D*))`` (Efron &
    Tibshirani 1993, ch. 6 and sec. 12.2), as for `dint.agreement.cluster_kappa` and the pass curves:
    unlike the p-value that inverts the percentile interval, ``2 (k + 1) / (B + 1)``, it has no floor at
    ``2 / (B + 1)``, which a correction over a notebook's tests multiplied into weak-looking evidence.
    For differences of calibration errors it is also closer to its level than the percentile test: with
    two equally (mis)calibrated models on 500 shared items (10 bins) the percentile test rejected at
    0.05 in 1.4% (l1 ECE) and 1.8% (debiased l2) of 500 simulations, where ``dint validate`` (2,000
    replications) measures the Wald test at 4.1% and 3.3% and the Wald interval's coverage at 0.96
    for both (the percentile interval covered 0.94-0.98 in the 500). The debiased l2 test is slightly
    conservative: over 1,500 further simulations its bootstrap standard error exceeded the spread of the
    difference by 5.6% (0.0204 against 0.0193; the bootstrap overstates the second-order terms of the
    squared bin biases), and it rejected in 4.2%. Resamples where either statistic is
    undefined are left out. When every resample gives the same difference the bootstrap carries no
    information on its variability: a zero-width interval and a certain test would be read as
    certainty, so both are NaN."""
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")
    nan = float("nan")
    boot = a[1] - b[1]
    boot = boot[np.isfinite(boot)]   # resamples where a statistic is undefined (see its docstring)
    est = a[0] - b[0]
    if len(boot) < 2:
        return est, ConfidenceInterval(nan, nan), nan, "the statistic is undefined on (almost) every resample"
    if np.ptp(boot) <= 1e-12 * max(1.0, float(np.abs(boot).max())):
        return est, ConfidenceInterval(nan, nan), nan, (
            "every bootstrap resample gives the same difference (a point mass, e.g. two identical models "
            "or constant data): no interval or test")
    se = float(np.std(boot, ddof=1))
    z = float(sps.norm.ppf(0.5 + confidence_level / 2))
    return est, ConfidenceInterval(float(est - z * se), float(est + z * se)), float(2 * sps.norm.sf(abs(est) / se)), ""


def mean_difference(x, y, *, confidence_level: float = 0.95, n_resamples: int = 2000,
                    n_permutations: int = 9999, rng: np.random.Generator | int = 0) -> Result:
    """Mean paired difference ``mean(x - y)`` with its interval and a sign-flip permutation test.

    Parameters
    ----------
    x, y : (n,) paired observations (the same items), n >= 2
    confidence_level : level of the interval
    n_resamples : resamples of the interval (`stats.paired_bootstrap`, hull of Johnson's t and bootstrap-t)
    n_permutations : random sign flips of the differences for the p-value
    rng : int seed or ``numpy.random.Generator``

    Returns
    -------
    Result with the mean difference, the interval and the two-sided p-value ``(k + 1) / (B + 1)``,
    or, where fewer than 10 of the B sign flips reach the statistic (k < 10), the saddlepoint tail
    of the exact sign-flip distribution (`dint.stats.permutation.sign_flip_sf`), which has no floor
    at ``1 / (B + 1)``; the p-value is NaN, with the ``reason``, when every difference is 0 (the sign
    flips leave them unchanged: the test has no information).

    Notes
    -----
    The test of `stats.paired_permutation_test` (Fisher 1935; Phipson & Smyth 2010), computed as one
    matrix product of random signs and the differences, so that dozens of tests take a fraction of
    a second.
    """
    x, y = paired_arrays(x, y)
    n_permutations = check_int("n_permutations", n_permutations, 1)
    ci = paired_bootstrap(x, y, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    d = x - y
    est = float(d.mean())
    null = [signs @ d / len(d) for signs in _draws("signs", len(d), n_permutations, rng)]
    null = np.concatenate(null)
    k = np.count_nonzero(np.abs(null) >= abs(est) - 1e-12 * max(1.0, abs(est)))
    p, reason, test = (1 + k) / (n_permutations + 1), "", "paired sign-flip permutation test"
    if not d.any():   # every sign flip gives 0: the null distribution is a point mass
        p, reason = float("nan"), ("every paired difference is 0: the sign-flip null distribution is a point "
                                   "mass and the test has no information")
    elif k < MIN_TAIL_COUNT:   # beyond the Monte-Carlo resolution: the exact distribution's saddlepoint tail
        p = sign_flip_pvalue(d)
        test += (f", saddlepoint tail (fewer than {MIN_TAIL_COUNT} of {n_permutations} sign flips reach the "
                 "statistic)")
    return Result(est, ci.confidence_interval, len(d), f"mean difference, {ci.method.split(', ', 1)[1]}, {test}",
                  float(p), reason)
