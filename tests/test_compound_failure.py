"""dint.analyses.compound_failure (notebook 05): tidy tables, forgetting, the additive predictions, the Holm
family and the names in numbers.json, on synthetic per-item outcomes."""
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from dint import stats
from dint.stats import proportions
from dint.analyses import compound_failure as cf, stacks


def _outcomes(correct, base):
    correct = np.asarray(correct, bool)
    return pd.DataFrame({"fact": np.arange(len(correct)), "correct_base": np.asarray(base, bool),
                         "correct_post": correct, "p_true_post": np.where(correct, 0.8, 0.3),
                         "kl": correct * 0.5 + 0.1, "confidence": np.linspace(0.4, 0.9, len(correct))})


def _inputs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random(n) < 0.3
    p = {"base": 0.3, "sft": 0.7, "dpo": 0.4, "sft+dpo": 0.6, "dpo+sft": 0.5}
    held = {k: _outcomes(rng.random(n) < v, base) for k, v in p.items()}
    held["base"] = held["base"].assign(correct_post=base, kl=0.0)
    train = {k: _outcomes(rng.random(n) < v, base) for k, v in p.items()}
    costs = pd.DataFrame({"stack": list(p), "train_flops": [0.0, 1.0, 2.0, 3.0, 3.0]})
    return cf.Inputs("qa", ("sft", "dpo"), ("base", "sft", "dpo", "sft+dpo"), (("dpo", "sft"),), {}, costs, held, train)


def test_load_iv():
    with pytest.raises(ValueError, match="form='chat'"):
        cf.load(None, form="chat")


def test_per_stack_is_tidy_with_flops():
    t = cf.per_stack(_inputs(), n_resamples=99)
    assert list(t.columns) == ["stack", "n_steps", "train_flops", "measure", *stats.ROW]
    acc = t[t.measure == "accuracy"].set_index("stack")
    held = _inputs().heldout
    assert acc.loc["sft", "estimate"] == pytest.approx(held["sft"].correct_post.mean())
    assert acc.loc["sft+dpo", "train_flops"] == 3.0


def test_additivity_per_outcome_matches_stacks():
    inputs = _inputs()
    add = cf.additivity(inputs, n_permutations=99)
    assert list(add.outcome.unique()) == list(cf.OUTCOMES) and list(add["stack"].unique()) == ["sft+dpo"]
    ref = stacks.additivity(inputs.canonical, "kl", n_permutations=99)
    assert add[add.outcome == "kl"].estimate.iloc[0] == pytest.approx(ref.estimate.iloc[0])


def test_forgetting_against_theory():
    base = [0, 0, 0, 0, 1, 1]
    train = {"base": _outcomes(base, base), "sft": _outcomes([1, 1, 1, 0, 1, 0], base),
             "sft+dpo": _outcomes([1, 0, 0, 0, 1, 1], base), "dpo": _outcomes([0] * 6, base)}
    inputs = _inputs()
    inputs = cf.Inputs(inputs.form, inputs.steps, inputs.plan, inputs.pairs, {}, inputs.costs, inputs.heldout, train)
    f = cf.forgetting(inputs).set_index("measure")
    # SFT installed facts 0, 1, 2; sft+dpo keeps fact 0 only
    assert f.loc["retained", "estimate"] == pytest.approx(1 / 3) and f.loc["retained", "n"] == 3
    assert f.loc["retained", "installed"] == 3 and not f.loc["retained", "routed"]
    assert f.loc["d_accuracy_vs_sft", "n"] == 6
    m = proportions.mcnemar(np.array([1, 1, 1, 0, 1, 0], bool), np.array([1, 0, 0, 0, 1, 1], bool))
    assert f.loc["d_accuracy_vs_sft", "estimate"] == m.statistic and abs(m.statistic) == pytest.approx(1 / 6)
    assert f.loc["d_accuracy_vs_sft", "pvalue"] == m.pvalue


