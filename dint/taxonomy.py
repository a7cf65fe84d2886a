"""A distributional error taxonomy: why a post-trained model is wrong, read from distributions alone.

Accuracy sees one thing about an error: the top answer is wrong. The answer distributions of the
base and the post-trained model on the same item say more. For each error (the post model's top
answer is not the true value) `classify` assigns one class, using only the two distributions
(and, for RAG, what retrieval put in the context) — never the world's fact types:

``routing``         (RAG only) the context lacks the truth or holds a stale statement, and the
                    answer is the value the context states;
``imitative``       the base's top answer is wrong and holds at least ``imitative_mass`` of its
                    mass, and the post model answers it too: a popular misconception the corpus
                    taught;
``regression``      the base was right (its top answer is the truth), or it put at least
                    ``regression_drop`` more mass on the truth than the post model: the
                    intervention moved the answer away;
``selection``       the post model still puts substantial mass on the truth (at least
                    max(``selection_factor``/K, ``selection_mass``)) but it is not the mode:
                    recoverable by sampling plus verification;
``absent_support``  the truth has no more than base-rate mass (at most ``absent_factor``/K) in
                    both models: nothing to recover;
``unclassified``    an error that no rule claims (reported, never hidden).

Rules apply in this order; the first that holds wins. Routing comes first because its cause is
observed directly. Imitative and "the base was right" exclude each other (imitative needs a wrong
base mode), so imitative before regression only decides the case where the base already answered
the misconception and post-training drained the truth further: the corpus, not the intervention,
put the answer there. Imitative before selection because a contested fact's truth keeps substantial
mass under the misconception (the corpus states it too), so the dominant wrong value is the more
specific diagnosis; selection before absent support, which is the residue with no mass to recover.

`classes` applies the rules to `classify`'s table under other thresholds (without scoring again).
`known_cause` gives the world's cause of the same errors from fact types; `dint.agreement` compares
the two (confusion matrix, Cohen's κ with a cluster-bootstrap interval, per-class precision and recall,
and accuracy-only accounting beside them). `known_cause` reads the base's top answer and the retrieved context, as `classify` does; the causes from
the world alone, and the taxonomy judged against them, are `dint.causes`. What the errors are made of across models, and what sampling could recover, is
`dint.analyses.composition`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .compare import ITEM_KEYS, distributions

__all__ = ["CLASSES", "TaxonomyConfig", "classes", "classify", "diagnose", "known_cause"]

CLASSES = ("routing", "imitative", "regression", "selection", "absent_support", "unclassified")
_ROUTING_COLS = {"fact", "has_true", "has_stale", "context_value"}


@dataclass(frozen=True)
class TaxonomyConfig:
    """Thresholds of the error taxonomy (masses are probabilities over the candidate set of size K)."""

    absent_factor: float = 2.0      # absent support: p_true <= absent_factor / K in base and post
    selection_factor: float = 2.0   # selection: p_true_post >= max(selection_factor / K, selection_mass)
    selection_mass: float = 0.1
    regression_drop: float = 0.3    # regression: base right, or p_true_base - p_true_post >= this
    imitative_mass: float = 0.5     # imitative: the base's wrong mode holds >= this, and post answers it
    routing_miss: bool = False      # also count a retrieval miss (no document about the fact) as routing

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"TaxonomyConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("absent_factor", "selection_factor"):
            if not getattr(self, name) >= 1.0:
                bad(name, "must be >= 1 (a multiple of the base rate 1/K)")
        for name in ("selection_mass", "regression_drop"):
            if not 0.0 < getattr(self, name) <= 1.0:
                bad(name, "must lie in (0, 1]")
        if not 0.5 <= self.imitative_mass <= 1.0:
            bad("imitative_mass", "must lie in [0.5, 1] (a majority of the base's mass)")
        if not isinstance(self.routing_miss, bool):
            bad("routing_miss", "must be a bool")


def _check_config(config):
    if not isinstance(config, TaxonomyConfig):
        raise TypeError(f"config must be a TaxonomyConfig, got {type(config).__name__}")


def _routing_table(routing: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Retrieval info aligned with ``items`` (rows without info: no context)."""
    missing = sorted(_ROUTING_COLS - set(getattr(routing, "columns", ())))
    if missing:
        raise ValueError(f"routing lacks column(s) {missing}: pass dint.interventions.rag.rag_prompts' table")
    on = ITEM_KEYS if "form" in routing.columns else ["fact"]
    cols = [*_ROUTING_COLS, *(["hit"] if "hit" in routing.columns else [])]
    r = routing[[*dict.fromkeys(on + cols)]]
    if r.duplicated(on).any():
        raise ValueError(f"routing has several rows per {'(fact, form)' if len(on) == 2 else 'fact'}")
    out = items[ITEM_KEYS].merge(r, on=on, how="left", validate="many_to_one")
    out["retrieved"] = out["has_true"].notna().to_numpy()
    out["has_true"] = out["has_true"].fillna(False).astype(bool)
    out["has_stale"] = out["has_stale"].fillna(False).astype(bool)
    out["context_value"] = out["context_value"].fillna("").astype(str)
    hit = out["hit"] if "hit" in out else out["context_value"].ne("")
    out["hit"] = hit.fillna(False).astype(bool)
    return out


