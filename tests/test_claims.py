"""The claims registry: its schema, the verdict rules, Holm across claims, sanity apart, prose checks."""
import math

import numpy as np
import pytest
import yaml

from dint import claims, claims_tex
from dint.pipeline import paths
from dint.stats import adjust


def _entry(cid, number, kind="claim", **rule):
    sentences = ({"passed": f"{cid} passed.", "failed": f"{cid} failed."} if kind == "sanity" else
                 {v: f"{cid} is {v}." for v in claims.VERDICTS})
    e = {"id": cid, "kind": kind, "number": number, "observable": "o", "comparator": "c",
         "predictions": {"installation": "i", "distributional": "d"}, "test": "t",
         "rule": rule or {"direction": "greater", "sesoi": 0.05}, "power": "p", "refutation": "r",
         "sentences": sentences, "registered": "2026-12-06"}
    if kind == "replication":
        e["source"] = "Someone et al. (2020)"
    return e


def _registry(tmp_path, entries, alpha=0.05):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"alpha": alpha, "claims": entries}))
    return claims.load(path)


def _r(est, lo, hi, p=None):
    return {"estimate": est, "ci_low": lo, "ci_high": hi, "pvalue": p, "n": 100, "method": "m", "reason": ""}


def test_the_registry_of_the_paper_loads_with_one_primary_claim_per_notebook():
    reg = claims.load()
    assert {c.kind for c in reg.claims} == set(claims.KINDS)
    notebooks = sorted(p.stem for p in paths.notebooks().glob("*.ipynb"))
    assert sorted(c.notebook for c in reg.claims if c.primary) == notebooks
    for c in reg.claims:   # a claim says how it could fail; a sanity entry why it cannot, or that it checks a manipulation
        assert c.refutation.startswith(("Cannot fail", "A manipulation check")) == (c.kind == "sanity"), c.id


def test_every_text_of_the_registry_reaches_latex_as_ascii():
    """What the paper prints from the registry (its tables and sentences) goes through `claims_tex.escape`, which puts
    the registry's symbols in math mode; a character it does not know would stop the paper's build."""
    texts = []
    for c in claims.load().claims:
        texts += [c.id, c.observable, c.comparator, c.test, c.power, c.refutation, c.source, *c.changes,
                  *c.predictions.values(), *c.sentences.values()]
    bad = sorted({ch for t in texts for ch in claims_tex.escape(t) if not ch.isascii()})
    assert not bad, f"characters outside ASCII that claims_tex.escape leaves for LaTeX: {bad}"
    assert claims_tex.escape("β ≈ 2 ± 0.1, κ − 1") == r"$\beta$ $\approx$ 2 $\pm$ 0.1, $\kappa$ $-$ 1"


def test_verdict_rules(tmp_path):
    entries = [_entry("up", "01_mechanism/a"), _entry("small", "01_mechanism/b"), _entry("null", "01_mechanism/c"),
               _entry("wrong-way", "01_mechanism/d"), _entry("vague", "01_mechanism/e"),
               _entry("down", "01_mechanism/f", direction="less", sesoi=0.1), _entry("nop", "01_mechanism/g"),
               _entry("missing", "01_mechanism/zzz")]
    reg = _registry(tmp_path, entries)
    results = {"01_mechanism": {"a": _r(0.2, 0.1, 0.3, 1e-6), "b": _r(0.02, 0.01, 0.03, 1e-6),
                                "c": _r(0.0, -0.02, 0.02, 0.9), "d": _r(-0.2, -0.3, -0.1, 1e-6),
                                "e": _r(0.05, -0.1, 0.2, 0.4), "f": _r(-0.3, -0.5, -0.2, 1e-5),
                                "g": _r(0.0, -0.01, 0.01)}}
    table = claims.judge(reg, results).set_index("id")
    assert table.loc["up", "verdict"] == "supported"
    assert table.loc["small", "verdict"] == "contradicted"   # significant, but the interval excludes an effect of 0.05
    assert table.loc["null", "verdict"] == "contradicted"
    assert table.loc["wrong-way", "verdict"] == "contradicted"
    assert table.loc["vague", "verdict"] == "inconclusive"
    assert table.loc["down", "verdict"] == "supported"
    assert table.loc["nop", "verdict"] == "contradicted"      # no p-value: the interval can still contradict
    assert table.loc["missing", "verdict"] == "inconclusive" and "no number 'zzz'" in table.loc["missing", "reason"]
    # Holm over the claims that have a p-value, in registry order
    p = table["pvalue"].dropna()
    assert np.allclose(table.loc[p.index, "pvalue_holm"], adjust(p.to_numpy(), method="holm"))


