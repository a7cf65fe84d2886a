"""Divergences between discrete distributions given as log-probabilities.

Exact entropy, Kullback--Leibler, total-variation and Jensen--Shannon
divergences on a finite support, a Monte-Carlo estimator of sequence-level
KL from samples, and pass@k (the unbiased estimator from samples, and its exact
value from the probability of the true answer); the token-level shift of a
post-trained model against its base is `dint.tokens`. All distributions are given as natural
logarithms; zero mass is ``-inf`` and is handled with the convention
``0 * log 0 = 0``.
"""
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .stats.result import ConfidenceInterval
from .stats.checks import check_int

__all__ = [
    "MCKLResult",
    "as_logprob",
    "entropy",
    "js",
    "kl",
    "mc_kl",
    "pass_at_k",
    "pass_exact",
    "tv",
]

_LOG_TOL = 1e-6  # largest positive log-probability tolerated (rounding)


@dataclass(frozen=True)
class MCKLResult:
    """Monte-Carlo estimate of KL(p || q); see :func:`mc_kl`."""

    statistic: float
    standard_error: float
    confidence_interval: ConfidenceInterval
    k3: float
    n: int
    method: str


def as_logprob(x, name: str, *, finite: bool = False) -> np.ndarray:
    """``x`` as an array of log-probabilities (no NaN, none above 0 beyond rounding; with ``finite``, no
    ``-inf``), or a ValueError naming ``name``."""
    arr = np.asarray(x, dtype=float)
    if np.isnan(arr).any():
        raise ValueError(f"{name} must contain no NaN")
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    if (arr > _LOG_TOL).any():
        raise ValueError(f"{name} must be log-probabilities (<= 0)")
    return np.minimum(arr, 0.0)


def _prepare(arrays, names, axis: int, normalize: bool) -> list[np.ndarray]:
    """Validate, left-pad to a common rank, broadcast and optionally renormalise."""
    arrs = [as_logprob(x, nm) for x, nm in zip(arrays, names)]
    ndim = max(a.ndim for a in arrs)
    arrs = [a.reshape((1,) * (ndim - a.ndim) + a.shape) for a in arrs]
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {' and '.join(names)}")
    if len(arrs) == 2:
        if arrs[0].shape[axis] != arrs[1].shape[axis]:
            raise ValueError("logp and logq must have the same support size along axis")
        try:
            arrs = list(np.broadcast_arrays(*arrs))
        except ValueError:
            raise ValueError("logp and logq must be broadcastable") from None
    if normalize:
        for i, nm in enumerate(names):
            total = special.logsumexp(arrs[i], axis=axis, keepdims=True)
            if np.isneginf(total).any():
                raise ValueError(f"{nm} must have positive mass along axis to normalize")
            arrs[i] = np.minimum(arrs[i] - total, 0.0)
    return arrs


