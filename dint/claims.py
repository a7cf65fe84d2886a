"""The claims registry (``paper/claims.yaml``) judged against a profile's results.

Every statement the paper makes about its results is an entry of the registry, written before the
runs that judge it. An entry names the number that tests it (``<notebook>/<key>`` of a notebook's
``numbers.json``), the observable, what each framing predicts — truth installation and distributional
intervention — so that the outcome could go either way, the comparator, the test and its decision
rule, and one sentence for each verdict. Entries are of three kinds:

``claim``        tells the two framings apart;
``replication``  a published result reproduced or contradicted on the same design;
``sanity``       holds by construction or by a theorem; it checks the implementation, is judged
                 apart (passed or failed) and is not in the family of tests.

A ``claim`` or ``replication`` is judged by its rule (a predicted ``direction``, the value of no
effect ``no_effect``, "the null", and the smallest effect of interest ``sesoi``), with the p-values of all of them adjusted by Holm's
method as one family at the registry's ``alpha``. For an effect predicted ``greater`` or ``less``
(``two-sided``: either way):

``supported``     the Holm-adjusted p-value is below alpha, the estimate lies on the predicted side
                  of the null and at least ``sesoi`` from it;
``contradicted``  the interval excludes every effect of at least ``sesoi`` in the predicted
                  direction, or the effect is significant (Holm) the other way;
``inconclusive``  neither, or not estimable (no number, a NaN estimate: the reason is given). A number
                  without a p-value cannot be supported; its interval can still contradict it.

For an effect predicted absent (``equivalent``: within ``sesoi`` of the null), the interval decides, as
two one-sided tests at 2.5% each: ``supported`` when it lies inside (null - sesoi, null + sesoi),
``contradicted`` when it lies entirely outside on one side, ``inconclusive`` otherwise; such a claim
needs no p-value and is not in the Holm family.

`judge` returns the verdict table; `summary` gives the line ``dint claims`` ends with; `dint.claims_tex`
writes the paper's LaTeX from it.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .pipeline import paths
from .stats import adjust

__all__ = ["FRAMINGS", "KINDS", "NOT_APPLICABLE", "REFERENCES", "SANITY_CHECKS", "VERDICTS", "Claim", "FormatControl",
           "Registry", "check_text", "judge", "judge_profile", "load", "numbers", "registry_path", "sentence", "summary",
           "verdicts"]

KINDS = ("claim", "replication", "sanity")
REFERENCES = ("world", "real")   # where the truth comes from: the synthetic world, or real facts
VERDICTS = ("supported", "contradicted", "inconclusive")
NOT_APPLICABLE = "not applicable"
FRAMINGS = ("installation", "distributional")
DIRECTIONS = ("greater", "less", "two-sided", "equivalent")
# what a sanity entry checks of its number: the estimate against a bound, or the interval against a value
SANITY_CHECKS = ("at_most", "at_least", "equals", "interval_contains", "interval_excludes")
_ID = re.compile(r"^[a-z][a-z0-9-]*$")
_NUMBER = re.compile(r"^\d\d_[a-z_]+/[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Claim:
    """One entry of the registry (see ``paper/claims.yaml`` for what each field holds)."""

    id: str
    kind: str
    notebook: str
    number: str                  # "<notebook>/<key>" of numbers.json: the estimate the rule judges
    observable: str
    comparator: str
    predictions: dict            # framing -> what it predicts
    test: str
    rule: dict                   # claim/replication: direction, null, sesoi; sanity: one of SANITY_CHECKS
    power: str                   # the power to detect sesoi at the replication's size, and how it was computed
    refutation: str              # claim/replication: what would have refuted it; sanity: why it cannot fail
    sentences: dict              # verdict -> the paper's sentence (sanity: passed, failed)
    registered: str              # the date the entry was written, before the runs that judge it
    primary: bool = False        # the notebook's primary claim (one per notebook)
    source: str = ""             # replication: the published result
    changes: tuple = field(default_factory=tuple)   # why the entry changed after its number was seen
    applies: tuple = REFERENCES  # the references its observable exists on (a real corpus cannot be counted)


@dataclass(frozen=True)
class FormatControl:
    """The registry's format control: profiles judged again on a control profile whose base saw the QA format in
    pretraining (`dint.format_control`)."""

    profiles: dict               # {profile: its control profile}
    notebooks: tuple             # the notebooks whose claims are compared
    predictions: dict            # {framing: what it predicts of the comparison}
    rule: str                    # how the comparison is read
    registered: str


@dataclass(frozen=True)
class Registry:
    alpha: float
    claims: tuple
    format_control: FormatControl | None = None

    def by_id(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"no claim {claim_id!r} in the registry; ids: {[c.id for c in self.claims]}")


def registry_path() -> Path:
    return paths.root() / "paper" / "claims.yaml"


def _fail(where: str, what: str):
    raise ValueError(f"{where}: {what}")


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"'{key}' must be a non-empty text")
    return " ".join(value.split())


def _number(value, where: str, what: str) -> float | str:
    """A number, or the name of another number of the same notebook (e.g. a bound it reports)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        _fail(where, f"{what}={value!r}: give a number or the key of a number in the same notebook")
    return float(value) if not isinstance(value, str) else value


