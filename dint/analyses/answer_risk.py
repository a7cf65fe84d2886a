"""The learned verifier's risk per returned answer: conformal risk control of "sample until it accepts".

Sampling from a model until a verifier's score reaches a threshold, at most B draws, returns the first
accepted draw, else abstains (`dint.analyses.selection.sample_until_verified`). A threshold that holds
P(accepted and wrong) at alpha for one checked draw does not hold it for the answer returned: up to B draws
are checked, and a wrong one accepted at any of them is returned. Here an item's loss at a threshold is the
exact probability that the policy returns a wrong answer (`loss_curves`), and the threshold is set by
conformal risk control of that loss (`dint.selective.conformal_risk_threshold`) on calibration items
exchangeable with the questions, so P(returned and wrong) <= alpha per budget. Facts a model was trained on
are not exchangeable with held-out ones; the calibration items are held-out facts, and their labels are
information the training points do not have.

`grid` gives the thresholds tried; `cross_fit` fits a threshold per budget on each fold of the held-out
items and applies it to the others (every item gets an outcome from a threshold fitted without it);
`splits` averages the realised risk over random calibration/test splits, the expectation the guarantee is
about (Angelopoulos et al. 2022).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import stats
from ..selective import conformal_risk_threshold
from ..stats.checks import check_int

__all__ = ["cross_fit", "grid", "loss_curves", "splits"]


def _inputs(p, score, correct):
    p, score, correct = np.asarray(p, float), np.asarray(score, float), np.asarray(correct, bool)
    if p.ndim != 2 or score.shape != p.shape or correct.shape != p.shape:
        raise ValueError(f"p, score and correct must be (m, k) arrays of one shape; got {p.shape}, "
                         f"{score.shape}, {correct.shape}")
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise ValueError("p must hold a distribution per row (non-negative, summing to 1)")
    return p, score, correct


def grid(score, *, size: int = 256) -> np.ndarray:
    """Thresholds to try: up to ``size`` quantiles of the finite scores, ascending, then ``+inf`` (answer
    nothing). A function of all the items' scores together, so it keeps them exchangeable."""
    check_int("size", size, 2)
    s = np.asarray(score, float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("score has no finite value to set thresholds at")
    q = np.unique(np.quantile(s, np.linspace(0.0, 1.0, size), method="inverted_cdf"))
    return np.r_[q, np.inf]


def _grid(score, thresholds, size: int) -> np.ndarray:
    if thresholds is None:
        return grid(score, size=size)
    thr = np.asarray(thresholds, float)
    if thr.ndim != 1 or len(thr) < 2 or (np.diff(thr) <= 0).any() or thr[-1] != np.inf:
        raise ValueError("thresholds must be an increasing grid ending in +inf (answer nothing), e.g. grid(score)")
    return thr


def loss_curves(p, score, correct, thresholds, budget: int) -> dict:
    """Per item and threshold, the exact outcome of sampling until the score reaches the threshold.

    Parameters
    ----------
    p : (m, k) answer distribution per item (a last column of mass outside the candidate set, scored
        below every threshold, is allowed)
    score : (m, k) the verifier's score of each candidate
    correct : (m, k) bool, whether each candidate is right
    thresholds : (L,) ascending (`grid`)
    budget : draws at most

    Returns
    -------
    dict of (m, L) arrays: ``wrong`` P(a wrong answer is returned), the loss; ``right``; ``answered``.

    Notes
    -----
    With q the probability that one draw is accepted and w that it is accepted and wrong, the draws are
    iid: P(answered) = 1 − (1 − q)^B and P(returned and wrong) = w/q · (1 − (1 − q)^B).
    """
    p, score, correct = _inputs(p, score, correct)
    check_int("budget", budget, 1)
    thr = np.asarray(thresholds, float)
    accept = score[:, None, :] >= thr[None, :, None]                    # (m, L, k)
    q = np.einsum("mk,mlk->ml", p, accept)
    w = np.einsum("mk,mlk->ml", p * ~correct, accept)
    q = np.minimum(q, 1.0)
    answered = -np.expm1(budget * np.log1p(-q)) if (q < 1).all() else 1.0 - (1.0 - q) ** budget
    with np.errstate(divide="ignore", invalid="ignore"):
        wrong = np.clip(np.where(q > 0, w / q, 0.0) * answered, 0.0, 1.0)
    return {"wrong": wrong, "right": np.clip(answered - wrong, 0.0, 1.0), "answered": answered}


def cross_fit(p, score, correct, budgets, *, alpha: float, folds: int = 2, thresholds=None, size: int = 256,
              seed: int = 0) -> pd.DataFrame:
    """Per budget, a threshold for every item fitted on the folds it is not in.

    ``thresholds`` is the grid tried (default `grid` of ``score``, ``size`` points); pass one built from the real
    candidates' scores where ``score`` holds fillers (e.g. −1 for the mass outside the candidate set).

    Returns
    -------
    DataFrame, one row per (item, budget): ``item``, ``budget``, ``fold`` and ``threshold`` (accept a draw
    whose score reaches it; ``+inf`` abstains).
    """
    p, score, correct = _inputs(p, score, correct)
    check_int("folds", folds, 2)
    m = len(p)
    if m < 2 * folds:
        raise ValueError(f"{m} items cannot fill {folds} folds of at least 2 items; pass more items")
    fold = np.empty(m, dtype=int)
    fold[np.random.default_rng(seed).permutation(m)] = np.arange(m) % folds
    thr = _grid(score, thresholds, size)
    rows = []
    for b in budgets:
        loss = loss_curves(p, score, correct, thr, int(b))["wrong"]
        for f in range(folds):
            fitted = conformal_risk_threshold(loss[fold != f], thr, alpha=alpha).threshold
            rows.append(pd.DataFrame({"item": np.flatnonzero(fold == f), "budget": int(b), "fold": f,
                                      "threshold": fitted}))
    return pd.concat(rows, ignore_index=True).sort_values(["budget", "item"], ignore_index=True)


def splits(p, score, correct, budgets, *, alpha: float, share: float = 0.5, n_splits: int = 200, thresholds=None,
           size: int = 256, seed: int = 0, confidence_level: float = 0.95) -> pd.DataFrame:
    """The realised risk per budget, averaged over random calibration/test splits of the items.

    On each split a threshold per budget is fitted on ``share`` of the items and the policy's exact outcome
    is averaged over the others; the guarantee is on this average over splits. ``thresholds``: as in
    `cross_fit`.

    Returns
    -------
    DataFrame, one row per (budget, measure): ``budget``, ``measure`` (``error``: P(returned and wrong), its
    ``pvalue`` the one-sided t-test of mean > alpha; ``coverage``; ``accuracy``), the columns
    `dint.stats.ROW` (mean over splits, Student-t interval, n = splits), and ``within`` (the mean error at
    most alpha, on the error rows).
    """
    p, score, correct = _inputs(p, score, correct)
    check_int("n_splits", n_splits, 2)
    if not 0 < share < 1:
        raise ValueError(f"share={share!r}: give the calibration share in (0, 1)")
    m = len(p)
    k = min(max(round(share * m), 1), m - 1)
    rng = np.random.default_rng(seed)
    cal = np.zeros((n_splits, m), dtype=bool)
    for i in range(n_splits):
        cal[i, rng.permutation(m)[:k]] = True
    thr = _grid(score, thresholds, size)
    rows = []
    for b in budgets:
        curves = loss_curves(p, score, correct, thr, int(b))
        got = {"error": np.empty(n_splits), "coverage": np.empty(n_splits), "accuracy": np.empty(n_splits)}
        for i in range(n_splits):
            fitted = conformal_risk_threshold(curves["wrong"][cal[i]], thr, alpha=alpha).threshold
            j = int(np.searchsorted(thr, fitted))
            test = ~cal[i]
            got["error"][i] = curves["wrong"][test, j].mean()
            got["coverage"][i] = curves["answered"][test, j].mean()
            got["accuracy"][i] = curves["right"][test, j].mean()
        for measure, x in got.items():
            mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(n_splits))
            h = float(sps.t.ppf(0.5 + confidence_level / 2, n_splits - 1) * se)
            test_it = measure == "error" and se > 0
            pvalue = float(sps.t.sf((mean - alpha) / se, n_splits - 1)) if test_it else float("nan")
            reason = "" if measure != "error" or se > 0 else f"the realised error is {mean:.4g} on every split"
            method = f"mean over {n_splits} random splits, t interval" + ("; t-test mean > alpha" if test_it else "")
            r = stats.Result(mean, stats.ConfidenceInterval(mean - h, mean + h), n_splits, method, pvalue,
                             reason=reason)
            rows.append({**r.row(budget=int(b), measure=measure),
                         "within": bool(mean <= alpha) if measure == "error" else np.nan})
    return pd.DataFrame(rows)
