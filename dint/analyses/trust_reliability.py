"""The analysis of notebook 04 (trust drifts away from reliability), in notebook order.

`load` gathers the answer tables of the base (statement and QA form) and of every answering intervention, with SFT,
DPO and RLHF in the statement form too (which none of them trains);
`overview` is the held-out items, accuracy, confidence and mass outside the set per model; `calibration_tables`
the calibration summary per model (`dint.analyses.reliability.calibration_summary`: ECE, debiased error, Brier
and its parts, AUROC, AURC) with the reliability diagrams; `calibration_changes` each model's paired change on
the same prompts: from the base in the QA form, from the base in the statement form for the models evaluated
there, and RLHF's and DPO's from SFT in each form; `risk_coverage` the risk-coverage curve per model;
`temperatures` the temperature scaling of every model (`dint.analyses.reliability.temperature_scaling`), and
the temperature along the RL β sweep (`dint.analyses.temperature_sweep`); `published` our numbers against the
published ones by magnitude (the GPT-4 report's rise in ECE, Kadavath et al.'s T); `diversity_tables` per-input
and across-input diversity and their changes (`dint.analyses.diversity`); `tests` every test of the notebook,
Holm-adjusted as one family; `numbers` what the paper quotes; `figure` the notebook's figure.

Every contrast is on the same prompts: a model in one form is never set against the base in another.

Every table is tidy: label columns (``model``, ``reference``, ``measure``) then `dint.stats.ROW`
(``estimate, ci_low, ci_high, pvalue, n, method, reason``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import calibration, plot, selective, stats
from ..interventions import plan
from ..pipeline import artifacts
from ..pipeline.config import Profile
from . import diversity, reliability

__all__ = ["GPT4_ECE", "GPT4_RISE", "KADAVATH_T", "Calibration", "Diversity", "Inputs", "Tests", "calibration_changes",
           "calibration_tables", "diversity_tables", "figure", "load", "name", "numbers", "overview", "published",
           "quoted", "risk_coverage", "same_prompt_changes", "statement", "temperatures", "tests"]

# the published values the notebook stands beside (`dint.analyses.reliability`)
GPT4_ECE, KADAVATH_T = reliability.GPT4_ECE, reliability.KADAVATH_T
# the GPT-4 report's rise in ECE from the pre-trained model to the one after PPO
GPT4_RISE = GPT4_ECE["PPO"] - GPT4_ECE["pre-trained"]
# the contrasts set against GPT-4's rise: the RL step on the QA prompts, and SFT then RL against the base on its
# own (statement) prompts, the GPT-4 report's design (the pre-trained and the post-trained model on the same prompts)
AGAINST_GPT4 = (("rlhf", "sft"), ("rlhf (statement)", "base (statement)"))
# the base in its own (statement) form, beside the base and the interventions in the QA form
STATEMENT = "base (statement)"
# the interventions also evaluated in the statement form, which none of them trains (``"<name> (statement)"``):
# SFT and the two methods contrasted with it on the same prompts
STATEMENT_FORM = ("sft", "dpo", "rlhf")
# the contrasts with SFT on the same prompts, in each form: RL from SFT, and DPO from the same base
AGAINST_SFT = ("rlhf", "dpo")


def statement(model: str) -> str:
    """A model's name in the statement form (``"sft"`` -> ``"sft (statement)"``; the base's is `STATEMENT`)."""
    return STATEMENT if model == "base" else f"{model} (statement)"


def _added_form(model: str) -> bool:
    """An intervention evaluated in the statement form beside its QA form (shown in the tables, not the figure)."""
    return model.endswith(" (statement)") and model != STATEMENT


@dataclass(frozen=True)
class Inputs:
    """What notebook 04 evaluates: per model, its one-form score table and its held-out answer table."""

    world: object            # the profile's `dint.world.World`
    interventions: tuple     # the answering interventions compared with the base
    conditions: dict         # {model: one-form score_world table, all facts}; the base and `STATEMENT_FORM` in both
    held: dict               # {model: `reliability.answer_table` rows of the held-out facts}


def load(profile: Profile, *, interventions: list, n_draws: int = 8) -> Inputs:
    """The base's and the interventions' scores and held-out answer tables (cached artifacts).

    Parameters
    ----------
    profile : the run's profile
    interventions : answering interventions (`dint.interventions.plan.names` but ``reward``); the profile's own
        methods (``interventions.custom``) are added (`dint.interventions.plan.with_custom`)
    n_draws : draws for the expected number of distinct answers

    Returns
    -------
    `Inputs`; models in the order base (statement), base, ``interventions``, then those of `STATEMENT_FORM` among
    ``interventions`` in the statement form (`statement`).
    """
    answering = [n for n in plan.names(profile.interventions) if n != "reward"]
    bad = sorted(set(interventions) - set(answering))
    if bad:
        raise ValueError(f"interventions={bad}: not answering interventions; choose from {answering}")
    interventions = plan.with_custom(profile.interventions, interventions)
    world = artifacts.world(profile)
    base_scores = artifacts.base_scores(profile)
    conditions = {STATEMENT: base_scores[base_scores.form == "statement"], "base": base_scores[base_scores.form == "qa"]}
    for name in interventions:
        s = artifacts.intervention_scores(profile, name)
        conditions[name] = s[s.form == "qa"]
    for name in (n for n in STATEMENT_FORM if n in interventions):
        s = artifacts.intervention_scores(profile, name)
        conditions[statement(name)] = s[s.form == "statement"]
    answers = {m: reliability.answer_table(s, world.facts, n_draws=n_draws) for m, s in conditions.items()}
    held = {m: a[a.split == "heldout"] for m, a in answers.items()}
    return Inputs(world, tuple(interventions), conditions, held)


def overview(inputs: Inputs) -> pd.DataFrame:
    """Per model (rows): held-out items, accuracy, mean confidence and mean mass outside the candidate set."""
    return pd.DataFrame({m: {"held-out items": len(a), "accuracy": a.correct.mean(), "mean confidence": a.confidence.mean(),
                             "mass outside the set": a.mass_outside.mean()} for m, a in inputs.held.items()}).T


@dataclass(frozen=True)
class Calibration:
    """Calibration per model on the held-out facts."""

    summary: pd.DataFrame    # `reliability.calibration_summary`: model, reference, measure, ROW
    diagrams: pd.DataFrame   # per model and bin: model, bin_low, bin_high, confidence, measure, ROW (accuracy, Wilson)


def calibration_tables(inputs: Inputs, *, n_bins: int = 10, n_resamples: int = 2000, seed: int = 0) -> Calibration:
    """Calibration summary and reliability diagrams of every model on its held-out facts.

    Parameters
    ----------
    inputs : `load`
    n_bins : equal-width confidence bins (ECE, Brier decomposition, diagrams)
    n_resamples, seed : the bootstrap intervals of one model

    Returns
    -------
    `Calibration`: the summary (`reliability.calibration_summary`) and the diagrams, one row per model and
    non-empty bin, the bin's accuracy as ``estimate`` with its Wilson interval (`calibration.reliability_diagram`).
    """
    summary = reliability.calibration_summary(inputs.held, n_bins=n_bins, n_resamples=n_resamples, rng=seed)
    frames = []
    for m, a in inputs.held.items():
        d = calibration.reliability_diagram(a.confidence, a.correct, n_bins=n_bins)
        frames.append(pd.DataFrame({"model": m, "bin_low": d.bin_low, "bin_high": d.bin_high,
                                    "confidence": d.confidence, "measure": "accuracy", "estimate": d.accuracy,
                                    "ci_low": d.accuracy_low, "ci_high": d.accuracy_high, "pvalue": np.nan, "n": d.n,
                                    "method": "accuracy in the bin, Wilson interval", "reason": ""}))
    return Calibration(summary, pd.concat(frames, ignore_index=True))


def calibration_changes(inputs: Inputs, *, n_bins: int = 10, n_resamples: int = 2000, n_test_resamples: int = 9999,
                        seed: int = 0) -> pd.DataFrame:
    """Each model's paired change in calibration on the same prompts: every intervention's from the base in the
    QA form; the statement-form models' (`STATEMENT_FORM`) from the base in the statement form; and, in each form,
    RLHF's and DPO's from SFT (`AGAINST_SFT`).

    Returns
    -------
    Tidy DataFrame (`reliability.calibration_changes`): reference ``"base"`` for the QA-form interventions,
    ``"base (statement)"`` for the statement-form ones, and ``"sft"`` / ``"sft (statement)"`` for those of
    `AGAINST_SFT` evaluated beside SFT. No QA-form model is set against the base's statement form: those are
    other prompts.
    """
    kw = dict(n_bins=n_bins, n_resamples=n_resamples, n_test_resamples=n_test_resamples, rng=seed)
    changes = [reliability.calibration_changes(inputs.held, "base", models=list(inputs.interventions), **kw)]
    in_statement = [statement(n) for n in STATEMENT_FORM if statement(n) in inputs.held]
    if in_statement:
        changes.append(reliability.calibration_changes(inputs.held, STATEMENT, models=in_statement, **kw))
    for to_form in (str, statement):
        against = [to_form(n) for n in AGAINST_SFT if to_form(n) in inputs.held]
        if to_form("sft") in inputs.held and against:
            changes.append(reliability.calibration_changes(inputs.held, to_form("sft"), models=against, **kw))
    return pd.concat(changes, ignore_index=True)


def risk_coverage(inputs: Inputs) -> dict:
    """{model: `selective.risk_coverage` of its held-out confidences}."""
    return {m: selective.risk_coverage(a.confidence, a.correct) for m, a in inputs.held.items()}


def temperatures(inputs: Inputs, *, n_bins: int = 10, n_folds: int = 2, n_resamples: int = 2000,
                 n_test_resamples: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Temperature scaling of every model (`reliability.temperature_scaling`), the ``model`` column filled."""
    return pd.concat([reliability.temperature_scaling(s, inputs.world.facts, n_bins=n_bins, n_folds=n_folds,
                                                      n_resamples=n_resamples, n_test_resamples=n_test_resamples,
                                                      rng=seed).assign(model=m) for m, s in inputs.conditions.items()],
                     ignore_index=True)