def test_significant_but_small_effect_is_inconclusive(tmp_path):
    reg = _registry(tmp_path, [_entry("small", "01_mechanism/a", direction="greater", sesoi=0.1)])
    table = claims.judge(reg, {"01_mechanism": {"a": _r(0.05, 0.02, 0.12, 1e-4)}})
    assert table.verdict[0] == "inconclusive" and "smaller than the smallest effect" in table.reason[0]


def test_holm_can_turn_a_support_into_inconclusive(tmp_path):
    entries = [_entry(f"c{i}", f"01_mechanism/k{i}") for i in range(5)]
    reg = _registry(tmp_path, entries)
    results = {"01_mechanism": {f"k{i}": _r(0.2, 0.0, 0.4, 0.02) for i in range(5)}}
    assert set(claims.judge(reg, results).verdict) == {"inconclusive"}   # 0.02 * 5 > 0.05
    reg1 = _registry(tmp_path, entries[:1])
    assert claims.judge(reg1, {"01_mechanism": results["01_mechanism"]}).verdict[0] == "supported"


def test_sanity_entries_are_judged_apart(tmp_path):
    entries = [_entry("bound", "02_engineering_clues/kl", kind="sanity", at_most="kl_bound"),
               _entry("chance", "00_base_model/acc", kind="sanity", interval_contains="chance"),
               _entry("all", "01_mechanism/flag", kind="sanity", equals=1, tolerance=0),
               _entry("claim", "01_mechanism/a")]
    reg = _registry(tmp_path, entries)
    results = {"02_engineering_clues": {"kl": _r(1.5, 1.4, 1.6), "kl_bound": 1.77},
               "00_base_model": {"acc": _r(0.05, 0.02, 0.1), "chance": 0.12},
               "01_mechanism": {"flag": True, "a": _r(0.2, 0.1, 0.3, 0.01)}}
    table = claims.judge(reg, results).set_index("id")
    assert table.loc["bound", "verdict"] == "passed"
    assert table.loc["chance", "verdict"] == "failed" and "interval contains 0.12" in table.loc["chance", "reason"]
    assert table.loc["all", "verdict"] == "passed"
    assert math.isnan(table.loc["bound", "pvalue_holm"])
    assert table.loc["claim", "pvalue_holm"] == 0.01          # alone in its family: sanity entries are not in it
    line = claims.summary(table.reset_index())
    assert line == "claims: 1 registered, 1 supported, 0 contradicted, 0 inconclusive; sanity 2 of 3 passed; runs 1"


def test_a_contradicted_claim_cannot_keep_its_supported_sentence(tmp_path):
    reg = _registry(tmp_path, [_entry("gain", "01_mechanism/a")])
    supported = claims.judge(reg, {"01_mechanism": {"a": _r(0.2, 0.1, 0.3, 1e-4)}})
    contradicted = claims.judge(reg, {"01_mechanism": {"a": _r(0.0, -0.01, 0.01, 0.9)}})
    text = "Intro. gain is\n  supported. More text."
    assert claims.check_text(text, reg, supported) == []
    problems = claims.check_text(text, reg, contradicted)
    assert len(problems) == 1 and "'gain' as supported" in problems[0] and "verdict is contradicted" in problems[0]
    assert claims.sentence(reg, contradicted, "gain") == "gain is contradicted."


