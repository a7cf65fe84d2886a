"""dint.analyses.temperature_sweep: the temperature along the RL β sweep, beside SFT and DPO."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.special import log_softmax

from dint import calibration
from dint.analyses import reliability, temperature_sweep as ts
from synthetic import score_tables


def _sharpened(scores, c):
    """The same answer distributions as ``scores`` at temperature 1 / c: softmax(c log p) per item."""
    out = scores.copy()
    for _, idx in out.groupby("fact").groups.items():
        out.loc[idx, "p_set"] = np.exp(log_softmax(c * np.log(out.loc[idx, "p_set"].to_numpy())))
    return out


def _scores(seed, t_true=1.5):
    """score_tables whose true answers are drawn from each item's distribution at temperature ``t_true``, so
    that the temperature the items want is near ``t_true`` (not at a search bound)."""
    facts, s = score_tables(n_per_relation=(60, 50), seed=seed)
    rng = np.random.default_rng(seed)
    true = []
    for _, g in s.groupby("fact", sort=False):
        q = np.exp(log_softmax(np.log(g.p_set.to_numpy()) / t_true))
        true += list(np.arange(len(g)) == rng.choice(len(g), p=q))
    return facts, s.assign(is_true=true)


def _sweep(factors=(1.1, 1.5, 2.5), betas=(1.0, 0.1, 0.01)):
    facts, sft = _scores(5)
    _, other = _scores(6)
    conditions = {"sft": sft, "dpo": other.assign(is_true=sft.is_true.to_numpy())}
    names = {}
    for c, b in zip(factors, betas):
        conditions[ts.model_name(b)] = _sharpened(sft, c)    # c times sharper: it wants T = c T_sft
        names[ts.model_name(b)] = b
    names = dict(sorted(names.items(), key=lambda kv: kv[1]))
    return ts.Sweep(facts, names, conditions, "qa")


def test_model_name_and_betas():
    assert ts.model_name(0.01) == "rl_beta_0.01" and ts.model_name(1) == "rl_beta_1"
    cfg = SimpleNamespace(rl_betas=(0.3, 0.01), config=lambda name: SimpleNamespace(beta=0.05))
    assert ts.betas(SimpleNamespace(interventions=cfg)) == (0.01, 0.05, 0.3)   # the rlhf model's own β joins


def test_log_temperature_values_match_the_fit_and_pair_up():
    facts, s = _scores(5)
    _, logp, labels = reliability.held_out(s, facts)
    est, boot = reliability.log_temperature_values(logp, labels, n_resamples=200, rng=1)
    assert est == pytest.approx(np.log(calibration.fit_temperature(logp, labels).temperature), abs=1e-3)
    assert boot.shape == (200,) and np.std(boot) > 0
    # a model sharper by a factor 2 wants exactly twice the temperature, on every resample (the same resamples)
    est2, boot2 = reliability.log_temperature_values(2 * logp, labels, n_resamples=200, rng=1)
    assert est2 - est == pytest.approx(np.log(2), abs=2e-3)
    np.testing.assert_allclose(boot2 - boot, np.log(2), atol=2e-3)


def test_temperatures_against_theory():
    sweep = _sweep()
    t = ts.temperatures(sweep, n_resamples=199, seed=0)
    assert list(t.columns) == reliability.TIDY_COLUMNS
    rows = t.set_index(["model", "measure"])
    # the RL model at the smallest β is SFT sharpened by 2.5: log T rises by log 2.5 (T = 2.5 T_sft)
    d = rows.loc[(ts.SMALLEST, "d_log_t")]
    assert d.estimate == pytest.approx(np.log(2.5), abs=3e-3) and d.reference == "sft"
    assert d.ci_low <= d.estimate <= d.ci_high and d.ci_high - d.ci_low < 0.02 and d.pvalue < 0.05
    assert "0.01" in d.method
    assert ("dpo", "d_log_t") in rows.index and ("dpo", "kl_from_sft") in rows.index
    # T per RL model: the profile-likelihood fit, without a test; none for SFT and DPO (the temperature table's)
    _, logp, labels = reliability.held_out(sweep.conditions["rl_beta_0.1"], sweep.facts)
    fit = reliability.temperature(logp, labels)
    assert rows.loc[("rl_beta_0.1", "t_heldout")].estimate == pytest.approx(fit.statistic)
    assert np.isnan(rows.loc[("rl_beta_0.1", "t_heldout")].pvalue)
    assert not {("sft", "t_heldout"), ("dpo", "t_heldout")} & set(rows.index)
    # the sharper, the further from SFT and the higher T: the slope of log T on the KL is positive
    kl = [rows.loc[(m, "kl_from_sft")].estimate for m in ("rl_beta_1", "rl_beta_0.1", "rl_beta_0.01")]
    assert kl[0] < kl[1] < kl[2]
    slope = rows.loc[("rl", "slope_log_t_kl")]
    assert slope.estimate > 0 and slope.ci_low > 0 and slope.pvalue < 0.05


def test_temperatures_slope_zero_when_no_model_moves_t():
    sweep = _sweep(factors=(1.0, 1.0, 1.0))
    t = ts.temperatures(sweep, n_resamples=99).set_index(["model", "measure"])
    assert t.loc[(ts.SMALLEST, "d_log_t")].estimate == pytest.approx(0.0, abs=1e-9)
    assert t.loc[(ts.SMALLEST, "d_log_t")].reason   # every resample gives 0: no interval, said why


def test_temperatures_iv():
    sweep = _sweep()
    with pytest.raises(ValueError, match="reference='base'"):
        ts.temperatures(sweep, reference="base")
    with pytest.raises(ValueError, match="no RL model"):
        ts.temperatures(ts.Sweep(sweep.facts, {}, sweep.conditions, "qa"))
    other = dict(sweep.conditions, dpo=sweep.conditions["dpo"][sweep.conditions["dpo"].fact > 3])
    with pytest.raises(ValueError, match="other held-out facts"):
        ts.temperatures(ts.Sweep(sweep.facts, sweep.betas, other, "qa"), n_resamples=9)


def test_load_iv():
    with pytest.raises(ValueError, match="form='mc'"):
        ts.load(None, form="mc")


def test_overview_joins_sft_and_dpo_temperatures():
    sweep = _sweep()
    t = ts.temperatures(sweep, n_resamples=99)
    temps = pd.DataFrame([{"model": m, "reference": None, "measure": "t_heldout", "estimate": v, "ci_low": v - 0.1,
                           "ci_high": v + 0.1, "pvalue": 0.5, "n": 10, "method": "", "reason": ""}
                          for m, v in (("sft", 1.5), ("dpo", 2.0), ("base", 9.0))])
    o = ts.overview(sweep, t, temps)
    assert list(o.index) == ["sft", "dpo", "rl_beta_0.01", "rl_beta_0.1", "rl_beta_1"]
    assert o.loc["sft", "t_heldout"] == 1.5 and np.isnan(o.loc["sft", "kl_from_sft"]) and np.isnan(o.loc["dpo", "beta"])
    assert o.loc["rl_beta_0.01", "beta"] == 0.01
    assert o.loc["rl_beta_1", "t_heldout ci_low"] <= o.loc["rl_beta_1", "t_heldout"] <= o.loc["rl_beta_1", "t_heldout ci_high"]