def _tables():
    inputs = _inputs()
    table = cf.per_stack(inputs, n_resamples=99)
    add = cf.additivity(inputs, n_permutations=99)
    gee = cf.interactions(inputs)
    forgetting = cf.forgetting(inputs)
    orders = pd.DataFrame([stats.Result(0.1, stats.ConfidenceInterval(0.0, 0.2), 60, "McNemar", 0.03).row(
                               order="dpo+sft", against="sft+dpo", measure="d_accuracy"),
                           stats.Result(0.4, stats.ConfidenceInterval(0.3, 0.5), 60, "boot").row(
                               order="dpo+sft", against="sft+dpo", measure="kl"),
                           stats.Result(0.02, stats.ConfidenceInterval(-0.01, 0.05), 60, "perm", 0.2).row(
                               order="dpo+sft", against="sft+dpo", measure="d_p_true")])
    return inputs, table, add, gee, forgetting, orders


def test_prediction_against_the_main_effects_model():
    inputs, table, add, gee, _, _ = _tables()
    pred = cf.prediction(inputs, table, add, gee.main).set_index("stack")
    coef = gee.main.set_index("term").estimate
    assert pred.loc["sft+dpo", "additive_logit"] == pytest.approx(expit(coef["Intercept"] + coef["sft"] + coef["dpo"]))
    assert pred.loc["sft", "additive"] == pred.loc["sft", "estimate"]   # a single step predicts itself
    assert pred.loc["sft+dpo", "additive"] == pytest.approx(
        add[(add.outcome == "correct_post")].set_index("stack").loc["sft+dpo", "additive"])


def test_tests_and_numbers():
    inputs, table, add, gee, forgetting, orders = _tables()
    family = cf.tests(add, gee, forgetting, orders)
    assert list(family.test) == ["additivity correct_post: sft+dpo", "additivity p_true_post: sft+dpo",
                                 "additivity kl: sft+dpo", "GEE interaction sft:dpo", "GEE joint interactions",
                                 "forgetting vs sft: sft+dpo", "order accuracy: dpo+sft", "order p_true: dpo+sft"]
    ok = family.pvalue.notna()
    np.testing.assert_allclose(family.pvalue_holm[ok], stats.adjust(family.pvalue[ok].to_numpy()))
    n = cf.numbers(table, add, gee, forgetting, orders, family)
    holm = dict(zip(family.test, family.pvalue_holm))
    assert {"base_accuracy", "sft_dpo_kl", "sft_dpo_ece", "sft_dpo_correct_post_excess", "gee_sft_dpo",
            "gee_joint_interactions", "sft_dpo_retained", "sft_dpo_vs_sft_train_d_accuracy", "order_dpo_sft_d_accuracy",
            "order_dpo_sft_kl", "order_dpo_sft_d_p_true", "tests_supported", "tests_total"} <= set(n)
    assert n["sft_dpo_kl"].method == "mean KL(stack || base), bootstrap" and np.isnan(n["sft_dpo_kl"].pvalue)
    assert n["gee_sft_dpo"].n == gee.n and n["gee_sft_dpo"].pvalue == holm["GEE interaction sft:dpo"]
    assert n["order_dpo_sft_d_accuracy"].pvalue == holm["order accuracy: dpo+sft"]
    assert n["order_dpo_sft_d_p_true"].pvalue == holm["order p_true: dpo+sft"]
    assert n["order_dpo_sft_kl"].statistic == 0.4 and np.isnan(n["order_dpo_sft_kl"].pvalue)
    assert n["sft_dpo_vs_sft_train_d_accuracy"].method == "McNemar exact, Holm"
    assert n["tests_total"] == len(family) and n["tests_supported"] == int(family.supported.sum())


