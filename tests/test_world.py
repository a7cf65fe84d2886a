"""Tests for dint.world: the reference world, its corpus and its reference states."""
import math
import re
import string
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dint.world import FACT_TYPES, FORMS, RELATIONS, World, WorldConfig, build, qa_prompt

SMALL = WorldConfig(n_entities=40)


@pytest.fixture(scope="module")
def small():
    return build(SMALL, seed=0)


@pytest.fixture(scope="module")
def default():
    return build(WorldConfig(), seed=0)


def _template_regex(template: str, entities, values) -> re.Pattern:
    """A full-match regex for one corpus template, with named groups e (entity) and v (value)."""
    alt = {"e": "|".join(map(re.escape, entities)), "v": "|".join(map(re.escape, values))}
    out = []
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if field is not None:
            out.append(f"(?P<{field}>{alt[field]})")
    return re.compile("".join(out))


def _recount(w: World) -> Counter:
    """Parse the corpus back: (entity, relation, value) -> number of sentences stating it."""
    patterns = [(r, _template_regex(t, w.entities, w.values[r]))
                for r in w.config.relations for t in RELATIONS[r].templates]
    found = Counter()
    for sentence in w.corpus:
        hits = [(r, m) for r, pat in patterns if (m := pat.fullmatch(sentence))]
        assert len(hits) == 1, f"{sentence!r} matches {len(hits)} templates"
        r, m = hits[0]
        found[(m["e"], r, m["v"])] += 1
    return found


# ---------------------------------------------------------------- input validation
@pytest.mark.parametrize("field, value", [
    ("n_entities", 2),
    ("relations", ("nope",)),
    ("relations", ()),
    ("p_unseen", 1.5),
    ("p_unseen", -0.1),
    ("contested_share", 1.0),
    ("heldout_share", -0.5),
    ("frequent_min", 1),
    ("frequent_min", 500),          # above max_mentions
    ("n_places", 1),
    ("mention_alpha", 0.0),
    ("popularity_noise", -1.0),
    ("popularity_noise", float("nan")),
    ("qa_share", 1.0),
    ("qa_share", -0.1),
    ("control_share", 1.0),
    ("control_share", -0.1),
])
def test_worldconfig_iv(field, value):
    with pytest.raises(ValueError, match=field):
        WorldConfig(**{field: value})


def test_worldconfig_iv_misconception_order():
    with pytest.raises(ValueError, match="misconception_low"):
        WorldConfig(misconception_low=0.8, misconception_high=0.6)
    with pytest.raises(ValueError, match="misconception_low"):
        WorldConfig(misconception_low=0.0)


@pytest.mark.parametrize("field, value", [("noise_a", 0.0), ("noise_b", -1.0),
                                          ("misconception_high", 1.0)])
def test_worldconfig_iv_names_the_bad_field(field, value):
    # The message should read "WorldConfig.<field>=<value>", as for every other field.
    with pytest.raises(ValueError, match=rf"WorldConfig\.{field}={value!r}"):
        WorldConfig(**{field: value})


def test_build_iv():
    with pytest.raises(ValueError, match="config must be a WorldConfig"):
        build({"n_entities": 40})


def test_prompts_iv(small):
    with pytest.raises(ValueError, match="form"):
        small.prompts("essay")


# ---------------------------------------------------------------- determinism
def test_build_deterministic(small):
    again = build(SMALL, seed=0)
    assert again.entities == small.entities
    assert again.values == small.values
    assert again.corpus == small.corpus
    for name in ("facts", "counts", "twohop"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(small, name))


def test_build_seed_changes_world(small):
    other = build(SMALL, seed=1)
    assert other.entities != small.entities
    assert other.corpus != small.corpus
    assert not other.facts["mentions"].equals(small.facts["mentions"])
    assert not other.facts["value"].equals(small.facts["value"])


def test_build_reference_values(small):
    # Regression pin for seed 0 (update deliberately if the generator's random stream changes).
    f = small.facts
    assert len(f) == 40 * 5
    assert f["fact"].tolist() == list(range(200))
    assert f.groupby("relation").size().to_dict() == {r: 40 for r in SMALL.relations}
    assert len(small.values["home"]) == SMALL.n_places
    assert small.values["mentor"] == small.entities
    assert len(set(small.entities)) == 40
    assert all(re.fullmatch(r"[a-z]+", e) for e in small.entities)
    assert len(small.corpus) == f["mentions"].sum() == small.counts["count"].sum() == REF_SMALL["corpus"]
    assert f["type"].value_counts().to_dict() == REF_SMALL["types"]
    assert small.entities[:3] == REF_SMALL["entities"]


