"""dint.analyses.stacks: stack names, the additive prediction, the factorial design, and one stack trained end to end."""
import numpy as np
import pandas as pd
import pytest

from dint.analyses import stacks


def test_plan_is_every_subset_in_canonical_order():
    assert len(stacks.PLAN) == 16 and stacks.PLAN[0] == ()
    assert len(set(stacks.PLAN)) == 16
    for s in stacks.PLAN:
        assert list(s) == sorted(s, key=stacks.STEPS.index)
    for pair in stacks.ORDERS:
        assert tuple(sorted(pair, key=stacks.STEPS.index)) in stacks.PLAN and tuple(pair) not in stacks.PLAN


def test_profile_plan_restricts_the_steps():
    from dint.pipeline.config import load_profile

    tiny = load_profile("tiny")
    assert stacks.plan(tiny) == stacks.PLAN and stacks.orders(tiny) == stacks.ORDERS
    P = load_profile("tiny", interventions={"stack_steps": ["sft", "dpo", "rag"]})
    assert stacks.plan(P) == ((), ("sft",), ("dpo",), ("rag",), ("sft", "dpo"), ("sft", "rag"), ("dpo", "rag"),
                              ("sft", "dpo", "rag"))
    assert stacks.orders(P) == (("dpo", "sft"),)
    # the plan is not how a model is trained: restricting it keeps every cached model valid
    from dint.pipeline import artifacts
    assert artifacts.intervention_manifest(P, "sft") == artifacts.intervention_manifest(tiny, "sft")
    for bad in (["sft"], ["dpo", "sft"], ["sft", "sft"], ["sft", "ppo"]):
        with pytest.raises(ValueError, match="interventions.stack_steps"):
            load_profile("tiny", interventions={"stack_steps": bad})


def test_names_round_trip_and_bad_stacks():
    assert stacks.name(()) == "base" and stacks.parse("base") == ()
    assert stacks.parse("sft+dpo+rl") == ("sft", "dpo", "rl") and stacks.name(("dpo", "sft")) == "dpo+sft"
    assert stacks.prefix("sft+dpo+rag") == ("sft", "dpo")
    with pytest.raises(ValueError, match="unknown step"):
        stacks.parse("sft+ppo")
    with pytest.raises(ValueError, match="twice"):
        stacks.parse("sft+sft")
    with pytest.raises(ValueError, match="rag .* last step"):
        stacks.parse("rag+sft")


def _items(values: dict, facts=("a", "b", "c", "d")):
    return {k: pd.DataFrame({"fact": list(facts), "correct_post": np.asarray(v, bool), "kl": np.asarray(v, float),
                             "p_true_post": np.asarray(v, float)}) for k, v in values.items()}


def test_additive_prediction_by_hand():
    t = pd.DataFrame({"stack": ["base", "sft", "dpo", "sft+dpo"], "estimate": [0.1, 0.4, 0.2, 0.3]})
    out = stacks.additive(t).set_index("stack")
    assert out.loc["sft+dpo", "additive"] == pytest.approx(0.1 + 0.3 + 0.1)
    assert out.loc["sft+dpo", "excess"] == pytest.approx(0.3 - 0.5)
    assert out.loc[["base", "sft", "dpo"], "excess"].abs().max() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="missing"):
        stacks.additive(t[t["stack"] != "dpo"])


def test_additivity_per_item():
    items = _items({"base": [0, 0, 1, 1], "sft": [1, 0, 1, 1], "dpo": [0, 1, 1, 0], "sft+dpo": [1, 1, 1, 1],
                    "dpo+sft": [0, 0, 0, 0]})
    out = stacks.additivity(items, n_permutations=999)
    assert list(out["stack"]) == ["sft+dpo"]          # order variants are not in the factorial comparison
    r = out.iloc[0]
    # per item: base + (sft - base) + (dpo - base) = [1, 1, 1, 0]; observed [1, 1, 1, 1]
    assert r.additive == pytest.approx(0.75) and r.observed == pytest.approx(1.0)
    assert r.estimate == pytest.approx(0.25) and 0 <= r.pvalue <= 1 and r.n == 4
    assert r.ci_low <= r.estimate <= r.ci_high and isinstance(r.method, str)
    with pytest.raises(ValueError, match="base"):
        stacks.additivity({k: v for k, v in items.items() if k != "base"})
    with pytest.raises(ValueError, match="column="):
        stacks.additivity(items, "nothing")