def published(inputs: Inputs, changes: pd.DataFrame, *, confidence_level: float = 0.95) -> pd.DataFrame:
    """Our numbers against the published ones, by magnitude: the GPT-4 report's rise in ECE and Kadavath et al.'s T.

    Parameters
    ----------
    inputs : `load`
    changes : `calibration_changes` (its ``d_ece`` rows, l1 ECE as the GPT-4 report's)
    confidence_level : level of the temperature's interval

    Returns
    -------
    Tidy DataFrame: for each contrast of `AGAINST_GPT4` evaluated, ``d_ece_minus_gpt4`` (our paired rise in ECE
    minus `GPT4_RISE`, its paired bootstrap interval shifted with it; no test: an equivalence is judged by its
    interval) and ``d_ece_ratio_gpt4`` (our rise over GPT-4's); for RLHF, ``log_t_heldout_vs_kadavath``:
    log(T / `KADAVATH_T`) with T fitted on all held-out QA facts (`reliability.temperature`: the
    profile-likelihood interval, and the likelihood-ratio test of T = `KADAVATH_T`).

    Notes
    -----
    The published values carry no interval: each row's interval is ours alone. OpenAI (2023), GPT-4 Technical
    Report, Fig. 8; Kadavath et al. (2022), sec. 3.3.
    """
    rows = []
    d = changes[changes.measure == "d_ece"].set_index(["model", "reference"])
    for model, ref in AGAINST_GPT4:
        if (model, ref) not in d.index:
            continue
        r = d.loc[(model, ref)]
        for measure, f, what in (("d_ece_minus_gpt4", lambda x: x - GPT4_RISE, f"minus the GPT-4 report's {GPT4_RISE:.3f}"),
                                 ("d_ece_ratio_gpt4", lambda x: x / GPT4_RISE, f"over the GPT-4 report's {GPT4_RISE:.3f}")):
            rows.append(reliability.tidy_row(model, measure, stats.Result(
                f(r.estimate), stats.ConfidenceInterval(f(r.ci_low), f(r.ci_high)), int(r.n),
                f"paired change in ECE (l1) {what}: {r.method}", reason=r.reason), reference=ref))
    if "rlhf" in inputs.conditions:
        _, logp, labels = reliability.held_out(inputs.conditions["rlhf"], inputs.world.facts)
        t = reliability.temperature(logp, labels, confidence_level=confidence_level, null=KADAVATH_T)
        ends = (np.log(t.confidence_interval.low / KADAVATH_T), np.log(t.confidence_interval.high / KADAVATH_T))
        rows.append(reliability.tidy_row("rlhf", "log_t_heldout_vs_kadavath", stats.Result(
            float(np.log(t.statistic / KADAVATH_T)), stats.ConfidenceInterval(*ends), t.n,
            f"log(T / {KADAVATH_T:g}), T fitted on the held-out facts: {t.method}", t.pvalue)))
    return pd.DataFrame(rows, columns=reliability.TIDY_COLUMNS)


