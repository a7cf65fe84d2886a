"""Profiles: the sizes of a whole run, read from ``config/<profile>.yaml``.

A profile fixes the seeds and every component's config (the world, the base model, the scorer, the
interventions). Its ``reference`` says what the claims are checked against: ``world`` (the
synthetic reference world, `dint.world`, and a base model pretrained on its corpus) or ``real``
(real facts, `dint.realworld`, and a pretrained model loaded from local files,
`models.PretrainedConfig`); the ``world`` and ``base`` sections configure that choice.
Loading it checks every name and value before any work starts, so that a typo fails at once with
a message naming the parameter and the fix.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import re
import sys
import types
import typing
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from .. import models, realworld, world
from . import paths
from ..cache import key
from ..interventions import custom, plan
from ..interventions.plan import InterventionsConfig
from ..lazy import LazyModule
from ..scoring import ScoringConfig

SECTIONS = ("world", "base", "scoring", "interventions")
# the keys of a profile's file
KEYS = ("profile", "seed", "train_seed", "reference", "replication", "notebooks", *SECTIONS)
REFERENCES = ("world", "real")


@dataclass(frozen=True)
class Profile:
    """One run's configuration."""

    name: str                          # the profile's file name in config/
    seed: int                          # the world seed: the world, its split, the base model's pretraining
    world: world.WorldConfig | realworld.RealWorldConfig
    base: models.BaseModelConfig | models.PretrainedConfig
    scoring: ScoringConfig
    interventions: InterventionsConfig
    reference: str = "world"           # "world" (synthetic) or "real"; see the module docstring
    # the training seed: every intervention, stack, sampling and resampling (None: the world seed)
    train_seed: int | None = None

    def __post_init__(self):
        if self.train_seed is None:
            object.__setattr__(self, "train_seed", self.seed)

    @property
    def real(self) -> bool:
        """True when the claims are checked against real facts on a pretrained model."""
        return self.reference == "real"

    def asdict(self) -> dict:
        """The profile as a dict; the world section without options at their neutral value (`world.config_dict`), the
        interventions section without ``custom`` when the profile has no method of its own and without ``aligned`` when
        it keeps that experiment's default."""
        d = asdict(self)
        if isinstance(self.world, world.WorldConfig):
            d["world"] = world.config_dict(self.world)
        for name in ("custom", "aligned"):   # no own method, the aligned experiment's default: as without the field
            if not d["interventions"][name]:
                del d["interventions"][name]
        return d

    def digest(self, *sections: str) -> str:
        """A short hash of the seeds and the given sections (all when none): names cached artifacts."""
        d = self.asdict()
        parts = {s: d[s] for s in (sections or SECTIONS)}
        return key([self.seed, self.train_seed], parts)[:12]

    def is_default(self) -> bool:
        """True when this profile is exactly its file's, without overrides."""
        return self == load_profile(self.name)

    def same_sections(self, *sections: str) -> bool:
        """True when the given sections (all when none) are the file's, whatever the seeds."""
        d, own = self.asdict(), load_profile(self.name).asdict()
        return all(d[s] == own[s] for s in (sections or SECTIONS)) and self.reference == own["reference"]

    @property
    def run(self) -> str:
        """The run's name in a replication: ``w<world seed>-t<training seed>``."""
        return f"w{self.seed}-t{self.train_seed}"


def profiles() -> list[str]:
    """Names of the profiles in config/."""
    return sorted(p.stem for p in paths.config_dir().glob("*.yaml"))


# -- checking values against the annotations of their config dataclass -------------------------

class _Library:
    """Stands for a library a config module imports lazily (peft, torch): an annotation such as
    ``peft.LoraConfig | None`` resolves to a placeholder class without importing the library."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (), {"__module__": self.name, "_placeholder": True})


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    module = vars(sys.modules[cls.__module__])
    ns = {k: _Library(v.__name__) if isinstance(v, LazyModule) else v for k, v in module.items()}
    return typing.get_type_hints(cls, globalns=ns, localns=ns)   # not the class namespace: its defaults shadow names


def _describe(tp) -> str:
    """``tp`` in words, as a profile writes it."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list) or tp in (tuple, list):
        if (len(args) == 2 and args[1] is Ellipsis) or (origin is list and args):
            return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return f"a list of {len(args)}" if args else "a list"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping",
            type(None): "null"}.get(tp, f"a {tp.__module__}.{tp.__name__}")


