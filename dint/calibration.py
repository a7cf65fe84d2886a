"""Calibration of a model's confidence against correctness: measured, and repaired post hoc.

A model's *confidence* on an item is the largest probability it gives over the candidate answer
set; *correct* says whether that argmax answer is right. This module measures how well the two
agree (expected calibration error, the paired difference of two models' errors on the same items,
the Brier score and its decomposition, reliability-diagram data) and repairs it post hoc (temperature
scaling). Turning a confidence or verifier score into a rule that abstains is `dint.selective`.

Results are frozen dataclasses with scipy-like field names, never bare tuples; randomness only
through an explicit ``rng`` (an int seed or a ``numpy.random.Generator``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import log_softmax
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from .stats import ConfidenceInterval, Result
from .stats.resampling import bootstrap_values, common_seed, iterated_bootstrap_values, paired_difference
from .stats.checks import check_int

__all__ = ["BrierResult", "TemperatureResult", "apply_temperature", "brier", "check_bins", "ece", "ece_difference",
           "ece_from_bins",
           "fit_temperature", "paired_inputs", "reliability_diagram", "temperature_nll", "temperature_nll_items"]


# ------------------------------------------------------------------------------ result types
class _AsDict:
    def asdict(self) -> dict:
        """Flat dict for tables and the paper's macros."""
        return asdict(self)


@dataclass(frozen=True)
class BrierResult(_AsDict):
    """Brier score with its binned Murphy decomposition (plus the within-bin residual)."""

    statistic: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin: float
    n: int


@dataclass(frozen=True)
class TemperatureResult(_AsDict):
    """A fitted softmax temperature and the mean NLL before (T = 1) and after scaling."""

    temperature: float
    nll_before: float
    nll_after: float
    n: int


# ------------------------------------------------------------------------------ validation
def _as_unit(name, x):
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one value per item), got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any((x < 0) | (x > 1)):
        raise ValueError(f"{name} must hold finite values in [0, 1]; pass probabilities, not logits")
    return x


def _as_binary(name, y):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one value per item), got shape {y.shape}")
    if y.dtype != bool:
        yf = y.astype(float)
        if not np.all((yf == 0) | (yf == 1)):
            raise ValueError(f"{name} must be boolean or 0/1; threshold or cast it first")
        y = yf == 1
    return y.astype(float)


def paired_inputs(cname, c, yname, y, *, unit=True, min_n=2):
    c = _as_unit(cname, c) if unit else _as_score(cname, c)
    y = _as_binary(yname, y)
    if len(c) != len(y):
        raise ValueError(f"{cname} has {len(c)} items but {yname} has {len(y)}; pass them paired")
    if len(c) < min_n:
        raise ValueError(f"{cname} has {len(c)} items; need at least {min_n}")
    return c, y


def _as_score(name, s):
    s = np.asarray(s, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one value per item), got shape {s.shape}")
    if np.any(np.isnan(s)):
        raise ValueError(f"{name} contains NaN; drop or impute those items first")
    return s


def check_bins(n_bins, binning="width"):
    check_int("n_bins", n_bins, 1)
    if binning not in ("width", "mass"):
        raise ValueError(f"binning={binning!r}: must be 'width' or 'mass'")


def bin_index(c, n_bins, binning):
    """Bin of each item: equal-width bins [k/B, (k+1)/B) (last closed) or equal-count bins."""
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        return np.searchsorted(edges[1:-1], c, side="right")
    order = np.argsort(c, kind="stable")
    idx = np.empty(len(c), dtype=np.intp)
    idx[order] = np.arange(len(c)) * n_bins // len(c)
    return idx


# ------------------------------------------------------------------------------ ECE
def ece_from_bins(counts, confidence_sums, correct_sums, *, debiased: bool = False) -> np.ndarray:
    """The ECE (or the debiased l2 calibration error) from per-bin sums, for many sets of bins at once.

    Parameters
    ----------
    counts : (..., B) items per bin (bootstrap or weighted counts allowed)
    confidence_sums, correct_sums : (..., B) the sums of confidence and of correctness in each bin
    debiased : the debiased l2 calibration error instead of the l1 ECE (see `ece`)

    Returns
    -------
    (...) array: the calibration error of each set of bins. Empty bins contribute 0; for the debiased
    error, so do bins of one item, which carry no variance estimate.
    """
    n_b, s_c, s_y = (np.asarray(a, float) for a in (counts, confidence_sums, correct_sums))
    n = n_b.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf, acc = s_c / n_b, s_y / n_b
        if not debiased:
            return np.nansum(n_b / n * np.abs(acc - conf), axis=-1)
        term = (acc - conf) ** 2 - np.where(n_b > 1, acc * (1 - acc) / (n_b - 1), 0.0)
    term = np.where(n_b > 1, term, 0.0)
    return np.sqrt(np.maximum(np.sum(n_b / n * term, axis=-1), 0.0))


