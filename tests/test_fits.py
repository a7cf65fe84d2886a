"""Tests for dint.stats.fits: GEE and curve fits with intervals."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dint.stats.fits import fit_curve, gao_bon, gao_rl, logit_gee


# ---------------------------------------------------------------- logit_gee
def _clustered_binary(seed=0, g=60, m=4):
    import pandas as pd
    rng = np.random.default_rng(seed)
    fact = np.repeat(np.arange(g), m)
    x = rng.normal(size=g * m)
    eta = -0.2 + 0.8 * x + rng.normal(0, 1.0, g)[fact]
    return pd.DataFrame({"correct": (rng.uniform(size=g * m) < 1 / (1 + np.exp(-eta))).astype(int),
                         "x": x, "fact": fact})


def test_logit_gee_iv():
    df = _clustered_binary()
    with pytest.raises(ValueError, match="groups='item'"):
        logit_gee("correct ~ x", df, groups="item")
    with pytest.raises(ValueError, match="groups must be a column name or one label per row"):
        logit_gee("correct ~ x", df, groups=[0, 1])
    with pytest.raises(TypeError, match="data must be a pandas DataFrame"):
        logit_gee("correct ~ x", df.to_dict(), groups="fact")
    with pytest.raises(ValueError, match="confidence_level"):
        logit_gee("correct ~ x", df, groups="fact", confidence_level=0)


def test_logit_gee_against_statsmodels():
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    df = _clustered_binary()
    out = logit_gee("correct ~ x", df, groups="fact", confidence_level=0.9)
    ref = smf.gee("correct ~ x", "fact", df, family=sm.families.Binomial(),
                  cov_struct=sm.cov_struct.Exchangeable()).fit(cov_type="bias_reduced")
    assert list(out.columns) == ["term", "estimate", "std_error", "z", "pvalue", "ci_low", "ci_high", "reason"]
    assert list(out.term) == ["Intercept", "x"] and (out.reason == "").all()
    np.testing.assert_allclose(out.estimate, ref.params, rtol=1e-8)
    np.testing.assert_allclose(out.std_error, ref.bse, rtol=1e-8)
    np.testing.assert_allclose(out.pvalue, ref.pvalues, rtol=1e-6)
    np.testing.assert_allclose(out[["ci_low", "ci_high"]].to_numpy(), ref.conf_int(alpha=0.1).to_numpy(), rtol=1e-8)
    same = logit_gee("correct ~ x", df, groups=df.fact.to_numpy(), confidence_level=0.9)
    np.testing.assert_allclose(same.estimate, out.estimate)
    plain = logit_gee("correct ~ x", df, groups="fact", cov_type="robust")
    np.testing.assert_allclose(plain.std_error, ref.model.fit(cov_type="robust").bse, rtol=1e-8)
    assert (out.std_error > plain.std_error).all()   # the bias correction widens the sandwich
    with pytest.raises(ValueError, match="cov_type='naive'"):
        logit_gee("correct ~ x", df, groups="fact", cov_type="naive")


def test_logit_gee_joint_against_single_terms():
    from dint.stats.fits import logit_gee_joint
    rng = np.random.default_rng(4)
    g = 150
    df = pd.DataFrame({"fact": np.repeat(np.arange(g), 4), "a": np.tile([0, 1, 0, 1], g), "b": np.tile([0, 0, 1, 1], g)})
    u = np.repeat(rng.normal(0, 1, g), 4)
    df["correct"] = (rng.random(len(df)) < 1 / (1 + np.exp(-(u + 0.5 * df.a - 0.3 * df.b)))).astype(int)
    table = logit_gee("correct ~ a * b", df, groups="fact").set_index("term")
    one = logit_gee_joint("correct ~ a * b", df, groups="fact", terms=["a:b"])
    # one term: the Wald chi-square is the squared z; its p-value is the t test on G - 1 df (F(1, G - 1)),
    # a little above the normal one
    z = table.loc["a:b", "z"]
    assert one.statistic == pytest.approx(z ** 2, rel=1e-8)
    assert one.pvalue == pytest.approx(2 * sps.t.sf(abs(z), g - 1), rel=1e-6)
    assert one.pvalue > table.loc["a:b", "pvalue"] and "F(df = 1, 149) (150 clusters" in one.method
    both = logit_gee_joint("correct ~ a * b", df, groups="fact", terms=lambda t: t in ("a", "b"))
    assert "df = 2" in both.method and both.statistic >= max(table.loc[["a", "b"], "z"] ** 2) - 1e-9
    with pytest.raises(ValueError, match="terms="):
        logit_gee_joint("correct ~ a * b", df, groups="fact", terms=["c"])
    with pytest.raises(ValueError, match="terms="):
        logit_gee_joint("correct ~ a * b", df, groups="fact", terms=lambda t: False)


def _factorial(steps, g=80, seed=0, skip=(), same=None, perfect=()):
    """Correctness of g facts under every subset of ``steps`` (one row per fact and subset).

    ``skip``: subsets left out of the design; ``same``: a step that changes no answer;
    ``perfect``: subsets where every answer is right."""
    import itertools
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1, g)
    frames, answers = [], {}
    for k in range(len(steps) + 1):
        for cell in itertools.combinations(steps, k):
            if cell in skip:
                continue
            key = tuple(s for s in cell if s != same)
            if key not in answers:
                eta = u - 0.2 + 0.4 * len(key)
                answers[key] = (rng.random(g) < 1 / (1 + np.exp(-eta))).astype(int)
            y = np.ones(g, int) if cell in perfect else answers[key]
            frames.append(pd.DataFrame({"fact": np.arange(g), "correct": y, **{s: int(s in cell) for s in steps}}))
    return pd.concat(frames, ignore_index=True)


def _gee(formula, df):
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    return smf.gee(formula, "fact", df, family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Exchangeable()).fit(cov_type="bias_reduced")


def test_logit_gee_aliased():
    # no stack has both dpo and rl: the dpo:rl and sft:dpo:rl columns are all zero
    df = _factorial(["sft", "dpo", "rl"], skip=[("dpo", "rl"), ("sft", "dpo", "rl")])
    out = logit_gee("correct ~ sft * dpo * rl", df, groups="fact").set_index("term")
    gone = ["dpo:rl", "sft:dpo:rl"]
    assert out.loc[gone, ["estimate", "std_error", "pvalue", "ci_low", "ci_high"]].isna().all().all()
    assert out.loc[gone, "reason"].str.contains("not estimable: no row has this term").all()
    # the estimable terms are those of the model without the empty columns
    ref = _gee("correct ~ sft * dpo + rl + sft:rl", df)
    kept = out.drop(gone)
    assert (kept.reason == "").all()
    np.testing.assert_allclose(kept.estimate, ref.params[kept.index], rtol=1e-8)
    np.testing.assert_allclose(kept.std_error, ref.bse[kept.index], rtol=1e-8)
    # two steps that always come together: neither main effect is estimable, their sum is
    twin = df.assign(ppo=df.dpo)
    out = logit_gee("correct ~ sft + dpo + ppo", twin, groups="fact").set_index("term")
    assert out.loc[["dpo", "ppo"], "estimate"].isna().all() and out.loc["sft", "reason"] == ""
    assert "aliased with ppo" in out.loc["dpo", "reason"] and "aliased with dpo" in out.loc["ppo", "reason"]
    np.testing.assert_allclose(out.loc["sft", "estimate"], _gee("correct ~ sft + dpo", df).params["sft"], rtol=1e-8)


def test_logit_gee_separated():
    # every answer of the sft+dpo stack is right: the interaction's maximum-likelihood estimate is
    # infinite (statsmodels stops at a huge value with a small robust SE and p ~ 0)
    df = _factorial(["sft", "dpo"], perfect=[("sft", "dpo")])
    raw = _gee("correct ~ sft * dpo", df)
    assert raw.params["sft:dpo"] > 10 and raw.pvalues["sft:dpo"] < 1e-6   # the mis-report avoided below
    out = logit_gee("correct ~ sft * dpo", df, groups="fact").set_index("term")
    assert out.loc["sft:dpo", ["estimate", "std_error", "z", "pvalue", "ci_low", "ci_high"]].isna().all()
    assert "separation" in out.loc["sft:dpo", "reason"]
    # the other terms are fitted on the rows that are not separated (the other three cells)
    rest = df[~((df.sft == 1) & (df.dpo == 1))]
    ref = _gee("correct ~ sft + dpo", rest)
    np.testing.assert_allclose(out.loc[["Intercept", "sft", "dpo"], "estimate"], ref.params, rtol=1e-6)
    np.testing.assert_allclose(out.loc[["Intercept", "sft", "dpo"], "pvalue"], ref.pvalues, rtol=1e-6)
    assert (out.loc[["Intercept", "sft", "dpo"], "reason"] == "").all()
    # without the interaction nothing is separated: the plain fit
    main = logit_gee("correct ~ sft + dpo", df, groups="fact")
    np.testing.assert_allclose(main.estimate, _gee("correct ~ sft + dpo", df).params, rtol=1e-10)
    assert (main.reason == "").all()


def test_logit_gee_no_variability():
    # rl changes no answer: its column and its interactions have estimate 0 and no robust variance
    df = _factorial(["sft", "dpo", "rl", "rag"], g=60, same="rl")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)   # the negative variance is reported, not warned about
        out = logit_gee("correct ~ sft * dpo * rl * rag", df, groups="fact")
    flat = out.term.str.contains("rl")
    assert flat.sum() == 8
    np.testing.assert_allclose(out.estimate[flat], 0.0, atol=1e-10)          # defined, kept
    assert out.loc[flat, ["std_error", "z", "pvalue", "ci_low", "ci_high"]].isna().all().all()
    assert out.reason[flat].str.startswith("standard error not estimable").all()
    # every other term as statsmodels reports it, untouched
    ref = _gee("correct ~ sft * dpo * rl * rag", df)
    rest = out[~flat].set_index("term")
    assert (rest.reason == "").all()
    np.testing.assert_array_equal(rest.estimate, ref.params[rest.index])
    np.testing.assert_array_equal(rest.pvalue, ref.pvalues[rest.index])
    # the Holm family goes on without them
    from dint.stats import adjust
    holm = adjust(out.pvalue.to_numpy(), nan_policy="omit")
    assert np.isnan(holm[flat]).all() and np.isfinite(holm[~flat]).all()


def test_logit_gee_joint_not_estimable():
    from dint.stats.fits import logit_gee_joint
    df = _factorial(["sft", "dpo", "rl", "rag"], g=60, same="rl")
    joint = logit_gee_joint("correct ~ sft * dpo * rl * rag", df, groups="fact", terms=lambda t: ":" in t)
    table = logit_gee("correct ~ sft * dpo * rl * rag", df, groups="fact").set_index("term")
    tested = [t for t in table.index if ":" in t and "rl" not in t]
    assert "df = 4" in joint.method and "left out: sft:rl" in joint.method and "sft:dpo:rl:rag" in joint.method
    assert "standard error not estimable" in joint.reason and 0 <= joint.pvalue <= 1
    ref = logit_gee_joint("correct ~ sft * dpo * rl * rag", df, groups="fact", terms=tested)
    assert ref.statistic == pytest.approx(joint.statistic, rel=1e-10) and ref.reason == ""
    assert ref.method == "GEE joint Wald test, Hotelling F(df = 4, 56) (60 clusters, bias_reduced sandwich)"
    assert ref.pvalue == pytest.approx(sps.f.sf(ref.statistic * 56 / (4 * 59), 4, 56), rel=1e-10)
    none = logit_gee_joint("correct ~ sft * dpo * rl * rag", df, groups="fact", terms=lambda t: "rl" in t)
    assert np.isnan(none.statistic) and np.isnan(none.pvalue) and "no term" in none.reason
    # aliased terms are left out the same way
    gap = _factorial(["sft", "dpo", "rl"], skip=[("dpo", "rl"), ("sft", "dpo", "rl")])
    j = logit_gee_joint("correct ~ sft * dpo * rl", gap, groups="fact", terms=lambda t: ":" in t)
    assert "df = 2" in j.method and "no row has this term" in j.reason


def test_logit_gee_against_theory():
    # One row per cluster: GEE is ordinary logistic regression with sandwich (HC0) standard errors.
    import statsmodels.formula.api as smf
    df = _clustered_binary(1, g=300, m=1)
    out = logit_gee("correct ~ x", df, groups="fact", cov_type="robust")
    ref = smf.logit("correct ~ x", df).fit(disp=0, cov_type="HC0")
    np.testing.assert_allclose(out.estimate, ref.params, rtol=1e-6)
    np.testing.assert_allclose(out.std_error, ref.bse, rtol=1e-4)
    np.testing.assert_allclose(out.z, out.estimate / out.std_error, rtol=1e-10)
    z = sps.norm.ppf(0.975)
    np.testing.assert_allclose(out.ci_high, out.estimate + z * out.std_error, rtol=1e-10)


# ---------------------------------------------------------------- fit_curve, Gao et al. forms
def test_fit_curve_iv():
    with pytest.raises(ValueError, match="x has 2 observations; fitting 2 parameters"):
        fit_curve(gao_bon, [1.0, 2.0], [1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="x and y must be 1-D"):
        fit_curve(gao_bon, [1.0, 2.0, 3.0], [1.0, 2.0], [1, 1])
    with pytest.raises(TypeError, match="f="):
        fit_curve("gao", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1, 1])
    with pytest.raises(ValueError, match="confidence_level"):
        fit_curve(gao_bon, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1, 1], confidence_level=-1)


def test_fit_curve_against_scipy():
    from scipy.optimize import curve_fit
    rng = np.random.default_rng(2)
    d = np.linspace(0.2, 6, 40)
    y = gao_rl(d, 1.2, 0.4) + rng.normal(0, 0.05, 40)
    res = fit_curve(gao_rl, d, y, [1.0, 0.1], confidence_level=0.9)
    popt, pcov = curve_fit(gao_rl, d, y, p0=[1.0, 0.1])
    assert list(res) == ["alpha", "beta"]
    q = sps.t.ppf(0.95, 38)
    for name, est, var in zip(res, popt, np.diag(pcov)):
        r = res[name]
        assert r.statistic == pytest.approx(est, rel=1e-10)
        assert r.confidence_interval.low == pytest.approx(est - q * math.sqrt(var), rel=1e-10)
        assert r.n == 40 and r.pvalue < 1e-10
    assert res["alpha"].confidence_interval.low < 1.2 < res["alpha"].confidence_interval.high
    assert res["beta"].confidence_interval.low < 0.4 < res["beta"].confidence_interval.high


def test_fit_curve_against_theory():
    # Linear in its parameters: the t intervals are those of ordinary least squares.
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 3, 25)
    y = 0.5 + 2.0 * x + rng.normal(0, 0.3, 25)
    res = fit_curve(lambda x, a, b: a + b * x, x, y, [0.0, 1.0])
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose([res["a"].statistic, res["b"].statistic], ols.params, rtol=1e-6)
    np.testing.assert_allclose([[r.confidence_interval.low, r.confidence_interval.high] for r in res.values()],
                               ols.conf_int(), rtol=1e-5)
    np.testing.assert_allclose([r.pvalue for r in res.values()], ols.pvalues, rtol=1e-4)
    # *args functions get positional names
    assert list(fit_curve(lambda x, *p: p[0] + p[1] * x, x, y, [0.0, 1.0])) == ["p0", "p1"]


def test_gao_forms_against_theory():
    d = np.array([0.0, 0.5, 1.0, 2.0, np.e])
    np.testing.assert_allclose(gao_bon(d, 2.0, 0.5), d * (2.0 - 0.5 * d))
    np.testing.assert_allclose(gao_rl(d[1:], 2.0, 0.5), d[1:] * (2.0 - 0.5 * np.log(d[1:])))
    assert gao_rl(0.0, 1.0, 1.0) == 0.0
    assert gao_rl(np.e, 1.0, 1.0) == pytest.approx(0.0, abs=1e-15)   # alpha = beta log d
    # bon peaks at d = alpha / (2 beta)
    grid = np.linspace(0, 5, 50001)
    assert grid[np.argmax(gao_bon(grid, 2.0, 0.5))] == pytest.approx(2.0, abs=1e-3)


def test_logit_gee_joint_f_tends_to_chi_square():
    # Hotelling's F reference is above the chi-square on df and meets it as G grows
    from dint.stats.fits import logit_gee_joint
    ps = {}
    for g in (40, 400):
        df = _factorial(["sft", "dpo", "rl"], g=g, seed=1)   # additive: the 4 interactions are null
        r = logit_gee_joint("correct ~ sft * dpo * rl", df, groups="fact", terms=lambda t: ":" in t)
        chi2 = sps.chi2.sf(r.statistic, 4)
        assert r.pvalue > chi2
        ps[g] = r.pvalue / chi2
    assert ps[400] < ps[40] and ps[400] == pytest.approx(1, abs=0.05)

