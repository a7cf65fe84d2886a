"""Real facts with reference answers, shaped like the synthetic `dint.world.World`.

A `RealWorld` is the reference world of the ``real`` profile: facts about real countries and
arithmetic problems, each with one true value, a per-fact candidate set, accepted surface forms
(``aliases``), a fact type and a split. It is a drop-in for `World` wherever an intervention uses
``facts``, ``values``, ``prompts(form, facts)`` and ``relation(name).templates``.

Where each relation's data come from
------------------------------------
``capital``    countryinfo's ``capital``, with two curated fixes (``Washington``; ``Astana``,
               renamed from Nur-Sultan in 2022) and the curated drops of ``_DROPPED``.
``subregion``  countryinfo's UN M49 region: the intermediate region where M49 has one (Africa
               south of the Sahara and Latin America: "Western Africa", "South America", "the
               Caribbean"), else the subregion ("Western Europe", "Eastern Asia").
``currency``   countryinfo's ISO 4217 codes, named by pycountry, rewritten in the form English
               prose uses after "the" (``_CURRENCY_NAMES``: "euro", "yen", "United States dollar",
               "pound sterling"). Fund codes (USN, CHE, ...) are ignored, withdrawn codes map to
               their successor (VEF -> VES, HRK -> EUR, ...); several codes in use: dropped.
``language``   countryinfo's ISO 639-1 codes, named by pycountry ("French", "Greek"); only
               countries with exactly one official language are kept.
``arithmetic`` problems ``a + b``, ``a - b`` (non-negative) and ``a × b`` drawn from the seed;
               values computed by Python.

Countries: entries of countryinfo that are current ISO 3166-1 countries (pycountry), not in
``_EXCLUDED`` (disputed or without a usable capital: Hong Kong, Macau, Palestine, Western
Sahara), one entry per ISO code (Myanmar, not its duplicate Burma), with a population of at least
``min_population`` (countryinfo's figures, about 2014). ISO 3166-1 includes dependent territories,
so the few above the threshold stay (Puerto Rico at the default) as does Taiwan. The entity is
the English short name, with "the" where English uses it ("the United States") so that prompts
read naturally; a few outdated names are updated (Swaziland -> Eswatini). A relation is dropped
for a country when its data are missing or ambiguous: several capitals, currencies or official
languages, an unknown code, or a curated reason in ``_DROPPED`` (e.g. Bolivia's two capitals).
``RealWorld.dropped`` lists every drop with its reason.

Fact types (proxies, not measured corpus counts)
------------------------------------------------
``frequent``   a country at or above the median population of the kept countries (populous
               countries are written about more: a proxy for mention counts), or an arithmetic
               problem whose operands are both below 20 (small problems are common in text);
``rare``       the other countries and problems;
``contested``  a capital with a well-known misconception (``CAPITAL_MISCONCEPTIONS``: the
               largest or best-known city is not the capital); ``misconception`` names that city.
Unlike the synthetic world there is no corpus: the types stand in for mention counts that cannot
be counted, so any result by type is a result by proxy.
"""
from __future__ import annotations

import importlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .world import FORMS, Relation

REAL_FACT_TYPES = ("frequent", "rare", "contested")
COUNTRY_RELATIONS = ("capital", "subregion", "currency", "language")

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

# Country (English short name, without "the") -> the city people wrongly name as its capital: the
# largest or best-known city, often a former capital. Only where countryinfo's capital is the true one.
CAPITAL_MISCONCEPTIONS = {
    "Australia": "Sydney", "Brazil": "Rio de Janeiro", "Benin": "Cotonou", "Belize": "Belize City",
    "Cameroon": "Douala", "Canada": "Toronto", "China": "Shanghai", "Ecuador": "Guayaquil",
    "India": "Mumbai", "Ivory Coast": "Abidjan", "Kazakhstan": "Almaty", "Morocco": "Casablanca",
    "Myanmar": "Yangon", "New Zealand": "Auckland", "Nigeria": "Lagos", "Pakistan": "Karachi",
    "Switzerland": "Zurich", "Tanzania": "Dar es Salaam", "Turkey": "Istanbul",
    "United Arab Emirates": "Dubai", "United States": "New York", "Vietnam": "Ho Chi Minh City",
}

