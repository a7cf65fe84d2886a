"""Tests for dint.analyses.composition: error compositions, paired cluster permutation tests and pass@k curves."""
import numpy as np
import pandas as pd
import pytest

from dint.analyses import composition
from dint import taxonomy
from dint import stats
from dint.divergence import pass_exact


def _stacked(n_facts=60, seed=0):
    """Two forms per fact, three models; model 'b' errs like 'a' but with other classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, classes in (("a", ["selection", "absent_support"]), ("b", ["imitative", "regression"]),
                           ("c", ["selection", "absent_support"])):
        for f in range(n_facts):
            for form in ("qa", "statement"):
                err = bool(rng.random() < 0.5)
                rows.append({"intervention": model, "fact": f, "form": form, "error": err,
                             "class": classes[rng.integers(2)] if err else None, "p_true_post": rng.random()})
    return pd.DataFrame(rows)


def test_cluster_draws_match_stats_cluster_bootstrap():
    items = _stacked()
    items = items[items.intervention == "a"]
    shares = composition.class_shares(items, classes=["selection", "absent_support"], n_resamples=500, rng=7)
    v = np.column_stack([(items["class"] == "selection").to_numpy(float), items["error"].to_numpy(float)])
    ref = stats.cluster_bootstrap(v, items["fact"], lambda x: x[:, 0].sum() / x[:, 1].sum(), n_resamples=500, rng=7)
    s = shares.set_index("class").loc["selection"]
    assert s["estimate"] == pytest.approx(ref.statistic)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    np.testing.assert_allclose(shares["estimate"].sum(), 1.0)
    assert s["count"] == (items["class"] == "selection").sum() and s["n"] == items["error"].sum()   # n: the errors
    assert s["items"] == 120 and s["clusters"] == 60 and np.isnan(s["pvalue"]) and s["reason"] == ""
    assert list(shares.columns) == ["class", "count", *stats.ROW, "items", "clusters"]
    assert stats.Result.from_row(s).statistic == s["estimate"]


def test_class_shares_by_group_and_iv():
    items = _stacked()
    shares = composition.class_shares(items, by="intervention", n_resamples=200)
    assert len(shares) == 3 * len(taxonomy.CLASSES)
    np.testing.assert_allclose(shares.groupby("intervention")["estimate"].sum(), 1.0)
    b = shares[shares.intervention == "b"].set_index("class")
    assert b.loc["selection", "count"] == 0 and b.loc["selection", "estimate"] == 0.0
    assert (shares["ci_low"] <= shares["estimate"] + 1e-12).all()
    assert (shares["estimate"] <= shares["ci_high"] + 1e-12).all()
    none = composition.class_shares(items.assign(error=False, **{"class": None}), n_resamples=50)
    assert none["estimate"].isna().all() and (none["n"] == 0).all() and none["reason"].str.startswith("no errors").all()
    with pytest.raises(ValueError, match="lacks column"):
        composition.class_shares(items.drop(columns="fact"))
    with pytest.raises(ValueError, match="n_resamples"):
        composition.class_shares(items, n_resamples=0)
    with pytest.raises(ValueError, match="at least 2"):
        composition.class_shares(items.assign(fact=0))


def test_composition_test_against_enumeration():
    import itertools
    # four clusters of two items: a and b err differently on clusters 0 and 1
    a = ["selection", "selection", "imitative", None, "selection", None, None, "absent_support"]
    b = ["imitative", "imitative", "imitative", None, None, "selection", "absent_support", None]
    clusters = [0, 0, 1, 1, 2, 2, 3, 3]
    r = composition.composition_test(a, b, clusters, n_permutations=20000, rng=0)
    classes = ["imitative", "selection", "absent_support"]
    A = np.array([[sum(x == c for x, g in zip(a, clusters) if g == j) for c in classes] for j in range(4)])
    B = np.array([[sum(x == c for x, g in zip(b, clusters) if g == j) for c in classes] for j in range(4)])
    tv = lambda x, y: 0.5 * np.abs(x / x.sum() - y / y.sum()).sum()
    obs = tv(A.sum(0), B.sum(0))
    assert r.statistic == pytest.approx(obs)
    exact = np.mean([tv(*(sum(B[j] if s else A[j] for j, s in enumerate(sw)),
                          sum(A[j] if s else B[j] for j, s in enumerate(sw)))) >= obs - 1e-12
                     for sw in itertools.product([0, 1], repeat=4)])
    assert r.pvalue == pytest.approx(exact, abs=0.01)
    assert list(r.counts.index) == classes and r.counts["a"].sum() == 5 and r.counts["b"].sum() == 5
    assert r.null_distribution.shape == (20000,)
    same = composition.composition_test(a, a, clusters, n_resamples=200, n_permutations=200)
    assert same.statistic == 0.0 and same.pvalue == 1.0


def test_composition_test_power_and_type_one_error():
    rng = np.random.default_rng(0)
    n = 120
    sel = np.where(rng.random(n) < 0.5, "selection", None)
    ab = np.where(rng.random(n) < 0.5, "absent_support", None)
    r = composition.composition_test(sel, ab, np.arange(n) // 2, n_resamples=999, n_permutations=999, rng=1)
    assert r.statistic == 1.0 and r.pvalue == pytest.approx(1 / 1000)
    assert r.confidence_interval.low == pytest.approx(1.0)
    # exchangeable models: rejections at the 5% level near 5% (200 simulations)
    names = np.array([None, "selection", "absent_support", "imitative"], dtype=object)
    probs = [0.5, 0.2, 0.2, 0.1]
    pvals = [composition.composition_test(names[rng.choice(4, 60, p=probs)], names[rng.choice(4, 60, p=probs)],
                                       np.arange(60) // 2, n_resamples=10, n_permutations=199, rng=s).pvalue
             for s in range(200)]
    assert 0.01 <= np.mean(np.array(pvals) <= 0.05) <= 0.10


def test_composition_test_iv_and_no_errors():
    with pytest.raises(ValueError, match="one entry per item"):
        composition.composition_test(["selection"], ["selection", None], [0, 1])
    with pytest.raises(ValueError, match="classes lacks"):
        composition.composition_test(["selection", None], ["imitative", None], [0, 1], classes=["selection"])
    r = composition.composition_test([None, None], ["selection", None], [0, 1], n_resamples=50, n_permutations=50)
    with pytest.raises(ValueError, match="n_permutations"):
        composition.composition_test(["selection", None], ["imitative", None], [0, 1], n_permutations=0)
    assert np.isnan(r.statistic) and np.isnan(r.pvalue) and r.reason.startswith("model a has no errors")


def test_compare_compositions():
    items = _stacked()
    tidy = composition.compare_compositions(items, n_resamples=300, n_permutations=999, margin=0.2, rng=4)
    # a TV whose permutation p-value sits at its floor 1/1000 carries the floor (a bound, "p < 0.001")
    floored = tidy["pvalue_floor"].notna() if "pvalue_floor" in tidy else pd.Series(False, index=tidy.index)
    assert (tidy.loc[floored, "measure"] == "tv").all()
    assert np.allclose(tidy.loc[floored, "pvalue_floor"], 1 / 1000) and (tidy.loc[floored, "pvalue"] <= 1 / 1000).all()
    assert not (tidy.loc[~floored & (tidy.measure == "tv"), "pvalue"] <= 1 / 1000).any()   # every p at the floor says so
    tidy = tidy.drop(columns="pvalue_floor", errors="ignore")
    assert list(tidy.columns) == ["a", "b", "measure", *stats.ROW, "similar_accuracy", "errors_a", "errors_b"]
    assert tidy["measure"].tolist() == list(composition.COMPARISONS) * 3
    # the pair's rows side by side: d_accuracy, its TOST interval, tv
    out = tidy.pivot(index=["a", "b"], columns="measure", values=["estimate", "ci_low", "ci_high", "pvalue"])
    out.columns = [f"{m}_{c}" for c, m in out.columns]
    out = out.reset_index().merge(tidy[tidy.measure == "tv"][["a", "b", "n", "similar_accuracy"]], on=["a", "b"])
    out = out.rename(columns={"d_accuracy_estimate": "d_accuracy", "d_accuracy_ci_low": "d_accuracy_low",
                              "d_accuracy_ci_high": "d_accuracy_high", "d_accuracy_tost_ci_low": "tost_low",
                              "d_accuracy_tost_ci_high": "tost_high", "tv_estimate": "tv", "tv_pvalue": "pvalue"})
    assert list(zip(out.a, out.b)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert (out["d_accuracy_tost_estimate"] == out["d_accuracy"]).all() and out["d_accuracy_pvalue"].isna().all()
    acc = 1 - items.groupby("intervention")["error"].mean()
    assert out.loc[0, "d_accuracy"] == pytest.approx(acc["a"] - acc["b"])
    # the same draws as dint.stats.cluster_bootstrap with the same seed
    w = {m: g.sort_values(["fact", "form"]) for m, g in items.groupby("intervention")}
    ref = stats.cluster_bootstrap((~w["a"].error).to_numpy(float) - (~w["b"].error).to_numpy(float), w["a"].fact,
                                  method="expanded", n_resamples=300, rng=4)
    assert (out.loc[0, "d_accuracy_low"], out.loc[0, "d_accuracy_high"]) == pytest.approx(
        (ref.confidence_interval.low, ref.confidence_interval.high))
    assert (out.tost_low >= out.d_accuracy_low - 1e-12).all() and (out.tost_high <= out.d_accuracy_high + 1e-12).all()
    # a and b share no class: TV 1; a and c draw from the same two classes
    assert out.loc[0, "tv"] == 1.0 and out.loc[0, "pvalue"] < 0.01
    assert out.loc[1, "tv"] < 0.3 and out.loc[1, "pvalue"] > 0.01
    assert out["similar_accuracy"].dtype == bool
    assert (out.n == 120).all()
    with pytest.raises(ValueError, match="margin"):
        composition.compare_compositions(items, margin=0)
    with pytest.raises(ValueError, match="same items"):
        composition.compare_compositions(items[~((items.intervention == "b") & (items.fact == 0))])
    with pytest.raises(ValueError, match="lacks column"):
        composition.compare_compositions(items.drop(columns="form"))


def test_pass_curve():
    items = _stacked()
    k = [1, 4, 16]
    out = composition.pass_curve(items, k, n_resamples=500, rng=3)
    exact = pass_exact(items["p_true_post"], k).mean(0)
    assert list(out.columns) == ["k", "measure", *stats.ROW, "clusters"] and (out.measure == "pass").all()
    np.testing.assert_allclose(out["estimate"], exact)
    assert out["pvalue"].isna().all()
    ref = stats.cluster_bootstrap(pass_exact(items["p_true_post"], 4)[:, 0], items["fact"], method="expanded",
                                  n_resamples=500, rng=3)
    assert (out.loc[1, "ci_low"], out.loc[1, "ci_high"]) == pytest.approx(
        (ref.confidence_interval.low, ref.confidence_interval.high))
    assert list(out.k) == k and (out.n == len(items)).all() and (out.clusters == 60).all()
    assert out["estimate"].is_monotonic_increasing
    by = composition.pass_curve(items, k, by=["intervention", "form"], n_resamples=100)
    assert len(by) == 3 * 2 * 3 and set(by.columns) >= {"intervention", "form", "k", "estimate"}
    one = composition.pass_curve(items[items.fact == 0], 2, n_resamples=50)
    assert np.isnan(one.loc[0, "ci_low"]) and one.loc[0, "clusters"] == 1 and one.loc[0, "reason"]
    with pytest.raises(ValueError, match="lacks column"):
        composition.pass_curve(items, 2, column="p_true_base")


def test_pass_curve_reference_excess():
    items = _stacked()
    items["base_rate"] = 0.05
    tidy = composition.pass_curve(items, [1, 8], reference="base_rate", n_resamples=400, rng=0)
    assert tidy["measure"].tolist() == ["pass", "excess"] * 2
    passed, out = (tidy[tidy.measure == m].reset_index(drop=True) for m in ("pass", "excess"))
    np.testing.assert_allclose(out["pass_reference"], 1 - 0.95 ** np.array([1, 8]))
    np.testing.assert_allclose(out["estimate"], passed["estimate"] - out["pass_reference"])
    assert (out["ci_low"] > 0).all() and (out["pvalue"] < 1e-6).all() and passed["pvalue"].isna().all()
    same = composition.pass_curve(items.assign(base_rate=items["p_true_post"]), [4], reference="base_rate",
                               n_resamples=100)
    same = same[same.measure == "excess"].iloc[0]
    assert same["estimate"] == 0 and same["pvalue"] == 1.0
    with pytest.raises(ValueError, match="lacks column"):
        composition.pass_curve(items, 2, reference="p_true_base")
