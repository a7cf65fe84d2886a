"""Over-optimisation of aligned proxies: trajectories, the cross-fitted rise and fall, Gao's fits, the runs."""
import numpy as np
import pandas as pd
import pytest

from dint.analyses import overoptimisation as oo
from dint.analyses.experiments import AlignedConfig
from dint.stats import fits

STEPS = np.arange(0, 220, 20)   # 11 checkpoints


def _checkpoints(shape, *, m=240, noise=0.05, kl_end=1.0, seed=0, proxies=("small", "large")):
    """Synthetic checkpoints: the mean KL grows linearly to ``kl_end``; gold gain = shape(d) plus per-prompt noise
    that is fixed per prompt (a prompt's level) and fresh per checkpoint."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, name in enumerate(proxies):
        level = rng.uniform(0.1, 0.5, m)
        for c, step in enumerate(STEPS):
            kl = np.full(m, kl_end * c / (len(STEPS) - 1)) * rng.uniform(0.5, 1.5, m)
            d = np.sqrt(kl.mean())
            gold = level + shape(d) + (noise * rng.standard_normal(m) if c else 0)
            rows.append(pd.DataFrame({"proxy": name, "share": [0.25, 1.0][k], "step": step, "item": np.arange(m),
                                      "fact": np.arange(m) + 10, "gold": gold, "proxy_reward": 0.5 * d + level,
                                      "kl": kl}))
    return pd.concat(rows, ignore_index=True)


def _rise_then_fall(d):
    return fits.gao_rl(d, 0.2, 0.4)   # peak at d = exp(0.5 - 1) = 0.61, gain 0.24; at d = 1: 0.2


def test_trajectories_shapes():
    t = oo.trajectories(_checkpoints(_rise_then_fall))
    assert t.gold.shape == (2, len(STEPS), 240) and t.names == ("small", "large")
    assert list(t.steps) == list(STEPS) and t.d()[:, 0] == pytest.approx(0)
    assert t.d()[0, -1] == pytest.approx(np.sqrt(t.kl[0, -1].mean()))


def test_trajectories_iv():
    ck = _checkpoints(_rise_then_fall)
    with pytest.raises(ValueError, match="columns"):
        oo.trajectories(ck.drop(columns="kl"))
    with pytest.raises(ValueError, match="every step and prompt"):
        oo.trajectories(ck.iloc[:-1])


def test_rise_fall_detects_rise_then_fall():
    rf = oo.rise_fall(oo.trajectories(_checkpoints(_rise_then_fall)), n_resamples=200, n_permutations=999)
    t = rf.table.set_index(["proxy", "measure"])
    # the true rise is about 0.24 and the fall about -0.04 at the checkpoint nearest the peak
    assert t.loc[("all", "rise"), "estimate"] > 0.15
    assert t.loc[("all", "fall"), "estimate"] < -0.01
    over = t.loc[("all", "overopt")]
    assert over.estimate == pytest.approx(-t.loc[("all", "fall"), "estimate"])
    assert over.ci_low > 0 and over.pvalue < 0.01
    assert rf.draws.shape == (200, 3, 2)


def test_rise_fall_monotone_rise_is_not_overoptimisation():
    rf = oo.rise_fall(oo.trajectories(_checkpoints(lambda d: 0.2 * d)), n_resamples=200, n_permutations=999)
    t = rf.table.set_index(["proxy", "measure"])
    assert t.loc[("all", "rise"), "estimate"] > 0.1
    over = t.loc[("all", "overopt")]
    assert over.estimate < 0.01 and over.ci_high < 0.01 and over.pvalue > 0.05


def test_rise_fall_fall_from_start_is_not_overoptimisation():
    rf = oo.rise_fall(oo.trajectories(_checkpoints(lambda d: -0.2 * d)), n_resamples=200, n_permutations=999)
    over = rf.table.set_index(["proxy", "measure"]).loc[("all", "overopt")]
    assert over.ci_high < 0.01 and over.pvalue > 0.05


def test_rise_fall_unbiased_under_flat_gold():
    """The peak is chosen on the other half: under flat gold the cross-fitted rise and fall average 0, where
    the in-sample maximum would give a positive rise."""
    rises, falls = [], []
    for seed in range(8):
        t = oo.trajectories(_checkpoints(lambda d: 0 * d, seed=seed, proxies=("large",)))
        rf = oo.rise_fall(t, n_resamples=5, n_permutations=99, seed=seed).table.set_index(["proxy", "measure"])
        rises.append(rf.loc[("all", "rise"), "estimate"])
        falls.append(rf.loc[("all", "fall"), "estimate"])
        in_sample = (t.gold[0] - t.gold[0, 0]).mean(-1).max()
        assert in_sample > 0
    # 8 runs of 240 prompts, sd 0.05 per contrast (0.07 for differences): the mean's sd is under 0.003
    assert abs(np.mean(rises)) < 0.01 and abs(np.mean(falls)) < 0.01


def test_rise_fall_iv():
    t = oo.trajectories(_checkpoints(_rise_then_fall, m=3))
    with pytest.raises(ValueError, match="at least 4"):
        oo.rise_fall(t)
    with pytest.raises(ValueError, match="n_resamples"):
        oo.rise_fall(oo.trajectories(_checkpoints(_rise_then_fall)), n_resamples=0)


def test_gao_fits_recover_the_form():
    t = oo.trajectories(_checkpoints(_rise_then_fall, noise=0.01, proxies=("large",)))
    g = oo.gao_fits(t, n_resamples=100).set_index("parameter")
    d_max = t.d()[0].max()
    assert g.loc["alpha", "estimate"] == pytest.approx(0.2, abs=0.03)
    assert g.loc["beta", "estimate"] == pytest.approx(0.4, abs=0.05)
    assert g.loc["peak_d", "estimate"] == pytest.approx(np.exp(0.2 / 0.4 - 1), abs=0.05) and d_max > 0.7
    for par in ("alpha", "beta", "peak_d"):
        assert g.loc[par, "ci_low"] <= g.loc[par, "estimate"] <= g.loc[par, "ci_high"]
    assert g.loc["end_minus_peak", "estimate"] < 0


def test_runs_manipulation_check_reports_a_failing_run():
    ck = pd.concat([_checkpoints(lambda d: 0.1 * d, kl_end=1.0, proxies=("large",)),
                    _checkpoints(lambda d: 0.1 * d, kl_end=0.02, proxies=("small",)).assign(share=0.1)])
    r = oo.runs(oo.trajectories(ck))
    moved = r.groupby("proxy").moved.first()
    assert bool(moved["large"]) and not bool(moved["small"])      # reported, not dropped
    kl = r[r.measure == "kl"].set_index("proxy").estimate
    assert kl["small"] < oo.MIN_KL <= kl["large"]
    assert set(r.measure) == {"kl", "proxy_gain", "gold_gain", "d"}
    gain = r[(r.measure == "proxy_gain")].set_index("proxy").estimate
    assert gain["large"] > gain["small"] > 0


def test_numbers_names_and_manipulation():
    ck = _checkpoints(_rise_then_fall)
    t = oo.trajectories(ck)
    proxies = pd.DataFrame({"proxy": ["small", "large"], "share": [0.25, 1.0], "train_correct": [10, 90],
                            "train_pairs": [12, 100], "eval_correct": [60, 90], "eval_pairs": [100, 100],
                            "heldout_correct": [50, 52], "heldout_pairs": [100, 100]})
    bon = pd.DataFrame({"proxy": ["small"] * 2 + ["large"] * 2, "n": [1, 4] * 2, "gold_gain": [0, 0.1, 0, -0.1]})
    out = oo.numbers(proxies=proxies, rise_fall=oo.rise_fall(t, n_resamples=20, n_permutations=99),
                     gao_fits=oo.gao_fits(t, n_resamples=20), runs=oo.runs(t), bon=bon)
    for key in ("aligned_overopt", "aligned_rise", "aligned_fall", "aligned_small_overopt", "aligned_large_kl",
                "aligned_large_proxy_gain", "aligned_large_peak_d", "aligned_small_heldout_accuracy"):
        assert np.isfinite(out[key].statistic), key
    assert out["aligned_large_eval_accuracy"].statistic == pytest.approx(0.9)
    assert out["aligned_kl_min"] == pytest.approx(min(out["aligned_small_kl"].statistic,
                                                      out["aligned_large_kl"].statistic))
    assert out["aligned_small_moved"] == 1 and out["aligned_large_bon_gold_max_n"] == pytest.approx(-0.1)
    assert out["aligned_large_bon_gold_peak"] == pytest.approx(0.0)


def test_aligned_config_iv():
    AlignedConfig()
    with pytest.raises(ValueError, match="increasing shares"):
        AlignedConfig(shares=(1.0, 0.5), names=("a", "b"))
    with pytest.raises(ValueError, match="one distinct name"):
        AlignedConfig(shares=(0.5, 1.0), names=("a",))
    with pytest.raises(ValueError, match="n_eval"):
        AlignedConfig(n_eval=2)


def test_aligned_config_from_the_profile():
    """The experiment's size is a profile setting (``interventions.aligned``): the default when absent (and the
    profile's dict as without the field), the given fields otherwise, checked when the section is built."""
    from dint.interventions.plan import InterventionsConfig
    from dint.pipeline.config import load_profile

    assert InterventionsConfig().config("aligned") == AlignedConfig()
    assert "aligned" not in load_profile("tiny").asdict()["interventions"]
    cfg = InterventionsConfig(aligned={"n_eval": 32, "shares": [0.5, 1.0], "names": ["half", "all"]})
    assert cfg.config("aligned") == AlignedConfig(n_eval=32, shares=(0.5, 1.0), names=("half", "all"))
    with pytest.raises(ValueError, match="interventions.aligned.n_eval"):
        InterventionsConfig(aligned={"n_eval": 2})
    with pytest.raises(ValueError, match=r"unknown interventions.aligned parameter\(s\) \['steps'\]"):
        InterventionsConfig(aligned={"steps": 3})