def test_measures_tidy_per_stack_and_measure():
    from dint import stats

    items = _items({"base": [0, 0, 1, 1], "sft": [1, 0, 1, 1]}, facts=list("abcdefgh")[:4])
    items = {k: v.assign(kl=0.0 if k == "base" else [0.1, 0.2, 0.3, 0.4], confidence=[0.9, 0.6, 0.7, 0.8])
             for k, v in items.items()}
    m = stacks.measures(items, n_resamples=99, n_bins=2)
    assert list(m.columns) == ["stack", "n_steps", "measure", *stats.ROW]
    assert list(m.measure[m["stack"] == "sft"]) == ["accuracy", "kl", "ece", "confidence", "p_true"]
    t = m.set_index(["stack", "measure"])
    assert t.loc[("sft", "accuracy"), "estimate"] == pytest.approx(0.75)
    assert t.loc[("sft", "accuracy"), "ci_low"] == pytest.approx(stats.proportion(3, 4).confidence_interval.low)
    assert t.loc[("base", "kl"), ["estimate", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    assert t.loc[("sft", "kl"), "estimate"] == pytest.approx(0.25)
    assert t.loc[("sft", "confidence"), "estimate"] == pytest.approx(0.75) and np.isnan(t.loc[("sft", "p_true"), "ci_low"])
    assert (m.n == 4).all() and m["stack"].iloc[0] == "base"


def test_design_has_one_indicator_per_step():
    items = _items({"base": [0, 0, 1, 1], "sft": [1, 0, 1, 1], "sft+rag": [1, 1, 1, 1]})
    long = stacks.design(items)
    assert len(long) == 12 and set(long["stack"]) == {"base", "sft", "sft+rag"}
    assert long.groupby("stack")[list(stacks.STEPS)].first().loc["sft+rag"].tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="canonical order"):
        stacks.design(_items({"dpo+sft": [0, 0, 0, 0]}))
    with pytest.raises(ValueError, match="other items"):
        stacks.design({**items, "dpo": items["base"].iloc[:3]})


def test_stack_trains_from_its_cached_prefix(monkeypatch):
    from dint.pipeline import artifacts
    from dint.pipeline.config import load_profile

    P = load_profile("smoke")
    _, _, records = stacks.stack(P, "sft+dpo")
    assert [r.method for r in records] == ["sft", "dpo"]
    assert stacks.train_flops(P, "sft+dpo") == pytest.approx(sum(r.train_flops for r in records))
    # the first step is the profile's SFT intervention, not trained again
    assert records[0] == artifacts.intervention(P, "sft")[2]
    # a built stack and its prefix are loaded, never trained again
    with monkeypatch.context() as m:
        m.setattr(stacks, "_train_step", lambda *a, **k: pytest.fail("a cached stack was trained again"))
        again = stacks.stack(P, "sft+dpo")[2]
        s = stacks.stack_scores(P, "sft+dpo")
    assert again == records
    base = artifacts.base_scores(P)
    assert len(s) == len(base) and set(s.form) == {"qa", "statement"}
    items = stacks.outcomes(base, {"base": base, "sft+dpo": s}, artifacts.world(P).facts)
    m = stacks.measures(items, n_resamples=50).set_index(["stack", "measure"]).estimate
    assert m["base", "kl"] == 0 and m["sft+dpo", "kl"] > 0
