"""Tests for dint.diversity: across-input diversity, and per-input and across-input changes."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from dint import diversity


# ---------------------------------------------------------------- synthetic score tables (as in test_reliability)
def _world(n_per_relation=(12, 9), k=(4, 6), seed=0, sharp=2.0):
    """A facts table and a one-form score table with random answer distributions."""
    rng = np.random.default_rng(seed)
    facts, rows, f = [], [], 0
    for r, (n, kr) in enumerate(zip(n_per_relation, k)):
        for i in range(n):
            p = softmax(sharp * rng.normal(size=kr))
            true = int(rng.integers(kr))
            facts.append({"fact": f, "relation": f"rel{r}", "split": "train" if i % 2 else "heldout"})
            for c in range(kr):
                rows.append({"fact": f, "form": "qa", "candidate": c, "answer": f"r{r}v{c}", "logp": math.log(p[c]),
                             "p": p[c], "p_set": p[c], "mass_outside": 0.1, "is_true": c == true})
            f += 1
    return pd.DataFrame(facts), pd.DataFrame(rows)


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
    facts, scores = _world(seed=1)
    assert diversity.across_input_diversity(scores, facts) == pytest.approx(_across_bruteforce(scores, facts))
    # every fact answering the same value: no diversity across inputs
    same = scores.assign(p_set=(scores.candidate == 0).astype(float))
    assert diversity.across_input_diversity(same, facts) == pytest.approx(0.0)


def test_across_input_difference():
    facts, a = _world(seed=1)
    _, b = _world(seed=2, sharp=0.1)
    b = b.assign(is_true=a.is_true.to_numpy())
    r = diversity.across_input_difference(a, b, facts, n_resamples=999, rng=0)
    assert r.statistic == pytest.approx(_across_bruteforce(a, facts) - _across_bruteforce(b, facts))
    assert r.confidence_interval.low <= r.statistic <= r.confidence_interval.high
    same = diversity.across_input_difference(a, a, facts, n_resamples=99, rng=np.random.default_rng(0))
    assert same.statistic == 0 and same.pvalue == 1.0
    with pytest.raises(ValueError, match="same facts"):
        diversity.across_input_difference(a, b[b.fact != 0], facts)


# ---------------------------------------------------------------- tidy summaries
def test_diversity_summaries_tidy_and_consistent():
    facts, a = _world(n_per_relation=(40, 30), seed=3)
    _, b = _world(n_per_relation=(40, 30), seed=4, sharp=4.0)
    b = b.assign(is_true=a.is_true.to_numpy())
    div = diversity.diversity_changes({"base": a, "post": b}, "base", facts, n_test_resamples=199)
    assert list(div.columns) == ["model", "reference", "measure", "estimate", "ci_low", "ci_high", "pvalue", "n",
                                 "test"]
    assert set(div.measure) == {"d_entropy", "d_distinct", "d_across"} and (div.reference == "base").all()
    ent = diversity.diversity_summary({"base": a, "post": b}, facts).query("measure == 'entropy'")
    assert div.set_index("measure").estimate["d_entropy"] == pytest.approx(ent.estimate.diff().iloc[-1])
    with pytest.raises(ValueError, match="models"):
        diversity.diversity_changes({"base": a}, "base", facts, models=["x"])
