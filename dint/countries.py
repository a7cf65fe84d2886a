"""Facts about real countries for `dint.realworld`: countryinfo's data, named by pycountry, corrected.

The curated tables below hold what the packages get wrong or leave ambiguous, each with its reason:
capitals whose best-known city is a popular misconception (`CAPITAL_MISCONCEPTIONS`), entries left
out, relations dropped per country, renamed countries and capitals, surface forms of subregions,
currencies and languages, and the aliases that matching answers needs. `countries` reads and
filters the packages' entries; `country_facts` turns them into fact rows with candidate sets.
"""
from __future__ import annotations

import importlib
import re

import numpy as np
import pandas as pd

from .answers import normalise, pick_candidates

COUNTRY_RELATIONS = ("capital", "subregion", "currency", "language")

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


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the real world needs {module!r}: install it with  pip install 'dint[real]'") from err


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


def countries(config) -> tuple[list[dict], list[tuple[str, str, str]]]:
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


def country_facts(config, countries: list[dict], rng: np.random.Generator) -> list[dict]:
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
            candidates = pick_candidates([value] + ([mis] if mis else []), set(aliases), tiers, config.n_candidates, rng)
            kind = "contested" if mis else "frequent" if c["population"] >= median else "rare"
            rows.append({"entity": c["entity"], "relation": rel, "value": value, "type": kind, "misconception": mis,
                         "candidates": candidates, "aliases": aliases, "region": c["region"],
                         "subregion": c["subregion"], "iso2": c["iso2"], "population": c["population"]})
    return rows
