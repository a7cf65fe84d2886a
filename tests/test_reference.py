"""Tests for dint.analyses.reference: a model's answer distributions beside the world's reference states.

The "model" here is synthetic: a scores table in the format ``dint.pipeline.artifacts.score_world``
returns, built from the corpus counts, so the reference states are known exactly.
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dint import stats
from dint.analyses.reference import MENTION_BINS, by_group, by_mentions, distributions, facts_table
from dint.world import WorldConfig, build

EPS = 1e-9
COLUMNS = ["fact", "form", "candidate", "answer", "logp", "p", "p_set", "mass_outside", "is_true"]


@pytest.fixture(scope="module")
def world():
    return build(WorldConfig(n_entities=30), seed=1)


def _corpus_matrix(world, relation):
    """(facts of the relation, (n, K) corpus counts in candidate order)."""
    values = world.values[relation]
    col = {v: j for j, v in enumerate(values)}
    f = world.facts[world.facts["relation"] == relation]
    row = {fact: i for i, fact in enumerate(f["fact"])}
    counts = np.zeros((len(f), len(values)))
    for r in world.counts[world.counts["fact"].isin(row)].itertuples():
        counts[row[r.fact], col[r.value]] += r.count
    return f, counts


def _scores(world, dist, form="statement"):
    """A scores table from dist(relation, facts, counts) -> (n, K) probabilities."""
    rows = []
    for relation, values in world.values.items():
        f, counts = _corpus_matrix(world, relation)
        p = dist(relation, f, counts)
        for i, fr in enumerate(f.itertuples()):
            for j, v in enumerate(values):
                with np.errstate(divide="ignore"):
                    rows.append((fr.fact, form, j, v, np.log(p[i, j]), p[i, j], p[i, j], 0.0, v == fr.value))
    return pd.DataFrame(rows, columns=COLUMNS)


def _corpus_model(relation, f, counts):
    """The corpus's empirical distribution (uniform when unseen), mixed with EPS of uniform."""
    K = counts.shape[1]
    total = counts.sum(1, keepdims=True)
    corpus = np.where(total > 0, counts / np.maximum(total, 1), 1.0 / K)
    p = (1 - EPS) * corpus + EPS / K
    return p / p.sum(1, keepdims=True)


def _uniform_model(relation, f, counts):
    return np.full(counts.shape, 1.0 / counts.shape[1])


def _wrong_candidate(world, relation, f):
    """A fixed wrong candidate per fact: the first value that is neither the truth nor the entity."""
    values = world.values[relation]
    return np.array([next(j for j, v in enumerate(values) if v not in (fr.value, fr.entity))
                     for fr in f.itertuples()])


@pytest.fixture(scope="module")
def scores(world):
    return pd.concat([_scores(world, _corpus_model, "statement"), _scores(world, _uniform_model, "qa")],
                     ignore_index=True)


@pytest.fixture(scope="module")
def table(world, scores):
    return facts_table(world, scores, "statement")


# ---------------------------------------------------------------- input validation
def test_distributions_iv(world, scores):
    s = scores[scores["form"] == "statement"]
    with pytest.raises(ValueError, match="candidates"):
        distributions(world, s.drop(index=s.index[s["fact"] == 1][3]), "color", "statement")
    with pytest.raises(ValueError, match="candidates"):
        facts_table(world, s.drop(index=s.index[s["fact"] == 1][:1]), "statement")


# ---------------------------------------------------------------- distributions
def test_distributions(world, scores):
    facts, logp, corpus = distributions(world, scores, "pet", "statement")
    f, counts = _corpus_matrix(world, "pet")
    np.testing.assert_array_equal(facts, f["fact"].to_numpy())
    np.testing.assert_allclose(np.exp(logp), _corpus_model("pet", f, counts), rtol=1e-12)
    stated = counts.sum(1) > 0
    np.testing.assert_allclose(corpus[stated], counts[stated] / counts[stated].sum(1, keepdims=True), rtol=1e-15)
    assert (corpus[~stated] == 0).all()
    # the other form is read separately
    _, logq, _ = distributions(world, scores, "pet", "qa")
    np.testing.assert_allclose(logq, -np.log(len(world.values["pet"])), rtol=1e-12)


