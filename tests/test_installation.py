"""Notebook 08: its grid's items and budgets (dint.analyses.budgets), and each estimate of dint.analyses.installation
on data whose answer is known."""
import numpy as np
import pandas as pd
import pytest

from dint import world as world_mod
from dint.analyses import budgets, installation, reasoning
from dint.stats import fits, intervals, proportions


@pytest.fixture(scope="module")
def world():
    return world_mod.build(world_mod.WorldConfig(n_entities=30), seed=3)


# -- items ---------------------------------------------------------------------------------------------------

def test_paraphrases_use_the_world_vocabulary_and_differ_from_the_trained_question(world):
    p = budgets.prompts(world, "paraphrase")
    qa = budgets.prompts(world, "qa")
    assert len(p) == len(world.facts) and (p["fact"].to_numpy() == qa["fact"].to_numpy()).all()
    assert not (p["prompt"].to_numpy() == qa["prompt"].to_numpy()).any()
    vocabulary = set(world.vocabulary())
    assert all(set(q.split()) <= vocabulary for q in p["prompt"])
    assert all(t == (v,) for t, v in zip(p["true"], world.facts["value"]))


def test_reverse_questions_have_every_mentee_as_the_true_set(world):
    r = budgets.prompts(world, "reverse")
    mentor = world.facts[world.facts["relation"] == "mentor"]
    for row in r.itertuples():
        y = world.entities[row.fact]
        assert set(row.true) == set(mentor.loc[mentor["value"] == y, "entity"])
        assert y not in row.candidates and set(row.true) <= set(row.candidates)
        assert y in row.prompt
    assert set(world.entities[i] for i in r["fact"]) == set(mentor["value"])


def test_twohop_items_are_the_reasoning_questions(world):
    t = budgets.prompts(world, "twohop")
    items = reasoning.twohop_items(world)
    assert (t["prompt"].to_numpy() == items["prompt"].to_numpy()).all()
    assert all(tr == (v,) for tr, v in zip(t["true"], items["value"]))


def test_units_split_reverse_questions_by_their_mentees(world):
    u = budgets.units(world)
    rev = u[u["form"] == "reverse"]
    f = world.facts
    for row in rev.itertuples():
        splits = set(f.set_index("fact").loc[list(row.facts), "split"])
        assert row.split == (splits.pop() if len(splits) == 1 else "mixed")
    two = u[u["form"] == "twohop"]
    first = reasoning.twohop_items(world)["fact1"]
    assert [fs[0] for fs in two["facts"]] == list(first)
    assert set(u["form"]) == set(budgets.FORMS)


def test_entity_groups(world):
    g = installation.entity_groups(world)
    f = world.facts.set_index("fact")
    trained = set(f.loc[f["split"] == "train", "entity"])
    for fact, group in g.items():
        if f.loc[fact, "split"] == "train":
            assert group == "train"
        else:
            assert group == ("heldout, same entity" if f.loc[fact, "entity"] in trained else "heldout, other entity")


# -- the grid ---------------------------------------------------------------------------------------------------

def test_budgets_come_from_the_notebook_then_the_profile():
    tiny = budgets.budgets("tiny")
    assert tiny == {"sft": (3, 10, 30), "dpo": (3, 15), "rl": (200, 400)}
    assert budgets.budgets("smoke") == {"sft": (2, 4), "dpo": (1, 2), "rl": (6, 12)}
    assert budgets.budgets("tiny", sft_epochs=[30, 3, 3])["sft"] == (3, 30)


@pytest.mark.parametrize("bad", [[], [0], [1.5], "3", [True]])
def test_bad_budgets_are_refused(bad):
    with pytest.raises(ValueError, match="sft_epochs"):
        budgets.budgets("tiny", sft_epochs=bad)
    with pytest.raises(ValueError, match="unknown budget"):
        budgets.budgets("tiny", epochs=[3])


# -- estimates on known data ---------------------------------------------------------------------------------

def _items(rng, *, trained_gain, form_gain, n=200):
    """Items of one model in the trained QA form and the statement form: train facts gain ``trained_gain`` in QA
    and ``form_gain`` in the statement form, held-out facts 0 in both, plus noise."""
    rows = []
    for form, gain in (("qa", trained_gain), ("statement", form_gain)):
        for fact in range(n):
            split = "train" if fact < n // 2 else "heldout"
            base = 0.3
            d = (gain if split == "train" else 0.0) + rng.normal(0, 0.02)
            rows.append({"model": "sft@3", "intervention": "sft", "budget": 3, "fact": fact, "form": form,
                         "split": split, "type": "frequent", "relation": "color", "facts": (fact,),
                         "p_true_base": base, "p_true_post": base + d, "d_p_true": d, "kl": abs(d) + 0.01,
                         "correct_base": False, "correct_post": d > 0.2, "support": 0.5})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("form_gain", [0.5, 0.0])
def test_propagation_is_zero_in_full_and_minus_the_effect_when_none(form_gain):
    items = _items(np.random.default_rng(0), trained_gain=0.5, form_gain=form_gain)
    p = installation.propagation(items).set_index(["form", "measure"])
    assert p.loc[("qa", "effect"), "estimate"] == pytest.approx(0.5, abs=0.01)
    assert p.loc[("statement", "effect"), "estimate"] == pytest.approx(form_gain, abs=0.01)
    assert p.loc[("statement", "propagation"), "estimate"] == pytest.approx(form_gain - 0.5, abs=0.01)
    ratio = p.loc[("statement", "ratio"), "estimate"]
    assert ratio == pytest.approx(form_gain / 0.5, abs=0.05)