def classify(base_scores: pd.DataFrame, post_scores: pd.DataFrame, *, routing: pd.DataFrame | None = None,
             config: TaxonomyConfig = TaxonomyConfig()) -> pd.DataFrame:
    """Assign each error of the post model a distributional class.

    Parameters
    ----------
    base_scores, post_scores : `dint.pipeline.artifacts.score_world` tables of the base and the post model on
        the same items and candidates (``fact, form, candidate, answer, p_set, is_true``)
    routing : for a RAG policy, its retrieval table (`rag_prompts`: ``fact``, optional ``form``,
        ``has_true``, ``has_stale``, ``context_value``, optional ``hit``); None: no routing class
    config : TaxonomyConfig

    Returns
    -------
    DataFrame, one row per item (sorted by ``fact, form``): ``fact, form``, ``error`` (the post's
    top answer is wrong), ``class`` (one of `CLASSES`; missing where no error), and the quantities the
    rules use: ``k``, ``base_rate`` (1/K), ``p_true_base``, ``p_true_post``, ``correct_base``,
    ``answer_base`` / ``answer_post`` (top answers), ``mode_mass_base`` / ``mode_mass_post``,
    ``selection_threshold``, ``absent_threshold``; with ``routing``, also ``context_value``,
    ``has_true``, ``has_stale``, ``hit`` and ``follows_context``.

    Notes
    -----
    ``p_set`` is renormalised over each candidate set (mass outside the set is ignored); argmax
    ties go to the first candidate, as in `dint.compare.shift`.
    """
    _check_config(config)
    for name, s in (("base_scores", base_scores), ("post_scores", post_scores)):
        if not isinstance(s, pd.DataFrame) or "answer" not in s.columns:
            raise ValueError(f"{name} must be a score_world table with an 'answer' column")
        if len(s) == 0:
            raise ValueError(f"{name} is empty")
        if "p_set" in s.columns and ((s["p_set"] < 0).any() or not np.isfinite(s["p_set"].to_numpy(float)).all()):
            raise ValueError(f"{name}.p_set must be finite and non-negative")
    try:
        ib, lb, tb = distributions(base_scores)
        ip, lp, tp = distributions(post_scores)
    except ValueError as e:
        raise ValueError(f"base_scores/post_scores: {e}") from None
    if not ib.equals(ip) or lb.shape != lp.shape or not np.array_equal(tb, tp):
        raise ValueError("base_scores and post_scores must be scored on the same items and candidate sets")
    if not (tb.sum(axis=1) == 1).all():
        raise ValueError("base_scores: each item needs exactly one true candidate (is_true)")
    pb, pp = np.exp(lb), np.exp(lp)                       # (m, k_max); 0 where no candidate
    if (pb.sum(axis=1) <= 0).any() or (pp.sum(axis=1) <= 0).any():
        raise ValueError("base_scores/post_scores: an item has zero mass on its candidate set")
    pb, pp = pb / pb.sum(axis=1, keepdims=True), pp / pp.sum(axis=1, keepdims=True)
    # the candidate count per item comes from the table, not from where mass is positive
    k = base_scores.groupby(ITEM_KEYS, sort=True)["candidate"].nunique().to_numpy()
    rows = np.arange(len(pb))
    mode_b, mode_p = pb.argmax(axis=1), pp.argmax(axis=1)
    answers = (base_scores.sort_values(ITEM_KEYS + ["candidate"])
               .pivot_table(index=ITEM_KEYS, columns="candidate", values="answer", aggfunc="first")
               .reindex(columns=range(pb.shape[1])).fillna("").to_numpy(str))

    out = ib.copy()
    out["k"] = k
    out["base_rate"] = 1.0 / k
    out["p_true_base"] = (pb * tb).sum(axis=1)
    out["p_true_post"] = (pp * tp).sum(axis=1)
    out["correct_base"] = tb[rows, mode_b]
    out["error"] = ~tp[rows, mode_p]
    out["answer_base"] = answers[rows, mode_b]
    out["answer_post"] = answers[rows, mode_p]
    out["mode_mass_base"] = pb[rows, mode_b]
    out["mode_mass_post"] = pp[rows, mode_p]
    out["selection_threshold"] = np.maximum(config.selection_factor / k, config.selection_mass)
    out["absent_threshold"] = config.absent_factor / k

    if routing is not None:
        r = _routing_table(routing, out)
        follows = (r["context_value"].to_numpy() != "") & (r["context_value"].to_numpy() == out["answer_post"].to_numpy())
        for c in ("context_value", "has_true", "has_stale", "hit"):
            out[c] = r[c].to_numpy()
        out["follows_context"] = follows
        out["context_miss"] = r["retrieved"].to_numpy() & ~r["hit"].to_numpy()
    out["class"] = classes(out, config)
    return out