def _problem(value, tp, path: str) -> tuple[str, object, object] | None:
    """(path, value, type) of the first part of ``value`` that is not a ``tp``; None if it is one."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return None
    if origin in (typing.Union, types.UnionType):
        return None if any(_problem(value, a, path) is None for a in args) else (path, value, tp)
    if origin is typing.Literal:
        return None if any(value == a and type(value) is type(a) for a in args) else (path, value, tp)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return path, value, tp
        items = [args[0]] * len(value) if (len(args) == 2 and args[1] is Ellipsis) or origin is list else args
        if items and len(items) != len(value):
            return path, value, tp
        return next((q for i, (v, t) in enumerate(zip(value, items)) if (q := _problem(v, t, f"{path}[{i}]"))), None)
    if dataclasses.is_dataclass(tp):   # a nested config: an instance, or a mapping of its fields
        if isinstance(value, dict):
            check_fields(tp, value, where=path)   # raises with the nested field's own path
            return None
        return None if isinstance(value, tp) else (path, value, tp)
    if tp is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        return None if ok and not math.isnan(value) else (path, value, tp)
    if tp is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        return None if ok else (path, value, tp)
    if getattr(tp, "_placeholder", False):   # a class of a library not imported: compare by name
        ok = any(c.__name__ == tp.__name__ and c.__module__.split(".")[0] == tp.__module__ for c in type(value).__mro__)
        return None if ok else (path, value, tp)
    return None if isinstance(value, tp) else (path, value, tp)


def _yaml(value) -> str:
    """``value`` as a profile writes it (null, true, [1, 2]) where JSON's flow style is YAML's."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)


