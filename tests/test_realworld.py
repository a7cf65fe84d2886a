"""Tests for dint.realworld: real facts with reference answers, shaped like dint.world.World."""
import operator
import string
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dint.countries import CAPITAL_MISCONCEPTIONS
from dint.realworld import REAL_FACT_TYPES, REAL_RELATIONS, RealWorld, RealWorldConfig, build, check_arithmetic, evaluate, matches, normalise
from dint.world import FORMS

pytest.importorskip("countryinfo")
pytest.importorskip("pycountry")

CFG = RealWorldConfig()


@pytest.fixture(scope="module")
def rw():
    return build(CFG, seed=0)


def _fact(w: RealWorld, entity: str, relation: str) -> pd.Series:
    rows = w.facts[(w.facts.entity == entity) & (w.facts.relation == relation)]
    assert len(rows) == 1, (entity, relation, len(rows))
    return rows.iloc[0]


# ---------------------------------------------------------------- input validation
@pytest.mark.parametrize("field, value", [
    ("relations", ("capital", "nope")),
    ("relations", ()),
    ("relations", ("capital", "capital")),
    ("n_candidates", 1),
    ("n_candidates", 50),
    ("min_population", -1),
    ("n_arithmetic", 0),             # arithmetic is in the default relations
    ("n_arithmetic", 5000),          # more small problems than exist
    ("heldout_share", 1.0),
    ("heldout_share", -0.1),
    ("multiplication_share", 1.5),
    ("small_share", float("nan")),
    ("arithmetic_max", 10),
    ("multiplication_max", 1),
])
def test_realworldconfig_iv(field, value):
    with pytest.raises(ValueError, match=f"RealWorldConfig.{field}"):
        RealWorldConfig(**{field: value})


def test_build_iv():
    with pytest.raises(TypeError, match="RealWorldConfig"):
        build({"relations": ("capital",)})
    with pytest.raises(ValueError, match="min_population"):
        build(RealWorldConfig(relations=("capital",), min_population=10**10))


# ---------------------------------------------------------------- determinism and shape
def test_build_deterministic(rw):
    again = build(CFG, seed=0)
    pd.testing.assert_frame_equal(rw.facts, again.facts)
    assert rw.values == again.values
    other = build(CFG, seed=1)
    assert not rw.facts["split"].equals(other.facts["split"])
    assert list(rw.facts["candidates"]) != list(other.facts["candidates"])
    # the country facts come from the data, not the seed
    country = rw.facts.relation != "arithmetic"
    assert rw.facts.loc[country, "value"].equals(other.facts.loc[country, "value"])


def test_facts_table(rw):
    f = rw.facts
    assert list(f["fact"]) == list(range(len(f)))
    assert {"fact", "entity", "relation", "value", "type", "misconception", "split", "candidates"} <= set(f)
    assert set(f["relation"]) == set(CFG.relations)
    assert set(f["type"]) <= set(REAL_FACT_TYPES)
    assert list(dict.fromkeys(f["relation"])) == list(CFG.relations)      # grouped in config order
    assert not f.duplicated(["entity", "relation"]).any()
    for rel in CFG.relations:  # sizes of the default build (countryinfo 1.0.1, pycountry 26.2.16)
        assert len(f[f.relation == rel]) >= (150 if rel == "arithmetic" else 80), rel
    assert len(f[f.relation == "arithmetic"]) == CFG.n_arithmetic


def test_candidates(rw):
    for f in rw.facts.itertuples():
        c = f.candidates
        assert isinstance(c, tuple) and len(c) == CFG.n_candidates, f
        assert len({normalise(x) for x in c}) == len(c), f
        assert f.value in c
        assert sum(matches(x, f) for x in c) == 1, f                       # only the truth is accepted
        if f.type == "contested":
            assert f.misconception in c and f.misconception != f.value
        assert set(c) <= set(rw.values[f.relation])


def test_values(rw):
    for rel, vals in rw.values.items():
        assert len(set(vals)) == len(vals)
        assert set(rw.facts.loc[rw.facts.relation == rel, "value"]) <= set(vals)
    assert "Paris" in rw.values["capital"] and "Sydney" in rw.values["capital"]


# ---------------------------------------------------------------- the facts themselves
@pytest.mark.parametrize("entity, relation, value", [
    ("France", "capital", "Paris"),
    ("France", "currency", "euro"),
    ("France", "language", "French"),
    ("France", "subregion", "Western Europe"),
    ("Japan", "capital", "Tokyo"),
    ("Japan", "currency", "yen"),
    ("Japan", "language", "Japanese"),
    ("Japan", "subregion", "Eastern Asia"),
    ("the United States", "capital", "Washington"),
    ("the United States", "currency", "United States dollar"),
    ("the United Kingdom", "currency", "pound sterling"),
    ("Kazakhstan", "capital", "Astana"),
    ("Croatia", "currency", "euro"),
    ("Brazil", "subregion", "South America"),
    ("Cuba", "subregion", "the Caribbean"),
])
def test_known_facts(rw, entity, relation, value):
    assert _fact(rw, entity, relation)["value"] == value