_RULE_COLS = {"error", "correct_base", "answer_base", "answer_post", "mode_mass_base", "p_true_base", "p_true_post", "k"}


def _flag(items, column):
    """A boolean column of ``items``, False where missing (rows of a model without routing) or absent."""
    if column not in items.columns:
        return np.zeros(len(items), bool)
    return items[column].astype(object).where(items[column].notna(), False).to_numpy(bool)


def classes(items: pd.DataFrame, config: TaxonomyConfig = TaxonomyConfig()) -> np.ndarray:
    """The class of each item of a `classify` table under ``config``'s thresholds.

    Parameters
    ----------
    items : `classify`'s table (or several stacked, e.g. `diagnose`'s): ``error``, ``correct_base``,
        ``answer_base``, ``answer_post``, ``mode_mass_base``, ``p_true_base``, ``p_true_post``, ``k``; with
        routing, ``has_true``, ``has_stale``, ``follows_context`` and ``context_miss`` (missing on the rows of
        models without routing: no routing class there)
    config : TaxonomyConfig

    Returns
    -------
    (n,) object array: one of `CLASSES` for an error, None elsewhere. The rules are those of the module's
    docstring, in its order; "the post model answers the base's mode" is ``answer_post == answer_base``.
    """
    _check_config(config)
    missing = sorted(_RULE_COLS - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}: pass dint.taxonomy.classify's table")
    err = items["error"].to_numpy(bool)
    k = items["k"].to_numpy(float)
    base_right = items["correct_base"].to_numpy(bool)
    ptb, ptp = items["p_true_base"].to_numpy(float), items["p_true_post"].to_numpy(float)
    lacks_truth = ~_flag(items, "has_true") | _flag(items, "has_stale")
    routed = err & lacks_truth & (_flag(items, "follows_context") | (config.routing_miss & _flag(items, "context_miss")))
    absent = config.absent_factor / k
    rules = [
        ("routing", routed),
        ("imitative", ~base_right & (items["mode_mass_base"].to_numpy(float) >= config.imitative_mass)
         & (items["answer_post"].to_numpy() == items["answer_base"].to_numpy())),
        ("regression", base_right | (ptb - ptp >= config.regression_drop)),
        ("selection", ptp >= np.maximum(config.selection_factor / k, config.selection_mass)),
        ("absent_support", (ptb <= absent) & (ptp <= absent)),
    ]
    cls = np.full(len(items), None, dtype=object)
    cls[err] = "unclassified"
    for name, hold in reversed(rules):                    # the first rule in order wins
        cls[err & hold] = name
    return cls


