"""Tests for dint.interventions.custom: a method of one's own named in a profile, checked before any work, built and
scored through the artifact layer like the built-in interventions, and part of the plan every notebook reads."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dint.analyses import replication
from dint.interventions import custom, plan
from dint.interventions.plan import InterventionsConfig
from dint.interventions.record import InterventionRecord
from dint.pipeline import artifacts, codegraph, paths
from dint.pipeline.config import load_profile

# a module of methods, written into a test's project folder: a trivial method that moves the model a little (no
# training), and functions that break the contract one way each
METHODS = textwrap.dedent('''
    from __future__ import annotations

    from dataclasses import dataclass

    import torch

    from dint.interventions.record import InterventionRecord, inference_flops, train_flops
    from dint.models import n_params


    @dataclass(frozen=True)
    class NudgeConfig:
        scale: float = 1e-2    # size of the nudge of every weight

        def __post_init__(self):
            if not self.scale > 0:
                raise ValueError(f"NudgeConfig.scale={self.scale!r}: must be positive")


    def nudge(model, tokenizer, data, config: NudgeConfig, *, seed, threads, progress):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(config.scale * torch.randn(p.shape, generator=g))
        tokens = 10 * len(data.demos)
        return model, InterventionRecord(
            method="nudge", config={"scale": config.scale}, seed=seed, steps=1, tokens=tokens,
            train_flops=train_flops(model, tokens), inference_tokens=0, inference_flops=inference_flops(model, 0),
            wall_time=0.0, n_params=n_params(model), trainable_params=n_params(model),
            extra={"taught_wrong": [int(f) for f in data.facts.fact[:2]], "threads": threads})


    def plain(model, tokenizer, data, config, *, seed, threads, progress):
        return nudge(model, tokenizer, data, NudgeConfig(**config), seed=seed, threads=threads, progress=progress)


    def two_args(model, tokenizer):
        return model


    def not_a_pair(model, tokenizer, data, config, *, seed, threads, progress):
        return model


    def not_a_model(model, tokenizer, data, config, *, seed, threads, progress):
        return "model", nudge(model, tokenizer, data, NudgeConfig(), seed=seed, threads=threads, progress=progress)[1]


    def not_a_record(model, tokenizer, data, config, *, seed, threads, progress):
        return model, {"train_flops": 1.0}


    def negative_flops(model, tokenizer, data, config, *, seed, threads, progress):
        m, r = nudge(model, tokenizer, data, NudgeConfig(), seed=seed, threads=threads, progress=progress)
        return m, InterventionRecord(**{**r.asdict(), "train_flops": -1.0})
''')

MICRO = textwrap.dedent('''
    profile: micro
    seed: 0
    world: {n_entities: 16, max_mentions: 30, frequent_min: 5}
    base: {n_layer: 1, n_head: 2, n_embd: 32, epochs: 2, batch_size: 64, lr: 0.003, threads: 1}
    interventions:
      threads: 1
      custom:
        nudged: {function: "my_methods:nudge", config: {scale: 0.01}}
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (``$DINT_ROOT``) holding ``my_methods.py`` and ``config/micro.yaml``; ``my_methods`` is found
    because a profile naming it loads, not because a test put it on ``sys.path``."""
    (tmp_path / "config").mkdir()
    (tmp_path / "my_methods.py").write_text(METHODS)
    (tmp_path / "config" / "micro.yaml").write_text(MICRO)
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))   # what the profile adds is undone after the test
    sys.modules.pop("my_methods", None)
    yield tmp_path
    sys.modules.pop("my_methods", None)


def _profile(project, custom_section, name="bad"):
    text = MICRO.replace("profile: micro", f"profile: {name}").split("  custom:")[0]
    (project / "config" / f"{name}.yaml").write_text(text + "  custom: " + json.dumps(custom_section) + "\n")
    return name


