"""How an intervention shifts a model's answer distributions, item by item, with paired tests.

Two models scored on the same prompts (`dint.pipeline.artifacts.score_world` tables) give, per item
(fact × prompt form), two distributions over the same candidate set. `shift` lines them up and
measures the shift: KL(post ‖ base) and TV over the candidate set, the entropy change, whether the
top answer is right before and after, and the probability of the true value. `summarize` turns
those per-item rows into the paired estimates a claim quotes, each with its interval and test.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import divergence, stats
from .stats import proportions

__all__ = ["distributions", "shift", "summarize", "transitions"]

ITEM_KEYS = ["fact", "form"]


def distributions(scores: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Each item's candidate-set log-probabilities as a padded array.

    Parameters
    ----------
    scores : a `score_world` table (``fact``, ``form``, ``candidate``, ``answer``, ``p_set``,
        ``is_true``, ...)

    Returns
    -------
    items : DataFrame ``fact, form`` (sorted), one row per item
    logp : (m, k_max) array, log p_set by candidate index, ``-inf`` where an item has fewer candidates
    true : (m, k_max) bool array, the true value's position
    """
    need = {"fact", "form", "candidate", "p_set", "is_true"}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise ValueError(f"scores lacks column(s) {missing}: pass a table from dint.pipeline.artifacts.score_world")
    s = scores.sort_values(ITEM_KEYS + ["candidate"])
    items = s[ITEM_KEYS].drop_duplicates().reset_index(drop=True)
    row = s.groupby(ITEM_KEYS, sort=True).ngroup().to_numpy()
    k = int(s["candidate"].max()) + 1
    logp = np.full((len(items), k), -np.inf)
    true = np.zeros((len(items), k), dtype=bool)
    with np.errstate(divide="ignore"):
        logp[row, s["candidate"].to_numpy()] = np.log(s["p_set"].to_numpy())
    true[row, s["candidate"].to_numpy()] = s["is_true"].to_numpy()
    return items, logp, true


def shift(base: pd.DataFrame, post: pd.DataFrame, facts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-item shift of ``post``'s answer distributions from ``base``'s.

    Parameters
    ----------
    base, post : `score_world` tables of the two models on the same items and candidates
    facts : the world's ``facts`` table, optional; its ``split``, ``type`` and ``relation`` are
        joined on ``fact``

    Returns
    -------
    DataFrame, one row per item: ``fact, form`` (+ ``split, type, relation``), ``kl`` =
    KL(post ‖ base), ``tv``, ``entropy_base``, ``entropy_post``, ``d_entropy``, ``p_true_base``,
    ``p_true_post``, ``correct_base``, ``correct_post`` (the top answer is the true value).
    """
    ib, lb, tb = distributions(base)
    ip, lp, tp = distributions(post)
    if not ib.equals(ip) or lb.shape != lp.shape or not np.array_equal(tb, tp):
        raise ValueError("base and post must be scored on the same items and candidate sets")
    out = ib.copy()
    out["kl"] = divergence.kl(lp, lb)
    out["tv"] = divergence.tv(lp, lb)
    out["entropy_base"] = divergence.entropy(lb)
    out["entropy_post"] = divergence.entropy(lp)
    out["d_entropy"] = out["entropy_post"] - out["entropy_base"]
    out["p_true_base"] = np.exp(np.where(tb, lb, -np.inf)).sum(axis=1)
    out["p_true_post"] = np.exp(np.where(tp, lp, -np.inf)).sum(axis=1)
    out["correct_base"] = tb[np.arange(len(lb)), lb.argmax(axis=1)]
    out["correct_post"] = tp[np.arange(len(lp)), lp.argmax(axis=1)]
    if facts is not None:
        cols = [c for c in ("split", "type", "relation") if c in facts.columns]
        out = out.merge(facts[["fact", *cols]], on="fact", how="left", validate="many_to_one")
    return out


def transitions(items: pd.DataFrame) -> dict:
    """Counts of per-item transitions of the top answer: right→right, right→wrong, wrong→right,
    wrong→wrong."""
    b, a = items["correct_base"].to_numpy(bool), items["correct_post"].to_numpy(bool)
    return {"right_right": int(np.sum(b & a)), "right_wrong": int(np.sum(b & ~a)),
            "wrong_right": int(np.sum(~b & a)), "wrong_wrong": int(np.sum(~b & ~a))}


def summarize(items: pd.DataFrame, *, by: str | list[str] | None = None, confidence_level: float = 0.95,
              n_resamples: int = 2000, rng: int = 0) -> pd.DataFrame:
    """The paired estimates of a shift, per group, each with its interval and test.

    Parameters
    ----------
    items : output of `shift`
    by : column(s) to group by (e.g. ``"split"`` or ``["split", "type"]``); None for all items

    Returns
    -------
    Tidy DataFrame, one row per (group, measure): ``measure`` in ``kl``, ``tv``, ``d_entropy``,
    ``accuracy_base``, ``accuracy_post``, ``d_accuracy``; ``estimate``, ``ci_low``, ``ci_high``,
    ``pvalue`` (NaN where no test is made), ``test``, ``n`` and ``reason`` (why a test could not be made,
    e.g. no discordant pairs; empty otherwise); plus the transition counts on the ``d_accuracy`` row.

    Notes
    -----
    Mean KL and TV: bootstrap intervals for the mean (`stats.bootstrap_mean`); a KL of 0 means
    no shift, so an interval excluding 0 shows a measurable shift. Entropy change: the paired
    sign-flip permutation test with its interval. Accuracy change: McNemar's exact test with the
    Newcombe paired interval. Items are treated as independent; two forms of one fact are two
    items (use `stats.cluster_bootstrap` by fact where that matters).
    """
    groups = [((), items)] if by is None else items.groupby(by, sort=True)
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = dict(zip([by] if isinstance(by, str) else (by or []), key))
        n = len(g)
        if n < 2:
            continue
        for m in ("kl", "tv"):
            r = stats.bootstrap_mean(g[m].to_numpy(float), confidence_level=confidence_level,
                                     n_resamples=n_resamples, rng=rng)
            rows.append({**label, "measure": m, "estimate": r.statistic, "ci_low": r.confidence_interval.low,
                         "ci_high": r.confidence_interval.high, "pvalue": np.nan, "test": r.method, "n": n})
        r = stats.paired_permutation_test(g["entropy_post"].to_numpy(float), g["entropy_base"].to_numpy(float),
                                          n_resamples=n_resamples, rng=rng)
        rows.append({**label, "measure": "d_entropy", "estimate": r.statistic, "ci_low": r.confidence_interval.low,
                     "ci_high": r.confidence_interval.high, "pvalue": r.pvalue, "test": "paired permutation",
                     "n": n, "reason": r.reason})
        for m, col in (("accuracy_base", "correct_base"), ("accuracy_post", "correct_post")):
            r = stats.proportion(int(g[col].sum()), n, confidence_level=confidence_level)
            rows.append({**label, "measure": m, "estimate": r.statistic, "ci_low": r.confidence_interval.low,
                         "ci_high": r.confidence_interval.high, "pvalue": np.nan, "test": r.method, "n": n})
        r = proportions.mcnemar(g["correct_base"].to_numpy(bool), g["correct_post"].to_numpy(bool),
                                confidence_level=confidence_level)
        rows.append({**label, "measure": "d_accuracy", "estimate": r.statistic, "ci_low": r.confidence_interval.low,
                     "ci_high": r.confidence_interval.high, "pvalue": r.pvalue, "test": "McNemar exact", "n": n,
                     "reason": r.reason, **transitions(g)})
    return pd.DataFrame(rows)