def test_aliases(rw):
    us = _fact(rw, "the United States", "capital")
    for answer in ("Washington, D.C.", "washington dc", "Washington DC", "Washington", " washington d.c. "):
        assert matches(answer, us), answer
    assert not matches("New York", us)
    assert matches("Japanese yen", _fact(rw, "Japan", "currency"))
    assert matches("the pound", _fact(rw, "the United Kingdom", "currency"))
    assert matches("Bogota", _fact(rw, "Colombia", "capital"))
    assert matches("Kiev", _fact(rw, "Ukraine", "capital"))
    assert matches("Southeast Asia", _fact(rw, "Vietnam", "subregion"))
    assert matches("Mandarin", _fact(rw, "China", "language"))
    for f in rw.facts.itertuples():
        assert f.aliases[0] == normalise(f.value) and matches(f.value, f)


def test_normalise():
    assert normalise("Washington, D.C.") == normalise("washington dc") == "washington dc"
    assert normalise("  The   Bahamas ") == "bahamas"
    assert normalise("Bogotá") == "bogota" and normalise("Chișinău") == "chisinau"
    assert normalise("Port-au-Prince") == "port au prince"
    assert normalise("Sana'a") == "sanaa" and normalise("N’Djamena") == "ndjamena"
    assert normalise("theodore") == "theodore"


def test_dropped(rw):
    d = rw.dropped
    reasons = {(n, r): why for n, r, why in d.itertuples(index=False)}
    assert "two capitals" in reasons[("Bolivia", "capital")]
    assert ("Hong Kong", "") in reasons and ("Burma", "") in reasons
    assert "several currencies" in reasons[("Panama", "currency")]
    entities = set(rw.facts.entity)
    assert "Myanmar" in entities and "Burma" not in entities and "Hong Kong" not in entities
    assert "Bolivia" in entities and ("Bolivia", "capital") not in set(zip(rw.facts.entity, rw.facts.relation))
    small = rw.facts.population.dropna()
    assert (small >= CFG.min_population).all()


# ---------------------------------------------------------------- types and split
def test_types(rw):
    f = rw.facts
    contested = f[f.type == "contested"]
    assert (contested.relation == "capital").all() and len(contested) >= 15
    assert ((f.misconception != "") == (f.type == "contested")).all()
    for row in contested.itertuples():
        assert row.misconception in CAPITAL_MISCONCEPTIONS.values()
    assert _fact(rw, "Australia", "capital")["misconception"] == "Sydney"
    countries = f[f.relation != "arithmetic"].drop_duplicates("entity")
    median = np.median(countries["population"].to_numpy(dtype=float))
    other = f[(f.relation != "arithmetic") & (f.type != "contested")]
    assert ((other.type == "frequent") == (other.population >= median)).all()
    uncontested = build(replace(CFG, relations=("capital",), contested=False), seed=0)
    assert "contested" not in set(uncontested.facts.type)


def test_split_stratified(rw):
    f = rw.facts
    assert set(f.split) == {"train", "heldout"}
    for (rel, kind), g in f.groupby(["relation", "type"]):
        assert (g.split == "heldout").sum() == round(CFG.heldout_share * len(g)), (rel, kind)
    none = build(replace(CFG, relations=("arithmetic",), heldout_share=0.0), seed=0)
    assert set(none.facts.split) == {"train"}


# ---------------------------------------------------------------- arithmetic
_OPS = {"+": operator.add, "-": operator.sub, "×": operator.mul}


def test_arithmetic(rw):
    a = rw.facts[rw.facts.relation == "arithmetic"]
    ops = set()
    for f in a.itertuples():
        x, op, y = f.entity.split(" ")
        ops.add(op)
        assert f.value == str(_OPS[op](int(x), int(y))) and int(f.value) >= 0
        assert f.type == ("frequent" if int(x) < 20 and int(y) < 20 else "rare")
        assert check_arithmetic(f.entity, f.value) and check_arithmetic(f.entity, f.value + ".")
        assert all(not check_arithmetic(f.entity, c) for c in f.candidates if c != f.value)
        assert all(c.isdigit() for c in f.candidates)
    assert ops == set(_OPS) and a.entity.is_unique
    assert {"frequent", "rare"} <= set(a.type)