REF_SMALL = {"corpus": 1258, "types": {"rare": 163, "unseen": 18, "frequent": 14, "contested": 5},
             "entities": ("zuliba", "traithus", "draituthim")}


# ---------------------------------------------------------------- the corpus
def test_corpus_recount(small):
    found = _recount(small)
    f = small.facts.set_index("fact")
    expected = Counter({(f.at[r.fact, "entity"], f.at[r.fact, "relation"], r.value): r.count
                        for r in small.counts.itertuples()})
    assert found == expected
    assert (small.counts["count"] > 0).all()
    assert not small.counts.duplicated(["fact", "value"]).any()


def test_counts_match_facts(small):
    f = small.facts
    per_fact = small.counts.groupby("fact")["count"].sum().reindex(f["fact"], fill_value=0)
    np.testing.assert_array_equal(per_fact.to_numpy(), f["mentions"].to_numpy())
    true = small.counts.merge(f[["fact", "value"]], on=["fact", "value"])
    n_true = true.set_index("fact")["count"].reindex(f["fact"], fill_value=0)
    np.testing.assert_array_equal(n_true.to_numpy(), f["n_true"].to_numpy())
    stated = f["mentions"] > 0
    np.testing.assert_allclose(f.loc[stated, "true_rate"], f.loc[stated, "n_true"] / f.loc[stated, "mentions"],
                               rtol=0, atol=0)
    assert f.loc[~stated, "true_rate"].isna().all()
    emp = small.empirical()
    np.testing.assert_allclose(emp.groupby("fact")["p"].sum(), 1.0, rtol=1e-12)
    # every stated value is in the relation's value set
    rel = f.set_index("fact")["relation"]
    assert all(v in small.values[rel[fact]] for fact, v in zip(small.counts["fact"], small.counts["value"]))


def test_corpus_is_shuffled(small):
    # The corpus is not grouped by fact: consecutive sentences rarely share an entity.
    ents = [s.split()[0] if s.split()[0] in small.entities else None for s in small.corpus]
    same = np.mean([a is not None and a == b for a, b in zip(ents, ents[1:])])
    assert same < 0.1


# ---------------------------------------------------------------- fact types
@pytest.mark.parametrize("which", ["small", "default"])
def test_fact_types(which, request):
    w = request.getfixturevalue(which)
    cfg, f = w.config, w.facts
    assert set(f["type"]) <= set(FACT_TYPES)
    m = f["mentions"]
    assert ((f["type"] == "unseen") == (m == 0)).all()
    assert (f["type"].isin(["frequent", "contested"]) == (m >= cfg.frequent_min)).all()
    assert ((f["type"] == "rare") == m.between(1, cfg.frequent_min - 1)).all()
    n_frequent = int((m >= cfg.frequent_min).sum())
    n_contested = int((f["type"] == "contested").sum())
    assert n_contested == round(cfg.contested_share * n_frequent)
    assert abs(n_contested / n_frequent - cfg.contested_share) <= 0.5 / n_frequent + 1e-12


@pytest.mark.parametrize("which", ["small", "default"])
def test_contested_misconception(which, request):
    w = request.getfixturevalue(which)
    f = w.facts
    counts = w.counts.set_index(["fact", "value"])["count"]
    contested = f[f["type"] == "contested"]
    assert len(contested) > 0
    assert (f.loc[f["type"] != "contested", "misconception"] == "").all()
    for r in contested.itertuples():
        assert r.misconception in w.values[r.relation]
        assert r.misconception != r.value
        assert r.misconception != r.entity
        k = counts.get((r.fact, r.misconception), 0)
        assert k > r.mentions / 2            # strictly more than half the statements
        assert k > r.n_true                  # so the misconception is the corpus's mode


def test_frequent_truth_is_mode(default):
    # Docstring: frequent facts have no dominant wrong value (true for this seed's world).
    f = default.facts[default.facts["type"] == "frequent"]
    top_wrong = (default.counts.merge(f[["fact", "value"]], on="fact", suffixes=("", "_true"))
                 .query("value != value_true").groupby("fact")["count"].max()
                 .reindex(f["fact"], fill_value=0))
    assert (f["n_true"].to_numpy() > top_wrong.to_numpy()).all()