@pytest.mark.parametrize("change, match", [
    ({"kind": "belief"}, "kind='belief'"),
    ({"number": "mechanism/sft"}, "number='mechanism/sft'"),
    ({"number": "09_nothing/a"}, "no notebook '09_nothing'"),
    ({"predictions": {"installation": "i"}}, "predictions"),
    ({"rule": {"direction": "up", "sesoi": 0.1}}, "direction='up'"),
    ({"rule": {"direction": "greater", "sesoi": 0}}, "sesoi=0"),
    ({"rule": {"direction": "greater", "sesoi": 0.1, None: 0.5}}, "unknown keys"),   # YAML reads `null:` as None
    ({"sentences": {"supported": "a", "contradicted": "a", "inconclusive": "b"}}, "must differ"),
    ({"registered": "yesterday"}, "registered='yesterday'"),
    ({"changes": "edited"}, "changes"),
    ({"observable": ""}, "'observable'"),
])
def test_load_iv(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        _registry(tmp_path, [{**_entry("x", "01_mechanism/a"), **change}])


def test_load_iv_registry(tmp_path):
    with pytest.raises(ValueError, match="used twice"):
        _registry(tmp_path, [_entry("x", "01_mechanism/a"), _entry("x", "01_mechanism/b")])
    with pytest.raises(ValueError, match="alpha=1.5"):
        _registry(tmp_path, [_entry("x", "01_mechanism/a")], alpha=1.5)
    with pytest.raises(ValueError, match="exactly one of"):
        _registry(tmp_path, [_entry("s", "01_mechanism/a", kind="sanity", at_most=1, at_least=0)])
    with pytest.raises(ValueError, match="source"):
        _registry(tmp_path, [{**_entry("x", "01_mechanism/a", kind="replication"), "source": ""}])


def test_two_sided_and_equivalence_rules(tmp_path):
    entries = [_entry("either", "05_compound_failure/a", direction="two-sided", sesoi=0.05),
               _entry("either-null", "05_compound_failure/b", direction="two-sided", sesoi=0.05),
               _entry("same", "07_verification/r", direction="equivalent", sesoi=0.5),
               _entry("not-same", "07_verification/s", direction="equivalent", sesoi=0.5),
               _entry("wide", "07_verification/t", direction="equivalent", sesoi=0.5)]
    reg = _registry(tmp_path, entries)
    results = {"05_compound_failure": {"a": _r(-0.1, -0.15, -0.05, 1e-4), "b": _r(0.01, -0.03, 0.04, 0.6)},
               "07_verification": {"r": _r(0.1, -0.2, 0.4, 0.3), "s": _r(0.8, 0.6, 0.9, 1e-6),
                                   "t": _r(0.3, -0.3, 0.7, 0.2)}}
    table = claims.judge(reg, results).set_index("id")
    assert table.loc["either", "verdict"] == "supported"            # a large effect the other way is still an effect
    assert table.loc["either-null", "verdict"] == "contradicted"
    assert table.loc["same", "verdict"] == "supported"
    assert table.loc["not-same", "verdict"] == "contradicted"
    assert table.loc["wide", "verdict"] == "inconclusive"
    # equivalence claims are judged by their interval, outside the Holm family
    assert table.loc[["same", "not-same", "wide"], "pvalue_holm"].isna().all()
    assert np.allclose(table.loc[["either", "either-null"], "pvalue_holm"], adjust(np.array([1e-4, 0.6]), method="holm"))


def test_primary_iv(tmp_path):
    with pytest.raises(ValueError, match="more than one primary"):
        _registry(tmp_path, [{**_entry("x", "01_mechanism/a"), "primary": True},
                             {**_entry("y", "01_mechanism/b"), "primary": True}])
    with pytest.raises(ValueError, match="primary=True"):
        _registry(tmp_path, [{**_entry("x", "01_mechanism/a", kind="replication"), "primary": True}])


def test_an_entry_that_does_not_apply_to_a_reference_is_left_out(tmp_path):
    entries = [{**_entry("world-only", "00_base_model/a"), "applies": ["world"]}, _entry("both", "01_mechanism/b"),
               {**_entry("unseen", "00_base_model/c", kind="sanity", at_most=1.0), "applies": ["world"]}]
    reg = _registry(tmp_path, entries)
    results = {"00_base_model": {"a": _r(0.5, 0.4, 0.6, 0.03), "c": _r(0.5, 0.4, 0.6)},
               "01_mechanism": {"b": _r(0.5, 0.4, 0.6, 0.02)}}
    real = claims.judge(reg, results, reference="real").set_index("id")
    assert real.loc["world-only", "verdict"] == real.loc["unseen", "verdict"] == claims.NOT_APPLICABLE
    assert real.loc["both", "pvalue_holm"] == 0.02                  # alone in the family on real facts
    world = claims.judge(reg, results, reference="world").set_index("id")
    assert world.loc["both", "pvalue_holm"] == pytest.approx(0.04)  # beside world-only
    assert claims.summary(real.reset_index()).startswith("claims: 1 registered, 1 supported")
    assert "not measured on this reference" in claims.sentence(reg, real.reset_index(), "world-only")
    tex = claims_tex.tex(reg, real.reset_index())
    assert "world-only" not in tex.split(r"\newcommand{\claimstable}")[1]   # not in the tables
    # both tables are long tables that take their caption as an argument and break across pages
    for name in ("claimstable", "sanitytable"):
        table = tex.split(rf"\newcommand{{\{name}}}[1]")[1].split(r"\end{longtable}")[0]
        assert r"\begin{longtable}" in table and r"\caption{#1}" in table and r"\endhead" in table
    with pytest.raises(ValueError, match="applies="):
        _registry(tmp_path, [{**_entry("x", "01_mechanism/a"), "applies": ["mars"]}])
    with pytest.raises(ValueError, match="reference="):
        claims.judge(reg, results, reference="mars")


def test_verdicts_grouped_for_the_abstract(tmp_path):
    # the abstract's and introduction's lists come from the verdicts: which distributional predictions held,
    # failed or were not settled, the primary claims' sentences by group, and the failed sanity checks
    entries = [{**_entry("held", "01_mechanism/a"), "primary": True}, _entry("failed", "02_engineering_clues/b"),
               {**_entry("open", "03_diagnosability/c"), "primary": True}, _entry("also-held", "04_trust_reliability/d"),
               _entry("check", "05_compound_failure/e", kind="sanity", at_most=0.1),
               {**_entry("world-only", "06_resources/f"), "applies": ["world"]}]
    reg = _registry(tmp_path, entries)
    results = {"01_mechanism": {"a": _r(0.5, 0.4, 0.6, 1e-4)}, "02_engineering_clues": {"b": _r(0.0, -0.01, 0.01, 0.9)},
               "03_diagnosability": {"c": _r(0.05, -0.1, 0.2, 0.5)}, "04_trust_reliability": {"d": _r(0.3, 0.2, 0.4, 1e-5)},
               "05_compound_failure": {"e": _r(0.5, 0.4, 0.6)}, "06_resources": {"f": _r(0.0, -0.01, 0.01, 0.9)}}
    table = claims.judge(reg, results, reference="real")
    lines = dict(line[len(r"\newcommand{"):].split("}{", 1) for line in claims_tex.grouping_tex(reg, table))
    lines = {k.lstrip("\\"): v[:-1] for k, v in lines.items()}
    assert lines["claimleaning"] == ("the distributional framing's prediction held for 2 of the 4 claims and "
                                     "replications, failed for 1 and was not settled for 1")
    assert r"\item failed is contradicted. (\texttt{failed})" in lines["claimsagainst"]
    assert lines["claimsagainst"].startswith(r"\begin{itemize}") and lines["claimsagainst"].count(r"\item ") == 1
    assert "held" in lines["claimsheld"] and "also" in lines["claimsheld"] and " and " in lines["claimsheld"]
    assert lines["primaryheld"] == r"\emph{Held:} held is supported." and lines["primaryagainst"] == ""
    assert lines["primaryunsettled"] == r"\emph{Not settled:} open is inconclusive."
    assert lines["sanityfailed"] == r"\texttt{check}"
    assert "world-only" not in "".join(lines.values())   # not applicable on real facts
    # nothing failed: the list says so in a sentence
    table = claims.judge(reg, {**results, "02_engineering_clues": {"b": _r(0.3, 0.2, 0.4, 1e-6)}}, reference="real")
    assert r"\newcommand{\claimsagainst}{It failed for none.}" in claims_tex.grouping_tex(reg, table)