@dataclass(frozen=True)
class Diversity:
    """Diversity per model and its paired changes, on the held-out QA items."""

    summary: pd.DataFrame    # `diversity.diversity_summary`
    changes: pd.DataFrame    # `diversity.diversity_changes` from the base, and RLHF from SFT


def diversity_tables(inputs: Inputs, *, n_draws: int = 8, n_resamples: int = 2000, n_test_resamples: int = 9999,
                     seed: int = 0) -> Diversity:
    """Per-input and across-input diversity of the QA-form models, and their changes.

    Returns
    -------
    `Diversity`: the summary per model and the changes of every intervention from the base, with RLHF
    against the SFT model it started from when both are evaluated (Kirk et al. 2023).
    """
    qa_held = {m: s[s.fact.isin(inputs.held[m].fact)] for m, s in inputs.conditions.items()
               if m != STATEMENT and not _added_form(m)}
    summary = diversity.diversity_summary(qa_held, inputs.world.facts, n_draws=n_draws)
    kw = dict(n_draws=n_draws, n_resamples=n_resamples, n_test_resamples=n_test_resamples, rng=seed)
    changes = [diversity.diversity_changes(qa_held, "base", inputs.world.facts, models=list(inputs.interventions), **kw)]
    if {"sft", "rlhf"} <= set(inputs.interventions):
        changes.append(diversity.diversity_changes(qa_held, "sft", inputs.world.facts, models=["rlhf"], **kw))
    return Diversity(summary, pd.concat(changes, ignore_index=True))


