"""Tests for dint.stats.resampling: the paired mean difference with its sign-flip test."""
import numpy as np
import pytest
from scipy import stats as sps

from dint.stats import resampling
from dint import stats


def test_mean_difference_against_scipy():
    rng = np.random.default_rng(7)
    x = rng.normal(size=80)
    y = x + rng.normal(0.25, 1.0, size=80)
    r = resampling.mean_difference(x, y, n_permutations=9999, rng=1)
    ref = sps.permutation_test((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), permutation_type="samples",
                               n_resamples=9999, rng=np.random.default_rng(2))
    assert r.statistic == pytest.approx(np.mean(x - y))
    assert r.pvalue == pytest.approx(ref.pvalue, abs=0.01)
    assert r.confidence_interval == stats.paired_bootstrap(x, y, rng=1).confidence_interval



def test_mean_difference_identical_samples():
    # every difference 0: the sign flips change nothing, the test has no information
    x = np.random.default_rng(7).normal(size=80)
    r = resampling.mean_difference(x, x, n_permutations=999, rng=0)
    assert r.statistic == 0.0 and r.confidence_interval == stats.ConfidenceInterval(0.0, 0.0)
    assert np.isnan(r.pvalue) and "point mass" in r.reason
    assert resampling.mean_difference(x + 0.1, x, n_permutations=999).reason == ""


def test_difference_point_mass():
    # the paired bootstrap difference of two statistics with no variability: no interval, no test
    from dint.stats.resampling import paired_difference
    same = (0.3, np.full(999, 0.3))
    est, ci, p, reason = paired_difference((0.4, np.full(999, 0.4)), same, 0.95)
    assert est == pytest.approx(0.1) and np.isnan([ci.low, ci.high, p]).all() and "point mass" in reason
    varied = (0.4, 0.4 + np.random.default_rng(0).normal(0, 0.05, 999))
    est, ci, p, reason = paired_difference(varied, same, 0.95)
    assert reason == "" and ci.low < 0.1 < ci.high and 0 < p <= 1
    est, ci, p, reason = paired_difference(same, same, 0.95)   # identical statistics: no test either
    assert est == 0 and np.isnan(p) and reason
