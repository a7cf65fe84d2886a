"""The analysis of notebook 00 (a base model is a model of its corpus, not of the truth).

In the notebook's order:

- `load`: the world (or the real facts), the base model's record and its exact answer distributions;
  `describe` says what was loaded in one line, `fact_counts` counts the facts by relation and type.
- `facts`: the facts tables (`dint.analyses.reference.facts_table`) in the statement and the QA form.
- `groups`: the facts summarised by group — by fact type (plain means) and by mention bin (tidy, with
  intervals) in the world; by relation and fact type (tidy, with intervals) on real facts.
- `estimates`: every estimate the paper quotes (shown as a tidy table, one row per ``measure``) and the
  plain numbers beside them; `numbers` adds the base model's size: what ``numbers.json`` stores.
- `figure`: the notebook's figure (corpus fit, by mentions, by type; on real facts: accuracy by group,
  mass by relation, the contested capitals).
- `stored_facts`: the statement facts table as the notebook stores it.

A profile with ``real`` set (a pretrained model on real facts, `dint.realworld`) has no corpus to count,
so each function takes ``real`` and computes what the real facts allow (`dint.analyses.reference`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import plot, stats
from ..pipeline import artifacts
from . import reference

__all__ = ["Inputs", "Facts", "Groups", "Estimates", "load", "describe", "fact_counts", "facts", "groups",
           "estimates", "numbers", "figure", "stored_facts"]

# the columns of the world's facts table averaged by fact type (no interval: the notebook's overview)
TYPE_MEANS = ["p_true", "corpus_p_true", "p_misconception", "entropy_norm", "correct"]


@dataclass(frozen=True)
class Inputs:
    """What notebook 00 loads: the world, the base model's training record and its answer distributions."""

    world: object           # `dint.world.World`, or `dint.realworld.RealWorld` on real facts
    record: dict            # the base model's record (``n_params``, and ``steps``, ... or ``source``, ``sha256``)
    scores: pd.DataFrame    # the base model's exact answer distributions, both forms (`artifacts.base_scores`)
    real: bool              # real facts and a pretrained model (the profile's ``real``)


@dataclass(frozen=True)
class Facts:
    """The facts tables of one model in the two prompt forms (`dint.analyses.reference.facts_table`)."""

    statement: pd.DataFrame
    qa: pd.DataFrame


@dataclass(frozen=True)
class Groups:
    """The facts summarised by group: ``table`` is stored as ``name``, ``overview`` is what the notebook shows."""

    name: str                 # "by_mentions" (world) or "by_group" (real facts)
    table: pd.DataFrame       # tidy: labels, ``measure`` and the columns `dint.stats.ROW`
    overview: pd.DataFrame    # by fact type (world: plain means) or ``table`` itself (real facts)


@dataclass(frozen=True)
class Estimates:
    """The notebook's estimates: ``results`` as the statistics return them, ``values`` the plain numbers.

    ``numbers.json`` stores the results themselves: a test's result may carry fields of its own beside
    `dint.stats.ROW` (McNemar's discordant counts ``b``, ``c``), which a table row does not keep.
    """

    results: dict             # {name: `dint.stats.Result`}
    values: dict              # {name: float or int}: chances and counts, without an interval

    @property
    def table(self) -> pd.DataFrame:
        """The results as a tidy table: ``measure`` (the result's name) and the columns `dint.stats.ROW`."""
        return pd.DataFrame([r.row(measure=k) for k, r in self.results.items()], columns=["measure", *stats.ROW])


def load(P) -> Inputs:
    """The world, the base model (trained or loaded once) and its exact answer distributions.

    Parameters
    ----------
    P : `dint.pipeline.config.Profile`

    Returns
    -------
    Inputs
    """
    world = artifacts.world(P)
    _, _, record = artifacts.base_model(P)
    return Inputs(world=world, record=record, scores=artifacts.base_scores(P), real=bool(P.real))


def describe(inputs: Inputs) -> str:
    """One line on the facts and the base model: its source on real facts, its training in the world."""
    r = inputs.record
    if inputs.real:
        return (f"{len(inputs.world.facts)} real facts; base: {r['source']} (SHA256 {r['sha256'][:12]}...), "
                f"{r['n_params']:,} non-embedding parameters")
    return (f"{len(inputs.world.facts)} facts, {len(inputs.world.corpus)} statements; base: {r['n_params']:,} "
            f"parameters, {r['steps']} steps, {r['wall_time']:.0f} s, final loss {r['loss_last']:.3f}")


def fact_counts(world) -> pd.DataFrame:
    """The number of facts per relation (rows) and fact type (columns)."""
    return world.facts.groupby(["relation", "type"]).size().unstack(fill_value=0)


def facts(inputs: Inputs) -> Facts:
    """The base model's facts tables in the statement and the QA form.

    Returns
    -------
    Facts: one row per fact each (`dint.analyses.reference.facts_table`)
    """
    return Facts(statement=reference.facts_table(inputs.world, inputs.scores, form="statement"),
                 qa=reference.facts_table(inputs.world, inputs.scores, form="qa"))


def groups(table: pd.DataFrame, *, real: bool, rng=0) -> Groups:
    """The statement facts summarised by group.

    Parameters
    ----------
    table : the statement form's facts table (`Facts.statement`)
    real : real facts (no corpus, no mention bins) or the world
    rng : seed of the bootstrap intervals

    Returns
    -------
    Groups: on real facts, accuracy, mass on the truth and normalised entropy per relation and fact type
    (`dint.analyses.reference.by_group`), shown as it is; in the world, accuracy and normalised entropy
    per mention bin (`dint.analyses.reference.by_mentions`), and shown the means of `TYPE_MEANS` per fact type.
    """
    if real:
        by = reference.by_group(table, ["relation", "type"], rng=rng)
        return Groups(name="by_group", table=by, overview=by)
    return Groups(name="by_mentions", table=reference.by_mentions(table, rng=rng),
                  overview=table.groupby("type")[TYPE_MEANS].mean())


