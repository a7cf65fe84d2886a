"""Tests for dint.agreement: Cohen's κ of a taxonomy's classes against known causes, with cluster intervals."""
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from dint import agreement

TABLE = np.array([[10, 2, 1], [3, 8, 2], [1, 1, 12]])


def _labels(table, names=("imitative", "regression", "selection")):
    known, pred = [], []
    for i, row in enumerate(table):
        for j, c in enumerate(row):
            known += [names[i]] * c
            pred += [names[j]] * c
    return pred, known


def test_agreement_against_statsmodels():
    pred, known = _labels(TABLE)
    r = agreement.agreement(pred, known)
    ref = cohens_kappa(TABLE)
    assert r.statistic == pytest.approx(ref.kappa)
    assert r.confidence_interval.low == pytest.approx(ref.kappa_low)
    assert r.confidence_interval.high == pytest.approx(ref.kappa_upp)
    assert r.pvalue == pytest.approx(ref.pvalue_two_sided)
    np.testing.assert_array_equal(r.confusion.to_numpy(), TABLE)
    assert list(r.confusion.index) == ["imitative", "regression", "selection"]   # CLASSES order
    assert r.n == TABLE.sum() and r.observed == pytest.approx(30 / 40)
    np.testing.assert_allclose(r.per_class["precision"], [10 / 14, 8 / 11, 12 / 15])
    np.testing.assert_allclose(r.per_class["recall"], [10 / 13, 8 / 13, 12 / 14])
    narrow = agreement.agreement(pred, known, confidence_level=0.5)
    assert r.confidence_interval.low < narrow.confidence_interval.low < narrow.statistic


def test_agreement_perfect_and_accuracy_only():
    labels = ["imitative"] * 3 + ["selection"] * 5 + ["absent_support"] * 2
    r = agreement.agreement(labels, labels)
    assert r.statistic == pytest.approx(1.0) and r.observed == 1.0
    np.testing.assert_allclose(r.per_class["recall"], 1.0)
    known = pd.DataFrame({"error": [True] * 10 + [False], "cause": labels + [None]})
    a = agreement.accuracy_only(known)
    assert a.statistic == 0.0 and a.observed == 0.0 and a.n == 10
    assert a.per_class.loc["error", "predicted"] == 10
    np.testing.assert_allclose(a.per_class.loc[["imitative", "selection", "absent_support"], "recall"], 0.0)


def test_agreement_iv():
    with pytest.raises(ValueError, match="differ in length"):
        agreement.agreement(["selection"], ["selection", "imitative"])
    with pytest.raises(ValueError, match="known has missing"):
        agreement.agreement(["selection", "imitative"], ["selection", None])
    with pytest.raises(ValueError, match="empty"):
        agreement.agreement([], [])
    with pytest.raises(ValueError, match="confidence_level"):
        agreement.agreement(["selection"], ["selection"], confidence_level=1.5)
    with pytest.raises(ValueError, match="items lacks"):
        agreement.accuracy_only(pd.DataFrame({"error": [True]}))
    assert np.isnan(agreement.agreement(["selection"] * 3, ["selection"] * 3).statistic)   # κ undefined


def test_agreement_one_class():
    # both raters use one label: chance agreement is 1 and κ = 0/0
    r = agreement.agreement(["selection"] * 6, ["selection"] * 6)
    assert np.isnan([r.statistic, r.confidence_interval.low, r.confidence_interval.high, r.pvalue]).all()
    assert "'selection'" in r.reason and "undefined" in r.reason and r.observed == 1.0 and r.n == 6
    c = agreement.agreement(["selection"] * 6, ["selection"] * 6, clusters=[0, 0, 1, 1, 2, 2], n_resamples=100)
    assert np.isnan(c.statistic) and "undefined" in c.reason
    # two labels, one rater constant: κ is defined (0), but its standard errors are 0
    a = agreement.agreement(["selection"] * 6, ["selection"] * 3 + ["imitative"] * 3)
    assert a.statistic == pytest.approx(0.0) and np.isnan([a.confidence_interval.low, a.pvalue]).all()
    assert "no interval or test" in a.reason


# -- κ with a cluster bootstrap ------------------------------------------------------------------
def test_cluster_kappa_against_statsmodels():
    pred, known = _labels(TABLE)
    clusters = np.arange(len(pred))                    # one item per cluster: the ordinary bootstrap
    r = agreement.cluster_kappa(pred, known, clusters, n_resamples=4000, rng=1)
    ref = cohens_kappa(TABLE)
    assert r.statistic == pytest.approx(ref.kappa)
    # the bootstrap interval approximates the asymptotic one
    assert r.confidence_interval.low == pytest.approx(ref.kappa_low, abs=0.05)
    assert r.confidence_interval.high == pytest.approx(ref.kappa_upp, abs=0.05)
    assert r.pvalue < 0.001 and r.n == len(pred)
    a = agreement.agreement(pred, known, clusters=clusters, n_resamples=4000, rng=1)
    assert a.statistic == pytest.approx(ref.kappa) and a.confidence_interval == r.confidence_interval
    assert "cluster" in a.method and a.pvalue == r.pvalue
    # duplicating every item within its cluster leaves κ, widens nothing spuriously: same interval
    dup = agreement.cluster_kappa(pred * 2, known * 2, np.concatenate([clusters, clusters]), n_resamples=4000, rng=1)
    assert dup.statistic == pytest.approx(r.statistic)
    assert (dup.confidence_interval.low, dup.confidence_interval.high) == pytest.approx(
        (r.confidence_interval.low, r.confidence_interval.high))
    # independent labels: κ near 0 and no rejection
    rng = np.random.default_rng(0)
    names = np.array(["imitative", "regression", "selection"])
    null = agreement.cluster_kappa(names[rng.integers(3, size=300)], names[rng.integers(3, size=300)],
                                  np.arange(300) // 2, n_resamples=999, rng=2)
    assert abs(null.statistic) < 0.1 and null.pvalue > 0.05
    assert null.confidence_interval.low < 0 < null.confidence_interval.high


def test_cluster_kappa_iv():
    with pytest.raises(ValueError, match="one entry per item"):
        agreement.cluster_kappa(["selection"] * 3, ["selection"] * 3, [0, 1])
    with pytest.raises(ValueError, match="labels lacks"):
        agreement.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 1], labels=["selection"])
    with pytest.raises(ValueError, match="at least 2"):
        agreement.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 0])
    with pytest.raises(ValueError, match="clusters must be"):
        agreement.agreement(["selection", "imitative"], ["selection"] * 2, clusters=[0, 1, 2])
    one = agreement.agreement(["selection", "imitative"], ["selection", "imitative"], clusters=[0, 0])
    assert one.statistic == 1.0 and np.isnan(one.confidence_interval.low) and np.isnan(one.pvalue)
    assert "one cluster" in one.reason
    with pytest.raises(ValueError, match="n_resamples"):
        agreement.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 1], n_resamples=1.5)


