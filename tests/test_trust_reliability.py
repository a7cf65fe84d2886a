"""dint.analyses.trust_reliability (notebook 04): its tables, the Holm family and the names in numbers.json."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dint import calibration, stats
from dint.analyses import reliability, trust_reliability as tr
from synthetic import score_tables


def _inputs():
    facts, a = score_tables(n_per_relation=(30, 24), seed=3)
    _, b = score_tables(n_per_relation=(30, 24), seed=4, sharp=4.0)
    b = b.assign(is_true=a.is_true.to_numpy())
    conditions = {"base": a, "sft": b, "rlhf": b.assign(p_set=a.p_set.to_numpy() * 0.5 + b.p_set.to_numpy() * 0.5)}
    answers = {m: reliability.answer_table(s, facts) for m, s in conditions.items()}
    held = {m: x[x.split == "heldout"] for m, x in answers.items()}
    return tr.Inputs(SimpleNamespace(facts=facts), ("sft", "rlhf"), conditions, held)


def test_load_iv():
    from dint.pipeline.config import load_profile

    with pytest.raises(ValueError, match=r"interventions=\['reward'\]"):
        tr.load(load_profile("smoke"), interventions=["sft", "reward"])   # checked before anything is loaded


def test_name_against_theory():
    assert tr.name("base (statement)", None, "ece") == "base_statement_ece"
    assert tr.name("sft", "base (statement)", "d_ece") == "sft_vs_base_statement_d_ece"
    assert tr.name("sft", "unscaled", "d_ece_train") == "sft_d_ece_train"
    assert tr.name("rlhf", "sft", "d_entropy") == "rlhf_vs_sft_d_entropy"


def test_calibration_tables_tidy_diagrams():
    inputs = _inputs()
    cal = tr.calibration_tables(inputs, n_bins=5, n_resamples=99)
    assert list(cal.diagrams.columns) == ["model", "bin_low", "bin_high", "confidence", "measure", *stats.ROW]
    a = inputs.held["sft"]
    d = calibration.reliability_diagram(a.confidence, a.correct, n_bins=5)
    got = cal.diagrams[cal.diagrams.model == "sft"]
    np.testing.assert_array_equal(got.estimate, d.accuracy)
    np.testing.assert_array_equal(got.ci_low, d.accuracy_low)
    np.testing.assert_array_equal(got.n, d.n)
    assert list(dict.fromkeys(cal.diagrams.model)) == ["base", "sft", "rlhf"]
    assert set(cal.summary.columns) >= set(stats.ROW)


def test_diversity_tables_add_rlhf_against_sft():
    div = tr.diversity_tables(_inputs(), n_resamples=99, n_test_resamples=99)
    refs = div.changes.groupby("reference").model.unique()
    assert list(refs["base"]) == ["sft", "rlhf"] and list(refs["sft"]) == ["rlhf"]
    assert set(div.summary.measure) == {"entropy", "distinct", "across"}


def _everything():
    rows = [stats.Result(0.1, stats.ConfidenceInterval(0.0, 0.2), 50, "ECE").row(model="sft", reference=None, measure="ece"),
            stats.Result(0.05, stats.ConfidenceInterval(0.01, 0.09), 50, "paired", 0.01).row(
                model="sft", reference="base (statement)", measure="d_ece"),
            stats.Result(1.5, stats.ConfidenceInterval(1.1, 2.0), 50, "T", 0.04).row(model="base (statement)",
                                                                                    reference=None, measure="t_train"),
            {"model": "sft", "reference": None, "measure": "aurc", "estimate": 0.3, "ci_low": np.nan, "ci_high": np.nan,
             "pvalue": np.nan, "n": np.nan, "method": "AURC", "reason": ""}]
    return pd.DataFrame(rows)


def test_tests_holm_one_family():
    t = tr.tests(_everything())
    np.testing.assert_allclose(t.tests.pvalue_holm, stats.adjust([0.01, 0.04]))
    assert len(t.everything) == 4 and np.isnan(t.everything.pvalue_holm.iloc[0])


def test_numbers_names_and_holm():
    t = tr.tests(_everything())
    div = pd.DataFrame([stats.Result(1.2, stats.ConfidenceInterval(1.0, 1.4), 50, "t").row(
        model="sft", reference=None, measure="entropy")])
    n = tr.numbers(t.everything, div)
    assert list(n)[:5] == ["sft_ece", "sft_vs_base_statement_d_ece", "base_statement_t_train", "sft_aurc", "sft_entropy"]
    d = n["sft_vs_base_statement_d_ece"]
    assert d.pvalue == pytest.approx(0.02) and d.method == "paired, Holm-adjusted across the notebook"
    assert n["base_statement_t_train"].pvalue == pytest.approx(0.04)
    assert n["sft_ece"].method == "ECE" and np.isnan(n["sft_ece"].pvalue)
    assert n["sft_aurc"].n == 0 and n["sft_aurc"].statistic == 0.3
    assert n["sft_entropy"].confidence_interval == stats.ConfidenceInterval(1.0, 1.4) and np.isnan(n["sft_entropy"].pvalue)
    assert n["n_tests"] == 2 and n["n_significant_holm"] == 2
    assert n["gpt4_ece_ppo"] == 0.074 and n["kadavath_t"] == 2.5
    assert n["gpt4_ece_rise"] == pytest.approx(0.067)
    shown = tr.quoted(n)
    assert shown["sft_ece"][:3] == (0.1, 0.0, 0.2) and np.isnan(shown["sft_ece"][3])
    assert "sft_aurc" not in shown and shown["n_tests"] == 2


def _changes_and_inputs():
    facts, a = score_tables(n_per_relation=(30, 24), seed=3)
    _, b = score_tables(n_per_relation=(30, 24), seed=4, sharp=4.0)
    b = b.assign(is_true=a.is_true.to_numpy())

    def mix(w):
        return b.assign(p_set=a.p_set.to_numpy() * w + b.p_set.to_numpy() * (1 - w))
    conditions = {tr.STATEMENT: a, "base": mix(0.9), "sft": b, "dpo": mix(0.3), "rlhf": mix(0.5),
                  "sft (statement)": mix(0.8), "dpo (statement)": mix(0.6), "rlhf (statement)": mix(0.7)}
    answers = {m: reliability.answer_table(s, facts) for m, s in conditions.items()}
    held = {m: x[x.split == "heldout"] for m, x in answers.items()}
    inputs = tr.Inputs(SimpleNamespace(facts=facts), ("sft", "dpo", "rlhf"), conditions, held)
    return inputs, tr.calibration_changes(inputs, n_bins=5, n_resamples=99, n_test_resamples=99)


def test_calibration_changes_contrast_rlhf_and_dpo_with_sft_in_each_form():
    inputs, ch = _changes_and_inputs()
    conditions, held = inputs.conditions, inputs.held
    pairs = set(zip(ch.model, ch.reference))
    assert {("sft", "base"), ("rlhf", "sft"), ("dpo", "sft"), ("sft (statement)", "base (statement)"),
            ("rlhf (statement)", "sft (statement)"), ("dpo (statement)", "sft (statement)")} <= pairs
    # like with like: every contrast on the same prompts, never a model in one form against one in the other
    assert all(m.endswith(" (statement)") == r.endswith(" (statement)") for m, r in pairs), pairs
    # the registered numbers' names, and the same estimate as the paired comparison made directly
    names = {tr.name(m, r, x) for m, r, x in zip(ch.model, ch.reference, ch.measure)}
    assert {"dpo_vs_sft_d_ece_debiased", "rlhf_statement_vs_sft_statement_d_ece_debiased",
            "dpo_statement_vs_sft_statement_d_ece_debiased"} <= names
    direct = reliability.calibration_changes(held, "sft (statement)", models=["dpo (statement)"], n_bins=5,
                                             n_resamples=99, n_test_resamples=99, rng=0)
    got = ch[(ch.model == "dpo (statement)") & (ch.reference == "sft (statement)")]
    np.testing.assert_allclose(got.estimate.to_numpy(), direct.estimate.to_numpy())
    # without SFT's statement form, no statement-form contrast is made
    fewer = tr.Inputs(inputs.world, ("sft", "dpo", "rlhf"),
                      {k: v for k, v in conditions.items() if k != "sft (statement)"},
                      {k: v for k, v in held.items() if k != "sft (statement)"})
    refs = set(tr.calibration_changes(fewer, n_bins=5, n_resamples=99, n_test_resamples=99).reference)
    assert "sft (statement)" not in refs


def test_statement_names():
    assert tr.statement("sft") == "sft (statement)" and tr.statement("base") == tr.STATEMENT
    assert tr.name(tr.statement("dpo"), tr.statement("sft"), "d_ece_debiased") == \
        "dpo_statement_vs_sft_statement_d_ece_debiased"


def test_published_by_magnitude():
    inputs, ch = _changes_and_inputs()
    pub = tr.published(inputs, ch)
    assert list(pub.columns) == reliability.TIDY_COLUMNS
    rows = pub.set_index(["model", "reference", "measure"])
    for model, ref in tr.AGAINST_GPT4:
        ours = ch[(ch.model == model) & (ch.reference == ref) & (ch.measure == "d_ece")].iloc[0]
        diff = rows.loc[(model, ref, "d_ece_minus_gpt4")]
        np.testing.assert_allclose(diff[["estimate", "ci_low", "ci_high"]].to_numpy(float),
                                   ours[["estimate", "ci_low", "ci_high"]].to_numpy(float) - 0.067, atol=1e-12)
        assert np.isnan(diff.pvalue)   # an equivalence: judged by its interval
        ratio = rows.loc[(model, ref, "d_ece_ratio_gpt4")]
        assert ratio.estimate == pytest.approx(ours.estimate / 0.067)
        assert tr.name(model, ref, "d_ece_minus_gpt4") in {"rlhf_vs_sft_d_ece_minus_gpt4",
                                                          "rlhf_statement_vs_base_statement_d_ece_minus_gpt4"}
    k = pub[pub.measure == "log_t_heldout_vs_kadavath"].iloc[0]
    _, logp, labels = reliability.held_out(inputs.conditions["rlhf"], inputs.world.facts)
    t = reliability.temperature(logp, labels)
    assert np.exp(k.estimate) * 2.5 == pytest.approx(t.statistic)
    assert np.exp(k.ci_low) * 2.5 == pytest.approx(t.confidence_interval.low)
    assert k.pvalue == pytest.approx(reliability.temperature(logp, labels, null=2.5).pvalue)
    assert tr.name("rlhf", None, "log_t_heldout_vs_kadavath") == "rlhf_log_t_heldout_vs_kadavath"
    # without RLHF's statement form, only the QA contrast
    fewer = ch[ch.model != "rlhf (statement)"]
    assert set(tr.published(inputs, fewer).reference.dropna()) == {"sft"}


def test_same_prompt_changes_labels():
    _, ch = _changes_and_inputs()
    d = tr.same_prompt_changes(ch)
    assert set(d.measure) == {"d_ece", "d_ece_debiased"}
    assert set(d.model) == {"rlhf − sft (QA)", "dpo − sft (QA)", "rlhf − sft (statement)", "dpo − sft (statement)",
                            "sft − base (statement)", "dpo − base (statement)", "rlhf − base (statement)"}


def test_figure_headline_panel_is_same_prompt():
    import matplotlib.pyplot as plt

    inputs, ch = _changes_and_inputs()
    calib = tr.calibration_tables(inputs, n_bins=5, n_resamples=99)
    temps = tr.temperatures(SimpleNamespace(conditions={m: inputs.conditions[m] for m in ("base", "sft", "dpo", "rlhf")},
                                            world=inputs.world), n_bins=5, n_resamples=99, n_test_resamples=99)
    div = tr.diversity_tables(inputs, n_resamples=99, n_test_resamples=99)
    sweep = pd.DataFrame({"beta": [np.nan, np.nan, 0.01, 0.1], "kl_from_sft": [np.nan, 0.3, 0.8, 0.2],
                          "kl_from_sft ci_low": [np.nan, 0.2, 0.7, 0.1], "kl_from_sft ci_high": [np.nan, 0.4, 0.9, 0.3],
                          "t_heldout": [1.2, 1.5, 2.4, 1.4], "t_heldout ci_low": [1.1, 1.4, 2.2, 1.3],
                          "t_heldout ci_high": [1.3, 1.6, 2.6, 1.5]}, index=["sft", "dpo", "rl_beta_0.01", "rl_beta_0.1"])
    fig = tr.figure(calib, temps, tr.risk_coverage(inputs), div.changes, ch, sweep)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 9
    head = [t.get_text() for t in axes[0].get_yticklabels()]
    assert head and all(" − " in t and t.endswith(("(QA)", "(statement)")) for t in head)
    assert not any("base" in t and t.endswith("(QA)") for t in head)   # the base cannot answer the QA prompts
    statement_panel = {t.get_text() for t in axes[3].get_legend().get_texts()}
    assert statement_panel == {tr.STATEMENT, "sft (statement)", "dpo (statement)", "rlhf (statement)"}
    plt.close(fig)
