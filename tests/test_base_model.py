"""Tests for dint.analyses.base_model (notebook 00): its tables and the names of its numbers, on a small world
and small real facts with random answer distributions."""
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dint import stats
from dint.analyses import base_model, reference
from dint.world import WorldConfig, build

matplotlib.use("Agg")

WORLD_RESULTS = {"corr_frequent", "corr_stated", "kl_corpus_frequent", "unseen_chance_ratio", "unseen_entropy_norm",
                 "unseen_accuracy", "contested_p_misconception", "contested_p_true", "contested_misconception_is_mode",
                 "frequent_accuracy", "qa_accuracy", "statement_accuracy"}


def _scores(world, form, rng):
    """A score table over the world's value sets (or each real fact's candidates) with random distributions."""
    rows = []
    for r in world.prompts(form).itertuples():
        p = rng.dirichlet(np.full(len(r.candidates), 0.5))
        rows += [{"fact": r.fact, "form": form, "candidate": j, "answer": a, "p_set": q, "mass_outside": 0.1,
                  "is_true": a == r.target} for j, (a, q) in enumerate(zip(r.candidates, p))]
    return pd.DataFrame(rows)


def _inputs(world, real, seed=0):
    rng = np.random.default_rng(seed)
    scores = pd.concat([_scores(world, f, rng) for f in ("statement", "qa")], ignore_index=True)
    record = {"n_params": 1234, "steps": 10, "wall_time": 2.0, "loss_last": 1.5, "source": "test", "sha256": "ab" * 32}
    return base_model.Inputs(world=world, record=record, scores=scores, real=real)


def _same(a: stats.Result, b: stats.Result):
    """Field by field, NaN equal to NaN."""
    for (k, x), y in zip(a.asdict().items(), b.asdict().values()):
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), k


@pytest.fixture(scope="module")
def world():
    return build(WorldConfig(n_entities=60), seed=1)


@pytest.fixture(scope="module")
def inputs(world):
    return _inputs(world, real=False)


@pytest.fixture(scope="module")
def facts(inputs):
    return base_model.facts(inputs)


@pytest.fixture(scope="module")
def real_inputs():
    from dint import realworld

    world = realworld.build(realworld.RealWorldConfig(n_arithmetic=12, min_population=30_000_000), seed=0)
    return _inputs(world, real=True, seed=1)


def test_facts_are_the_reference_tables(inputs, facts):
    pd.testing.assert_frame_equal(facts.statement, reference.facts_table(inputs.world, inputs.scores, "statement"))
    pd.testing.assert_frame_equal(facts.qa, reference.facts_table(inputs.world, inputs.scores, "qa"))


def test_describe_and_fact_counts(inputs, world):
    assert base_model.describe(inputs) == (f"{len(world.facts)} facts, {len(world.corpus)} statements; base: 1,234 "
                                           "parameters, 10 steps, 2 s, final loss 1.500")
    counts = base_model.fact_counts(world)
    assert counts.to_numpy().sum() == len(world.facts)
    assert counts.loc["color", "frequent"] == ((world.facts.relation == "color") & (world.facts.type == "frequent")).sum()


def test_groups_world(facts):
    g = base_model.groups(facts.statement, real=False, rng=2)
    assert g.name == "by_mentions"
    pd.testing.assert_frame_equal(g.table, reference.by_mentions(facts.statement, rng=2))
    rare = facts.statement[facts.statement.type == "rare"]
    assert g.overview.loc["rare", "p_true"] == pytest.approx(rare.p_true.mean(), rel=1e-12)
    assert list(g.overview.columns) == base_model.TYPE_MEANS


