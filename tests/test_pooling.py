"""Pooling run estimates over world and training seeds (`dint.stats.pooling`)."""
import math

import numpy as np
import pytest

from dint import stats
from dint.stats.pooling import Pooled, agreement, mixedlm_components, pool, prediction_interval

# 3 worlds x 2 training runs; world means 2, 5, 9
Y = np.array([1.0, 3.0, 4.0, 6.0, 8.0, 10.0])
W = np.array(["a", "a", "b", "b", "c", "c"])


def _two_level(rng, w, t, var_world, var_train, mu=0.0):
    worlds = np.repeat(np.arange(w), t)
    return mu + rng.normal(0, math.sqrt(var_world), w)[worlds] + rng.normal(0, math.sqrt(var_train), w * t), worlds


def test_balanced_by_hand():
    res = pool(Y, W)
    assert isinstance(res, Pooled) and res.n == res.n_runs == 6 and res.n_worlds == 3 and res.reason == ""
    assert res.statistic == pytest.approx(16 / 3)
    # sd of the world means: sum of squared deviations 74/3 over 2 df
    se = math.sqrt(37 / 3) / math.sqrt(3)
    assert res.standard_error == pytest.approx(se)
    # t with 2 df has the closed form F(t) = 1/2 + t / (2 sqrt(t^2 + 2)): t_{2, .975} = sqrt(2) .95 / sqrt(1 - .95^2)
    q = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2)
    assert res.confidence_interval.low == pytest.approx(16 / 3 - q * se)
    assert res.confidence_interval.high == pytest.approx(16 / 3 + q * se)
    t = (16 / 3) / se
    assert res.pvalue == pytest.approx(1 - t / math.sqrt(t ** 2 + 2))              # two-sided
    assert pool(Y, W, alternative="greater").pvalue == pytest.approx((1 - t / math.sqrt(t ** 2 + 2)) / 2)
    assert pool(Y, W, null=16 / 3).pvalue == pytest.approx(1.0)
    # MS_within = 6 / 3 = 2, MS_between = 2 * 37/3: var_world = (74/3 - 2) / 2
    assert res.var_train == pytest.approx(2.0)
    assert res.var_world == pytest.approx((74 / 3 - 2) / 2) and not res.var_world_truncated
    assert res.method == "mean of 3 world means, t(2) interval; ANOVA variance components"
    row = res.asdict()
    assert list(row)[:7] == ["estimate", "ci_low", "ci_high", "pvalue", "n", "method", "reason"]
    assert {"var_world", "var_train", "n_worlds", "n_runs", "var_world_truncated"} <= set(row)


def test_reexported_lazily():
    assert stats.pool is pool and stats.Pooled is Pooled and stats.agreement is agreement
    assert {"pool", "Pooled", "mixedlm_components", "prediction_interval", "agreement"} <= set(stats.__all__)


def test_level_narrows_the_interval():
    wide, narrow = pool(Y, W, level=0.99), pool(Y, W, level=0.8)
    assert wide.confidence_interval.low < narrow.confidence_interval.low < narrow.statistic
    assert wide.pvalue == narrow.pvalue


def test_anova_equals_mixedlm_reml_on_a_balanced_design():
    y, w = _two_level(np.random.default_rng(3), 8, 3, var_world=2.0, var_train=0.5, mu=1.0)
    res = pool(y, w)
    assert not res.var_world_truncated and res.var_world > res.var_train
    intercept, var_world, var_train = mixedlm_components(y, w)
    assert intercept == pytest.approx(res.statistic, rel=1e-6)
    assert var_world == pytest.approx(res.var_world, rel=1e-4)
    assert var_train == pytest.approx(res.var_train, rel=1e-4)


def test_truncation_at_zero():
    y = np.array([0.0, 4.0, 1.0, 3.0, 2.0, 2.5])     # world means 2, 2, 2.25; large spread within worlds
    res = pool(y, W)
    assert res.var_world == 0.0 and res.var_world_truncated
    assert res.var_train == pytest.approx((8 + 2 + 0.125) / 3)
    # REML puts var_world on the boundary; its var_train is then the variance of all runs
    _, var_world, var_train = mixedlm_components(y, W)
    assert var_world == pytest.approx(0.0, abs=1e-6) and var_train == pytest.approx(y.var(ddof=1), rel=1e-4)


def test_equal_world_means_collapse_the_interval():
    res = pool([0.0, 2.0, 1.0, 1.0, 1.5, 0.5], W)
    assert res.statistic == pytest.approx(1.0)
    assert res.confidence_interval.low == res.confidence_interval.high == res.statistic
    assert math.isnan(res.pvalue) and "equal" in res.reason and res.var_world_truncated


def test_one_world():
    res = pool([1.0, 2.0, 4.0], ["w0"] * 3)
    assert res.statistic == pytest.approx(7 / 3) and res.n_worlds == 1
    assert math.isnan(res.var_world) and res.var_train == pytest.approx(np.var([1, 2, 4], ddof=1))
    q = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2)
    se = math.sqrt(np.var([1, 2, 4], ddof=1) / 3)
    assert res.confidence_interval.high == pytest.approx(7 / 3 + q * se)
    assert np.isfinite(res.pvalue)
    assert "one world" in res.reason and "training runs only" in res.method
    assert math.isnan(prediction_interval(res).low)


def test_one_run():
    res = pool([0.3], [7])
    assert res.statistic == 0.3 and res.n == 1
    assert math.isnan(res.confidence_interval.low) and math.isnan(res.pvalue) and "one run" in res.reason
    assert math.isnan(res.var_world) and math.isnan(res.var_train)