def test_cluster_kappa_one_class():
    r = agreement.cluster_kappa(["selection"] * 8, ["selection"] * 8, np.arange(8) // 2, n_resamples=200)
    assert np.isnan([r.statistic, r.confidence_interval.low, r.confidence_interval.high, r.pvalue]).all()
    assert "undefined" in r.reason
    # perfect agreement in every cluster: κ = 1 on every resample, a point mass: no interval or test
    labels = ["selection", "imitative"] * 4
    p = agreement.cluster_kappa(labels, labels, np.arange(8) // 2, n_resamples=200)
    assert p.statistic == 1.0 and np.isnan(p.confidence_interval.low) and np.isnan(p.pvalue)
    assert "point mass" in p.reason


def test_cluster_kappa_type_one_error():
    # independent raters, two items per cluster: the Wald test with the cluster bootstrap SE holds its level
    rng = np.random.default_rng(5)
    names = np.array(["imitative", "selection", "absent_support"])
    pvals = []
    for s in range(150):
        known = names[rng.choice(3, 120, p=[0.2, 0.5, 0.3])]
        pred = names[rng.choice(3, 120, p=[0.3, 0.3, 0.4])]
        pvals.append(agreement.cluster_kappa(pred, known, np.arange(120) // 2, n_resamples=200, rng=s).pvalue)
    assert 0.01 <= np.mean(np.array(pvals) <= 0.05) <= 0.11


def test_kappa_against_statsmodels():
    pred, known = _labels(TABLE)
    assert agreement.kappa(pred, known) == pytest.approx(cohens_kappa(TABLE).kappa)
    assert agreement.kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert agreement.kappa(["x"] * 4, ["a", "b", "a", "b"]) == 0.0          # one predicted label: no agreement
    assert np.isnan(agreement.kappa(["a"] * 3, ["a"] * 3))
    with pytest.raises(ValueError, match="one length"):
        agreement.kappa(["a"], ["a", "b"])


def test_cluster_kappa_difference_is_paired():
    pred, known = _labels(TABLE)
    n = len(known)
    clusters = np.arange(n) // 2
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(n) < 0.5, np.array(pred, dtype=object), rng.permutation(np.array(pred, dtype=object)))
    d = agreement.cluster_kappa_difference(pred, noisy, known, clusters, n_resamples=400, rng=3)
    a = agreement.cluster_kappa(pred, known, clusters, n_resamples=400, rng=3)
    b = agreement.cluster_kappa(noisy, known, clusters, n_resamples=400, rng=3)
    assert d.statistic == pytest.approx(a.statistic - b.statistic) and d.statistic > 0
    assert d.confidence_interval.low > 0 and d.pvalue < 0.05 and d.n == n
    # paired: both κ on the same resamples, so a labelling against itself differs by exactly 0 in every one
    same = agreement.cluster_kappa_difference(pred, pred, known, clusters, n_resamples=100, rng=0)
    assert same.statistic == 0 and np.isnan(same.pvalue) and "point mass" in same.reason
    one = agreement.cluster_kappa_difference(["a"] * 4, ["a"] * 4, ["a"] * 4, [0, 0, 1, 1], n_resamples=50)
    assert np.isnan(one.statistic) and "undefined" in one.reason
    with pytest.raises(ValueError, match="one entry per item"):
        agreement.cluster_kappa_difference(pred, noisy[:-1], known, clusters)


def test_cluster_kappa_difference_type_one_error():
    """Two labellings that are exchangeable (each agrees with the cause at random, at the same rate): the test
    rejects about 5% of the time."""
    pvals = []
    for s in range(150):
        rng = np.random.default_rng(s)
        known = rng.choice(["a", "b", "c"], 120)
        a = np.where(rng.random(120) < 0.5, known, rng.choice(["a", "b", "c"], 120))
        b = np.where(rng.random(120) < 0.5, known, rng.choice(["a", "b", "c"], 120))
        pvals.append(agreement.cluster_kappa_difference(a, b, known, np.arange(120) // 2, n_resamples=200,
                                                        rng=s).pvalue)
    assert 0.01 <= np.mean(np.array(pvals) <= 0.05) <= 0.11
