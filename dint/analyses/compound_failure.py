"""The analysis of notebook 05 (stacked interventions fail in compound ways), in notebook order.

`load` gathers the stacks of the profile's plan and order variants with their training costs and per-item
outcomes on held-out and train facts (`dint.analyses.stacks`); `per_stack` is accuracy, KL from the base and the
debiased calibration error per stack (`stacks.measures`); `additivity` each multi-step stack against the additive
prediction from its single steps, for three per-item outcomes (`stacks.additivity`); `interactions` the logistic
GEE of correctness on the steps with every interaction and its joint test; `prediction` each stack's accuracy
beside the additive predictions (probability scale and main-effects GEE); `forgetting` the share of the train facts
SFT installed that later steps keep, with McNemar's test against SFT; `orders` each reversed pair against its
canonical order; `tests` every test of the notebook Holm-adjusted as one family; `numbers` what the paper quotes;
`in_form` all of it in the other prompt form (its own family); `lora` LoRA against full SFT across learning rates
(`dint.analyses.lora_sweep`: Biderman et al.'s "LoRA learns less and forgets less" at matched training loss) and
`lora_numbers` its numbers; `figure` the notebook's figure.

Tables with estimates are tidy: label columns (``stack``, ``measure``, ``outcome``, ``order``, ...) then
`dint.stats.ROW` (``estimate, ci_low, ci_high, pvalue, n, method, reason``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import compare, divergence, plot, stats
from ..interventions.record import InterventionRecord
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..stats import fits, proportions
from . import lora_sweep, stacks

__all__ = ["OTHER_FORM", "Inputs", "Interactions", "additivity", "figure", "forgetting", "in_form", "interactions",
           "load", "lora", "lora_numbers", "numbers", "orders", "per_stack", "prediction", "quoted", "tests"]

# the per-item outcomes compared with the additive prediction
OUTCOMES = ("correct_post", "p_true_post", "kl")
# the form reported beside each deployment form (`in_form`)
OTHER_FORM = {"qa": "statement", "statement": "qa"}


@dataclass(frozen=True)
class Inputs:
    """The stacks notebook 05 evaluates and their per-item outcomes."""

    form: str             # the prompt form evaluated
    steps: tuple          # the steps of the factorial plan
    plan: tuple           # the names of the plan's stacks (canonical order, `stacks.plan`), the base first
    pairs: tuple          # the reversed orders of the plan (`stacks.orders`)
    scores: dict          # {stack name: `stacks.stack_scores`}, the plan, the order variants, then `others`
    costs: pd.DataFrame   # `stacks.describe` per stack (and per method of `others`)
    heldout: dict         # {stack name: `stacks.outcomes` on the held-out facts}
    train: dict           # {stack name: `stacks.outcomes` on the train facts}
    others: tuple = ()    # the profile's own methods (interventions.custom): single steps beside the stacks

    @property
    def canonical(self) -> dict:
        """The held-out outcomes of the plan's stacks (the factorial design)."""
        return {n: self.heldout[n] for n in self.plan}


def load(profile: Profile, *, form: str = "qa") -> Inputs:
    """The stacks of the profile's plan and its order variants (cached artifacts), with their per-item outcomes.

    Parameters
    ----------
    profile : the run's profile (``interventions.stack_steps`` picks the steps)
    form : the prompt form evaluated, ``"qa"`` or ``"statement"``

    Returns
    -------
    `Inputs`; the profile's own methods (``interventions.custom``) ride along as ``others``: single steps from the
    base, measured beside the stacks (`per_stack`) and left out of every test of stacking.
    """
    if form not in ("qa", "statement"):
        raise ValueError(f"form={form!r}: choose 'qa' or 'statement'")
    world = artifacts.world(profile)
    base_scores = artifacts.base_scores(profile)
    names = [stacks.name(s) for s in stacks.plan(profile) + stacks.orders(profile)]
    others = profile.interventions.custom_names
    scores = {n: stacks.stack_scores(profile, n) for n in names}
    scores.update({n: artifacts.intervention_scores(profile, n) for n in others})
    costs = pd.DataFrame([stacks.describe(profile, n) for n in names] + [_describe(profile, n) for n in others])
    heldout = stacks.outcomes(base_scores, scores, world.facts, form=form, split="heldout", others=others)
    train = stacks.outcomes(base_scores, scores, world.facts, form=form, split="train", others=others)
    return Inputs(form, tuple(profile.interventions.stack_steps), tuple(stacks.name(s) for s in stacks.plan(profile)),
                  tuple(stacks.orders(profile)), scores, costs, heldout, train, others)


