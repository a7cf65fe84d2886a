"""Tests for dint.analyses.engineering_clues (notebook 02) on synthetic tables: the fits, the best-of-n gap,
the tidy tables and the names of the numbers."""
import numpy as np
import pandas as pd
import pytest

from dint import stats
from dint.analyses import engineering_clues as E
from dint.analyses import reasoning
from dint.interventions import bestofn
from dint.stats import fits, proportions


@pytest.fixture(scope="module")
def sweep():
    """Two RL runs whose gains follow Gao et al.'s RL form (alpha 0.5, beta 0.3) with a little noise."""
    rng = np.random.default_rng(0)
    rows = []
    for beta in (0.01, 1.0):
        for step in range(0, 60, 5):
            kl = (step / 60) * (2.0 if beta < 1 else 0.5) + (0.0 if step else -1e-4)   # a negative estimate at 0
            d = np.sqrt(max(kl, 0))
            rows.append({"beta": beta, "step": step, "kl": kl, "proxy": 0.2 + 0.8 * d + rng.normal(0, 0.01),
                         "gold": 0.1 + fits.gao_rl(d, 0.5, 0.3) + rng.normal(0, 0.01), "mass_outside": 0.01,
                         "proxy_exact": 0.2 + d, "gold_exact": 0.3 - 0.1 * d + 0.05 * (step == 10)})
    table = pd.DataFrame(rows)
    return table.assign(d=np.sqrt(table["kl"].clip(lower=0)))         # as E.sweep adds it to rl_sweep's table


@pytest.fixture(scope="module")
def bon():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5) * 0.5, size=30)                      # (m, K)
    proxy = rng.normal(size=(30, 5))
    rows = []
    for n, kl, gold in ((1, 0.0, 0.0), (4, 0.6, 0.05), (16, 1.5, 0.08), (64, 2.4, 0.07)):
        for m, est in (("kl", kl), ("proxy", 0.3 * np.sqrt(kl)), ("gold", gold)):
            rows.append({"best_of": n, "kl_bound": bestofn.kl_bound(n), "d": np.sqrt(kl), "measure": m,
                         "estimate": est, "ci_low": est - 0.01, "ci_high": est + 0.01, "pvalue": np.nan, "n": 30,
                         "method": E.BON_METHODS[m], "reason": ""})
    curve = pd.DataFrame(rows)
    fitted = pd.DataFrame([r.row(curve="bon", reward=k, parameter=q) for k in ("gold", "proxy") for q, r in
                           fits.fit_curve(fits.gao_bon, np.sqrt([0, 0.6, 1.5, 2.4]),
                                          curve[curve.measure == k].estimate, p0=[0.1, 0.01]).items()])
    return E.BestOfN(curve, fitted, p, proxy)


@pytest.fixture(scope="module")
def baselines():
    rng = np.random.default_rng(2)
    rows, tests = [], []
    for model in ("base", "sft_sham", "sft"):
        for split, n in (("train", 40), ("heldout", 30)):
            rows += [stats.proportion(int(rng.integers(n)), n).row(model=model, split=split, measure="accuracy"),
                     stats.bootstrap_mean(rng.random(n), method="t").row(model=model, split=split, measure="format_mass")]
    for against in ("base", "sft_sham"):
        for split, n in (("train", 40), ("heldout", 30)):
            tests.append(proportions.mcnemar(rng.random(n) < 0.2, rng.random(n) < 0.6).row(model="sft", against=against,
                                                                                           split=split))
    return E.Baselines(pd.DataFrame(rows), stats.holm(pd.DataFrame(tests)))


@pytest.fixture(scope="module")
def twohop():
    rows = []
    for item, (direct, verified) in enumerate([(1, 1), (0, 1), (0, 1), (0, 0), (1, 1), (0, 1)]):
        for method, right, answered in (("direct", direct, True), ("verified", verified, bool(verified))):
            rows.append((item, method, "e", "b", "color", "red", "red" if right else "", "", answered, bool(right),
                         0.5, 1, 10 if method == "direct" else 40, 1.0))
    summary = reasoning.by_method(pd.DataFrame(rows, columns=reasoning.ANSWER_COLUMNS))
    return pd.concat([summary.assign(store="clean"), summary.assign(store="stale 0.2")], ignore_index=True)


