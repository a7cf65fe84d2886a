"""Diversity of a model's answers, per input and across inputs, per model and paired.

*Per-input* diversity is how spread one item's answer distribution is: its entropy and the
expected number of distinct answers among ``n_draws`` draws, the ``entropy`` and ``distinct``
columns of `dint.analyses.reliability.answer_table` (`dint.analyses.reliability.expected_distinct`). *Across-input*
diversity is how much the answers to different facts of a relation differ (`across_input_diversity`).
Both are the measures of Kirk et al. (2023), here exact on the candidate sets.

Two models are compared *paired*, on the same facts with the same resamples (`dint.stats.resampling`);
results are tidy DataFrames as in `dint.analyses.reliability` (one row per model and measure).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from .reliability import TIDY_COLUMNS, aligned, tidy_row, single_form, answer_table
from ..stats.resampling import bootstrap_values, paired_difference, common_seed, mean_difference
from ..stats import Result

__all__ = ["across_input_difference", "across_input_diversity", "diversity_changes", "diversity_summary"]


# ------------------------------------------------------------------------------ across-input diversity
def _relation_blocks(scores, facts):
    """The facts of ``scores`` ordered by relation, and per relation its slice of that order, its
    (n_g, K_g) p_set matrix over the relation's answers and those answers (sorted). Facts with their
    own candidate sets (real facts) put no mass on the answers outside their set."""
    need = {"fact", "candidate", "answer", "p_set"}
    if need - set(scores.columns):
        raise ValueError(f"scores lacks column(s) {sorted(need - set(scores.columns))}; pass a score_world table")
    s = scores.merge(facts[["fact", "relation"]], on="fact", how="left", validate="many_to_one")
    if s["relation"].isna().any():
        raise ValueError("scores has facts missing from facts; pass the world's facts table")
    if s.duplicated(["fact", "answer"]).any():
        raise ValueError("scores has a fact with the same answer twice; pass one row per candidate answer")
    order, blocks = [], []
    for _, g in s.groupby("relation", sort=True):
        f = np.sort(g["fact"].unique())
        answers = np.sort(g["answer"].unique())
        row = pd.Series(np.arange(len(f)), index=f).loc[g["fact"]].to_numpy()
        col = np.searchsorted(answers, g["answer"].to_numpy())
        p = np.zeros((len(f), len(answers)))
        p[row, col] = g["p_set"].to_numpy(float)
        blocks.append((slice(len(order), len(order) + len(f)), p, tuple(answers)))
        order += list(f)
    if min(len(p) for _, p, _ in blocks) < 2:
        raise ValueError("every relation needs at least 2 facts for across-input diversity")
    return np.array(order), blocks


def _across_sums(blocks):
    def sums(w):   # per relation: sum of w p, sum of w^2 |p|^2, sum of w, sum of w^2
        w2, parts = w ** 2, []
        for sl, p, _ in blocks:
            parts += [w[:, sl] @ p, w2[:, sl] @ np.sum(p ** 2, axis=1)[:, None], w[:, sl].sum(axis=1, keepdims=True),
                      w2[:, sl].sum(axis=1, keepdims=True)]
        return np.concatenate(parts, axis=1)
    return sums


def _across_value(sizes):
    edges = np.cumsum([0] + [k + 3 for k in sizes])

    def value(s):   # 1 - P(answers to two distinct facts of a relation agree), mean over relations
        out = np.zeros(len(s))
        for j, k in enumerate(sizes):
            b = s[:, edges[j]:edges[j + 1]]
            s1, s2, c1, c2 = b[:, :k], b[:, k], b[:, k + 1], b[:, k + 2]
            with np.errstate(divide="ignore", invalid="ignore"):   # no pair of distinct facts: NaN
                out += 1.0 - (np.sum(s1 ** 2, axis=1) - s2) / (c1 ** 2 - c2)
        return out / len(sizes)
    return value


def across_input_diversity(scores: pd.DataFrame, facts: pd.DataFrame) -> float:
    """Across-input diversity: the probability that answers drawn for two different facts of a
    relation differ, averaged over relations.

    Parameters
    ----------
    scores : a one-form `score_world` table (``fact``, ``candidate``, ``answer``, ``p_set``)
    facts : the world's ``facts`` table (``fact``, ``relation``); each relation needs >= 2 facts

    Returns
    -------
    ``mean_g [1 - (1 / (n_g (n_g - 1))) sum_{i != j in g} p_i . p_j]``: 0 when the model gives every
    fact of a relation the same answer, high when its answers spread over the value set.

    Notes
    -----
    The across-input diversity of Kirk et al. (2023), "Understanding the effects of RLHF on LLM
    generalisation and diversity" (one minus the mean pairwise similarity of outputs to different
    inputs), exact on finite answer sets with the exact-match similarity: the Gini-Simpson index
    (Simpson 1949) of drawing one answer per input, as a U-statistic over pairs of facts, so it is
    unbiased for the population of facts (unlike the plug-in entropy of the pooled marginal).
    """
    single_form(scores, "scores")
    order, blocks = _relation_blocks(scores, facts)
    value = _across_value([p.shape[1] for _, p, _ in blocks])
    return float(value(_across_sums(blocks)(np.ones((1, len(order)))))[0])


def _across_bootstrap(scores, facts, n_resamples, rng):
    single_form(scores, "scores")
    order, blocks = _relation_blocks(scores, facts)
    value = _across_value([p.shape[1] for _, p, _ in blocks])
    return order, [b[2] for b in blocks], bootstrap_values(_across_sums(blocks), value, len(order), n_resamples, rng)


def _across_result(a, b, confidence_level):
    if not np.array_equal(a[0], b[0]) or a[1] != b[1]:
        raise ValueError("scores_a and scores_b must cover the same facts with the same candidate answers per "
                         "relation; filter both the same way")
    est, ci, p, reason = paired_difference(a[2], b[2], confidence_level)
    return Result(est, ci, len(a[0]), "difference in across-input diversity (P(answers to two facts of a "
                  "relation differ)), paired bootstrap Wald interval and test (bootstrap standard error)", p,
                  reason=reason)


def across_input_difference(scores_a: pd.DataFrame, scores_b: pd.DataFrame, facts: pd.DataFrame, *,
                            confidence_level: float = 0.95, n_resamples: int = 9999,
                            rng: np.random.Generator | int = 0) -> Result:
    """Paired difference of `across_input_diversity` between two models on the same facts.

    Parameters
    ----------
    scores_a, scores_b : one-form `score_world` tables of the two models on the same facts
    facts : the world's ``facts`` table
    confidence_level, n_resamples, rng : as in `dint.analyses.reliability.ece_difference`

    Returns
    -------
    Result: the difference (a - b), the paired percentile bootstrap interval (facts resampled
    jointly; pairs of copies of one fact are left out of the U-statistic) and the p-value that
    inverts it. A resample that draws a relation's facts as a single distinct fact has no pair to
    compare and is left out (rare unless a relation has very few facts).
    """
    rng = common_seed(rng)
    return _across_result(_across_bootstrap(scores_a, facts, n_resamples, rng),
                          _across_bootstrap(scores_b, facts, n_resamples, rng), confidence_level)


def diversity_summary(scores: dict, facts: pd.DataFrame, *, n_draws: int = 8, confidence_level: float = 0.95
                      ) -> pd.DataFrame:
    """Per model: mean per-input entropy and expected distinct answers (t intervals), across-input diversity.

    Parameters
    ----------
    scores : {model name: one-form `score_world` table}, e.g. the held-out facts in the QA form
    facts : the world's ``facts`` table
    n_draws : draws for the expected number of distinct answers

    Returns
    -------
    Tidy DataFrame; measures ``entropy`` (nats), ``distinct`` and ``across`` (`across_input_diversity`,
    a U-statistic without an interval here; its changes carry one in `diversity_changes`).
    """
    rows = []
    for name, s in scores.items():
        a = answer_table(s, n_draws=n_draws)
        for col in ("entropy", "distinct"):
            rows.append(tidy_row(name, col, stats.bootstrap_mean(a[col].to_numpy(float), method="t",
                                                             confidence_level=confidence_level)))
        rows.append(tidy_row(name, "across", across_input_diversity(s, facts),
                         method="P(answers to two facts of a relation differ), U-statistic"))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def diversity_changes(scores: dict, reference: str, facts: pd.DataFrame, *, models=None, n_draws: int = 8,
                      confidence_level: float = 0.95, n_resamples: int = 2000, n_test_resamples: int = 9999,
                      rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Paired change of per-input and across-input diversity of each model from a reference.

    Parameters
    ----------
    scores : {model name: one-form `score_world` table}, all on the same facts and candidate sets
    reference : the key of ``scores`` to compare against (e.g. ``"base"``, or ``"sft"`` for RLHF)
    facts : the world's ``facts`` table
    models : keys to compare (default: every other key)
    n_draws : draws for the expected number of distinct answers
    confidence_level, n_resamples, n_test_resamples, rng : as in `dint.analyses.reliability.calibration_changes`

    Returns
    -------
    Tidy DataFrame with ``reference`` set; measures ``d_entropy`` (per-input entropy, nats) and
    ``d_distinct`` (expected distinct answers in ``n_draws`` draws), each a `dint.stats.resampling.mean_difference` over
    facts; ``d_across`` (`across_input_difference`). Negative: less diverse than the reference.

    Notes
    -----
    Per-input and across-input diversity as in Kirk et al. (2023), "Understanding the effects of
    RLHF on LLM generalisation and diversity", here exact on the candidate sets.
    """
    if not isinstance(scores, dict) or reference not in scores:
        raise ValueError(f"reference={reference!r}: must be a key of scores")
    models = [m for m in scores if m != reference] if models is None else list(models)
    bad = sorted(set(models) - set(scores))
    if bad:
        raise ValueError(f"models: {bad} are not keys of scores {list(scores)}")
    ref = answer_table(scores[reference], n_draws=n_draws)
    rng = common_seed(rng)
    ref_across = _across_bootstrap(scores[reference], facts, n_test_resamples, rng)
    rows = []
    for name in models:
        m = aligned(answer_table(scores[name], n_draws=n_draws), ref, ["entropy", "distinct"])
        for measure, col in (("d_entropy", "entropy"), ("d_distinct", "distinct")):
            r = mean_difference(m[f"{col}_a"].to_numpy(float), m[f"{col}_b"].to_numpy(float), rng=rng,
                                confidence_level=confidence_level, n_resamples=n_resamples,
                                n_permutations=n_test_resamples)
            rows.append(tidy_row(name, measure, r, reference))
        across = _across_bootstrap(scores[name], facts, n_test_resamples, rng)
        rows.append(tidy_row(name, "d_across", _across_result(across, ref_across, confidence_level), reference))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)