# ---------------------------------------------------------------- checked before any work
@pytest.mark.parametrize("section, match", [
    ({"KTO": "my_methods:nudge"}, r"interventions\.custom\.KTO: a method's name is lowercase"),
    ({"sft": "my_methods:nudge"}, r"interventions\.custom\.sft: 'sft' is a name the pipeline uses"),
    ({"rag_stale": "my_methods:nudge"}, r"'rag_stale' is a name the pipeline uses"),
    ({"kto": "my_methods.nudge"}, r"interventions\.custom\.kto: function='my_methods\.nudge': write .*'module:function'"),
    ({"kto": {"fn": "my_methods:nudge"}}, r"interventions\.custom\.kto=.*give 'module:function', or a mapping"),
    ({"kto": "nosuch_module:run"}, r"interventions\.custom\.kto: cannot import module 'nosuch_module' "
                                   r"\(ModuleNotFoundError"),
    ({"kto": "my_methods:nosuch"}, r"interventions\.custom\.kto: module 'my_methods' has no function 'nosuch'; "
                                   r"its functions: \[.*'nudge'"),
    ({"kto": "my_methods:two_args"}, r"interventions\.custom\.kto: my_methods:two_args cannot be called as "
                                     r"function\(model, tokenizer, data, config, \*, seed, threads, progress\)"),
    ({"kto": {"function": "my_methods:nudge", "config": {"scal": 1.0}}},
     r"unknown interventions\.custom\.kto\.config parameter\(s\) \['scal'\]; valid .*\['scale'\]"),
    ({"kto": {"function": "my_methods:nudge", "config": {"scale": "big"}}},
     r"interventions\.custom\.kto\.config\.scale='big': must be a number, e\.g\. 0\.01 \(the default\)"),
    ({"kto": {"function": "my_methods:nudge", "config": {"scale": -1.0}}},
     r"interventions\.custom\.kto\.config: NudgeConfig\.scale=-1\.0: must be positive"),
])
def test_load_profile_iv_custom(project, section, match):
    with pytest.raises(ValueError, match=match) as e:
        load_profile(_profile(project, section))
    assert str(e.value).startswith("config/bad.yaml") and "\n" not in str(e.value)


