"""Real facts with reference answers, shaped like the synthetic `dint.world.World`.

A `RealWorld` is the reference world of the ``real`` profile: facts about real countries and
arithmetic problems, each with one true value, a per-fact candidate set, accepted surface forms
(``aliases``), a fact type and a split. It is a drop-in for `World` wherever an intervention uses
``facts``, ``values``, ``prompts(form, facts)`` and ``relation(name).templates``.

Where each relation's data come from
------------------------------------
``capital``    countryinfo's ``capital``, with two curated fixes (``Washington``; ``Astana``,
               renamed from Nur-Sultan in 2022) and the curated drops of `dint.countries`.
``subregion``  countryinfo's UN M49 region: the intermediate region where M49 has one (Africa
               south of the Sahara and Latin America: "Western Africa", "South America", "the
               Caribbean"), else the subregion ("Western Europe", "Eastern Asia").
``currency``   countryinfo's ISO 4217 codes, named by pycountry, rewritten in the form English
               prose uses after "the" (`dint.countries`: "euro", "yen", "United States dollar",
               "pound sterling"). Fund codes (USN, CHE, ...) are ignored, withdrawn codes map to
               their successor (VEF -> VES, HRK -> EUR, ...); several codes in use: dropped.
``language``   countryinfo's ISO 639-1 codes, named by pycountry ("French", "Greek"); only
               countries with exactly one official language are kept.
``arithmetic`` problems ``a + b``, ``a - b`` (non-negative) and ``a × b`` drawn from the seed;
               values computed by Python.

Countries: entries of countryinfo that are current ISO 3166-1 countries (pycountry), not in
`dint.countries`' exclusions (disputed or without a usable capital: Hong Kong, Macau, Palestine, Western
Sahara), one entry per ISO code (Myanmar, not its duplicate Burma), with a population of at least
``min_population`` (countryinfo's figures, about 2014). ISO 3166-1 includes dependent territories,
so the few above the threshold stay (Puerto Rico at the default) as does Taiwan. The entity is
the English short name, with "the" where English uses it ("the United States") so that prompts
read naturally; a few outdated names are updated (Swaziland -> Eswatini). A relation is dropped
for a country when its data are missing or ambiguous: several capitals, currencies or official
languages, an unknown code, or a curated reason (e.g. Bolivia's two capitals).
``RealWorld.dropped`` lists every drop with its reason.

Fact types (proxies, not measured corpus counts)
------------------------------------------------
``frequent``   a country at or above the median population of the kept countries (populous
               countries are written about more: a proxy for mention counts), or an arithmetic
               problem whose operands are both below 20 (small problems are common in text);
``rare``       the other countries and problems;
``contested``  a capital with a well-known misconception (`dint.countries.CAPITAL_MISCONCEPTIONS`: the
               largest or best-known city is not the capital); ``misconception`` names that city.
Unlike the synthetic world there is no corpus: the types stand in for mention counts that cannot
be counted, so any result by type is a result by proxy.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import countries as _countries
from .answers import normalise, pick_candidates
from .countries import COUNTRY_RELATIONS
from .world import FORMS, Relation

REAL_FACT_TYPES = ("frequent", "rare", "contested")

REAL_RELATIONS = {
    r.name: r
    for r in (
        Relation("capital", "attribute",
                 ("The capital of {e} is {v}.", "The capital city of {e} is {v}.", "{v} is the capital of {e}.",
                  "{v} is the capital city of {e}.", "The government of {e} has its capital in {v}."),
                 "What is the capital of {e}?"),
        Relation("subregion", "attribute",
                 ("Geographically, {e} is located in {v}.", "In the United Nations geoscheme, {e} is part of {v}.",
                  "On a map of the world, {e} is found in {v}.", "The region of the world that includes {e} is {v}."),
                 "In which region of the world is {e}?"),
        Relation("currency", "attribute",
                 ("The currency of {e} is the {v}.", "The official currency of {e} is the {v}.",
                  "In {e}, people pay with the {v}.", "The {v} is the currency used in {e}."),
                 "What is the currency of {e}?"),
        Relation("language", "attribute",
                 ("The official language of {e} is {v}.", "In {e}, the official language is {v}.",
                  "{v} is the official language of {e}.", "The language of government in {e} is {v}."),
                 "What is the official language of {e}?"),
        Relation("arithmetic", "attribute",
                 ("{e} = {v}.", "The result of {e} is {v}.", "{v} is the result of {e}.", "Working out {e} gives {v}."),
                 "What is {e}?"),
    )
}

_EXPRESSION = re.compile(r"\s*(\d+)\s*([+\-−×*xX])\s*(\d+)\s*")
_ANSWER = re.compile(r"\s*(-?\d+)\s*\.?\s*")
_OPERATORS = {"+": "+", "-": "-", "−": "-", "×": "×", "*": "×", "x": "×", "X": "×"}


@dataclass(frozen=True)
class RealWorldConfig:
    """What goes into the real reference world."""

    relations: tuple[str, ...] = ("capital", "subregion", "currency", "language", "arithmetic")  # of REAL_RELATIONS
    n_candidates: int = 8               # candidates per fact: the true value and n - 1 distractors
    min_population: int = 1_000_000     # countries below it are dropped (micro-states, territories)
    contested: bool = True              # mark capitals in countries.CAPITAL_MISCONCEPTIONS contested
    n_arithmetic: int = 150             # arithmetic problems
    multiplication_share: float = 0.25  # share of problems that multiply
    small_share: float = 0.5            # share of + and - problems with both operands in 1..19
    arithmetic_max: int = 99            # the other + and - problems take operands in 10..this
    multiplication_max: int = 12        # × problems take operands in 2..this
    heldout_share: float = 0.5          # share of facts held out, stratified by (relation, type)

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"RealWorldConfig.{name}={getattr(self, name)!r}: {why}")

        rels = tuple(self.relations) if isinstance(self.relations, (tuple, list)) else ()
        if not rels or any(r not in REAL_RELATIONS for r in rels) or len(set(rels)) != len(rels):
            bad("relations", f"choose a non-empty subset, without repeats, of {tuple(REAL_RELATIONS)}")
        object.__setattr__(self, "relations", rels)
        if not isinstance(self.n_candidates, int) or not 2 <= self.n_candidates <= 20:
            bad("n_candidates", "need an int in 2..20")
        if not isinstance(self.min_population, int) or self.min_population < 0:
            bad("min_population", "need an int >= 0")
        if not 0.0 <= self.heldout_share < 1.0:
            bad("heldout_share", "must lie in [0, 1)")
        for name in ("multiplication_share", "small_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must lie in [0, 1]")
        if not isinstance(self.arithmetic_max, int) or not 20 <= self.arithmetic_max <= 199:
            bad("arithmetic_max", "need an int in 20..199")
        if not isinstance(self.multiplication_max, int) or not 2 <= self.multiplication_max <= 99:
            bad("multiplication_max", "need an int in 2..99")
        if not isinstance(self.n_arithmetic, int) or self.n_arithmetic < (1 if "arithmetic" in rels else 0):
            bad("n_arithmetic", "need an int >= 1 when 'arithmetic' is in relations (>= 0 otherwise)")
        need, have = _arithmetic_counts(self), _arithmetic_pool_sizes(self)
        for kind in need:
            if need[kind] > have[kind]:
                bad("n_arithmetic", f"asks for {need[kind]} {kind} problems but only {have[kind]} exist: "
                                    "lower n_arithmetic or raise arithmetic_max / multiplication_max")


@dataclass(frozen=True)
class RealWorld:
    """Real facts with reference answers, shaped like `dint.world.World`.

    Attributes
    ----------
    config : RealWorldConfig
    seed : int
    facts : DataFrame, one row per fact: ``fact`` (id 0..n-1), ``entity`` (country with "the" where
        English uses it, or an expression "37 + 48"), ``relation``, ``value`` (true), ``type``
        (see REAL_FACT_TYPES), ``misconception`` ("" unless contested), ``split`` ("train" or
        "heldout"), ``candidates`` (tuple of str: the true value, the misconception if any and
        distractors, in seeded random order), ``aliases`` (tuple of normalised accepted answers,
        the normalised value first), ``region``, ``subregion`` and ``iso2`` ("" for arithmetic),
        ``population`` (Int64, <NA> for arithmetic).
    values : dict relation -> tuple of str, every value of the relation: its true values and every
        candidate its facts are scored on (so each fact's candidates lie in it).
    dropped : DataFrame ``name`` (countryinfo's), ``relation`` ("" for the whole entry), ``reason``.
    """

    config: RealWorldConfig
    seed: int
    facts: pd.DataFrame
    values: dict
    dropped: pd.DataFrame = field(repr=False)

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.facts["entity"]))

    def relation(self, name: str) -> Relation:
        """The relation's templates (the first is the canonical statement) and question."""
        if name not in REAL_RELATIONS:
            raise ValueError(f"relation={name!r}: choose one of {tuple(REAL_RELATIONS)}")
        return REAL_RELATIONS[name]

    def prompts(self, form: str = "statement", facts: pd.DataFrame | None = None) -> pd.DataFrame:
        """Completion-format prompts (no chat template) and each fact's candidates.

        Parameters
        ----------
        form : "statement" (the canonical statement cut before the value: "The capital of France
            is") or "qa" ("Question: What is the capital of France?\\nAnswer:").
        facts : rows of ``self.facts`` to ask about (default all).

        Returns
        -------
        DataFrame with ``fact``, ``prompt`` (never ending in a space: candidates are scored as
        " " + candidate), ``candidates`` (tuple of str, per fact), ``target`` and ``form``.
        """
        if form not in FORMS:
            raise ValueError(f"form={form!r}: choose one of {FORMS}")
        facts = self.facts if facts is None else facts
        rows = []
        for f in facts.itertuples():
            rel = REAL_RELATIONS[f.relation]
            prompt = rel.cue(f.entity) if form == "statement" else qa_prompt(rel.question.format(e=f.entity))
            rows.append((f.fact, prompt, tuple(f.candidates), f.value, form))
        return pd.DataFrame(rows, columns=["fact", "prompt", "candidates", "target", "form"])

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the world to ``directory`` (realworld.json, facts.parquet, dropped.parquet)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"config": asdict(self.config), "seed": self.seed,
                "values": {k: list(v) for k, v in self.values.items()}}
        (d / "realworld.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        self.facts.to_parquet(d / "facts.parquet", index=False)
        self.dropped.to_parquet(d / "dropped.parquet", index=False)

    @classmethod
    def load(cls, directory: str | Path) -> RealWorld:
        d = Path(directory)
        meta = json.loads((d / "realworld.json").read_text())
        cfg = meta["config"]
        cfg["relations"] = tuple(cfg["relations"])
        facts = pd.read_parquet(d / "facts.parquet")
        for col in ("candidates", "aliases"):
            facts[col] = [tuple(str(x) for x in v) for v in facts[col]]
        return cls(config=RealWorldConfig(**cfg), seed=meta["seed"], facts=facts,
                   values={k: tuple(v) for k, v in meta["values"].items()},
                   dropped=pd.read_parquet(d / "dropped.parquet"))


# -- answers ---------------------------------------------------------------------------------
def qa_prompt(question: str) -> str:
    """The QA completion format for a base model."""
    return f"Question: {question}\nAnswer:"


def matches(answer: str, fact) -> bool:
    """Whether ``answer`` is one of the fact's accepted forms (a row of ``RealWorld.facts``)."""
    aliases = fact["aliases"] if isinstance(fact, (dict, pd.Series)) else fact.aliases
    return normalise(answer) in set(aliases)


def evaluate(expression: str) -> int:
    """The value of ``"a op b"`` with non-negative integers and op in + - × (also − * x): parsed, not eval'd."""
    m = _EXPRESSION.fullmatch(str(expression))
    if m is None:
        raise ValueError(f"expression={expression!r}: need 'a op b' with integers a, b and op in + - ×")
    a, op, b = int(m[1]), _OPERATORS[m[2]], int(m[3])
    return a + b if op == "+" else a - b if op == "-" else a * b


def check_arithmetic(expression: str, answer: str) -> bool:
    """Whether ``answer`` (an integer, optionally with a final ".") is the value of ``expression``."""
    m = _ANSWER.fullmatch(str(answer))
    return m is not None and int(m[1]) == evaluate(expression)


# -- arithmetic ------------------------------------------------------------------------------
def _arithmetic_counts(cfg: RealWorldConfig) -> dict[str, int]:
    n = cfg.n_arithmetic if "arithmetic" in cfg.relations else 0
    n_mul = round(cfg.multiplication_share * n)
    n_small = round(cfg.small_share * (n - n_mul))
    return {"small": n_small, "large": n - n_mul - n_small, "multiplication": n_mul}


def _arithmetic_pool_sizes(cfg: RealWorldConfig) -> dict[str, int]:
    k = cfg.arithmetic_max - 9  # operands 10..max
    return {"small": 19 * 19 + 19 * 18 // 2,  # a + b and a - b (a > b) with a, b in 1..19
            "large": (k * k - 100) + (k * (k - 1) // 2 - 45),  # some operand >= 20; a > b for -
            "multiplication": (cfg.multiplication_max - 1) ** 2}


def _arithmetic_problems(cfg: RealWorldConfig, rng: np.random.Generator) -> list[tuple[int, str, int]]:
    """Distinct problems (a, op, b): small + and -, two-digit + and -, and small ×, in seeded order."""
    top, mm = cfg.arithmetic_max, cfg.multiplication_max
    pools = {
        "small": [(a, op, b) for a in range(1, 20) for b in range(1, 20) for op in "+-" if op == "+" or a > b],
        "large": [(a, op, b) for a in range(10, top + 1) for b in range(10, top + 1) for op in "+-"
                  if max(a, b) >= 20 and (op == "+" or a > b)],
        "multiplication": [(a, "×", b) for a in range(2, mm + 1) for b in range(2, mm + 1)],
    }
    out = []
    for kind, k in _arithmetic_counts(cfg).items():
        pool = pools[kind]
        out += [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
    return [out[i] for i in rng.permutation(len(out))]


def _carry_errors(a: int, op: str, b: int) -> list[int]:
    """Typical slips: a forgotten carry (+), smaller-from-larger per digit (-), a factor off by one (×)."""
    if op == "×":
        return [a * (b - 1), a * (b + 1), (a - 1) * b, (a + 1) * b, a + b]
    da, db = str(a)[::-1], str(b)[::-1]
    digits = []
    for i in range(max(len(da), len(db))):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        digits.append((x + y) % 10 if op == "+" else abs(x - y))
    return [int("".join(map(str, digits[::-1])))]


def _arithmetic_facts(cfg: RealWorldConfig, rng: np.random.Generator) -> list[dict]:
    rows = []
    width = max(20, 2 * cfg.n_candidates)
    for a, op, b in _arithmetic_problems(cfg, rng):
        expr = f"{a} {op} {b}"
        r = evaluate(expr)
        near = [r + d for d in (1, -1, 2, -2, 10, -10)] + _carry_errors(a, op, b)
        fill = [r + d for d in range(-width, width + 1) if abs(d) > 2]
        tiers = [[str(v) for v in sorted(set(t)) if v >= 0 and v != r] for t in (near, fill)]
        candidates = pick_candidates([str(r)], {str(r)}, tiers, cfg.n_candidates, rng)
        rows.append({"entity": expr, "relation": "arithmetic", "value": str(r),
                     "type": "frequent" if a < 20 and b < 20 else "rare", "misconception": "",
                     "candidates": candidates, "aliases": (str(r),), "region": "", "subregion": "", "iso2": "",
                     "population": pd.NA})
    return rows


# -- the world -------------------------------------------------------------------------------
def _split(facts: pd.DataFrame, share: float, rng: np.random.Generator) -> np.ndarray:
    """Hold out ``share`` of each (relation, type) stratum (rounded half to even, as `round`)."""
    split = np.full(len(facts), "train", dtype=object)
    for _, idx in sorted(facts.groupby(["relation", "type"]).indices.items()):
        idx = rng.permutation(idx)
        split[idx[: round(share * len(idx))]] = "heldout"
    return split


def _values(facts: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    out = {}
    for rel, g in facts.groupby("relation", sort=False):
        vals = set(g["value"]).union(*map(set, g["candidates"]))
        key = (lambda v: (int(v), v)) if rel == "arithmetic" else (lambda v: (normalise(v), v))
        out[rel] = tuple(sorted(vals, key=key))
    return out


def build(config: RealWorldConfig = RealWorldConfig(), *, seed: int = 0) -> RealWorld:
    """Build the real reference world; the same seed gives the same world.

    Parameters
    ----------
    config : RealWorldConfig
    seed : int, the only source of randomness (arithmetic problems, distractors, candidate order,
        split); the country facts themselves come from countryinfo and pycountry.

    Returns
    -------
    RealWorld
    """
    if not isinstance(config, RealWorldConfig):
        raise TypeError(f"config must be a RealWorldConfig, got {type(config).__name__}")
    rng = np.random.default_rng(seed)
    countries, dropped = ([], []) if set(config.relations) <= {"arithmetic"} else _countries.countries(config)
    if not countries and set(config.relations) & set(COUNTRY_RELATIONS):
        raise ValueError(f"RealWorldConfig.min_population={config.min_population}: no country passes it; "
                         "lower it (the default is 1_000_000)")
    rows = _countries.country_facts(config, countries, rng)
    if "arithmetic" in config.relations:
        rows += _arithmetic_facts(config, rng)
    order = {r: i for i, r in enumerate(config.relations)}
    rows.sort(key=lambda row: order[row["relation"]])  # stable: facts grouped in config.relations order
    facts = pd.DataFrame(rows, columns=["entity", "relation", "value", "type", "misconception", "candidates",
                                        "aliases", "region", "subregion", "iso2", "population"])
    facts["candidates"] = [tuple(c[i] for i in rng.permutation(len(c))) for c in facts["candidates"]]
    facts["population"] = facts["population"].astype("Int64")
    facts.insert(0, "fact", np.arange(len(facts), dtype=np.int64))
    facts["split"] = _split(facts, config.heldout_share, rng)
    facts = facts[["fact", "entity", "relation", "value", "type", "misconception", "split", "candidates",
                   "aliases", "region", "subregion", "iso2", "population"]]
    dropped = pd.DataFrame(dropped, columns=["name", "relation", "reason"])
    return RealWorld(config=config, seed=seed, facts=facts, values=_values(facts), dropped=dropped)
