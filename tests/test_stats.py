"""Tests for dint.stats: Pearson correlation, Wilson proportions and bootstrap means."""
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from dint.stats import ConfidenceInterval, Result, bootstrap_mean, pearson, proportion


def _xy(seed=0, n=30, rho=0.6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal(n)
    return x, y


# ---------------------------------------------------------------- input validation
@pytest.mark.parametrize("level", [1.5, 0.0, 1.0, -0.2])
def test_confidence_level_iv(level):
    x, y = _xy()
    with pytest.raises(ValueError, match="confidence_level"):
        pearson(x, y, confidence_level=level)
    with pytest.raises(ValueError, match="confidence_level"):
        proportion(3, 10, confidence_level=level)
    with pytest.raises(ValueError, match="confidence_level"):
        bootstrap_mean(x, confidence_level=level)


def test_pearson_iv():
    with pytest.raises(ValueError, match="x and y must be 1-D arrays of the same length"):
        pearson([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="x and y must be 1-D"):
        pearson(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="x has 2 observations; pearson needs at least 3"):
        pearson([1, 2], [2, 1])


@pytest.mark.parametrize("k, n, name", [(11, 10, "k=11"), (-1, 10, "k=-1"), (0, 0, "n=0")])
def test_proportion_iv(k, n, name):
    with pytest.raises(ValueError, match=name):
        proportion(k, n)


def test_bootstrap_mean_iv():
    with pytest.raises(ValueError, match="x must be a 1-D array"):
        bootstrap_mean([1.0])
    with pytest.raises(ValueError, match="x must be a 1-D array"):
        bootstrap_mean(np.ones((4, 4)))


# ---------------------------------------------------------------- pearson
@pytest.mark.parametrize("seed, n, level, alternative", [(0, 30, 0.95, "two-sided"), (1, 5, 0.9, "two-sided"),
                                                         (2, 50, 0.99, "greater"), (3, 12, 0.95, "less")])
def test_pearson_against_scipy(seed, n, level, alternative):
    x, y = _xy(seed, n)
    res = pearson(x, y, confidence_level=level, alternative=alternative)
    ref = sps.pearsonr(x, y, alternative=alternative)
    ci = ref.confidence_interval(confidence_level=level, method=None)
    assert res.statistic == ref.statistic
    assert res.pvalue == ref.pvalue
    assert res.confidence_interval == ConfidenceInterval(ci.low, ci.high)
    assert res.n == n
    assert "Fisher" in res.method
    assert isinstance(res.statistic, float) and isinstance(res.confidence_interval.low, float)


def test_pearson_against_theory():
    # Fisher interval: tanh(atanh(r) +- z / sqrt(n - 3)); test: t = r sqrt((n-2)/(1-r^2)) ~ t(n-2).
    x, y = _xy(4, 40)
    res = pearson(x, y)
    r, n = np.corrcoef(x, y)[0, 1], 40
    z = sps.norm.ppf(0.975)
    np.testing.assert_allclose(res.statistic, r, rtol=1e-12)
    np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                               np.tanh(np.arctanh(r) + np.array([-z, z]) / math.sqrt(n - 3)), rtol=1e-12)
    t = r * math.sqrt((n - 2) / (1 - r ** 2))
    np.testing.assert_allclose(res.pvalue, 2 * sps.t.sf(abs(t), n - 2), rtol=1e-9)
    perfect = pearson([1, 2, 3, 4], [3, 5, 7, 9])
    assert perfect.statistic == pytest.approx(1.0)


def test_pearson_reference_values():
    res = pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert res.statistic == pytest.approx(0.8, abs=1e-12)
    assert res.pvalue == pytest.approx(0.10408803866182788, rel=1e-9)
    t = 0.8 * math.sqrt(3 / 0.36)
    assert res.pvalue == pytest.approx(2 * sps.t.sf(t, 3), rel=1e-12)


# ---------------------------------------------------------------- proportion
@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (1, 1), (0, 1), (37, 120), (500, 1000)])
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_proportion_against_statsmodels(k, n, level):
    res = proportion(k, n, confidence_level=level)
    low, high = proportion_confint(k, n, alpha=1 - level, method="wilson")
    assert res.statistic == k / n
    if 0 < k < n:
        assert res.confidence_interval == ConfidenceInterval(float(low), float(high))
    else:  # at the bounds, allow the exact 0 / 1 (statsmodels is off by an ulp there)
        np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                                   [low, high], rtol=1e-15, atol=1e-15)
    assert res.n == n
    assert math.isnan(res.pvalue)
    assert res.confidence_interval.low <= res.confidence_interval.high


@pytest.mark.parametrize("k, n", [(0, 10), (4, 10), (10, 10), (37, 120)])
def test_proportion_against_theory(k, n):
    # Wilson (1927): (k + z²/2) / (n + z²)  ±  z / (n + z²) · sqrt(k (n - k) / n + z² / 4)
    z = sps.norm.ppf(0.975)
    centre = (k + z ** 2 / 2) / (n + z ** 2)
    half = z / (n + z ** 2) * math.sqrt(k * (n - k) / n + z ** 2 / 4)
    res = proportion(k, n)
    np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                               [centre - half, centre + half], rtol=1e-12, atol=1e-15)