def _rule(kind: str, rule, where: str) -> dict:
    if not isinstance(rule, dict):
        _fail(where, "'rule' must be a mapping")
    if kind == "sanity":
        unknown = [k for k in rule if k not in (*SANITY_CHECKS, "tolerance")]
        if unknown:
            _fail(where, f"rule has unknown keys {unknown}: give one of {SANITY_CHECKS} and optionally tolerance")
        checks = [k for k in SANITY_CHECKS if k in rule]
        if len(checks) != 1:
            _fail(where, f"a sanity rule has exactly one of {SANITY_CHECKS}, got {sorted(rule)}")
        out = {"check": checks[0], "value": _number(rule[checks[0]], where, checks[0])}
        tol = rule.get("tolerance", 0.0)
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0:
            _fail(where, f"tolerance={tol!r}: give a number >= 0")
        out["tolerance"] = float(tol)
        return out
    unknown = [k for k in rule if k not in ("direction", "no_effect", "sesoi")]
    if unknown:
        _fail(where, f"rule has unknown keys {unknown}: give direction, no_effect (default 0) and sesoi")
    direction = rule.get("direction")
    if direction not in DIRECTIONS:
        _fail(where, f"direction={direction!r}: give one of {DIRECTIONS}")
    sesoi = rule.get("sesoi")
    if isinstance(sesoi, bool) or not isinstance(sesoi, (int, float)) or not sesoi > 0:
        _fail(where, f"sesoi={sesoi!r}: give the smallest effect of interest, a number > 0 on the estimate's scale")
    null = rule.get("no_effect", 0.0)
    if isinstance(null, bool) or not isinstance(null, (int, float)):
        _fail(where, f"no_effect={null!r}: give the value of no effect, a number")
    return {"direction": direction, "null": float(null), "sesoi": float(sesoi)}


