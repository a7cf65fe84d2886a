"""Tests for dint.taxonomy: the distributional error taxonomy, its rules and the known causes."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dint import taxonomy
from dint.taxonomy import TaxonomyConfig

K = 10   # base rate 0.1: absent threshold 2/K = 0.2, selection threshold max(2/K, 0.1) = 0.2


def _dist(spec, k=K):
    """A distribution over k candidates: the given {index: mass}, the rest spread evenly."""
    p = np.zeros(k)
    for j, m in spec.items():
        p[j] = m
    rest = [j for j in range(k) if j not in spec]
    p[rest] = (1 - sum(spec.values())) / len(rest)
    assert p.min() >= 0
    return p


def _scores(dists, forms=("qa",)):
    """A score_world-like table; candidate 0 is always the true value, answers are ``v<j>``."""
    rows = []
    for form in forms:
        for i, p in enumerate(dists):
            for j, pj in enumerate(p):
                rows.append({"fact": i, "form": form, "candidate": j, "answer": f"v{j}", "p_set": pj,
                             "is_true": j == 0})
    return pd.DataFrame(rows)


# item: (base, post, expected class); each class occurs by construction
CASES = [
    (_dist({0: 0.8}), _dist({0: 0.9}), None),                                   # right: no error
    (_dist({0: 0.7}), _dist({0: 0.05, 1: 0.6}), "regression"),                  # base right, moved away
    (_dist({0: 0.15, 1: 0.6}), _dist({0: 0.1, 1: 0.8}), "imitative"),           # base's wrong mode, kept
    (_dist({0: 0.3, 2: 0.4}), _dist({0: 0.3, 2: 0.45}), "selection"),           # truth has mass, not mode
    (_dist({0: 0.1, 3: 0.19}), _dist({0: 0.05, 3: 0.5}), "absent_support"),     # base-rate mass in both
    (_dist({0: 0.6}), _dist({0: 0.1, 4: 0.7}), "routing"),                      # follows a stale context
    (_dist({0: 0.35, 1: 0.45}), _dist({0: 0.1, 1: 0.7}), "unclassified"),       # no rule claims it
]
ROUTING = pd.DataFrame({"fact": [5], "form": ["qa"], "hit": [True], "has_true": [False], "has_stale": [True],
                        "context_value": ["v4"]})


def _classify(cases=CASES, **kw):
    return taxonomy.classify(_scores([c[0] for c in cases]), _scores([c[1] for c in cases]), **kw)


def test_classify_recovers_each_class():
    out = _classify(routing=ROUTING)
    assert out["class"].isna().tolist() == [c[2] is None for c in CASES]
    assert list(out["class"][1:]) == [c[2] for c in CASES[1:]]
    assert list(out["error"]) == [c[2] is not None for c in CASES]
    assert set(out["class"].dropna()) == set(taxonomy.CLASSES)
    np.testing.assert_allclose(out["base_rate"], 1 / K)
    np.testing.assert_allclose(out["p_true_base"], [c[0][0] for c in CASES])
    np.testing.assert_allclose(out["p_true_post"], [c[1][0] for c in CASES])
    np.testing.assert_allclose(out["mode_mass_base"], [c[0].max() for c in CASES])
    assert list(out["answer_post"][:3]) == ["v0", "v1", "v1"]
    assert list(out["follows_context"]) == [False] * 5 + [True, False]
    # without retrieval info the routed error is what the distributions say: a regression
    assert _classify().loc[5, "class"] == "regression"
    assert "follows_context" not in _classify().columns


def test_classify_ragged_and_unnormalised():
    base = pd.concat([_scores([_dist({0: 0.1, 1: 0.6})]), _scores([[0.2, 0.3, 0.25, 0.25]]).assign(fact=1)])
    post = pd.concat([_scores([_dist({0: 0.1, 1: 0.8})]), _scores([[0.02, 0.09, 0.05, 0.04]]).assign(fact=1)])
    out = taxonomy.classify(base, post)
    np.testing.assert_allclose(out["k"], [10, 4])
    np.testing.assert_allclose(out["base_rate"], [0.1, 0.25])
    np.testing.assert_allclose(out["p_true_post"], [0.1, 0.1])   # renormalised over the candidate set
    assert list(out["class"]) == ["imitative", "absent_support"]


def test_classify_precedence():
    cfg = TaxonomyConfig()
    # imitative beats regression by drop: the base already answered the misconception
    drained = [(_dist({0: 0.4, 1: 0.55}), _dist({0: 0.02, 1: 0.95}), None)]
    assert _classify(drained, config=cfg).loc[0, "class"] == "imitative"
    assert _classify(drained, config=TaxonomyConfig(imitative_mass=0.6)).loc[0, "class"] == "regression"
    # imitative beats selection: the truth keeps mass under a dominant misconception
    contested = [(_dist({0: 0.35, 1: 0.55}), _dist({0: 0.35, 1: 0.6}), None)]
    assert _classify(contested).loc[0, "class"] == "imitative"
    assert _classify(contested, config=TaxonomyConfig(imitative_mass=0.6)).loc[0, "class"] == "selection"
    # selection beats absent support where the thresholds overlap
    sel = [CASES[3]]
    assert _classify(sel, config=TaxonomyConfig(absent_factor=5.0)).loc[0, "class"] == "selection"
    assert _classify(sel, config=TaxonomyConfig(absent_factor=5.0, selection_mass=0.5)).loc[0, "class"] == \
        "absent_support"
    # routing beats regression; a true-only context or a miss is not routing (unless routing_miss)
    assert _classify(routing=ROUTING).loc[5, "class"] == "routing"
    clean = ROUTING.assign(has_true=True, has_stale=False)
    assert _classify(routing=clean).loc[5, "class"] == "regression"
    miss = ROUTING.assign(hit=False, has_stale=False, context_value="")
    assert _classify(routing=miss).loc[5, "class"] == "regression"
    assert _classify(routing=miss, config=TaxonomyConfig(routing_miss=True)).loc[5, "class"] == "routing"
    # routing without a form column applies to every form of the fact
    two = taxonomy.classify(_scores([c[0] for c in CASES], ("qa", "statement")),
                            _scores([c[1] for c in CASES], ("qa", "statement")),
                            routing=ROUTING.drop(columns="form"))
    assert list(two.loc[two.fact == 5, "class"]) == ["routing", "routing"]


def test_classify_iv():
    base, post = _scores([c[0] for c in CASES]), _scores([c[1] for c in CASES])
    with pytest.raises(ValueError, match="same items"):
        taxonomy.classify(base, post[post.fact < 3])
    with pytest.raises(ValueError, match="post_scores"):
        taxonomy.classify(base, post.drop(columns="answer"))
    with pytest.raises(ValueError, match="lacks column"):
        taxonomy.classify(base.drop(columns="p_set"), post)
    with pytest.raises(ValueError, match="base_scores.p_set"):
        taxonomy.classify(base.assign(p_set=-base["p_set"]), post)
    with pytest.raises(TypeError, match="config"):
        taxonomy.classify(base, post, config={"absent_factor": 2})
    with pytest.raises(ValueError, match="routing lacks"):
        taxonomy.classify(base, post, routing=ROUTING.drop(columns="has_stale"))
    with pytest.raises(ValueError, match="routing has several rows"):
        taxonomy.classify(base, post, routing=pd.concat([ROUTING, ROUTING]))


@pytest.mark.parametrize("field, value", [("absent_factor", 0.5), ("selection_factor", 0.0),
                                          ("selection_mass", 0.0), ("regression_drop", 1.5),
                                          ("imitative_mass", 0.4), ("routing_miss", 1)])
def test_config_iv(field, value):
    with pytest.raises(ValueError, match=f"TaxonomyConfig.{field}"):
        TaxonomyConfig(**{field: value})


def _world():
    types = ["frequent", "frequent", "rare", "unseen", "contested", "frequent"]
    return SimpleNamespace(facts=pd.DataFrame({"fact": range(6), "type": types}))


def test_known_cause_mapping():
    items = pd.DataFrame({"fact": range(6), "form": "qa", "error": [True, True, True, True, True, False],
                          "correct_base": [True, False, False, True, True, True]})
    out = taxonomy.known_cause(_world(), items)
    assert list(out["cause"][:5]) == ["regression", "selection", "selection", "absent_support", "imitative"]
    assert pd.isna(out.loc[5, "cause"])
    assert list(out["ambiguous"]) == [False, False, True, False, False, False]
    stale = pd.DataFrame({"fact": [1], "has_true": [False], "has_stale": [True], "context_value": ["v3"]})
    assert taxonomy.known_cause(_world(), items, routing=stale).loc[1, "cause"] == "routing"
    with pytest.raises(ValueError, match="items lacks"):
        taxonomy.known_cause(_world(), items.drop(columns="correct_base"))
    with pytest.raises(ValueError, match="not in world"):
        taxonomy.known_cause(_world(), items.assign(fact=items["fact"] + 3))
    with pytest.raises(ValueError, match="world"):
        taxonomy.known_cause(object(), items)


def test_known_cause_on_classify_and_a_real_world():
    from dint import world as world_mod
    w = world_mod.build(world_mod.WorldConfig(n_entities=6, relations=("color",)), seed=0)
    items = _classify(CASES[:6])
    out = taxonomy.known_cause(w, items)
    assert out.index.equals(items.index)
    assert list(out["type"]) == list(w.facts["type"][:6])
    assert out["cause"].isna().tolist() == (~items["error"]).tolist()


def test_diagnose_stacks_classify_and_known_cause():
    base, post = _scores([c[0] for c in CASES], ("qa", "statement")), _scores([c[1] for c in CASES], ("qa", "statement"))
    world = SimpleNamespace(facts=pd.DataFrame({"fact": range(7), "type": ["frequent"] * 4 + ["rare", "unseen", "contested"],
                                                "split": ["heldout"] * 6 + ["train"]}))
    out = taxonomy.diagnose(world, base, {"m": post, "q": post[post.form == "qa"]}, routing={"m": ROUTING})
    assert list(out.columns[:3]) == ["intervention", "fact", "form"]
    assert len(out) == 6 * 2 + 6 and set(out.fact) == set(range(6))
    m = out[(out.intervention == "m") & (out.form == "qa")].reset_index(drop=True)
    ref = taxonomy.classify(base[base.fact < 6], post[post.fact < 6], routing=ROUTING)
    ref = ref[ref.form == "qa"].reset_index(drop=True)
    assert m["class"].equals(ref["class"])
    assert m.loc[5, "class"] == "routing" and m.loc[5, "cause"] == "routing"
    assert list(m["ambiguous"]) == [False] * 4 + [True, False]
    assert set(out.loc[out.intervention == "q", "form"]) == {"qa"}
    assert len(taxonomy.diagnose(world, base, {"m": post}, split=None)) == 14
    with pytest.raises(ValueError, match="split"):
        taxonomy.diagnose(world, base, {"m": post}, split="test")
    with pytest.raises(ValueError, match="not in scores"):
        taxonomy.diagnose(world, base, {"m": post}, routing={"rag": ROUTING})
    with pytest.raises(ValueError, match="non-empty dict"):
        taxonomy.diagnose(world, base, {})


def _same(a, b):
    """Two label sequences equal, None and NaN both meaning no class."""
    return pd.Series(list(a), dtype=object).fillna("-").tolist() == pd.Series(list(b), dtype=object).fillna("-").tolist()


@pytest.mark.parametrize("config", [TaxonomyConfig(), TaxonomyConfig(absent_factor=4.0, selection_mass=0.3),
                                    TaxonomyConfig(regression_drop=0.05, imitative_mass=0.9, routing_miss=True)])
def test_classes_reapplies_the_rules_of_classify(config):
    rng = np.random.default_rng(1)
    base = [rng.dirichlet(np.full(K, 0.4)) for _ in range(60)]
    post = [rng.dirichlet(np.full(K, 0.4)) for _ in range(60)]
    routing = pd.DataFrame({"fact": range(0, 60, 3), "form": "qa", "has_true": [i % 2 == 0 for i in range(20)],
                            "has_stale": [i % 4 == 1 for i in range(20)], "hit": [i % 5 != 0 for i in range(20)],
                            "context_value": [f"v{i % K}" if i % 5 else "" for i in range(20)]})
    b, p = _scores(base), _scores(post)
    ref = taxonomy.classify(b, p, routing=routing, config=config)
    assert _same(ref["class"], taxonomy.classes(taxonomy.classify(b, p, routing=routing), config))
    default = taxonomy.classify(b, p, routing=routing)["class"].dropna()
    assert len(set(default)) >= 4                      # the rules are exercised, not only one class
    # stacked with a model without routing: no routing there, the same classes elsewhere
    plain = taxonomy.classify(b, p, config=config)
    both = pd.concat([ref, plain], ignore_index=True)
    out = taxonomy.classes(both, config)
    assert _same(out[:60], ref["class"]) and _same(out[60:], plain["class"])
    with pytest.raises(ValueError, match="items lacks"):
        taxonomy.classes(ref.drop(columns="k"), config)
