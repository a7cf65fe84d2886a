"""Tests for dint.calibration: ECE, Brier, reliability data, temperature."""
import math

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from dint.calibration import apply_temperature, brier, ece, fit_temperature, reliability_diagram

SMALL_C = np.array([0.2, 0.3, 0.4, 0.6, 0.8, 0.9])
SMALL_Y = np.array([0, 1, 0, 1, 1, 1])


def _calibrated(n, seed, power=1):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 1, n)
    return c, rng.uniform(0, 1, n) < c ** power


# ---------------------------------------------------------------- ece
@pytest.mark.parametrize("kwargs, match", [
    ({"n_bins": 0}, "n_bins"), ({"binning": "quantile"}, "binning"),
    ({"confidence_level": 1.0}, "confidence_level"), ({"n_resamples": -1}, "n_resamples")])
def test_ece_iv(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ece(SMALL_C, SMALL_Y, **kwargs)


def test_ece_iv_inputs():
    with pytest.raises(ValueError, match="confidence"):
        ece([0.2, 1.5], [0, 1])
    with pytest.raises(ValueError, match="correct"):
        ece([0.2, 0.5], [0, 2])
    with pytest.raises(ValueError, match="paired"):
        ece([0.2, 0.5, 0.7], [0, 1])
    with pytest.raises(ValueError, match="at least 2"):
        ece([0.2], [1])


def test_ece_hand_example():
    # bins [0, .5): conf .3, acc 1/3; [.5, 1]: conf 23/30, acc 1 -> (1/2)(1/30) + (1/2)(7/30)
    r = ece(SMALL_C, SMALL_Y, n_bins=2, n_resamples=0)
    assert r.statistic == pytest.approx(2 / 15, abs=1e-12)
    assert r.n == 6 and math.isnan(r.confidence_interval.low)
    # debiased: (1/2)[(1/30)^2 - (1/3)(2/3)/2] + (1/2)(7/30)^2 = -1/36 < 0 -> clipped to 0
    assert ece(SMALL_C, SMALL_Y, n_bins=2, debiased=True, n_resamples=0).statistic == 0.0
    # equal-mass, 3 bins of 2: |.25-.5| + |.5-.5| + |.85-1| over 3
    r = ece(SMALL_C, SMALL_Y, n_bins=3, binning="mass", n_resamples=0)
    assert r.statistic == pytest.approx((0.25 + 0.0 + 0.15) / 3, abs=1e-12)


def test_ece_debiased_hand_example():
    c = np.array([0.1, 0.1, 0.1, 0.9, 0.9, 0.9])
    y = np.array([1, 1, 0, 1, 1, 1])
    # bin 0: acc 2/3, conf .1 -> (17/30)^2 - (2/9)/2; bin 1: (1/10)^2 - 0; weights 1/2
    want = math.sqrt(0.5 * ((17 / 30) ** 2 - 1 / 9) + 0.5 * 0.01)
    assert ece(c, y, n_bins=2, debiased=True, n_resamples=0).statistic == pytest.approx(want, abs=1e-12)


def test_ece_against_theory_calibrated():
    c, y = _calibrated(20000, 1)
    assert ece(c, y, n_resamples=50).statistic < 0.02
    assert ece(c, y, debiased=True, n_resamples=50).statistic < 0.01
    assert ece(c, y, binning="mass", debiased=True, n_resamples=20).statistic < 0.01


def test_ece_against_theory_overconfident():
    c, y = _calibrated(20000, 2, power=2)      # P(correct | c) = c^2; E|c - c^2| = 1/6
    r = ece(c, y, n_resamples=200, rng=3)
    assert r.statistic == pytest.approx(1 / 6, abs=0.02)
    assert r.confidence_interval.low <= r.statistic <= r.confidence_interval.high
    assert r.confidence_interval.low <= 1 / 6 + 0.005  # binning error shrinks ECE by ~1/(12 B^2)
    again = ece(c, y, n_resamples=200, rng=3)
    assert again.confidence_interval == r.confidence_interval
    assert ece(c, y, n_resamples=200, rng=4).confidence_interval != r.confidence_interval


def test_ece_against_theory_debiased_smaller_on_small_samples():
    plain, deb = [], []
    for seed in range(200):
        c, y = _calibrated(100, 100 + seed)
        plain.append(ece(c, y, n_bins=10, n_resamples=0).statistic)
        deb.append(ece(c, y, n_bins=10, debiased=True, n_resamples=0).statistic)
    # plain ECE of n=100 calibrated items is ~0.1 from noise alone; debiased is mostly clipped to 0
    assert np.mean(plain) > 0.08
    assert np.mean(deb) < 0.5 * np.mean(plain)



@pytest.mark.parametrize("debiased", [False, True])
def test_ece_single_bin(debiased):
    # one occupied bin, one confidence, every answer right: the ECE (1 - 0.95) is defined, but every
    # resample gives it again, and a zero-width interval would read as certainty
    r = ece(np.full(40, 0.95), np.ones(40), debiased=debiased, n_resamples=500)
    assert r.statistic == pytest.approx(0.05)
    assert math.isnan(r.confidence_interval.low) and math.isnan(r.confidence_interval.high)
    assert "point mass" in r.reason
    # one occupied bin with varied confidences and outcomes: an interval of positive width
    c = np.linspace(0.94, 0.99, 40)
    y = (np.arange(40) % 4 != 0).astype(float)
    ok = ece(c, y, debiased=debiased, n_resamples=500)
    assert ok.reason == "" and ok.confidence_interval.low < ok.confidence_interval.high
    assert ok.statistic == pytest.approx(abs(c.mean() - 0.75) if not debiased else
                                         math.sqrt(max((c.mean() - 0.75) ** 2 - 0.75 * 0.25 / 39, 0)))


def test_ece_debiased_single_item_bins():
    # equal-mass bins with fewer items than bins: every bin holds one item, so the debiased estimator
    # has no within-bin variance estimate and would be 0 by construction
    c, y = _calibrated(10, 3)
    r = ece(c, y, n_bins=15, binning="mass", debiased=True, n_resamples=100)
    assert math.isnan(r.statistic) and math.isnan(r.confidence_interval.low) and "one item" in r.reason
    plain = ece(c, y, n_bins=15, binning="mass", n_resamples=100)   # the l1 ECE is defined: mean |y - c|
    assert plain.statistic == pytest.approx(np.mean(np.abs(y - c))) and plain.reason == ""
    assert "n_resamples=0" in ece(c, y, n_resamples=0).reason


# ---------------------------------------------------------------- brier
def test_brier_iv():
    with pytest.raises(ValueError, match="prob"):
        brier([0.2, -0.1], [0, 1])
    with pytest.raises(ValueError, match="outcome"):
        brier([0.2, 0.1], [0.5, 1])
    with pytest.raises(ValueError, match="n_bins"):
        brier([0.2, 0.1], [0, 1], n_bins=2.5)


def test_brier_hand_example():
    r = brier(SMALL_C, SMALL_Y, n_bins=2)
    assert r.statistic == pytest.approx((.04 + .49 + .16 + .16 + .04 + .01) / 6, abs=1e-15)
    assert r.uncertainty == pytest.approx((4 / 6) * (2 / 6), abs=1e-15)
    assert r.reliability == pytest.approx(0.5 * (1 / 30) ** 2 + 0.5 * (7 / 30) ** 2, abs=1e-15)
    assert r.resolution == pytest.approx(0.5 * (1 / 3 - 2 / 3) ** 2 + 0.5 * (1 - 2 / 3) ** 2, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brier_against_theory_identity(seed):
    c, y = _calibrated(3000, seed, power=1.5)
    r = brier(c, y, n_bins=10)
    assert r.statistic == pytest.approx(r.reliability - r.resolution + r.uncertainty + r.within_bin,
                                        abs=1e-12)
    assert r.within_bin != 0.0


def test_brier_against_theory_constant_within_bins():
    rng = np.random.default_rng(5)
    p = rng.choice([0.05, 0.25, 0.55, 0.95], 500)       # one forecast value per bin of 10
    y = rng.uniform(size=500) < p
    r = brier(p, y, n_bins=10)
    assert r.within_bin == pytest.approx(0.0, abs=1e-15)
    assert r.statistic == pytest.approx(r.reliability - r.resolution + r.uncertainty, abs=1e-12)


def test_brier_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    c, y = _calibrated(1000, 7, power=2)
    assert brier(c, y).statistic == pytest.approx(metrics.brier_score_loss(y, c), abs=1e-14)


# ---------------------------------------------------------------- reliability_diagram
def test_reliability_diagram_iv():
    with pytest.raises(ValueError, match="binning"):
        reliability_diagram(SMALL_C, SMALL_Y, binning="x")


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_reliability_diagram_against_theory(binning):
    c, y = _calibrated(2000, 8)
    df = reliability_diagram(c, y, n_bins=10, binning=binning)
    assert list(df.columns) == ["bin_low", "bin_high", "n", "confidence", "accuracy",
                                "accuracy_low", "accuracy_high"]
    assert df["n"].sum() == 2000 and len(df) == 10
    assert (df.accuracy_low <= df.accuracy).all() and (df.accuracy <= df.accuracy_high).all()
    assert ((df.bin_low <= df.confidence) & (df.confidence <= df.bin_high)).all()
    # weighted |acc - conf| of the diagram is the ECE
    want = ece(c, y, n_bins=10, binning=binning, n_resamples=0).statistic
    assert np.sum(df.n * (df.accuracy - df.confidence).abs()) / 2000 == pytest.approx(want, abs=1e-12)


def test_reliability_diagram_hand_example():
    df = reliability_diagram(SMALL_C, SMALL_Y, n_bins=4)   # bins [.25,.5) and [.75,1] only, plus [0,.25)
    assert df.n.tolist() == [1, 2, 1, 2]
    assert df.accuracy.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert df.accuracy_low.iloc[0] == 0.0 and df.accuracy_high.iloc[-1] == 1.0


# ---------------------------------------------------------------- temperature
def _tempered(t0=2.5, n=4000, k=10, seed=11):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (n, k))
    p = softmax(z / t0, axis=1)
    labels = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return z, np.minimum(labels, k - 1)


def test_fit_temperature_iv():
    z, lab = _tempered(n=20)
    with pytest.raises(ValueError, match="logits_or_logp"):
        fit_temperature(z[:, 0], lab)
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(z, lab[:-1])
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(z, lab + 10)
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(z, lab.astype(float))
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(z, 0.0)


def test_fit_temperature_against_theory():
    z, lab = _tempered()
    r = fit_temperature(z, lab)
    assert r.temperature == pytest.approx(2.5, abs=0.2)
    assert r.nll_after <= r.nll_before and r.n == 4000
    # log-probabilities are valid logits: same fit (log_softmax is shift-invariant per row)
    assert fit_temperature(log_softmax(z, axis=1), lab).temperature == pytest.approx(r.temperature, rel=1e-4)
    lp = apply_temperature(log_softmax(z, axis=1), r.temperature)
    np.testing.assert_allclose(np.exp(lp).sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(lp, log_softmax(z / r.temperature, axis=1), atol=1e-12)
    nll = -np.mean(lp[np.arange(len(lab)), lab])
    assert nll == pytest.approx(r.nll_after, abs=1e-12)


def test_fit_temperature_calibrated_is_one():
    z, lab = _tempered(t0=1.0, seed=12)
    assert fit_temperature(z, lab).temperature == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("debiased", [False, True])
def test_ece_bootstrap_width_matches_loop(debiased):
    # the vectorised equal-width bootstrap recomputes the ECE on exactly the resamples a loop would
    from dint.calibration import bin_index, _ece_boot_width, _ece_value
    rng = np.random.default_rng(0)
    c = rng.beta(2, 1, 80)
    y = rng.random(80) < c
    idx = bin_index(c, 10, "width")
    fast = _ece_boot_width(c, y.astype(float), idx, 10, debiased, 50, np.random.default_rng(1))
    j = np.random.default_rng(1).integers(0, 80, (50, 80))
    slow = [_ece_value(c[r], y[r].astype(float), idx[r], 10, debiased) for r in j]
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-15)


def test_ece_debiased_interval_is_normal_on_the_squared_scale():
    from dint.calibration import bin_index, _ece_boot_width
    rng = np.random.default_rng(3)
    c = rng.beta(4.0, 1.5, 400)
    y = (rng.random(400) < c ** 1.6).astype(float)
    res = ece(c, y, debiased=True, n_resamples=300, rng=9)
    idx = bin_index(c, 15, "width")
    boots = _ece_boot_width(c, y, idx, 15, True, 300, np.random.default_rng(9))
    half = 1.959963984540054 * np.std(boots ** 2, ddof=1)
    assert res.confidence_interval.low == pytest.approx(np.sqrt(max(res.statistic ** 2 - half, 0)), rel=1e-9)
    assert res.confidence_interval.high == pytest.approx(np.sqrt(res.statistic ** 2 + half), rel=1e-9)
    assert "squared scale" in res.method
    assert np.isnan(ece(c, y, debiased=True, n_resamples=1).confidence_interval.low)


def test_temperature_nll_items_against_theory():
    from dint.calibration import temperature_nll, temperature_nll_items

    z, lab = _tempered(n=300, seed=4)
    z[:, -1] = -np.inf   # a padded candidate carries no mass at any T
    lab = np.where(lab == z.shape[1] - 1, 0, lab)
    ts = np.array([0.5, 1.0, 2.5, 7.0])
    m = temperature_nll_items(z, lab, ts)
    assert m.shape == (300, 4)
    np.testing.assert_allclose(m.mean(axis=0), [temperature_nll(z, lab)(t) for t in ts], rtol=1e-12)
    np.testing.assert_allclose(m[:, 2], -log_softmax(z / 2.5, axis=1)[np.arange(300), lab], rtol=1e-10)
    with pytest.raises(ValueError, match="temperatures"):
        temperature_nll_items(z, lab, [1.0, 0.0])