def _claim(entry, i: int, notebooks: set[str]) -> Claim:
    where = f"claims[{i}]"
    if not isinstance(entry, dict):
        _fail(where, "each entry must be a mapping")
    cid = entry.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        _fail(where, f"id={cid!r}: give lower-case words joined by '-', e.g. 'sft-heldout-gain'")
    where = f"claim {cid!r}"
    kind = entry.get("kind")
    if kind not in KINDS:
        _fail(where, f"kind={kind!r}: give one of {KINDS}")
    number = entry.get("number")
    if not isinstance(number, str) or not _NUMBER.match(number):
        _fail(where, f"number={number!r}: give '<notebook>/<key>' of a notebook's numbers.json, "
                     "e.g. '01_mechanism/sft_d_accuracy'")
    notebook = number.split("/")[0]
    if notebooks and notebook not in notebooks:
        _fail(where, f"number={number!r}: no notebook {notebook!r} (notebooks: {sorted(notebooks)})")
    predictions = entry.get("predictions")
    if not isinstance(predictions, dict) or set(predictions) != set(FRAMINGS):
        _fail(where, f"'predictions' must give exactly {FRAMINGS}")
    predictions = {f: _text(predictions, f, where) for f in FRAMINGS}
    outcomes = ("passed", "failed") if kind == "sanity" else VERDICTS
    sentences = entry.get("sentences")
    if not isinstance(sentences, dict) or set(sentences) != set(outcomes):
        _fail(where, f"'sentences' must give one sentence for each of {outcomes}")
    sentences = {v: _text(sentences, v, where) for v in outcomes}
    if len(set(sentences.values())) != len(sentences):
        _fail(where, "the sentences of different verdicts must differ")
    source = entry.get("source", "")
    if kind == "replication" and not (isinstance(source, str) and source.strip()):
        _fail(where, "a replication names its published 'source'")
    changes = entry.get("changes", [])
    if not isinstance(changes, list) or not all(isinstance(c, str) and c.strip() for c in changes):
        _fail(where, "'changes' must be a list of lines, each saying what changed after the number was seen and why")
    primary = entry.get("primary", False)
    if not isinstance(primary, bool) or (primary and kind != "claim"):
        _fail(where, f"primary={primary!r}: true marks the notebook's one primary claim (kind: claim), else leave it out")
    applies = entry.get("applies", list(REFERENCES))
    if not isinstance(applies, list) or not applies or not set(applies) <= set(REFERENCES):
        _fail(where, f"applies={applies!r}: give a list of the references its observable exists on, of {REFERENCES}")
    registered = entry.get("registered")
    if not re.match(r"^\d{4}-\d\d-\d\d$", str(registered)):
        _fail(where, f"registered={registered!r}: give the date the entry was written, YYYY-MM-DD")
    return Claim(id=cid, kind=kind, notebook=notebook, number=number, observable=_text(entry, "observable", where),
                 comparator=_text(entry, "comparator", where), predictions=predictions,
                 test=_text(entry, "test", where), rule=_rule(kind, entry.get("rule"), where),
                 power=_text(entry, "power", where), refutation=_text(entry, "refutation", where),
                 sentences=sentences, registered=str(registered), primary=primary, source=" ".join(str(source).split()),
                 changes=tuple(" ".join(c.split()) for c in changes), applies=tuple(applies))


