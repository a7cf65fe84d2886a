"""A model's answer distributions against the world's reference states.

The reference states of a fact are its true value, the corpus's empirical value distribution
(what an ideal model of the corpus would say), its popular misconception if contested, and its
type (the known cause of an error). ``facts_table`` puts a model's exact answer distribution
beside them, one row per fact; the summaries turn that table into the numbers a claim quotes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import compare, divergence, stats
from ..world import World

MENTION_BINS = (0, 1, 2, 4, 10, 30, np.inf)  # left-closed bins of a fact's corpus mentions


def distributions(world: World, scores: pd.DataFrame, relation: str, form: str):
    """Answer and corpus distributions of one relation's facts, as aligned arrays.

    Returns
    -------
    facts : (n,) fact ids
    logp : (n, K) log-probabilities renormalised over the relation's K candidates
    corpus : (n, K) the corpus's empirical value distribution (rows of zeros for unseen facts)
    """
    values = world.values[relation]
    col = {v: j for j, v in enumerate(values)}
    s = scores[(scores["form"] == form) & scores["fact"].isin(world.facts.loc[world.facts.relation == relation, "fact"])]
    s = s.sort_values(["fact", "candidate"])
    facts = s["fact"].unique()
    K = len(values)
    if len(s) != len(facts) * K:
        raise ValueError(f"scores for relation {relation!r}, form {form!r} do not cover its {K} candidates per fact")
    logp = np.log(s["p_set"].to_numpy().reshape(len(facts), K))
    corpus = np.zeros((len(facts), K))
    row = {f: i for i, f in enumerate(facts)}
    c = world.counts[world.counts["fact"].isin(row)]
    np.add.at(corpus, (c["fact"].map(row).to_numpy(), c["value"].map(col).to_numpy()), c["count"].to_numpy())
    total = corpus.sum(1, keepdims=True)
    corpus = np.divide(corpus, total, out=np.zeros_like(corpus), where=total > 0)
    return facts, logp, corpus


def facts_table(world, scores: pd.DataFrame, form: str = "statement") -> pd.DataFrame:
    """One row per fact: the model's answer distribution beside the fact's reference states.

    For real facts (a `dint.realworld.RealWorld`: no corpus, a candidate set per fact) see
    `real_facts_table`, which this calls.

    Parameters
    ----------
    world : World
    scores : tidy score table with ``fact``, ``form``, ``candidate``, ``answer``, ``p_set``,
        ``mass_outside`` (as `dint.pipeline.artifacts.score_world` returns)
    form : "statement" or "qa"

    Returns
    -------
    ``world.facts`` with: ``p_true`` (mass on the true value), ``answer`` (the mode), ``correct``
    (mode is the true value), ``p_mode``, ``entropy`` (nats), ``entropy_norm`` (entropy / log K),
    ``p_misconception`` (NaN unless contested), ``mass_outside``, ``corpus_p_true`` (the corpus's
    share of true statements; NaN unless stated), ``kl_corpus`` (KL(corpus ‖ model), NaN for
    unseen facts) and ``kl_uniform`` (KL(model ‖ uniform) = log K − entropy).
    """
    if not hasattr(world, "counts"):
        return real_facts_table(world, scores, form)
    parts = []
    for relation in world.facts["relation"].unique():
        facts, logp, corpus = distributions(world, scores, relation, form)
        values = np.asarray(world.values[relation], dtype=object)
        f = world.facts.set_index("fact").loc[facts]
        true_idx = np.array([list(values).index(v) for v in f["value"]])
        mode = logp.argmax(1)
        p = np.exp(logp)
        H = divergence.entropy(logp)
        mis = np.array([list(values).index(m) if m else -1 for m in f["misconception"]])
        stated = corpus.sum(1) > 0
        with np.errstate(divide="ignore"):
            kl_corpus = np.where(stated, divergence.kl(np.log(np.where(stated[:, None], corpus, 1.0)), logp), np.nan)
        parts.append(pd.DataFrame({
            "fact": facts,
            "p_true": p[np.arange(len(facts)), true_idx],
            "answer": values[mode],
            "correct": mode == true_idx,
            "p_mode": p.max(1),
            "entropy": H,
            "entropy_norm": H / np.log(len(values)),
            "p_misconception": np.where(mis >= 0, p[np.arange(len(facts)), np.maximum(mis, 0)], np.nan),
            "corpus_p_true": np.where(stated, corpus[np.arange(len(facts)), true_idx], np.nan),
            "kl_corpus": kl_corpus,
            "kl_uniform": np.log(len(values)) - H,
        }))
    table = world.facts.merge(pd.concat(parts), on="fact")
    outside = scores[scores["form"] == form].groupby("fact")["mass_outside"].first()
    table["mass_outside"] = table["fact"].map(outside).to_numpy()
    table["mention_bin"] = pd.cut(table["mentions"], MENTION_BINS, right=False,
                                  labels=[_bin_label(a, b) for a, b in zip(MENTION_BINS[:-1], MENTION_BINS[1:])])
    return table


def real_facts_table(world, scores: pd.DataFrame, form: str = "statement") -> pd.DataFrame:
    """`facts_table` for real facts: each fact's own candidate set, and no corpus.

    Real facts have reference answers but no corpus whose statements could be counted, so the
    corpus columns (``corpus_p_true``, ``kl_corpus``) are NaN and there are no mention bins; the
    fact type is `dint.realworld`'s proxy. ``n_candidates`` is the size K of the fact's candidate
    set, and ``entropy_norm`` divides by log K.
    """
    if form not in ("statement", "qa"):
        raise ValueError(f"form={form!r}: choose 'statement' or 'qa'")
    s = scores[scores["form"] == form]
    if s.empty:
        raise ValueError(f"scores has no rows of form {form!r}")
    items, logp, true = compare.distributions(s)
    answers = np.full(logp.shape, "", dtype=object)
    ordered = s.sort_values(["fact", "form", "candidate"])
    row = ordered.groupby(["fact", "form"], sort=True).ngroup().to_numpy()
    answers[row, ordered["candidate"].to_numpy()] = ordered["answer"].to_numpy()
    if not (true.sum(1) == 1).all():
        raise ValueError("every fact needs exactly one true candidate (is_true) in scores")
    idx = np.arange(len(items))
    p = np.exp(logp)
    k = np.isfinite(logp).sum(1)
    mode = logp.argmax(1)
    H = divergence.entropy(logp)
    facts = world.facts.set_index("fact").loc[items["fact"]]
    mis = facts["misconception"].fillna("").astype(str).to_numpy()
    has = mis != ""
    p_mis = np.where(has, (p * (answers == mis[:, None])).sum(1), np.nan)
    table = pd.DataFrame({
        "fact": items["fact"].to_numpy(),
        "p_true": p[true],
        "answer": answers[idx, mode],
        "correct": true[idx, mode],
        "p_mode": p.max(1),
        "entropy": H,
        "entropy_norm": H / np.log(k),
        "p_misconception": p_mis,
        "corpus_p_true": np.nan,
        "kl_corpus": np.nan,
        "kl_uniform": np.log(k) - H,
        "n_candidates": k,
    })
    table = world.facts.merge(table, on="fact")
    outside = s.groupby("fact")["mass_outside"].first()
    table["mass_outside"] = table["fact"].map(outside).to_numpy()
    return table


def by_group(table: pd.DataFrame, by, *, confidence_level: float = 0.95, rng=0) -> pd.DataFrame:
    """Accuracy, mass on the truth and normalised entropy, with intervals, per group of a facts table.

    Parameters
    ----------
    table : a `facts_table` (``correct``, ``p_true``, ``entropy_norm`` and the ``by`` columns)
    by : the column(s) that form the groups, e.g. ``["relation", "type"]``
    confidence_level, rng : of the intervals (the bootstrap's seed)

    Returns
    -------
    Tidy DataFrame, one row per (group, measure): the ``by`` columns, ``measure`` (``accuracy``: Wilson
    interval; ``p_true`` and ``entropy_norm``: bootstrap interval of the mean, none for a group of one)
    and the columns `dint.stats.ROW` (``n`` is the group's size).
    """
    labels = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in table.groupby(by, observed=True, sort=True):
        label = dict(zip(labels, key if isinstance(key, tuple) else (key,)))
        rows.append(stats.proportion(int(g["correct"].sum()), len(g), confidence_level=confidence_level)
                    .row(**label, measure="accuracy"))
        rows += [_mean(g[col], confidence_level=confidence_level, rng=rng).row(**label, measure=col)
                 for col in ("p_true", "entropy_norm")]
    return pd.DataFrame(rows, columns=[*labels, "measure", *stats.ROW])


def _mean(values: pd.Series, *, confidence_level: float, rng) -> stats.Result:
    """The mean with its bootstrap interval; a single value has no interval."""
    if len(values) > 1:
        return stats.bootstrap_mean(values.to_numpy(), confidence_level=confidence_level, rng=rng)
    return stats.Result(float(values.iloc[0]), stats.ConfidenceInterval(np.nan, np.nan), 1, "single")


def real_numbers(statement: pd.DataFrame, qa: pd.DataFrame, *, n_resamples: int = 2000, rng=0) -> dict:
    """The numbers notebook 00 quotes for a pretrained model on real facts, each with its interval.

    Parameters
    ----------
    statement, qa : `real_facts_table` of the same facts in the statement and the QA form
    n_resamples, rng : of the bootstrap intervals and the permutation test

    Returns
    -------
    {name: `dint.stats.Result` or float}: accuracy in each form and per relation (Wilson); mean
    P(true) and normalised entropy (bootstrap); accuracy over chance (the mean of 1/K); QA against
    statement accuracy (paired, McNemar); frequent against rare countries (the population proxy,
    independent groups); on contested capitals the mass on the misconception and on the truth and
    their paired difference (permutation test), and how often the misconception is the mode. The
    p-values are Holm-adjusted as one family (``pvalue``), the unadjusted ones kept in ``method``.
    """
    from dataclasses import replace

    from ..stats import proportions

    if list(statement["fact"]) != list(qa["fact"]):
        raise ValueError("statement and qa must be facts tables of the same facts in the same order")
    out: dict = {}
    for name, t in (("statement", statement), ("qa", qa)):
        out[f"{name}_accuracy"] = stats.proportion(int(t["correct"].sum()), len(t))
    for rel, g in statement.groupby("relation", sort=True):
        out[f"{rel}_accuracy"] = stats.proportion(int(g["correct"].sum()), len(g))
    out["chance_accuracy"] = float((1 / statement["n_candidates"]).mean())
    out["statement_p_true"] = stats.bootstrap_mean(statement["p_true"].to_numpy(), n_resamples=n_resamples, rng=rng)
    out["statement_entropy_norm"] = stats.bootstrap_mean(statement["entropy_norm"].to_numpy(), n_resamples=n_resamples,
                                                         rng=rng)
    tests = {}
    tests["qa_minus_statement_accuracy"] = proportions.mcnemar(statement["correct"].to_numpy(), qa["correct"].to_numpy())
    countries = statement[statement["relation"] != "arithmetic"]
    fr, ra = countries[countries["type"] == "frequent"], countries[countries["type"] == "rare"]
    if len(fr) and len(ra):
        tests["frequent_minus_rare_accuracy"] = proportions.diff_proportions(
            int(fr["correct"].sum()), len(fr), int(ra["correct"].sum()), len(ra))
    contested = statement[statement["type"] == "contested"]
    if len(contested) > 1:
        out["contested_p_misconception"] = stats.bootstrap_mean(contested["p_misconception"].to_numpy(),
                                                                n_resamples=n_resamples, rng=rng)
        out["contested_p_true"] = stats.bootstrap_mean(contested["p_true"].to_numpy(), n_resamples=n_resamples, rng=rng)
        out["contested_misconception_is_mode"] = stats.proportion(
            int((contested["answer"] == contested["misconception"]).sum()), len(contested))
        tests["contested_misconception_minus_true"] = stats.paired_permutation_test(
            contested["p_misconception"].to_numpy(), contested["p_true"].to_numpy(), n_resamples=n_resamples - 1,
            rng=rng)
    chance = stats.proportion(int(statement["correct"].sum()), len(statement))
    tests["statement_accuracy_over_chance"] = stats.Result(
        chance.statistic - out["chance_accuracy"],
        stats.ConfidenceInterval(chance.confidence_interval.low - out["chance_accuracy"],
                                 chance.confidence_interval.high - out["chance_accuracy"]),
        chance.n, "accuracy minus mean 1/K, Wilson interval; exact binomial test against the mean 1/K",
        float(_binom_p(int(statement["correct"].sum()), len(statement), out["chance_accuracy"])))
    family = stats.holm(pd.DataFrame({"test": list(tests), "pvalue": [r.pvalue for r in tests.values()],
                                        "reason": [r.reason for r in tests.values()]}))
    made = int(family.pvalue.notna().sum())
    for (name, r), p in zip(tests.items(), family.pvalue_holm):
        out[name] = replace(r, pvalue=float(p), method=f"{r.method}; Holm-adjusted over {made} tests "
                                                         f"(unadjusted p = {r.pvalue:.3g})")
    out["n_facts"] = len(statement)
    return out


def _binom_p(k, n, p):
    from scipy.stats import binomtest

    return binomtest(k, n, p).pvalue


def _bin_label(a, b):
    if b == a + 1:
        return str(int(a))
    return f"{int(a)}+" if np.isinf(b) else f"{int(a)}-{int(b) - 1}"


def by_mentions(table: pd.DataFrame, *, confidence_level: float = 0.95, rng=0) -> pd.DataFrame:
    """Accuracy and normalised entropy, with intervals, per mention bin of a facts table.

    Parameters
    ----------
    table : a `facts_table` of the world (``mention_bin``, ``correct``, ``entropy_norm``)
    confidence_level, rng : of the intervals (the bootstrap's seed)

    Returns
    -------
    Tidy DataFrame, two rows per mention bin (in the bins' order): ``mention_bin`` (str), ``measure``
    (``accuracy``: Wilson interval; ``entropy_norm``: bootstrap interval of the mean, none for a bin of
    one fact) and the columns `dint.stats.ROW` (``n`` is the bin's number of facts).
    """
    rows = []
    for b, g in table.groupby("mention_bin", observed=True):
        rows.append(stats.proportion(int(g["correct"].sum()), len(g), confidence_level=confidence_level)
                    .row(mention_bin=str(b), measure="accuracy"))
        rows.append(_mean(g["entropy_norm"], confidence_level=confidence_level, rng=rng)
                    .row(mention_bin=str(b), measure="entropy_norm"))
    return pd.DataFrame(rows, columns=["mention_bin", "measure", *stats.ROW])
