"""The analysis of notebook 07 (verification): distribution cards and verification systems for every model.

In notebook order:

`load` reads the cached score tables of the base, every intervention and every stack, and the proxy
reward model's score of every candidate (`Inputs`). `cards` lays out a distribution card per model
(`dint.card.card`) as a tidy table, one row per (model, measure). `systems` fits, for every model, a
verification system per score (the model's confidence, the learned verifier, the reference store of the
world's true values clean and stale, an oracle, and on a synthetic world the corpus store of only what training
sees) by conformal risk control on a random half of the held-out facts, and reports its realised error and
coverage on the other half and averaged over random splits, one row per (model, system, measure), with the
tests of "the error exceeds alpha" Holm-adjusted together (`Systems`). `wide` lays the systems out one row per
(model, system) for display, `summary` gives each system's worst error and coverage across models; `figure` draws the notebook's five panels; `numbers` names the results
the paper quotes.

Tidy tables carry the columns `dint.stats.ROW` (``estimate, ci_low, ci_high, pvalue, n, method, reason``)
after their labels.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import card, compare, plot, selective, stats, verify
from ..interventions import plan, retrieval
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..world import World
from . import experiments, stacks

__all__ = ["CARD_MEASURES", "INTERVENTIONS", "Inputs", "Systems", "cards", "figure", "kl_accuracy", "load", "numbers",
           "summary", "system_key", "systems", "wide"]

# the interventions carded and verified, after the base and before the stacks
INTERVENTIONS = ("sft", "sft_lora", "sft_sham", "dpo", "dpo_lora", "rlhf", "rag")
# the measures of a distribution card (`dint.card.Card`), in the card's order
CARD_MEASURES = ("entropy", "kl_from_base", "accuracy", "ece", "misconception_mass", "mass_outside")
# the measures of a verification system the paper quotes, with their methods (the others keep their own):
# the fixed split's error and coverage, then their means over random splits
_METHODS = {"error": "Wilson; exact binomial test error > alpha", "coverage": "Wilson",
            "mean_error": "mean over random splits, t interval; t-test mean > alpha",
            "mean_coverage": "mean over random splits, t interval"}
_TESTS = ("error", "mean_error")              # the measures with a test of "exceeds alpha"
# a system's numbers without an interval, repeated on each of its rows
_PLAIN = ["threshold", "n_calibration", "within_guarantee", "compatible", "worst_split", "mean_within"]


@dataclass(frozen=True)
class Inputs:
    """What notebook 07 reads: the world, the models' score tables and the proxy reward of every answer.

    Attributes
    ----------
    world : the profile's `dint.world.World`
    form : the prompt form evaluated
    base_scores : the base model's `score_world` table
    models : {model name: `score_world` table}, the base first, then `INTERVENTIONS` and the profile's own methods
        (``interventions.custom``), then the stacks
    items : (m,) facts of the rows of ``proxy`` (``experiments.candidate_rewards``), sorted
    proxy : (m, k) the proxy reward model's score of every candidate of every fact
    highlight : the models whose risk-coverage curves the figure shows (the base, four interventions, the
        profile's own methods and the full stack)
    """

    world: object
    form: str
    base_scores: pd.DataFrame
    models: dict
    items: pd.DataFrame
    proxy: np.ndarray
    highlight: tuple


@dataclass(frozen=True)
class Systems:
    """The verification systems of every model.

    Attributes
    ----------
    table : one row per (model, system, measure): ``error`` (realised P(answered and wrong) on the test
        facts, with the one-sided exact binomial test of "exceeds alpha"), ``coverage``,
        ``selective_accuracy``, ``error_unverified`` (Wilson intervals), ``mean_error`` (mean over random
        splits, with the one-sided t-test of "the mean exceeds alpha") and ``mean_coverage`` (t intervals);
        the columns `dint.stats.ROW`, ``pvalue_holm`` (the tests Holm-adjusted together), and per system
        ``threshold``, ``n_calibration``, ``within_guarantee`` and ``compatible``
        (`dint.card.VerificationResult`), ``worst_split`` (largest realised error over the splits) and
        ``mean_within`` (mean error at most alpha)
    curves : {model: `dint.selective.risk_coverage` of answering by its confidence on the test facts}
    """

    table: pd.DataFrame
    curves: dict


def load(P: Profile, *, form: str = "qa") -> Inputs:
    """The cached score tables of every model (the base, `INTERVENTIONS`, the profile's own methods, the stacks) and
    the proxy reward of every candidate, on prompt ``form``."""
    world = artifacts.world(P)
    base_scores = artifacts.base_scores(P)
    models = {"base": base_scores}
    models.update({n: artifacts.intervention_scores(P, n) for n in plan.with_custom(P.interventions, INTERVENTIONS)})
    models.update({stacks.name(s): stacks.stack_scores(P, s) for s in stacks.plan(P) + stacks.orders(P)
                   if s and s not in stacks.ALIASES})
    # the proxy reward model's score of every candidate (a cached artifact, scored once for every notebook)
    items, _, _, proxy = experiments.candidate_rewards(experiments.reward_table(P, form=form), base_scores, form=form)
    highlight = tuple(m for m in ("base", "sft", "dpo", "rlhf", "rag", *P.interventions.custom_names,
                                  stacks.name(P.interventions.stack_steps)) if m in models)
    return Inputs(world=world, form=form, base_scores=base_scores, models=models, items=items, proxy=proxy,
                  highlight=highlight)


def cards(inputs: Inputs, *, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every model's distribution card on the held-out facts, one row per (model, measure).

    Returns
    -------
    DataFrame: ``model``, ``measure`` (`CARD_MEASURES`), the columns `dint.stats.ROW` (each measure's own
    ``n`` and ``method``: the misconception mass is a mean over the contested facts only) and ``n_facts``
    (the held-out facts the card is computed on).
    """
    rows = []
    for name, s in inputs.models.items():
        c = card.card(name, inputs.base_scores, s, inputs.world.facts, form=inputs.form, split="heldout",
                      n_resamples=n_resamples, rng=seed)
        rows += [{**getattr(c, m).row(model=name, measure=m), "n_facts": c.n} for m in CARD_MEASURES]
    return pd.DataFrame(rows)


def kl_accuracy(cards_table: pd.DataFrame) -> stats.Result:
    """Does moving further from the base buy accuracy? Across the models built without retrieval (every
    model but the base and those with a RAG step), the Pearson correlation of a card's KL from the base with
    its accuracy, with its Fisher-z interval and test (`dint.stats.pearson`)."""
    wide = cards_table.pivot(index="model", columns="measure", values="estimate")
    built = [m for m in wide.index if m != "base" and "rag" not in m.split("+")]
    if len(built) < 4:   # not estimable: said, not raised (a profile may build few models)
        nan = float("nan")
        return stats.Result(nan, stats.ConfidenceInterval(nan, nan), len(built), "Pearson r, Fisher-z interval", nan,
                            reason=f"{len(built)} models without retrieval: a correlation needs 4 or more")
    return stats.pearson(wide.loc[built, "kl_from_base"].to_numpy(float), wide.loc[built, "accuracy"].to_numpy(float))


def system_key(system: str) -> str:
    """The short name of a verification system in ``numbers.json``: ``"store (0.2 stale)"`` -> ``store_stale``,
    ``"store (corpus)"`` -> ``store_corpus``."""
    return system.split()[0].replace("(", "") + ("_stale" if "stale" in system else "_corpus" if "corpus" in system
                                                 else "")


def _scores(inputs: Inputs, references: dict, keep: np.ndarray, name: str, s: pd.DataFrame):
    """A model's confidence in its top answer, whether it is right, and each system's score of it (test and
    calibration facts, ``keep``)."""
    s = s[s.form == inputs.form]
    it, logp, true = compare.distributions(s)
    if not it.fact.equals(inputs.items.fact):
        raise ValueError(f"models[{name!r}] covers other facts than the proxy rewards: score every fact once")
    top = logp.argmax(axis=1)
    rows = np.arange(len(top))
    conf = np.exp(logp[rows, top])[keep]
    correct = true[rows, top][keep]
    answers = s.sort_values(["fact", "candidate"]).groupby("fact").answer.apply(list)
    chosen = [answers.loc[f][k] for f, k in zip(it.fact[keep], top[keep])]
    scores = {"confidence": conf, "learned verifier": inputs.proxy[rows, top][keep]}
    # looked up by entity and relation: the corpus store has no document for a fact the corpus never states
    items = pd.DataFrame({"fact": it.fact[keep].to_numpy()}).merge(
        inputs.world.facts[["fact", "entity", "relation"]], on="fact", how="left")
    for label, ref in references.items():
        scores[label] = ref.check(items, chosen).astype(float)
    return conf, correct, scores


def systems(inputs: Inputs, *, alpha: float = 0.05, calibration_share: float = 0.5, stale_share: float = 0.2,
            n_splits: int = 200, seed: int = 0) -> Systems:
    """Every model's verification systems: thresholds fitted by conformal risk control on calibration facts.

    Every model answers with its top answer; these scores decide whether to answer: its own probability of
    that answer (``confidence``), the proxy reward model's reward (``learned verifier``), and a reference store
    (1 if it states the answer): the world's true values, clean (an oracle: it holds held-out and never-stated
    facts too) and with ``stale_share`` stale documents, and on a synthetic world the corpus store
    (`retrieval.corpus_store`: only what training sees, the train facts' values and the corpus's majority
    value of every other fact it states).

    Parameters
    ----------
    inputs : `load`'s
    alpha : target joint error P(answered and wrong)
    calibration_share : share of the held-out facts the thresholds are fitted on (``card.split_facts``)
    stale_share : share of stale documents in the second store
    n_splits : random calibration/test splits the mean error and coverage are taken over
    seed : the split, the stores and the random splits

    Returns
    -------
    `Systems`
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: give a target error in (0, 1)")
    if not 0 < calibration_share < 1:
        raise ValueError(f"calibration_share={calibration_share!r}: give a share in (0, 1)")
    facts = inputs.world.facts
    heldout = facts.loc[facts.split == "heldout", "fact"].to_numpy()
    cal_facts, _ = card.split_facts(heldout, calibration_share, rng=seed)
    keep = inputs.items.fact.isin(heldout).to_numpy()
    calib = inputs.items.fact[keep].isin(cal_facts).to_numpy()
    references = {"store (clean)": verify.ReferenceVerifier(
                      retrieval.build_store(inputs.world, retrieval.StoreConfig(), seed=seed)),
                  f"store ({stale_share:g} stale)": verify.ReferenceVerifier(
                      retrieval.build_store(inputs.world, retrieval.StoreConfig(stale_share=stale_share), seed=seed))}
    if isinstance(inputs.world, World):   # a real reference has no corpus to count
        references["store (corpus)"] = verify.ReferenceVerifier(retrieval.corpus_store(inputs.world), name="corpus")
    rows, curves = [], {}
    for name, s in inputs.models.items():
        conf, correct, scores = _scores(inputs, references, keep, name, s)
        for system, score in scores.items():
            r = card.verification_system(score, correct, calib, alpha=alpha)
            k_wrong = round(r.error.statistic * r.error.n)
            p_exceeds = sps.binomtest(k_wrong, r.error.n, alpha, alternative="greater").pvalue
            m = card.verification_splits(score, correct, alpha=alpha, share=calibration_share, n_splits=n_splits,
                                         rng=seed)
            plain = {"threshold": r.threshold, "n_calibration": r.n_calibration,
                     "within_guarantee": r.within_guarantee, "compatible": r.compatible,
                     "worst_split": m["worst_split"], "mean_within": m["error"].statistic <= alpha}
            results = {"error": dataclasses.replace(r.error, pvalue=float(p_exceeds)), "coverage": r.coverage,
                       "mean_error": m["error"], "mean_coverage": m["coverage"],
                       "selective_accuracy": r.selective_accuracy, "error_unverified": r.error_unverified}
            rows += [{**dataclasses.replace(res, method=_METHODS.get(measure, res.method)).row(
                model=name, system=system, measure=measure), **plain} for measure, res in results.items()]
        curves[name] = selective.risk_coverage(conf[~calib], correct[~calib])
    table = stats.holm(pd.DataFrame(rows))
    columns = ["model", "system", "measure", *stats.ROW, "pvalue_holm", *_PLAIN]
    return Systems(table=table[columns], curves=curves)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per system across models: the worst realised error on the fixed split, the worst mean over the random
    splits, how many models keep each at or below alpha, the smallest Holm p-value of the mean's test, and
    the range of mean coverage.

    Parameters
    ----------
    table : `Systems.table`

    Returns
    -------
    DataFrame indexed by ``system`` (sorted): ``models``, ``worst_error``, ``within``, ``worst_mean_error``,
    ``mean_within``, ``min_p_mean_holm``, ``coverage_min``, ``coverage_max``.
    """
    return wide(table).groupby("system").agg(
        models=("model", "size"), worst_error=("error", "max"), within=("within_guarantee", "sum"),
        worst_mean_error=("mean_error", "max"), mean_within=("mean_within", "sum"),
        min_p_mean_holm=("mean_error_pvalue_holm", "min"), coverage_min=("mean_coverage", "min"),
        coverage_max=("mean_coverage", "max"))


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """`Systems.table` as one row per (model, system), in the table's order: each measure's estimate, the
    tests' Holm p-values (``error_pvalue_holm``, ``mean_error_pvalue_holm``) and the plain columns."""
    keys = ["model", "system"]
    est = table.pivot(index=keys, columns="measure", values="estimate")
    p = table[table.measure.isin(_TESTS)].pivot(index=keys, columns="measure", values="pvalue_holm")
    plain = table.groupby(keys, sort=False)[_PLAIN].first()
    order = pd.MultiIndex.from_frame(table[keys].drop_duplicates())
    return est.join(p.add_suffix("_pvalue_holm")).join(plain).reindex(order).reset_index()


def figure(cards_table: pd.DataFrame, verified: Systems, *, highlight, alpha: float, n_splits: int):
    """The notebook's figure: (a) KL from the base against accuracy per model; (b) the debiased calibration
    error per model; (c) risk-coverage curves by confidence of the ``highlight`` models, their confidence
    systems marked; (d) the mean realised joint error per model and system against ``alpha``; (e) the mean
    coverage each system keeps.

    Parameters
    ----------
    cards_table : `cards`
    verified : `systems`
    highlight : the models whose risk-coverage curves are drawn (`Inputs.highlight`)
    alpha, n_splits : as given to `systems` (the reference line and the labels)
    """
    fig, axes = plot.panels(6, row_height=3.8)
    plot.card_scatter(cards_table, "kl_from_base", "accuracy", ax=axes[0])
    ece = cards_table[cards_table.measure == "ece"]
    plot.stack_measure(pd.DataFrame({"stack": ece.model, "ece": ece.estimate, "ece_low": ece.ci_low,
                                     "ece_high": ece.ci_high, "n_steps": 0}), "ece", ax=axes[1],
                       label="debiased calibration error")
    shown = [m for m in highlight if m in verified.curves]
    for i, name in enumerate(shown):
        plot.risk_coverage(verified.curves[name], ax=axes[2], label=name, color=plot.PALETTE[i])
    w = wide(verified.table)
    conf_sys = w[(w.system == "confidence") & w.model.isin(shown)]
    axes[2].scatter(conf_sys.coverage, conf_sys.error / conf_sys.coverage.where(conf_sys.coverage > 0), marker="x",
                    color="k", s=12, zorder=4, label="verified (confidence)")
    # (c)'s legend in the sixth cell of the grid, which has no panel of its own
    axes[5].set_axis_off()
    axes[5].legend(*axes[2].get_legend_handles_labels(), loc="upper left", title="(c) risk-coverage, AURC",
                   title_fontsize=7, fontsize=7, frameon=False)
    if axes[2].get_legend() is not None:
        axes[2].get_legend().remove()
    plot.verification(verified.table, "mean_error", ax=axes[3], reference=alpha,
                      label=f"realised P(answered and wrong), mean of {n_splits} splits")
    plot.verification(verified.table, "mean_coverage", ax=axes[4], reference=None,
                      label=f"coverage, mean of {n_splits} splits")
    for ax, letter in zip(axes[:5], "abcde"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig


def numbers(cards_table: pd.DataFrame, table: pd.DataFrame, *, alpha: float, n_splits: int) -> dict:
    """The numbers the paper quotes, named for its macros.

    ``card_<model>_<measure>`` (each card's n of held-out facts, the measure as its method);
    ``verify_<model>_<system>_{error,coverage,mean_error,mean_coverage}`` (the tests' Holm p-values,
    `system_key`); per system ``verify_<system>_{worst_error,within,worst_mean_error,mean_within,coverage_min,
    coverage_max}`` (`summary`); ``verify_models``, ``verify_alpha``, ``verify_rejections`` and
    ``verify_mean_rejections`` (tests rejected at 0.05 after Holm), ``verify_n_splits``; ``kl_accuracy_corr``
    (`kl_accuracy`). A model's name has ``+`` replaced by ``_``.

    Parameters
    ----------
    cards_table : `cards`
    table : `Systems.table`
    alpha, n_splits : as given to `systems`
    """
    out = {}
    for row in cards_table.to_dict("records"):
        key = f"card_{row['model'].replace('+', '_')}_{row['measure']}"
        out[key] = stats.Result.from_row(row, n=int(row["n_facts"]), method=row["measure"], pvalue=float("nan"))
    quoted = table[table.measure.isin(list(_METHODS))]
    quoted = quoted.assign(model_key=quoted.model.str.replace("+", "_", regex=False),
                           system_key=quoted.system.map(system_key),
                           method=quoted.method.where(~quoted.measure.isin(_TESTS), quoted.method + ", Holm"))
    out.update(stats.results(quoted, "verify_{model_key}_{system_key}_{measure}", pvalue="pvalue_holm"))
    for s, g in summary(table).iterrows():
        k = system_key(s)
        out[f"verify_{k}_worst_error"] = float(g.worst_error)
        out[f"verify_{k}_within"] = int(g.within)
        out[f"verify_{k}_worst_mean_error"] = float(g.worst_mean_error)
        out[f"verify_{k}_mean_within"] = int(g.mean_within)
        out[f"verify_{k}_coverage_min"] = float(g.coverage_min)
        out[f"verify_{k}_coverage_max"] = float(g.coverage_max)
    rejected = table[table.measure.isin(_TESTS)].assign(rejected=lambda t: t.pvalue_holm < 0.05)
    out["verify_models"] = int(cards_table.model.nunique())
    out["verify_alpha"] = alpha
    out["verify_rejections"] = int(rejected[rejected.measure == "error"].rejected.sum())
    out["verify_mean_rejections"] = int(rejected[rejected.measure == "mean_error"].rejected.sum())
    out["verify_n_splits"] = n_splits
    out["kl_accuracy_corr"] = kl_accuracy(cards_table)
    return out