def _kl_terms(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """Elementwise p * (log p - log q), with 0 where p = 0 and inf where q = 0 < p."""
    with np.errstate(invalid="ignore"):  # -inf - (-inf) where p = q = 0; masked
        terms = np.exp(logp) * (logp - logq)
    return np.where(np.isneginf(logp), 0.0, terms)


def entropy(logp, *, axis: int = -1, normalize: bool = False):
    """Shannon entropy H(p) in nats.

    Parameters
    ----------
    logp : array_like, shape (..., K, ...)
        Natural-log probabilities; the support of size K lies along `axis`.
    axis : int, optional
        Axis holding the support. Default -1.
    normalize : bool, optional
        If True, renormalise along `axis` first (for sub-normalised inputs).

    Returns
    -------
    h : float or ndarray, shape of `logp` without `axis`
        ``-sum p log p``, with ``0 log 0 = 0``.

    Notes
    -----
    Computed from ``logp`` directly, so no precision is lost in ``log(exp(.))``.
    """
    (logp,) = _prepare([logp], ["logp"], axis, normalize)
    safe = np.where(np.isneginf(logp), 0.0, logp)
    return -np.sum(np.exp(logp) * safe, axis=axis)


def kl(logp, logq, *, axis: int = -1, normalize: bool = False):
    """Kullback--Leibler divergence KL(p || q) in nats.

    Parameters
    ----------
    logp, logq : array_like, shape (..., K, ...)
        Natural-log probabilities with support size K along `axis`, broadcastable
        under NumPy rules (`axis` refers to the broadcast shape).
    axis : int, optional
        Axis holding the support. Default -1.
    normalize : bool, optional
        If True, renormalise each distribution along `axis` first.

    Returns
    -------
    d : float or ndarray, broadcast shape without `axis`
        ``sum p (log p - log q)``; ``+inf`` where some ``p > 0`` has ``q = 0``.

    Notes
    -----
    Kullback & Leibler (1951), "On information and sufficiency".
    """
    logp, logq = _prepare([logp, logq], ["logp", "logq"], axis, normalize)
    return np.sum(_kl_terms(logp, logq), axis=axis)


def tv(logp, logq, *, axis: int = -1, normalize: bool = False):
    """Total-variation distance ``0.5 * sum |p - q|``.

    Parameters
    ----------
    logp, logq : array_like, shape (..., K, ...)
        Natural-log probabilities with support size K along `axis`, broadcastable
        under NumPy rules (`axis` refers to the broadcast shape).
    axis : int, optional
        Axis holding the support. Default -1.
    normalize : bool, optional
        If True, renormalise each distribution along `axis` first.

    Returns
    -------
    d : float or ndarray, broadcast shape without `axis`
        Total-variation distance in [0, 1].

    Notes
    -----
    Equals ``sup_A |P(A) - Q(A)|`` for normalised distributions.
    """
    logp, logq = _prepare([logp, logq], ["logp", "logq"], axis, normalize)
    return 0.5 * np.sum(np.abs(np.exp(logp) - np.exp(logq)), axis=axis)


def js(logp, logq, *, axis: int = -1, normalize: bool = False):
    """Jensen--Shannon divergence in nats, bounded by log 2.

    Parameters
    ----------
    logp, logq : array_like, shape (..., K, ...)
        Natural-log probabilities with support size K along `axis`, broadcastable
        under NumPy rules (`axis` refers to the broadcast shape).
    axis : int, optional
        Axis holding the support. Default -1.
    normalize : bool, optional
        If True, renormalise each distribution along `axis` first.

    Returns
    -------
    d : float or ndarray, broadcast shape without `axis`
        ``0.5 KL(p || m) + 0.5 KL(q || m)`` with ``m = (p + q) / 2``, in [0, log 2].

    Notes
    -----
    Lin (1991), "Divergence measures based on the Shannon entropy",
    IEEE Trans. Inf. Theory 37(1). This is the divergence, not its square
    root (the distance returned by ``scipy.spatial.distance.jensenshannon``).
    """
    logp, logq = _prepare([logp, logq], ["logp", "logq"], axis, normalize)
    logm = np.logaddexp(logp, logq) - np.log(2.0)
    d = 0.5 * np.sum(_kl_terms(logp, logm) + _kl_terms(logq, logm), axis=axis)
    return np.clip(d, 0.0, np.log(2.0))


def mc_kl(logp, logq, *, confidence_level: float = 0.95) -> MCKLResult:
    """Monte-Carlo estimate of sequence-level KL(p || q) from samples of p.

    Parameters
    ----------
    logp, logq : array_like, shape (n,)
        Sequence log-probabilities ``log p(y_i)`` and ``log q(y_i)`` (sums of
        token log-probabilities) for samples ``y_i ~ p``, ``n >= 2``.
    confidence_level : float, optional
        Coverage of the two-sided interval, in (0, 1). Default 0.95.

    Returns
    -------
    result : MCKLResult
        ``statistic``: unbiased k1 estimate ``mean(r)``, ``r_i = logp_i - logq_i``;
        ``standard_error``: ``std(r, ddof=1) / sqrt(n)``; ``confidence_interval``:
        Student-t interval (n - 1 df) on the mean of ``r``; ``k3``: unbiased
        ``mean(exp(-r) - 1 + r)``, nonnegative per sample, lower variance when p ~ q.

    Notes
    -----
    Schulman (2020), "Approximating KL divergence",
    http://joschu.net/blog/kl-approx.html. The interval relies on the CLT
    and can undercover when ``r`` is heavy-tailed. ``logq`` must be finite:
    a sample with ``q(y) = 0`` makes KL(p || q) infinite.
    """
    logp = as_logprob(logp, "logp", finite=True)
    logq = as_logprob(logq, "logq", finite=True)
    if logp.ndim != 1 or logp.shape != logq.shape:
        raise ValueError("logp and logq must be 1-D arrays of the same length")
    n = logp.size
    if n < 2:
        raise ValueError("logp must contain at least 2 samples")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError("confidence_level must be in (0, 1)")
    r = logp - logq
    mean = float(np.mean(r))
    se = float(np.std(r, ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + confidence_level / 2.0, df=n - 1)) * se
    with np.errstate(over="ignore"):
        k3 = float(np.mean(np.expm1(-r) + r))
    return MCKLResult(statistic=mean, standard_error=se,
                      confidence_interval=ConfidenceInterval(mean - half, mean + half),
                      k3=k3, n=n, method="Monte-Carlo k1 mean with Student-t interval")


def _as_counts(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError(f"{name} must contain integers")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return arr.astype(np.int64)


def pass_at_k(n, c, k: int):
    """Unbiased pass@k estimate ``1 - C(n - c, k) / C(n, k)``.

    Parameters
    ----------
    n : array_like of int, broadcastable with `c`
        Number of samples drawn per problem.
    c : array_like of int, broadcastable with `n`
        Number of correct samples per problem, ``0 <= c <= n``.
    k : int
        Budget, ``1 <= k <= min(n)``.

    Returns
    -------
    p : float or ndarray, broadcast shape of `n` and `c`
        Probability that at least one of k samples drawn without replacement
        is correct; exactly 1.0 where ``n - c < k``.

    Notes
    -----
    Chen et al. (2021), "Evaluating Large Language Models Trained on Code",
    arXiv:2107.03374. Uses the product form
    ``C(n-c, k) / C(n, k) = prod_{j<k} (1 - c / (n - j))`` in log space, which
    avoids overflowing binomial coefficients.
    """
    check_int("k", k, 1)
    n, c = _as_counts(n, "n"), _as_counts(c, "c")
    try:
        n, c = np.broadcast_arrays(n, c)
    except ValueError:
        raise ValueError("n and c must be broadcastable") from None
    if (c > n).any():
        raise ValueError("c must not exceed n")
    if (k > n).any():
        raise ValueError("k must not exceed n")
    j = np.arange(k)
    frac = np.minimum(c[..., None] / (n[..., None] - j), 1.0)
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf where n - c < k
        log_fail = np.sum(np.log1p(-frac), axis=-1)
    out = np.where(n - c < k, 1.0, 0.0 - np.expm1(log_fail))
    return out[()]


def pass_exact(p, k):
    """P(at least one of k independent draws is the true answer) = 1 − (1 − p)^k.

    Parameters
    ----------
    p : (n,) probability of the true answer per item (e.g. `dint.taxonomy.classify`'s ``p_true_post``)
    k : int or (m,) ints >= 1, the number of draws

    Returns
    -------
    (n, m) array (m = 1 for a scalar ``k``): exact pass@k with replacement, the quantity that
    `pass_at_k` estimates without bias from n samples with c correct.
    """
    p = np.asarray(p, float)
    if p.ndim != 1 or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("p must be a 1-D array of probabilities in [0, 1]")
    k = np.atleast_1d(np.asarray(k))
    if k.ndim != 1 or len(k) == 0 or k.dtype.kind not in "iu" or (k < 1).any():
        raise ValueError(f"k={k!r}: must be a positive int or a 1-D array of positive ints")
    with np.errstate(divide="ignore"):   # log1p(-1) = -inf: p = 1 passes at every k
        return -np.expm1(k[None, :] * np.log1p(-p)[:, None])
