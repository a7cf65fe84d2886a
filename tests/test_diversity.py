"""Tests for dint.analyses.diversity: across-input diversity, and per-input and across-input changes."""

import numpy as np
import pytest
from synthetic import score_tables

from dint.analyses import diversity


# ---------------------------------------------------------------- across-input diversity
def _across_bruteforce(scores, facts):
    s = scores.merge(facts, on="fact")
    out = []
    for _, g in s.groupby("relation"):
        p = g.pivot(index="fact", columns="candidate", values="p_set").to_numpy()
        sim = p @ p.T
        n = len(p)
        out.append(1 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
    return float(np.mean(out))


def test_across_input_diversity_against_bruteforce():
    facts, scores = score_tables(seed=1)
    assert diversity.across_input_diversity(scores, facts) == pytest.approx(_across_bruteforce(scores, facts))
    # every fact answering the same value: no diversity across inputs
    same = scores.assign(p_set=(scores.candidate == 0).astype(float))
    assert diversity.across_input_diversity(same, facts) == pytest.approx(0.0)


def test_across_input_diversity_with_a_candidate_set_per_fact():
    """Real facts: each fact has its own candidates; answers are matched by name, not position."""
    import pandas as pd

    facts = pd.DataFrame({"fact": [0, 1, 2, 3], "relation": ["capital", "capital", "capital", "language"]})
    scores = pd.DataFrame({"fact": [0, 0, 1, 1, 2, 2, 3, 3], "candidate": [0, 1, 0, 1, 0, 1, 0, 1],
                           "answer": ["Paris", "Lyon", "Lyon", "Rome", "Oslo", "Paris", "French", "Dutch"],
                           "p_set": [0.5, 0.5, 1.0, 0.0, 0.2, 0.8, 1.0, 0.0], "form": "qa"})
    # capital: P(agree) for the pairs (0,1) 0.5, (0,2) 0.4, (1,2) 0; language has a single fact (NaN):
    # the mean over relations is over capital only when language is left out
    got = diversity.across_input_diversity(scores[scores.fact < 3], facts)
    assert got == pytest.approx(1 - (0.5 + 0.4 + 0.0) / 3)


def test_across_input_difference():
    facts, a = score_tables(seed=1)
    _, b = score_tables(seed=2, sharp=0.1)
    b = b.assign(is_true=a.is_true.to_numpy())
    r = diversity.across_input_difference(a, b, facts, n_resamples=999, rng=0)
    assert r.statistic == pytest.approx(_across_bruteforce(a, facts) - _across_bruteforce(b, facts))
    assert r.confidence_interval.low <= r.statistic <= r.confidence_interval.high
    same = diversity.across_input_difference(a, a, facts, n_resamples=99, rng=np.random.default_rng(0))
    assert same.statistic == 0 and np.isnan(same.pvalue) and "point mass" in same.reason   # identical models: no test
    with pytest.raises(ValueError, match="same facts"):
        diversity.across_input_difference(a, b[b.fact != 0], facts)


# ---------------------------------------------------------------- tidy summaries
def test_diversity_summaries_tidy_and_consistent():
    facts, a = score_tables(n_per_relation=(40, 30), seed=3)
    _, b = score_tables(n_per_relation=(40, 30), seed=4, sharp=4.0)
    b = b.assign(is_true=a.is_true.to_numpy())
    div = diversity.diversity_changes({"base": a, "post": b}, "base", facts, n_test_resamples=199)
    assert list(div.columns) == ["model", "reference", "measure", "estimate", "ci_low", "ci_high", "pvalue", "n",
                                 "method", "reason"]
    assert set(div.measure) == {"d_entropy", "d_distinct", "d_across"} and (div.reference == "base").all()
    ent = diversity.diversity_summary({"base": a, "post": b}, facts).query("measure == 'entropy'")
    assert div.set_index("measure").estimate["d_entropy"] == pytest.approx(ent.estimate.diff().iloc[-1])
    with pytest.raises(ValueError, match="models"):
        diversity.diversity_changes({"base": a}, "base", facts, models=["x"])