def test_cli_bad_custom_method_is_one_error_line(project, capsys):
    from dint.cli import main

    assert main(["build", "world", "--profile", _profile(project, {"kto": "nosuch_module:run"})]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config/bad.yaml: interventions.custom.kto: cannot import")
    assert not (paths.results("bad")).exists()   # nothing built


def test_methods_normalise_the_short_form():
    section = {"kto": "examples.kto:run", "kto_strong": {"function": "examples.kto:run", "config": {"beta": 0.5}}}
    cfg = InterventionsConfig(custom=section)
    assert cfg.custom == {"kto": {"function": "examples.kto:run", "config": {}},
                          "kto_strong": {"function": "examples.kto:run", "config": {"beta": 0.5}}}
    assert cfg.custom_names == ("kto", "kto_strong")
    assert cfg.method("kto_strong").settings().beta == 0.5
    with pytest.raises(ValueError, match="not a method of interventions.custom"):
        cfg.method("sft")


# ---------------------------------------------------------------- part of the plan
def test_custom_method_is_in_the_plan():
    P, plain = load_profile("smoke-kto"), load_profile("smoke")
    assert replication.interventions(P) == replication.interventions(plain) + ("kto",)
    assert replication.answering(P)[-1] == "kto" and "kto" not in replication.answering(plain)
    assert plan.names(P.interventions) == plan.NAMES + ("kto",)
    assert plan.with_custom(P.interventions, ["sft"]) == ["sft", "kto"]
    assert plan.with_custom(P.interventions, ["kto", "sft"]) == ["kto", "sft"]
    assert plan.with_custom(plain.interventions, ["sft"]) == ["sft"]
    # a profile without methods of its own reads as before; one with them changes no built-in artifact
    assert "custom" not in plain.asdict()["interventions"] and "custom" in P.asdict()["interventions"]
    assert artifacts.intervention_manifest(P, "sft") == artifacts.intervention_manifest(plain, "sft")
    own = artifacts.intervention_manifest(P, "kto")["custom"]
    assert own["function"] == "examples.kto:run" and len(own["source_sha256"]) == 64


def test_kto_code_is_the_example_and_what_it_imports():
    files = codegraph.closure("examples/kto.py")
    assert {"examples/kto.py", "dint/interventions/trainer.py", "dint/interventions/data.py"} <= set(files)


def test_snakemake_plans_the_custom_method_with_its_code(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DINT_RESULTS": str(tmp_path / "results"), "DINT_FIGURES": str(tmp_path / "figures")}
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "profile=smoke-kto"],
                       cwd=paths.root(), capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = re.split(r"\n(?=(?:local)?rule \S+:)", r.stdout)
    block = next(b for b in jobs if "intervention_kto.log" in b)
    assert "examples/kto.py" in block and "dint/interventions/trainer.py" in block
    for nb in ("01_mechanism", "02_engineering_clues", "03_diagnosability", "04_trust_reliability",
               "05_compound_failure", "06_resources", "07_verification"):
        job = next(b for b in jobs if f"notebook_{nb}.log" in b)
        assert "smoke-kto/scores/kto/manifest.json" in job, nb


# ---------------------------------------------------------------- built through the artifact layer
def test_custom_method_through_the_artifacts(project):
    P = load_profile("micro")
    base, tok, _ = artifacts.base_model(P, progress=False)
    folder = artifacts.ensure_intervention(P, "nudged")
    model, tok2, record = artifacts.intervention(P, "nudged")
    assert folder == artifacts.intervention_dir(P, "nudged") and record.method == "nudge"
    assert record.train_flops > 0 and record.extra["threads"] == 1
    moved = [not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values())]
    assert any(moved) and not model.training
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["custom"]["config"] == {"scale": 0.01} and manifest["name"] == "nudged"
    scores = artifacts.intervention_scores(P, "nudged")
    assert set(scores.form) == {"qa", "statement"} and len(scores)
    # built once: loaded, not trained again
    stamp = (folder / "record.json").stat().st_mtime_ns
    artifacts.ensure_intervention(P, "nudged")
    assert (folder / "record.json").stat().st_mtime_ns == stamp
    # the function's file is part of what the artifact was built from: a change retrains it
    (project / "my_methods.py").write_text(METHODS + "\n# changed\n")
    artifacts.ensure_intervention(P, "nudged")
    assert (folder / "record.json").stat().st_mtime_ns != stamp


@pytest.mark.parametrize("function, match", [
    ("not_a_pair", r"returned .*: return \(model, record\)"),
    ("not_a_model", r"returned a str as its model: return a transformers causal LM"),
    ("not_a_record", r"returned a dict as its record: return a dint\.interventions\.record\.InterventionRecord"),
    ("negative_flops", r"record\.train_flops=-1\.0: must be a finite number >= 0"),
])
def test_run_iv_returned_types(project, micro_world, micro_model, function, match):
    custom.search(project)
    method = custom.Method("mine", f"my_methods:{function}", {})
    model, tok, _ = micro_model
    with pytest.raises(ValueError, match=r"interventions\.custom\.mine \(my_methods:" + function + r"\):? " + match):
        custom.run(method, model, tok, custom.data(micro_world, plan.InterventionsConfig().config("labeler")))


def test_run_leaves_inputs_and_random_state(project, micro_world, micro_model):
    custom.search(project)
    model, tok, _ = micro_model
    before = [p.clone() for p in model.parameters()]
    state = torch.get_rng_state()
    method = custom.Method("mine", "my_methods:plain", {"scale": 0.1})
    data = custom.data(micro_world, plan.InterventionsConfig().config("labeler"), seed=1)
    a, rec = custom.run(method, model, tok, data, seed=1)
    b, _ = custom.run(method, model, tok, data, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))   # the base is not changed
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))   # same seed, same weights
    assert isinstance(rec, InterventionRecord) and rec.config == {"scale": 0.1}
    assert set(data.pairs.fact) <= set(data.facts.fact) and (data.facts.split == "train").all()


