"""Divergences between discrete distributions given as log-probabilities.

Exact entropy, Kullback--Leibler, total-variation and Jensen--Shannon
divergences on a finite support, a Monte-Carlo estimator of sequence-level
KL from samples, pass@k (the unbiased estimator from samples, and its exact
value from the probability of the true answer), and the token-level shift
analysis of a post-trained model against its base (URIAL's classes on the tokens of
the answer, with the stop and the text after the answer told apart, and the
full-vocabulary KL at each position). All distributions are given as natural
logarithms; zero mass is ``-inf`` and is handled with the convention
``0 * log 0 = 0``.
"""
from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats

from .stats.result import ConfidenceInterval
from .stats.checks import check_int

__all__ = [
    "ANSWER_ROLES",
    "SHIFT_CLASSES",
    "MCKLResult",
    "TokenShiftResult",
    "answer_roles",
    "entropy",
    "js",
    "kl",
    "mc_kl",
    "pass_at_k",
    "pass_exact",
    "shift_shares",
    "share_of_positions",
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
# what each decoded token is: a token of the answer value whose choice the candidates leave open, a forced
# continuation of the value, a closing marker right after it, the stop (eos), or anything else after the answer
ANSWER_ROLES = ("answer", "forced", "closing", "stop", "after")


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


def answer_roles(tokens, candidates=None, *, eos=None, closings=(), first_word: int = 1):
    """The role of each token of a decoded output: which tokens are the answer, and where it stops.

    The answer value is the longest candidate whose tokens begin the output; if none does, the output's
    first word (``first_word`` tokens). A token of the value is *forced* when every candidate that agrees
    with the value's tokens before it continues with that same token (the second word of the only
    two-word value that begins so): the candidates, not the model, chose it. After the value, one of
    ``closings`` may follow (e.g. a closing full stop); the first ``eos`` is the stop; every other token
    is *after* the answer.

    Parameters
    ----------
    tokens : (T,) int token ids of the output
    candidates : sequences of token ids, the candidate answer values as continuations of the prompt;
        None: no value to match, every token before the stop is an answer token (none forced)
    eos : the stop token's id (None: the output has no stop)
    closings : sequences of token ids that may close an answer before its stop
    first_word : tokens of the output's first word, the answer when no candidate begins the output

    Returns
    -------
    roles : (T,) array of `ANSWER_ROLES`
    matched : bool, a candidate begins the output
    """
    tokens = [int(t) for t in np.asarray(tokens).reshape(-1)]
    check_int("first_word", first_word, 0)
    end = tokens.index(eos) if eos is not None and eos in tokens else len(tokens)
    body = tuple(tokens[:end])
    roles = np.array(["after"] * len(tokens), dtype=object)
    if end < len(tokens):
        roles[end] = "stop"
    if candidates is None:
        roles[:end] = "answer"
        return roles.astype(str), False
    cands = [tuple(int(t) for t in c) for c in candidates if len(c)]
    hits = [c for c in cands if body[:len(c)] == c]
    span = max(map(len, hits)) if hits else min(first_word, end)
    roles[:span] = "answer"
    if hits:
        for j in range(span):
            following = {c[j] if len(c) > j else None for c in cands if c[:j] == body[:j]}
            if following == {body[j]}:
                roles[j] = "forced"
    for closing in sorted((tuple(int(t) for t in c) for c in closings), key=len, reverse=True):
        if span and closing and body[span:span + len(closing)] == closing:
            roles[span:span + len(closing)] = "closing"
            break
    return roles.astype(str), bool(hits)


def shift_shares(table, roles=("answer",), *, confidence_level: float = 0.95, n_resamples: int = 2000,
                 rng=0) -> dict:
    """Per class of `SHIFT_CLASSES`, the share of the positions with one of ``roles``, with a
    cluster-bootstrap interval by item (`dint.stats.cluster_bootstrap`).

    Parameters
    ----------
    table : `TokenShiftResult.table` (``item``, ``role``, ``shift``)
    roles : the roles of `ANSWER_ROLES` counted (default: the unforced answer tokens); None: every position

    Returns
    -------
    {class: `dint.stats.Result`} (``n`` the positions counted); NaN with its reason where none is.
    """
    from . import stats

    bad = [] if roles is None else sorted(set(roles) - set(ANSWER_ROLES))
    if bad:
        raise ValueError(f"roles={roles!r}: {bad} are not roles; choose from {ANSWER_ROLES}")
    rows = table if roles is None else table[table["role"].isin(roles)]
    if rows.empty:
        return {c: stats.Result.not_estimable(f"no position with role {list(roles)}", n=0) for c in SHIFT_CLASSES}
    clusters = rows["item"].to_numpy()
    if len(set(clusters)) < 2:   # one item: a share, but no cluster to resample
        nan = ConfidenceInterval(float("nan"), float("nan"))
        return {c: stats.Result(float((rows["shift"] == c).mean()), nan, len(rows), "share of positions",
                                reason="one item: no interval") for c in SHIFT_CLASSES}
    return {c: share_of_positions(stats.cluster_bootstrap((rows["shift"] == c).to_numpy(float), clusters,
                                                          confidence_level=confidence_level, n_resamples=n_resamples,
                                                          rng=rng), n=len(rows))
            for c in SHIFT_CLASSES}


def share_of_positions(result, *, n: int):
    """A cluster-bootstrap share of positions: ``n`` the positions, its interval kept within [0, 1] (the
    studentized bound of `dint.stats.cluster_bootstrap` may pass 0 or 1 where a share is near them)."""
    ci = result.confidence_interval
    return replace(result, n=int(n), method="cluster bootstrap by item",
                   confidence_interval=ConfidenceInterval(max(0.0, ci.low), min(1.0, ci.high)))


@dataclass(frozen=True)
class TokenShiftResult:
    """Token-level shift of a post-trained model from its base; see :func:`token_shift`.

    ``table``: one row per decoded position (``item``, ``position``, ``token``, ``text``, ``role``,
    ``base_rank``, ``shift``, ``kl``, ...); ``items``: one row per prompt (``item``, ``answer_positions``,
    ``forced_positions``, ``closing_positions``, ``after_positions``, ``matched``, ``stopped``,
    ``stops_after_answer``, ``no_answer``); ``shares``: per class the share of the unforced answer tokens with a
    cluster-bootstrap interval (items resampled); ``kl``: the mean per-position KL over every position with
    its cluster-bootstrap interval.
    """

    table: "object"
    items: "object"
    shares: dict
    kl: object
    n_items: int
    n_positions: int


def _first_word(tokenizer, gen) -> int:
    """Tokens of the output's first word: the longest prefix whose decoded text holds no inner space."""
    n = 0
    for k in range(1, len(gen) + 1):
        if gen[k - 1] == tokenizer.eos_token_id or any(ch.isspace() for ch in tokenizer.decode(gen[:k]).strip()):
            break
        n = k
    return n


def token_shift(post_model, base_model, tokenizer, prompts, *, answers=None, closings=(), max_new_tokens: int = 8,
                confidence_level: float = 0.95, n_resamples: int = 2000, rng=0) -> TokenShiftResult:
    """URIAL's token-shift analysis on answer tokens, with full-vocabulary KL and intervals.

    The post-trained model decodes greedily from each prompt (encoded as `dint.scoring.encode_pair` encodes a
    context, the tokenizer's BOS included where it adds one); both models are then run teacher-forced on
    prompt + output, and each output token is ranked under the base model's next-token distribution at that
    position (:func:`token_shift_positions`) and given its role (:func:`answer_roles`): the tokens of the
    answer value, forced continuations of it, a closing marker, the stop (eos) and text after the answer are
    told apart, so that the shares are of answer tokens and the stop is counted per item.

    Parameters
    ----------
    post_model, base_model : causal LMs sharing ``tokenizer``
    prompts : sequence of str
    answers : per prompt the candidate answer values (str continuations, leading space included, e.g.
        ``" kessa vale"``); None: every token before the stop is an answer token
    closings : str continuations that may close an answer before its stop (e.g. ``" ."``)
    max_new_tokens : longest output; decoding also stops at the tokenizer's eos
    confidence_level, n_resamples, rng : for the cluster bootstrap over items

    Returns
    -------
    TokenShiftResult
    """
    import pandas as pd
    import torch

    from . import scoring, stats

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt")
    if answers is not None:
        answers = [list(a) for a in answers]
        if len(answers) != len(prompts):
            raise ValueError(f"answers has {len(answers)} entries for {len(prompts)} prompts: give one list of "
                             "candidate values per prompt (or None)")
    check_int("max_new_tokens", max_new_tokens, 1)
    if post_model.config.vocab_size != base_model.config.vocab_size:
        raise ValueError(f"post_model has {post_model.config.vocab_size} tokens, base_model "
                         f"{base_model.config.vocab_size}: they must share one vocabulary (the tokenizer's)")
    eos = tokenizer.eos_token_id
    rows, items = [], []
    with torch.no_grad():
        for item, prompt in enumerate(prompts):
            prompt_ids, _ = scoring.encode_pair(tokenizer, prompt, " ")
            cands = None if answers is None else [scoring.encode_pair(tokenizer, prompt, a)[1] for a in answers[item]]
            close = [scoring.encode_pair(tokenizer, prompt, c)[1] for c in closings]
            ids = torch.tensor([prompt_ids])
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
            roles, matched = answer_roles(gen.numpy(), cands, eos=eos, closings=close,
                                          first_word=_first_word(tokenizer, gen.tolist()))
            for t in range(len(gen)):
                rows.append({"item": item, "position": t, "token": int(gen[t]),
                             "text": tokenizer.convert_ids_to_tokens(int(gen[t])), "role": roles[t],
                             **{k: v[t] for k, v in pos.items()}})
            count = {r: int((roles == r).sum()) for r in ANSWER_ROLES}
            n_answer = count["answer"] + count["forced"]
            stopped = bool(count["stop"])
            items.append({"item": item, "answer_positions": n_answer, "forced_positions": count["forced"],
                          "closing_positions": count["closing"], "after_positions": count["after"],
                          "matched": matched, "stopped": stopped,
                          "stops_after_answer": stopped and n_answer > 0 and count["after"] == 0,
                          "no_answer": n_answer == 0})
    table, items = pd.DataFrame(rows), pd.DataFrame(items)
    if table.empty:
        raise ValueError("the post-trained model produced no tokens for any prompt")
    shares = shift_shares(table, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    mean_kl = stats.cluster_bootstrap(table["kl"].to_numpy(float), table["item"].to_numpy(),
                                      confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    return TokenShiftResult(table=table, items=items, shares=shares, kl=mean_kl, n_items=len(prompts),
                            n_positions=len(table))