def test_noise_rate_law(default):
    # noise_rate ~ Beta(noise_a, noise_b): KS test against the law.
    cfg = default.config
    res = stats.kstest(default.facts["noise_rate"], stats.beta(cfg.noise_a, cfg.noise_b).cdf)
    assert res.pvalue > 0.01


# ---------------------------------------------------------------- mentions
def test_mentions_heavy_tail_against_theory():
    # P(m >= x | stated) = x^-alpha below the cap; the popularity re-ranking permutes the draws,
    # so the marginal law is unchanged. Two relations keep the build fast (4000 facts).
    cfg = WorldConfig(n_entities=2000, relations=("color", "pet"))
    w = build(cfg, seed=0)
    m = w.facts["mentions"].to_numpy()
    stated = m[m > 0]
    assert m.max() <= cfg.max_mentions
    assert abs((m == 0).mean() - cfg.p_unseen) < 0.02
    for x in (2, 4, 10, 30):
        tail = (stated >= x).mean() / (stated >= 1).mean()
        se = math.sqrt(x ** -cfg.mention_alpha * (1 - x ** -cfg.mention_alpha) / len(stated))
        assert abs(tail - x ** -cfg.mention_alpha) < max(4 * se, 0.01), x
    # the cap collects the tail beyond it
    assert abs((stated == cfg.max_mentions).mean() - cfg.max_mentions ** -cfg.mention_alpha) < 0.01


def _pairwise_spearman(w):
    p = w.facts.pivot(index="entity", columns="relation", values="mentions")
    rho = p.corr(method="spearman").to_numpy()
    return rho[np.triu_indices_from(rho, 1)]


@pytest.mark.parametrize("noise", [None, 1.0])
def test_mentions_popularity_against_theory(noise, default):
    if noise is not None:
        default = build(WorldConfig(popularity_noise=noise), seed=0)
    # Scores of one entity's facts share its popularity: corr = 1 / (1 + noise^2), and the rank
    # correlation of the counts is about Spearman's (6/pi) asin(corr / 2) for normal scores
    # (0.48 at noise 1, 0.65 at noise 0.7; ties at small counts move it a little).
    rho = _pairwise_spearman(default)
    corr = 1 / (1 + default.config.popularity_noise ** 2)
    theory = 6 / np.pi * np.arcsin(corr / 2)
    assert rho.mean() > 0.3
    assert abs(rho.mean() - theory) < 0.1
    assert (rho > 0.2).all()


def test_mentions_unrelated_without_popularity():
    w = build(WorldConfig(popularity_noise=float("inf")), seed=0)
    rho = _pairwise_spearman(w)
    assert abs(rho.mean()) < 0.07
    assert np.abs(rho).max() < 0.3
    # the marginal law does not depend on the ranking: same draws, permuted
    d = build(WorldConfig(), seed=0)
    assert sorted(w.facts["mentions"]) == sorted(d.facts["mentions"])


# ---------------------------------------------------------------- mentor and two-hop
def test_mentor_relation(small):
    f = small.facts[small.facts["relation"] == "mentor"]
    assert len(f) == len(small.entities)
    assert (f["value"] != f["entity"]).all()
    assert f["value"].isin(small.entities).all()
    said = small.counts.merge(f[["fact", "entity"]], on="fact")
    assert said["value"].isin(small.entities).all()
    assert (said["value"] != said["entity"]).all()   # the corpus never names oneself as mentor


def test_twohop(small):
    t = small.twohop
    truth = small.facts.set_index(["entity", "relation"])["value"]
    others = [r for r in SMALL.relations if r != "mentor"]
    assert len(t) == len(small.entities) * len(others)
    assert (t["via"] == "mentor").all()
    assert set(t["relation"]) == set(others)
    for r in t.itertuples():
        assert r.bridge == truth[(r.entity, "mentor")]
        assert r.value == truth[(r.bridge, r.relation)]
        assert r.bridge != r.entity


def test_twohop_without_mentor():
    w = build(WorldConfig(n_entities=10, relations=("color", "pet")), seed=0)
    assert w.twohop.empty
    assert list(w.twohop.columns) == ["entity", "via", "bridge", "relation", "value"]