def estimates(facts: Facts, world, *, real: bool, n_resamples: int = 2000, rng=0) -> Estimates:
    """Every estimate notebook 00 quotes, with its interval (and test where one is made).

    Parameters
    ----------
    facts : the facts tables of both forms
    world : the world (its value sets give the chance level of unseen facts)
    real : real facts (`dint.analyses.reference.real_numbers`) or the world
    n_resamples, rng : of the bootstrap intervals (and, on real facts, of the permutation test)

    Returns
    -------
    Estimates. In the world: the correlation of P(true) with the corpus's share of true statements
    (frequent facts, all stated facts; Pearson), the mean KL(corpus ‖ model) on frequent facts, on unseen
    facts P(true)·K (1 is chance), the normalised entropy and the accuracy, on contested facts the mass on
    the misconception and on the truth and how often the misconception is the mode, accuracy on frequent
    facts and in each form (Wilson); ``values``: the chance accuracy of unseen facts (mean 1/K) and the
    number of facts. On real facts: the results of `dint.analyses.reference.real_numbers`, its plain
    numbers (chance accuracy, number of facts) in ``values``.
    """
    table, qa = facts.statement, facts.qa
    if real:
        found = reference.real_numbers(table, qa, n_resamples=n_resamples, rng=rng)
        results = {k: v for k, v in found.items() if isinstance(v, stats.Result)}
        values = {k: v for k, v in found.items() if not isinstance(v, stats.Result)}
    else:
        frequent = table[table.type == "frequent"]
        stated = table[table.type != "unseen"]
        unseen = table[table.type == "unseen"]
        contested = table[table.type == "contested"]
        K = unseen.relation.map(lambda r: len(world.values[r]))
        results = {
            "corr_frequent": stats.pearson(frequent.corpus_p_true, frequent.p_true),
            "corr_stated": stats.pearson(stated.corpus_p_true, stated.p_true),
            "kl_corpus_frequent": stats.bootstrap_mean(frequent.kl_corpus, n_resamples=n_resamples, rng=rng),
            "unseen_chance_ratio": stats.bootstrap_mean(unseen.p_true * K, n_resamples=n_resamples, rng=rng),
            "unseen_entropy_norm": stats.bootstrap_mean(unseen.entropy_norm, n_resamples=n_resamples, rng=rng),
            "unseen_accuracy": stats.proportion(int(unseen.correct.sum()), len(unseen)),
            "contested_p_misconception": stats.bootstrap_mean(contested.p_misconception, n_resamples=n_resamples,
                                                              rng=rng),
            "contested_p_true": stats.bootstrap_mean(contested.p_true, n_resamples=n_resamples, rng=rng),
            "contested_misconception_is_mode": stats.proportion(
                int((contested.answer == contested.misconception).sum()), len(contested)),
            "frequent_accuracy": stats.proportion(int(frequent.correct.sum()), len(frequent)),
            "qa_accuracy": stats.proportion(int(qa.correct.sum()), len(qa)),
            "statement_accuracy": stats.proportion(int(table.correct.sum()), len(table)),
        }
        values = {"unseen_chance_accuracy": float((1 / K).mean()), "n_facts": len(table)}
    return Estimates(results=results, values=values)


def numbers(estimates: Estimates, *, base_params: int) -> dict:
    """The numbers notebook 00 writes: the results and plain values of `estimates`, each under its name,
    and ``base_params`` (the base model's parameter count)."""
    return {**estimates.results, **estimates.values, "base_params": base_params}


def figure(facts: Facts, groups: Groups, numbers: dict, *, real: bool):
    """The notebook's figure, three panels.

    In the world: P(true) against the corpus's share of true statements, annotated with the correlations
    (`dint.plot.corpus_fit`); accuracy and normalised entropy by mention bin (`dint.plot.by_mentions`); the
    mass on the truth and the misconception, and the entropy, by fact type (`dint.plot.type_distribution`).
    On real facts: accuracy by relation and fact type against chance (`dint.plot.forest`); mass and entropy
    by relation; on contested capitals, the mass on the misconception against the truth.

    Parameters
    ----------
    facts, groups : as `facts` and `groups` return them
    numbers : as `numbers` returns it (the correlations, or the chance accuracy on real facts)
    real : real facts or the world
    """
    table = facts.statement
    fig, axes = plot.panels(3)
    if real:
        acc = groups.table[groups.table["measure"] == "accuracy"]
        acc = acc.assign(label=acc["relation"] + " / " + acc["type"])
        plot.forest(acc, y="label", ax=axes[0], reference=numbers["chance_accuracy"],
                    xlabel="accuracy (statement form)")
        plot.type_distribution(table, ax=axes[1], by="relation")
        plot.misconception_scatter(table, ax=axes[2])
    else:
        plot.corpus_fit(table, ax=axes[0], annotate={"r (frequent)": numbers["corr_frequent"],
                                                     "r (all stated)": numbers["corr_stated"]})
        plot.by_mentions(groups.table, ax=axes[1])
        plot.type_distribution(table, ax=axes[2])
    return fig


def stored_facts(table: pd.DataFrame) -> pd.DataFrame:
    """The facts table as the notebook stores it: the mention bins (world only) as text."""
    if "mention_bin" in table.columns:
        return table.assign(mention_bin=table["mention_bin"].astype(str))
    return table
