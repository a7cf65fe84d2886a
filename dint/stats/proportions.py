"""Paired and independent proportions: McNemar's test and Newcombe's intervals.

The paper's core comparison is a model against its post-trained version on the same items:
paired binary correctness. McNemar's test uses only the discordant pairs; its interval for the
difference is Newcombe's paired score interval. Results share `dint.stats.Result`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from .checks import check_choice, check_level
from .result import ConfidenceInterval, Result

__all__ = ["McNemarResult", "diff_proportions", "mcnemar", "stratified_difference"]


@dataclass(frozen=True)
class McNemarResult(Result):
    """:class:`Result` of :func:`mcnemar`, with the discordant counts.

    ``b``: pairs correct before and wrong after; ``c``: wrong before and correct after.
    """

    b: int = 0
    c: int = 0


def _wilson(k, n, z):
    p = k / n
    centre = (k + z ** 2 / 2) / (n + z ** 2)
    half = z / (n + z ** 2) * np.sqrt(k * (n - k) / n + z ** 2 / 4)
    low, high = centre - half, centre + half
    return p, (0.0 if k == 0 else low), (1.0 if k == n else high)


def _newcombe_paired(a, b, c, d, z):
    """Newcombe (1998) method 10 interval for p_after - p_before; a: both correct, d: both wrong."""
    n = a + b + c + d
    p1, l1, u1 = _wilson(a + c, n, z)   # after
    p2, l2, u2 = _wilson(a + b, n, z)   # before
    marg = float(a + b) * (c + d) * (a + c) * (b + d)
    ad_bc = float(a) * d - float(b) * c   # Newcombe's phi, shrunk towards 0 by n/2 when positive
    num = ad_bc - n / 2 if ad_bc > n / 2 else (0.0 if ad_bc >= 0 else ad_bc)
    phi = num / np.sqrt(marg) if marg > 0 else 0.0
    diff = p1 - p2
    delta = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    eps = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return ConfidenceInterval(float(max(diff - delta, -1.0)), float(min(diff + eps, 1.0)))


def mcnemar(before, after, *, method: str = "exact", confidence_level: float = 0.95) -> McNemarResult:
    """McNemar test of paired binary outcomes, with the paired difference in proportions.

    Parameters
    ----------
    before, after : (n,) arrays of 0/1 (or bool)
        Correctness of the same n items before and after (e.g. base and post-trained model).
    method : {"exact", "mid-p", "asymptotic"}
        p-value: exact conditional binomial test on the b + c discordant pairs; its mid-p
        version; or the uncorrected chi-square statistic (b - c)^2 / (b + c) on 1 df.
    confidence_level : float in (0, 1)

    Returns
    -------
    McNemarResult
        ``statistic`` = p_after - p_before = (c - b) / n, its Newcombe interval, the two-sided
        ``pvalue``, ``n`` pairs and the discordant counts ``b`` (1 -> 0) and ``c`` (0 -> 1).
        Without discordant pairs (b = c = 0) the difference is 0 and its interval is defined,
        but the test has no information: ``pvalue`` is NaN with the ``reason``.

    Notes
    -----
    McNemar (1947); exact and asymptotic p-values wrap
    ``statsmodels.stats.contingency_tables.mcnemar``. Mid-p = exact - P(X = min(b, c)),
    X ~ Bin(b + c, 1/2) (the doubled one-sided mid-p), recommended with the uncorrected
    asymptotic test by Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91.
    Interval: Newcombe (1998), Stat Med 17:2635, method 10 (Wilson score intervals for the two
    marginal proportions combined with the phi correlation of the 2x2 table, ``ad - bc`` shrunk by
    n/2 when positive), as in Altman et al. (2000), *Statistics with Confidence*, ch. 6 and
    Fagerland, Lydersen & Laake (2017), *Statistical Analysis of Contingency Tables*, ch. 8.
    """
    from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

    check_choice("method", method, ("exact", "mid-p", "asymptotic"))
    check_level(confidence_level)
    before, after = np.asarray(before), np.asarray(after)
    if before.ndim != 1 or before.shape != after.shape or len(before) == 0:
        raise ValueError("before and after must be non-empty 1-D arrays of the same length")
    for name, v in (("before", before), ("after", after)):
        if not np.isin(v, (0, 1)).all():
            raise ValueError(f"{name} must contain only 0/1 (or bool) outcomes")
    before, after = before.astype(bool), after.astype(bool)
    a = int(np.sum(before & after))
    b = int(np.sum(before & ~after))
    c = int(np.sum(~before & after))
    d = int(np.sum(~before & ~after))
    n = len(before)
    reason = ""
    if b + c == 0:   # the conditional test is on b + c = 0 pairs
        pvalue = float("nan")
        reason = "no discordant pairs (b = c = 0): McNemar's test, conditional on b + c, has no information"
    elif method == "asymptotic":
        pvalue = float(_sm_mcnemar([[a, b], [c, d]], exact=False, correction=False).pvalue)
    else:
        pvalue = float(_sm_mcnemar([[a, b], [c, d]], exact=True).pvalue)
        if method == "mid-p":   # doubled before clipping at 1, so b == c gives exactly 1
            k = min(b, c)
            pvalue = float(min(1.0, 2 * sps.binom.cdf(k, b + c, 0.5) - sps.binom.pmf(k, b + c, 0.5)))
    z = sps.norm.ppf(0.5 + confidence_level / 2)
    ci = _newcombe_paired(a, b, c, d, z)
    return McNemarResult((c - b) / n, ci, n,
                         f"paired difference in proportions (after - before), Newcombe interval; "
                         f"McNemar {method} test (b={b}, c={c})", pvalue, reason, b=b, c=c)


def diff_proportions(k1: int, n1: int, k2: int, n2: int, *, confidence_level: float = 0.95) -> Result:
    """Difference of two independent proportions k1/n1 - k2/n2, Newcombe interval and z-test.

    Parameters
    ----------
    k1, n1 : int
        Successes and trials of the first sample.
    k2, n2 : int
        Successes and trials of the second sample.
    confidence_level : float in (0, 1)

    Returns
    -------
    Result
        ``statistic`` = k1/n1 - k2/n2, the hybrid Wilson score interval, and the two-sided
        p-value of the pooled two-proportion z-test (1 when both samples are all 0 or all 1);
        ``n`` = n1 + n2.

    Notes
    -----
    Newcombe (1998), Stat Med 17:873, method 10; wraps
    ``statsmodels.stats.proportion.confint_proportions_2indep(method="newcomb")`` and
    ``test_proportions_2indep(method="score", correction=False)`` (the pooled z-test).
    Not for paired data: use :func:`mcnemar` when both proportions are on the same items.
    """
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    check_level(confidence_level)
    for kname, k, nname, n in (("k1", k1, "n1", n1), ("k2", k2, "n2", n2)):
        if n < 1:
            raise ValueError(f"{nname}={n}: must be >= 1")
        if not 0 <= k <= n:
            raise ValueError(f"{kname}={k}: must lie in [0, {nname}={n}]")
    with warnings.catch_warnings():   # statsmodels divides by zero for its unused ratio/odds ratio
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff",
                                               alpha=1 - confidence_level)
        if (k1 + k2) in (0, n1 + n2):   # pooled variance 0: no evidence of a difference
            pvalue = 1.0
        else:
            pvalue = float(test_proportions_2indep(k1, n1, k2, n2, method="score", compare="diff",
                                                   correction=False).pvalue)
    return Result(k1 / n1 - k2 / n2, ConfidenceInterval(float(low), float(high)), int(n1 + n2),
                  "difference of independent proportions, Newcombe hybrid score interval; pooled z-test",
                  pvalue)


def stratified_difference(k1, n1, k2, n2, *, confidence_level: float = 0.95) -> Result:
    """Difference of two proportions within strata, pooled with Cochran-Mantel-Haenszel weights; Wald interval.

    Parameters
    ----------
    k1, n1 : (s,) successes and trials of the first sample in each of s strata
    k2, n2 : (s,) the same for the second sample; a stratum with n1 or n2 = 0 is left out
    confidence_level : float in (0, 1)

    Returns
    -------
    Result: ``statistic`` = Σ w (k1/n1 - k2/n2) / Σ w with w = n1 n2 / (n1 + n2), the Wald interval from the
    variance Σ w² (p1 q1 / n1 + p2 q2 / n2) / (Σ w)² and its two-sided z-test; ``n`` = the trials of the strata
    used. NaN with the ``reason`` when no stratum has both samples, or the variance is 0 (every stratum all 0
    or all 1).

    Notes
    -----
    The Mantel-Haenszel-weighted risk difference (Greenland & Robins 1985) with the unpooled Wald variance of a
    weighted sum of independent differences; its coverage is checked in ``dint validate``. Within a stratum
    the two samples are independent (unpaired): different items.
    """
    check_level(confidence_level)
    arrays = [np.asarray(a, dtype=float) for a in (k1, n1, k2, n2)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError("k1, n1, k2 and n2 must be 1-D arrays of the same length, one entry per stratum")
    k1, n1, k2, n2 = arrays
    if (n1 < 0).any() or (n2 < 0).any() or (k1 < 0).any() or (k2 < 0).any() or (k1 > n1).any() or (k2 > n2).any():
        raise ValueError("need 0 <= k1 <= n1 and 0 <= k2 <= n2 in every stratum")
    method = "difference of proportions within strata, Cochran-Mantel-Haenszel weights, Wald interval and z-test"
    use = (n1 > 0) & (n2 > 0)
    nan = float("nan")
    if not use.any():
        return Result(nan, ConfidenceInterval(nan, nan), 0, method, nan, "no stratum has both samples")
    k1, n1, k2, n2 = k1[use], n1[use], k2[use], n2[use]
    p1, p2 = k1 / n1, k2 / n2
    w = n1 * n2 / (n1 + n2)
    est = float(np.sum(w * (p1 - p2)) / w.sum())
    se = float(np.sqrt(np.sum(w ** 2 * (p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2))) / w.sum())
    n = int(n1.sum() + n2.sum())
    if se == 0:
        return Result(est, ConfidenceInterval(nan, nan), n, method, nan,
                      "every stratum is all 0 or all 1: the Wald variance is 0")
    z = sps.norm.ppf(0.5 + confidence_level / 2)
    return Result(est, ConfidenceInterval(float(est - z * se), float(est + z * se)), n, method,
                  float(2 * sps.norm.sf(abs(est) / se)))
