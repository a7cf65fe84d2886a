"""Tests for dint.pipeline.config: profiles read from config/*.yaml, overrides and their validation."""
import re
import subprocess
import sys
from dataclasses import MISSING, dataclass, fields
from typing import Literal

import pytest
import yaml

from dint.pipeline import paths
from dint.pipeline.config import SECTIONS, Profile, load_profile, profiles, with_seed
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
    assert set(d) == {"name", "seed", "train_seed", "reference", *SECTIONS} and d["reference"] == "world"
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
    code = ("import sys, dint; from dint.pipeline.config import load_profile; P = load_profile('tiny'); "
            "P.interventions.config('sft'); P.interventions.config('rl'); P.interventions.config('rag'); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
    with pytest.raises(ValueError, match="unknown interventions.sft parameter"):
        load_profile("tiny", interventions={"sft": {"epoch": 2}})


def test_lora_arguments_are_checked_without_peft():
    """A bad LoRA argument fails when the profile is read, naming it; the LoRA variants' own configs
    are PEFT's, built with the same arguments where they train."""
    from dint.interventions import trainer

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
    assert (lora.r, lora.lora_alpha, sorted(lora.target_modules)) == (4, 8, sorted(trainer.GPT2_LORA_TARGETS))


# ---------------------------------------------------------------- types, YAML syntax, one-line messages
def _write(tmp_path, monkeypatch, name, text):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))


def _sections():
    """(section path, config class, how load_profile takes a value for one of its fields)."""
    from dint import models, realworld
    from dint.interventions import plan

    out = [("world", WorldConfig, {}), ("base", BaseModelConfig, {}), ("scoring", ScoringConfig, {}),
           ("interventions", InterventionsConfig, {}),
           ("world", realworld.RealWorldConfig, {"real": True}), ("base", models.PretrainedConfig, {"real": True})]
    out += [(f"interventions.{m}", plan.config_class(m), {}) for m in plan.CONFIG_FIELDS]
    return out


def _wrong(tp_text):
    """A value of the wrong type for an annotation (as written in the source)."""
    return 3 if tp_text == "str" else "ten"


def test_load_profile_iv_every_field_type():
    """Every field of every section, given a value of the wrong type, fails with a ValueError naming it
    (never a TypeError from a comparison in the config's own checks)."""
    checked = 0
    for path, cls, how in _sections():
        for f in fields(cls):
            value = _wrong(f.type)
            section, _, method = path.partition(".")
            given = {method: {f.name: value}} if method else {f.name: value}
            with pytest.raises(ValueError) as e:
                load_profile("real" if how.get("real") else "tiny", **{section: given})
            assert f"{path}.{f.name}={value!r}: must be" in str(e.value), str(e.value)
            checked += 1
    assert checked > 90


@pytest.mark.parametrize("section, param, value, want", [
    ("world", "n_entities", True, "must be an integer, e.g. 200 (the default)"),   # ints are not bools
    ("world", "n_entities", 20.0, "must be an integer"),
    ("world", "relations", "home", "must be a list of strings"),
    ("world", "relations", ["home", 3], "world.relations[1]=3: must be a string"),
    ("base", "lr", float("nan"), "must be a number"),
    ("scoring", "add_special_tokens", "yes", "must be true or false or null, e.g. null (the default)"),
    ("interventions", "bon_n", [1, 2.5], "interventions.bon_n[1]=2.5: must be an integer"),
    ("interventions", "rl_betas", ["a"], "interventions.rl_betas[0]='a': must be a number"),
    ("interventions", "sft", 5, "interventions.sft=5: must be a mapping"),
])
def test_load_profile_iv_types(section, param, value, want):
    with pytest.raises(ValueError, match=re.escape(want)):
        load_profile("tiny", **{section: {param: value}})


def test_load_profile_types_accepted():
    """Numbers accept integers; lists stand for tuples; infinity is a number where the range allows it."""
    p = load_profile("tiny", base={"lr": 1}, world={"popularity_noise": float("inf")},
                     interventions={"rl_betas": [1, 0.5], "sft": {"lr": 1}})
    assert p.base.lr == 1 and p.world.popularity_noise == float("inf")
    assert p.interventions.rl_betas == (1, 0.5) and p.interventions.config("sft").lr == 1