# ---------------------------------------------------------------- the worked example: KTO
def test_kto_feedback_follows_the_labelers(micro_world):
    from dint.interventions.data import LabelerConfig
    from examples.kto import feedback

    facts = micro_world.facts[micro_world.facts.split == "train"]
    honest = feedback(micro_world, LabelerConfig(misconception_rate=0.0, style_rate=0.0, noise=0.0), facts=facts,
                      answers_per_fact=4, seed=0)
    assert len(honest) == 4 * len(facts) and (honest.label == honest.is_true).all()
    assert honest.completion.str.startswith(" ").all() and 0 < honest.is_true.mean() < 1
    styled = feedback(micro_world, LabelerConfig(style_rate=1.0, noise=0.0), facts=facts, seed=0)
    assert (styled.label == styled.styled).all()
    again = feedback(micro_world, LabelerConfig(), facts=facts, seed=0)
    assert again.equals(feedback(micro_world, LabelerConfig(), facts=facts, seed=0))


def test_kto_config_iv():
    from examples.kto import KTOConfig

    with pytest.raises(ValueError, match=r"KTOConfig\.batch_size=1: must be >= 2"):
        KTOConfig(batch_size=1)
    with pytest.raises(ValueError, match=r"KTOConfig\.beta=0\.0: must be positive"):
        KTOConfig(beta=0.0)
    with pytest.raises(ValueError, match=r"KTOConfig\.true_share=1\.0"):
        KTOConfig(true_share=1.0)


def test_kto_end_to_end_through_the_artifacts(project):
    """KTO (examples/kto.py, TRL's KTOTrainer) named in a profile, trained and scored by the artifact layer."""
    (project / "config" / "micro.yaml").write_text(MICRO.replace(
        'nudged: {function: "my_methods:nudge", config: {scale: 0.01}}',
        'kto: {function: "examples.kto:run", config: {epochs: 2, batch_size: 8}}'))
    P = load_profile("micro")
    assert replication.interventions(P)[-1] == "kto"
    base, _, _ = artifacts.base_model(P, progress=False)
    model, tok, record = artifacts.intervention(P, "kto")
    assert record.method == "kto" and record.steps > 0
    assert record.train_flops > 0 and record.inference_flops > record.train_flops / 3   # the reference's passes
    assert record.tokens == record.extra["num_tokens_logged"]   # TRL counts the same tokens
    assert record.extra["desirable"] > 0 and record.extra["undesirable"] > 0
    moved = max((a - b).abs().max().item() for a, b in zip(model.state_dict().values(), base.state_dict().values()))
    assert moved > 1e-4
    base_scores, scores = artifacts.base_scores(P), artifacts.intervention_scores(P, "kto")
    assert len(scores) == len(base_scores) and not scores.logp.equals(base_scores.logp)


def test_notebook_01_shows_kto_beside_sft(tmp_path):
    """Notebook 01 on the smoke profile with KTO, asked for SFT alone: KTO is added, with its row in every table."""
    import nbformat

    from dint.pipeline import notebooks

    out = notebooks.run("01_mechanism", profile="smoke-kto", output=tmp_path / "01.ipynb", progress=False,
                        parameters={"interventions": ["sft"], "bon_n": 0, "token_shift_items": 5, "n_resamples": 50})
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
    folder = artifacts.root(load_profile("smoke-kto")) / "01_mechanism"
    import pandas as pd

    records = pd.read_parquet(folder / "records.parquet").set_index("intervention")
    assert list(records.index) == ["sft", "kto"] and records.loc["kto", "method"] == "kto"
    assert records.loc["kto", "train_flops"] > 0 and records.loc["kto", "train_flops_rule"] == pytest.approx(1.0)
    summary = pd.read_parquet(folder / "summary.parquet")
    assert {"sft", "kto"} == set(summary.intervention)
    numbers = json.loads((folder / "numbers.json").read_text())["numbers"]
    assert "kto_kl" in numbers and "kto_answer_unshifted" in numbers