# ---------------------------------------------------------------- split
@pytest.mark.parametrize("which", ["small", "default"])
def test_split_stratified(which, request):
    w = request.getfixturevalue(which)
    f = w.facts
    assert set(f["split"]) == {"train", "heldout"}
    train, held = set(f.loc[f.split == "train", "fact"]), set(f.loc[f.split == "heldout", "fact"])
    assert not train & held
    assert train | held == set(f["fact"])
    for t, g in f.groupby("type"):
        n_held = int((g["split"] == "heldout").sum())
        assert abs(n_held - w.config.heldout_share * len(g)) <= 1, t


def test_split_share():
    w = build(replace(SMALL, heldout_share=0.2), seed=3)
    for t, g in w.facts.groupby("type"):
        assert abs((g["split"] == "heldout").sum() - 0.2 * len(g)) <= 1, t


# ---------------------------------------------------------------- prompts
def test_prompts_statement(small):
    P = small.prompts("statement")
    f = small.facts
    assert list(P.columns) == ["fact", "prompt", "candidates", "target", "form"]
    assert P["fact"].tolist() == f["fact"].tolist()
    assert (P["form"] == "statement").all()
    assert P["target"].tolist() == f["value"].tolist()
    for p, r in zip(P.itertuples(), f.itertuples()):
        assert p.candidates == small.values[r.relation]
        assert p.prompt == p.prompt.strip()
        assert p.prompt + " " + r.value + " ." == RELATIONS[r.relation].statement(r.entity, r.value)
        for v in p.candidates[:3]:
            assert p.prompt + " " + v + " ." == RELATIONS[r.relation].statement(r.entity, v)
    # The statement form is the corpus's canonical phrasing: each sentence uses it with
    # probability 1 / (number of templates) = 1/4.
    prompts = {p.prompt for p in P.itertuples()}
    canonical = np.mean([s.rsplit(" ", 2)[0] in prompts or s.rsplit(" ", 3)[0] in prompts
                         for s in small.corpus])
    se = math.sqrt(0.25 * 0.75 / len(small.corpus))
    assert abs(canonical - 0.25) < 4 * se


def test_prompts_statement_reference(small):
    P = small.prompts("statement").set_index("fact")
    e = small.facts.set_index("fact")
    for fact in (0, 3, 4):
        ent, rel = e.at[fact, "entity"], e.at[fact, "relation"]
        want = {"home": f"the home of {ent} is", "pet": f"the pet of {ent} is a",
                "mentor": f"the mentor of {ent} is"}[rel]
        assert P.at[fact, "prompt"] == want


def test_prompts_qa(small):
    P = small.prompts("qa")
    f = small.facts
    assert (P["form"] == "qa").all()
    text = "\n".join(small.corpus)
    for p, r in zip(P.itertuples(), f.itertuples()):
        assert p.prompt.startswith("Q :")
        assert p.prompt.endswith("A :")
        assert p.prompt == qa_prompt(RELATIONS[r.relation].question.format(e=r.entity))
        assert r.entity in p.prompt
        assert p.prompt not in text
        assert p.candidates == small.values[r.relation]
    assert "Q" not in text.split() and "A" not in text.split()


def test_prompts_subset(small):
    sub = small.facts[small.facts["type"] == "unseen"]
    for form in FORMS:
        P = small.prompts(form, facts=sub)
        assert P["fact"].tolist() == sub["fact"].tolist()
        pd.testing.assert_frame_equal(P, small.prompts(form).set_index("fact").loc[sub["fact"]].reset_index())


def test_vocabulary(small):
    vocab = small.vocabulary()
    assert vocab == sorted(set(vocab))
    v = set(vocab)
    assert {w for s in small.corpus for w in s.split()} <= v
    assert {w for vs in small.values.values() for c in vs for w in c.split()} <= v
    assert set(small.entities) <= v
    for form in FORMS:
        assert {w for p in small.prompts(form)["prompt"] for w in p.split()} <= v
    # no more than the corpus words, the value words and the fixed template words
    template_words = {w for rel in RELATIONS.values()
                      for t in (*rel.templates, qa_prompt(rel.question)) for w in t.format(e="", v="").split()}
    value_words = {w for vs in small.values.values() for c in vs for w in c.split()}
    assert v == template_words | value_words | set(small.entities) | {w for s in small.corpus for w in s.split()}


# ---------------------------------------------------------------- persistence
@pytest.mark.parametrize("cfg", [SMALL, replace(SMALL, relations=("color", "pet"), popularity_noise=float("inf")),
                                 replace(SMALL, qa_share=0.25), replace(SMALL, qa_share=0.25, control_share=0.5)])
