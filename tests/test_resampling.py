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


def test_paired_difference_wald_against_theory():
    # the Wald interval and test with the bootstrap standard error of the difference
    from dint.stats.resampling import paired_difference
    rng = np.random.default_rng(1)
    a = (0.30, 0.30 + rng.normal(0, 0.02, 4999))
    b = (0.25, 0.25 + rng.normal(0, 0.01, 4999))
    est, ci, p, reason = paired_difference(a, b, 0.9)
    se = np.std(a[1] - b[1], ddof=1)
    assert est == pytest.approx(0.05) and reason == ""
    assert (ci.low, ci.high) == pytest.approx((0.05 - sps.norm.ppf(0.95) * se, 0.05 + sps.norm.ppf(0.95) * se))
    assert p == pytest.approx(2 * sps.norm.sf(0.05 / se))
    # no floor at 2 / (B + 1): a difference 10 standard errors from 0 gets the tail that says so
    far = (0.5, 0.5 + rng.normal(0, 0.01, 4999))
    est, ci, p, _ = paired_difference(far, b, 0.95)
    assert p < 1e-20 < 2 / 5000
    # undefined resamples are left out
    holes = (0.30, np.where(np.arange(4999) % 10 == 0, np.nan, a[1]))
    kept = (holes[1] - b[1])[np.isfinite(holes[1])]
    assert paired_difference(holes, b, 0.9)[2] == pytest.approx(2 * sps.norm.sf(0.05 / np.std(kept, ddof=1)))


def test_mean_difference_saddlepoint_tail():
    # a large effect: no sign flip reaches it, so the p-value is the exact distribution's saddlepoint tail,
    # far below the Monte-Carlo floor 1 / (B + 1); a moderate one keeps its Monte-Carlo p-value
    from dint.stats.permutation import sign_flip_sf
    rng = np.random.default_rng(3)
    y = rng.random(300)
    x = np.clip(y + rng.normal(0.05, 0.1, 300), 0, 1)
    r = resampling.mean_difference(x, y, n_permutations=999, rng=0)
    d = x - y
    assert r.pvalue == pytest.approx(2 * sign_flip_sf(d, abs(d.sum()))) and r.pvalue < 1 / 1000
    assert "saddlepoint" in r.method and not r.at_floor
    # against the t-test on near-normal differences (the two agree in the far tail to within a factor 2)
    assert 0.5 < r.pvalue / sps.ttest_1samp(d, 0).pvalue < 2
    moderate = resampling.mean_difference(y + rng.normal(0.01, 0.1, 300), y, n_permutations=999, rng=0)
    assert "saddlepoint" not in moderate.method and moderate.pvalue * 1000 == pytest.approx(round(moderate.pvalue * 1000))


def _mean_sums(x):
    return lambda w: (w @ x)[:, None], lambda s: s[:, 0] / len(x)


def test_iterated_bootstrap_draws():
    # the same draws for the same seed (two models pair up), whether cached or made in blocks
    from dint.stats.resampling import iterated_bootstrap_values
    x = np.random.default_rng(0).normal(size=40)
    sums, value = _mean_sums(x)
    a = iterated_bootstrap_values(sums, value, 40, 6, 5, 3)
    assert a.shape == (6, 5)
    assert np.array_equal(a, iterated_bootstrap_values(sums, value, 40, 6, 5, 3))
    assert np.allclose(a, iterated_bootstrap_values(sums, value, 40, 6, 5, 3, max_cells=400))   # 2 outer per block
    assert not np.allclose(a, iterated_bootstrap_values(sums, value, 40, 6, 5, 4))
    # each row resamples one resample of the data: its values lie within the data's range
    assert (a >= x.min()).all() and (a <= x.max()).all()
    with pytest.raises(ValueError, match="n_inner"):
        iterated_bootstrap_values(sums, value, 40, 6, 1, 3)


def test_iterated_bootstrap_variance_against_theory():
    # the squared mean of n standard normals: on a resample its noise adds to that of the data, so the bootstrap
    # variance is 4 m^2 s^2 / n + 2 s^4 / n^2 (m, s^2 the data's mean and plug-in variance), and on a resample of a
    # resample it is larger by 4 s^4 / n^2 on average: the excess the iterated bootstrap removes (Hall & Martin 1988)
    from dint.stats.resampling import bootstrap_values, iterated_bootstrap_values, paired_difference
    n, rng = 50, np.random.default_rng(7)
    square = lambda s: (s[:, 0] / n) ** 2
    first, excess = [], []
    for k in range(100):
        x = rng.normal(size=n)
        m, s2 = x.mean(), x.var()
        sums = lambda w: (w @ x)[:, None]
        a = bootstrap_values(sums, square, n, 1999, k)
        it = iterated_bootstrap_values(sums, square, n, 60, 60, k)
        v1, v2 = np.var(a[1], ddof=1), np.var(it, axis=1, ddof=1).mean()
        first.append(v1 / (4 * m ** 2 * s2 / n + 2 * s2 ** 2 / n ** 2))
        excess.append((v2 - v1) / (4 * s2 ** 2 / n ** 2))
        # the corrected variance is 2 v1 - v2, or v1 where that is not positive
        ci = paired_difference(a, (0.0, np.zeros(1999)), 0.95, iterated=(it, np.zeros_like(it)))[1]
        se = (ci.high - ci.low) / (2 * sps.norm.ppf(0.975))
        assert se ** 2 == pytest.approx(2 * v1 - v2 if 2 * v1 > v2 else v1, rel=1e-9)
    assert np.mean(first) == pytest.approx(1.0, abs=0.05)
    assert np.mean(excess) == pytest.approx(1.0, abs=0.25)
