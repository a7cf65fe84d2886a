"""dint.format_control: a profile's verdicts beside its format control's, and the paired difference by run."""
import numpy as np
import pandas as pd
import pytest
import yaml

from dint import claims, claims_tex, format_control, replicated
from dint.analyses import replication


def _runs(values: dict, worlds=(0, 0, 1, 1, 2, 2), trains=(0, 1) * 3) -> pd.DataFrame:
    rows = []
    for (nb, key), ests in values.items():
        for w, t, e in zip(worlds, trains, ests):
            rows.append({"run": f"w{w}-t{t}", "world_seed": w, "train_seed": t, "notebook": nb, "key": key,
                         "estimate": e, "ci_low": e - 0.01, "ci_high": e + 0.01, "pvalue": 0.001})
    return pd.DataFrame(rows)


def _two_profiles(monkeypatch, shift):
    """Runs of tiny and of its control tiny-qa: every registered number far on its supported side, but on the
    control the number ``shift`` names moved by ``shift[key]``."""
    registry = claims.load()
    rng = np.random.default_rng(0)
    base = {}
    for c in registry.claims:
        key = (c.notebook, c.number.split("/")[1])
        if c.kind == "sanity":
            base.setdefault(key, [1.0] * 6)
            continue
        sign = -1 if c.rule["direction"] == "less" else 1
        far = 0.0 if c.rule["direction"] == "equivalent" else sign * 10 * c.rule["sesoi"]
        base[key] = list(c.rule["null"] + far + rng.normal(0, 0.001, 6))
    base[format_control.CHECK] = list(0.05 + rng.normal(0, 0.01, 6))   # the base barely answers the QA form
    control = {k: [x + shift.get(k, 0.0) + rng.normal(0, 0.001) for x in v] for k, v in base.items()}
    control[format_control.CHECK] = list(0.30 + rng.normal(0, 0.01, 6))
    tables = {"tiny": _runs(base), "tiny-qa": _runs(control)}
    read = []   # the profiles whose runs were read, in order

    def collect(name):
        read.append(name)
        return tables[name]
    collect.read = read
    monkeypatch.setattr(replication, "collect", collect)
    monkeypatch.setattr("dint.pipeline.config.replication", lambda name: list(range(6)))
    return registry


def test_the_registry_names_tinys_control_and_the_notebooks_compared():
    fc = claims.load().format_control
    assert fc.profiles == {"tiny": "tiny-qa"}
    assert fc.notebooks == ("01_mechanism", "04_trust_reliability", "05_compound_failure")
    assert format_control.control_of("tiny") == "tiny-qa" and format_control.control_of("smoke") is None


@pytest.mark.parametrize("change, says", [
    ({"profiles": {"tiny": "tiny"}}, "profiles="),
    ({"notebooks": ["99_nothing"]}, "notebooks="),
    ({"predictions": {"installation": "i"}}, "predictions"),
    ({"registered": "today"}, "registered="),
])
def test_a_bad_format_control_is_named(tmp_path, change, says):
    data = yaml.safe_load(claims.registry_path().read_text())
    data["format_control"].update(change)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=f"format_control.*{says}"):
        claims.load(path)


def test_compare_sets_the_verdicts_side_by_side_with_the_difference_by_run(monkeypatch):
    c = next(c for c in claims.load().claims if c.id == "rl-undoes-sft")   # less, sesoi 0.05
    key = (c.notebook, c.number.split("/")[1])
    registry = _two_profiles(monkeypatch, {key: 0.5})   # on the control the fall turns into a rise
    table = format_control.compare("tiny", registry=registry)
    assert list(table.columns) == format_control.COLUMNS
    assert set(table.notebook) <= set(registry.format_control.notebooks)
    assert "sanity" not in set(table.kind) and "sft-moves-untrained-facts" in set(table.id)
    row = table.set_index("id").loc["rl-undoes-sft"]
    assert row.verdict == "supported" and row.verdict_control == "contradicted" and not row.kept
    assert row.estimate == pytest.approx(0.5, abs=0.01) and row.ci_low < row.estimate < row.ci_high and row.n == 6
    others = table[table.id != "rl-undoes-sft"]
    assert others.kept.all() and np.allclose(others.estimate, 0.0, atol=0.01)
    mine, _ = replicated.verdicts("tiny", registry=registry)
    assert row.estimate_profile == pytest.approx(mine.set_index("id").loc["rl-undoes-sft", "estimate"])
    del replication.collect.read[:]
    tex = format_control.tex("tiny", registry=registry)
    assert sorted(replication.collect.read) == ["tiny", "tiny-qa"]   # each profile's runs read once
    assert r"\dintcontroltrue" in tex and r"\newcommand{\formatcontroltable}" in tex
    assert f"{len(table) - 1} of the {len(table)} claims and replications of notebooks 01, 04 and 05 keep" in tex
    assert r"\@namedef{controlverdict@rl-undoes-sft}{contradicted}" in tex
    # every claim has its control verdict, estimate and difference for the text, the table only the registered
    assert r"\@namedef{controlverdict@installation-tracks-support}{supported}" in tex
    assert "the claims that change their verdict are" in tex and "(supported here, contradicted on the control)" in tex
    assert "of the claims supported here, \\texttt{rl-\\allowbreak{}undoes-\\allowbreak{}sft} is not supported" in tex
    assert "held in 6 of 6 runs" in tex and r"\@namedef{controldifference@rl-undoes-sft}{0.5" in tex
    assert r"\texttt{installation-\allowbreak{}tracks" not in tex
    pooled = format_control.check("tiny", registry=registry)
    assert pooled["tiny"]["estimate"] == pytest.approx(0.05, abs=0.02)
    assert pooled["tiny-qa"]["estimate"] == pytest.approx(0.30, abs=0.02)
    assert rf"\newcommand{{\formatcheckcontrol}}{{{claims_tex.estimate_tex(pooled['tiny-qa'], inline=True)}}}" in tex


def test_no_control_or_no_runs_is_said_in_the_paper(monkeypatch):
    with pytest.raises(ValueError, match="profile='smoke'.*names no format control"):
        format_control.compare("smoke")
    tex = format_control.tex("smoke")
    assert r"\dintcontroltrue" not in tex and "names no format control" in tex

    def missing(name):
        raise FileNotFoundError(f"no numbers of run(s) of profile {name!r}")
    monkeypatch.setattr(replication, "collect", missing)
    monkeypatch.setattr("dint.pipeline.config.replication", lambda name: list(range(6)))
    tex = format_control.tex("tiny")
    assert r"\dintcontroltrue" not in tex and r"make replicate PROFILE=tiny-qa" in tex