@dataclass(frozen=True)
class Tests:
    """Every row of the notebook's tables that feed the Holm family, and the tests among them."""

    everything: pd.DataFrame   # the rows with ``pvalue_holm`` (NaN where no test is made)
    tests: pd.DataFrame        # the rows with a p-value


def tests(*tables: pd.DataFrame) -> Tests:
    """Every test of ``tables`` (the calibration summary, the changes, the temperatures, the temperature sweep,
    the published comparisons, the diversity changes) Holm-adjusted as one family (`dint.stats.holm`)."""
    everything = stats.holm(pd.concat(tables, ignore_index=True))
    return Tests(everything, everything[everything.pvalue.notna()].reset_index(drop=True))


def name(model, reference, measure) -> str:
    """A row's name in ``numbers.json``: ``model[_vs_reference]_measure``, with ``" (statement)"`` as
    ``"_statement"``; the reference ``"unscaled"`` (temperature scaling against no scaling) is left out."""
    ref = f"vs_{reference}" if isinstance(reference, str) and reference != "unscaled" else ""
    return "_".join(p for p in (model, ref, measure) if p).replace(" (statement)", "_statement")


def numbers(everything: pd.DataFrame, diversity_summary: pd.DataFrame) -> dict:
    """The numbers the paper quotes.

    Parameters
    ----------
    everything : `tests`' ``everything`` (with ``pvalue_holm``)
    diversity_summary : `Diversity.summary`

    Returns
    -------
    dict: a `dint.stats.Result` per row of ``everything`` (named by `name`, with its Holm-adjusted p-value, the
    method marked "Holm-adjusted across the notebook" where tested) and of the diversity summary (no test);
    the published values (``gpt4_ece_pretrained``, ``gpt4_ece_ppo``, ``gpt4_ece_rise``, ``kadavath_t``),
    ``n_tests`` and ``n_significant_holm``.
    """
    tested = everything["pvalue_holm"].notna()
    rows = everything.assign(name=[name(*r) for r in everything[["model", "reference", "measure"]].itertuples(index=False)],
                             method=everything["method"].mask(tested, everything["method"]
                                                              + ", Holm-adjusted across the notebook"))
    div = diversity_summary.assign(name=[name(m, None, x) for m, x in zip(diversity_summary.model, diversity_summary.measure)],
                                   untested=np.nan)
    out = {**stats.results(rows, "{name}", pvalue="pvalue_holm"), **stats.results(div, "{name}", pvalue="untested")}
    out["gpt4_ece_pretrained"], out["gpt4_ece_ppo"] = reliability.GPT4_ECE["pre-trained"], reliability.GPT4_ECE["PPO"]
    out["gpt4_ece_rise"] = GPT4_RISE
    out["kadavath_t"] = reliability.KADAVATH_T
    out["n_tests"], out["n_significant_holm"] = int(tested.sum()), int((everything["pvalue_holm"] < 0.05).sum())
    return out