def test_estimates_world(inputs, facts, world):
    est = base_model.estimates(facts, world, real=False, n_resamples=500, rng=0)
    assert list(est.table.columns) == ["measure", *stats.ROW]
    assert set(est.table.measure) == WORLD_RESULTS
    t = facts.statement
    r = est.table.set_index("measure")
    frequent = t[t.type == "frequent"]
    assert r.loc["corr_frequent", "estimate"] == pytest.approx(sps.pearsonr(frequent.corpus_p_true, frequent.p_true)[0])
    assert r.loc["statement_accuracy", "estimate"] == t.correct.mean()
    assert r.loc["statement_accuracy", "n"] == len(t)
    unseen = t[t.type == "unseen"]
    K = unseen.relation.map(lambda rel: len(world.values[rel]))
    assert r.loc["unseen_chance_ratio", "estimate"] == pytest.approx((unseen.p_true * K).mean(), rel=1e-12)
    assert est.values == {"unseen_chance_accuracy": pytest.approx((1 / K).mean()), "n_facts": len(t)}
    # the bootstrap's resamples and seed are the caller's
    again = base_model.estimates(facts, world, real=False, n_resamples=500, rng=0)
    pd.testing.assert_frame_equal(est.table, again.table)


def test_numbers_named_by_measure(facts, world):
    est = base_model.estimates(facts, world, real=False, n_resamples=500, rng=0)
    num = base_model.numbers(est, base_params=1234)
    assert set(num) == WORLD_RESULTS | {"unseen_chance_accuracy", "n_facts", "base_params"}
    assert num["base_params"] == 1234 and num["n_facts"] == len(facts.statement)
    t = facts.statement
    contested = t[t.type == "contested"]
    _same(num["contested_p_true"], stats.bootstrap_mean(contested.p_true, n_resamples=500, rng=0))
    # the table's rows are the results: a row and back gives the same result
    for name, row in zip(est.table.measure, est.table.to_dict("records")):
        _same(stats.Result.from_row(row), num[name])
    _same(num["corr_stated"], stats.pearson(t[t.type != "unseen"].corpus_p_true, t[t.type != "unseen"].p_true))
    _same(num["qa_accuracy"], stats.proportion(int(facts.qa.correct.sum()), len(facts.qa)))


def test_real_facts(real_inputs):
    inputs = real_inputs
    assert base_model.describe(inputs).endswith("base: test (SHA256 abababababab...), 1,234 non-embedding parameters")
    facts = base_model.facts(inputs)
    g = base_model.groups(facts.statement, real=True, rng=0)
    assert g.name == "by_group" and g.overview is g.table
    assert list(g.table.columns) == ["relation", "type", "measure", *stats.ROW]
    est = base_model.estimates(facts, inputs.world, real=True, n_resamples=200, rng=0)
    direct = reference.real_numbers(facts.statement, facts.qa, n_resamples=200, rng=0)
    num = base_model.numbers(est, base_params=7)
    assert set(num) == set(direct) | {"base_params"}
    for k, v in direct.items():
        if isinstance(v, stats.Result):
            assert num[k].asdict().keys() == v.asdict().keys()   # a test's own fields kept (McNemar's b, c)
            _same(num[k], v)
        else:
            assert num[k] == v
    assert {"b", "c"} <= num["qa_minus_statement_accuracy"].asdict().keys()
    assert set(est.table.measure) == {k for k, v in direct.items() if isinstance(v, stats.Result)}
    fig = base_model.figure(facts, g, num, real=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    acc = g.table[g.table.measure == "accuracy"]
    assert labels == list(acc.relation + " / " + acc.type)
    pd.testing.assert_frame_equal(base_model.stored_facts(facts.statement), facts.statement)


def test_figure_and_stored_facts_world(facts, world):
    g = base_model.groups(facts.statement, real=False, rng=0)
    num = base_model.numbers(base_model.estimates(facts, world, real=False, n_resamples=200), base_params=1)
    fig = base_model.figure(facts, g, num, real=False)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 3
    stored = base_model.stored_facts(facts.statement)
    assert stored.mention_bin.tolist() == facts.statement.mention_bin.astype(str).tolist()
    assert facts.statement.mention_bin.dtype == "category"     # the table itself is left as it is
