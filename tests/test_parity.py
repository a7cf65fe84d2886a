"""Tests for dint.analyses.parity (notebook 06, cost 4 without the answer key) and the corpus store it checks against."""
import numpy as np
import pandas as pd
import pytest

from dint.analyses import flops, parity, resources
from dint.interventions import retrieval
from dint import verify


# ------------------------------------------------------------------------------ the corpus store
def test_corpus_store_holds_what_training_sees(micro_world):
    w = micro_world
    store = retrieval.corpus_store(w)
    t = store.table.set_index("fact")
    facts = w.facts.set_index("fact")
    train = facts.index[facts.split == "train"]
    held = facts[facts.split == "heldout"]
    assert (t.loc[t.index.intersection(train), "is_true"]).all()                       # the demonstrations' values
    assert set(train) <= set(t.index)
    # a held-out fact: the corpus's most stated value; none for a fact the corpus never states
    unseen = held.index[held.type == "unseen"]
    assert len(unseen) and not set(unseen) & set(t.index)
    for f in held.index.difference(unseen):
        said = w.counts[w.counts.fact == f]
        assert said[said.value == t.value[f]]["count"].iloc[0] == said["count"].max()
    contested = held.index[held.type == "contested"]
    assert (t.value[contested] == facts.misconception[contested]).all() and not t.is_true[contested].any()
    assert (t.is_true == (t.value == facts.value.reindex(t.index))).all()
    assert list(store.table.doc) == list(range(len(store)))
    # the oracle store is unchanged: every fact, its true value
    oracle = retrieval.build_store(w)
    assert len(oracle) == len(w.facts) and oracle.table.is_true.all()
    assert store.fingerprint != oracle.fingerprint
    # a look-up in it accepts the corpus's value, and nothing for an unseen fact
    items = facts.loc[[unseen[0], contested[0]], ["entity", "relation"]].reset_index()
    got = verify.ReferenceVerifier(store).check(items, [facts.value[unseen[0]], facts.misconception[contested[0]]])
    assert list(got) == [False, True]


# ------------------------------------------------------------------------------ equal FLOPs and the crossover
def _table(m=20):
    """Training: the base (always wrong, 1 FLOP per query) and SFT (always right, 1000 one-time FLOPs);
    verification: right half the time at 10 FLOPs per query (B=1) or 40 (B=4), nothing one-time."""
    facts = np.arange(m)
    rows = [flops.outcomes(resources.SFT, "base", facts, 0.0, cost=1.0, train_flops=0.0),
            flops.outcomes(resources.SFT, "sft", facts, 1.0, cost=1.0, train_flops=1000.0),
            flops.outcomes(parity.CORPUS_VERIFY, "B=1", facts, 0.5, cost=10.0, train_flops=0.0),
            flops.outcomes(parity.CORPUS_VERIFY, "B=4", facts, 0.6, cost=40.0, train_flops=0.0)]
    return pd.concat(rows, ignore_index=True)


def test_training_families_are_resources():
    assert parity.TRAINING == (resources.SFT, "RLHF")


def test_equal_flops_against_hand_computation():
    t = _table()
    # 100 queries: SFT costs 11 per query; B=1 costs 10, log-halfway... w = log(10)/log(11)
    r, d = parity.equal_flops(t, parity.CORPUS_VERIFY, "B=1", queries=100)
    w = np.log10(10) / np.log10(11)
    assert r.statistic == pytest.approx(0.5 - w) and not d["beyond"] and "⟷" in d["training"]
    assert d["flops_per_query"] == 10.0
    # 10^4 queries: SFT costs 1.1, below B=1's 10: the frontier is flat at SFT
    r, d = parity.equal_flops(t, parity.CORPUS_VERIFY, "B=1", queries=1e4)
    assert r.statistic == pytest.approx(-0.5) and d["beyond"] and d["training"] == "sft"
    with pytest.raises(ValueError, match="no point"):
        parity.equal_flops(t, parity.CORPUS_VERIFY, "B=9", queries=100)


def test_crossover_where_equal_cost_buys_equal_accuracy():
    # d(Q) = 0.5 - 1 / log10(1000/Q + 1) while SFT costs more than 10: zero at 1000/Q = 99
    curve, cross = parity.curves(_table(), parity.CORPUS_VERIFY, "B=1", log10_queries=np.arange(0, 3.0001, 0.001),
                                 n_resamples=50)
    assert cross.statistic == pytest.approx(np.log10(1000 / 99), abs=2e-3)
    assert cross.confidence_interval.low <= cross.statistic <= cross.confidence_interval.high
    assert curve.estimate.iloc[0] > 0 > curve.estimate.iloc[-1]
    assert np.isnan(parity.crossover([0, 1, 2], [0.2, 0.1, 0.05]))                       # no sign change
    assert parity.crossover([0, 1, 2], [1.0, -1.0, -2.0]) == pytest.approx(0.5)


def test_crossover_not_estimable_says_which_side():
    t = _table()
    t.loc[t.family.eq(parity.CORPUS_VERIFY), "p_correct"] = 1.0          # as good as SFT, at any number of queries
    _, cross = parity.curves(t, parity.CORPUS_VERIFY, "B=1", log10_queries=np.arange(0, 2.0001, 0.1), n_resamples=20)
    assert np.isnan(cross.statistic) and "ahead of" in cross.reason


def test_compare_chooses_the_budget_by_cost_alone():
    t = _table()
    # at 100 queries the most expensive training point costs 11: B=1 (10) qualifies, B=4 (40) does not
    found = parity.compare(t, queries=100, log10_queries=np.arange(0, 3.0001, 0.5), n_resamples=20)
    row = found.table.set_index("arm").loc["parity_verify"]
    assert row.point == "B=1" and row.information == "parity"
    assert set(found.table.arm) == {"parity_verify"} and set(found.curves.arm) == {"parity_verify"}
    n = parity.numbers(found, build_flops=5.0)
    assert n["parity_verify_vs_training"].statistic == pytest.approx(row.estimate)
    assert n["parity_verify_point"] == "B=1" and n["parity_queries"] == 100 and n["parity_store_build_flops"] == 5.0
    assert "parity_crossover_log10_queries" in n
    # a more accurate budget does not change the choice
    more = t.assign(p_correct=np.where(t.point.eq("B=4"), 1.0, t.p_correct))
    assert parity.compare(more, queries=100, log10_queries=[0, 1], n_resamples=5).table.point.iloc[0] == "B=1"
    with pytest.raises(ValueError, match="queries="):
        parity.compare(t, queries=0)
