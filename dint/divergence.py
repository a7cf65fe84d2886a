"""Divergences between discrete distributions given as log-probabilities.

Exact entropy, Kullback--Leibler, total-variation and Jensen--Shannon
divergences on a finite support, a Monte-Carlo estimator of sequence-level
KL from samples, pass@k (the unbiased estimator from samples, and its exact
value from the probability of the true answer), and the token-level shift
analysis of a post-trained model against its base (URIAL's classes, with the
full-vocabulary KL at each position). All distributions are given as natural
logarithms; zero mass is ``-inf`` and is handled with the convention
``0 * log 0 = 0``.
"""
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .stats.result import ConfidenceInterval
from .stats.checks import check_int

__all__ = [
    "SHIFT_CLASSES",
    "MCKLResult",
    "TokenShiftResult",
    "entropy",
    "js",
    "kl",
    "mc_kl",
    "pass_at_k",
    "pass_exact",
    "token_shift",
    "token_shift_positions",
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


def _as_logprob(x, name: str, *, finite: bool = False) -> np.ndarray:
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
    arrs = [_as_logprob(x, nm) for x, nm in zip(arrays, names)]
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
    logp = _as_logprob(logp, "logp", finite=True)
    logq = _as_logprob(logq, "logq", finite=True)
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


# ------------------------------------------------------------------------------ token shift
SHIFT_CLASSES = ("unshifted", "marginal", "shifted")


def token_shift_positions(post_logp, base_logp, tokens):
    """URIAL's token classes and the full-vocabulary KL at each position of a decoded answer.

    Parameters
    ----------
    post_logp, base_logp : (T, V) arrays
        Next-token log-probabilities of the post-trained and the base model at the T positions
        of the post-trained model's output, each given the same prefix.
    tokens : (T,) int array
        The tokens the post-trained model emitted (its greedy choices).

    Returns
    -------
    dict of (T,) arrays: ``base_rank`` (1 + the number of tokens the base ranks strictly higher),
    ``shift`` ("unshifted": rank 1, "marginal": rank 2-3, "shifted": rank > 3), ``kl``
    (KL(post || base) over the whole vocabulary, not truncated to the top k), ``base_logp_token``
    and ``post_logp_token``.

    Notes
    -----
    Lin et al. (2023), "The unlocking spell on base LLMs" (URIAL), arXiv:2312.01552, §2.
    """
    post = _as_logprob(post_logp, "post_logp")
    base = _as_logprob(base_logp, "base_logp")
    tokens = np.asarray(tokens)
    if post.ndim != 2 or post.shape != base.shape:
        raise ValueError(f"post_logp and base_logp must be (T, V) arrays of one shape, got {post.shape} "
                         f"and {base.shape}")
    if tokens.shape != (post.shape[0],) or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be {post.shape[0]} integer token ids, one per position")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= post.shape[1]):
        raise ValueError(f"tokens must lie in [0, {post.shape[1]}) (the vocabulary)")
    rows = np.arange(len(tokens))
    b_tok = base[rows, tokens]
    rank = 1 + (base > b_tok[:, None]).sum(axis=1)
    shift = np.where(rank == 1, "unshifted", np.where(rank <= 3, "marginal", "shifted"))
    return {"base_rank": rank, "shift": shift, "kl": kl(post, base, axis=-1),
            "base_logp_token": b_tok, "post_logp_token": post[rows, tokens]}


@dataclass(frozen=True)
class TokenShiftResult:
    """Token-level shift of a post-trained model from its base; see :func:`token_shift`.

    ``table``: one row per decoded position (``item``, ``position``, ``token``, ``text``,
    ``base_rank``, ``shift``, ``kl``, ...); ``shares``: per class the share of positions with a
    cluster-bootstrap interval (items resampled); ``kl``: the mean per-position KL with its
    cluster-bootstrap interval.
    """

    table: "object"
    shares: dict
    kl: object
    n_items: int
    n_positions: int


def token_shift(post_model, base_model, tokenizer, prompts, *, max_new_tokens: int = 8,
                confidence_level: float = 0.95, n_resamples: int = 2000, rng=0) -> TokenShiftResult:
    """URIAL's token-shift analysis with full-vocabulary KL and intervals.

    The post-trained model decodes greedily from each prompt; both models are then run
    teacher-forced on prompt + output, and each output token is ranked under the base model's
    next-token distribution at that position (:func:`token_shift_positions`).

    Parameters
    ----------
    post_model, base_model : causal LMs sharing ``tokenizer``
    prompts : sequence of str
    max_new_tokens : longest output; decoding also stops at the tokenizer's eos (counted as a
        position, as the choice to stop is a token too)
    confidence_level, n_resamples, rng : for the cluster bootstrap over items

    Returns
    -------
    TokenShiftResult
    """
    import pandas as pd
    import torch

    from . import stats

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt")
    check_int("max_new_tokens", max_new_tokens, 1)
    if post_model.config.vocab_size != base_model.config.vocab_size:
        raise ValueError(f"post_model has {post_model.config.vocab_size} tokens, base_model "
                         f"{base_model.config.vocab_size}: they must share one vocabulary (the tokenizer's)")
    eos = tokenizer.eos_token_id
    rows = []
    with torch.no_grad():
        for item, prompt in enumerate(prompts):
            ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
            out = post_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=max_new_tokens, eos_token_id=eos,
                                      pad_token_id=tokenizer.pad_token_id)
            gen = out[0, ids.shape[1]:]
            if eos is not None and (gen == eos).any():
                gen = gen[: int((gen == eos).nonzero()[0, 0]) + 1]
            full = torch.cat([ids[0], gen])[None, :]
            start = ids.shape[1] - 1
            post = torch.log_softmax(post_model(full).logits[0, start:-1].double(), -1).numpy()
            base = torch.log_softmax(base_model(full).logits[0, start:-1].double(), -1).numpy()
            pos = token_shift_positions(post, base, gen.numpy())
            for t in range(len(gen)):
                rows.append({"item": item, "position": t, "token": int(gen[t]),
                             "text": tokenizer.convert_ids_to_tokens(int(gen[t])),
                             **{k: v[t] for k, v in pos.items()}})
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("the post-trained model produced no tokens for any prompt")
    clusters = table["item"].to_numpy()
    shares = {c: stats.cluster_bootstrap((table["shift"] == c).to_numpy(float), clusters,
                                         confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
              for c in SHIFT_CLASSES}
    mean_kl = stats.cluster_bootstrap(table["kl"].to_numpy(float), clusters, confidence_level=confidence_level,
                                      n_resamples=n_resamples, rng=rng)
    return TokenShiftResult(table=table, shares=shares, kl=mean_kl, n_items=len(prompts), n_positions=len(table))
