"""Tests for dint.analyses.reliability: per-item confidence, AUROC, temperature, paired calibration changes."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.special import log_softmax, softmax
from synthetic import score_tables

from dint import calibration
from dint.analyses import reliability


# ---------------------------------------------------------------- synthetic score tables
def _calibrated(n, seed, power=1.0):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.05, 1, n)
    return c, rng.uniform(0, 1, n) < c ** power


# ---------------------------------------------------------------- agreement, distinct answers
def test_agreement_and_expected_distinct_against_theory():
    k, n = 5, 8
    uniform = np.full((1, k), 1 / k)
    assert reliability.two_draw_agreement(uniform)[0] == pytest.approx(1 / k)
    assert reliability.expected_distinct(uniform, n)[0] == pytest.approx(k * (1 - (1 - 1 / k) ** n))
    point = np.array([[0.0, 1.0, 0.0]])
    assert reliability.two_draw_agreement(point)[0] == 1.0 and reliability.expected_distinct(point, n)[0] == 1.0
    assert reliability.expected_distinct(uniform, 1)[0] == pytest.approx(1.0)


def test_expected_distinct_against_simulation():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    draws = np.random.default_rng(0).choice(4, size=(40_000, 8), p=p)
    distinct = np.array([len(set(d)) for d in draws])
    agree = np.mean(draws[:, 0] == draws[:, 1])
    assert reliability.expected_distinct(p[None], 8)[0] == pytest.approx(distinct.mean(), abs=0.02)
    assert reliability.two_draw_agreement(p[None])[0] == pytest.approx(agree, abs=0.01)


def test_agreement_expected_distinct_iv():
    with pytest.raises(ValueError, match="sum to 1"):
        reliability.two_draw_agreement(np.array([[0.5, 0.2]]))
    with pytest.raises(ValueError, match="shape"):
        reliability.two_draw_agreement(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="n=0"):
        reliability.expected_distinct(np.array([[0.5, 0.5]]), 0)


# ---------------------------------------------------------------- answer table
def test_answer_table_per_item():
    facts, scores = score_tables()
    a = reliability.answer_table(scores, facts, n_draws=4)
    assert list(a.fact) == sorted(facts.fact) and {"split", "relation", "type"} - {"type"} <= set(a.columns)
    g = scores[scores.fact == 3]
    p = g.sort_values("candidate").p_set.to_numpy()
    row = a.set_index("fact").loc[3]
    assert row.confidence == pytest.approx(p.max())
    assert row.correct == bool(g.sort_values("candidate").is_true.to_numpy()[p.argmax()])
    assert row.agreement == pytest.approx(np.sum(p ** 2))
    assert row.entropy == pytest.approx(sps.entropy(p))
    assert row.distinct == pytest.approx(np.sum(1 - (1 - p) ** 4))
    assert row.mass_outside == pytest.approx(0.1)
    # a huge temperature flattens every distribution; the top answer does not move
    hot = reliability.answer_table(scores, facts, temperature=1e6)
    k = scores.groupby("fact").size().loc[hot.fact].to_numpy()
    np.testing.assert_allclose(hot.confidence, 1 / k, rtol=1e-4)


def test_answer_table_iv():
    facts, scores = score_tables()
    both = pd.concat([scores, scores.assign(form="statement")])
    with pytest.raises(ValueError, match="one prompt form"):
        reliability.answer_table(both, facts)


# ---------------------------------------------------------------- AUROC
def test_auroc_against_bruteforce():
    rng = np.random.default_rng(1)
    s = np.round(rng.normal(size=60), 1)   # ties on purpose
    y = rng.uniform(size=60) < 1 / (1 + np.exp(-2 * s))
    r = reliability.auroc(s, y)
    pos, neg = s[y], s[~y]
    psi = (pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])
    assert r.statistic == pytest.approx(psi.mean())
    # DeLong: structural components
    se = math.sqrt(psi.mean(1).var(ddof=1) / len(pos) + psi.mean(0).var(ddof=1) / len(neg))
    z = sps.norm.ppf(0.975)
    assert r.confidence_interval.low == pytest.approx(max(0, psi.mean() - z * se))
    assert r.confidence_interval.high == pytest.approx(min(1, psi.mean() + z * se))
    assert r.pvalue == pytest.approx(sps.mannwhitneyu(pos, neg, method="asymptotic").pvalue)


def test_auroc_iv():
    with pytest.raises(ValueError, match="both classes"):
        reliability.auroc([0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(ValueError, match="paired"):
        reliability.auroc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="confidence_level"):
        reliability.auroc([0.1, 0.2], [1, 0], confidence_level=2)


# ---------------------------------------------------------------- temperature
def _tempered(n, k, t0, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, k))
    labels = np.array([rng.choice(k, p=p) for p in softmax(z / t0, axis=1)])
    return z, labels


def test_temperature_matches_fit_temperature_and_lr_test():
    z, labels = _tempered(400, 6, 2.0, seed=2)
    z[:, -1] = -np.inf   # a padded candidate
    labels = np.where(labels == 5, 0, labels)
    r = reliability.temperature(z, labels)
    fit = calibration.fit_temperature(z, labels)
    assert r.statistic == pytest.approx(fit.temperature, rel=1e-4)
    lr = 2 * fit.n * (fit.nll_before - fit.nll_after)
    assert r.pvalue == pytest.approx(sps.chi2.sf(lr, 1), rel=1e-3)
    assert r.confidence_interval.low < r.statistic < r.confidence_interval.high
    # at the interval's ends the deviance equals the chi-square critical value
    for t in (r.confidence_interval.low, r.confidence_interval.high):
        nll = -np.mean(log_softmax(z / t, axis=1)[np.arange(len(labels)), labels])
        assert 2 * fit.n * (nll - fit.nll_after) == pytest.approx(sps.chi2.ppf(0.95, 1), abs=1e-4)


def test_temperature_tests_another_null():
    z, labels = _tempered(400, 6, 2.0, seed=2)
    fit = calibration.fit_temperature(z, labels)
    nll = calibration.temperature_nll(z, labels)
    r = reliability.temperature(z, labels, null=2.5)
    assert r.statistic == pytest.approx(fit.temperature, rel=1e-4) and "T = 2.5" in r.method
    assert r.pvalue == pytest.approx(sps.chi2.sf(2 * fit.n * (nll(2.5) - fit.nll_after), 1), rel=1e-3)
    assert reliability.temperature(z, labels, null=fit.temperature).pvalue == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="null=0"):
        reliability.temperature(z, labels, null=0)


def test_held_out_keeps_heldout_items_in_order():
    facts, s = score_tables(seed=1)
    f, logp, labels = reliability.held_out(s, facts)
    held = facts[facts.split == "heldout"].fact.to_numpy()
    np.testing.assert_array_equal(f, np.sort(held))
    first = s[s.fact == f[0]].sort_values("candidate")
    np.testing.assert_allclose(np.exp(logp[0, :len(first)]), first.p_set)
    assert labels[0] == int(np.flatnonzero(first.is_true)[0])
    with pytest.raises(ValueError, match="one prompt form"):
        reliability.held_out(pd.concat([s, s.assign(form="statement")]), facts)


def test_temperature_interval_covers_truth():
    hits = [reliability.temperature(*_tempered(300, 5, 2.0, seed=s)).confidence_interval for s in range(40)]
    cover = np.mean([ci.low <= 2.0 <= ci.high for ci in hits])
    assert cover >= 0.85


def test_temperature_iv():
    z, labels = _tempered(20, 3, 1.0, seed=0)
    with pytest.raises(ValueError, match="bounds"):
        reliability.temperature(z, labels, bounds=(2.0, 3.0))
    with pytest.raises(ValueError, match="labels"):
        reliability.temperature(z, labels[:-1])
    with pytest.raises(ValueError, match="confidence_level"):
        reliability.temperature(z, labels, confidence_level=0)


# ---------------------------------------------------------------- paired ECE difference
@pytest.mark.parametrize("debiased", [False, True])
def test_ece_difference_estimate_and_symmetry(debiased):
    ca, ya = _calibrated(1000, seed=3)
    cb, yb = _calibrated(1000, seed=4, power=3.0)
    r = reliability.ece_difference(ca, ya, cb, yb, n_bins=10, debiased=debiased, n_resamples=999, rng=5)
    ea = calibration.ece(ca, ya, n_bins=10, debiased=debiased, n_resamples=0).statistic
    eb = calibration.ece(cb, yb, n_bins=10, debiased=debiased, n_resamples=0).statistic
    assert r.statistic == pytest.approx(ea - eb, abs=1e-12)
    s = reliability.ece_difference(cb, yb, ca, ya, n_bins=10, debiased=debiased, n_resamples=999, rng=5)
    assert s.statistic == pytest.approx(-r.statistic)
    assert s.confidence_interval.low == pytest.approx(-r.confidence_interval.high)
    assert s.pvalue == pytest.approx(r.pvalue)
    assert r.confidence_interval.high < 0 and r.pvalue < 0.01   # b is miscalibrated


def test_ece_difference_identical_models_and_generator_pairing():
    # identical models: every resample's difference is 0, a point mass that says nothing about the
    # variability (a [0, 0] interval and p = 1 would read as certainty): not estimable
    c, y = _calibrated(200, seed=6)
    for rng in (0, np.random.default_rng(0)):
        r = reliability.ece_difference(c, y, c, y, n_resamples=499, rng=rng)
        assert r.statistic == 0 and np.isnan(r.confidence_interval.low) and np.isnan(r.confidence_interval.high)
        assert np.isnan(r.pvalue) and "point mass" in r.reason


@pytest.mark.parametrize("debiased", [False, True])
def test_ece_difference_single_bin(debiased):
    # each model puts every item in one bin with one confidence and is always right: each ECE is
    # 1 - confidence on every resample, so the bootstrap difference is a point mass; before, this
    # gave a zero-width interval and p = 2 / (B + 1)
    ones = np.ones(30)
    r = reliability.ece_difference(np.full(30, 0.95), ones, np.full(30, 0.85), ones, debiased=debiased,
                                   n_resamples=999)
    assert r.statistic == pytest.approx(-0.1)
    assert np.isnan([r.confidence_interval.low, r.confidence_interval.high, r.pvalue]).all() and r.reason
    # one occupied bin with varied confidences: defined, an interval of positive width and a test
    c = np.linspace(0.91, 0.99, 30)
    y = (np.arange(30) % 5 != 0).astype(float)
    ok = reliability.ece_difference(c, y, np.full(30, 0.85), ones, debiased=debiased, n_resamples=999)
    assert ok.reason == "" and ok.confidence_interval.low < ok.confidence_interval.high and 0 < ok.pvalue <= 1


def test_ece_difference_iv():
    c, y = _calibrated(20, seed=0)
    with pytest.raises(ValueError, match="same items"):
        reliability.ece_difference(c, y, c[:-1], y[:-1])
    with pytest.raises(ValueError, match="n_resamples"):
        reliability.ece_difference(c, y, c, y, n_resamples=0)
    with pytest.raises(ValueError, match="rng"):
        reliability.ece_difference(c, y, c, y, rng=-1)


# ---------------------------------------------------------------- tidy summaries
def test_calibration_summaries_tidy_and_consistent():
    facts, a = score_tables(n_per_relation=(40, 30), seed=3)
    _, b = score_tables(n_per_relation=(40, 30), seed=4, sharp=4.0)
    b = b.assign(is_true=a.is_true.to_numpy())
    answers = {"base": reliability.answer_table(a, facts), "post": reliability.answer_table(b, facts)}
    summary = reliability.calibration_summary(answers, n_bins=5, n_resamples=199)
    assert list(summary.columns) == ["model", "reference", "measure", "estimate", "ci_low", "ci_high", "pvalue",
                                     "n", "method", "reason"]
    assert (summary.reason == "").all()
    ece = summary[summary.measure == "ece"].set_index("model").estimate
    changes = reliability.calibration_changes(answers, "base", n_bins=5, n_resamples=199, n_test_resamples=199)
    d = changes.set_index("measure").estimate
    assert d["d_ece"] == pytest.approx(ece["post"] - ece["base"])
    brier = summary[summary.measure == "brier"].set_index("model").estimate
    assert d["d_brier"] == pytest.approx(brier["post"] - brier["base"])
    with pytest.raises(ValueError, match="reference"):
        reliability.calibration_changes(answers, "nope")


def test_temperature_scaling_rows():
    facts, scores = score_tables(n_per_relation=(40, 30), seed=5, sharp=4.0)
    t = reliability.temperature_scaling(scores, facts, n_bins=5, n_resamples=99, n_test_resamples=99, rng=0)
    assert list(t.measure) == ["t_train", "t_heldout", "ece_before", "ece_after_train", "ece_after_crossfit",
                               "d_ece_train", "d_ece_crossfit"]
    v = t.set_index("measure").estimate
    assert v["d_ece_train"] == pytest.approx(v["ece_after_train"] - v["ece_before"])
    again = reliability.temperature_scaling(scores, facts, n_bins=5, n_resamples=99, n_test_resamples=99, rng=0)
    pd.testing.assert_frame_equal(t, again)   # deterministic
    with pytest.raises(ValueError, match="n_folds"):
        reliability.temperature_scaling(scores, facts, n_folds=1)