def test_nan_estimates_dropped():
    y = np.r_[Y, np.nan]
    res = pool(y, np.append(W, "d"))
    full = pool(Y, W)
    assert res.statistic == full.statistic and res.n == 6 and res.n_worlds == 3
    assert res.confidence_interval == full.confidence_interval and "1 of 7 estimates NaN" in res.reason
    empty = pool([np.nan, np.nan], [0, 1])
    assert math.isnan(empty.statistic) and empty.n == 0 and "no run" in empty.reason


def test_unbalanced_design_uses_the_mean_of_world_means():
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 22.0])
    w = np.array([0, 0, 0, 1, 2, 2])
    res = pool(y, w)
    means = np.array([2.0, 10.0, 21.0])
    assert res.statistic == pytest.approx(means.mean()) and res.statistic != pytest.approx(y.mean())
    assert "unbalanced: 1-3 runs per world" in res.method
    assert res.standard_error == pytest.approx(means.std(ddof=1) / math.sqrt(3))
    # ANOVA with n0 = (6 - (9 + 1 + 4) / 6) / 2
    n0 = (6 - 14 / 6) / 2
    msw = (2 + 2) / 3
    msb = (3 * (2 - y.mean()) ** 2 + (10 - y.mean()) ** 2 + 2 * (21 - y.mean()) ** 2) / 2
    assert res.var_train == pytest.approx(msw) and res.var_world == pytest.approx((msb - msw) / n0)


def test_one_run_per_world():
    res = pool([0.1, 0.4, 0.2], [0, 1, 2])   # the smoke profile's design: T = 1
    assert math.isnan(res.var_world) and math.isnan(res.var_train) and "cannot be separated" in res.reason
    assert np.isfinite(res.confidence_interval.low)
    pi = prediction_interval(res)
    s = np.std([0.1, 0.4, 0.2], ddof=1)
    q = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2)
    assert pi.high - res.statistic == pytest.approx(q * s * math.sqrt(1 + 1 / 3))


def test_prediction_interval_balanced_formula():
    res = pool(Y, W)
    msb, msw = 74 / 3, 2.0
    q = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2)
    half = q * math.sqrt((4 * msb + 3 * msw) / 6)   # [(W + 1) MS_b + W (T - 1) MS_w] / (W T)
    pi = prediction_interval(res)
    assert pi.low == pytest.approx(16 / 3 - half) and pi.high == pytest.approx(16 / 3 + half)
    assert pi.low < res.confidence_interval.low


def test_coverage_and_type_one_error_by_simulation():
    rng = np.random.default_rng(20240607)
    covered = rejected = predicted = 0
    reps = 400
    for _ in range(reps):
        y, w = _two_level(rng, 5, 2, var_world=1.0, var_train=0.5, mu=0.3)
        res = pool(y, w, null=0.3)
        covered += res.confidence_interval.low <= 0.3 <= res.confidence_interval.high
        rejected += res.pvalue < 0.05
        new = 0.3 + rng.normal(0, 1.0) + rng.normal(0, math.sqrt(0.5))
        pi = prediction_interval(res)
        predicted += pi.low <= new <= pi.high
    # Monte-Carlo s.e. of a 0.95 coverage over 400 replications is 0.011
    assert abs(covered / reps - 0.95) < 0.035
    assert abs(rejected / reps - 0.05) < 0.035
    assert predicted / reps > 0.92      # t_{W-1}: conservative


def test_agreement_by_hand():
    e = [0.0, 1.0, 5.0]
    lo = [-1.0, 0.5, 4.0]
    hi = [1.5, 2.0, 6.0]
    # run 0's interval holds run 1; run 1's holds none; run 2's holds none -> 1 of 6 ordered pairs
    assert agreement(e, lo, hi) == (pytest.approx(1 / 6), 6)
    share, n = agreement([0.0, 1.0, np.nan], [-2.0, 0.5, 0.0], [2.0, 1.5, np.nan])
    # pairs without a NaN: (0, 1) inside, (1, 0) outside
    assert (share, n) == (0.5, 2)
    assert math.isnan(agreement([1.0], [0.0], [2.0])[0])


@pytest.mark.parametrize("call, param", [
    (lambda: pool(Y, W[:5]), "worlds"),
    (lambda: pool([], []), "estimates"),
    (lambda: pool(np.ones((2, 3)), np.ones((2, 3))), "estimates"),
    (lambda: pool(Y, W, level=1.0), "level"),
    (lambda: pool(Y, W, level=0), "level"),
    (lambda: pool(Y, W, alternative="two_sided"), "alternative"),
    (lambda: pool(Y, W, null=np.nan), "null"),
    (lambda: pool([1.0, np.inf], [0, 1]), "estimates"),
    (lambda: pool([1.0, 2.0], [0.0, np.nan]), "worlds"),
    (lambda: prediction_interval(pool(Y, W), level=1.5), "level"),
    (lambda: prediction_interval(stats.Result(0.0, stats.ConfidenceInterval(0, 0), 1, "x")), "pooled"),
    (lambda: mixedlm_components([1.0, 2.0], [0, 1]), "estimates"),
    (lambda: agreement([1.0, 2.0], [0.0], [3.0, 3.0]), "lows"),
    (lambda: agreement([1.0, 2.0], [0.0, 1.0], [3.0]), "highs"),
    (lambda: agreement([1.0, 2.0], [0.0, 4.0], [3.0, 3.0]), "lows"),
])
def test_bad_inputs_name_the_parameter(call, param):
    with pytest.raises(ValueError, match=rf"^{param}"):
        call()