def load(path: str | Path | None = None) -> Registry:
    """Read and check the registry (default ``paper/claims.yaml``); raises ``ValueError`` naming the entry
    and the field that is wrong."""
    path = Path(path) if path else registry_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims registry (paper/claims.yaml)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list) or not data["claims"]:
        raise ValueError(f"{path}: give 'alpha' and a non-empty list 'claims'")
    alpha = data.get("alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, float) or not 0 < alpha < 1:
        raise ValueError(f"{path}: alpha={alpha!r}: give the family-wise level, a number in (0, 1), e.g. 0.05")
    notebooks = {p.stem for p in paths.notebooks().glob("*.ipynb")}
    claims = tuple(_claim(e, i, notebooks) for i, e in enumerate(data["claims"]))
    ids = [c.id for c in claims]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"{path}: ids {twice} are used twice")
    primaries = [c.notebook for c in claims if c.primary]
    twice = sorted({n for n in primaries if primaries.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: notebooks {twice} have more than one primary claim")
    control = _format_control(data["format_control"], notebooks) if "format_control" in data else None
    return Registry(alpha=float(alpha), claims=claims, format_control=control)


def _format_control(entry, notebooks: set[str]) -> FormatControl:
    where = "format_control"
    if not isinstance(entry, dict):
        _fail(where, "give a mapping with profiles, notebooks, predictions, rule and registered")
    profiles = entry.get("profiles")
    if (not isinstance(profiles, dict) or not profiles
            or not all(isinstance(k, str) and isinstance(v, str) and k != v for k, v in profiles.items())):
        _fail(where, f"profiles={profiles!r}: map each profile to its control profile, e.g. {{tiny: tiny-qa}}")
    chosen = entry.get("notebooks")
    if not isinstance(chosen, list) or not chosen or (notebooks and not set(chosen) <= notebooks):
        _fail(where, f"notebooks={chosen!r}: give a list of notebooks whose claims are compared, of {sorted(notebooks)}")
    predictions = entry.get("predictions")
    if not isinstance(predictions, dict) or set(predictions) != set(FRAMINGS):
        _fail(where, f"'predictions' must give exactly {FRAMINGS}")
    registered = entry.get("registered")
    if not re.match(r"^\d{4}-\d\d-\d\d$", str(registered)):
        _fail(where, f"registered={registered!r}: give the date the entry was written, YYYY-MM-DD")
    return FormatControl(profiles=dict(profiles), notebooks=tuple(chosen),
                         predictions={f: _text(predictions, f, where) for f in FRAMINGS},
                         rule=_text(entry, "rule", where), registered=str(registered))


def numbers(folder: str | Path) -> dict[str, dict]:
    """Every notebook's numbers of a results folder: ``{notebook: {key: value}}`` (``numbers.json``)."""
    out = {}
    for f in sorted(Path(folder).glob("*/numbers.json")):
        out[f.parent.name] = json.loads(f.read_text())["numbers"]
    return out


def _value(results: dict, notebook: str, key: str):
    """(estimate, low, high, pvalue, reason) of a number; a plain number has no interval or p-value."""
    if notebook not in results:
        return None, f"no results of notebook {notebook} (run the pipeline)"
    if key not in results[notebook]:
        return None, f"{notebook}/numbers.json has no number {key!r}"
    v = results[notebook][key]
    nan = float("nan")
    if isinstance(v, dict) and "estimate" in v:
        f = [nan if v.get(k) is None else float(v[k]) for k in ("estimate", "ci_low", "ci_high", "pvalue")]
        return tuple(f) + (v.get("reason") or "",), ""
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return (nan if v is None else float(v), nan, nan, nan, ""), ""
    return None, f"{notebook}/{key} is not a number"


def _bound(results: dict, notebook: str, value) -> tuple[float, str]:
    if isinstance(value, float):
        return value, ""
    found, why = _value(results, notebook, value)
    return (float("nan"), why) if found is None else (found[0], "")


def _sanity(claim: Claim, results: dict) -> dict:
    found, why = _value(results, claim.notebook, claim.number.split("/")[1])
    row = {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "pvalue": np.nan}
    if found is None:
        return {**row, "verdict": "failed", "reason": why}
    est, lo, hi, p, _ = found
    row.update(estimate=est, ci_low=lo, ci_high=hi, pvalue=p)
    bound, why = _bound(results, claim.notebook, claim.rule["value"])
    tol, check = claim.rule["tolerance"], claim.rule["check"]
    if math.isnan(bound):
        return {**row, "verdict": "failed", "reason": why or "the bound is NaN"}
    if check.startswith("interval") and (math.isnan(lo) or math.isnan(hi)):
        return {**row, "verdict": "failed", "reason": "the number has no interval"}
    ok = {"at_most": lambda: est <= bound + tol, "at_least": lambda: est >= bound - tol,
          "equals": lambda: abs(est - bound) <= tol,
          "interval_contains": lambda: lo - tol <= bound <= hi + tol,
          "interval_excludes": lambda: not (lo - tol <= bound <= hi + tol)}[check]()
    verdict = "passed" if ok else "failed"
    return {**row, "verdict": verdict, "reason": "" if ok else f"{check.replace('_', ' ')} {bound:g} does not hold"}


def _equivalence(rule: dict, lo: float, hi: float) -> tuple[str, str]:
    null, sesoi = rule["null"], rule["sesoi"]
    if null - sesoi < lo and hi < null + sesoi:
        return "supported", ""
    if lo >= null + sesoi or hi <= null - sesoi:
        return "contradicted", f"the interval lies outside {null:g} ± {sesoi:g}"
    return "inconclusive", f"the interval reaches beyond {null:g} ± {sesoi:g} without lying outside it"


def _decide(rule: dict, est: float, lo: float, hi: float, p_holm: float, alpha: float) -> tuple[str, str]:
    """The verdict of one claim from its estimate, interval and Holm-adjusted p-value."""
    if rule["direction"] == "equivalent":
        return _equivalence(rule, lo, hi)
    if rule["direction"] == "two-sided":   # the predicted direction is the one the estimate took
        rule = {**rule, "direction": "greater" if est >= rule["null"] else "less"}
        if p_holm < alpha and abs(est - rule["null"]) >= rule["sesoi"]:
            return "supported", ""
        if rule["null"] - rule["sesoi"] < lo and hi < rule["null"] + rule["sesoi"]:
            return "contradicted", f"the interval lies inside {rule['null']:g} ± {rule['sesoi']:g}"
        if p_holm < alpha:
            return "inconclusive", (f"significant, but the estimate is smaller than the smallest effect of "
                                    f"interest {rule['sesoi']:g}")
        return "inconclusive", "neither significant after Holm nor excluding the smallest effect of interest"
    sign = 1.0 if rule["direction"] == "greater" else -1.0
    effect, low, high = (sign * (x - rule["null"]) for x in (est, lo, hi))   # positive: the predicted direction
    if sign < 0:
        low, high = high, low
    if p_holm < alpha and effect >= rule["sesoi"]:
        return "supported", ""
    if p_holm < alpha and effect < 0:
        return "contradicted", "significant in the other direction"
    if not math.isnan(high) and high < rule["sesoi"]:
        return "contradicted", f"the interval excludes an effect of {rule['sesoi']:g} in the predicted direction"
    if p_holm < alpha:
        return "inconclusive", f"significant, but the estimate is smaller than the smallest effect of interest {rule['sesoi']:g}"
    return "inconclusive", "neither significant after Holm nor excluding the smallest effect of interest"


def judge(registry: Registry, results: dict[str, dict], *, reference: str = "world") -> pd.DataFrame:
    """Verdicts of every registry entry on one run's numbers.

    Parameters
    ----------
    registry : `load`'s registry
    results : ``{notebook: {key: number}}``, e.g. `numbers` of ``results/<profile>``
    reference : the run's reference (`REFERENCES`); an entry that does not apply to it is ``not applicable``
        and left out of the family

    Returns
    -------
    DataFrame, one row per entry in registry order: ``id, kind, notebook, number, estimate, ci_low,
    ci_high, pvalue, pvalue_holm, verdict, reason`` (sanity entries: ``passed`` or ``failed``, no Holm).
    The Holm family is every ``claim`` and ``replication`` entry with a p-value.
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference={reference!r}: give one of {REFERENCES}")
    rows = []
    for c in registry.claims:
        base = {"id": c.id, "kind": c.kind, "notebook": c.notebook, "number": c.number}
        if reference not in c.applies:
            rows.append({**base, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "pvalue": np.nan,
                         "pvalue_holm": np.nan, "verdict": NOT_APPLICABLE,
                         "reason": f"its observable does not exist on the {reference} reference"})
            continue
        if c.kind == "sanity":
            rows.append({**base, **_sanity(c, results), "pvalue_holm": np.nan})
            continue
        found, why = _value(results, c.notebook, c.number.split("/")[1])
        if found is None:
            rows.append({**base, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "pvalue": np.nan,
                         "reason": why})
            continue
        est, lo, hi, p, reason = found
        if math.isnan(p) and not reason:
            reason = "the number has no p-value: no test to judge it by"
        rows.append({**base, "estimate": est, "ci_low": lo, "ci_high": hi, "pvalue": p, "reason": reason})
    table = pd.DataFrame(rows)
    if "verdict" not in table:
        table["verdict"] = ""
    table["verdict"] = table["verdict"].astype(object)
    equivalence = np.array([c.kind != "sanity" and c.rule["direction"] == "equivalent" for c in registry.claims])
    applies = table["verdict"] != NOT_APPLICABLE
    family = (table["kind"].isin(["claim", "replication"]) & table["pvalue"].notna() & table["estimate"].notna()
              & ~equivalence & applies)
    table["pvalue_holm"] = np.nan
    if family.any():
        table.loc[family, "pvalue_holm"] = adjust(table.loc[family, "pvalue"].to_numpy(float), method="holm")
    for i, c in enumerate(registry.claims):
        if c.kind == "sanity" or not applies[i]:
            continue
        r = table.loc[i]
        if equivalence[i] and r["reason"] == "the number has no p-value: no test to judge it by":
            r = r.copy()
            r["reason"] = ""   # an equivalence claim is judged by its interval
        if math.isnan(r["estimate"]) or (not family[i] and (math.isnan(r["ci_low"]) or math.isnan(r["ci_high"]))):
            table.loc[i, ["verdict", "reason"]] = ["inconclusive", r["reason"] or "not estimable"]
            continue
        # without a p-value only the interval can speak: it may contradict, never support
        p = r["pvalue_holm"] if family[i] else 1.0
        verdict, why = _decide(c.rule, r["estimate"], r["ci_low"], r["ci_high"], p, registry.alpha)
        keep = family[i] or equivalence[i] or verdict == "contradicted"
        table.loc[i, ["verdict", "reason"]] = [verdict, why if keep else r["reason"]]
    return table[["id", "kind", "notebook", "number", "estimate", "ci_low", "ci_high", "pvalue", "pvalue_holm",
                  "verdict", "reason"]]


def verdicts(profile: str, *, seed: int | None = None, train_seed: int | None = None,
             registry: Registry | None = None) -> pd.DataFrame:
    """`judge` the registry (default ``paper/claims.yaml``) on a profile's results (its run at ``seed`` and
    ``train_seed``)."""
    from .pipeline import artifacts
    from .pipeline.config import load_profile

    P = load_profile(profile, seed=seed, train_seed=train_seed)
    folder = artifacts.root(P)
    found = numbers(folder)
    if not found:
        raise FileNotFoundError(f"no numbers under {folder}: run the pipeline first (make reproduce PROFILE={profile})")
    return judge_profile(profile, found, registry=registry)


def judge_profile(profile: str, found: dict, *, registry: Registry | None = None) -> pd.DataFrame:
    """`judge` the registry (default ``paper/claims.yaml``) on ``found``, one run's numbers of ``profile``
    (`numbers`), on the profile's reference: what applies to real facts, or to the world."""
    from .pipeline.config import load_profile

    return judge(registry or load(), found, reference="real" if load_profile(profile).real else "world")


def sentence(registry: Registry, table: pd.DataFrame, claim_id: str) -> str:
    """The paper's sentence for a claim: the registry's sentence for the verdict it got."""
    verdict = table.set_index("id").loc[claim_id, "verdict"]
    claim = registry.by_id(claim_id)
    return claim.sentences.get(verdict, f"({claim_id} is not measured on this reference.)")


def summary(table: pd.DataFrame, *, runs: int = 1) -> str:
    """The last line of ``dint claims``: counts of verdicts, sanity checks passed, and the runs judged."""
    table = table[table["verdict"] != NOT_APPLICABLE]
    main = table[table["kind"] != "sanity"]
    sanity = table[table["kind"] == "sanity"]
    count = main["verdict"].value_counts()
    return (f"claims: {len(main)} registered, {count.get('supported', 0)} supported, "
            f"{count.get('contradicted', 0)} contradicted, {count.get('inconclusive', 0)} inconclusive; "
            f"sanity {int((sanity['verdict'] == 'passed').sum())} of {len(sanity)} passed; runs {runs}")


def check_text(text: str, registry: Registry, table: pd.DataFrame) -> list[str]:
    """Sentences of the registry that ``text`` (the paper's source) states although the claim got another
    verdict: one line per such sentence (empty when the prose agrees with every verdict).

    Whitespace and LaTeX line breaks are ignored; the paper states a claim's verdict through the
    generated macro (``\\claimsentence{<id>}``), so a typed sentence is caught when its verdict changes.
    """
    flat = " ".join(text.split())
    got = table.set_index("id")["verdict"]
    out = []
    for c in registry.claims:
        for verdict, s in c.sentences.items():
            if verdict != got.get(c.id) and s in flat:
                out.append(f"the paper states {c.id!r} as {verdict} ({s!r}), but its verdict is {got.get(c.id)}")
    return out
