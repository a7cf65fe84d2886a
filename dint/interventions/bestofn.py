"""Best-of-n as a selection policy: draw n answers from the base model, keep the best by a reward.

Best-of-n trains nothing; it moves the output distribution by selection. On a finite answer set
the moved distribution is exact. Sort the answers by reward, let F(y) = P(r(Y) <= r(y)) and
F(y⁻) = P(r(Y) < r(y)) under the base distribution p; the best of n iid draws has reward r(y)'s
level with probability F(y)^n − F(y⁻)^n.

Tie rule: among the n draws, the first draw (in draw order) whose reward is the maximum is kept.
Which draw comes first carries no information about which answer it is, so the answers tied at
one reward level share that level's probability in proportion to p:
``P_bon(y) = p(y) / p(level) · (F(y)^n − F(y⁻)^n)``. Any rule that picks among the tied draws by
position only (first, last, uniformly at random) gives the same distribution; `sampled` uses
"first", so `exact` and `sampled` agree.

Data convention: ``p`` and ``reward`` are arrays of shape (k,) for one item or (m, k) for m items
(one row per item, k answers; pad a ragged set with p = 0). ``p`` is each row's base distribution
over the k answers (non-negative, summing to 1).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

_SUM_TOL = 1e-6  # largest |sum(p) - 1| accepted before renormalising


def _check(p, reward, n) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Validated (m, k) float arrays, n, and whether the input was a single item."""
    p = np.asarray(p, dtype=float)
    reward = np.asarray(reward, dtype=float)
    if p.ndim not in (1, 2) or p.shape[-1] < 1:
        raise ValueError(f"p must have shape (k,) or (m, k) with k >= 1, got shape {p.shape}")
    if reward.shape != p.shape:
        raise ValueError(f"reward must have the shape of p {p.shape}, got {reward.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("p must be finite and non-negative")
    total = p.sum(-1)
    if (np.abs(total - 1.0) > _SUM_TOL).any():
        raise ValueError(f"p must sum to 1 over the last axis (got sums from {total.min():.6g} to "
                         f"{total.max():.6g}); renormalise it, e.g. over a candidate set")
    if not np.isfinite(reward).all():
        raise ValueError("reward must be finite (give a finite reward to every answer, even unreachable ones)")
    if isinstance(n, bool) or not float(n).is_integer() or n < 1:
        raise ValueError(f"n={n!r}: must be an integer >= 1 (the number of draws)")
    single = p.ndim == 1
    p2, r2 = np.atleast_2d(p), np.atleast_2d(reward)
    return p2 / p2.sum(-1, keepdims=True), r2, int(n), single


def exact(p, reward, n: int) -> np.ndarray:
    """Exact best-of-n distribution over a finite answer set.

    Parameters
    ----------
    p : (k,) or (m, k) array, base probabilities of the answers (rows sum to 1).
    reward : same shape, the reward of each answer (the selector's score).
    n : int >= 1, draws per selection.

    Returns
    -------
    (k,) or (m, k) array, P_bon(y) = p(y)/p(level) · (F(y)^n − F(y⁻)^n) (module docstring for the
    tie rule); rows sum to 1 and answers with p = 0 get 0.

    Notes
    -----
    F^n − G^n is computed as F^n · (−expm1(n · log1p(−p_level / F))), accurate when a level's mass
    is tiny next to F. Stiennon et al. (2020), *Learning to summarize from human feedback*, App. G.3.
    """
    p, r, n, single = _check(p, reward, n)
    m, k = p.shape
    order = np.argsort(r, axis=-1, kind="stable")                     # (m, k), rewards ascending
    ps, rs = np.take_along_axis(p, order, -1), np.take_along_axis(r, order, -1)
    new = np.ones((m, k), dtype=bool)
    new[:, 1:] = rs[:, 1:] != rs[:, :-1]
    level = np.cumsum(new, -1) - 1                                    # (m, k) tie level of each answer
    flat = (level + k * np.arange(m)[:, None]).ravel()
    mass = np.bincount(flat, weights=ps.ravel(), minlength=m * k).reshape(m, k)  # (m, levels)
    F = np.minimum(np.cumsum(mass, -1), 1.0)                          # P(r <= level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(F > 0, mass / F, 0.0)
        top = F ** n * -np.expm1(n * np.log1p(-np.minimum(ratio, 1.0)))  # F^n - (F - mass)^n
        top = np.where(F > 0, top, 0.0)
        share = np.where(np.take_along_axis(mass, level, -1) > 0,
                         ps / np.take_along_axis(mass, level, -1), 0.0)
    q_sorted = np.take_along_axis(top, level, -1) * share
    q = np.empty_like(q_sorted)
    np.put_along_axis(q, order, q_sorted, -1)
    return q[0] if single else q


def exact_kl(p, reward, n: int) -> np.ndarray | float:
    """KL(P_bon ‖ p) per item, in nats: (m,) array, or a float for one item.

    Never exceeds `kl_bound` (n); equals it only in the limit of no ties and no answer holding
    a finite share of the mass (a continuous reward distribution).
    """
    q = exact(p, reward, n)
    p = np.asarray(p, dtype=float)
    p = p / p.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0)
    out = np.maximum(terms.sum(-1), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def kl_bound(n) -> np.ndarray | float:
    """log n − (n − 1)/n, the KL of the best-of-n policy from its base without ties.

    Notes
    -----
    Stiennon et al. (2020) App. G.3; shown to be an upper bound on finite sets by Beirami et al.
    (2024), *Theoretical guarantees on the best-of-n alignment policy*, arXiv:2401.01879.
    """
    n_arr = np.asarray(n, dtype=float)
    if not np.isfinite(n_arr).all() or (n_arr < 1).any() or (n_arr != np.floor(n_arr)).any():
        raise ValueError(f"n={n!r}: must be integers >= 1")
    out = np.log(n_arr) - (n_arr - 1) / n_arr
    return float(out) if out.ndim == 0 else out


def sampled(p, reward, n: int, *, rng: np.random.Generator, size: int) -> np.ndarray:
    """Monte-Carlo best-of-n: ``size`` selections, each the best of n iid draws from p.

    Parameters
    ----------
    p, reward : (k,) or (m, k) arrays as in `exact`.
    n : int >= 1, draws per selection.
    rng : numpy Generator, the only source of randomness.
    size : int >= 1, selections per item.

    Returns
    -------
    (size,) or (m, size) int array: the index of the selected answer; among draws tied at the
    maximum reward the first draw is kept (the tie rule of `exact`).
    """
    p, r, n, single = _check(p, reward, n)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    if isinstance(size, bool) or not float(size).is_integer() or size < 1:
        raise ValueError(f"size={size!r}: must be an integer >= 1")
    size = int(size)
    out = np.empty((p.shape[0], size), dtype=np.int64)
    for i, (pi, ri) in enumerate(zip(p, r)):
        cdf = np.cumsum(pi)
        u = rng.random((size, n)) * cdf[-1]
        draws = np.minimum(np.searchsorted(cdf, u, side="right"), len(pi) - 1)  # (size, n)
        best = np.argmax(ri[draws], axis=1)                                     # first maximum
        out[i] = draws[np.arange(size), best]
    return out[0] if single else out


def select(samples: pd.DataFrame, reward: Callable | np.ndarray, *, n: int | None = None) -> pd.DataFrame:
    """Best-of-n over sampled texts: per prompt, the sample with the highest reward.

    Parameters
    ----------
    samples : DataFrame with ``item``, ``sample``, ``prompt``, ``text`` (e.g. `dint.sampling.sample`).
    reward : a callable ``reward(prompts, texts) -> (rows,) array`` (e.g. ``RewardModel.score``),
        or an array of one reward per row of ``samples``.
    n : use the first n samples of each item (by ``sample``); default all.

    Returns
    -------
    DataFrame, one row per item, ordered by item: ``item``, ``sample`` (the kept one), ``prompt``,
    ``text``, ``reward`` and ``n`` (samples considered). Ties keep the lowest ``sample`` index,
    the tie rule of `exact`.
    """
    need = {"item", "sample", "prompt", "text"}
    if not isinstance(samples, pd.DataFrame) or not need <= set(samples.columns) or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty DataFrame with columns {sorted(need)}")
    if n is not None and (isinstance(n, bool) or not float(n).is_integer() or n < 1):
        raise ValueError(f"n={n!r}: must be an integer >= 1 or None")
    df = samples.reset_index(drop=True)
    if callable(reward):
        r = np.asarray(reward(df["prompt"].tolist(), df["text"].tolist()), dtype=float)
    else:
        r = np.asarray(reward, dtype=float)
    if r.shape != (len(df),) or not np.isfinite(r).all():
        raise ValueError(f"reward must give one finite value per row of samples ({len(df)})")
    df = df.assign(reward=r).sort_values(["item", "sample"], kind="stable")
    if n is not None:
        df = df.groupby("item", sort=False).head(int(n))
    counts = df.groupby("item")["sample"].size()
    best = df.loc[df.groupby("item", sort=True)["reward"].idxmax()]  # idxmax: first maximum in order
    best = best[["item", "sample", "prompt", "text", "reward"]].reset_index(drop=True)
    best["n"] = counts.loc[best["item"]].to_numpy()
    return best