def check_type(path: str, value, tp, *, default=dataclasses.MISSING) -> None:
    """Check that ``value`` is a ``tp`` (int, float, bool, str, dict, tuple[X, ...], list[X],
    Literal[...], X | None, a config dataclass given as a mapping of its fields).

    Integers are not booleans, numbers accept integers and are never NaN, lists stand for tuples.

    Parameters
    ----------
    path : the parameter's name in messages, e.g. ``world.n_entities``
    value : the value given
    tp : the annotation it must satisfy
    default : shown as an example in the message when given

    Raises
    ------
    ValueError ``<path>=<value>: must be <what>, e.g. <default>`` for the first offending part.
    """
    found = _problem(value, tp, path)
    if found is None:
        return
    where, bad, want = found
    msg = f"{where}={bad!r}: must be {_describe(want)}"
    if default is not dataclasses.MISSING and where == path:
        msg += f", e.g. {_yaml(default)} (the default)"
    if isinstance(bad, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", bad):
        msg += f" (YAML reads {bad} as a string: write it with a decimal point and a signed exponent, e.g. 1.0e-3)"
    raise ValueError(msg)


def check_fields(cls, values: dict, *, where: str) -> dict:
    """Check a mapping of field -> value against the annotations of dataclass ``cls``, before
    ``cls(**values)`` runs its own range checks.

    Parameters
    ----------
    cls : a config dataclass
    values : field -> value, e.g. a profile section read from YAML
    where : the section's name in messages (``world``, ``interventions.sft``)

    Returns
    -------
    dict: the values, with lists turned into tuples for tuple fields (YAML has no tuples) and
    mappings into their config for fields that are a config dataclass.

    Raises
    ------
    ValueError naming an unknown field (with the valid ones) or the first value of the wrong type.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a mapping of parameter -> value, got {values!r}")
    valid = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"unknown {where} parameter(s) {unknown}; valid {where} parameters: {sorted(valid)}")
    hints, out = _hints(cls), {}
    for name, value in values.items():
        f = valid[name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        tp = hints[name]
        check_type(f"{where}.{name}", value, tp, default=default)
        if isinstance(value, list) and (tp is tuple or typing.get_origin(tp) is tuple):
            value = tuple(value)
        elif isinstance(value, dict) and dataclasses.is_dataclass(tp):   # a nested config, built here
            value = tp(**check_fields(tp, value, where=f"{where}.{name}"))
        out[name] = value
    return out


def _section(cls, name: str, values: dict) -> dict:
    """A section's values, type-checked; the interventions section's method mappings too, and the config of each
    method of the profile's own (``custom``) whose function annotates it with a dataclass."""
    values = check_fields(cls, values, where=name)
    if cls is InterventionsConfig:
        for field, given in values.items():
            if field in plan.CONFIG_FIELDS:
                check_fields(plan.config_class(field), given, where=f"{name}.{field}")
        if values.get("custom"):
            custom.search(paths.root())   # a method's module may live in the project folder (examples/kto.py)
            for m in custom.methods(values["custom"], settings=False).values():
                if (cls_ := m.config_class()) is not None:
                    check_fields(cls_, m.config, where=f"{m.where}.config")
    return values


_CLASSES = {"world": world.WorldConfig, "base": models.BaseModelConfig, "scoring": ScoringConfig,
            "interventions": InterventionsConfig}
_REAL_CLASSES = {**_CLASSES, "world": realworld.RealWorldConfig, "base": models.PretrainedConfig}


def _parse(path: Path):
    """The YAML of ``path``, parsed once per content of the file: a run loads its profile thousands of times
    (every artifact checks that it is the file's), and reading the text is cheap where parsing it is not."""
    text = path.read_text()
    if _PARSED.get(str(path), (None,))[0] != text:   # new, or changed since: parsed (again)
        _PARSED[str(path)] = (text, yaml.safe_load(text))
    return _PARSED[str(path)][1]


_PARSED: dict = {}   # path -> (text, parsed YAML)


def _read(name: str) -> dict:
    """``config/<name>.yaml`` as a mapping; ValueError with the line of a syntax error."""
    available = profiles()
    if not isinstance(name, str) or name not in available:
        raise ValueError(f"unknown profile {name!r}; available profiles: {available} "
                         f"(files in {paths.config_dir()})")
    where = f"config/{name}.yaml"
    try:
        raw = copy.deepcopy(_parse(paths.config_dir() / f"{name}.yaml"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        context = f" ({e.context} started on line {e.context_mark.line + 1})" if e.context and e.context_mark else ""
        raise ValueError(f"{where}: {line}{e.problem or e}{context}; fix the YAML there") from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: cannot be read: {' '.join(str(e).split())}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping of key -> value (profile, seed, reference, world, base, "
                         f"scoring, interventions, notebooks), got {type(raw).__name__}")
    if "profile" in raw and raw["profile"] != name:
        raise ValueError(f"{where}: profile={raw['profile']!r} but the file is {name}.yaml: make them equal, "
                         "or drop the profile key")
    return raw


def load_profile(name: str = "tiny", *, seed: int | None = None, train_seed: int | None = None,
                 **overrides: dict) -> Profile:
    """Read ``config/<name>.yaml`` and apply overrides, checking every name, type and range first.

    Parameters
    ----------
    name : profile name (``smoke``, ``tiny``, ...)
    seed : replaces the profile's world seed when given (``seed`` in the file: the world, its split and the
        base model's pretraining)
    train_seed : replaces the profile's training seed when given (``train_seed`` in the file, by default its
        ``seed``: every intervention, stack, sampling and resampling)
    **overrides : per section (``world``, ``base``, ``scoring``, ``interventions``), a mapping of
        field -> value

    Returns
    -------
    Profile

    Raises
    ------
    ValueError, with a one-line message naming the file (and line of a YAML syntax error), the
    unknown profile, section or parameter, or the value of the wrong type or out of range, and the fix.
    """
    raw = _read(name)
    where = f"config/{name}.yaml"
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; valid: {', '.join(KEYS)}")
    reference = raw.get("reference", "world")
    if reference not in REFERENCES:
        raise ValueError(f"{where}: reference={reference!r}; choose one of {REFERENCES}")
    classes = _REAL_CLASSES if reference == "real" else _CLASSES
    bad = sorted(set(overrides) - set(SECTIONS))
    if bad:
        raise ValueError(f"unknown override section(s) {bad}; valid sections: {SECTIONS}")
    source = f"{where}: " if seed is None else ""
    if seed is None:
        seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{source}seed={seed!r}: must be a non-negative integer, e.g. 0")
    if train_seed is None:
        train_seed = raw.get("train_seed", raw.get("seed", 0))
        if not isinstance(train_seed, int) or isinstance(train_seed, bool) or train_seed < 0:
            raise ValueError(f"{where}: train_seed={train_seed!r}: must be a non-negative integer, e.g. 0")
    elif not isinstance(train_seed, int) or isinstance(train_seed, bool) or train_seed < 0:
        raise ValueError(f"train_seed={train_seed!r}: must be a non-negative integer, e.g. 0")
    parts = {}
    for s in SECTIONS:
        values = {}
        for source, given in ((where, raw.get(s)), (f"overrides of {where}", overrides.get(s))):
            if given is None:
                continue
            if not isinstance(given, dict):
                raise ValueError(f"{source}: section {s!r} must be a mapping of parameter -> value, "
                                 f"got {type(given).__name__}")
            try:
                values.update(_section(classes[s], s, dict(given)))
            except ValueError as e:
                raise ValueError(f"{source}: {e}") from None
        try:
            parts[s] = classes[s](**values)
        except ValueError as e:   # a range the config's own checks enforce
            source = where + (" with overrides" if overrides.get(s) else "")
            raise ValueError(f"{source}: {e}") from None
    return Profile(name=name, seed=seed, train_seed=train_seed, reference=reference, **parts)


def profile_notebooks(name: str) -> dict:
    """The profile's ``notebooks`` section: notebook -> {parameter: value}."""
    section = _read(name).get("notebooks") or {}
    if not isinstance(section, dict) or not all(isinstance(v, dict) or v is None for v in section.values()):
        raise ValueError(f"config/{name}.yaml: 'notebooks' must map a notebook name to a mapping of "
                         "parameter -> value")
    return {k: dict(v or {}) for k, v in section.items()}


def notebook_parameters(name: str, notebook: str) -> dict:
    """The notebook parameters that profile ``name`` sets for ``notebook`` (its ``notebooks`` key),
    e.g. smaller samples for the smoke profile; the notebook's own defaults apply otherwise.

    Their names and types are checked against the notebook's parameters cell when it runs
    (`dint.pipeline.notebooks.check_parameters`).
    """
    return profile_notebooks(name).get(notebook, {})


def with_seed(profile: Profile, seed: int, train_seed: int | None = None) -> Profile:
    """The same profile with another world seed (and training seed: by default the profile's own)."""
    return replace(profile, seed=seed, train_seed=profile.train_seed if train_seed is None else train_seed)


@dataclass(frozen=True)
class Replication:
    """The runs of a profile's replication (its ``replication`` section): every world seed with every
    training seed, the training seeds nested in the worlds."""

    world_seeds: tuple[int, ...]
    train_seeds: tuple[int, ...]

    def runs(self) -> list[tuple[int, int]]:
        """(world seed, training seed) of every run, world by world."""
        return [(w, t) for w in self.world_seeds for t in self.train_seeds]

    def __len__(self) -> int:
        return len(self.world_seeds) * len(self.train_seeds)


def replication(name: str) -> Replication:
    """A profile's replication: its file's ``replication`` section (``world_seeds``, ``train_seeds``: lists of
    distinct non-negative integers), or the one run at its own seeds when it has none.

    Raises
    ------
    ValueError naming the key and the fix.
    """
    raw = _read(name)
    where = f"config/{name}.yaml replication"
    P = load_profile(name)
    section = raw.get("replication")
    if section is None:
        return Replication((P.seed,), (P.train_seed,))
    if not isinstance(section, dict):
        raise ValueError(f"{where}: give a mapping with world_seeds and train_seeds, e.g. "
                         "{world_seeds: [0, 1, 2, 3, 4], train_seeds: [0, 1]}")
    unknown = sorted(set(section) - {"world_seeds", "train_seeds"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; valid: world_seeds, train_seeds")
    seeds = {}
    for k in ("world_seeds", "train_seeds"):
        v = section.get(k)
        if (not isinstance(v, list) or not v or len(set(v)) != len(v)
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)):
            raise ValueError(f"{where}.{k}={v!r}: must be a non-empty list of distinct non-negative integers, "
                             "e.g. [0, 1]")
        seeds[k] = tuple(v)
    return Replication(seeds["world_seeds"], seeds["train_seeds"])
