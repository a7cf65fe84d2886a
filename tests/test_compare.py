"""Tests for dint.compare: per-item shifts between two models' answer distributions."""
import numpy as np
import pandas as pd
import pytest

from dint import compare, stats


def _scores(p, true_idx, forms=("qa",)):
    """A score_world-like table from an (m, k) array of candidate probabilities."""
    rows = []
    for form in forms:
        for i, row in enumerate(np.asarray(p, float)):
            for j, pj in enumerate(row):
                rows.append({"fact": i, "form": form, "candidate": j, "answer": f"v{j}", "p_set": pj,
                             "is_true": j == true_idx[i]})
    return pd.DataFrame(rows)


def test_shift_by_hand():
    base = _scores([[0.5, 0.5], [0.9, 0.1]], [0, 1])
    post = _scores([[0.9, 0.1], [0.2, 0.8]], [0, 1])
    items = compare.shift(base, post)
    kl0 = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    kl1 = 0.2 * np.log(0.2 / 0.9) + 0.8 * np.log(0.8 / 0.1)
    np.testing.assert_allclose(items["kl"], [kl0, kl1])
    np.testing.assert_allclose(items["tv"], [0.4, 0.7])
    np.testing.assert_allclose(items["p_true_base"], [0.5, 0.1])
    np.testing.assert_allclose(items["p_true_post"], [0.9, 0.8])
    np.testing.assert_allclose(items["d_entropy"], items["entropy_post"] - items["entropy_base"])
    assert list(items["correct_base"]) == [True, False]   # argmax ties go to the first candidate
    assert list(items["correct_post"]) == [True, True]
    assert compare.transitions(items) == {"right_right": 1, "right_wrong": 0, "wrong_right": 1, "wrong_wrong": 0}


def test_shift_ragged_candidate_sets():
    base = pd.concat([_scores([[0.2, 0.8]], [1]), _scores([[0.1, 0.2, 0.7]], [2]).assign(fact=1)])
    post = pd.concat([_scores([[0.2, 0.8]], [1]), _scores([[0.7, 0.2, 0.1]], [2]).assign(fact=1)])
    items = compare.shift(base, post)
    assert items.loc[0, "kl"] == pytest.approx(0.0)
    assert items.loc[1, "kl"] == pytest.approx(0.7 * np.log(7) + 0.1 * np.log(1 / 7))
    with pytest.raises(ValueError, match="same items"):
        compare.shift(base, post[post.fact == 0])
    with pytest.raises(ValueError, match="lacks column"):
        compare.shift(base.drop(columns="p_set"), post)


def test_summarize_and_holm():
    rng = np.random.default_rng(0)
    m = 120
    p0 = rng.dirichlet(np.ones(4), m)
    p1 = 0.5 * p0 + 0.5 * np.eye(4)[np.zeros(m, int)]   # the post model moves mass onto candidate 0
    facts = pd.DataFrame({"fact": np.arange(m), "split": np.where(np.arange(m) < 60, "train", "heldout")})
    items = compare.shift(_scores(p0, np.zeros(m, int)), _scores(p1, np.zeros(m, int)), facts)
    table = compare.summarize(items, by="split", n_resamples=500)
    assert set(table["split"]) == {"train", "heldout"}
    kl = table[table.measure == "kl"]
    assert (kl["ci_low"] > 0).all()
    acc = table[table.measure == "d_accuracy"].iloc[0]
    assert acc["estimate"] > 0 and acc["pvalue"] < 0.05 and acc["right_wrong"] == 0
    g = items[items.split == acc["split"]]
    assert acc["estimate"] == pytest.approx(g["correct_post"].mean() - g["correct_base"].mean())
    adj = stats.holm(table, family=["measure"])
    ok = adj["pvalue"].notna()
    assert (adj.loc[ok, "pvalue_holm"] >= adj.loc[ok, "pvalue"]).all()
    assert adj.loc[~ok, "pvalue_holm"].isna().all()


def test_holm_leaves_out_what_could_not_be_tested(capsys):
    """A test that could not be made (NaN p-value with a reason) is left out of the family, named in the output;
    rows that make no test (NaN p-value, no reason) are left out silently."""
    from statsmodels.stats.multitest import multipletests

    t = pd.DataFrame({"test": ["a", "b", "c", "estimate only", "e"],
                      "pvalue": [0.01, np.nan, 0.04, np.nan, 0.02],
                      "reason": ["", "no discordant pairs", "", "", ""]})
    out = stats.holm(t)
    made = t.pvalue.notna()
    assert out.pvalue_holm[made].tolist() == pytest.approx(multipletests(t.pvalue[made], method="holm")[1].tolist())
    assert out.pvalue_holm[~made].isna().all()
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == ["not estimable, left out of the Holm family: test=b (no discordant pairs)"]