def test_in_form_is_the_whole_analysis_in_the_other_form_with_its_name(monkeypatch):
    inputs, table, add, gee, forgetting, orders = _tables()
    forms = []

    def load(profile, *, form="qa"):
        forms.append(form)
        return inputs
    monkeypatch.setattr(cf, "load", load)
    monkeypatch.setattr(cf, "orders", lambda inputs, **kw: orders)   # orders need score tables; tested apart
    got = cf.in_form(None, "statement", n_resamples=99, n_permutations=99)
    want = cf.numbers(table, add, gee, forgetting, orders, cf.tests(add, gee, forgetting, orders))
    assert forms == ["statement"] and set(got) == {f"statement_{k}" for k in want}
    assert got["statement_gee_sft_dpo"].statistic == pytest.approx(want["gee_sft_dpo"].statistic)
    assert got["statement_sft_dpo_vs_sft_train_d_accuracy"].pvalue == want["sft_dpo_vs_sft_train_d_accuracy"].pvalue
    shown = cf.quoted(got)   # the notebook shows the other form's numbers as it shows the deployment form's
    assert {"statement_gee_sft_dpo", "statement_order_dpo_sft_d_accuracy", "statement_sft_dpo_vs_sft_train_d_accuracy",
            "statement_tests_total"} <= set(shown)


def test_in_form_names_a_bad_form_before_loading():
    with pytest.raises(ValueError, match="form='chat'"):
        cf.in_form(None, "chat")


def test_forgetting_when_sft_installed_nothing_is_not_estimable():
    inputs = _inputs()
    train = {k: v.assign(correct_base=True) for k, v in inputs.train.items()}   # the base already knew every fact
    f = cf.forgetting(cf.Inputs("statement", inputs.steps, inputs.plan, inputs.pairs, {}, inputs.costs,
                                inputs.heldout, train)).set_index("measure")
    assert np.isnan(f.loc["retained", "estimate"]) and "installed no train fact in the statement form" in \
        f.loc["retained", "reason"]
    assert f.loc["d_accuracy_vs_sft", "pvalue"] == pytest.approx(
        proportions.mcnemar(train["sft"].correct_post.to_numpy(), train["sft+dpo"].correct_post.to_numpy()).pvalue)


# ------------------------------------------------------------------------------ LoRA against full SFT (lora_sweep)
def test_lora_compares_the_profiles_sweep(monkeypatch):
    from dint.analyses import lora_sweep
    from dint.pipeline.config import load_profile
    from test_lora_sweep import sweep_table

    P = load_profile("tiny")
    seen = []
    monkeypatch.setattr(lora_sweep, "sweep", lambda profile, **kw: seen.append(profile) or sweep_table())
    c = cf.lora(P, n_resamples=99, n_permutations=99)
    assert seen == [P]
    n = cf.lora_numbers(c)
    want = lora_sweep.numbers(lora_sweep.compare_methods(sweep_table(), n_resamples=99, n_permutations=99))
    assert set(n) == set(want) and n["lora_matched_forgetting"].statistic == want["lora_matched_forgetting"].statistic
    _, table, add, gee, forgetting, orders = _tables()
    old = cf.numbers(table, add, gee, forgetting, orders, cf.tests(add, gee, forgetting, orders))
    assert not set(n) & set(old)   # new keys only: nothing of the notebook's own numbers is overwritten


def test_lora_on_a_real_profile_is_not_swept(monkeypatch):
    from dint.analyses import lora_sweep
    from dint.pipeline.config import load_profile

    monkeypatch.setattr(lora_sweep, "sweep", lambda *a, **k: pytest.fail("a real profile must not be swept"))
    c = cf.lora(load_profile("real-smoke"))
    assert "not swept" in c.reason and cf.lora_numbers(c) == {} and c.table.empty and c.runs.empty


def test_figure_adds_the_lora_panels():
    import matplotlib.pyplot as plt

    from dint.analyses import lora_sweep
    from test_lora_sweep import sweep_table

    inputs, table, add, gee, forgetting, orders = _tables()
    predicted = cf.prediction(inputs, table, add, gee.main)
    lora = lora_sweep.compare_methods(sweep_table(), n_resamples=99, n_permutations=99)
    without = cf.figure(table, predicted, gee, forgetting, orders)
    fig = cf.figure(table, predicted, gee, forgetting, orders, lora)
    assert len(without.axes) == 6 and len(fig.axes) == 9
    assert fig.axes[6].get_xscale() == "log" and fig.axes[8].get_title(loc="left") == "(i)"
    plt.close("all")
