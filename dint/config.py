"""Profiles: the sizes of a whole run, read from ``config/<profile>.yaml``.

A profile fixes the seed and every component's config (the world, the base model, the scorer, the
interventions). Its ``reference`` says what the claims are checked against: ``world`` (the
synthetic reference world, `dint.world`, and a base model pretrained on its corpus) or ``real``
(real facts, `dint.realworld`, and a pretrained model loaded from local files,
`models.PretrainedConfig`); the ``world`` and ``base`` sections configure that choice.
Loading it checks every name and value before any work starts, so that a typo fails at once with
a message naming the parameter and the fix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import yaml

from . import models, paths, realworld, world
from .cache import key
from .interventions.plan import InterventionsConfig
from .scoring import ScoringConfig

SECTIONS = ("world", "base", "scoring", "interventions")
REFERENCES = ("world", "real")


@dataclass(frozen=True)
class Profile:
    """One run's configuration."""

    name: str                          # the profile's file name in config/
    seed: int                          # the only source of randomness in the run
    world: world.WorldConfig | realworld.RealWorldConfig
    base: models.BaseModelConfig | models.PretrainedConfig
    scoring: ScoringConfig
    interventions: InterventionsConfig
    reference: str = "world"           # "world" (synthetic) or "real"; see the module docstring

    @property
    def real(self) -> bool:
        """True when the claims are checked against real facts on a pretrained model."""
        return self.reference == "real"

    def asdict(self) -> dict:
        return asdict(self)

    def digest(self, *sections: str) -> str:
        """A short hash of the seed and the given sections (all when none): names cached artifacts."""
        d = self.asdict()
        parts = {s: d[s] for s in (sections or SECTIONS)}
        return key(self.seed, parts)[:12]

    def is_default(self) -> bool:
        """True when this profile is exactly its file's, without overrides."""
        return self == load_profile(self.name)


def profiles() -> list[str]:
    """Names of the profiles in config/."""
    return sorted(p.stem for p in paths.config_dir().glob("*.yaml"))


def _section(cls, name: str, values: dict):
    if not isinstance(values, dict):
        raise ValueError(f"profile section {name!r} must be a mapping, got {type(values).__name__}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"unknown {name} parameter(s) {unknown}; valid {name} parameters: {sorted(valid)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


_CLASSES = {"world": world.WorldConfig, "base": models.BaseModelConfig, "scoring": ScoringConfig,
            "interventions": InterventionsConfig}
_REAL_CLASSES = {**_CLASSES, "world": realworld.RealWorldConfig, "base": models.PretrainedConfig}


def load_profile(name: str = "tiny", *, seed: int | None = None, **overrides: dict) -> Profile:
    """Read ``config/<name>.yaml`` and apply overrides.

    Parameters
    ----------
    name : profile name (``smoke``, ``tiny``, ...)
    seed : replaces the profile's seed when given
    **overrides : per section (``world``, ``base``, ``scoring``), a mapping of field -> value

    Raises
    ------
    ValueError naming the unknown profile, section or parameter, or the invalid value.
    """
    available = profiles()
    if name not in available:
        raise ValueError(f"unknown profile {name!r}; available profiles: {available} "
                         f"(files in {paths.config_dir()})")
    raw = yaml.safe_load((paths.config_dir() / f"{name}.yaml").read_text()) or {}
    unknown = sorted(set(raw) - {"profile", "seed", "reference", "notebooks", *SECTIONS})
    if unknown:
        raise ValueError(f"config/{name}.yaml has unknown key(s) {unknown}; valid: profile, seed, reference, "
                         f"notebooks, {SECTIONS}")
    reference = raw.get("reference", "world")
    if reference not in REFERENCES:
        raise ValueError(f"config/{name}.yaml: reference={reference!r}; choose one of {REFERENCES}")
    classes = _REAL_CLASSES if reference == "real" else _CLASSES
    bad = sorted(set(overrides) - set(SECTIONS))
    if bad:
        raise ValueError(f"unknown override section(s) {bad}; valid sections: {SECTIONS}")
    if seed is None:
        seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be a non-negative integer")
    parts = {}
    for s in SECTIONS:
        for where, given in ((f"config/{name}.yaml", raw.get(s)), ("overrides", overrides.get(s))):
            if given is not None and not isinstance(given, dict):
                raise ValueError(f"{where}: section {s!r} must be a mapping of parameter -> value, "
                                 f"got {type(given).__name__}")
        values = dict(raw.get(s) or {})
        values.update(overrides.get(s) or {})
        parts[s] = _section(classes[s], s, values)
    return Profile(name=name, seed=seed, reference=reference, **parts)


def notebook_parameters(name: str, notebook: str) -> dict:
    """The notebook parameters that profile ``name`` sets for ``notebook`` (its ``notebooks`` key),
    e.g. smaller samples for the smoke profile; the notebook's own defaults apply otherwise."""
    if name not in profiles():
        raise ValueError(f"unknown profile {name!r}; available profiles: {profiles()}")
    raw = yaml.safe_load((paths.config_dir() / f"{name}.yaml").read_text()) or {}
    section = raw.get("notebooks") or {}
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise ValueError(f"config/{name}.yaml: 'notebooks' must map a notebook name to a mapping of "
                         "parameter -> value")
    return dict(section.get(notebook) or {})


def with_seed(profile: Profile, seed: int) -> Profile:
    """The same profile with another seed."""
    return replace(profile, seed=seed)