def _ece_value(c, y, idx, n_bins, debiased):
    sums = [np.bincount(idx, weights=w, minlength=n_bins) for w in (None, c, y)]
    return float(ece_from_bins(*sums, debiased=debiased))


def _ece_boot_width(c, y, idx, n_bins, debiased, n_resamples, gen):
    """`ece_from_bins` on ``n_resamples`` resamples at once (fixed bin edges): per-resample bin sums
    by one ``bincount`` over (resample, bin) cells, in chunks of bounded memory."""
    n, out = len(c), []
    chunk = max(1, 4_000_000 // n)
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        j = gen.integers(0, n, (k, n))
        cell = (np.arange(k)[:, None] * n_bins + idx[j]).ravel()
        sums = [np.bincount(cell, weights=w, minlength=k * n_bins).reshape(k, n_bins)
                for w in (None, c[j].ravel(), y[j].ravel())]
        out.append(ece_from_bins(*sums, debiased=debiased))
    return np.concatenate(out) if out else np.empty(0)


def ece(confidence, correct, *, n_bins: int = 15, binning: str = "width", debiased: bool = False,
        confidence_level: float = 0.95, n_resamples: int = 1000,
        rng: np.random.Generator | int = 0) -> Result:
    """Expected calibration error of confidences against correctness, with a bootstrap interval.

    Parameters
    ----------
    confidence : (n,) array in [0, 1], the model's probability for its chosen answer
    correct : (n,) boolean or 0/1 array, whether the chosen answer is right; n >= 2
    n_bins : number of bins B
    binning : ``"width"`` (bins [k/B, (k+1)/B), the last closed) or ``"mass"`` (B bins of
        (near-)equal item counts, by rank of confidence; tied confidences may straddle a boundary)
    debiased : if True, the debiased l2 calibration error (see Notes) instead of the l1 ECE
    confidence_level : level of the two-sided interval
    n_resamples : bootstrap resamples (0 or 1 give a NaN interval)
    rng : int seed or ``numpy.random.Generator`` for the bootstrap

    Returns
    -------
    Result with ``statistic`` the ECE, ``confidence_interval`` the percentile bootstrap interval.
    What the data cannot estimate is NaN, with the ``reason``: the debiased error when every
    occupied bin holds one item (no bin has a within-bin variance estimate, so the estimator is
    0 by construction, not by the data), and the interval when every resample gives the same
    value (e.g. one occupied bin with one confidence and one outcome: a zero-width interval would
    be read as certainty) or ``n_resamples < 2``.

    Notes
    -----
    Plain: ``ECE = sum_b (n_b/n) |acc_b - conf_b|`` over non-empty bins, with ``acc_b`` and
    ``conf_b`` the bin's mean correctness and confidence (Guo et al. 2017, "On calibration of
    modern neural networks"; equal-mass bins: Nixon et al. 2019, "Measuring calibration in deep
    learning").

    Debiased (Kumar, Liang & Ma 2019, "Verified uncertainty calibration", the debiased l2
    estimator): ``sqrt(max(0, sum_b (n_b/n) [(acc_b - conf_b)^2 - acc_b(1 - acc_b)/(n_b - 1)]))``,
    where bins with ``n_b = 1`` contribute 0 (as in the authors' ``calibration`` package). It
    estimates the *l2* calibration error, which is >= the l1 ECE, so compare it with itself across
    models, not with plain ECE values. The subtracted term removes the plug-in estimator's
    positive bias from sampling noise in ``acc_b``; clipping at 0 keeps a small upward bias.

    Interval: items are resampled with replacement and the statistic recomputed (equal-width bin
    edges stay fixed; equal-mass bins are re-formed per resample). For the l1 ECE, the percentile
    interval. The plug-in ECE is biased upward, so for a near-calibrated model the interval can
    lie above the estimate; treat it as a spread, not a bias correction (Efron & Tibshirani 1993,
    ch. 13). With 15 equal-width bins and a moderately miscalibrated model (population ECE 0.11)
    it covers the population binned ECE about 94% of the time at n = 500 but only about 82% at
    n = 200 (``dint validate``); use fewer bins or more items before reading a small-n l1
    interval as 95%.

    For the debiased estimator the interval is built on the squared scale, where the estimator
    is (before clipping) unbiased and close to normal: ``sqrt(max(0, E^2 -+ z * sd*))`` with
    ``sd*`` the bootstrap standard deviation of the squared estimate. The percentile interval of
    the square root undercovers (its distribution sits below the truth by Jensen's inequality:
    92% at n = 500, 87% at n = 200); the squared-scale interval covers the population binned l2
    error 96-97% at n = 200-1000 and is conservative near a calibrated model, where the lower
    bound is clipped at 0 (``dint validate`` measures it at n = 500).
    """
    c, y = paired_inputs("confidence", confidence, "correct", correct)
    check_bins(n_bins, binning)
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")
    check_int("n_resamples", n_resamples, 0)
    idx = bin_index(c, n_bins, binning)
    what = "debiased l2 calibration error (Kumar et al. 2019)" if debiased else "ECE (l1)"
    how = "bootstrap normal interval on the squared scale" if debiased else "percentile bootstrap interval"
    method = f"{what}, {n_bins} equal-{binning} bins, {how}"
    nan = float("nan")
    if debiased and np.bincount(idx).max() < 2:
        return Result(nan, ConfidenceInterval(nan, nan), len(c), method, reason=(
            "every occupied bin holds one item: the debiased estimator has no within-bin variance estimate "
            "(it is 0 by construction); use fewer bins or more items"))
    stat = _ece_value(c, y, idx, n_bins, debiased)
    gen = np.random.default_rng(rng)
    if binning == "width":
        boots = _ece_boot_width(c, y, idx, n_bins, debiased, n_resamples, gen)
    else:
        boots = np.empty(n_resamples)
        for r in range(n_resamples):
            j = gen.integers(0, len(c), len(c))
            boots[r] = _ece_value(c[j], y[j], bin_index(c[j], n_bins, binning), n_bins, debiased)
    a = (1 - confidence_level) / 2
    reason = ""
    if n_resamples < 2:
        low = high = nan
        reason = f"n_resamples={n_resamples}: no bootstrap interval"
    elif np.ptp(boots) <= 1e-12 * max(1.0, float(np.abs(boots).max())):
        low = high = nan
        reason = ("every bootstrap resample gives the same value (a point mass, e.g. one occupied bin with one "
                  "confidence and one outcome): no interval")
    elif debiased:
        # normal interval for the (unbiased) squared error, mapped back by the square root
        half = norm.ppf(1 - a) * float(np.std(boots ** 2, ddof=1))
        low, high = math.sqrt(max(stat ** 2 - half, 0.0)), math.sqrt(stat ** 2 + half)
    else:
        low, high = (float(v) for v in np.quantile(boots, [a, 1 - a]))
    return Result(stat, ConfidenceInterval(low, high), len(c), method, reason=reason)


# ------------------------------------------------------------------------------ paired ECE difference
def _ece_bin_sums(confidence, correct, n_bins):
    idx = bin_index(confidence, n_bins, "width")
    f = np.zeros((len(confidence), 3 * n_bins))
    rows = np.arange(len(confidence))
    f[rows, idx], f[rows, n_bins + idx], f[rows, 2 * n_bins + idx] = 1.0, confidence, correct
    return lambda w: w @ f


def _ece_of_sums(n_bins, debiased):
    def value(s):   # s: (R, 3B) per-bin counts, confidence sums, correct sums
        return ece_from_bins(s[:, :n_bins], s[:, n_bins:2 * n_bins], s[:, 2 * n_bins:], debiased=debiased)
    return value


def ece_difference(confidence_a, correct_a, confidence_b, correct_b, *, n_bins: int = 15,
                   debiased: bool = False, confidence_level: float = 0.95, n_resamples: int = 9999,
                   n_iterated: int = 50, rng: np.random.Generator | int = 0) -> Result:
    """Paired difference ECE(a) - ECE(b) of two models on the same items, with interval and test.

    Parameters
    ----------
    confidence_a, correct_a : (n,) confidence in [0, 1] and correctness of model a, item by item
    confidence_b, correct_b : (n,) the same for model b on the same items in the same order
    n_bins : equal-width bins, as in `dint.calibration.ece`
    debiased : compare the debiased l2 calibration error (Kumar et al. 2019) instead of the l1 ECE
    confidence_level : level of the interval
    n_resamples : bootstrap resamples (they give the standard error)
    n_iterated : the iterated bootstrap that corrects the bias of that standard error: ``n_iterated``
        resamples, each resampled ``n_iterated`` times again (0: no correction)
    rng : int seed or ``numpy.random.Generator``

    Returns
    -------
    Result with the difference, the paired bootstrap Wald interval and test (the standard error from
    items resampled jointly for both models, bin edges fixed, its variance's bias corrected by the
    iterated bootstrap; `dint.stats.resampling.paired_difference`).
    When every resample gives the same difference (two identical models, or one occupied bin with one
    confidence and one outcome per model) the bootstrap says nothing about the variability: the interval
    and p-value are NaN, with the ``reason``.

    Notes
    -----
    As `ece` for one model (Efron & Tibshirani 1993, ch. 13 and sec. 15.4); resampling
    the pairs keeps the within-item dependence of the two models. Plug-in ECE is biased upward at
    small bin counts, so its bootstrap distribution need not be centred on the estimate; compare
    models at the same n and ``n_bins``. The bootstrap also overstates the variance of a calibration error
    (a squared or absolute bin bias: the noise of a resample adds to that of the data), by about 5% in the
    standard error at n = 500, which made the test conservative; the iterated bootstrap removes that bias
    (`dint.stats.resampling.paired_difference` gives the figures). ``dint validate`` checks it with two
    equally miscalibrated models (n = 500, 10 bins): type-I error at 0.05 and coverage of the 95%
    interval, for the l1 and the debiased error.
    """
    ca, ya = paired_inputs("confidence_a", confidence_a, "correct_a", correct_a)
    cb, yb = paired_inputs("confidence_b", confidence_b, "correct_b", correct_b)
    if len(ca) != len(cb):
        raise ValueError(f"confidence_a has {len(ca)} items but confidence_b has {len(cb)}; "
                         "pass the two models' values on the same items in the same order")
    check_bins(n_bins)
    n_iterated = check_int("n_iterated", n_iterated, 0)
    if n_iterated == 1:
        raise ValueError("n_iterated=1: pass 0 (no correction) or at least 2 resamples of each resample")
    value, rng = _ece_of_sums(n_bins, debiased), common_seed(rng)
    sums = _ece_bin_sums(ca, ya, n_bins), _ece_bin_sums(cb, yb, n_bins)
    iterated = None if not n_iterated else tuple(
        iterated_bootstrap_values(s, value, len(ca), n_iterated, n_iterated, rng) for s in sums)
    est, ci, p, reason = paired_difference(*(bootstrap_values(s, value, len(ca), n_resamples, rng) for s in sums),
                                           confidence_level, iterated=iterated)
    what = "debiased l2 calibration error" if debiased else "ECE (l1)"
    se = ("bootstrap standard error, its variance's bias corrected by the iterated bootstrap" if n_iterated
          else "bootstrap standard error")
    return Result(est, ci, len(ca), f"difference in {what}, {n_bins} equal-width bins, paired bootstrap Wald "
                  f"interval and test ({se})", p, reason)


# ------------------------------------------------------------------------------ Brier
def brier(prob, outcome, *, n_bins: int = 15) -> BrierResult:
    """Brier score of binary forecasts with Murphy's decomposition on equal-width bins.

    Parameters
    ----------
    prob : (n,) array in [0, 1], forecast probability that the outcome is 1
    outcome : (n,) boolean or 0/1 array; n >= 2
    n_bins : number of equal-width bins of ``prob`` used for the decomposition

    Returns
    -------
    BrierResult with ``statistic = mean((prob - outcome)^2)`` and, with ``n_k``, ``f_k``, ``o_k``
    the count, mean forecast and outcome frequency of bin k and ``o`` the overall frequency,
    ``reliability = sum_k n_k (f_k - o_k)^2 / n``, ``resolution = sum_k n_k (o_k - o)^2 / n``,
    ``uncertainty = o (1 - o)``, and ``within_bin`` (below).

    Notes
    -----
    Murphy (1973), "A new vector partition of the probability score". The three-term identity
    holds only when forecasts are constant within bins; in general
    ``statistic == reliability - resolution + uncertainty + within_bin`` exactly (up to rounding),
    where ``within_bin = (1/n) sum_k sum_{i in k} [(p_i - f_k)^2 - 2 (p_i - f_k)(y_i - o_k)]`` is the
    within-bin forecast variance minus twice the within-bin covariance (Stephenson, Coelho &
    Jolliffe 2008, "Two extra components in the Brier score decomposition").
    """
    p, y = paired_inputs("prob", prob, "outcome", outcome)
    check_bins(n_bins)
    n = len(p)
    idx = bin_index(p, n_bins, "width")
    n_k = np.bincount(idx, minlength=n_bins).astype(float)
    safe = np.maximum(n_k, 1.0)
    f_k = np.bincount(idx, weights=p, minlength=n_bins) / safe
    o_k = np.bincount(idx, weights=y, minlength=n_bins) / safe
    o = float(y.mean())
    dp, dy = p - f_k[idx], y - o_k[idx]
    return BrierResult(
        statistic=float(np.mean((p - y) ** 2)),
        reliability=float(np.sum(n_k * (f_k - o_k) ** 2) / n),
        resolution=float(np.sum(n_k * (o_k - o) ** 2) / n),
        uncertainty=o * (1 - o),
        within_bin=float(np.sum(dp ** 2 - 2 * dp * dy) / n),
        n=n)


# ------------------------------------------------------------------------------ diagram data
def reliability_diagram(confidence, correct, *, n_bins: int = 15, binning: str = "width",
                        confidence_level: float = 0.95) -> pd.DataFrame:
    """Per-bin mean confidence and accuracy (with Wilson intervals) for a reliability diagram.

    Parameters
    ----------
    confidence : (n,) array in [0, 1]
    correct : (n,) boolean or 0/1 array; n >= 2
    n_bins, binning : as in :func:`ece`
    confidence_level : level of the per-bin Wilson interval on accuracy

    Returns
    -------
    DataFrame, one row per non-empty bin (empty bins are dropped), columns ``bin_low``,
    ``bin_high`` (the bin's edges for equal-width bins, its smallest and largest confidence for
    equal-mass bins), ``n``, ``confidence`` (mean), ``accuracy``, ``accuracy_low``,
    ``accuracy_high``.

    Notes
    -----
    Plotting data only; summarise with :func:`ece`. Diagram: DeGroot & Fienberg (1983); Wilson
    (1927) interval via ``statsmodels.stats.proportion.proportion_confint``.
    """
    c, y = paired_inputs("confidence", confidence, "correct", correct)
    check_bins(n_bins, binning)
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")
    idx = bin_index(c, n_bins, binning)
    rows = []
    for b in np.unique(idx):
        m = idx == b
        k, nb = int(y[m].sum()), int(m.sum())
        lo, hi = proportion_confint(k, nb, alpha=1 - confidence_level, method="wilson")
        lo, hi = (0.0 if k == 0 else float(lo)), (1.0 if k == nb else float(hi))
        edges = (b / n_bins, (b + 1) / n_bins) if binning == "width" else (c[m].min(), c[m].max())
        rows.append({"bin_low": float(edges[0]), "bin_high": float(edges[1]), "n": nb,
                         "confidence": float(c[m].mean()), "accuracy": k / nb,
                         "accuracy_low": lo, "accuracy_high": hi})
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "n", "confidence", "accuracy",
                                       "accuracy_low", "accuracy_high"])


