"""Selection by verification: sample answers until one is verified, or keep the best of n.

Reliability comes from checking answers against a reference (`dint.verify`), and a checked answer
costs draws. On a finite candidate set every selection rule here is exact: the law of the kept
answer, the chance of abstaining and the expected cost follow in closed form from the model's
answer distribution and the verifier's decisions, with no Monte-Carlo error
(`sample_until_verified_mc` simulates the same rule, to check it).

Data convention: ``p`` is an (m, k) array, per item the answer distribution over its k candidates
(rows sum to 1, e.g. :func:`dint.scoring.score`'s ``p_set``; pad ragged sets with p = 0);
``accept`` / ``score`` are (m, k) arrays over the same candidates (see
:func:`dint.verify.verify_candidates`); ``correct`` is (m, k) boolean or (m,) the index of the true
candidate. A single item may be passed as (k,) arrays.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..interventions import bestofn
from ..stats.checks import check_int

__all__ = ["SELECTION_COLUMNS", "best_of_n_by_verifier", "sample_until_verified", "sample_until_verified_mc"]

_SUM_TOL = 1e-6          # largest |sum(p) - 1| accepted
SELECTION_COLUMNS = ["item", "budget", "p_correct", "p_wrong", "p_abstain", "draws", "cost"]


def _check_p(p) -> tuple[np.ndarray, bool]:
    p = np.asarray(p, dtype=float)
    if p.ndim not in (1, 2) or p.shape[-1] < 1 or p.size == 0:
        raise ValueError(f"p must have shape (k,) or (m, k) with k >= 1, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("p must be finite and non-negative")
    total = p.sum(-1)
    if (np.abs(total - 1.0) > _SUM_TOL).any():
        raise ValueError(f"p must sum to 1 over the last axis (sums from {total.min():.6g} to "
                         f"{total.max():.6g}); renormalise it over the candidate set")
    p2 = np.atleast_2d(p)
    return p2 / p2.sum(-1, keepdims=True), p.ndim == 1


def _matrix(name, x, shape, *, unit: bool) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape != shape and not (shape[0] == 1 and x.shape == shape[1:]):
        raise ValueError(f"{name} must have the shape of p {shape}, got {x.shape}")
    x = np.broadcast_to(x, shape)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    if unit and ((x < 0) | (x > 1)).any():
        raise ValueError(f"{name} must hold values in [0, 1] (booleans, or acceptance probabilities)")
    return x


def _correct(correct, shape) -> np.ndarray:
    c = np.asarray(correct)
    m, k = shape
    if c.shape in ((m,), ()) and np.issubdtype(c.dtype, np.integer) and c.dtype != bool:
        c = np.broadcast_to(c, (m,))
        if ((c < 0) | (c >= k)).any():
            raise ValueError(f"correct must hold candidate indices in 0..{k - 1}")
        out = np.zeros(shape, dtype=bool)
        out[np.arange(m), c] = True
        return out
    if c.shape != shape and not (m == 1 and c.shape == shape[1:]):
        raise ValueError(f"correct must be (m,) indices of the true candidate or a boolean array of "
                         f"p's shape {shape}, got shape {c.shape}")
    if c.dtype != bool and not np.isin(c, (0, 1)).all():
        raise ValueError("correct must be boolean or 0/1")
    return np.broadcast_to(c.astype(bool), shape)


def _budgets(budget) -> list[int]:
    b = np.atleast_1d(np.asarray(budget, dtype=object))
    if b.ndim != 1 or b.size == 0 or any(isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer))
                                         or x < 1 for x in b):
        raise ValueError(f"budget={budget!r}: must be an integer >= 1 (draws) or a sequence of them")
    return [int(x) for x in b]


def _cost(cost, shape) -> np.ndarray:
    c = np.asarray(cost, dtype=float)
    if c.ndim == 1 and c.shape == (shape[0],):
        c = c[:, None]
    elif c.shape not in ((), shape) and not (shape[0] == 1 and c.shape == shape[1:]):
        raise ValueError(f"cost must be a scalar, (m,) per item or p's shape {shape} per candidate; "
                         f"got shape {c.shape}")
    c = np.broadcast_to(c, shape)
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("cost must be finite and non-negative (tokens per draw)")
    return c


def _prepare(p, accept, correct, budget, cost):
    p, _ = _check_p(p)
    a = _matrix("accept", accept, p.shape, unit=True)
    return p, a, _correct(correct, p.shape), _budgets(budget), _cost(cost, p.shape)


def sample_until_verified(p, accept, budget, *, correct, cost=1.0) -> pd.DataFrame:
    """Exact outcome of "draw up to ``budget`` answers from p, return the first accepted, else abstain".

    Parameters
    ----------
    p : (m, k) or (k,) answer distribution per item over its candidates (rows sum to 1).
    accept : same shape, per candidate the probability that the verifier accepts one draw of it
        (booleans for a deterministic verifier; draws are checked independently).
    budget : int >= 1, or a sequence of them: the most draws per item.
    correct : (m, k) boolean, or (m,) index of the true candidate.
    cost : tokens spent per draw of a candidate — generation plus verification — as a scalar,
        (m,) per item or (m, k) per candidate (e.g. ``gen_tokens + checks.cost``).

    Returns
    -------
    DataFrame, one row per (item, budget): ``item``, ``budget``, ``p_correct``, ``p_wrong``,
    ``p_abstain`` (they sum to 1), ``draws`` (expected draws) and ``cost`` (expected tokens).

    Notes
    -----
    With per-draw acceptance q = Σ p·a and accepted-and-right s = Σ p·a·1[correct], the draws are
    iid, so P(abstain) = (1 − q)^B, P(correct) = s/q · (1 − (1 − q)^B), E[draws] =
    (1 − (1 − q)^B)/q (B when q = 0), and by Wald's identity E[cost] = E[draws] · Σ p·cost.
    With a perfect verifier P(correct) = 1 − (1 − p_true)^B: verification turns coverage of the
    truth under sampling (pass@B) into accuracy.
    """
    p, a, c, budgets, tok = _prepare(p, accept, correct, budget, cost)
    q = (p * a).sum(-1)                                               # (m,) P(a draw is accepted)
    s = (p * a * c).sum(-1)                                           # (m,) P(accepted and right)
    per_draw = (p * tok).sum(-1)                                      # (m,) expected tokens per draw
    frames = []
    for b in budgets:
        with np.errstate(divide="ignore", invalid="ignore"):
            answered = -np.expm1(b * np.log1p(-np.minimum(q, 1.0)))   # 1 − (1 − q)^B
            draws = np.where(q > 0, answered / q, float(b))
            right = np.where(q > 0, s / q, 0.0) * answered
        wrong = np.clip(answered - right, 0.0, 1.0)
        frames.append(pd.DataFrame({"item": np.arange(len(p)), "budget": b, "p_correct": right,
                                    "p_wrong": wrong, "p_abstain": 1.0 - answered, "draws": draws,
                                    "cost": draws * per_draw}))
    return pd.concat(frames, ignore_index=True)[SELECTION_COLUMNS]


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def sample_until_verified_mc(p, accept, budget, *, correct, cost=1.0, rng, size: int = 1000) -> pd.DataFrame:
    """Monte-Carlo twin of :func:`sample_until_verified`: ``size`` simulated runs per item.

    Parameters
    ----------
    p, accept, budget, correct, cost : as in :func:`sample_until_verified`.
    rng : numpy Generator or int seed, the only source of randomness.
    size : int >= 1, runs per item and budget.

    Returns
    -------
    DataFrame with the columns of :func:`sample_until_verified` (run means) plus ``size``.
    """
    p, a, c, budgets, tok = _prepare(p, accept, correct, budget, cost)
    gen = _rng(rng)
    check_int("size", size, 1)
    k = p.shape[1]
    rows = []
    for b in budgets:
        for i, (pi, ai, ci, ti) in enumerate(zip(p, a, c, tok)):
            cdf = np.cumsum(pi)
            last = k - 1 - np.argmax(pi[::-1] > 0)                      # never draw a p = 0 candidate
            draws = np.minimum(np.searchsorted(cdf, gen.random((size, b)) * cdf[-1], side="right"), last)
            ok = gen.random((size, b)) < ai[draws]                      # (size, B) accepted draws
            hit = ok.any(1)
            first = np.where(hit, np.argmax(ok, 1), b - 1)              # index of the last draw made
            chosen = draws[np.arange(size), first]
            n_draws = first + 1
            spent = np.where(np.arange(b) < n_draws[:, None], ti[draws], 0.0).sum(1)
            right = hit & ci[chosen]
            rows.append((i, b, right.mean(), (hit & ~ci[chosen]).mean(), 1.0 - hit.mean(),
                         n_draws.mean(), spent.mean(), int(size)))
    return pd.DataFrame(rows, columns=[*SELECTION_COLUMNS, "size"])


def best_of_n_by_verifier(p, score, n, *, correct, threshold: float = -math.inf, cost=1.0) -> pd.DataFrame:
    """Exact outcome of "draw n answers from p, keep the highest-scored; abstain if below threshold".

    Parameters
    ----------
    p : (m, k) or (k,) answer distribution per item (rows sum to 1).
    score : same shape, the verifier's score per candidate (ties: see :mod:`dint.interventions.bestofn`).
    n : int >= 1, or a sequence of them: draws per item.
    correct : (m, k) boolean, or (m,) index of the true candidate.
    threshold : answer only when the kept answer's score >= threshold (e.g. a calibrated
        ``LearnedVerifier.threshold``); -inf always answers.
    cost : tokens per draw of a candidate, as in :func:`sample_until_verified`.

    Returns
    -------
    DataFrame with the columns of :func:`sample_until_verified`; ``budget`` is n and ``draws`` = n
    (all n draws are made and verified).

    Notes
    -----
    The kept answer's law is :func:`dint.interventions.bestofn.exact`; the threshold then abstains
    on the kept answers scored below it. Stiennon et al. (2020), App. G.3.
    """
    p, _ = _check_p(p)
    r = _matrix("score", score, p.shape, unit=False)
    c, budgets, tok = _correct(correct, p.shape), _budgets(n), _cost(cost, p.shape)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or math.isnan(threshold):
        raise ValueError(f"threshold={threshold!r}: must be a number (-inf always answers)")
    keep = r >= threshold
    per_draw = (p * tok).sum(-1)
    frames = []
    for b in budgets:
        q = bestofn.exact(p, r, b) * keep                             # (m, k) law of answered picks
        right, answered = (q * c).sum(-1), q.sum(-1)
        frames.append(pd.DataFrame({"item": np.arange(len(p)), "budget": b, "p_correct": right,
                                    "p_wrong": np.clip(answered - right, 0.0, 1.0),
                                    "p_abstain": np.clip(1.0 - answered, 0.0, 1.0), "draws": float(b),
                                    "cost": b * per_draw}))
    return pd.concat(frames, ignore_index=True)[SELECTION_COLUMNS]
