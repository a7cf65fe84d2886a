"""The causes of errors that the world alone knows, and the error taxonomy judged against them.

`dint.taxonomy.known_cause` reads the base model's top answer (for "regression") and the retrieved context
(for "routing"), as `dint.taxonomy.classify` does: agreement between the two is partly circular. Here the
known cause of an error comes from the world and the intervention's data only — never from a model's
output — and the taxonomy's thresholds are fitted on other facts than those it is judged on.

`world_cause`   for an error of model M on fact f, the first rule that holds:

                ``routing``         M is a RAG policy whose store holds a stale document of f (the store's
                                    contents, not what retrieval put in the context);
                ``imitative``       the corpus states a wrong value of f more often than the truth;
                ``regression``      M's training data sets a wrong value of f as its target (`taught_wrong`);
                ``selection``       the corpus states the truth of f and no wrong value more often;
                ``absent_support``  the corpus never states the truth of f.

                A supported fact (``selection``) with fewer true statements than the world's ``frequent_min``
                is ``rare``. The interventions' data hold train facts only, so no held-out error has the cause
                ``regression``: on held-out facts the world cannot tell regression from selection, and
                `WORLD_RESOLUTION` merges the two into ``supported``.
`one_line`      the baseline that reads one bit: "regression if the base was right, else selection".
`folds`         the held-out facts in two halves, stratified by fact type.
`crossfit`      the taxonomy's thresholds (`dint.taxonomy.TaxonomyConfig`) chosen on one half by the κ at the
                world's resolution over `GRID`, applied to the other half, both ways (`fit` on one set).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

from . import agreement, taxonomy
from .taxonomy import TaxonomyConfig

__all__ = ["GRID", "WORLD_CLASSES", "WORLD_RESOLUTION", "CrossFit", "at_world_resolution", "configs", "crossfit",
           "fit", "folds", "one_line", "taught_wrong", "world_cause"]

# the causes the world alone gives (in the taxonomy's rule order), and the merge to what it can tell apart on
# held-out facts, where no intervention's data teaches a wrong value
WORLD_CLASSES = ("routing", "imitative", "regression", "selection", "absent_support")
WORLD_RESOLUTION = {"regression": "supported", "selection": "supported"}
# the thresholds `crossfit` chooses among (routing_miss stays False); the defaults are a point of the grid
GRID = {"absent_factor": (1.0, 1.5, 2.0, 3.0, 4.0), "selection_factor": (1.5, 2.0, 3.0),
        "selection_mass": (0.05, 0.1, 0.2, 0.3), "regression_drop": (0.1, 0.2, 0.3, 0.5),
        "imitative_mass": (0.5, 0.6, 0.7, 0.8)}


def taught_wrong(world, data: pd.DataFrame) -> set:
    """The facts whose training data sets a wrong value as the target.

    Parameters
    ----------
    world : `dint.world.World` (its ``facts``: ``fact``, ``value``)
    data : an intervention's training table with ``fact`` and either ``chosen_true`` (preference pairs,
        `dint.interventions.data.preference_pairs`: the chosen answer is wrong) or ``completion`` (demonstrations,
        `dint.interventions.data.sft_demos` or `dint.interventions.rag.demonstrations`: the completion is not the
        true value)

    Returns
    -------
    set of fact ids
    """
    cols = set(getattr(data, "columns", ()))
    if "fact" not in cols or not cols & {"chosen_true", "completion"}:
        raise ValueError("data needs 'fact' and 'chosen_true' (preference pairs) or 'completion' (demonstrations)")
    if "chosen_true" in cols:
        wrong = ~data["chosen_true"].to_numpy(bool)
    else:
        truth = data[["fact"]].merge(world.facts[["fact", "value"]], on="fact", how="left")["value"]
        if truth.isna().any():
            raise ValueError("data has facts that are not in world")
        wrong = data["completion"].str.strip().to_numpy() != truth.to_numpy()
    return set(data["fact"].to_numpy()[wrong].tolist())


def _corpus(world) -> pd.DataFrame:
    """Per fact: ``n_true`` (true statements), ``n_wrong_max`` (the most stated wrong value's count)."""
    facts, counts = getattr(world, "facts", None), getattr(world, "counts", None)
    if not isinstance(counts, pd.DataFrame) or not isinstance(facts, pd.DataFrame):
        raise ValueError("world must be a dint.world.World with a corpus (counts); a real world has none to count")
    c = counts.merge(facts[["fact", "value"]].rename(columns={"value": "truth"}), on="fact")
    true = c[c.value == c.truth].groupby("fact")["count"].sum()
    wrong = c[c.value != c.truth].groupby("fact")["count"].max()
    return pd.DataFrame({"n_true": true.reindex(facts.fact, fill_value=0).to_numpy(),
                         "n_wrong_max": wrong.reindex(facts.fact, fill_value=0).to_numpy()},
                        index=pd.Index(facts.fact.to_numpy(), name="fact"))


def _stale_facts(store) -> set:
    table = getattr(store, "table", store)
    if not isinstance(table, pd.DataFrame) or not {"fact", "is_true"} <= set(table.columns):
        raise ValueError("stores: give DocumentStores (dint.interventions.retrieval.build_store) or their tables")
    return set(table.loc[~table["is_true"].to_numpy(bool), "fact"].tolist())


def world_cause(world, items: pd.DataFrame, *, stores: dict | None = None, taught: dict | None = None) -> pd.DataFrame:
    """The cause of each error from the world alone (the rules of the module's docstring).

    Parameters
    ----------
    world : `dint.world.World`
    items : ``fact``, ``error``, and ``intervention`` where ``stores`` or ``taught`` name models (e.g.
        `dint.taxonomy.diagnose`'s table)
    stores : {model: its RAG document store}: the models whose errors can be routed
    taught : {model: facts whose training data sets a wrong value (`taught_wrong`)}

    Returns
    -------
    DataFrame on ``items``' index: ``world_cause`` (one of `WORLD_CLASSES`; None where no error), ``rare`` (a
    supported fact stated truly fewer than ``frequent_min`` times), ``n_true`` and ``n_wrong_max`` (the fact's
    true statements and its most stated wrong value's count).
    """
    stores, taught = stores or {}, taught or {}
    need = {"fact", "error"} | ({"intervention"} if stores or taught else set())
    missing = sorted(need - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}: pass dint.taxonomy.diagnose's table")
    corpus = _corpus(world)
    unknown = sorted(set(items["fact"]) - set(corpus.index))
    if unknown:
        raise ValueError(f"items has facts not in world: {unknown[:5]}")
    c = corpus.loc[items["fact"].to_numpy()]
    n_true, n_wrong = c["n_true"].to_numpy(), c["n_wrong_max"].to_numpy()
    model = items["intervention"].to_numpy() if "intervention" in items.columns else np.full(len(items), None)
    stale = {name: _stale_facts(s) for name, s in stores.items()}
    fact = items["fact"].to_numpy()
    routed = np.array([f in stale.get(m, ()) for m, f in zip(model, fact)], bool)
    wrong_target = np.array([f in taught.get(m, ()) for m, f in zip(model, fact)], bool)
    rules = [("routing", routed), ("imitative", n_wrong > n_true), ("regression", wrong_target),
             ("selection", n_true > 0), ("absent_support", np.ones(len(items), bool))]
    cause = np.full(len(items), None, dtype=object)
    for name, hold in reversed(rules):                    # the first rule in order wins
        cause[hold] = name
    err = items["error"].to_numpy(bool)
    cause[~err] = None
    frequent_min = getattr(getattr(world, "config", None), "frequent_min", 0)
    return pd.DataFrame({"world_cause": cause, "rare": err & (cause == "selection") & (n_true < frequent_min),
                         "n_true": n_true, "n_wrong_max": n_wrong}, index=items.index)


def at_world_resolution(labels) -> np.ndarray:
    """``labels`` with regression and selection merged into ``supported`` (`WORLD_RESOLUTION`)."""
    return np.array([WORLD_RESOLUTION.get(x, x) for x in np.asarray(labels, dtype=object)], dtype=object)


def one_line(items: pd.DataFrame) -> np.ndarray:
    """The one-bit baseline: for an error, ``regression`` if the base's top answer was right, else ``selection``
    (None where no error)."""
    missing = sorted({"error", "correct_base"} - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}: pass dint.taxonomy.classify's table")
    out = np.where(items["correct_base"].to_numpy(bool), "regression", "selection").astype(object)
    out[~items["error"].to_numpy(bool)] = None
    return out


def folds(facts: pd.DataFrame, *, seed: int = 0) -> pd.Series:
    """Each fact's half (0 or 1): a seeded permutation within each fact type, alternate facts to each half.

    Parameters
    ----------
    facts : rows of ``world.facts`` (``fact``, ``type``), e.g. the held-out ones
    seed : the permutation's only source of randomness

    Returns
    -------
    Series of 0/1 indexed by ``fact``.
    """
    if not isinstance(facts, pd.DataFrame) or not {"fact", "type"} <= set(facts.columns) or len(facts) < 2:
        raise ValueError("facts must be at least two rows of world.facts (with 'fact' and 'type')")
    rng = np.random.default_rng(seed)
    fold = pd.Series(0, index=pd.Index(facts["fact"].to_numpy(), name="fact"), name="fold")
    start = 0
    for t in sorted(facts["type"].unique()):
        ids = facts.loc[facts["type"] == t, "fact"].to_numpy()
        half = (np.arange(len(ids)) + start) % 2        # alternate across types: the halves differ by one at most
        fold.loc[ids[rng.permutation(len(ids))]] = half
        start += len(ids)
    return fold


def configs(grid: dict = GRID) -> list[TaxonomyConfig]:
    """Every TaxonomyConfig of ``grid`` ({field: values}), the defaults first."""
    names = [f.name for f in fields(TaxonomyConfig)]
    bad = sorted(set(grid) - set(names))
    if bad or not grid or any(not len(v) for v in grid.values()):
        raise ValueError(f"grid: give non-empty value lists for fields of TaxonomyConfig ({names}); bad: {bad}")
    default = TaxonomyConfig()
    out = [TaxonomyConfig(**dict(zip(grid, v))) for v in itertools.product(*grid.values())]
    return [default] + [c for c in out if c != default]


def fit(errors: pd.DataFrame, known, *, grid: dict = GRID) -> tuple[TaxonomyConfig, float]:
    """The thresholds whose classes agree best with ``known`` at the world's resolution (κ), ties to the earlier.

    Parameters
    ----------
    errors : `dint.taxonomy.classify`'s rows of errors (several models stacked)
    known : (n,) world causes of the same errors (`world_cause`)
    grid : {field: values} of TaxonomyConfig (`configs`)

    Returns
    -------
    (config, κ on ``errors``)
    """
    known = at_world_resolution(known)
    if len(known) != len(errors) or not len(known):
        raise ValueError(f"errors and known must be non-empty and of one length: {len(errors)}, {len(known)}")
    best, best_k = None, -np.inf
    for config in configs(grid):
        k = agreement.kappa(at_world_resolution(taxonomy.classes(errors, config)), known)
        if k > best_k + 1e-12:                            # NaN never wins
            best, best_k = config, k
    if best is None:
        raise ValueError("no threshold gives a defined κ on these errors (one label only)")
    return best, float(best_k)


@dataclass(frozen=True)
class CrossFit:
    """``classes``: each error's class under the thresholds fitted on the other half (aligned with the errors
    given); ``fitted``: per half fitted on, its thresholds, ``kappa_fit`` (κ on that half), ``n_errors`` and
    ``reason`` (why the defaults stand where nothing could be fitted: no errors, or κ undefined on that half)."""

    classes: np.ndarray
    fitted: pd.DataFrame = field(default_factory=pd.DataFrame)


def crossfit(errors: pd.DataFrame, known, fold: pd.Series, *, grid: dict = GRID) -> CrossFit:
    """Cross-fitting: thresholds fitted on each half's errors (`fit`), applied to the other half's.

    Parameters
    ----------
    errors : `dint.taxonomy.classify`'s rows of errors (``fact`` and the rules' columns)
    known : (n,) world causes of the same errors
    fold : `folds`' Series (fact -> 0/1); every fact of ``errors`` needs a half
    grid : {field: values} of TaxonomyConfig
    """
    half = fold.reindex(errors["fact"].to_numpy()).to_numpy()
    if np.isnan(half.astype(float)).any():
        raise ValueError("fold has no half for some facts of errors: pass folds() of the same facts")
    known = np.asarray(known, dtype=object)
    out, rows = np.full(len(errors), None, dtype=object), []
    for h in (0, 1):
        on, to = half == h, half != h
        config, k, reason = TaxonomyConfig(), np.nan, ""
        try:
            config, k = fit(errors[on], known[on], grid=grid)
        except ValueError as e:                           # nothing to fit on: the defaults, and why
            reason = f"default thresholds: {e}"
        if to.any():
            out[to] = taxonomy.classes(errors[to], config)
        rows.append({"fitted_on": h, **asdict(config), "kappa_fit": k, "n_errors": int(on.sum()), "reason": reason})
    return CrossFit(out, pd.DataFrame(rows))
