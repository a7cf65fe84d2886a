"""Tests for dint.causes: the causes of errors from the world alone, the one-line rule, the folds and the
thresholds fitted on other facts."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dint import agreement, causes, taxonomy
from dint import world as world_mod
from dint.interventions import data, retrieval
from dint.taxonomy import TaxonomyConfig


@pytest.fixture(scope="module")
def world():
    return world_mod.build(world_mod.WorldConfig(n_entities=60), seed=0)


def _items(world, facts=None, **extra):
    f = world.facts if facts is None else facts
    return pd.DataFrame({"fact": f["fact"].to_numpy(), "error": True, **extra})


def test_world_cause_from_the_corpus_alone(world):
    out = causes.world_cause(world, _items(world))
    facts = world.facts.set_index("fact")
    c = world.counts.merge(world.facts[["fact", "value"]], on="fact", suffixes=("", "_true"))
    n_true = c[c.value == c.value_true].groupby("fact")["count"].sum().reindex(facts.index, fill_value=0)
    wrong = c[c.value != c.value_true].groupby("fact")["count"].max().reindex(facts.index, fill_value=0)
    np.testing.assert_array_equal(out["n_true"], n_true.to_numpy())
    np.testing.assert_array_equal(out["n_true"], facts["n_true"].to_numpy())      # the world's own count
    expect = np.where(wrong > n_true, "imitative", np.where(n_true > 0, "selection", "absent_support"))
    assert out["world_cause"].tolist() == expect.tolist()
    t = facts["type"].to_numpy()
    assert set(out["world_cause"][t == "unseen"]) == {"absent_support"}
    assert set(out["world_cause"][t == "contested"]) == {"imitative"}      # the misconception outnumbers the truth
    assert set(out["world_cause"][t == "frequent"]) <= {"selection", "imitative"}
    assert {"selection", "imitative", "absent_support"} <= set(out["world_cause"])
    rare = out["rare"].to_numpy()
    assert (out["world_cause"][rare] == "selection").all()
    assert (out["n_true"][rare] < world.config.frequent_min).all() and rare.any()
    # no error, no cause
    none = causes.world_cause(world, _items(world).assign(error=False))
    assert none["world_cause"].isna().all() and not none["rare"].any()


def test_world_cause_routing_and_regression_by_model(world):
    store = retrieval.build_store(world, retrieval.StoreConfig(stale_share=0.4), seed=1)
    stale = set(store.table.loc[~store.table.is_true, "fact"])
    items = pd.concat([_items(world, intervention=m) for m in ("rag_stale", "sft")], ignore_index=True)
    taught = {"sft": {0, 1, 2}}
    out = causes.world_cause(world, items, stores={"rag_stale": store}, taught=taught)
    plain = causes.world_cause(world, items[["fact", "error"]])
    rag = (items.intervention == "rag_stale").to_numpy()
    routed = rag & items.fact.isin(stale).to_numpy()
    assert (out["world_cause"][routed] == "routing").all() and routed.sum() == len(stale)
    assert (out["world_cause"][rag & ~routed] == plain["world_cause"][rag & ~routed]).all()
    sft = ~rag & items.fact.isin(taught["sft"]).to_numpy()
    expect = np.where(plain["world_cause"][sft] == "imitative", "imitative", "regression")   # imitative comes first
    assert out["world_cause"][sft].tolist() == expect.tolist()
    assert (out["world_cause"][~rag & ~sft] == plain["world_cause"][~rag & ~sft]).all()
    with pytest.raises(ValueError, match="intervention"):
        causes.world_cause(world, items[["fact", "error"]], taught=taught)
    with pytest.raises(ValueError, match="not in world"):
        causes.world_cause(world, items.assign(fact=items.fact + 10_000))
    with pytest.raises(ValueError, match="corpus"):
        causes.world_cause(SimpleNamespace(facts=world.facts), items)
    with pytest.raises(ValueError, match="stores"):
        causes.world_cause(world, items, stores={"rag_stale": pd.DataFrame({"fact": [0]})})


def test_taught_wrong_reads_the_interventions_data(world):
    demos = data.sft_demos(world)
    assert causes.taught_wrong(world, demos) == set()                       # SFT demonstrates true answers
    sham = data.shuffled(demos, seed=0)
    wrong = set(sham.loc[sham.completion != demos.completion, "fact"])
    assert causes.taught_wrong(world, sham) == wrong and wrong
    pairs = data.preference_pairs(world, facts=world.facts[world.facts.split == "train"], seed=0)
    assert causes.taught_wrong(world, pairs) == set(pairs.loc[~pairs.chosen_true, "fact"])
    heldout = set(world.facts.loc[world.facts.split == "heldout", "fact"])
    assert not causes.taught_wrong(world, pairs) & heldout                  # the data hold train facts only
    with pytest.raises(ValueError, match="chosen_true"):
        causes.taught_wrong(world, demos.drop(columns="completion"))


def test_one_line_and_world_resolution():
    items = pd.DataFrame({"error": [True, True, False], "correct_base": [True, False, True]})
    assert causes.one_line(items).tolist() == ["regression", "selection", None]
    assert causes.at_world_resolution(["regression", "selection", "imitative", "routing"]).tolist() == [
        "supported", "supported", "imitative", "routing"]
    with pytest.raises(ValueError, match="correct_base"):
        causes.one_line(items.drop(columns="correct_base"))


def test_folds_stratified_and_seeded(world):
    heldout = world.facts[world.facts.split == "heldout"]
    f = causes.folds(heldout, seed=0)
    assert f.index.tolist() == heldout.fact.tolist() and set(f) == {0, 1}
    assert abs(int(f.sum()) - len(f) / 2) <= 0.5
    for t, g in heldout.groupby("type"):
        assert abs(2 * int(f.loc[g.fact].sum()) - len(g)) <= 1, t          # each type split in halves
    assert f.equals(causes.folds(heldout, seed=0)) and not f.equals(causes.folds(heldout, seed=1))
    with pytest.raises(ValueError, match="facts"):
        causes.folds(heldout.drop(columns="type"))


def test_configs_grid():
    out = causes.configs()
    assert out[0] == TaxonomyConfig() and len(set(out)) == len(out)
    assert len(out) == np.prod([len(v) for v in causes.GRID.values()])     # the defaults are a grid point
    assert causes.configs({"absent_factor": (1.0, 3.0)}) == [TaxonomyConfig(), TaxonomyConfig(absent_factor=1.0),
                                                             TaxonomyConfig(absent_factor=3.0)]
    with pytest.raises(ValueError, match="grid"):
        causes.configs({"nope": (1,)})


def _errors(n=400, seed=0):
    """Errors with the taxonomy's columns: random distributions summarised as `classify` does."""
    rng = np.random.default_rng(seed)
    k = 8
    base_right = rng.random(n) < 0.3
    ptb = np.where(base_right, rng.uniform(0.3, 0.9, n), rng.uniform(0, 0.5, n))
    return pd.DataFrame({"fact": np.arange(n) // 2, "error": True, "correct_base": base_right, "k": k,
                         "p_true_base": ptb, "p_true_post": rng.uniform(0, 0.45, n),
                         "mode_mass_base": rng.uniform(0.2, 0.9, n),
                         "answer_base": rng.choice(["a", "b"], n), "answer_post": rng.choice(["a", "b"], n)})