# ------------------------------------------------------------------------------ temperature
def logits_labels(z, labels):
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits_or_logp must be an (n, K) array with K >= 2, got shape {z.shape}")
    if np.any(np.isnan(z)) or np.any(z == np.inf):
        raise ValueError("logits_or_logp contains NaN or +inf; only -inf (zero probability) is allowed")
    lab = np.asarray(labels)
    if lab.shape != (z.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be an ({z.shape[0]},) integer array of class indices")
    if np.any((lab < 0) | (lab >= z.shape[1])):
        raise ValueError(f"labels must lie in [0, {z.shape[1] - 1}]")
    if not np.all(np.isfinite(z[np.arange(len(lab)), lab])):
        raise ValueError("the labelled class has -inf logit for some item; its NLL is infinite")
    return z, lab


def _ragged(z):
    """Finite entries of each row of ``z`` (n, K), row by row, and where each row starts."""
    finite = np.isfinite(z)
    counts = finite.sum(axis=1)
    return z[finite], np.repeat(np.arange(len(z)), counts), np.r_[0, np.cumsum(counts)[:-1]]


def temperature_nll(z, labels):
    """The mean NLL of the labels under ``softmax(z / T)`` as a function of T.

    Parameters
    ----------
    z : (n, K) logits or log-probabilities, ``-inf`` for padded candidates (checked by `logits_labels`)
    labels : (n,) integer array, the correct class of each item

    Only the finite entries count (padded ``-inf`` candidates carry no mass at any T), so a call costs
    O(finite entries): the profile likelihood of T evaluates it many times.
    """
    z, lab = logits_labels(z, labels)
    flat, rows, starts = _ragged(z)
    top = z.max(axis=1)
    shifted, z_lab = flat - top[rows], z[np.arange(len(lab)), lab] - top

    def nll(t):
        return float(np.mean(np.log(np.add.reduceat(np.exp(shifted / t), starts)) - z_lab / t))
    return nll


def temperature_nll_items(z, labels, temperatures) -> np.ndarray:
    """Each item's NLL of its label under ``softmax(z / T)``, at each of several temperatures.

    Parameters
    ----------
    z : (n, K) logits or log-probabilities, ``-inf`` for padded candidates (checked by `logits_labels`)
    labels : (n,) integer array, the correct class of each item
    temperatures : (G,) positive temperatures

    Returns
    -------
    (n, G) array: ``[i, g]`` is item i's NLL at ``temperatures[g]``; its column means are `temperature_nll`
    at each T. Item-additive, so a bootstrap reweights the items' rows to get each resample's NLL curve.
    """
    z, lab = logits_labels(z, labels)
    t = np.asarray(temperatures, dtype=float)
    if t.ndim != 1 or len(t) == 0 or not np.all(np.isfinite(t) & (t > 0)):
        raise ValueError("temperatures must be a non-empty 1-D array of finite positive numbers")
    flat, rows, starts = _ragged(z)
    top = z.max(axis=1)
    shifted, z_lab = flat - top[rows], z[np.arange(len(lab)), lab] - top     # (F,), (n,)
    return np.stack([np.log(np.add.reduceat(np.exp(shifted / u), starts)) - z_lab / u for u in t], axis=1)  # (n, G)


def fit_temperature(logits_or_logp, labels, *, bounds: tuple[float, float] = (0.05, 20.0)) -> TemperatureResult:
    """Fit one softmax temperature T > 0 minimising the mean NLL on held-out items.

    Parameters
    ----------
    logits_or_logp : (n, K) array of logits or log-probabilities (log-probs are valid logits)
    labels : (n,) integer array, the correct class of each item
    bounds : search interval for T; an optimum at a bound means the data want a more extreme T

    Returns
    -------
    TemperatureResult with ``temperature``, ``nll_before`` (T = 1), ``nll_after`` (fitted T), ``n``.

    Notes
    -----
    Temperature scaling (Guo et al. 2017): ``softmax(z / T)``; minimised over ``log T`` with
    ``scipy.optimize.minimize_scalar(method="bounded")``. Fit on items not used for evaluation.
    T > 1 softens an over-confident model (Kadavath et al. 2022 report T ~ 2.5 after RLHF).
    """
    nll = temperature_nll(logits_or_logp, labels)
    lo, hi = bounds
    if not 0 < lo < 1 < hi < np.inf:
        raise ValueError(f"bounds={bounds!r}: need 0 < low < 1 < high < inf")
    res = optimize.minimize_scalar(lambda u: nll(math.exp(u)), method="bounded",
                                   bounds=(math.log(lo), math.log(hi)), options={"xatol": 1e-6})
    before, t = nll(1.0), float(math.exp(res.x))
    after = nll(t)
    if after > before:  # the bounded search missed T = 1's basin (cannot happen for convex NLL)
        t, after = 1.0, before
    return TemperatureResult(t, before, after, len(np.asarray(labels)))


def apply_temperature(logp, temperature: float) -> np.ndarray:
    """Temperature-scaled log-probabilities ``log_softmax(z / T)`` along the last axis.

    Parameters
    ----------
    logp : (..., K) array of logits or log-probabilities
    temperature : T > 0, e.g. ``fit_temperature(...).temperature``

    Returns
    -------
    (..., K) array of log-probabilities (``exp`` sums to 1 along the last axis).

    Notes
    -----
    Guo et al. (2017); normalised with ``scipy.special.log_softmax``.
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature!r}: must be a finite positive number")
    z = np.asarray(logp, dtype=float)
    if z.ndim < 1 or np.any(np.isnan(z)):
        raise ValueError("logp must be an array of shape (..., K) without NaN")
    return log_softmax(z / temperature, axis=-1)