def test_profile_file_iv_wrong_type(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "typo", 'world:\n  n_entities: "ten"\n')
    with pytest.raises(ValueError, match=re.escape("config/typo.yaml: world.n_entities='ten': must be an integer")):
        load_profile("typo")
    _write(tmp_path, monkeypatch, "exp", "base:\n  lr: 1e-3\n")   # YAML 1.1 reads this as a string
    with pytest.raises(ValueError, match=r"base.lr='1e-3': must be a number.*YAML reads 1e-3 as a string"):
        load_profile("exp")
    _write(tmp_path, monkeypatch, "small", "world:\n  n_entities: 2\n")   # the config's own range
    with pytest.raises(ValueError, match=r"^config/small.yaml: WorldConfig.n_entities=2: need at least 4"):
        load_profile("small")
    with pytest.raises(ValueError, match=r"^config/small.yaml with overrides: WorldConfig.n_entities=3"):
        load_profile("small", world={"n_entities": 3})
    with pytest.raises(ValueError, match=r"^overrides of config/small.yaml: world.n_entities='x'"):
        load_profile("small", world={"n_entities": "x"})


@pytest.mark.parametrize("text, line, what", [
    ("seed: 0\nworld:\n  n_entities: [1, 2\n", 4, "expected ',' or ']'"),
    ("seed: 0\nworld:\n  n_entities: 10\n   p_unseen: 0.1\n", 4, "mapping values are not allowed here"),
    ("seed: 0\nbase: {n_layer: 2\n", 3, "expected ',' or '}'"),
])
def test_profile_file_iv_yaml_syntax(tmp_path, monkeypatch, text, line, what):
    _write(tmp_path, monkeypatch, "broken", text)
    with pytest.raises(ValueError, match=rf"^config/broken.yaml: line {line}: ") as e:
        load_profile("broken")
    assert what in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match=rf"^config/broken.yaml: line {line}: "):
        from dint.pipeline.config import notebook_parameters
        notebook_parameters("broken", "00_base_model")


def test_profile_file_iv_shape(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "listy", "- seed\n- world\n")
    with pytest.raises(ValueError, match=r"config/listy.yaml: must be a mapping of key -> value"):
        load_profile("listy")
    _write(tmp_path, monkeypatch, "copied", "profile: tiny\nseed: 1\n")
    with pytest.raises(ValueError, match=r"profile='tiny' but the file is copied.yaml"):
        load_profile("copied")
    _write(tmp_path, monkeypatch, "empty", "")
    assert load_profile("empty").world == WorldConfig()


def test_load_profile_messages_are_one_line(tmp_path, monkeypatch):
    """The Snakefile prints load_profile's ValueError as it is: one line, naming the file and the fix."""
    for text in ("world: {n_entities: ten}\n", "world: [\n", "world: {n_entities: 2}\n", "seed: -1\n",
                 "interventions: {sft: {epochs: two}}\n", "colour: red\n"):
        _write(tmp_path, monkeypatch, "bad", text)
        with pytest.raises(ValueError) as e:
            load_profile("bad")
        msg = str(e.value)
        assert msg.startswith("config/bad.yaml") and "\n" not in msg, msg
    with pytest.raises(ValueError, match=r"^unknown profile 'nosuch'; available profiles: \['bad'\]"):
        load_profile("nosuch")


def test_every_committed_profile_loads():
    for name in profiles():
        p = load_profile(name)
        assert p.name == name and p.is_default()


@dataclass(frozen=True)
class _Inner:
    k: int = 1
    share: float = 0.5


@dataclass(frozen=True)
class _Outer:
    mode: Literal["fast", "exact"] = "fast"
    inner: _Inner = _Inner()
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[str, float] = ("a", 1.0)
    names: list[str] | None = None


def test_check_fields_against_theory():
    """Literal, nested configs, fixed and variable tuples and optional lists, from their annotations."""
    from dint.pipeline.config import check_fields

    out = check_fields(_Outer, {"mode": "exact", "inner": {"k": 3}, "sizes": [4], "pair": ["b", 2], "names": None},
                       where="outer")
    assert out == {"mode": "exact", "inner": _Inner(k=3), "sizes": (4,), "pair": ("b", 2), "names": None}
    assert check_fields(_Outer, {"inner": _Inner(), "names": ["x"]}, where="outer")["names"] == ["x"]
    for values, want in (({"mode": "slow"}, "outer.mode='slow': must be one of 'fast', 'exact', e.g. \"fast\""),
                         ({"inner": {"k": "3"}}, "outer.inner.k='3': must be an integer, e.g. 1"),
                         ({"inner": {"kk": 3}}, "unknown outer.inner parameter(s) ['kk']"),
                         ({"inner": 3}, "outer.inner=3: must be a mapping of _Inner fields"),
                         ({"sizes": [1, True]}, "outer.sizes[1]=True: must be an integer"),
                         ({"pair": ["b"]}, "outer.pair=['b']: must be a list of 2"),
                         ({"pair": ["b", "c"]}, "outer.pair[1]='c': must be a number"),
                         ({"names": "x"}, "outer.names='x': must be a list of strings or null")):
        with pytest.raises(ValueError) as e:
            check_fields(_Outer, values, where="outer")
        assert want in str(e.value), str(e.value)
