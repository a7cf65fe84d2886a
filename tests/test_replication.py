"""Replicated runs: the world seed and the training seed apart, each run in its own folder, the runs pooled."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from dint import claims, claims_tex, replicated
from dint.analyses import replication
from dint.pipeline import artifacts, config, paths
from dint.pipeline.config import load_profile


def _profile_file(tmp_path, monkeypatch, text):
    """A profile ``t`` in a config folder of its own, made from the smoke profile plus ``text``."""
    folder = tmp_path / "config"
    folder.mkdir()
    base = (paths.config_dir() / "smoke.yaml").read_text().replace("profile: smoke", "profile: t")
    base = "\n".join(line for line in base.splitlines() if not line.startswith("replication:"))
    (folder / "t.yaml").write_text(base + "\n" + text)
    monkeypatch.setattr(paths, "config_dir", lambda: folder)
    return "t"


def test_train_seed_defaults_to_the_world_seed_and_each_replaces_its_own():
    P = load_profile("tiny")
    assert (P.seed, P.train_seed, P.run) == (0, 0, "w0-t0")
    Q = load_profile("tiny", seed=3)
    assert (Q.seed, Q.train_seed) == (3, 0)   # the file's training seed stays
    R = load_profile("tiny", train_seed=2)
    assert (R.seed, R.train_seed, R.run) == (0, 2, "w0-t2")
    assert config.with_seed(P, 4, 5).run == "w4-t5"
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="train_seed="):
            load_profile("tiny", train_seed=bad)


def test_the_profiles_replications_are_fixed_in_their_files():
    assert config.replication("tiny").runs() == [(w, t) for w in range(5) for t in (0, 1)]
    assert len(config.replication("tiny")) == 10
    assert config.replication("smoke").runs() == [(0, 0), (1, 0)]
    assert config.replication("real-smoke").runs() == [(0, 0)]   # no section: the one run at its own seeds


@pytest.mark.parametrize("section, says", [
    ("replication: [0, 1]", "give a mapping with world_seeds and train_seeds"),
    ("replication: {world_seeds: [0, 1]}", "train_seeds=None: must be a non-empty list"),
    ("replication: {world_seeds: [0, 0], train_seeds: [0]}", "world_seeds=\\[0, 0\\]: must be a non-empty list of "
                                                               "distinct"),
    ("replication: {world_seeds: [0, -1], train_seeds: [0]}", "non-negative"),
    ("replication: {world_seeds: [0], train_seeds: [0], runs: 3}", "unknown key\\(s\\) \\['runs'\\]"),
    ("train_seed: -2", "train_seed=-2: must be a non-negative integer"),
])
def test_a_bad_replication_is_named_with_its_fix(tmp_path, monkeypatch, section, says):
    name = _profile_file(tmp_path, monkeypatch, section)
    with pytest.raises(ValueError, match=says):
        load_profile(name)
        config.replication(name)


def test_each_run_has_its_folder_and_a_worlds_runs_share_its_world():
    P = load_profile("tiny")
    base = paths.results("tiny")
    assert artifacts.root(P) == artifacts.world_root(P) == base
    Q = load_profile("tiny", train_seed=1)
    assert artifacts.root(Q) == base / "runs" / "w0-t1" and artifacts.world_root(Q) == base
    S = load_profile("tiny", seed=2, train_seed=1)
    assert artifacts.root(S) == base / "runs" / "w2-t1" and artifacts.world_root(S) == base / "runs" / "w2"
    assert artifacts.world_dir(S) == base / "runs" / "w2" / "world"
    assert artifacts.figures_root(S) == paths.figures("tiny") / "runs" / "w2-t1"
    V = load_profile("tiny", seed=2, world={"n_entities": 20})   # a variant keeps everything to itself
    assert artifacts.world_root(V) == artifacts.root(V) and "variants" in artifacts.root(V).parts


@pytest.mark.slow
def test_the_training_seed_changes_what_is_trained_and_nothing_of_the_world():
    P, Q = load_profile("smoke"), load_profile("smoke", train_seed=1)
    assert artifacts.ensure_world(P) == artifacts.ensure_world(Q)
    assert artifacts.ensure_base(P, progress=False) == artifacts.ensure_base(Q, progress=False)
    a = artifacts.ensure_intervention(P, "sft")
    b = artifacts.ensure_intervention(Q, "sft")
    assert a != b and b.parent == artifacts.root(Q) / "models"
    assert artifacts.digest(a) != artifacts.digest(b)   # other weights: trained at another seed
    assert json.loads((b / "record.json").read_text())["seed"] == 1
    assert json.loads((b / "manifest.json").read_text())["train_seed"] == 1
    assert "train_seed" not in json.loads((artifacts.world_dir(Q) / "manifest.json").read_text())


def _runs(values: dict, worlds=(0, 0, 1, 1, 2, 2), trains=(0, 1) * 3, width=0.1) -> pd.DataFrame:
    """A runs table: for each (notebook, key) its estimate in each run (a list), an interval ± width."""
    rows = []
    for (nb, key), ests in values.items():
        for w, t, e in zip(worlds, trains, ests):
            rows.append({"run": f"w{w}-t{t}", "world_seed": w, "train_seed": t, "notebook": nb, "key": key,
                         "estimate": e, "ci_low": e - width, "ci_high": e + width, "pvalue": 0.001})
    return pd.DataFrame(rows)


def test_pooled_verdicts_and_the_runs_that_held():
    registry = claims.load()
    needed = replicated.numbers(registry)
    rng = np.random.default_rng(0)
    values = {k: list(null + 5 + rng.normal(0, 0.01, 6)) for k, null in needed.items()}
    c = next(c for c in registry.claims if c.kind == "claim" and c.rule["direction"] == "greater")
    key = (c.notebook, c.number.split("/")[1])
    values[key] = [c.rule["null"] + x for x in (1.0, 1.1, 0.9, 1.2, 1.05, -0.5)]   # five runs of six support it
    runs = _runs(values)
    table = replicated.judge(registry, runs, reference="world")
    row = table.set_index("id").loc[c.id]
    assert row["estimate"] == pytest.approx(np.mean([np.mean(values[key][i:i + 2]) for i in (0, 2, 4)]))
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["held"] == 5 and row["runs"] == 6
    assert row["var_world"] >= 0 and row["var_train"] > 0
    assert set(table["verdict"]) <= {"supported", "contradicted", "inconclusive", "passed", "failed",
                                     claims.NOT_APPLICABLE}
    # the paper quotes the pooled estimate and the runs that held it with \claimestimate{<id>}
    tex = claims_tex.tex(registry, table, runs=6)
    line = next(x for x in tex.splitlines() if x.startswith(rf"\@namedef{{claimestimate@{c.id}}}"))
    # (to the precision of its interval: two significant digits of the half-width)
    assert claims_tex.estimate_tex(row, inline=True) + ", held in 5 of 6 runs}" in line and r"\newline" not in line
    assert line.count("[") == 1
    assert r"\newcommand{\claimestimate}" in tex


def test_a_number_missing_from_the_runs_is_inconclusive_not_an_error():
    registry = claims.load()
    table = replicated.judge(registry, _runs({("00_base_model", "nothing"): [1] * 6}), reference="world")
    claims_rows = table[table["kind"] != "sanity"]
    assert (claims_rows["verdict"].isin(["inconclusive", claims.NOT_APPLICABLE])).all()
    assert (table.loc[table["kind"] == "sanity", "verdict"] == "failed").all()


def test_agreement_counts_another_runs_estimate_in_one_runs_interval():
    # four runs of one number: estimates 0, 1, 2, 10 with intervals ± 1.5 -> pairs (i, j), i != j
    runs = _runs({("n", "k"): [0.0, 1.0, 2.0, 10.0]}, worlds=(0, 1, 2, 3), trains=(0, 0, 0, 0), width=1.5)
    out = replicated.agreement(runs, pd.DataFrame({"notebook": ["n"], "key": ["k"]})).set_index("interval")
    one = out.loc["one run's interval"]
    # run 0's interval [-1.5, 1.5] holds 1; run 1's [-0.5, 2.5] holds 0 and 2; run 2's [0.5, 3.5] holds 1;
    # run 3's [8.5, 11.5] none: 4 of 12 ordered pairs
    assert (one["inside"], one["n"]) == (4, 12)
    assert one["share"] == pytest.approx(4 / 12)
    assert out.loc["prediction interval, one world left out", "n"] == 4


def test_quoted_finds_the_numbers_whose_macros_the_text_uses():
    runs = _runs({("01_mechanism", "sft_kl"): [1] * 6, ("01_mechanism", "rag_kl"): [1] * 6})
    found = replicated.quoted(runs, r"the shift \MechanismSftKl [\MechanismSftKlLow, ...]")
    assert found.to_dict("records") == [{"notebook": "01_mechanism", "key": "sft_kl"}]


def test_collect_names_the_runs_without_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    with pytest.raises(FileNotFoundError, match=r"no numbers of run\(s\) \['w0-t0', 'w1-t0'\].*make replicate"):
        replication.collect("smoke")


def test_collect_reads_every_runs_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))   # runs of its own
    for P in replication.profiles("smoke"):
        folder = artifacts.root(P) / "00_base_model"
        folder.mkdir(parents=True, exist_ok=True)
        numbers = {"acc": {"estimate": 0.5 + P.seed, "ci_low": 0.4, "ci_high": 0.6, "pvalue": None},
                   "n_facts": 100, "note": "text"}
        (folder / "numbers.json").write_text(json.dumps({"notebook": "00_base_model", "numbers": numbers}))
    t = replication.collect("smoke")
    assert sorted(t["run"].unique()) == ["w0-t0", "w1-t0"]
    assert set(t["key"]) == {"acc", "n_facts"}   # text is not a number
    assert t.loc[(t.key == "acc") & (t.run == "w1-t0"), "estimate"].item() == 1.5
    assert np.isnan(t.loc[t.key == "n_facts", "ci_low"]).all()


def test_the_profile_files_replication_sections_parse():
    for name in config.profiles():
        raw = yaml.safe_load((paths.config_dir() / f"{name}.yaml").read_text())
        assert len(config.replication(name)) >= 1
        if "replication" in raw:
            assert (load_profile(name).seed, load_profile(name).train_seed) in config.replication(name).runs()


def test_the_papers_numbers_of_a_replication():
    runs = _runs({("n", "k"): [0.0, 1.0, 2.0, 10.0], ("n", "j"): [1.0, 1.1, 0.9, 1.0]}, worlds=(0, 1, 2, 3),
                 trains=(0, 0, 0, 0), width=1.5)
    numbers = pd.DataFrame({"notebook": ["n", "n"], "key": ["k", "j"]})
    out = replicated.paper_numbers(runs, replicated.agreement(runs, numbers))
    assert (out["runs"], out["worlds"], out["train_seeds"], out["quoted_numbers"]) == (4, 4, 1, 2)
    assert out["one_run_n"] == 24 and out["one_run_share"] == pytest.approx((4 + 12) / 24)
    assert out["prediction_n"] == out["pooled_n"] == 8
    assert 0 <= out["pooled_share"] <= out["prediction_share"] <= 1   # the prediction interval is the wider


def test_one_run_is_judged_on_its_own_numbers():
    registry = claims.load()
    runs = _runs({k: [null + 5, 0, 0, 0, 0, 0] for k, null in replicated.numbers(registry).items()})
    one = runs[runs["run"] == "w0-t0"]
    table = replicated.judge(registry, one, reference="world")
    single = claims.judge(registry, {nb: {r.key: {"estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                                   "pvalue": r.pvalue} for r in g.itertuples()}
                                     for nb, g in one.groupby("notebook")}, reference="world")
    assert list(table["verdict"]) == list(single["verdict"])
    expected = [int(v in ("supported", "passed")) for v in single["verdict"]]
    applicable = single["verdict"] != claims.NOT_APPLICABLE
    assert list(table.loc[applicable, "held"]) == [e for e, a in zip(expected, applicable) if a]
    assert (table["runs"] == 1).all() and table["var_world"].isna().all()


def test_the_replication_command_names_the_runs_it_lacks(capsys, tmp_path, monkeypatch):
    from dint.cli import main

    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    assert main(["replication", "--profile", "smoke", "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "error: no numbers of run w5-t0" in err and "make reproduce PROFILE=smoke SEED=5 TRAIN_SEED=0" in err
    assert main(["replication", "--profile", "smoke"]) == 2
    assert "make replicate PROFILE=smoke" in capsys.readouterr().err