# countryinfo entries left out entirely (countryinfo's name -> why).
_EXCLUDED = {
    "Hong Kong": "special administrative region; countryinfo's capital 'City of Victoria' is not in use",
    "Macau": "special administrative region without a capital",
    "Palestine": "status and capital disputed",
    "Palestine, State of": "status and capital disputed",
    "Western Sahara": "disputed territory",
}
# (countryinfo's name, relation) -> why the relation is dropped for that country.
_DROPPED = {
    ("Bolivia", "capital"): "two capitals: Sucre (constitutional) and La Paz (seat of government)",
    ("South Africa", "capital"): "three capitals: Pretoria, Cape Town and Bloemfontein",
    ("Sri Lanka", "capital"): "official capital Sri Jayawardenepura Kotte; countryinfo gives Colombo",
    ("Swaziland", "capital"): "two capitals: Mbabane (administrative) and Lobamba (legislative)",
    ("Burundi", "capital"): "the political capital moved from Bujumbura (countryinfo) to Gitega in 2019",
    ("Israel", "capital"): "capital disputed internationally",
    ("Zimbabwe", "currency"): "several currencies in use; the ZiG was introduced in 2024",
    ("Bulgaria", "currency"): "the lev gave way to the euro in 2026, after current models' training data",
    ("Philippines", "language"): "Filipino and English are both official; countryinfo lists English only",
    ("Morocco", "language"): "Arabic and Berber are both official (2011); countryinfo lists Arabic only",
    ("Algeria", "language"): "Arabic and Berber are both official (2016); countryinfo lists Arabic only",
    ("Peru", "language"): "Spanish, Quechua and Aymara are co-official; countryinfo lists Spanish only",
    ("East Timor", "language"): "Portuguese and Tetum are both official; countryinfo lists Portuguese only",
    ("Republic of Macedonia", "language"): "Macedonian and Albanian are both official since 2019",
    ("Ethiopia", "language"): "several federal working languages since 2020",
    ("Mali", "language"): "French lost its official status in 2023",
    ("Niger", "language"): "French lost its official status in 2025",
    ("Mauritius", "language"): "no de jure official language",
}
_RENAMES = {"Swaziland": "Eswatini", "Republic of Macedonia": "North Macedonia",
            "Holy See (Vatican City State)": "Vatican City"}
_ARTICLE_WORDS = {"Republic", "United", "Kingdom", "Islands", "States", "Emirates", "Lands"}
_ARTICLE_NAMES = {"Netherlands", "Philippines", "Bahamas", "Gambia", "Maldives", "Comoros", "Seychelles",
                  "Isle of Man", "Vatican City"}

# "Washington": the answer as a completion gives it; punctuation inside a value would also defeat
# word-level matchers of value mentions (the reward model's gold labels)
_CAPITAL_FIXES = {"Washington D.C.": "Washington", "Nur-Sultan": "Astana"}
_CAPITAL_ALIASES = {
    "Washington": ("Washington, D.C.", "Washington DC"), "Astana": ("Nur-Sultan",), "Kyiv": ("Kiev",),
    "Naypyidaw": ("Nay Pyi Taw", "Naypyitaw"), "New Delhi": ("Delhi",), "Ulaanbaatar": ("Ulan Bator",),
    "Tehran": ("Teheran",), "Bern": ("Berne",), "Sana'a": ("Sana",), "Port of Spain": ("Port-of-Spain",),
}

_SUBREGION_FORMS = {"South-Eastern Asia": "South-eastern Asia", "Caribbean": "the Caribbean"}
_SUBREGION_ALIASES = {
    "South-eastern Asia": ("Southeast Asia", "South-East Asia"), "Eastern Asia": ("East Asia",),
    "Southern Asia": ("South Asia",), "Western Asia": ("West Asia",), "Northern Africa": ("North Africa",),
    "Eastern Africa": ("East Africa",), "Western Africa": ("West Africa",), "Middle Africa": ("Central Africa",),
    "Northern America": ("North America",), "Australia and New Zealand": ("Australasia",),
}

