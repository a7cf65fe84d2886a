"""Tests for dint.resampling: the paired mean difference with its sign-flip test."""
import numpy as np
import pytest
from scipy import stats as sps

from dint import resampling, stats


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
    assert resampling.mean_difference(x, x).pvalue == 1.0
