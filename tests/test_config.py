"""Tests for dint.config: profiles read from config/*.yaml, overrides and their validation."""
import re
import subprocess
import sys
from dataclasses import MISSING, fields

import pytest
import yaml

from dint import paths
from dint.config import SECTIONS, Profile, load_profile, profiles, with_seed
from dint.interventions.plan import InterventionsConfig
from dint.models import BaseModelConfig
from dint.scoring import ScoringConfig
from dint.world import WorldConfig

CLASSES = {"world": WorldConfig, "base": BaseModelConfig, "scoring": ScoringConfig,
           "interventions": InterventionsConfig}


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    # Profiles resolve from this checkout's config/ folder.
    monkeypatch.delenv("DINT_ROOT", raising=False)


def _yaml(name):
    return yaml.safe_load((paths.config_dir() / f"{name}.yaml").read_text())


# ---------------------------------------------------------------- input validation
def test_load_profile_iv_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'nope'") as e:
        load_profile("nope")
    msg = str(e.value)
    assert "available profiles" in msg
    assert "'tiny'" in msg and "'smoke'" in msg


def test_load_profile_iv_unknown_section():
    with pytest.raises(ValueError, match="worl"):
        load_profile("tiny", worl={"n_entities": 10})


@pytest.mark.parametrize("section, param", [("world", "n_entitys"), ("base", "n_layers"),
                                            ("scoring", "batch_token")])
def test_load_profile_iv_unknown_parameter(section, param):
    with pytest.raises(ValueError, match=rf"unknown {section} parameter\(s\) \['{param}'\]"):
        load_profile("tiny", **{section: {param: 3}})


@pytest.mark.parametrize("section, param, value", [("world", "n_entities", 2), ("world", "p_unseen", 1.5),
                                                   ("base", "n_layer", 0), ("base", "dropout", 1.0),
                                                   ("scoring", "batch_tokens", 0)])
def test_load_profile_iv_invalid_value(section, param, value):
    with pytest.raises(ValueError, match=param):
        load_profile("tiny", **{section: {param: value}})


@pytest.mark.parametrize("bad", [5, "n_entities=10"])
def test_load_profile_iv_section_not_mapping(bad):
    with pytest.raises(ValueError, match=r"'world' must be a mapping"):
        load_profile("tiny", world=bad)


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True])
def test_load_profile_iv_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        load_profile("tiny", seed=seed)


# ---------------------------------------------------------------- profiles from YAML
def test_profiles():
    assert {"tiny", "smoke"} <= set(profiles())
    assert profiles() == sorted(profiles())


@pytest.mark.parametrize("name", ["tiny", "smoke"])
def test_load_profile_matches_yaml(name):
    raw = _yaml(name)
    p = load_profile(name)
    assert isinstance(p, Profile)
    assert p.name == name
    assert p.seed == raw.get("seed", 0)
    for s in SECTIONS:
        given = raw.get(s) or {}
        section = getattr(p, s)
        assert isinstance(section, CLASSES[s])
        for f in fields(CLASSES[s]):
            want = given.get(f.name, f.default if f.default is not MISSING else f.default_factory())
            if isinstance(want, list):
                want = tuple(want)
            assert getattr(section, f.name) == want, (s, f.name)


def test_load_profile_reference_values():
    tiny, smoke = load_profile("tiny"), load_profile("smoke")
    assert (tiny.seed, tiny.world.n_entities, tiny.base.n_layer, tiny.scoring.batch_tokens) == (0, 200, 2, 8192)
    assert (smoke.world.n_entities, smoke.world.frequent_min, smoke.world.max_mentions) == (24, 5, 40)
    assert smoke.world.p_unseen == 0.15 and smoke.world.contested_share == 0.3
    assert (smoke.base.n_embd, smoke.base.epochs) == (32, 3)
    assert load_profile() == tiny   # the default profile


def test_load_profile_overrides():
    p = load_profile("tiny", world={"n_entities": 30, "relations": ["color", "pet"]}, base={"epochs": 1})
    assert p.world.n_entities == 30
    assert p.world.relations == ("color", "pet")          # YAML-style lists become tuples
    assert p.base.epochs == 1
    base = load_profile("tiny")
    assert p.world.p_unseen == base.world.p_unseen          # untouched values keep the file's
    assert p.base.n_layer == base.base.n_layer
    assert p.scoring == base.scoring
    assert load_profile("tiny", world=None) == base


def test_load_profile_seed():
    assert load_profile("tiny", seed=7).seed == 7
    assert load_profile("tiny", seed=0).seed == 0
    p = load_profile("tiny", seed=7)
    assert p.world == load_profile("tiny").world
    assert with_seed(load_profile("tiny"), 7) == p