def test_sweep_tables_and_rl_fits(sweep):
    last = E.last_checkpoints(sweep)
    assert list(last.index) == [0.01, 1.0] and (last["step"] == 55).all()
    assert list(last.columns) == ["step", "proxy", "gold", "kl", "gold_exact", "proxy_exact", "mass_outside"]
    fitted = E.rl_fits(sweep)
    assert list(fitted.columns) == ["curve", "reward", "parameter", *stats.ROW]
    assert list(zip(fitted.reward, fitted.parameter)) == [("gold", "alpha"), ("gold", "beta"), ("proxy", "alpha"),
                                                          ("proxy", "beta")]
    gold = fitted[fitted.reward == "gold"].set_index("parameter")
    assert gold.loc["alpha", "estimate"] == pytest.approx(0.5, abs=0.03)
    assert gold.loc["beta", "estimate"] == pytest.approx(0.3, abs=0.05)
    assert (gold["ci_low"] < gold["estimate"]).all() and (gold["n"] == (sweep.d > 0).sum()).all()


def test_kl_gap_against_bestofn(bon):
    gap = E.kl_gap(bon, n=16)
    direct = bestofn.kl_bound(16) - bestofn.exact_kl(bon.p, bon.proxy, 16)
    assert gap["mean gap"] == pytest.approx(direct.mean()) and (direct >= -1e-12).all()
    r = gap["r(gap, collision probability)"]
    assert isinstance(r, stats.Result) and r.n == 30
    assert r.statistic == pytest.approx(np.corrcoef((bon.p ** 2).sum(1), direct)[0, 1])
    assert abs(gap["gap without ties (k = 1e5, uniform)"]) < 1e-6     # the bound holds with equality without ties
    with pytest.raises(ValueError, match="n"):
        E.kl_gap(bon, n=0)


def test_iv():
    with pytest.raises(ValueError, match="items"):
        E.best_of_n(None, None, items=-1)
    with pytest.raises(ValueError, match="stale_share=2"):
        E.twohop(None, None, stale_share=2)
    with pytest.raises(ValueError, match="models"):
        E.baselines(None, None, models=())
    with pytest.raises(ValueError, match="n_resamples"):
        E.overoptimisation(None, None, None, n_resamples=0)


def test_numbers_names_and_values(sweep, bon, baselines, twohop):
    over = E.Overoptimisation({"beta": 0.01, "gold_peak_step": 10}, stats.Result(0.1, stats.ConfidenceInterval(0, 0.2),
                                                                                  30, "mean difference"))
    out = E.numbers(sweep=sweep, rl_fits=E.rl_fits(sweep), overoptimisation=over, bon=bon, kl_gap=E.kl_gap(bon),
                    baselines=baselines, twohop=twohop)
    assert {"rl_gold_alpha", "rl_proxy_beta", "bon_gold_alpha", "bon_proxy_beta"} <= set(out)
    assert out["rl_d_max"] == sweep.d.max() and out["bon_d_max"] == pytest.approx(np.sqrt(2.4))
    assert out["overopt_gold_peak_step"] == 10 and out["rlhf_vs_sft_p_true"] is over.rlhf_vs_sft
    assert out["bon_max_n"] == 64
    kl16 = out["bon16_kl"]
    assert (kl16.statistic, kl16.confidence_interval.low, kl16.n, kl16.method) == (1.5, 1.49, 30, E.BON_METHODS["kl"])
    assert out["bon_max_gold"].statistic == out["bon64_gold"].statistic == 0.07 and out["bon64_kl_bound"] == bestofn.kl_bound(64)
    assert "bon4_kl" not in out and "bon16_proxy" not in out
    t = baselines.tests.set_index(["against", "split"]).loc[("sft_sham", "heldout")]
    r = out["sft_vs_sft_sham_heldout_d_accuracy"]
    assert (r.statistic, r.pvalue, r.n, r.method) == (t.estimate, t.pvalue_holm, 30, "McNemar exact, Holm")
    assert out["sft_heldout_accuracy"].method == "Wilson" and out["sft_heldout_accuracy"].n == 30
    mass = baselines.table.set_index(["model", "split", "measure"]).loc[("base", "train", "format_mass"), "estimate"]
    assert out["base_train_format_mass"] == mass and isinstance(out["base_train_format_mass"], float)
    assert out["twohop_clean_direct_accuracy"].statistic == 2 / 6
    assert out["twohop_stale_verified_coverage"] == 5 / 6 and out["twohop_clean_verified_tokens"] == 40
    vs = out["twohop_clean_verified_vs_direct"]
    assert vs.statistic == pytest.approx(3 / 6) and vs.method == "McNemar exact" and vs.pvalue == pytest.approx(0.25)
    assert "twohop_clean_direct_vs_direct" not in out
    quoted = E.quoted(out)
    assert "overopt_beta" in quoted.index and not quoted.index.str.startswith(("twohop", "bon_", "rl_")).any()


