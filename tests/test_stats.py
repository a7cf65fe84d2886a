"""Tests for dint.stats: correlation, proportions, paired and clustered inference, multiplicity, models."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from dint.stats.proportions import McNemarResult, diff_proportions, mcnemar
from dint import stats
from dint.stats import ROW, ConfidenceInterval, Result, adjust, bootstrap_mean, cluster_bootstrap, paired_bootstrap, paired_permutation_test, pearson, proportion


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
    res = bootstrap_mean(x, method="BCa", rng=123, n_resamples=1000, confidence_level=0.9)
    ref = sps.bootstrap((x,), np.mean, confidence_level=0.9, n_resamples=1000, method=method,
                        rng=np.random.default_rng(123))
    assert res.confidence_interval == ConfidenceInterval(ref.confidence_interval.low, ref.confidence_interval.high)
    assert res.statistic == x.mean()
    assert res.n == n
    assert method in res.method


def test_bootstrap_mean_t_and_hull():
    x = np.random.default_rng(3).lognormal(0.0, 1.0, 30)
    t = bootstrap_mean(x, method="t", confidence_level=0.9).confidence_interval
    ref = sps.ttest_1samp(x, 0.0).confidence_interval(confidence_level=0.9)
    np.testing.assert_allclose([t.low, t.high], [ref.low, ref.high], rtol=1e-12)
    boot_t = bootstrap_mean(x, method="studentized", confidence_level=0.9, rng=4).confidence_interval
    j = bootstrap_mean(x, method="johnson", confidence_level=0.9).confidence_interval
    hull = bootstrap_mean(x, confidence_level=0.9, rng=4)
    assert "hull" in hull.method and "Johnson" in hull.method
    assert hull.confidence_interval == ConfidenceInterval(min(j.low, boot_t.low), max(j.high, boot_t.high))
    # right-skewed data: the bootstrap-t and Johnson's t reach further right than Student's t
    assert boot_t.high > t.high and j.high > t.high and j.low > t.low
    d = paired_bootstrap(x, np.zeros(30), confidence_level=0.9, rng=4)
    assert d.confidence_interval == hull.confidence_interval and "paired hull" in d.method


def test_johnson_t_solves_johnsons_statistic():
    """Each bound is a root of Johnson's (1978) modified t, t1(mu) = -+q; symmetric data give Student's t."""
    x = np.random.default_rng(5).gamma(2.0, 1.0, 40)
    n, m, s2 = len(x), x.mean(), x.var(ddof=1)
    mu3 = np.mean((x - m) ** 3)
    q = sps.t.ppf(0.975, n - 1)
    ci = bootstrap_mean(x, method="johnson").confidence_interval

    def t1(mu):
        u = m - mu
        return (u + mu3 / (6 * s2 * n) + mu3 / (3 * s2 ** 2) * u ** 2) / np.sqrt(s2 / n)
    np.testing.assert_allclose([t1(ci.high), t1(ci.low)], [-q, q], rtol=1e-10)
    sym = np.concatenate([x - m, m - x])        # third central moment exactly 0
    j = bootstrap_mean(sym, method="johnson").confidence_interval
    t = bootstrap_mean(sym, method="t").confidence_interval
    np.testing.assert_allclose([j.low, j.high], [t.low, t.high], atol=1e-12)


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



@pytest.mark.filterwarnings("error")
def test_pearson_zero_variance():
    x, y = _xy(5, 20)
    for a, b, which in ((np.full(20, 2.0), y, "x is"), (x, np.zeros(20), "y is"), (np.ones(20), np.ones(20), "x and y are")):
        res = pearson(a, b)
        assert math.isnan(res.statistic) and math.isnan(res.pvalue)
        assert math.isnan(res.confidence_interval.low) and math.isnan(res.confidence_interval.high)
        assert res.reason.startswith(which) and "constant" in res.reason and res.n == 20
    assert pearson(x, y).reason == ""


# ---------------------------------------------------------------- Result
def test_result_asdict():
    res = pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    d = res.asdict()   # numbers.json: the table row's columns, in their order
    assert d == res.row() and list(d) == list(ROW)
    assert d["estimate"] == res.statistic and d["ci_low"] == res.confidence_interval.low
    p = proportion(3, 10).asdict()
    assert math.isnan(p["pvalue"]) and p["estimate"] == 0.3


def test_result_pvalue_floor_through_holm():
    # Monte-Carlo p-values at their floor stay bounds through the table, Holm and the named results
    floor = 2 / 1000
    rows = [Result(0.3, ConfidenceInterval(0.1, 0.5), 50, "perm", floor, pvalue_floor=floor).row(test="a"),
            Result(0.1, ConfidenceInterval(-0.1, 0.3), 50, "perm", 0.2).row(test="b"),
            Result(0.4, ConfidenceInterval(0.2, 0.6), 50, "z", 1e-6).row(test="c")]
    table = stats.holm(pd.DataFrame(rows))
    assert table["pvalue_holm_floor"].notna().tolist() == [True, False, False]
    a = table.set_index("test").loc["a"]
    assert a.pvalue_holm == pytest.approx(2 * floor) and a.pvalue_holm_floor == a.pvalue_holm
    named = stats.results(table, "{test}", pvalue="pvalue_holm")
    assert named["a"].at_floor and named["a"].pvalue == pytest.approx(2 * floor)
    assert not named["b"].at_floor and not named["c"].at_floor and "pvalue_floor" not in named["c"].asdict()
    assert stats.results(table, "{test}")["a"].pvalue_floor == pytest.approx(floor)   # the raw p-value's floor
    assert Result.from_row(rows[0]).at_floor and not Result.from_row(rows[1]).at_floor
    # a table without floors gets no floor column
    assert "pvalue_holm_floor" not in stats.holm(pd.DataFrame(rows[1:])).columns


def test_result_frozen():
    res = Result(0.5, ConfidenceInterval(0.1, 0.9), 10, "m")
    assert math.isnan(res.pvalue) and res.reason == ""
    with pytest.raises(AttributeError):
        res.statistic = 1.0



def test_result_not_estimable_says_why():
    r = Result.not_estimable("no fact in the group", n=3, method="Wilson")
    d = r.asdict()
    assert all(math.isnan(d[k]) for k in ("estimate", "ci_low", "ci_high", "pvalue"))
    assert (d["n"], d["method"], d["reason"]) == (3, "Wilson", "no fact in the group")
    with pytest.raises(ValueError, match="reason="):
        Result.not_estimable("  ")


def test_result_reason_keeps_constructions():
    # positional constructions across the package stay valid; subclasses add fields after reason
    ci = ConfidenceInterval(0.1, 0.9)
    assert Result(0.5, ci, 10, "m", 0.2) == Result(statistic=0.5, confidence_interval=ci, n=10, method="m",
                                                   pvalue=0.2, reason="")
    m = McNemarResult(0.1, ci, 10, "m", 0.5, b=1, c=2)
    assert m.reason == "" and (m.b, m.c) == (1, 2)
    d = McNemarResult(0.0, ci, 10, "m", float("nan"), "no discordant pairs", b=0, c=0).asdict()
    assert d["reason"] == "no discordant pairs" and d["b"] == 0 and "confidence_interval" not in d
    assert list(d)[:len(ROW)] == list(ROW)                                 # the row first, then b and c


# ---------------------------------------------------------------- paired_bootstrap
def _paired(seed=0, n=30, shift=0.3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, x + rng.normal(shift, 1.0, n)


def test_paired_bootstrap_iv():
    x, y = _paired()
    with pytest.raises(ValueError, match="confidence_level"):
        paired_bootstrap(x, y, confidence_level=1.0)
    with pytest.raises(ValueError, match="method"):
        paired_bootstrap(x, y, method="basic")
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap(x, y, n_resamples=0)
    with pytest.raises(ValueError, match="x and y must be 1-D arrays of the same length"):
        paired_bootstrap(x, y[:-1])
    with pytest.raises(ValueError, match="x has 1 observations"):
        paired_bootstrap([1.0], [2.0])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([1.0, np.nan], [2.0, 3.0])
    with pytest.raises(TypeError, match="statistic"):
        paired_bootstrap(x, y, statistic=3)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_paired_bootstrap_against_scipy(method):
    x, y = _paired(1, 25)
    res = paired_bootstrap(x, y, method=method, confidence_level=0.9, n_resamples=1000, rng=7)
    ref = sps.bootstrap((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), paired=True, method=method,
                        confidence_level=0.9, n_resamples=1000, rng=np.random.default_rng(7))
    np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                               [ref.confidence_interval.low, ref.confidence_interval.high], rtol=1e-12)
    assert res.statistic == pytest.approx(np.mean(x - y), rel=1e-12)
    assert res.n == 25 and method in res.method and math.isnan(res.pvalue)
    assert isinstance(res.confidence_interval.low, float)


def test_paired_bootstrap_custom_statistic():
    x, y = _paired(2, 20)
    # vectorised (takes axis) and non-vectorised statistics give the same interval from the same rng
    vec = paired_bootstrap(x, y, lambda a, b, axis=-1: np.median(a - b, axis=axis), n_resamples=500, rng=3)
    loop = paired_bootstrap(x, y, lambda a, b: np.median(a - b), n_resamples=500, rng=3)
    assert vec.statistic == loop.statistic == pytest.approx(np.median(x - y))
    np.testing.assert_allclose([vec.confidence_interval.low, vec.confidence_interval.high],
                               [loop.confidence_interval.low, loop.confidence_interval.high], rtol=1e-12)
    assert paired_bootstrap(x, y, rng=np.random.default_rng(4)) == paired_bootstrap(x, y, rng=4)


def test_paired_bootstrap_against_theory():
    # Pairing removes the shared item effect: the paired interval is far narrower than the
    # unpaired one when x and y are strongly correlated, and about 2 z sd(d) / sqrt(n) wide.
    rng = np.random.default_rng(5)
    item = rng.normal(0, 3, 60)
    x, y = item + rng.normal(0, 0.5, 60), item + 0.2 + rng.normal(0, 0.5, 60)
    ci = paired_bootstrap(x, y, rng=1).confidence_interval
    unpaired = sps.bootstrap((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                             rng=np.random.default_rng(1)).confidence_interval
    assert (ci.high - ci.low) < 0.4 * (unpaired.high - unpaired.low)
    d = x - y
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * d.std(ddof=1) / math.sqrt(60), rel=0.15)
    const = paired_bootstrap([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert const.confidence_interval == ConfidenceInterval(0.5, 0.5)


# ---------------------------------------------------------------- cluster_bootstrap
def test_cluster_bootstrap_iv():
    v = np.arange(6.0)
    with pytest.raises(ValueError, match="confidence_level"):
        cluster_bootstrap(v, [0, 0, 1, 1, 2, 2], confidence_level=0)
    with pytest.raises(ValueError, match="method"):
        cluster_bootstrap(v, [0, 0, 1, 1, 2, 2], method="basic")
    with pytest.raises(ValueError, match="n_resamples"):
        cluster_bootstrap(v, [0, 0, 1, 1, 2, 2], n_resamples=2.5)
    with pytest.raises(ValueError, match="clusters must be 1-D with one label per row"):
        cluster_bootstrap(v, [0, 1])
    with pytest.raises(ValueError, match="clusters has 1 distinct label"):
        cluster_bootstrap(v, np.zeros(6))
    with pytest.raises(ValueError, match="values must be"):
        cluster_bootstrap(np.ones((2, 2, 2)), [0, 1])
    with pytest.raises(TypeError, match="statistic"):
        cluster_bootstrap(v, [0, 0, 1, 1, 2, 2], statistic=None)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_cluster_bootstrap_against_scipy(method):
    # One item per cluster (labels in row order): the ordinary bootstrap, same resamples as scipy.
    v = np.random.default_rng(3).exponential(size=35)
    ref = sps.bootstrap((v,), np.mean, method=method, n_resamples=1000, confidence_level=0.9,
                        rng=np.random.default_rng(11)).confidence_interval
    for stat in (np.mean, lambda a: float(np.mean(a))):   # fast path and generic path
        res = cluster_bootstrap(v, np.arange(35), stat, method=method, n_resamples=1000, confidence_level=0.9,
                                rng=11)
        np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                                   [ref.low, ref.high], rtol=1e-12)
        assert res.statistic == pytest.approx(v.mean()) and res.n == 35 and method in res.method


def test_cluster_bootstrap_paired_columns():
    rng = np.random.default_rng(4)
    fact = np.repeat(np.arange(12), 3)
    base = rng.normal(size=12)[fact]
    v = np.column_stack([base + rng.normal(0, 0.3, 36), base + 0.5 + rng.normal(0, 0.3, 36)])
    res = cluster_bootstrap(v, fact, lambda r: np.mean(r[:, 1] - r[:, 0]), n_resamples=500, rng=2)
    assert res.statistic == pytest.approx(np.mean(v[:, 1] - v[:, 0]))
    assert res.confidence_interval.low < res.statistic < res.confidence_interval.high
    assert res.n == 12
    # rows need not be sorted by cluster: permuting the rows changes nothing
    perm = rng.permutation(36)
    again = cluster_bootstrap(v[perm], fact[perm], lambda r: np.mean(r[:, 1] - r[:, 0]), n_resamples=500, rng=2)
    np.testing.assert_allclose([again.confidence_interval.low, again.confidence_interval.high],
                               [res.confidence_interval.low, res.confidence_interval.high], rtol=1e-12)
    bca = cluster_bootstrap(v, fact, lambda r: np.mean(r[:, 1] - r[:, 0]), method="BCa", n_resamples=500, rng=2)
    assert bca.confidence_interval.low < bca.statistic < bca.confidence_interval.high


def test_cluster_bootstrap_coverage_against_theory():
    # 30 clusters of 5 items, intraclass correlation 0.5 (design effect 3): the cluster interval
    # covers the true mean about 95% of the time; the item-level one undercovers (about 74%).
    rng = np.random.default_rng(0)
    g, m, reps = 30, 5, 200
    labels = np.repeat(np.arange(g), m)
    cluster_hits = naive_hits = 0
    for _ in range(reps):
        v = rng.normal(size=g)[labels] + rng.normal(size=g * m)
        c = cluster_bootstrap(v, labels, n_resamples=1000, rng=rng).confidence_interval
        nv = cluster_bootstrap(v, np.arange(g * m), n_resamples=1000, rng=rng).confidence_interval
        cluster_hits += c.low <= 0 <= c.high
        naive_hits += nv.low <= 0 <= nv.high
    assert 0.90 <= cluster_hits / reps <= 0.99
    assert naive_hits / reps < 0.85



def _few_clusters(rng, g=12):
    """12 clusters of 1-14 rows, intraclass correlation 0.5, mean 0."""
    sizes = rng.integers(1, 15, g)
    labels = np.repeat(np.arange(g), sizes)
    return rng.normal(0, math.sqrt(0.5), g)[labels] + rng.normal(0, math.sqrt(0.5), len(labels)), labels


def test_cluster_bootstrap_methods_against_theory():
    rng = np.random.default_rng(8)
    v, labels = _few_clusters(rng)
    g = 12
    res = {m: cluster_bootstrap(v, labels, method=m, n_resamples=999, rng=3)
           for m in ("hull", "studentized", "expanded", "percentile", "BCa")}
    assert len({r.statistic for r in res.values()}) == 1 and all(r.n == g for r in res.values())
    # the same resamples as the percentile interval, the tails widened by Hesterberg's factor
    draws = np.random.default_rng(3).integers(0, g, (999, g))
    sums, sizes = np.bincount(labels, weights=v), np.bincount(labels)
    theta = np.array([sums[d].sum() / sizes[d].sum() for d in draws])
    tail = sps.norm.cdf(math.sqrt(g / (g - 1)) * sps.t.ppf(0.025, g - 1))
    assert 0.005 < tail < 0.025
    np.testing.assert_allclose([res["expanded"].confidence_interval.low, res["expanded"].confidence_interval.high],
                               np.quantile(theta, [tail, 1 - tail]), rtol=1e-12)
    np.testing.assert_allclose([res["percentile"].confidence_interval.low, res["percentile"].confidence_interval.high],
                               np.quantile(theta, [0.025, 0.975]), rtol=1e-12)
    # bootstrap-t: each resampled ratio standardised by its linearisation standard error
    est = sums.sum() / sizes.sum()
    se = lambda d, t: math.sqrt(np.sum((sums[d] - t * sizes[d]) ** 2)) / sizes[d].sum()
    t = np.array([(th - est) / se(d, th) for d, th in zip(draws, theta)])
    se0 = se(np.arange(g), est)
    hi_q, lo_q = np.quantile(t, [0.975, 0.025])
    np.testing.assert_allclose([res["studentized"].confidence_interval.low, res["studentized"].confidence_interval.high],
                               [est - hi_q * se0, est - lo_q * se0], rtol=1e-9)
    hull = res["hull"].confidence_interval
    assert hull.low == min(res["expanded"].confidence_interval.low, res["studentized"].confidence_interval.low)
    assert hull.high == max(res["expanded"].confidence_interval.high, res["studentized"].confidence_interval.high)
    assert "hull" in res["hull"].method and "expanded" in res["expanded"].method
    bca = res["BCa"].confidence_interval
    assert bca.low < res["BCa"].statistic < bca.high
    # another statistic has no standard error: the hull is the expanded percentile interval
    custom = cluster_bootstrap(v, labels, lambda x: float(np.mean(x)), n_resamples=999, rng=3)
    assert (custom.confidence_interval.low, custom.confidence_interval.high) == pytest.approx(
        (res["expanded"].confidence_interval.low, res["expanded"].confidence_interval.high), rel=1e-12)
    assert "expanded" in custom.method
    with pytest.raises(ValueError, match="method='studentized' needs"):
        cluster_bootstrap(v, labels, lambda x: float(np.mean(x)), method="studentized")
    with pytest.raises(ValueError, match="method="):
        cluster_bootstrap(v, labels, method="wild")


def test_cluster_bootstrap_few_clusters_coverage():
    # 12 clusters of 1-14 rows: the percentile interval undercovers (0.894 in 3,000 simulations),
    # the hull holds (0.950); 600 replications here, SE about 0.009
    rng = np.random.default_rng(12)
    hits = {"hull": 0, "percentile": 0}
    for _ in range(600):
        v, labels = _few_clusters(rng)
        seed = int(rng.integers(2 ** 31))
        for m in hits:
            ci = cluster_bootstrap(v, labels, method=m, n_resamples=499, rng=seed).confidence_interval
            hits[m] += ci.low <= 0 <= ci.high
    assert 0.93 <= hits["hull"] / 600 <= 0.97
    assert hits["percentile"] / 600 <= 0.92


# ---------------------------------------------------------------- paired_permutation_test
def test_paired_permutation_test_iv():
    x, y = _paired()
    with pytest.raises(ValueError, match="alternative"):
        paired_permutation_test(x, y, alternative="bigger")
    with pytest.raises(ValueError, match="n_resamples"):
        paired_permutation_test(x, y, n_resamples=-5)
    with pytest.raises(ValueError, match="x and y must be 1-D"):
        paired_permutation_test(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="statistic"):
        paired_permutation_test(x, y, statistic="mean")


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_paired_permutation_test_against_scipy(alternative):
    x, y = _paired(6, 25)
    res = paired_permutation_test(x, y, alternative=alternative, n_resamples=2000, rng=9)
    ref = sps.permutation_test((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), permutation_type="samples",
                               alternative=alternative, n_resamples=2000, rng=np.random.default_rng(9))
    assert res.pvalue == ref.pvalue
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    t = sps.ttest_1samp(x - y, 0.0).confidence_interval(0.95)
    np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high], [t.low, t.high])
    assert res.n == 25 and alternative in res.method


def test_paired_permutation_test_never_zero():
    x = np.arange(40.0)
    res = paired_permutation_test(x + 10, x, n_resamples=999, rng=0)   # every difference is +10
    # no sign flip reaches the statistic: the exact tail, not the Monte-Carlo floor 2 / (999 + 1); only
    # the all-positive signs (and their mirror) reach it, p = 2 / 2**40
    assert res.pvalue == pytest.approx(2 / 2 ** 40) and "saddlepoint" in res.method and not res.at_floor
    greater = paired_permutation_test(x + 10, x, alternative="greater", n_resamples=999)
    assert greater.pvalue == pytest.approx(1 / 2 ** 40)
    # small n: exact null distribution over all 2**n sign flips, smallest p is 2 / 2**n
    exact = paired_permutation_test([1.0, 2, 3, 4, 5], [0.0, 0, 0, 0, 0])
    assert exact.pvalue == pytest.approx(2 / 32) and "saddlepoint" not in exact.method
    med = paired_permutation_test(x + 10, x, np.median, n_resamples=999, rng=0)
    assert med.pvalue > 0 and med.statistic == 10.0
    assert med.confidence_interval == ConfidenceInterval(10.0, 10.0)


def test_paired_permutation_test_custom_statistic_at_its_floor():
    # a custom statistic has no saddlepoint tail: at the floor its p-value is a bound, carried as pvalue_floor
    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    x = y + 3 + rng.normal(0, 0.1, 60)
    res = paired_permutation_test(x, y, np.median, n_resamples=199, rng=0)
    assert res.pvalue == pytest.approx(2 / 200) and res.pvalue_floor == pytest.approx(2 / 200) and res.at_floor
    assert res.asdict()["pvalue_floor"] == res.pvalue_floor
    # away from the floor there is no bound
    far = paired_permutation_test(y + rng.normal(0, 1, 60), y, np.median, n_resamples=199, rng=0)
    assert not far.at_floor and "pvalue_floor" not in far.asdict() and "pvalue_floor" not in far.row()


def test_sign_flip_sf_against_exact_enumeration():
    import itertools

    from dint.stats.permutation import sign_flip_sf
    rng = np.random.default_rng(0)
    d = rng.lognormal(0, 1, 16) * rng.choice([-1, 1], 16) + 0.8          # skewed differences
    total = np.array(list(itertools.product([-1, 1], repeat=16))) @ np.abs(d)
    for q in (0.9, 0.99, 0.999, 0.9999):
        x = float(np.quantile(total, q))
        exact = np.mean(total >= x - 1e-12)
        # within 25% at n = 16 (a lattice, no continuity correction), where the normal tail is off up to 12x
        assert sign_flip_sf(d, x) == pytest.approx(exact, rel=0.25)
        assert abs(sign_flip_sf(d, x) / exact - 1) < abs(sps.norm.sf(x / np.sqrt(np.sum(d ** 2))) / exact - 1)
    assert sign_flip_sf(d, np.abs(d).sum()) == 2.0 ** -16
    with pytest.raises(ValueError, match="x="):
        sign_flip_sf(d, 0.0)


def test_paired_permutation_test_tail_against_exact():
    # n = 18, 2**18 flips enumerated exactly (n_resamples above 2**18) vs Monte Carlo with a saddlepoint tail
    rng = np.random.default_rng(4)
    y = rng.normal(size=18)
    x = y + rng.lognormal(0, 1, 18) - 0.2
    exact = paired_permutation_test(x, y, n_resamples=2 ** 18)
    mc = paired_permutation_test(x, y, n_resamples=999, rng=0)
    # within 30% at n = 18 (14 lattice atoms in the tail; the error shrinks as O(1 / n))
    assert exact.pvalue < 1e-3 and mc.pvalue == pytest.approx(exact.pvalue, rel=0.3)
    assert "saddlepoint" in mc.method and mc.pvalue < 2 / 1000


def test_paired_permutation_test_against_theory():
    # Under H0 (symmetric differences) the test is level 0.05; 300 replications: SE about 0.013.
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(300):
        x = rng.normal(size=20)
        y = x + rng.standard_t(3, 20)
        rejections += paired_permutation_test(x, y, n_resamples=999, rng=rng).pvalue <= 0.05
    assert 0.02 <= rejections / 300 <= 0.09
    # and agrees with the paired t-test on normal data
    x, y = _paired(8, 50, 0.4)
    res = paired_permutation_test(x, y, n_resamples=9999, rng=2)
    assert res.pvalue == pytest.approx(sps.ttest_rel(x, y).pvalue, rel=0.25)



def test_paired_permutation_test_identical_samples():
    x = np.random.default_rng(3).normal(size=30)
    for n_resamples in (999, 2 ** 31):        # Monte Carlo and exact (2**30 <= n_resamples) null distributions
        res = paired_permutation_test(x[:10] if n_resamples > 999 else x, x[:10] if n_resamples > 999 else x,
                                      n_resamples=n_resamples, rng=0)
        assert res.statistic == 0.0 and res.confidence_interval == ConfidenceInterval(0.0, 0.0)
        assert math.isnan(res.pvalue) and "point mass" in res.reason
    med = paired_permutation_test(x, x, np.median, n_resamples=199, rng=0)
    assert med.statistic == 0.0 and math.isnan(med.pvalue) and med.reason
    assert paired_permutation_test(x + 1e-3, x, n_resamples=199).reason == ""


# ---------------------------------------------------------------- mcnemar
def _table(a, b, c, d):
    """before/after outcomes: a both correct, b correct -> wrong, c wrong -> correct, d both wrong."""
    before = np.array([1] * a + [1] * b + [0] * c + [0] * d)
    after = np.array([1] * a + [0] * b + [1] * c + [0] * d)
    return before, after


def test_mcnemar_iv():
    before, after = _table(3, 2, 9, 4)
    with pytest.raises(ValueError, match="method"):
        mcnemar(before, after, method="chi2")
    with pytest.raises(ValueError, match="confidence_level"):
        mcnemar(before, after, confidence_level=95)
    with pytest.raises(ValueError, match="before and after must be non-empty 1-D arrays of the same length"):
        mcnemar(before, after[:-1])
    with pytest.raises(ValueError, match="after must contain only 0/1"):
        mcnemar(before, after * 2)


@pytest.mark.parametrize("table", [(3, 2, 9, 4), (20, 5, 6, 30), (0, 0, 4, 0), (10, 13, 3, 1)])
def test_mcnemar_against_statsmodels(table):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
    a, b, c, d = table
    before, after = _table(*table)
    exact = mcnemar(before, after)
    assert isinstance(exact, McNemarResult) and isinstance(exact, Result)
    assert exact.pvalue == sm_mcnemar([[a, b], [c, d]], exact=True).pvalue
    asym = mcnemar(before, after, method="asymptotic")
    assert asym.pvalue == pytest.approx(sm_mcnemar([[a, b], [c, d]], exact=False, correction=False).pvalue)
    midp = mcnemar(before, after, method="mid-p")
    assert midp.pvalue <= exact.pvalue
    assert (exact.b, exact.c, exact.n) == (b, c, a + b + c + d)
    assert exact.statistic == pytest.approx(after.mean() - before.mean())
    assert exact.confidence_interval == midp.confidence_interval == asym.confidence_interval
    assert -1 <= exact.confidence_interval.low <= exact.statistic <= exact.confidence_interval.high <= 1
    assert f"b={b}, c={c}" in exact.method
    assert exact.asdict()["b"] == b


def test_mcnemar_against_theory():
    # b=2, c=9: X ~ Bin(11, 1/2); exact = 2 P(X <= 2) = 134/2048; mid-p = exact - P(X = 2) = 79/2048
    before, after = _table(5, 2, 9, 5)
    exact, midp = mcnemar(before, after).pvalue, mcnemar(before, after, method="mid-p").pvalue
    assert exact == pytest.approx(2 * sps.binom.cdf(2, 11, 0.5), rel=1e-12)
    assert exact == pytest.approx(134 / 2048, rel=1e-12)
    assert midp == pytest.approx(2 * sps.binom.cdf(2, 11, 0.5) - sps.binom.pmf(2, 11, 0.5), rel=1e-12)
    assert midp == pytest.approx(79 / 2048, rel=1e-12)
    # Fagerland et al. (2013) example (b=1, c=7): exact 0.0703, mid-p 0.0391, asymptotic 0.0339
    before, after = _table(1, 1, 7, 12)
    assert mcnemar(before, after).pvalue == pytest.approx(18 / 256, rel=1e-12)
    assert mcnemar(before, after, method="mid-p").pvalue == pytest.approx(10 / 256, rel=1e-12)
    assert mcnemar(before, after, method="asymptotic").pvalue == pytest.approx(sps.chi2.sf(36 / 8, 1), rel=1e-12)
    same = _table(6, 0, 0, 4)   # no discordant pairs: see test_mcnemar_no_discordant_pairs
    for method in ("exact", "mid-p", "asymptotic"):
        assert math.isnan(mcnemar(*same, method=method).pvalue)
    assert mcnemar(*_table(3, 4, 4, 3), method="mid-p").pvalue == pytest.approx(1.0)



def test_mcnemar_no_discordant_pairs():
    before, after = _table(6, 0, 0, 4)
    for method in ("exact", "mid-p", "asymptotic"):
        r = mcnemar(before, after, method=method)
        assert r.statistic == 0.0 and (r.b, r.c) == (0, 0) and r.n == 10
        assert math.isnan(r.pvalue) and "no discordant pairs" in r.reason
        # the difference is still estimated, with a Newcombe interval of positive width
        assert r.confidence_interval.low < 0 < r.confidence_interval.high
        assert (r.confidence_interval.low, r.confidence_interval.high) == pytest.approx(
            _newcombe_paired_reference(6, 0, 0, 4), abs=1e-12)
    assert mcnemar(*_table(6, 1, 0, 4)).reason == ""


def _newcombe_paired_reference(a, b, c, d):
    # Newcombe (1998) method 10 as set out by Fagerland, Lydersen & Laake (2017, ch. 8), after - before
    n = a + b + c + d
    p1, p2 = (a + c) / n, (a + b) / n
    (l1, u1), (l2, u2) = (proportion_confint(a + c, n, method="wilson"), proportion_confint(a + b, n, method="wilson"))
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    A = a * d - b * c
    psi = 0.0 if margins == 0 else ((A - n / 2) if A > n / 2 else (0.0 if A >= 0 else A)) / math.sqrt(margins)
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    high = p1 - p2 + math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    return low, high


@pytest.mark.parametrize("table", [(1, 7, 1, 12), (59, 16, 6, 80), (20, 5, 6, 30), (3, 2, 9, 4), (12, 0, 4, 9)])
def test_mcnemar_interval_against_theory(table):
    ci = mcnemar(*_table(*table)).confidence_interval
    np.testing.assert_allclose([ci.low, ci.high], _newcombe_paired_reference(*table), rtol=1e-9, atol=1e-12)


def test_mcnemar_interval_uncorrelated_is_independent_newcombe():
    # With no correlation (ad - bc = 0) the paired interval is the independent Newcombe interval.
    from statsmodels.stats.proportion import confint_proportions_2indep
    a, b, c, d = 4, 8, 6, 12
    assert a * d == b * c
    n = a + b + c + d
    ci = mcnemar(*_table(a, b, c, d)).confidence_interval
    low, high = confint_proportions_2indep(a + c, n, a + b, n, method="newcomb")
    np.testing.assert_allclose([ci.low, ci.high], [low, high], rtol=1e-10)


def test_mcnemar_interval_coverage():
    # Newcombe's interval covers p_after - p_before at about its nominal level (n = 80, 200 reps).
    rng = np.random.default_rng(3)
    probs = np.array([0.5, 0.1, 0.2, 0.2])     # a, b, c, d cells: true difference c - b = 0.1
    hits = 0
    for _ in range(200):
        ci = mcnemar(*_table(*rng.multinomial(80, probs))).confidence_interval
        hits += ci.low <= 0.1 <= ci.high
    assert 0.90 <= hits / 200 <= 0.99


# ---------------------------------------------------------------- diff_proportions
def test_diff_proportions_iv():
    with pytest.raises(ValueError, match="confidence_level"):
        diff_proportions(1, 10, 2, 10, confidence_level=2)
    with pytest.raises(ValueError, match="n1=0"):
        diff_proportions(0, 0, 2, 10)
    with pytest.raises(ValueError, match="k2=11"):
        diff_proportions(1, 10, 11, 10)
    with pytest.raises(ValueError, match="k1=-1"):
        diff_proportions(-1, 10, 1, 10)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("k1, n1, k2, n2", [(30, 50, 20, 60), (0, 10, 3, 12), (7, 7, 1, 9), (56, 70, 48, 80)])
@pytest.mark.parametrize("level", [0.95, 0.9])
def test_diff_proportions_against_statsmodels(k1, n1, k2, n2, level):
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        proportions_ztest,
    )
    res = diff_proportions(k1, n1, k2, n2, confidence_level=level)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=1 - level)
    assert res.confidence_interval == ConfidenceInterval(float(low), float(high))
    assert res.pvalue == pytest.approx(proportions_ztest([k1, k2], [n1, n2])[1], rel=1e-10)
    assert res.statistic == pytest.approx(k1 / n1 - k2 / n2) and res.n == n1 + n2


def test_diff_proportions_against_theory():
    # Newcombe (1998) method 10: D -+ sqrt of the squared Wilson half-widths on each side
    k1, n1, k2, n2 = 56, 70, 48, 80
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = proportion_confint(k1, n1, method="wilson"), proportion_confint(k2, n2, method="wilson")
    res = diff_proportions(k1, n1, k2, n2)
    np.testing.assert_allclose([res.confidence_interval.low, res.confidence_interval.high],
                               [p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2)],
                               rtol=1e-10)
    pooled = (k1 + k2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert res.pvalue == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-10)
    assert diff_proportions(0, 5, 0, 7).pvalue == 1.0
    assert diff_proportions(5, 5, 7, 7).pvalue == 1.0


# ---------------------------------------------------------------- adjust
def test_adjust_iv():
    with pytest.raises(ValueError, match="method"):
        adjust([0.1, 0.2], method="bonferroni")
    with pytest.raises(ValueError, match="pvalues must lie in"):
        adjust([0.1, 1.2])
    with pytest.raises(ValueError, match="pvalues must lie in"):
        adjust([0.1, np.nan])
    with pytest.raises(ValueError, match="pvalues must be a 1-D"):
        adjust([[0.1, 0.2]])


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjust_against_statsmodels(method):
    from statsmodels.stats.multitest import multipletests
    p = np.random.default_rng(0).uniform(0, 0.2, 12)
    out = adjust(p, method=method)
    np.testing.assert_array_equal(out, multipletests(p, method=method)[1])
    assert isinstance(out, np.ndarray) and out.shape == p.shape
    assert adjust([], method=method).shape == (0,)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjust_nan_policy_against_statsmodels(method):
    from statsmodels.stats.multitest import multipletests
    p = np.random.default_rng(1).uniform(0, 0.1, 10)
    p[[2, 5, 6]] = np.nan
    out = adjust(p, method=method, nan_policy="omit")
    ok = ~np.isnan(p)
    np.testing.assert_array_equal(np.isnan(out), ~ok)
    np.testing.assert_array_equal(out[ok], multipletests(p[ok], method=method)[1])   # a family of 7, not 10
    np.testing.assert_array_equal(adjust(p[ok], method=method, nan_policy="omit"), out[ok])
    assert np.isnan(adjust([np.nan, np.nan], nan_policy="omit")).all()
    assert adjust([], nan_policy="omit").shape == (0,)


def test_adjust_nan_policy_iv():
    with pytest.raises(ValueError, match="nan_policy='omit'"):
        adjust([0.1, np.nan])                                # the default raises, naming the fix
    with pytest.raises(ValueError, match="nan_policy"):
        adjust([0.1, 0.2], nan_policy="propagate")
    with pytest.raises(ValueError, match="pvalues must lie in"):
        adjust([0.1, np.nan, 1.5], nan_policy="omit")       # out of range still raises
    with pytest.raises(ValueError, match="pvalues must lie in"):
        adjust([0.1, np.inf], nan_policy="omit")


def test_adjust_against_theory():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # Holm: sorted p_(i) * (k - i + 1), running max: 0.04, 0.09, 0.09, 0.5
    np.testing.assert_allclose(adjust(p), [0.04, 0.09, 0.09, 0.5])
    # BH: p_(i) * k / i, running min from the top: 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(adjust(p, method="fdr_bh"), [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_bootstrap_mean_studentized_against_theory():
    """Bootstrap-t: the t-quantiles of resampled means, standardised by their own SE, inverted."""
    x = np.random.default_rng(3).lognormal(0, 1, 30)
    res = bootstrap_mean(x, method="studentized", rng=9, n_resamples=4000)
    rng = np.random.default_rng(9)
    s = x[rng.integers(0, 30, (4000, 30))]
    t = (s.mean(1) - x.mean()) / (s.std(1, ddof=1) / np.sqrt(30))
    se = x.std(ddof=1) / np.sqrt(30)
    assert res.confidence_interval.low == pytest.approx(x.mean() - np.quantile(t, 0.975) * se, rel=1e-12)
    assert res.confidence_interval.high == pytest.approx(x.mean() - np.quantile(t, 0.025) * se, rel=1e-12)
    assert "studentized" in res.method
    # skewed data: the interval is asymmetric, longer on the right
    assert res.confidence_interval.high - x.mean() > x.mean() - res.confidence_interval.low


def test_paired_bootstrap_is_bootstrap_mean_of_differences():
    rng = np.random.default_rng(4)
    x, y = rng.lognormal(size=25), rng.lognormal(size=25)
    assert paired_bootstrap(x, y, rng=2).confidence_interval == bootstrap_mean(x - y, rng=2).confidence_interval
    for method in ("studentized", "t"):
        assert (paired_bootstrap(x, y, method=method, rng=2).confidence_interval
                == bootstrap_mean(x - y, method=method, rng=2).confidence_interval)


def test_result_row_and_from_row_round_trip():
    r = Result(0.25, ConfidenceInterval(0.1, 0.4), 30, "mean, t interval", 0.03, "")
    row = r.row(model="sft", measure="accuracy")
    assert list(row) == ["model", "measure", "estimate", "ci_low", "ci_high", "pvalue", "n", "method", "reason"]
    assert Result.from_row(row) == r
    table = pd.DataFrame([row, Result(float("nan"), ConfidenceInterval(float("nan"), float("nan")), 0, "kappa",
                                      reason="one class").row(model="dpo", measure="kappa")])
    assert Result.from_row(table.iloc[0]) == r                       # a pandas row
    back = [Result.from_row(t) for t in table.itertuples()]           # an itertuples tuple
    assert back[0] == r and back[1].reason == "one class" and np.isnan(back[1].statistic)
    assert Result.from_row(row, pvalue=0.09).pvalue == 0.09           # e.g. a Holm-adjusted p-value
    no_test = Result.from_row({"estimate": 1.0, "ci_low": 0.5, "ci_high": 2.0, "n": 5, "method": "m"})
    assert np.isnan(no_test.pvalue) and no_test.reason == ""


def test_result_from_row_iv():
    with pytest.raises(ValueError, match=r"row lacks \['ci_low', 'ci_high'\]"):
        Result.from_row({"estimate": 1.0, "n": 3, "method": "m"})
    with pytest.raises(ValueError, match="changes"):
        Result.from_row({"estimate": 1.0, "ci_low": 0.0, "ci_high": 2.0, "n": 3, "method": "m"}, low=1)


def test_results_names_each_row_of_a_tidy_table():
    table = pd.DataFrame([Result(0.1, ConfidenceInterval(0.0, 0.2), 10, "McNemar exact", 0.02).row(model="sft", split="train"),
                          Result(-0.3, ConfidenceInterval(-0.5, -0.1), 12, "McNemar exact", 0.04).row(model="dpo", split="train")])
    table["pvalue_holm"] = [0.04, 0.04]
    named = stats.results(table, "{model}_{split}_d_accuracy", pvalue="pvalue_holm", method="McNemar exact, Holm")
    assert list(named) == ["sft_train_d_accuracy", "dpo_train_d_accuracy"]
    r = named["dpo_train_d_accuracy"]
    assert (r.statistic, r.confidence_interval.low, r.confidence_interval.high, r.n) == (-0.3, -0.5, -0.1, 12)
    assert (r.pvalue, r.method) == (0.04, "McNemar exact, Holm")
    assert stats.results(table, "{model}")["sft"].pvalue == 0.02


def test_results_iv():
    table = pd.DataFrame([Result(0.1, ConfidenceInterval(0.0, 0.2), 10, "m").row(model="sft", split=s) for s in ("a", "b")])
    with pytest.raises(ValueError, match=r"no column \['measure'\]"):
        stats.results(table, "{measure}")
    with pytest.raises(ValueError, match="names two rows 'sft'"):
        stats.results(table, "{model}")
    with pytest.raises(ValueError, match="pvalue='pvalue_holm'"):
        stats.results(table, "{model}_{split}", pvalue="pvalue_holm")


def test_ratio_of_means_against_scipy_and_theory():
    rng = np.random.default_rng(0)
    x, y = rng.gamma(2.0, 1.0, 400), rng.gamma(2.0, 2.0, 300)
    r = stats.ratio_of_means(x, y, n_resamples=2000, rng=3)
    assert r.statistic == pytest.approx(x.mean() / y.mean()) and r.n == 400 and math.isnan(r.pvalue)
    # the delta method's interval: the same width to within a tenth
    se = r.statistic * math.sqrt(x.var(ddof=1) / len(x) / x.mean() ** 2 + y.var(ddof=1) / len(y) / y.mean() ** 2)
    width = r.confidence_interval.high - r.confidence_interval.low
    assert width == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert r == stats.ratio_of_means(x, y, n_resamples=2000, rng=3)   # seeded


def test_ratio_of_means_iv():
    with pytest.raises(ValueError, match="positive denominator"):
        stats.ratio_of_means([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        stats.ratio_of_means([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="n_resamples"):
        stats.ratio_of_means([1.0, 2.0], [1.0, 2.0], n_resamples=0)


def test_share_test_against_statsmodels_and_cluster_means():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 5, 60)
    clusters = np.repeat(np.arange(60), sizes)
    y = rng.random(len(clusters)) < np.repeat(rng.beta(2, 5, 60), sizes)
    r = stats.share_test(y, clusters, value=0.5)
    assert r.statistic == pytest.approx(y.mean()) and r.n == len(y)
    # CR1 by hand: V = g/(g-1) (n-1)/(n-k) sum_c (sum_i e_i)^2 / n^2
    e = y - y.mean()
    sums = np.bincount(clusters, weights=e)
    g, n = 60, len(y)
    se = math.sqrt(g / (g - 1) * (n - 1) / (n - 1) * np.sum(sums ** 2) / n ** 2)
    z = (y.mean() - 0.5) / se
    assert r.pvalue == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-6)
    assert r.confidence_interval.low == pytest.approx(y.mean() - 1.959964 * se, rel=1e-5)
    same = stats.share_test(np.ones(10, bool), np.arange(10) // 2)
    assert math.isnan(same.pvalue) and "no variance" in same.reason
    with pytest.raises(ValueError, match="0/1"):
        stats.share_test([0, 2], [0, 1])