def test_save_load_roundtrip(cfg, tmp_path):
    w = build(cfg, seed=2)
    w.save(tmp_path / "w")
    v = World.load(tmp_path / "w")
    assert v.config == w.config
    assert v.seed == 2
    assert v.entities == w.entities
    assert v.values == w.values
    assert v.corpus == w.corpus
    assert v.format_entities == w.format_entities
    assert v.control_entities == w.control_entities
    for name in ("facts", "counts", "twohop"):
        pd.testing.assert_frame_equal(getattr(v, name), getattr(w, name))
    # the loaded world behaves the same
    pd.testing.assert_frame_equal(v.prompts("qa"), w.prompts("qa"))
    assert v.vocabulary() == w.vocabulary()


def test_save_load_empty_corpus(tmp_path):
    w = build(WorldConfig(n_entities=4, relations=("color",), p_unseen=0.99), seed=0)
    assert w.corpus == () and (w.facts["type"] == "unseen").all()
    w.save(tmp_path)
    assert World.load(tmp_path).corpus == ()


# ---------------------------------------------------------------- QA text in pretraining
def test_qa_share_adds_qa_pairs_about_other_entities_and_leaves_the_world_as_it_was(small):
    q = build(replace(SMALL, qa_share=0.25), seed=0)
    assert len(q.format_entities) == 10 and not set(q.format_entities) & set(small.entities)
    for name in ("facts", "counts", "twohop"):
        pd.testing.assert_frame_equal(getattr(q, name), getattr(small, name))
    assert q.entities == small.entities and q.values == small.values
    extra = Counter(q.corpus) - Counter(small.corpus)
    assert sum(Counter(small.corpus).values()) + sum(extra.values()) == len(q.corpus)   # the old lines all kept
    qa = [line for line in extra.elements()]
    assert qa and all(line.startswith("Q : ") and " ? A : " in line for line in qa)
    fmt = set(q.format_entities)
    for line in qa:   # a QA pair about a format entity, answered from its relation's values (a mentor among them)
        question, answer = line.split(" A : ")
        entity = next(e for e in fmt if e in question.split())
        rel = next(r for r in RELATIONS.values() if qa_prompt(r.question.format(e=entity)) == question + " A :")
        assert answer in (fmt - {entity} if rel.name == "mentor" else set(q.values[rel.name]))
    # every format fact is stated at least once, and only ever with one value
    pairs = {line.split(" A : ")[0]: line.split(" A : ")[1] for line in qa}
    assert len(pairs) == len(fmt) * len(SMALL.relations)
    assert set(q.vocabulary()) >= fmt


def test_qa_share_zero_is_the_world_without_the_option(tmp_path, small):
    """A world built with qa_share 0 writes the files it wrote before the option existed: its config record
    leaves the option out (world.NEUTRAL), so worlds and artifacts built before stay valid."""
    import json

    from dint import world as world_mod
    small.save(tmp_path / "w")
    assert "qa_share" not in json.loads((tmp_path / "w" / "world.json").read_text())["config"]
    assert "format_entities" not in json.loads((tmp_path / "w" / "world.json").read_text())
    assert world_mod.config_dict(replace(SMALL, qa_share=0.1))["qa_share"] == 0.1
    assert small.format_entities == ()


def test_control_entities_are_new_words_of_the_vocabulary_that_no_text_states(small):
    """control_share adds entities the format-only control trains on: in the vocabulary, in no corpus line, disjoint
    from the world's and the QA-format entities, and the world is otherwise the one built without them."""

    c = build(replace(SMALL, qa_share=0.25, control_share=0.5), seed=0)
    q = build(replace(SMALL, qa_share=0.25), seed=0)
    assert len(c.control_entities) == 20 and len(set(c.control_entities)) == 20
    assert not set(c.control_entities) & (set(c.entities) | set(c.format_entities))
    for name in ("facts", "counts", "twohop"):
        pd.testing.assert_frame_equal(getattr(c, name), getattr(q, name))
    assert c.corpus == q.corpus and c.format_entities == q.format_entities
    corpus_words = {w for line in c.corpus for w in line.split()}
    assert not set(c.control_entities) & corpus_words
    assert set(c.vocabulary()) - set(q.vocabulary()) == set(c.control_entities)
    assert small.control_entities == ()
    from dint import world as world_mod
    assert "control_share" not in world_mod.config_dict(small.config)   # worlds built before the option stay valid