def test_fit_recovers_the_thresholds_that_made_the_causes():
    e = _errors()
    truth = TaxonomyConfig(absent_factor=3.0, selection_mass=0.3, imitative_mass=0.7)
    known = causes.at_world_resolution(taxonomy.classes(e, truth))
    config, k = causes.fit(e, known)
    assert k == pytest.approx(1.0)
    assert (causes.at_world_resolution(taxonomy.classes(e, config)) == known).all()
    assert causes.fit(e, known, grid={"absent_factor": (1.0,)})[1] < 1.0       # the defaults cannot reach it
    with pytest.raises(ValueError, match="one length"):
        causes.fit(e, known[:-1])


def test_crossfit_classifies_each_half_with_the_other_halfs_thresholds():
    e = _errors(600, seed=2)
    rng = np.random.default_rng(0)
    known = causes.at_world_resolution(taxonomy.classes(e, TaxonomyConfig(absent_factor=3.0)))
    known = np.where(rng.random(len(e)) < 0.2, "imitative", known)        # causes the thresholds recover in part
    fold = pd.Series(np.arange(300) % 2, index=pd.Index(np.arange(300), name="fact"))
    out = causes.crossfit(e, known, fold, grid={"absent_factor": (1.0, 2.0, 3.0), "imitative_mass": (0.5, 0.8)})
    assert list(out.fitted.fitted_on) == [0, 1] and out.fitted.n_errors.sum() == len(e)
    half = fold.loc[e.fact].to_numpy()
    for _, r in out.fitted.iterrows():
        config = TaxonomyConfig(**{f: r[f] for f in ("absent_factor", "selection_factor", "selection_mass",
                                                     "regression_drop", "imitative_mass", "routing_miss")})
        to = half != r.fitted_on
        assert out.classes[to].tolist() == taxonomy.classes(e[to], config).tolist()
        on = half == r.fitted_on
        assert r.kappa_fit == pytest.approx(agreement.kappa(causes.at_world_resolution(taxonomy.classes(e[on], config)),
                                                           known[on]))
        assert r.absent_factor == 3.0
    with pytest.raises(ValueError, match="no half"):
        causes.crossfit(e, known, fold.iloc[:10])
    one = causes.crossfit(e, known, fold * 0)             # no errors on half 1: half 0 keeps the defaults
    assert one.fitted.reason.tolist()[0] == "" and "default thresholds" in one.fitted.reason.tolist()[1]
    assert one.classes.tolist() == taxonomy.classes(e, TaxonomyConfig()).tolist()