def _slips(x: int, op: str, y: int) -> set[int]:
    """Typical wrong answers, computed independently of dint.realworld."""
    r = _OPS[op](x, y)
    out = {r + d for d in (-10, -2, -1, 1, 2, 10)}
    if op == "×":
        return out | {x * (y - 1), x * (y + 1), (x - 1) * y, (x + 1) * y, x + y}
    width = max(len(str(x)), len(str(y)))
    pairs = zip(str(x).zfill(width), str(y).zfill(width))
    digits = [(int(p) + int(q)) % 10 if op == "+" else abs(int(p) - int(q)) for p, q in pairs]
    return out | {int("".join(map(str, digits)))}


def test_arithmetic_distractors():
    cfg = RealWorldConfig(relations=("arithmetic",), n_arithmetic=60)
    w = build(cfg, seed=3)
    for f in w.facts.itertuples():
        x, op, y = f.entity.split(" ")
        expected = {str(v) for v in _slips(int(x), op, int(y)) if v >= 0} - {f.value}
        got = set(f.candidates) - {f.value}
        assert len(got & expected) == min(cfg.n_candidates - 1, len(expected)), f.entity


def test_evaluate_iv():
    assert evaluate("37 + 48") == 85 and evaluate("52 - 17") == 35 and evaluate("7 × 8") == 56
    assert evaluate("7*8") == 56 and evaluate("9 − 4") == 5
    for bad in ("__import__('os').system('true')", "1 + 2 + 3", "2 ** 8", "", "a + b", "-1 + 2"):
        with pytest.raises(ValueError, match="expression"):
            evaluate(bad)
    assert not check_arithmetic("2 + 2", "five") and not check_arithmetic("2 + 2", "5")


# ---------------------------------------------------------------- prompts and templates
def test_prompts(rw):
    for form in FORMS:
        P = rw.prompts(form)
        assert list(P.columns) == ["fact", "prompt", "candidates", "target", "form"]
        assert len(P) == len(rw.facts) and (P.form == form).all()
        assert (P.prompt == P.prompt.str.rstrip()).all() and (P.prompt.str.len() > 0).all()
        assert all(t in c for t, c in zip(P.target, P.candidates))
    fr = rw.facts[(rw.facts.entity == "France")]
    S = rw.prompts("statement", fr).set_index(fr.relation.to_numpy())["prompt"]
    assert S["capital"] == "The capital of France is"
    assert S["currency"] == "The currency of France is the"
    assert S["language"] == "The official language of France is"
    Q = rw.prompts("qa", fr).set_index(fr.relation.to_numpy())["prompt"]
    assert Q["capital"] == "Question: What is the capital of France?\nAnswer:"
    us = rw.prompts("statement", rw.facts[(rw.facts.entity == "the United States")])
    assert "The capital of the United States is" in set(us.prompt)
    expr = rw.facts[rw.facts.relation == "arithmetic"].iloc[:1]
    assert rw.prompts("statement", expr).prompt[0] == expr.entity.iloc[0] + " ="
    with pytest.raises(ValueError, match="form"):
        rw.prompts("chat")


def test_relation_templates(rw):
    for name in CFG.relations:
        rel = rw.relation(name)
        assert rel is REAL_RELATIONS[name] and len(rel.templates) >= 4
        for t in rel.templates:
            fields = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
            assert fields == {"e", "v"}, t
        assert rel.templates[0].endswith("{v}.")
    with pytest.raises(ValueError, match="relation"):
        rw.relation("mentor")
    # every document sentence starts like a sentence
    for f in rw.facts.itertuples():
        for t in rw.relation(f.relation).templates:
            s = t.format(e=f.entity, v=f.value)
            assert s[0].isupper() or s[0].isdigit(), s


# ---------------------------------------------------------------- persistence
def test_save_load_roundtrip(rw, tmp_path):
    rw.save(tmp_path / "rw")
    back = RealWorld.load(tmp_path / "rw")
    pd.testing.assert_frame_equal(back.facts, rw.facts)
    pd.testing.assert_frame_equal(back.dropped, rw.dropped)
    assert back.values == rw.values and back.config == rw.config and back.seed == rw.seed
    assert all(type(c) is tuple and all(type(x) is str for x in c) for c in back.facts.candidates)
    assert all(type(c) is tuple for c in back.facts.aliases)
    pd.testing.assert_frame_equal(back.prompts("qa"), rw.prompts("qa"))


def test_lower_population_threshold():
    w = build(RealWorldConfig(relations=("capital",), min_population=100_000), seed=0)
    assert _fact(w, "Belize", "capital")["misconception"] == "Belize City"
    assert _fact(w, "Luxembourg", "capital")["value"] == "Luxembourg"
    assert len(w.facts) > 150