# ---------------------------------------------------------------- the corpus model
def test_facts_table_shape(world, table):
    assert len(table) == len(world.facts)
    assert table["fact"].tolist() == world.facts["fact"].tolist()
    pd.testing.assert_frame_equal(table[world.facts.columns], world.facts)
    for c in ("p_true", "answer", "correct", "p_mode", "entropy", "entropy_norm", "p_misconception",
              "mass_outside", "corpus_p_true", "kl_corpus", "kl_uniform", "mention_bin"):
        assert c in table.columns, c
    assert (table["mass_outside"] == 0).all()


def test_facts_table_corpus_model_stated(table):
    s = table[table["mentions"] > 0]
    assert len(s) > 0
    np.testing.assert_allclose(s["p_true"], s["corpus_p_true"], atol=1e-6)
    np.testing.assert_allclose(s["corpus_p_true"], s["true_rate"], rtol=1e-15)
    np.testing.assert_allclose(s["p_true"], s["n_true"] / s["mentions"], atol=1e-6)
    # KL(corpus || (1 - eps) corpus + eps uniform) <= -log(1 - eps)
    assert (s["kl_corpus"] >= -1e-12).all()
    assert (s["kl_corpus"] < 1e-6).all()


def test_facts_table_corpus_model_unseen(world, table):
    u = table[table["mentions"] == 0]
    assert len(u) > 0
    K = u["relation"].map(lambda r: len(world.values[r]))
    np.testing.assert_allclose(u["entropy_norm"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(u["kl_uniform"], 0.0, atol=1e-12)
    np.testing.assert_allclose(u["entropy"], np.log(K), rtol=1e-12)
    np.testing.assert_allclose(u["p_true"], 1.0 / K, rtol=1e-9)
    assert u["kl_corpus"].isna().all()
    assert u["corpus_p_true"].isna().all()


def test_facts_table_contested(world, table):
    c = table[table["type"] == "contested"]
    assert len(c) > 0
    assert (c["p_misconception"] > 0.5).all()
    assert (c["p_misconception"] > c["p_true"]).all()
    assert (c["answer"] == c["misconception"]).all()
    assert not c["correct"].any()
    counts = world.counts.set_index(["fact", "value"])["count"]
    share = [counts[(r.fact, r.misconception)] / r.mentions for r in c.itertuples()]
    np.testing.assert_allclose(c["p_misconception"], share, atol=1e-6)
    assert table.loc[table["type"] != "contested", "p_misconception"].isna().all()


def test_facts_table_against_scipy(world, scores, table):
    # answer, correct, p_mode and entropy recomputed from the scores table directly.
    s = scores[scores["form"] == "statement"].sort_values(["fact", "candidate"])
    t = table.set_index("fact")
    for fact, g in s.groupby("fact"):
        p = g["p_set"].to_numpy()
        mode = int(np.argmax(p))
        assert t.at[fact, "answer"] == g["answer"].iloc[mode]
        assert t.at[fact, "correct"] == bool(g["is_true"].iloc[mode])
        assert t.at[fact, "p_mode"] == pytest.approx(p.max(), rel=1e-12)
        assert t.at[fact, "entropy"] == pytest.approx(sps.entropy(p), rel=1e-9, abs=1e-12)
        assert t.at[fact, "kl_uniform"] == pytest.approx(np.log(len(p)) - sps.entropy(p), abs=1e-9)
    assert table["correct"].dtype == bool


def test_facts_table_correct_is_corpus_mode(table):
    # The corpus model answers the corpus's mode: right where the truth is its strict mode.
    s = table[table["mentions"] > 0]
    strict = s["corpus_p_true"] > 0.5
    assert s.loc[strict, "correct"].all()
    assert not s.loc[s["n_true"] == 0, "correct"].any()
    assert (table.loc[table["type"] == "frequent", "correct"]).all()


def test_facts_table_hand_checked_fact(world, table):
    # The most-mentioned non-contested fact, counted by hand from the corpus text.
    f = world.facts[world.facts["type"] == "frequent"].sort_values("mentions").iloc[-1]
    said = [s for s in world.corpus if f.entity in s.split()
            and any(s == t.format(e=f.entity, v=v) for t in world.relation(f.relation).templates
                    for v in world.values[f.relation])]
    n_true = sum(s.endswith(f" {f.value} .") for s in said)
    assert len(said) == f.mentions
    assert n_true == f.n_true
    row = table.set_index("fact").loc[f.fact]
    assert row["p_true"] == pytest.approx(n_true / len(said), abs=1e-6)
    assert row["corpus_p_true"] == n_true / len(said)
    assert (f.fact, f.mentions, f.n_true) == REF_FACT


REF_FACT = (54, 58, 40)  # (fact, mentions, n_true) pinned for seed 1


def test_facts_table_other_form(world, scores):
    # The qa rows are a uniform model: maximal entropy, the first candidate as answer.
    t = facts_table(world, scores, "qa")
    np.testing.assert_allclose(t["entropy_norm"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(t["kl_uniform"], 0.0, atol=1e-12)
    assert (t["answer"] == t["relation"].map(lambda r: world.values[r][0])).all()
    s = t[t["mentions"] > 0]
    K = s["relation"].map(lambda r: len(world.values[r]))
    # KL(corpus || uniform) = log K - H(corpus)
    h_corpus = np.array([sps.entropy(_row_corpus(world, r)) for r in s.itertuples()])
    np.testing.assert_allclose(s["kl_corpus"], np.log(K) - h_corpus, rtol=1e-9, atol=1e-12)


def _row_corpus(world, r):
    c = world.counts[world.counts["fact"] == r.fact]
    return c["count"].to_numpy() / c["count"].sum()


def test_facts_table_mention_bins(table):
    labels = {0: "0", 1: "1", 2: "2-3", 3: "2-3", 4: "4-9", 9: "4-9", 10: "10-29", 29: "10-29",
              30: "30+", 120: "30+"}
    for m, b in zip(table["mentions"], table["mention_bin"].astype(str)):
        want = next(l for x, l in sorted(labels.items(), reverse=True) if m >= x)
        assert b == want, (m, b)
    assert list(table["mention_bin"].cat.categories) == ["0", "1", "2-3", "4-9", "10-29", "30+"]
    assert len(MENTION_BINS) == 7


# ---------------------------------------------------------------- a wrong model
@pytest.mark.parametrize("leak", [1e-6, 0.0])
def test_facts_table_wrong_model(world, leak):
    def model(relation, f, counts):
        K = counts.shape[1]
        p = np.full(counts.shape, leak / (K - 1))
        p[np.arange(len(f)), _wrong_candidate(world, relation, f)] = 1 - leak
        return p

    with np.errstate(divide="ignore"):
        t = facts_table(world, _scores(world, model), "statement")
    assert not t["correct"].any()
    wrong = {}
    for rel, values in world.values.items():
        f = world.facts[world.facts["relation"] == rel]
        wrong.update({fact: values[j] for fact, j in zip(f["fact"], _wrong_candidate(world, rel, f))})
    assert (t["answer"] == t["fact"].map(wrong)).all()
    assert (t["p_true"] <= leak + 1e-15).all()
    np.testing.assert_allclose(t["p_mode"], 1 - leak, rtol=1e-12)
    s = t[t["mentions"] > 0]
    said = world.counts.set_index(["fact", "value"])["count"]
    share = np.array([said.get((r.fact, r.answer), 0) / r.mentions for r in s.itertuples()])
    assert (share == 0).sum() > 0.5 * len(s)
    if leak:
        # Where the corpus never states the model's answer, KL(corpus || model)
        # >= log((K - 1) / leak) - H(corpus) >= log((K - 1) / leak) - log K  (> 13 here).
        assert (s.loc[share == 0, "kl_corpus"] > 13).all()
        assert (s["kl_corpus"] > 0.05).all()
        for r in s.itertuples():
            values = list(world.values[r.relation])
            K = len(values)
            q = np.full(K, leak / (K - 1))
            q[values.index(r.answer)] = 1 - leak
            c = np.zeros(K)
            cc = world.counts[world.counts["fact"] == r.fact]
            for v, k in zip(cc["value"], cc["count"]):
                c[values.index(v)] = k
            assert r.kl_corpus == pytest.approx(sps.entropy(c / c.sum(), q), rel=1e-9)
    else:
        assert np.isinf(s.loc[share < 1, "kl_corpus"]).all()
        np.testing.assert_allclose(s.loc[share == 1, "kl_corpus"], 0.0, atol=1e-12)
        np.testing.assert_allclose(t["entropy"], 0.0, atol=0)
        np.testing.assert_allclose(t["kl_uniform"], np.log(t["relation"].map(lambda r: len(world.values[r]))))


# ---------------------------------------------------------------- by_mentions
# the "0" bin's entropy_norm is constant up to rounding: a degenerate interval, and no warning
pytestmark_bca = pytest.mark.filterwarnings("error::RuntimeWarning")


def _wide(b):
    """A tidy `by_mentions` table as one row per bin, ``<measure>``, ``<measure>_low``, ``<measure>_high``."""
    w = b.pivot(index="mention_bin", columns="measure", values=["estimate", "ci_low", "ci_high"])
    out = pd.DataFrame({"n": b[b.measure == "accuracy"].set_index("mention_bin")["n"]})
    for m in ("accuracy", "entropy_norm"):
        out[m], out[f"{m}_low"], out[f"{m}_high"] = w["estimate"][m], w["ci_low"][m], w["ci_high"][m]
    return out.loc[list(dict.fromkeys(b["mention_bin"]))].reset_index()


@pytestmark_bca
def test_by_mentions(table):
    tidy = by_mentions(table)
    assert list(tidy.columns) == ["mention_bin", "measure", *stats.ROW]
    assert tidy["measure"].tolist() == ["accuracy", "entropy_norm"] * (len(tidy) // 2)
    assert (tidy.groupby("mention_bin")["n"].nunique() == 1).all()     # both measures of a bin: its facts
    b = _wide(tidy)
    assert b["n"].sum() == len(table)
    assert b["mention_bin"].tolist() == [c for c in table["mention_bin"].cat.categories
                                         if (table["mention_bin"] == c).any()]
    assert (b["accuracy_low"] <= b["accuracy"] + 1e-15).all()
    assert (b["accuracy"] <= b["accuracy_high"] + 1e-15).all()
    ok = b["entropy_norm_low"].notna()
    assert (b.loc[ok, "entropy_norm_low"] <= b.loc[ok, "entropy_norm"] + 1e-12).all()
    assert (b.loc[ok, "entropy_norm"] <= b.loc[ok, "entropy_norm_high"] + 1e-12).all()
    for r in b.itertuples():
        g = table[table["mention_bin"].astype(str) == r.mention_bin]
        assert r.n == len(g)
        assert r.accuracy == g["correct"].mean()
        acc = stats.proportion(int(g["correct"].sum()), len(g))
        assert (r.accuracy_low, r.accuracy_high) == (acc.confidence_interval.low, acc.confidence_interval.high)
        assert r.entropy_norm == pytest.approx(g["entropy_norm"].mean(), rel=1e-12)
    assert set(tidy.loc[tidy.measure == "accuracy", "method"]) == {acc.method}
    # unseen facts: the corpus model is uniform
    zero = b.set_index("mention_bin").loc["0"]
    assert zero["entropy_norm"] == pytest.approx(1.0, rel=1e-12)


@pytestmark_bca
def test_by_mentions_uniform_bin_interval(table):
    # A model that is uniform on every unseen fact: the "0" bin's entropy_norm is 1, with an interval.
    zero = _wide(by_mentions(table)).set_index("mention_bin").loc["0"]
    assert zero["entropy_norm_low"] == pytest.approx(1.0, rel=1e-9)
    assert zero["entropy_norm_high"] == pytest.approx(1.0, rel=1e-9)


@pytestmark_bca
def test_by_mentions_deterministic(table):
    pd.testing.assert_frame_equal(by_mentions(table, rng=3), by_mentions(table, rng=3))
    narrow = _wide(by_mentions(table, confidence_level=0.5))
    wide = _wide(by_mentions(table, confidence_level=0.99))
    assert ((wide["accuracy_high"] - wide["accuracy_low"])
            >= (narrow["accuracy_high"] - narrow["accuracy_low"])).all()


def test_by_group_tidy_rows():
    t = pd.DataFrame({"relation": ["a", "a", "a", "b"], "type": ["rare"] * 4, "correct": [True, False, True, False],
                      "p_true": [0.9, 0.2, 0.7, 0.4], "entropy_norm": [0.1, 0.8, 0.3, 0.5]})
    g = by_group(t, ["relation", "type"], rng=0)
    assert list(g.columns) == ["relation", "type", "measure", *stats.ROW]
    assert g[["relation", "measure"]].values.tolist() == [["a", "accuracy"], ["a", "p_true"], ["a", "entropy_norm"],
                                                          ["b", "accuracy"], ["b", "p_true"], ["b", "entropy_norm"]]
    a = g[g.relation == "a"].set_index("measure")
    acc = stats.proportion(2, 3)
    assert (a.loc["accuracy", "estimate"], a.loc["accuracy", "ci_low"], a.loc["accuracy", "ci_high"]) == \
        (acc.statistic, acc.confidence_interval.low, acc.confidence_interval.high)
    boot = stats.bootstrap_mean(np.array([0.9, 0.2, 0.7]), rng=0)
    assert (a.loc["p_true", "estimate"], a.loc["p_true", "ci_low"]) == (boot.statistic, boot.confidence_interval.low)
    assert (a["n"] == 3).all()
    b = g[g.relation == "b"].set_index("measure")       # a group of one: no interval for a mean
    assert b.loc["p_true", "estimate"] == 0.4 and np.isnan(b.loc["p_true", "ci_low"])
    assert b.loc["p_true", "method"] == "single" and b.loc["p_true", "n"] == 1


# ---------------------------------------------------------------- real facts
def _real_scores(world, form, rng):
    """A score table over each real fact's own candidates, with random answer distributions."""
    rows = []
    for r in world.prompts(form).itertuples():
        p = rng.dirichlet(np.ones(len(r.candidates)))
        for j, (a, q) in enumerate(zip(r.candidates, p)):
            rows.append({"fact": r.fact, "form": form, "candidate": j, "answer": a, "p_set": q,
                         "mass_outside": 0.25, "is_true": a == r.target})
    return pd.DataFrame(rows)


def test_real_facts_table_by_hand():
    from dint import realworld

    world = realworld.build(realworld.RealWorldConfig(n_arithmetic=10, min_population=50_000_000), seed=0)
    scores = _real_scores(world, "qa", np.random.default_rng(0))
    t = facts_table(world, scores, form="qa")
    assert len(t) == len(world.facts) and t["corpus_p_true"].isna().all()
    for f in t.sample(5, random_state=0).itertuples():
        g = scores[scores.fact == f.fact]
        assert f.p_true == pytest.approx(g.loc[g.is_true, "p_set"].item())
        assert f.answer == g.loc[g.p_set.idxmax(), "answer"] and f.correct == bool(g.loc[g.p_set.idxmax(), "is_true"])
        assert f.entropy_norm == pytest.approx(-(g.p_set * np.log(g.p_set)).sum() / np.log(len(g)))
        if f.misconception:
            assert f.p_misconception == pytest.approx(g.loc[g.answer == f.misconception, "p_set"].item())
        else:
            assert np.isnan(f.p_misconception)
    groups = by_group(t, ["relation", "type"])
    acc = groups[groups.measure == "accuracy"]
    assert acc["n"].sum() == len(t)
    assert ((acc.ci_low <= acc.estimate) & (acc.estimate <= acc.ci_high)).all()
    with pytest.raises(ValueError, match="form"):
        facts_table(world, scores, form="statement")


def test_real_numbers():
    from dint import realworld
    from dint.analyses.reference import real_numbers

    world = realworld.build(realworld.RealWorldConfig(n_arithmetic=20, min_population=20_000_000), seed=1)
    rng = np.random.default_rng(1)
    st, qa = (facts_table(world, _real_scores(world, f, rng), form=f) for f in ("statement", "qa"))
    num = real_numbers(st, qa, n_resamples=200, rng=0)
    assert num["statement_accuracy"].statistic == pytest.approx(st["correct"].mean())
    assert num["chance_accuracy"] == pytest.approx(1 / world.config.n_candidates)
    d = num["qa_minus_statement_accuracy"]
    assert d.statistic == pytest.approx(qa["correct"].mean() - st["correct"].mean())
    tests = [v for v in num.values() if isinstance(v, stats.Result) and not np.isnan(v.pvalue)]
    assert len(tests) >= 3 and all("Holm-adjusted" in t.method for t in tests)
    assert num["contested_p_misconception"].n == (st["type"] == "contested").sum()
    with pytest.raises(ValueError, match="same facts"):
        real_numbers(st, qa.iloc[::-1], n_resamples=200)