def quoted(numbers: dict) -> dict:
    """The numbers to show in the notebook: the published values and counts, and per model its ECE, changes in
    ECE, temperatures (along the β sweep too), the comparisons with the published values and the RLHF-against-SFT
    change in entropy, as (estimate, low, high, p) rounded."""
    ends = ("_ece", "vs_base_d_ece", "vs_base_statement_d_ece", "vs_sft_d_ece_debiased",
            "vs_sft_statement_d_ece_debiased", "t_train", "t_heldout", "vs_sft_d_entropy", "_minus_gpt4",
            "_ratio_gpt4", "_vs_kadavath", "d_log_t", "slope_log_t_kl", "kl_from_sft")
    return {k: (round(v.statistic, 3), round(v.confidence_interval.low, 3), round(v.confidence_interval.high, 3),
                round(v.pvalue, 4)) if isinstance(v, stats.Result) else v
            for k, v in numbers.items() if not isinstance(v, stats.Result) or k.endswith(ends)}


def same_prompt_changes(changes: pd.DataFrame) -> pd.DataFrame:
    """The rows of `calibration_changes` the figure's headline panel shows: RLHF and DPO against SFT in each form,
    and each statement-form model against the base in that form, as ``"<model> − <reference>"`` (ECE and
    debiased error)."""
    keep = changes.reference.isin(["sft", statement("sft"), STATEMENT]) & changes.measure.isin(["d_ece", "d_ece_debiased"])
    d = changes[keep].copy()
    form = np.where(d.model.str.endswith(" (statement)"), " (statement)", " (QA)")
    d["model"] = d.model.str.replace(" (statement)", "") + " − " + d.reference.str.replace(" (statement)", "") + form
    return d


