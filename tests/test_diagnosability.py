"""Tests for dint.analyses.diagnosability (notebook 03) on synthetic classified items: the tidy tables, the one
Holm family and the names of the numbers."""
import numpy as np
import pandas as pd
import pytest

from dint import stats, taxonomy
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
    with pytest.raises(ValueError, match="interventions: \\['reward'\\]"):
        D.load(None, ["sft", "reward"])
    with pytest.raises(ValueError, match="interventions: empty"):
        D.load(None, [])
    with pytest.raises(ValueError, match="k_max=4"):
        D.load(None, ["sft"], k_max=4)
    with pytest.raises(ValueError, match="stale_share=2"):
        D.deploy_rag(None, None, stale_share=2)
    assert "reward" not in D.answering() and "sft_sham" not in D.answering() and "sft" in D.answering()


def test_agreement_tables(diagnosis, analysed):
    agreement = analysed[0]
    k = agreement.kappas
    assert list(k.columns) == ["label", "subset", *stats.ROW, "observed"]
    assert list(dict.fromkeys(k.label)) == ["pooled", *MODELS]
    pooled = k[(k.label == "pooled") & (k.subset == "all errors")].iloc[0]
    assert pooled["n"] == len(diagnosis.errors) and pooled["estimate"] == agreement.pooled.statistic
    ref = taxonomy.agreement(diagnosis.errors["class"], diagnosis.errors["cause"])
    assert pooled["estimate"] == pytest.approx(ref.statistic)          # the same κ, another interval
    assert list(agreement.by_form.columns) == ["intervention", "form", *stats.ROW]
    assert len(agreement.by_form) == len(MODELS) * 2
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