def _describe(profile: Profile, name: str) -> dict:
    """A method of the profile's own as `stacks.describe` gives a stack: one step, its record's cost."""
    r = InterventionRecord.load(artifacts.ensure_intervention(profile, name) / "record.json")
    return {"stack": name, "n_steps": 1, "train_flops": float(r.train_flops), "train_tokens": int(r.tokens),
            "wall_time": float(r.wall_time), "steps_detail": json.dumps([r.method])}


def per_stack(inputs: Inputs, *, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`stacks.measures` of every stack (and of the profile's own methods, `Inputs.others`) on the held-out facts,
    with its training FLOPs (a label column)."""
    table = stacks.measures(inputs.heldout, n_resamples=n_resamples, rng=seed, others=inputs.others)
    return table.merge(inputs.costs[["stack", "train_flops"]], on="stack")[
        ["stack", "n_steps", "train_flops", *(c for c in table.columns if c not in ("stack", "n_steps"))]]


def additivity(inputs: Inputs, *, n_permutations: int = 9999, seed: int = 0) -> pd.DataFrame:
    """`stacks.additivity` of the canonical stacks for each of `OUTCOMES`, the ``outcome`` a label column."""
    frames = [stacks.additivity(inputs.canonical, col, n_permutations=n_permutations, rng=seed).assign(outcome=col)
              for col in OUTCOMES]
    table = pd.concat(frames, ignore_index=True)
    return table[["outcome", *(c for c in table.columns if c != "outcome")]]


@dataclass(frozen=True)
class Interactions:
    """Logistic GEEs of correctness on the steps (one row per fact and canonical stack)."""

    gee: pd.DataFrame        # every interaction: term, then `dint.stats.ROW`, std_error, z
    joint: stats.Result      # joint Wald test of every interaction (Hotelling's F, clusters as its size)
    pairwise: pd.DataFrame   # main effects and two-way interactions (`fits.logit_gee`)
    main: pd.DataFrame       # main effects only: the additive model on the log-odds scale
    n: int                   # rows of the design: facts x stacks


def interactions(inputs: Inputs) -> Interactions:
    """Logistic GEEs of correctness on the steps, exchangeable within a fact, bias-reduced sandwich.

    Returns
    -------
    `Interactions`: ``correct ~ s1 * s2 * ...`` (every interaction) as a tidy table, the joint test of its
    interaction terms, the model with two-way interactions and the main-effects model (`dint.stats.fits`).
    """
    steps = inputs.steps
    long = stacks.design(inputs.canonical)
    long = long.assign(correct=long.correct_post.astype(int))
    gee = fits.logit_gee("correct ~ " + " * ".join(steps), long, groups="fact")
    joint = fits.logit_gee_joint("correct ~ " + " * ".join(steps), long, groups="fact", terms=lambda t: ":" in t)
    pairwise = fits.logit_gee("correct ~ (" + " + ".join(steps) + ") ** 2", long, groups="fact")
    main = fits.logit_gee("correct ~ " + " + ".join(steps), long, groups="fact")
    gee = gee.assign(n=len(long), method="logistic GEE log-odds, exchangeable, bias-reduced sandwich")
    return Interactions(gee[["term", *stats.ROW, "std_error", "z"]], joint, pairwise, main, len(long))


def prediction(inputs: Inputs, table: pd.DataFrame, additive: pd.DataFrame, main: pd.DataFrame) -> pd.DataFrame:
    """Each canonical stack's accuracy beside its additive predictions.

    Parameters
    ----------
    inputs : `load`
    table : `per_stack`
    additive : `additivity`
    main : `Interactions.main`

    Returns
    -------
    Tidy DataFrame, one row per canonical stack: ``stack``, ``n_steps``, ``measure`` (accuracy), `dint.stats.ROW`,
    ``additive`` (the probability-scale prediction from the single steps; the accuracy itself for the base and
    single steps) and ``additive_logit`` (the main-effects GEE's prediction).
    """
    canonical = list(inputs.canonical)
    x = pd.DataFrame([{s: int(s in stacks.parse(n)) for s in inputs.steps} for n in canonical])
    coef = main.set_index("term").estimate
    eta = coef["Intercept"] + sum(coef[s] * x[s] for s in inputs.steps)
    logit_pred = pd.DataFrame({"stack": canonical, "additive_logit": 1 / (1 + np.exp(-eta.to_numpy()))})
    accuracy = table[table.measure == "accuracy"].drop(columns="train_flops")
    out = accuracy.merge(logit_pred, on="stack").merge(
        additive[additive.outcome == "correct_post"][["stack", "additive"]], on="stack", how="left")
    out["additive"] = out["additive"].fillna(out["estimate"])   # the base and single steps
    return out[["stack", "n_steps", "measure", *stats.ROW, "additive", "additive_logit"]]


def forgetting(inputs: Inputs) -> pd.DataFrame:
    """Forgetting of the train facts SFT installed, by each stack that starts with SFT and adds a step.

    A fact SFT *installed* is a train fact the base answered wrong and SFT alone answers right.

    Returns
    -------
    Tidy DataFrame, two rows per such stack: ``stack``, ``n_steps``, ``routed`` (its last step is RAG: a different
    input, not tested as forgetting), ``installed`` (facts), ``measure``: ``retained`` (share of the installed facts
    still right, Wilson interval, n the installed facts; not estimable where SFT installed none) and
    ``d_accuracy_vs_sft`` (accuracy on all train facts against SFT alone, McNemar's exact test, Newcombe interval);
    then `dint.stats.ROW`.
    """
    train = inputs.train
    if "sft" not in train:
        raise ValueError("inputs has no 'sft' stack: forgetting needs SFT in the profile's stack_steps")
    installed = (~train["sft"].correct_base & train["sft"].correct_post).to_numpy()
    rows = []
    for n, it in train.items():
        if n in inputs.others:   # not a stack
            continue
        steps = stacks.parse(n)
        if len(steps) < 2 or steps[0] != "sft":
            continue
        kept = it.correct_post.to_numpy()[installed]
        labels = {"stack": n, "n_steps": len(steps), "routed": steps[-1] == "rag", "installed": int(installed.sum())}
        r = (stats.proportion(int(kept.sum()), int(installed.sum())) if installed.any() else
             stats.Result.not_estimable(f"SFT installed no train fact in the {inputs.form} form", method="Wilson"))
        m = proportions.mcnemar(train["sft"].correct_post.to_numpy(), it.correct_post.to_numpy())
        rows.append({**r.row(**labels, measure="retained"), "n": int(installed.sum())})
        rows.append({**m.row(**labels, measure="d_accuracy_vs_sft"), "n": len(train["sft"])})
    return pd.DataFrame(rows)


def orders(inputs: Inputs, *, n_resamples: int = 2000, n_permutations: int = 9999,
           seed: int = 0) -> pd.DataFrame:
    """Each reversed pair against its canonical order on the same held-out facts.

    Parameters
    ----------
    inputs : `load` (its ``pairs``: the reversed orders)
    n_resamples, n_permutations, seed : the KL's bootstrap and the permutation test

    Returns
    -------
    Tidy DataFrame, three rows per pair: ``order`` (the reversed stack), ``against`` (the canonical one),
    ``measure``: ``d_accuracy`` (McNemar exact, Newcombe interval), ``kl`` (mean KL(reversed ‖ canonical) over
    facts, bootstrap interval) and ``d_p_true`` (mean difference in the probability of the truth, paired
    permutation test); then `dint.stats.ROW` (n: the held-out facts).
    """
    rows = []
    for pair in inputs.pairs:
        a, b = stacks.name(sorted(pair, key=stacks.STEPS.index)), stacks.name(pair)
        A, B = inputs.heldout[a], inputs.heldout[b]
        m = proportions.mcnemar(A.correct_post.to_numpy(), B.correct_post.to_numpy())
        lp = {k: compare.distributions(inputs.scores[k][(inputs.scores[k].form == inputs.form)
                                                        & inputs.scores[k].fact.isin(A.fact)])[1] for k in (a, b)}
        kl_ab = stats.bootstrap_mean(divergence.kl(lp[b], lp[a]), n_resamples=n_resamples, rng=seed)
        pt = stats.paired_permutation_test(B.p_true_post.to_numpy(), A.p_true_post.to_numpy(),
                                           n_resamples=n_permutations, rng=seed)
        rows += [{**r.row(order=b, against=a, measure=k), "n": len(inputs.heldout[b])}
                 for k, r in (("d_accuracy", m), ("kl", kl_ab), ("d_p_true", pt))]
    return pd.DataFrame(rows)


def tests(additive: pd.DataFrame, gee: Interactions, forgetting: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Every test of the notebook, Holm-adjusted as one family (`dint.stats.holm`).

    Returns
    -------
    Tidy DataFrame: ``test`` (what is tested: the additivity tests, the GEE interaction terms and their joint test,
    forgetting against SFT (stacks not routed by RAG), the order effects on accuracy and on the probability of the
    truth), `dint.stats.ROW`, ``pvalue_holm`` and ``supported`` (Holm-adjusted p < 0.05).
    """
    inter = gee.gee[gee.gee.term.str.contains(":")]
    tested_forgetting = forgetting[~forgetting.routed.astype(bool) & (forgetting.measure == "d_accuracy_vs_sft")]
    acc, p_true = orders[orders.measure == "d_accuracy"], orders[orders.measure == "d_p_true"]
    family = pd.concat([
        additive.assign(test="additivity " + additive.outcome + ": " + additive["stack"]),
        inter.assign(test="GEE interaction " + inter.term),
        pd.DataFrame([gee.joint.row(test="GEE joint interactions")]),
        tested_forgetting.assign(test="forgetting vs sft: " + tested_forgetting["stack"]),
        acc.assign(test="order accuracy: " + acc["order"]),
        p_true.assign(test="order p_true: " + p_true["order"]),
    ], ignore_index=True)[["test", *stats.ROW]]
    family = stats.holm(family)
    return family.assign(supported=family.pvalue_holm < 0.05)


def in_form(profile: Profile, form: str, *, n_resamples: int = 2000, n_permutations: int = 9999,
            seed: int = 0) -> dict:
    """The notebook's analysis in another prompt form, from `load` to `numbers`, its tests Holm-adjusted as a
    family of their own: what the paper reports beside the deployment form's.

    Parameters
    ----------
    profile : the run's profile
    form : the prompt form, ``"qa"`` or ``"statement"``
    n_resamples, n_permutations, seed : as for `per_stack`, `additivity` and `orders`

    Returns
    -------
    `numbers` with each key prefixed by ``"<form>_"`` (``statement_gee_sft_dpo``, ...).
    """
    inputs = load(profile, form=form)
    table = per_stack(inputs, n_resamples=n_resamples, seed=seed)
    add = additivity(inputs, n_permutations=n_permutations, seed=seed)
    gee, lost = interactions(inputs), forgetting(inputs)
    pairs = orders(inputs, n_resamples=n_resamples, n_permutations=n_permutations, seed=seed)
    out = numbers(table, add, gee, lost, pairs, tests(add, gee, lost, pairs))
    return {f"{form}_{k}": v for k, v in out.items()}


def lora(profile: Profile, *, n_resamples: int = 2000, n_permutations: int = 9999,
         seed: int = 0) -> lora_sweep.Comparison:
    """LoRA against full SFT across learning rates: `lora_sweep.sweep` (cached: trained on first use) compared by
    `lora_sweep.compare_methods` at a matched final training loss, at a matched learning and at each method's best
    learning rate. A real profile is not swept (ten fine-tunes of its pretrained model are beyond its CPU budget): its
    `lora_sweep.Comparison` is empty, with the reason.

    Parameters
    ----------
    profile : the run's profile
    n_resamples, n_permutations, seed : of the bootstrap intervals and the sign-flip tests

    Returns
    -------
    `lora_sweep.Comparison`.
    """
    if profile.real:
        return lora_sweep.not_swept("a real profile is not swept: ten fine-tunes of its pretrained model are beyond "
                                    "its CPU budget")
    return lora_sweep.compare_methods(lora_sweep.sweep(profile), n_resamples=n_resamples,
                                      n_permutations=n_permutations, seed=seed)


def lora_numbers(comparison: lora_sweep.Comparison) -> dict:
    """`lora_sweep.numbers` of `lora`: ``lora_matched_forgetting``, ``lora_best_learning``, ... (empty on a real
    profile)."""
    return lora_sweep.numbers(comparison)


def _holm(table: pd.DataFrame, family: pd.DataFrame, test: pd.Series) -> pd.DataFrame:
    """``table`` with the Holm-adjusted p-value of its test named ``test`` (NaN where it is not in the family)."""
    return table.assign(pvalue_holm=test.map(dict(zip(family.test, family.pvalue_holm))))


def numbers(table: pd.DataFrame, additive: pd.DataFrame, gee: Interactions, forgetting: pd.DataFrame,
            orders: pd.DataFrame, family: pd.DataFrame) -> dict:
    """The numbers the paper quotes, from the notebook's tidy tables.

    Parameters
    ----------
    table, additive, gee, forgetting, orders, family : `per_stack`, `additivity`, `interactions`, `forgetting`,
        `orders`, `tests`

    Returns
    -------
    dict of `dint.stats.Result` (a stack's ``+`` written ``_``): ``{stack}_accuracy``, ``_kl``, ``_ece``;
    ``{stack}_{outcome}_excess``; ``gee_{term}`` for each interaction and ``gee_joint_interactions``;
    ``{stack}_retained`` and ``{stack}_vs_sft_train_d_accuracy``; ``order_{stack}_d_accuracy``, ``_kl``,
    ``_d_p_true``; the p-values of tested rows Holm-adjusted (`tests`); and ``tests_supported``, ``tests_total``.
    """
    def key(col):
        return col.str.replace("+", "_", regex=False)

    out, nan = {}, dict(untested=np.nan)
    t = table.assign(key=key(table["stack"]), **nan)
    for measure, method in (("accuracy", "Wilson"), ("kl", "mean KL(stack || base), bootstrap"),
                            ("ece", "debiased l2 calibration error, bootstrap")):
        out.update(stats.results(t[t.measure == measure], "{key}_" + measure, pvalue="untested", method=method))
    excess = _holm(additive, family, "additivity " + additive.outcome + ": " + additive["stack"])
    out.update(stats.results(excess.assign(key=key(excess["stack"])), "{key}_{outcome}_excess", pvalue="pvalue_holm",
                             method="stack - additive prediction, paired permutation, Holm"))
    inter = gee.gee[gee.gee.term.str.contains(":")]
    inter = _holm(inter, family, "GEE interaction " + inter.term).assign(key=inter.term.str.replace(":", "_"))
    out.update(stats.results(inter, "gee_{key}", pvalue="pvalue_holm", n=gee.n,
                             method="GEE log-odds, bias-reduced sandwich, Holm"))
    joint = family.set_index("test").loc["GEE joint interactions"]
    out["gee_joint_interactions"] = stats.Result.from_row(gee.joint.row(), pvalue=float(joint.pvalue_holm))
    f = _holm(forgetting, family, "forgetting vs sft: " + forgetting["stack"]).assign(key=key(forgetting["stack"]), **nan)
    routed = f.routed.astype(bool)
    f = f.assign(pvalue_holm=f.pvalue_holm.where(~routed, f.pvalue))   # a routed stack keeps its own p-value
    for r in f.to_dict("records"):
        if r["measure"] == "retained":
            out.update(stats.results(pd.DataFrame([r]), "{key}_retained", pvalue="untested", method="Wilson"))
        else:
            out.update(stats.results(pd.DataFrame([r]), "{key}_vs_sft_train_d_accuracy", pvalue="pvalue_holm",
                                     method="McNemar exact" + ("" if r["routed"] else ", Holm")))
    o = orders.assign(key=key(orders["order"]), **nan)
    what = pd.Series(np.where(o.measure == "d_accuracy", "order accuracy: ", "order p_true: "), index=o.index)
    o = _holm(o, family, what + o["order"])
    methods = {"d_accuracy": ("pvalue_holm", "McNemar exact, Holm"), "kl": ("untested", "mean KL between orders, bootstrap"),
               "d_p_true": ("pvalue_holm", "paired permutation, Holm")}
    for r in o.to_dict("records"):
        p, method = methods[r["measure"]]
        out.update(stats.results(pd.DataFrame([r]), "order_{key}_" + r["measure"], pvalue=p, method=method))
    out["tests_supported"] = int(family.supported.sum())
    out["tests_total"] = len(family)
    return out


def quoted(numbers: dict) -> dict:
    """The numbers to show in the notebook: the excesses, the GEE terms, the order effects and the change on SFT's
    train facts as (estimate, low, high, p) rounded, and the counts of tests (`numbers` or `in_form`)."""
    def shown(k):
        k = k.removeprefix("qa_").removeprefix("statement_")
        return "excess" in k or k.endswith("vs_sft_train_d_accuracy") or k.startswith(("gee", "order", "tests"))
    return {k: (round(v.statistic, 3), round(v.confidence_interval.low, 3), round(v.confidence_interval.high, 3),
                round(v.pvalue, 4)) if isinstance(v, stats.Result) else v
            for k, v in numbers.items() if shown(k)}


def _wide(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One measure's rows of a tidy table with the estimate as ``measure`` and ``{measure}_low/high``
    (what `dint.plot.stack_measure` takes)."""
    return table[table.measure == measure].rename(columns={"estimate": measure, "ci_low": f"{measure}_low",
                                                           "ci_high": f"{measure}_high"}).reset_index(drop=True)


def figure(table: pd.DataFrame, predicted: pd.DataFrame, gee: Interactions, forgetting: pd.DataFrame,
           orders: pd.DataFrame, lora: lora_sweep.Comparison | None = None):
    """The notebook's figure: (a) accuracy against the main-effects GEE's additive prediction; (b) KL from the
    base and (c) the debiased calibration error per stack; (d) the GEE's interaction terms; (e) the share of
    SFT-installed train facts each later stack keeps; (f) the order effects on accuracy; with ``lora``, (g) the final
    training loss of full SFT and SFT-LoRA against the learning rate, (h) their learning and (i) their forgetting
    against the final loss (`lora_sweep.draw`).

    Parameters
    ----------
    table, predicted, gee, forgetting, orders : `per_stack`, `prediction`, `interactions`, `forgetting`, `orders`
    lora : `lora` (optional)

    Returns
    -------
    The matplotlib figure.
    """
    fig, axes = plot.panels(6 if lora is None else 9, row_height=3.2 if lora is None else 2.95)
    plot.additive(predicted, x="additive_logit", ax=axes[0])
    axes[0].set_xlabel("accuracy, additive prediction\n(main-effects GEE)")
    plot.stack_measure(_wide(table, "kl"), "kl", ax=axes[1], label="KL(stack ‖ base), nats")
    plot.stack_measure(_wide(table, "ece"), "ece", ax=axes[2], label="debiased\ncalibration error")
    plot.intervals(stats.results(gee.gee[gee.gee.term.str.contains(":")], "{term}"), ax=axes[3], reference=0.0,
                   xlabel="interaction (log-odds)")
    plot.stack_measure(_wide(forgetting, "retained"), "retained", ax=axes[4],
                       label="share of SFT-installed train facts kept")
    plot.intervals(stats.results(orders[orders.measure == "d_accuracy"], "{order} vs {against}"), ax=axes[5],
                   reference=0.0, xlabel="Δ accuracy\n(reversed −\ncanonical)")
    if lora is not None:
        lora_sweep.draw(lora, axes[6:9])
    for ax, letter in zip(axes, "abcdefghi"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
