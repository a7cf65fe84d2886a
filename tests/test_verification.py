"""Tests for dint.analyses.verification (notebook 07): tidy cards, the systems' tables and the quoted numbers."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dint import card, stats
from dint.analyses import verification
from synthetic import score_tables


def _inputs():
    facts, base = score_tables(seed=0, sharp=2.0)
    _, sharp = score_tables(seed=0, sharp=4.0)      # the same facts and truths, sharper answers
    return verification.Inputs(world=SimpleNamespace(facts=facts), form="qa", base_scores=base,
                               models={"base": base, "sft+rag": sharp}, items=None, proxy=None, highlight=("base",))


def test_cards_are_tidy_and_match_card():
    inputs = _inputs()
    t = verification.cards(inputs, n_resamples=200, seed=0)
    assert list(t.columns) == ["model", "measure", *stats.ROW, "n_facts"]
    assert t.measure.tolist() == list(verification.CARD_MEASURES) * 2
    c = card.card("sft+rag", inputs.base_scores, inputs.models["sft+rag"], inputs.world.facts, split="heldout",
                  n_resamples=200, rng=0)
    row = t[(t.model == "sft+rag") & (t.measure == "accuracy")].iloc[0]
    assert (row.estimate, row.ci_low, row.ci_high, row.n) == (c.accuracy.statistic, *(
        c.accuracy.confidence_interval.low, c.accuracy.confidence_interval.high), c.accuracy.n)
    assert (t.n_facts == c.n).all()
    kl = t[(t.model == "base") & (t.measure == "kl_from_base")].iloc[0]
    assert kl.estimate == pytest.approx(0.0, abs=1e-12)                                   # the base against itself


def test_system_key():
    assert verification.system_key("confidence") == "confidence"
    assert verification.system_key("learned verifier") == "learned"
    assert verification.system_key("store (clean)") == "store"
    assert verification.system_key("store (0.2 stale)") == "store_stale"
    assert verification.system_key("store (corpus)") == "store_corpus"


def _systems():
    """A `Systems.table` of two models and two systems, by hand."""
    rows = []
    for i, model in enumerate(("base", "sft+rag")):
        for j, system in enumerate(("confidence", "store (0.2 stale)")):
            error = 0.02 + 0.04 * i + 0.01 * j
            mean_error = 0.03 + 0.03 * i
            results = {"error": stats.Result(error, stats.ConfidenceInterval(error - 0.01, error + 0.01), 100,
                                             "Wilson; exact binomial test error > alpha", 0.001 * (1 + i + j)),
                       "coverage": stats.Result(0.5 + 0.1 * j, stats.ConfidenceInterval(0.4, 0.7), 100, "Wilson"),
                       "mean_error": stats.Result(mean_error, stats.ConfidenceInterval(0.02, 0.07), 20,
                                                  "mean over random splits, t interval; t-test mean > alpha",
                                                  0.2 if i == 0 else 0.004),
                       "mean_coverage": stats.Result(0.4 + 0.2 * i + 0.1 * j, stats.ConfidenceInterval(0.3, 0.8), 20,
                                                     "mean over random splits, t interval"),
                       "selective_accuracy": stats.proportion(40, 50),
                       "error_unverified": stats.proportion(30, 100)}
            plain = {"threshold": 0.5, "n_calibration": 100, "within_guarantee": error <= 0.05, "compatible": True,
                     "worst_split": 0.09, "mean_within": mean_error <= 0.05}
            rows += [{**r.row(model=model, system=system, measure=m), **plain} for m, r in results.items()]
    return stats.holm(pd.DataFrame(rows))


def test_wide_and_summary():
    t = _systems()
    w = verification.wide(t)
    assert w[["model", "system"]].values.tolist() == [["base", "confidence"], ["base", "store (0.2 stale)"],
                                                      ["sft+rag", "confidence"], ["sft+rag", "store (0.2 stale)"]]
    assert w.error.tolist() == pytest.approx([0.02, 0.03, 0.06, 0.07])
    assert w.error_pvalue_holm.tolist() == t[t.measure == "error"].pvalue_holm.tolist()
    s = verification.summary(t)
    assert s.index.tolist() == ["confidence", "store (0.2 stale)"]
    assert s.loc["confidence", "worst_error"] == pytest.approx(0.06) and s.loc["confidence", "within"] == 1
    assert s.loc["store (0.2 stale)", "mean_within"] == 1 and s.loc["confidence", "models"] == 2
    assert s.loc["confidence", "coverage_min"] == pytest.approx(0.4)
    assert s.loc["store (0.2 stale)", "coverage_max"] == pytest.approx(0.7)


def test_numbers_names_and_methods():
    t = _systems()
    cards = pd.DataFrame([{**stats.proportion(3, 10).row(model="sft+rag", measure="accuracy"), "n_facts": 12}])
    n = verification.numbers(cards, t, alpha=0.05, n_splits=20)
    acc = n["card_sft_rag_accuracy"]
    assert (acc.statistic, acc.n, acc.method) == (0.3, 12, "accuracy") and np.isnan(acc.pvalue)
    e = n["verify_sft_rag_store_stale_error"]
    assert e.method == "Wilson; exact binomial test error > alpha, Holm"
    assert e.pvalue == t[(t.model == "sft+rag") & (t.system == "store (0.2 stale)") & (t.measure == "error")
                         ].pvalue_holm.item()
    assert n["verify_base_confidence_coverage"].method == "Wilson"                    # no test, no Holm
    assert np.isnan(n["verify_base_confidence_coverage"].pvalue)
    assert n["verify_base_confidence_mean_coverage"].n == 20
    assert not any("selective_accuracy" in k or "error_unverified" in k for k in n)
    assert n["verify_confidence_worst_error"] == pytest.approx(0.06) and n["verify_store_stale_within"] == 1
    assert n["verify_models"] == 1 and n["verify_alpha"] == 0.05 and n["verify_n_splits"] == 20
    # Holm over the 8 tests: 4 error tests (p 0.001-0.003, all rejected) and 4 mean tests (0.2, 0.2, 0.004, 0.004)
    assert n["verify_rejections"] == 4 and n["verify_mean_rejections"] == 2
    assert np.isnan(n["kl_accuracy_corr"].statistic) and "needs 4 or more" in n["kl_accuracy_corr"].reason


def test_kl_accuracy_leaves_out_the_base_and_retrieval():
    models = {"base": (0.0, 0.05), "sft": (1.0, 0.3), "dpo": (2.0, 0.2), "rl": (3.0, 0.1), "sft+dpo": (2.5, 0.25),
              "rag": (4.0, 0.8), "sft+rag": (4.1, 0.82)}
    cards = pd.DataFrame([r for m, (kl, acc) in models.items() for r in (
        stats.Result(kl, stats.ConfidenceInterval(kl, kl), 10, "m").row(model=m, measure="kl_from_base"),
        stats.Result(acc, stats.ConfidenceInterval(acc, acc), 10, "m").row(model=m, measure="accuracy"))])
    r = verification.kl_accuracy(cards)
    built = ["sft", "dpo", "rl", "sft+dpo"]
    assert r.n == 4 and r.statistic == pytest.approx(stats.pearson([models[m][0] for m in built],
                                                                    [models[m][1] for m in built]).statistic)


def test_systems_iv():
    with pytest.raises(ValueError, match="alpha=1.5"):
        verification.systems(_inputs(), alpha=1.5)
    with pytest.raises(ValueError, match="calibration_share=0"):
        verification.systems(_inputs(), calibration_share=0)


def test_store_systems_look_up_by_entity_and_relation(micro_world):
    """The corpus store has no document for a never-stated fact: its system rejects that fact's answers, and the
    oracle store accepts the true value of every fact."""
    from dint import verify
    from dint.interventions import retrieval

    facts = micro_world.facts
    unseen = facts[(facts.type == "unseen") & (facts.split == "heldout")].head(2)
    refs = {"store (clean)": verify.ReferenceVerifier(retrieval.build_store(micro_world)),
            "store (corpus)": verify.ReferenceVerifier(retrieval.corpus_store(micro_world))}
    items = unseen[["fact", "entity", "relation"]]
    assert refs["store (clean)"].check(items, unseen.value.tolist()).all()
    assert not refs["store (corpus)"].check(items, unseen.value.tolist()).any()
