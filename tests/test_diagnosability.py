"""Tests for dint.analyses.diagnosability (notebook 03) on synthetic classified items: the tidy tables, the one
Holm family and the names of the numbers."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from dint import agreement, stats, taxonomy
from dint.analyses import diagnosability as D

CLASSES = ["imitative", "regression", "selection", "absent_support"]
MODELS = ["sft", "dpo", "rag"]


@pytest.fixture(scope="module")
def diagnosis():
    """Three models, 40 held-out facts in two forms; the class is the known cause 70% of the time."""
    rng = np.random.default_rng(0)
    rows = []
    for m, rate in zip(MODELS, (0.5, 0.45, 0.3)):
        for f in range(40):
            for form in ("qa", "statement"):
                err = bool(rng.random() < rate)
                cause = CLASSES[rng.integers(4)]
                cls = (cause if rng.random() < 0.7 else CLASSES[rng.integers(4)]) if err else None
                rows.append({"intervention": m, "fact": f, "form": form, "error": err, "class": cls,
                             "cause": cause if err else None, "ambiguous": err and f % 5 == 0,
                             "p_true_post": rng.uniform(0.0, 0.4 if err else 1.0), "p_true_base": rng.random(),
                             "base_rate": 0.1, "correct_base": bool(rng.random() < 0.3)})
    items = pd.DataFrame(rows)
    return D.Diagnosis(items, items[items.error], None, None, MODELS)


@pytest.fixture(scope="module")
def analysed(diagnosis):
    agreement = D.agreement(diagnosis.errors, n_resamples=60, seed=0)
    compositions = D.compositions(diagnosis, margin=0.2, n_resamples=60, n_permutations=99, seed=0)
    pass_at_k = D.pass_at_k(diagnosis, k_max=8, n_resamples=60, seed=0)
    tests = D.tests(agreement, compositions, pass_at_k)
    return agreement, compositions, pass_at_k, tests


def test_load_and_deploy_iv():
    from dint.pipeline.config import load_profile

    P = load_profile("smoke")   # nothing of it is built: each input is checked before anything is loaded
    with pytest.raises(ValueError, match="interventions: \\['reward'\\]"):
        D.load(P, ["sft", "reward"])
    with pytest.raises(ValueError, match="interventions: empty"):
        D.load(P, [])
    with pytest.raises(ValueError, match="k_max=4"):
        D.load(P, ["sft"], k_max=4)
    with pytest.raises(ValueError, match="stale_share=2"):
        D.deploy_rag(None, None, stale_share=2)
    assert "reward" not in D.answering() and "sft_sham" not in D.answering() and "sft" in D.answering()


def test_agreement_tables(diagnosis, analysed):
    tables = analysed[0]
    k = tables.kappas
    assert list(k.columns) == ["label", "subset", *stats.ROW, "observed"]
    assert list(dict.fromkeys(k.label)) == ["pooled", *MODELS]
    pooled = k[(k.label == "pooled") & (k.subset == "all errors")].iloc[0]
    assert pooled["n"] == len(diagnosis.errors) and pooled["estimate"] == tables.pooled.statistic
    ref = agreement.agreement(diagnosis.errors["class"], diagnosis.errors["cause"])
    assert pooled["estimate"] == pytest.approx(ref.statistic)          # the same κ, another interval
    assert list(tables.by_form.columns) == ["intervention", "form", *stats.ROW]
    assert len(tables.by_form) == len(MODELS) * 2
    assert D.ambiguous(diagnosis).index.tolist() == MODELS


def test_one_holm_family_and_similar_pairs(analysed):
    agreement, compositions, pass_at_k, tests = analysed
    assert list(tests.columns) == ["family", "test", "name", *stats.ROW, "pvalue_holm"]
    assert list(dict.fromkeys(tests.family)) == ["kappa", "kappa by form", "composition", "pass excess over guess"]
    n_pairs = len(MODELS) * (len(MODELS) - 1) // 2
    assert (tests.family == "composition").sum() == n_pairs
    assert (tests.family == "pass excess over guess").sum() == 2 * len(CLASSES)     # k = 1, 8 and k_max (= 8)
    ok = tests.pvalue.notna()
    np.testing.assert_allclose(tests.pvalue_holm[ok], stats.adjust(tests.pvalue[ok].to_numpy(), method="holm"))
    assert tests.name.is_unique and "kappa_pooled_norare" in set(tests.name)
    similar = D.similar(compositions, tests)
    pairs = compositions.pairs
    assert len(similar) == 2 * pairs[pairs.measure == "tv"].similar_accuracy.sum()
    tv = similar[similar.measure == "tv"]
    holm = tests.set_index("name").pvalue_holm
    np.testing.assert_array_equal(tv.pvalue_holm, holm.loc["composition_" + tv.a + "_vs_" + tv.b])
    assert similar[similar.measure == "d_accuracy_tost"].pvalue_holm.isna().all()


def test_pass_at_k_tables(diagnosis, analysed):
    pass_at_k = analysed[2]
    assert list(dict.fromkeys(pass_at_k.curves.intervention)) == ["base", *MODELS]
    base = pass_at_k.curves[(pass_at_k.curves.intervention == "base") & (pass_at_k.curves.k == 1)].iloc[0]
    first = diagnosis.items[diagnosis.items.intervention == MODELS[0]]
    assert base["estimate"] == pytest.approx(first.p_true_base.mean())       # pass@1 = mean p_true
    assert (pass_at_k.excess.measure == "excess").all() and set(pass_at_k.excess.k) == {1, 8}
    assert pass_at_k.quoted().shape == (4, 2)
    merged = pass_at_k.by_class_with_guess()
    np.testing.assert_allclose(merged.loc[merged.k == 2, "pass_guess"], 1 - 0.9 ** 2)


def test_numbers_names_and_values(diagnosis, analysed):
    agreement, compositions, pass_at_k, tests = analysed
    similar = D.similar(compositions, tests)
    inputs = D.Inputs(None, None, {}, pd.DataFrame({"fact": range(40)}))
    out = D.numbers(inputs=inputs, diagnosis=diagnosis, agreement=agreement, compositions=compositions,
                    pass_at_k=pass_at_k, tests=tests, similar=similar, stale_share=0.3)
    assert out["n_heldout_facts"] == 40 and out["n_items_per_model"] == 80 and out["stale_share"] == 0.3
    row = tests.set_index("name").loc["kappa_dpo_all"]
    r = out["kappa_dpo_all"]
    assert (r.statistic, r.pvalue, r.n) == (row.estimate, row.pvalue_holm, row.n)
    assert r.method == row.method + ", Holm"
    assert out["kappa_rag_statement"].method == "Cohen's kappa (statsmodels ASE), Holm"
    share = compositions.shares.set_index(["intervention", "class"]).loc[("sft", "selection")]
    assert out["share_sft_selection"].statistic == share.estimate and out["share_sft_selection"].method == D.SHARE_METHOD
    assert out["share_sft_selection"].n == out["errors_sft"] == int(diagnosis.errors.intervention.eq("sft").sum())
    assert out["composition_sft_vs_dpo"].pvalue == tests.set_index("name").pvalue_holm["composition_sft_vs_dpo"]
    d = compositions.pairs.set_index(["a", "b", "measure"]).loc[("sft", "dpo", "d_accuracy")]
    assert out["d_accuracy_sft_vs_dpo"].statistic == d.estimate and np.isnan(out["d_accuracy_sft_vs_dpo"].pvalue)
    assert out["similar_pairs"] == int(compositions.pairs[compositions.pairs.measure == "tv"].similar_accuracy.sum())
    assert {f"pass{k}_{m}" for k in (1, 8) for m in ["base", *MODELS]} <= set(out)
    assert out["pass8_excess_selection"].method == D.EXCESS_METHOD
    assert out["accuracy_only_kappa"] == 0.0
    assert {"pooled_selection_precision", "pooled_selection_recall"} <= set(out)
    quoted = D.quoted(out)
    assert list(quoted.index[:2]) == ["kappa_pooled_all", "kappa_pooled_norare"] and "similar_pairs" in quoted.index


@pytest.fixture(scope="module")
def world_case():
    """A small world; random answer distributions of the base and two models on its held-out facts, both forms."""
    from dint import world as world_mod
    w = world_mod.build(world_mod.WorldConfig(n_entities=60), seed=0)
    heldout = w.facts[w.facts.split == "heldout"]
    rng = np.random.default_rng(0)

    def scores(sharp):
        rows = []
        for f in heldout.itertuples():
            values = w.values[f.relation]
            for form in ("qa", "statement"):
                p = rng.dirichlet(np.full(len(values), sharp))
                rows += [{"fact": f.fact, "form": form, "candidate": j, "answer": v, "p_set": p[j],
                          "is_true": v == f.value} for j, v in enumerate(values)]
        return pd.DataFrame(rows)

    base = scores(0.3)
    models = {"sft": scores(0.3), "dpo": scores(0.5)}
    inputs = D.Inputs(w, base, models, heldout)
    items = taxonomy.diagnose(w, base, models, split="heldout")
    diagnosis = D.Diagnosis(items, items[items.error], None, None, list(models))
    grid = {"absent_factor": (1.0, 2.0, 4.0), "selection_mass": (0.1, 0.3)}
    wa = D.world_agreement(inputs, diagnosis, D.Deployment(models, {}), {"sft": set(), "dpo": set()}, grid=grid,
                           n_resamples=60, seed=0)
    return inputs, diagnosis, wa


def test_world_agreement_tables(world_case):
    from dint import causes
    inputs, diagnosis, wa = world_case
    e = wa.errors
    assert len(e) == len(diagnosis.errors) and e["class"].tolist() == diagnosis.errors["class"].tolist()
    assert set(wa.kappas.name) == set(D.WORLD_NUMBERS.values()) and wa.kappas.name.is_unique
    assert list(wa.kappas.columns) == ["reference", "label", "subset", *stats.ROW, "name"]
    k = wa.kappas.set_index("name").estimate
    # no model output enters the world's causes: the same errors of another model get the same cause
    assert e.groupby("fact").world_cause.nunique().max() == 1
    assert k["kappa_world_vs_oneline"] == pytest.approx(k["kappa_world_full_taxonomy"] - k["kappa_world_full_oneline"])
    assert k["kappa_world_oneline"] == 0                  # one class at the world's resolution: accuracy alone
    assert k["kappa_oneline_pooled_all"] == pytest.approx(agreement.kappa(causes.one_line(e), e["cause"]))
    assert k["kappa_world_crossfit"] == pytest.approx(agreement.kappa(causes.at_world_resolution(e.class_crossfit),
                                                                     causes.at_world_resolution(e.world_cause)))
    assert k["kappa_world_default"] == pytest.approx(agreement.kappa(causes.at_world_resolution(e["class"]),
                                                                    causes.at_world_resolution(e.world_cause)))
    # every error classified with the thresholds fitted on the other half of the facts
    assert list(wa.fitted.fitted_on) == [0, 1] and set(e.fold) == {0, 1}
    assert wa.counts.sum() == len(e) and wa.counts["regression"] == 0
    assert wa.kappas.set_index("name").loc["kappa_world_crossfit_norare", "n"] == int((~e.rare).sum())


def test_world_agreement_in_numbers_and_figure(world_case, diagnosis, analysed):
    inputs, wdiag, wa = world_case
    agreement, compositions, pass_at_k, tests = analysed
    similar = D.similar(compositions, tests)
    base = dict(inputs=D.Inputs(None, None, {}, pd.DataFrame({"fact": range(40)})), diagnosis=diagnosis,
                agreement=agreement, compositions=compositions, pass_at_k=pass_at_k, tests=tests, similar=similar,
                stale_share=0.3)
    before = D.numbers(**base)
    out = D.numbers(**base, world=wa)
    assert set(out) - set(before) == set(D.WORLD_NUMBERS.values()) | {f"n_world_{c}" for c in wa.counts.index}
    assert all(out[k] == before[k] for k in before if not isinstance(before[k], stats.Result))
    assert out["kappa_world_vs_oneline"].method.startswith("paired difference of Cohen's kappa")
    assert out["n_world_regression"] == 0
    assert "kappa_world_crossfit" in D.quoted(out).index
    fig = D.figure(compositions=compositions, agreement=agreement, pass_at_k=pass_at_k, world=wa)
    assert len([ax for ax in fig.axes if ax.get_visible()]) >= 6
    # a world without a corpus (the real profile): panel (f) says why, and the figure still reads at print size
    from dint import plot
    empty = D.WorldAgreement(**{**{f.name: getattr(wa, f.name) for f in dataclasses.fields(wa)},
                                "kappas": wa.kappas.head(0), "reason": "the world has no corpus to count (real facts: "
                                "the corpus behind a pretrained model is not known), so no cause comes from it alone"})
    fig = D.figure(compositions=compositions, agreement=agreement, pass_at_k=pass_at_k, world=empty)
    assert plot.print_problems(fig) == []


def test_world_agreement_without_a_corpus(world_case):
    from types import SimpleNamespace
    inputs, diagnosis, _ = world_case
    real = D.Inputs(SimpleNamespace(facts=inputs.world.facts), inputs.base_scores, inputs.scores, inputs.heldout)
    wa = D.world_agreement(real, diagnosis, D.Deployment(inputs.scores, {}), {}, n_resamples=10)
    assert wa.reason and wa.kappas.empty
    assert D.taught(None, real, D.Deployment(inputs.scores, {})) == {}


def test_world_agreement_with_few_errors(world_case):
    """One fact with errors: κ without an interval and a difference that is not estimable, never an exception."""
    inputs, diagnosis, _ = world_case
    first = diagnosis.errors.fact.iloc[0]
    few = D.Diagnosis(diagnosis.items, diagnosis.errors[diagnosis.errors.fact == first], None, None, diagnosis.models)
    wa = D.world_agreement(inputs, few, D.Deployment(inputs.scores, {}), {}, grid={"absent_factor": (1.0, 2.0)},
                           n_resamples=20)
    k = wa.kappas.set_index("name")
    assert "fewer than two facts" in k.loc["kappa_world_vs_oneline", "reason"]
    assert np.isnan(k.loc["kappa_world_crossfit", "ci_low"])
    assert (wa.fitted.reason != "").any()                 # one half has no errors: the defaults stand there