def test_proportion_at_the_bounds():
    # Not degenerate at 0 and n, unlike the Wald interval.
    zero, full = proportion(0, 10), proportion(10, 10)
    assert zero.confidence_interval.low == pytest.approx(0.0, abs=1e-15)
    assert zero.confidence_interval.high == pytest.approx(0.27753279986288923, rel=1e-12)
    assert full.confidence_interval.high == pytest.approx(1.0, abs=1e-15)
    assert full.confidence_interval.low == pytest.approx(1 - 0.27753279986288923, rel=1e-12)
    assert zero.confidence_interval.high > 0 and full.confidence_interval.low < 1


@pytest.mark.parametrize("k, n", [(0, 3), (0, 7), (10, 10), (13, 13), (25, 25)])
def test_proportion_interval_contains_estimate_at_bounds(k, n):
    ci = proportion(k, n).confidence_interval
    assert ci.low <= k / n <= ci.high
    assert (ci.low == 0.0) if k == 0 else (ci.high == 1.0)   # the exact Wilson bound


def test_proportion_interval_contains_estimate():
    for n in (1, 2, 5, 17, 60):
        for k in range(1, n):
            ci = proportion(k, n).confidence_interval
            assert 0 < ci.low < k / n < ci.high < 1


# ---------------------------------------------------------------- bootstrap_mean
@pytest.mark.parametrize("n, method", [(40, "BCa"), (6, "percentile")])
def test_bootstrap_mean_against_scipy(n, method):
    x = np.random.default_rng(1).normal(2.0, 1.5, n)
    res = bootstrap_mean(x, rng=123, n_resamples=1000, confidence_level=0.9)
    ref = sps.bootstrap((x,), np.mean, confidence_level=0.9, n_resamples=1000, method=method,
                        rng=np.random.default_rng(123))
    assert res.confidence_interval == ConfidenceInterval(ref.confidence_interval.low, ref.confidence_interval.high)
    assert res.statistic == x.mean()
    assert res.n == n
    assert method in res.method


def test_bootstrap_mean_rng():
    x = np.random.default_rng(2).exponential(size=25)
    a = bootstrap_mean(x, rng=5)
    assert bootstrap_mean(x, rng=5) == a
    assert bootstrap_mean(x, rng=np.random.default_rng(5)) == a   # a seed or its generator
    assert bootstrap_mean(x, rng=6).confidence_interval != a.confidence_interval
    assert bootstrap_mean(x, rng=6).statistic == a.statistic


def test_bootstrap_mean_degenerate():
    res = bootstrap_mean([2.5, 2.5, 2.5])
    assert res.statistic == 2.5
    assert res.confidence_interval == ConfidenceInterval(2.5, 2.5)
    assert res.n == 3


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_bootstrap_mean_nearly_constant():
    x = 1.0 + np.array([2.2e-16, -1.1e-16, 2.2e-16, -1.1e-16, -1.1e-16, 0.0, 0.0, 2.2e-16, -1.1e-16, 0.0, 0.0, 0.0])
    with np.errstate(all="ignore"):
        ci = bootstrap_mean(x).confidence_interval
    assert ci.low == pytest.approx(1.0, rel=1e-12)
    assert ci.high == pytest.approx(1.0, rel=1e-12)


def test_bootstrap_mean_coverage_against_theory():
    # A 95% BCa interval for the mean of n = 40 normal draws covers the true mean about 95% of
    # the time (BCa undercovers slightly at small n); 300 replications: SE about 0.013.
    rng = np.random.default_rng(0)
    covered, widths = 0, []
    for _ in range(300):
        x = rng.normal(1.0, 2.0, 40)
        ci = bootstrap_mean(x, rng=rng).confidence_interval
        covered += ci.low <= 1.0 <= ci.high
        widths.append(ci.high - ci.low)
    assert 0.90 <= covered / 300 <= 0.98
    # and is about as wide as the normal-theory interval 2 z sigma / sqrt(n)
    assert np.mean(widths) == pytest.approx(2 * 1.96 * 2.0 / math.sqrt(40), rel=0.1)


# ---------------------------------------------------------------- Result
def test_result_asdict():
    res = pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    d = res.asdict()
    assert d == {"statistic": res.statistic, "n": 5, "method": res.method, "pvalue": res.pvalue,
                 "ci_low": res.confidence_interval.low, "ci_high": res.confidence_interval.high}
    p = proportion(3, 10).asdict()
    assert set(p) == {"statistic", "n", "method", "pvalue", "ci_low", "ci_high"}
    assert math.isnan(p["pvalue"]) and p["statistic"] == 0.3


def test_result_frozen():
    res = Result(0.5, ConfidenceInterval(0.1, 0.9), 10, "m")
    assert math.isnan(res.pvalue)
    with pytest.raises(AttributeError):
        res.statistic = 1.0