def test_profile_is_default():
    assert load_profile("tiny").is_default()
    assert load_profile("smoke").is_default()
    assert not load_profile("tiny", seed=5).is_default()
    assert not load_profile("tiny", world={"n_entities": 30}).is_default()
    assert not load_profile("smoke", scoring={"batch_tokens": 10}).is_default()
    # an override equal to the file's value changes nothing
    assert load_profile("tiny", world={"n_entities": 200}).is_default()


def test_profile_digest():
    p = load_profile("tiny")
    d = p.digest()
    assert re.fullmatch(r"[0-9a-f]{12}", d)
    assert d == load_profile("tiny").digest()                 # deterministic
    assert d == p.digest(*SECTIONS)                           # none given: all sections
    assert load_profile("tiny", seed=1).digest() != d
    assert load_profile("tiny", world={"n_entities": 30}).digest() != d
    assert load_profile("tiny", world={"popularity_noise": float("inf")}).digest() != d
    assert load_profile("tiny", base={"epochs": 2}).digest() != d
    assert load_profile("smoke").digest() != d
    # a section's digest ignores the other sections, not the seed
    w = p.digest("world")
    assert load_profile("tiny", base={"epochs": 2}).digest("world") == w
    assert load_profile("tiny", scoring={"batch_tokens": 10}).digest("world", "base") == p.digest("world", "base")
    assert load_profile("tiny", world={"n_entities": 30}).digest("world") != w
    assert load_profile("tiny", seed=1).digest("world") != w
    assert p.digest("world") != p.digest("base")


def test_profile_asdict():
    d = load_profile("tiny").asdict()
    assert set(d) == {"name", "seed", "reference", *SECTIONS} and d["reference"] == "world"
    assert d["world"]["n_entities"] == 200
    assert d["base"]["n_layer"] == 2


def test_real_reference_reads_real_sections(tmp_path, monkeypatch):
    from dint import models, realworld

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "r.yaml").write_text(
        "reference: real\nworld: {n_arithmetic: 20}\nbase: {model: smollm, device: cpu}\n")
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))
    P = load_profile("r")
    assert P.real and isinstance(P.world, realworld.RealWorldConfig) and P.world.n_arithmetic == 20
    assert isinstance(P.base, models.PretrainedConfig) and P.base.model == "smollm"
    (tmp_path / "config" / "bad.yaml").write_text("reference: imaginary\n")
    with pytest.raises(ValueError, match="reference='imaginary'"):
        load_profile("bad")
    (tmp_path / "config" / "mixed.yaml").write_text("reference: real\nbase: {n_layer: 2}\n")
    with pytest.raises(ValueError, match="unknown base parameter"):
        load_profile("mixed")


def test_lora_variants_override_their_method():
    P = load_profile("tiny", interventions={"sft": {"lr": 1e-4, "epochs": 2}, "sft_lora": {"lr": 3e-4},
                                            "dpo_lora": {"beta": 0.2}})
    cfg = P.interventions
    full, lora = cfg.config("sft"), cfg.config("sft_lora")
    assert (full.lr, full.peft) == (1e-4, None)
    assert lora.lr == 3e-4 and lora.epochs == 2 and lora.peft is not None   # the rest is sft's
    assert cfg.config("dpo_lora").beta == 0.2 and cfg.config("dpo").beta != 0.2
    with pytest.raises(ValueError, match="sft_lora"):
        load_profile("tiny", interventions={"sft_lora": {"learning_rate": 1e-4}})


def test_reading_a_profile_imports_no_model_library():
    """`import dint` and `load_profile` (the pipeline's DAG, a notebook's launcher, the paper) check every
    method's parameters without importing torch, transformers, PEFT, TRL or datasets."""
    code = ("import sys, dint; from dint.config import load_profile; P = load_profile('tiny'); "
            "P.interventions.config('sft'); P.interventions.config('rl'); P.interventions.config('rag'); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
    with pytest.raises(ValueError, match="unknown interventions.sft parameter"):
        load_profile("tiny", interventions={"sft": {"epoch": 2}})


def test_lora_arguments_are_checked_without_peft():
    """A bad LoRA argument fails when the profile is read, naming it; the LoRA variants' own configs
    are PEFT's, built with the same arguments where they train."""
    from dint.interventions import sft

    with pytest.raises(ValueError, match="rank"):
        load_profile("tiny", interventions={"lora": {"r": 0}})
    with pytest.raises(ValueError, match="rank_"):
        load_profile("tiny", interventions={"lora": {"rank_": 4}})
    with pytest.raises(ValueError, match="dropout"):
        load_profile("tiny", interventions={"lora": {"dropout": 1.5}})
    with pytest.raises(ValueError, match="target_modules"):
        load_profile("tiny", interventions={"lora": {"target_modules": "c_attn"}})
    cfg = load_profile("tiny", interventions={"lora": {"r": 4, "alpha": 8}}).interventions
    lora = cfg.config("sft_lora").peft
    assert (lora.r, lora.lora_alpha, sorted(lora.target_modules)) == (4, 8, sorted(sft.GPT2_LORA_TARGETS))