def figure(calib: Calibration, temperatures: pd.DataFrame, curves: dict, diversity_changes: pd.DataFrame,
           changes: pd.DataFrame, sweep: pd.DataFrame):
    """The notebook's figure: (a) the headline, paired changes in calibration error on the same prompts (RLHF
    and DPO against SFT in each form, each statement-form model against the base in that form), beside the GPT-4
    report's rise; (b, c) reliability diagrams in the QA form, the base with the SFT family and RAG, and SFT with
    the preference-trained models; (d) reliability diagrams in the statement form; (e) ECE before and after
    temperature scaling with the GPT-4 report's values; (f) risk-coverage curves; (g) the fitted temperatures
    beside T = 1 and Kadavath et al.'s; (h) the temperature along the RL β sweep against the KL from SFT;
    (i) changes in per-input entropy and across-input diversity (paired intervals).

    Parameters
    ----------
    calib : `calibration_tables`
    temperatures : `temperatures`
    curves : `risk_coverage`
    diversity_changes : `Diversity.changes`
    changes : `calibration_changes`
    sweep : `dint.analyses.temperature_sweep.overview`

    Returns
    -------
    The matplotlib figure.
    """
    fig, axes = plot.panels(9, row_height=2.95)
    models = [m for m in dict.fromkeys(calib.diagrams.model) if not _added_form(m)]
    colors = dict(zip(models, plot.PALETTE))
    colors.update({statement(m): colors[m] for m in STATEMENT_FORM if m in colors})   # a model keeps its colour
    plot.model_intervals(same_prompt_changes(changes), ax=axes[0], xlabel="change in calibration error\n(same prompts, paired by fact)",
                         labels={"d_ece": "ECE (l1)", "d_ece_debiased": "debiased l2 error"},
                         references={"no change": 0.0, f"GPT-4 after PPO − pre-trained (ECE) {GPT4_RISE:.3f}": GPT4_RISE})
    diagrams = calib.diagrams
    families = (["base", "sft", "sft_lora", "sft_sham", "rag"], ["sft", "dpo", "dpo_lora", "rlhf"],
                [STATEMENT, *(statement(m) for m in STATEMENT_FORM)])
    for ax, family in zip(axes[1:4], families):
        for m in family:
            if m in colors and m in set(diagrams.model):
                plot.reliability_diagram(diagrams[diagrams.model == m], ax=ax, label=m, color=colors[m])
    temps = temperatures[~temperatures.model.map(_added_form)]
    plot.model_intervals(temps[temps.measure.isin(["ece_before", "ece_after_train", "ece_after_crossfit"])], ax=axes[4],
                         xlabel="ECE (held-out facts)",
                         labels={"ece_before": "unscaled", "ece_after_train": "T fitted on train facts",
                                 "ece_after_crossfit": "T cross-fitted on held-out facts"},
                         references={"GPT-4 pre-trained": reliability.GPT4_ECE["pre-trained"],
                                     "GPT-4 after PPO": reliability.GPT4_ECE["PPO"]})
    for m, r in ((m, r) for m, r in curves.items() if not _added_form(m)):
        plot.risk_coverage(r, ax=axes[5], label=m, color=colors[m])
    axes[5].set_ylim(0, 1.02)
    plot.model_intervals(temps[temps.measure.isin(["t_train", "t_heldout"])], ax=axes[6], log=True,
                         xlabel="temperature T (log scale)",
                         labels={"t_train": "fitted on train facts", "t_heldout": "fitted on held-out facts"},
                         references={"T = 1": 1.0, "Kadavath et al. T ≈ 2.5": reliability.KADAVATH_T})
    plot.temperature_sweep(sweep, ax=axes[7], references={"T = 1": 1.0,
                                                                      "Kadavath et al. T ≈ 2.5": reliability.KADAVATH_T})
    d = diversity_changes[diversity_changes.measure.isin(["d_entropy", "d_across"])].copy()
    d["model"] = np.where(d.reference == "base", d.model + " − base", d.model + " − " + d.reference)
    plot.model_intervals(d, ax=axes[8], xlabel="Δ diversity\n(paired by fact)",
                         labels={"d_entropy": "per-input entropy (nats)", "d_across": "across-input P(differ)"},
                         references={"no change": 0.0})
    for ax, letter in zip(axes, "abcdefghi"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