def test_numbers_carry_the_format_only_controls_check(sweep, bon, baselines, twohop):
    over = E.Overoptimisation({"beta": 0.01, "gold_peak_step": 10}, stats.Result(0.1, stats.ConfidenceInterval(0, 0.2),
                                                                                  30, "mean difference"))
    kw = dict(sweep=sweep, rl_fits=E.rl_fits(sweep), overoptimisation=over, bon=bon, kl_gap=E.kl_gap(bon), twohop=twohop)
    assert "sft_format_vs_sft_heldout_format_mass" not in E.numbers(baselines=baselines, **kw)   # no control: absent
    check = stats.bootstrap_mean(np.array([-0.02, 0.01, 0.0, -0.01, 0.03]))
    out = E.numbers(baselines=E.Baselines(baselines.table, baselines.tests, check), **kw)
    assert out["sft_format_vs_sft_heldout_format_mass"] is check


def test_figure_draws_five_panels(sweep, bon, baselines, twohop):
    fitted = E.rl_fits(sweep)
    fig = E.figure(sweep=sweep, rl_fits=fitted, bon=bon, baselines=baselines, twohop=twohop)
    axes = fig.axes
    assert [a.get_title(loc="left") for a in axes[:5]] == ["(a)", "(b)", "(c)", "(d)", "(e)"]   # a sixth, empty slot
    assert len(axes[3].patches) == 6                              # accuracy of 3 models x 2 splits
    empty = E.figure(sweep=sweep, rl_fits=fitted, bon=bon, baselines=baselines, twohop=twohop.head(0))
    assert not empty.axes[4].axison


@pytest.fixture(scope="module")
def aligned():
    """A synthetic aligned-proxy analysis: two proxies whose gold gains rise and then fall."""
    from dint.analyses import overoptimisation as oo

    rng = np.random.default_rng(3)
    rows = []
    for name, share in (("small", 0.25), ("large", 1.0)):
        for c, step in enumerate(range(0, 120, 20)):
            kl = np.full(40, 0.2 * c)
            rows.append(pd.DataFrame({"proxy": name, "share": share, "step": step, "item": np.arange(40), "fact": 0,
                                      "gold": 0.3 + fits.gao_rl(np.sqrt(kl), 0.2, 0.4) + 0.01 * rng.standard_normal(40),
                                      "proxy_reward": np.sqrt(kl), "kl": kl}))
    traj = oo.trajectories(pd.concat(rows, ignore_index=True))
    proxies = pd.DataFrame({"proxy": ["small", "large"], "share": [0.25, 1.0], "train_correct": [5, 90],
                            "train_pairs": [6, 100], "eval_correct": [50, 80], "eval_pairs": [100, 100],
                            "heldout_correct": [50, 50], "heldout_pairs": [100, 100]})
    bon = pd.DataFrame({"proxy": ["small", "small", "large", "large"], "n": [1, 4, 1, 4], "gold_gain": [0, 0.02, 0, 0.05]})
    return oo.Analysis(proxies, oo.curves(traj), oo.rise_fall(traj, n_resamples=20, n_permutations=99),
                       oo.gao_fits(traj, n_resamples=20), oo.runs(traj), bon)


def test_numbers_and_figure_with_the_aligned_proxies(sweep, bon, baselines, twohop, aligned):
    over = E.Overoptimisation({"beta": 0.01}, stats.Result(0.1, stats.ConfidenceInterval(0, 0.2), 30, "mean difference"))
    kw = dict(sweep=sweep, rl_fits=E.rl_fits(sweep), overoptimisation=over, bon=bon, kl_gap=E.kl_gap(bon),
              baselines=baselines, twohop=twohop)
    without, out = E.numbers(**kw), E.numbers(**kw, aligned=aligned)
    assert not any(k.startswith("aligned_") for k in without)
    assert {"aligned_overopt", "aligned_kl_min", "aligned_large_eval_accuracy", "aligned_small_moved"} <= set(out)
    assert out["aligned_overopt"].statistic > 0 and out["aligned_large_eval_accuracy"].statistic == pytest.approx(0.8)
    assert not E.quoted(out).index.str.startswith("aligned_").any()
    fig = E.figure(sweep=sweep, rl_fits=E.rl_fits(sweep), bon=bon, baselines=baselines, twohop=twohop, aligned=aligned)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title(loc="left") for a in axes] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    drawn = [line for line in axes[5].lines if len(line.get_xdata())]
    assert len(drawn) == 2 + 2                                # the gold curve of each proxy and its fitted form
