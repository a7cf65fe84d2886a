"""Tests for dint.taxonomy: the distributional error taxonomy and its agreement with known causes."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

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


TABLE = np.array([[10, 2, 1], [3, 8, 2], [1, 1, 12]])


def _labels(table, names=("imitative", "regression", "selection")):
    known, pred = [], []
    for i, row in enumerate(table):
        for j, c in enumerate(row):
            known += [names[i]] * c
            pred += [names[j]] * c
    return pred, known


def test_agreement_against_statsmodels():
    pred, known = _labels(TABLE)
    r = taxonomy.agreement(pred, known)
    ref = cohens_kappa(TABLE)
    assert r.statistic == pytest.approx(ref.kappa)
    assert r.confidence_interval.low == pytest.approx(ref.kappa_low)
    assert r.confidence_interval.high == pytest.approx(ref.kappa_upp)
    assert r.pvalue == pytest.approx(ref.pvalue_two_sided)
    np.testing.assert_array_equal(r.confusion.to_numpy(), TABLE)
    assert list(r.confusion.index) == ["imitative", "regression", "selection"]   # CLASSES order
    assert r.n == TABLE.sum() and r.observed == pytest.approx(30 / 40)
    np.testing.assert_allclose(r.per_class["precision"], [10 / 14, 8 / 11, 12 / 15])
    np.testing.assert_allclose(r.per_class["recall"], [10 / 13, 8 / 13, 12 / 14])
    narrow = taxonomy.agreement(pred, known, confidence_level=0.5)
    assert r.confidence_interval.low < narrow.confidence_interval.low < narrow.statistic


def test_agreement_perfect_and_accuracy_only():
    labels = ["imitative"] * 3 + ["selection"] * 5 + ["absent_support"] * 2
    r = taxonomy.agreement(labels, labels)
    assert r.statistic == pytest.approx(1.0) and r.observed == 1.0
    np.testing.assert_allclose(r.per_class["recall"], 1.0)
    known = pd.DataFrame({"error": [True] * 10 + [False], "cause": labels + [None]})
    a = taxonomy.accuracy_only(known)
    assert a.statistic == 0.0 and a.observed == 0.0 and a.n == 10
    assert a.per_class.loc["error", "predicted"] == 10
    np.testing.assert_allclose(a.per_class.loc[["imitative", "selection", "absent_support"], "recall"], 0.0)


def test_agreement_iv():
    with pytest.raises(ValueError, match="differ in length"):
        taxonomy.agreement(["selection"], ["selection", "imitative"])
    with pytest.raises(ValueError, match="known has missing"):
        taxonomy.agreement(["selection", "imitative"], ["selection", None])
    with pytest.raises(ValueError, match="empty"):
        taxonomy.agreement([], [])
    with pytest.raises(ValueError, match="confidence_level"):
        taxonomy.agreement(["selection"], ["selection"], confidence_level=1.5)
    with pytest.raises(ValueError, match="items lacks"):
        taxonomy.accuracy_only(pd.DataFrame({"error": [True]}))
    assert np.isnan(taxonomy.agreement(["selection"] * 3, ["selection"] * 3).statistic)   # κ undefined


def test_agreement_one_class():
    # both raters use one label: chance agreement is 1 and κ = 0/0
    r = taxonomy.agreement(["selection"] * 6, ["selection"] * 6)
    assert np.isnan([r.statistic, r.confidence_interval.low, r.confidence_interval.high, r.pvalue]).all()
    assert "'selection'" in r.reason and "undefined" in r.reason and r.observed == 1.0 and r.n == 6
    c = taxonomy.agreement(["selection"] * 6, ["selection"] * 6, clusters=[0, 0, 1, 1, 2, 2], n_resamples=100)
    assert np.isnan(c.statistic) and "undefined" in c.reason
    # two labels, one rater constant: κ is defined (0), but its standard errors are 0
    a = taxonomy.agreement(["selection"] * 6, ["selection"] * 3 + ["imitative"] * 3)
    assert a.statistic == pytest.approx(0.0) and np.isnan([a.confidence_interval.low, a.pvalue]).all()
    assert "no interval or test" in a.reason


# -- κ with a cluster bootstrap ------------------------------------------------------------------
def test_cluster_kappa_against_statsmodels():
    pred, known = _labels(TABLE)
    clusters = np.arange(len(pred))                    # one item per cluster: the ordinary bootstrap
    r = taxonomy.cluster_kappa(pred, known, clusters, n_resamples=4000, rng=1)
    ref = cohens_kappa(TABLE)
    assert r.statistic == pytest.approx(ref.kappa)
    # the bootstrap interval approximates the asymptotic one
    assert r.confidence_interval.low == pytest.approx(ref.kappa_low, abs=0.05)
    assert r.confidence_interval.high == pytest.approx(ref.kappa_upp, abs=0.05)
    assert r.pvalue < 0.001 and r.n == len(pred)
    a = taxonomy.agreement(pred, known, clusters=clusters, n_resamples=4000, rng=1)
    assert a.statistic == pytest.approx(ref.kappa) and a.confidence_interval == r.confidence_interval
    assert "cluster" in a.method and a.pvalue == r.pvalue
    # duplicating every item within its cluster leaves κ, widens nothing spuriously: same interval
    dup = taxonomy.cluster_kappa(pred * 2, known * 2, np.concatenate([clusters, clusters]), n_resamples=4000, rng=1)
    assert dup.statistic == pytest.approx(r.statistic)
    assert (dup.confidence_interval.low, dup.confidence_interval.high) == pytest.approx(
        (r.confidence_interval.low, r.confidence_interval.high))
    # independent labels: κ near 0 and no rejection
    rng = np.random.default_rng(0)
    names = np.array(["imitative", "regression", "selection"])
    null = taxonomy.cluster_kappa(names[rng.integers(3, size=300)], names[rng.integers(3, size=300)],
                                  np.arange(300) // 2, n_resamples=999, rng=2)
    assert abs(null.statistic) < 0.1 and null.pvalue > 0.05
    assert null.confidence_interval.low < 0 < null.confidence_interval.high


def test_cluster_kappa_iv():
    with pytest.raises(ValueError, match="one entry per item"):
        taxonomy.cluster_kappa(["selection"] * 3, ["selection"] * 3, [0, 1])
    with pytest.raises(ValueError, match="labels lacks"):
        taxonomy.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 1], labels=["selection"])
    with pytest.raises(ValueError, match="at least 2"):
        taxonomy.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 0])
    with pytest.raises(ValueError, match="clusters must be"):
        taxonomy.agreement(["selection", "imitative"], ["selection"] * 2, clusters=[0, 1, 2])
    one = taxonomy.agreement(["selection", "imitative"], ["selection", "imitative"], clusters=[0, 0])
    assert one.statistic == 1.0 and np.isnan(one.confidence_interval.low) and np.isnan(one.pvalue)
    assert "one cluster" in one.reason
    with pytest.raises(ValueError, match="n_resamples"):
        taxonomy.cluster_kappa(["selection", "imitative"], ["selection"] * 2, [0, 1], n_resamples=1.5)


def test_cluster_kappa_one_class():
    r = taxonomy.cluster_kappa(["selection"] * 8, ["selection"] * 8, np.arange(8) // 2, n_resamples=200)
    assert np.isnan([r.statistic, r.confidence_interval.low, r.confidence_interval.high, r.pvalue]).all()
    assert "undefined" in r.reason
    # perfect agreement in every cluster: κ = 1 on every resample, a point mass: no interval or test
    labels = ["selection", "imitative"] * 4
    p = taxonomy.cluster_kappa(labels, labels, np.arange(8) // 2, n_resamples=200)
    assert p.statistic == 1.0 and np.isnan(p.confidence_interval.low) and np.isnan(p.pvalue)
    assert "point mass" in p.reason


def test_cluster_kappa_type_one_error():
    # independent raters, two items per cluster: the Wald test with the cluster bootstrap SE holds its level
    rng = np.random.default_rng(5)
    names = np.array(["imitative", "selection", "absent_support"])
    pvals = []
    for s in range(150):
        known = names[rng.choice(3, 120, p=[0.2, 0.5, 0.3])]
        pred = names[rng.choice(3, 120, p=[0.3, 0.3, 0.4])]
        pvals.append(taxonomy.cluster_kappa(pred, known, np.arange(120) // 2, n_resamples=200, rng=s).pvalue)
    assert 0.01 <= np.mean(np.array(pvals) <= 0.05) <= 0.11


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


def test_kappa_against_statsmodels():
    pred, known = _labels(TABLE)
    assert taxonomy.kappa(pred, known) == pytest.approx(cohens_kappa(TABLE).kappa)
    assert taxonomy.kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert taxonomy.kappa(["x"] * 4, ["a", "b", "a", "b"]) == 0.0          # one predicted label: no agreement
    assert np.isnan(taxonomy.kappa(["a"] * 3, ["a"] * 3))
    with pytest.raises(ValueError, match="one length"):
        taxonomy.kappa(["a"], ["a", "b"])


def test_cluster_kappa_difference_is_paired():
    pred, known = _labels(TABLE)
    n = len(known)
    clusters = np.arange(n) // 2
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(n) < 0.5, np.array(pred, dtype=object), rng.permutation(np.array(pred, dtype=object)))
    d = taxonomy.cluster_kappa_difference(pred, noisy, known, clusters, n_resamples=400, rng=3)
    a = taxonomy.cluster_kappa(pred, known, clusters, n_resamples=400, rng=3)
    b = taxonomy.cluster_kappa(noisy, known, clusters, n_resamples=400, rng=3)
    assert d.statistic == pytest.approx(a.statistic - b.statistic) and d.statistic > 0
    assert d.confidence_interval.low > 0 and d.pvalue < 0.05 and d.n == n
    # paired: both κ on the same resamples, so a labelling against itself differs by exactly 0 in every one
    same = taxonomy.cluster_kappa_difference(pred, pred, known, clusters, n_resamples=100, rng=0)
    assert same.statistic == 0 and np.isnan(same.pvalue) and "point mass" in same.reason
    one = taxonomy.cluster_kappa_difference(["a"] * 4, ["a"] * 4, ["a"] * 4, [0, 0, 1, 1], n_resamples=50)
    assert np.isnan(one.statistic) and "undefined" in one.reason
    with pytest.raises(ValueError, match="one entry per item"):
        taxonomy.cluster_kappa_difference(pred, noisy[:-1], known, clusters)


def test_cluster_kappa_difference_type_one_error():
    """Two labellings that are exchangeable (each agrees with the cause at random, at the same rate): the test
    rejects about 5% of the time."""
    pvals = []
    for s in range(150):
        rng = np.random.default_rng(s)
        known = rng.choice(["a", "b", "c"], 120)
        a = np.where(rng.random(120) < 0.5, known, rng.choice(["a", "b", "c"], 120))
        b = np.where(rng.random(120) < 0.5, known, rng.choice(["a", "b", "c"], 120))
        pvals.append(taxonomy.cluster_kappa_difference(a, b, known, np.arange(120) // 2, n_resamples=200,
                                                       rng=s).pvalue)
    assert 0.01 <= np.mean(np.array(pvals) <= 0.05) <= 0.11