def known_cause(world, items: pd.DataFrame, *, routing: pd.DataFrame | None = None) -> pd.DataFrame:
    """The world's known cause of each error, from the fact's type.

    Parameters
    ----------
    world : `dint.world.World` (its ``facts`` table: ``fact``, ``type``)
    items : `classify`'s table (``fact``, ``form``, ``error``, ``correct_base``)
    routing : the same retrieval table as given to `classify`, or None

    Returns
    -------
    ``items``' ``fact, form, error`` with ``type``, ``cause`` (missing where no error) and
    ``ambiguous`` (the mapping is a guess for this item), on ``items``' index.

    Notes
    -----
    The mapping, for an error:

    * ``unseen``    → ``absent_support``: the corpus never states the fact;
    * ``contested`` → ``imitative``: the corpus's mode is the misconception;
    * ``frequent``  → ``regression`` if the base model was right (post-training moved it away),
      else ``selection`` (the corpus states the truth most often, so its mass should be there);
    * ``rare``      → as ``frequent``, but ``ambiguous``: with one to a few mentions the base may
      not have learnt the fact at all (then the cause is absent support) or learnt a noisy mention;
      the type alone cannot say which;
    * with ``routing``: an error where the context held a stale statement and no true one →
      ``routing`` (the store's stale documents are part of the reference world).

    The regression/selection split uses the base's top answer, a model quantity, not the world:
    the world says the truth was learnable; only the base says whether it was learnt.
    """
    need = {"fact", "form", "error", "correct_base"}
    missing = sorted(need - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}: pass dint.taxonomy.classify's table")
    facts = getattr(world, "facts", None)
    if not isinstance(facts, pd.DataFrame) or not {"fact", "type"} <= set(facts.columns):
        raise ValueError("world must be a dint.world.World (a facts table with 'fact' and 'type')")
    t = items[["fact"]].merge(facts[["fact", "type"]], on="fact", how="left", validate="many_to_one")["type"]
    if t.isna().any():
        raise ValueError(f"items has facts not in world: {sorted(items['fact'][t.isna().to_numpy()].unique())[:5]}")
    t = t.to_numpy()
    base_right = items["correct_base"].to_numpy(bool)
    learnable = np.where(base_right, "regression", "selection")
    cause = np.select([t == "unseen", t == "contested"], ["absent_support", "imitative"], learnable).astype(object)
    if routing is not None:
        r = _routing_table(routing, items.reset_index(drop=True))
        cause[r["has_stale"].to_numpy() & ~r["has_true"].to_numpy()] = "routing"
    err = items["error"].to_numpy(bool)
    cause[~err] = None
    out = items[["fact", "form", "error"]].copy()
    out["type"] = t
    out["cause"] = cause
    out["ambiguous"] = err & (t == "rare")
    return out


def diagnose(world, base_scores: pd.DataFrame, scores: dict, *, routing: dict | None = None,
             split: str | None = "heldout", config: TaxonomyConfig = TaxonomyConfig()) -> pd.DataFrame:
    """`classify` and `known_cause` for several post models against one base, stacked.

    Parameters
    ----------
    world : `dint.world.World`
    base_scores : the base model's `score_world` table
    scores : {name: post model's `score_world` table}; each is compared with the base on the
        forms it was scored in
    routing : {name: retrieval table (`rag_prompts`, both forms stacked)} for the RAG policies
    split : keep the facts of this split (``"heldout"``, ``"train"``), or None for all
    config : TaxonomyConfig

    Returns
    -------
    DataFrame, one row per model and item: ``intervention``, `classify`'s columns, and
    `known_cause`'s ``type``, ``cause``, ``ambiguous``.
    """
    if not isinstance(scores, dict) or not scores:
        raise ValueError("scores must be a non-empty dict {name: score table}")
    routing = {} if routing is None else routing
    unknown = sorted(set(routing) - set(scores))
    if unknown:
        raise ValueError(f"routing has names {unknown} that are not in scores")
    facts = getattr(world, "facts", None)
    if not isinstance(facts, pd.DataFrame) or "split" not in facts.columns:
        raise ValueError("world must be a dint.world.World (a facts table with 'split')")
    if split is not None and split not in set(facts["split"]):
        raise ValueError(f"split={split!r}: choose one of {sorted(set(facts['split']))} or None")
    keep = set(facts["fact"] if split is None else facts.loc[facts["split"] == split, "fact"])
    tables = []
    for name, post in scores.items():
        post = post[post["fact"].isin(keep)]
        base = base_scores[base_scores["fact"].isin(keep) & base_scores["form"].isin(set(post["form"]))]
        items = classify(base, post, routing=routing.get(name), config=config)
        cause = known_cause(world, items, routing=routing.get(name))
        items[["type", "cause", "ambiguous"]] = cause[["type", "cause", "ambiguous"]]
        tables.append(items.assign(intervention=name))
    out = pd.concat(tables, ignore_index=True)
    return out[["intervention", *[c for c in out.columns if c != "intervention"]]]