def test_propagation_ratio_needs_a_trained_effect():
    items = _items(np.random.default_rng(1), trained_gain=0.0, form_gain=0.0)
    p = installation.propagation(items).set_index(["form", "measure"])
    assert np.isnan(p.loc[("statement", "ratio"), "estimate"])
    assert "contain" in p.loc[("statement", "ratio"), "reason"]
    assert not np.isnan(p.loc[("statement", "propagation"), "estimate"])   # the difference always


def test_support_slope_and_gaps():
    rng = np.random.default_rng(2)
    n = 300
    support = rng.random(n)
    items = pd.DataFrame({"model": "sft@3", "intervention": "sft", "budget": 3, "fact": np.arange(n), "form": "qa",
                          "split": "train", "support": support, "p_true_post": 0.2 + 0.6 * support + rng.normal(0, 0.05, n),
                          "type": np.repeat(["frequent", "unseen", "contested"], n // 3),
                          "correct_post": np.r_[np.ones(100, bool), np.zeros(100, bool), rng.random(100) < 0.5]})
    s = installation.support(items)
    assert s["estimate"].iloc[0] == pytest.approx(0.6, abs=0.03) and s["pvalue"].iloc[0] < 1e-6
    g = installation.gaps(items).set_index("measure")
    assert g.loc["unseen_gap", "estimate"] == pytest.approx(-1.0)
    assert -0.65 < g.loc["contested_gap", "estimate"] < -0.35


def test_forgetting_counts_declines_within_types():
    # SFT answers right (base wrong) on 40 train and 40 held-out frequent facts; RL loses 10 train and 20 held-out
    n = 80
    split = np.r_[np.repeat("train", 40), np.repeat("heldout", 40)]
    base = pd.DataFrame({"fact": np.arange(n), "form": "qa", "split": split, "type": "frequent",
                         "correct_base": False})
    sft = base.assign(model="sft@3", intervention="sft", budget=3, correct_post=True)
    rl_right = np.ones(n, bool)
    rl_right[:10] = False
    rl_right[40:60] = False
    rl = base.assign(model="rl@200", intervention="rl", budget=200, correct_post=rl_right)
    f = installation.forgetting(pd.concat([sft, rl], ignore_index=True), "sft@3").set_index("measure")
    assert f.loc["decline_train", "estimate"] == pytest.approx(0.25)
    assert f.loc["decline_heldout", "estimate"] == pytest.approx(0.5)
    assert f.loc["forgetting_did", "estimate"] == pytest.approx(-0.25)


# -- the statistics it adds --------------------------------------------------------------------------------------

def test_slope_matches_statsmodels_hc3():
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    x = rng.random(50)
    y = 0.4 * x + rng.normal(0, 0.1 + 0.3 * x)
    r = fits.slope(x, y)
    fit = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC3", use_t=True)
    assert r.statistic == pytest.approx(fit.params[1]) and r.pvalue == pytest.approx(fit.pvalues[1])
    assert (r.confidence_interval.low, r.confidence_interval.high) == pytest.approx(tuple(fit.conf_int()[1]))
    flat = fits.slope(np.ones(5), np.arange(5.0))
    assert np.isnan(flat.statistic) and "constant" in flat.reason
    with pytest.raises(ValueError, match="at least 3"):
        fits.slope([1, 2], [1, 2])


def test_welch_matches_scipy():
    from scipy import stats as sps
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.3, 1, 30), rng.normal(0, 2, 50)
    r = intervals.welch(x, y)
    t = sps.ttest_ind(x, y, equal_var=False)
    assert r.statistic == pytest.approx(x.mean() - y.mean()) and r.pvalue == pytest.approx(t.pvalue)
    ci = t.confidence_interval()
    assert (r.confidence_interval.low, r.confidence_interval.high) == pytest.approx((ci.low, ci.high))
    const = intervals.welch([1.0, 1.0], [0.0, 0.0])
    assert const.statistic == 1.0 and np.isnan(const.pvalue) and "constant" in const.reason
    with pytest.raises(ValueError, match="at least 2"):
        intervals.welch([1.0], [1.0, 2.0])


def test_stratified_difference_by_hand():
    # one stratum: the plain difference with its Wald interval
    r = proportions.stratified_difference([30], [100], [20], [100])
    se = np.sqrt(0.3 * 0.7 / 100 + 0.2 * 0.8 / 100)
    assert r.statistic == pytest.approx(0.1)
    assert r.confidence_interval.low == pytest.approx(0.1 - 1.959964 * se, rel=1e-5)
    # two strata with the same difference: that difference, whatever the weights; an empty stratum is left out
    r2 = proportions.stratified_difference([30, 5, 0], [100, 10, 0], [20, 4, 0], [100, 10, 5])
    w = np.array([50.0, 5.0])
    assert r2.statistic == pytest.approx(np.sum(w * np.array([0.1, 0.1])) / w.sum()) and r2.n == 220
    none = proportions.stratified_difference([0], [0], [1], [2])
    assert np.isnan(none.statistic) and "both samples" in none.reason
    with pytest.raises(ValueError, match="k1 <= n1"):
        proportions.stratified_difference([3], [2], [1], [2])


def test_plateau_is_the_relative_change_over_the_last_fifth():
    assert budgets.plateau([3.0, 2.0, 1.5, 1.2, 1.1, 1.0]) == pytest.approx((1.0 - 1.1) / 1.1)
    assert budgets.plateau([0.5, 0.5]) == 0.0
    assert np.isnan(budgets.plateau([1.0]))


def test_notebook_08_runs_on_the_synthetic_world_only():
    from dint.pipeline import notebooks
    assert "08_installation" in notebooks.for_profile("smoke") and "08_installation" in notebooks.for_profile("tiny")
    assert "08_installation" not in notebooks.for_profile("real-smoke")
    assert notebooks.for_profile("real-smoke") == tuple(n for n in notebooks.NOTEBOOKS if n != "08_installation")