_FUND_CURRENCIES = {"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "USS", "UYI", "UYW", "XSU", "XUA"}
_REPLACED_CURRENCIES = {"VEF": "VES", "ZMK": "ZMW", "BYR": "BYN", "MRO": "MRU", "STD": "STN", "SLL": "SLE",
                        "HRK": "EUR", "CSD": "RSD", "CUC": "CUP", "LTL": "EUR", "LVL": "EUR", "EEK": "EUR"}
# ISO 4217 names that English prose does not use; the rest: ISO name with the unit noun lower-cased.
_CURRENCY_NAMES = {
    "USD": "United States dollar", "GBP": "pound sterling", "CNY": "renminbi", "XOF": "West African CFA franc",
    "XAF": "Central African CFA franc", "XPF": "CFP franc", "BAM": "convertible mark", "OMR": "Omani rial",
    "UYU": "Uruguayan peso", "NIO": "córdoba", "UZS": "Uzbekistani som", "TMT": "Turkmenistan manat",
    "ILS": "Israeli new shekel", "ISK": "Icelandic króna", "LKR": "Sri Lankan rupee", "MUR": "Mauritian rupee",
    "PKR": "Pakistani rupee", "CRC": "Costa Rican colón", "SRD": "Surinamese dollar", "CVE": "Cape Verdean escudo",
    "GHS": "Ghanaian cedi", "RWF": "Rwandan franc", "BIF": "Burundian franc", "UGX": "Ugandan shilling",
    "MZN": "Mozambican metical", "MWK": "Malawian kwacha", "NAD": "Namibian dollar", "GYD": "Guyanese dollar",
    "BBD": "Barbadian dollar", "FJD": "Fijian dollar", "AZN": "Azerbaijani manat", "DJF": "Djiboutian franc",
    "VES": "bolívar", "AED": "UAE dirham", "KRW": "South Korean won", "KGS": "Kyrgyz som", "PYG": "guaraní",
    "TOP": "paʻanga", "TWD": "New Taiwan dollar",
}
_CURRENCY_ALIASES = {
    "USD": ("US dollar", "U.S. dollar", "American dollar", "dollar"), "GBP": ("pound", "British pound", "sterling"),
    "CNY": ("yuan", "Chinese yuan"), "XOF": ("CFA franc",), "XAF": ("CFA franc",), "ILS": ("shekel", "new shekel"),
    "JPY": ("Japanese yen",), "KRW": ("won",), "RUB": ("ruble", "rouble", "Russian rouble"),
    "EUR": ("Euro",), "VND": ("Vietnamese dong",), "TWD": ("Taiwan dollar", "dollar"),
}

_LANGUAGE_CODE_FIXES = {"rs": "sr"}  # countryinfo's code for Serbian is not ISO 639-1
_LANGUAGE_NAMES = {"el": "Greek", "ps": "Pashto", "pa": "Punjabi", "ky": "Kyrgyz", "dv": "Dhivehi",
                   "to": "Tongan", "ht": "Haitian Creole", "ff": "Fula", "rn": "Kirundi", "st": "Sesotho"}
_LANGUAGE_ALIASES = {"zh": ("Mandarin", "Mandarin Chinese", "Standard Chinese"), "fa": ("Farsi",),
                     "id": ("Bahasa Indonesia",), "ms": ("Bahasa Melayu",), "sw": ("Kiswahili",),
                     "bn": ("Bangla",), "km": ("Cambodian",), "lo": ("Laotian",)}

_EXPRESSION = re.compile(r"\s*(\d+)\s*([+\-−×*xX])\s*(\d+)\s*")
_ANSWER = re.compile(r"\s*(-?\d+)\s*\.?\s*")
_OPERATORS = {"+": "+", "-": "-", "−": "-", "×": "×", "*": "×", "x": "×", "X": "×"}


@dataclass(frozen=True)
class RealWorldConfig:
    """What goes into the real reference world."""

    relations: tuple[str, ...] = ("capital", "subregion", "currency", "language", "arithmetic")  # of REAL_RELATIONS
    n_candidates: int = 8               # candidates per fact: the true value and n - 1 distractors
    min_population: int = 1_000_000     # countries below it are dropped (micro-states, territories)
    contested: bool = True              # mark capitals in CAPITAL_MISCONCEPTIONS contested
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


def normalise(text: str) -> str:
    """Casefold, strip accents, split at hyphens and slashes, drop other punctuation and a leading "the".

    "Washington, D.C." -> "washington dc"; "Bogotá" -> "bogota"; "the Caribbean" -> "caribbean".
    """
    text = unicodedata.normalize("NFKD", str(text).casefold())
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if unicodedata.combining(ch) or ch in "ʻʼ":
            continue
        if cat == "Pd" or ch == "/":
            out.append(" ")
        elif not cat.startswith("P"):
            out.append(ch)
    text = " ".join("".join(out).split())
    return text.removeprefix("the ")


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


# -- countries -------------------------------------------------------------------------------
def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the real world needs {module!r}: install it with  pip install 'dint[real]'") from err


def _words(text: str) -> tuple[str, ...]:
    return tuple(normalise(text).split())


def _entity(name: str) -> str:
    """The name as it reads mid-sentence: "the United States", "France"."""
    name = _RENAMES.get(name, name)
    if name.startswith("The "):
        return "the " + name[4:]
    if name in _ARTICLE_NAMES or _ARTICLE_WORDS & set(name.split()):
        return "the " + name
    return name


def _capital(d: dict, _) -> tuple[str, tuple[str, ...]] | str:
    cap = d.get("capital")
    if not isinstance(cap, str) or not cap.strip():
        return "no single capital in countryinfo"
    if "/" in cap or ";" in cap:
        return f"several capitals: {cap}"
    cap = _CAPITAL_FIXES.get(cap, cap)
    return cap, _CAPITAL_ALIASES.get(cap, ())


def _subregion_of(d: dict) -> str:
    sub, inter = d.get("subregion") or "", d.get("intermediateregion") or ""
    value = inter if inter and sub in ("Sub-Saharan Africa", "Latin America and the Caribbean") else sub
    return _SUBREGION_FORMS.get(value, value)


def _subregion(d: dict, _) -> tuple[str, tuple[str, ...]] | str:
    value = _subregion_of(d)
    return (value, _SUBREGION_ALIASES.get(value, ())) if value else "no region in countryinfo"


def _currency(d: dict, pycountry) -> tuple[str, tuple[str, ...]] | str:
    codes = [_REPLACED_CURRENCIES.get(c, c) for c in d.get("currencies") or [] if c not in _FUND_CURRENCIES]
    codes = list(dict.fromkeys(codes))
    if len(codes) != 1:
        return "no currency in countryinfo" if not codes else f"several currencies in use: {codes}"
    code = codes[0]
    iso = pycountry.currencies.get(alpha_3=code)
    if iso is None:
        return f"ISO 4217 code {code} unknown to pycountry"
    if code in _CURRENCY_NAMES:
        name = _CURRENCY_NAMES[code]
    else:
        *adjective, unit = iso.name.split()
        name = " ".join([*adjective, unit.lower()])
    generic = (name.split()[-1],) if len(name.split()) > 1 and code not in _CURRENCY_NAMES else ()
    return name, (*_CURRENCY_ALIASES.get(code, ()), *generic, iso.name, code)


def _language(d: dict, pycountry) -> tuple[str, tuple[str, ...]] | str:
    codes = list(dict.fromkeys(_LANGUAGE_CODE_FIXES.get(c, c) for c in d.get("languages") or []))
    if len(codes) != 1:
        return "no language in countryinfo" if not codes else f"several official languages: {codes}"
    code = codes[0]
    iso = pycountry.languages.get(**{"alpha_2" if len(code) == 2 else "alpha_3": code})
    if iso is None:
        return f"ISO 639 code {code!r} unknown to pycountry"
    name = _LANGUAGE_NAMES.get(code) or re.sub(r"\s*\(.*\)$", "", iso.name)
    return name, (*_LANGUAGE_ALIASES.get(code, ()), iso.name)


_VALUE_OF = {"capital": _capital, "subregion": _subregion, "currency": _currency, "language": _language}


def _countries(config: RealWorldConfig) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Kept countries (dicts with name, entity, iso2, region, subregion, population, facts) and drops."""
    countryinfo, pycountry = _require("countryinfo"), _require("pycountry")
    raw = sorted((c.info() for c in countryinfo.all_countries()), key=lambda d: d["name"])
    dropped, by_iso = [], {}
    for d in raw:
        iso2 = (d.get("ISO") or {}).get("alpha2") or ""
        country = pycountry.countries.get(alpha_2=iso2) if iso2 else None
        if d["name"] in _EXCLUDED:
            dropped.append((d["name"], "", _EXCLUDED[d["name"]]))
        elif country is None:
            dropped.append((d["name"], "", "not a current ISO 3166-1 country"))
        else:
            by_iso.setdefault(iso2, []).append((d, country))
    kept = []
    for iso2, entries in sorted(by_iso.items()):
        if len(entries) > 1:  # keep the entry whose name is pycountry's (Myanmar, not Burma)
            names = {getattr(entries[0][1], k, None) for k in ("name", "common_name", "official_name")}
            keep = [e for e in entries if e[0]["name"] in names][:1]
            dropped += [(e[0]["name"], "", f"duplicate entry for ISO code {iso2}")
                        for e in entries if not any(e is k for k in keep)]
            entries = keep
        for d, _ in entries:
            population = d.get("population")
            if not isinstance(population, int) or population < max(config.min_population, 1):
                dropped.append((d["name"], "", f"population {population} below min_population"))
                continue
            facts = {}
            for rel in (r for r in config.relations if r in COUNTRY_RELATIONS):
                got = _DROPPED.get((d["name"], rel)) or _VALUE_OF[rel](d, pycountry)
                if isinstance(got, str):
                    dropped.append((d["name"], rel, got))
                else:
                    facts[rel] = got
            kept.append({"name": _RENAMES.get(d["name"], d["name"]), "entity": _entity(d["name"]), "iso2": iso2,
                         "region": d.get("region") or "", "subregion": _subregion_of(d),
                         "population": population, "facts": facts})
    count = pd.Series([c["entity"] for c in kept]).value_counts()
    for c in kept:
        if count[c["entity"]] > 1:
            dropped.append((c["name"], "", "entity name not unique"))
    kept = [c for c in kept if count[c["entity"]] == 1 and c["facts"]]
    return sorted(kept, key=lambda c: c["name"].casefold()), dropped


def _pick(candidates: list[str], aliases: set[str], tiers: list[list[str]], n: int,
          rng: np.random.Generator) -> list[str]:
    """Fill ``candidates`` up to n from the tiers in order, each shuffled; skip clashes.

    A value clashes when it is an accepted answer of the fact, or when its normalised words are a
    prefix of another candidate's or have one as a prefix (equal after normalising included).
    """
    chosen = [_words(c) for c in candidates]
    for tier in tiers:
        for j in rng.permutation(len(tier)):
            if len(candidates) >= n:
                return candidates
            v, w = tier[j], _words(tier[j])
            if " ".join(w) in aliases or any(w[:len(c)] == c or c[:len(w)] == w for c in chosen):
                continue
            candidates.append(v)
            chosen.append(w)
    return candidates


def _country_facts(config: RealWorldConfig, countries: list[dict], rng: np.random.Generator) -> list[dict]:
    median = float(np.median([c["population"] for c in countries])) if countries else 0.0
    rows = []
    for rel in (r for r in config.relations if r in COUNTRY_RELATIONS):
        have = [c for c in countries if rel in c["facts"]]
        for c in have:
            value, extra = c["facts"][rel]
            aliases = tuple(dict.fromkeys(normalise(a) for a in (value, *extra)))
            mis = CAPITAL_MISCONCEPTIONS.get(c["name"], "") if rel == "capital" and config.contested else ""
            if mis and normalise(mis) in aliases:
                mis = ""
            others = [o for o in have if o is not c]
            tiers = [[o["facts"][rel][0] for o in others if o["subregion"] == c["subregion"]],
                     [o["facts"][rel][0] for o in others if o["subregion"] != c["subregion"]
                      and o["region"] == c["region"]],
                     [o["facts"][rel][0] for o in others if o["region"] != c["region"]]]
            tiers = [sorted(set(t)) for t in tiers]
            candidates = _pick([value] + ([mis] if mis else []), set(aliases), tiers, config.n_candidates, rng)
            kind = "contested" if mis else "frequent" if c["population"] >= median else "rare"
            rows.append({"entity": c["entity"], "relation": rel, "value": value, "type": kind, "misconception": mis,
                         "candidates": candidates, "aliases": aliases, "region": c["region"],
                         "subregion": c["subregion"], "iso2": c["iso2"], "population": c["population"]})
    return rows


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
        candidates = _pick([str(r)], {str(r)}, tiers, cfg.n_candidates, rng)
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
    countries, dropped = ([], []) if set(config.relations) <= {"arithmetic"} else _countries(config)
    if not countries and set(config.relations) & set(COUNTRY_RELATIONS):
        raise ValueError(f"RealWorldConfig.min_population={config.min_population}: no country passes it; "
                         "lower it (the default is 1_000_000)")
    rows = _country_facts(config, countries, rng)
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
