"""Does post-training install a fact? The analysis of notebook 08.

The other notebooks measure post-training on held-out facts, which no intervention sees. Here the facts an
intervention trains on are the object, and the two framings make predictions that can each come out:

- installation at convergence (`convergence`, `support`, `gaps`): SFT, DPO and RL trained on the train split
  along a budget grid towards a plateau of their training objective; truth installation predicts trained facts
  reach the truth whatever the corpus said, the distributional framing gains that track the base's support;
- propagation (`propagation`): the gain on trained facts in forms no training used (the statement form, a QA
  paraphrase, the reverse question of the mentor relation, two-hop questions through the trained fact)
  against the gain in the trained QA form, as knowledge-editing evaluations measure generalisation and
  portability;
- locality (`locality`): the change on facts not trained (held-out facts of entities with a trained fact, of
  entities without one) against the change on trained ones;
- forgetting (`forgetting`): RL after SFT, the decline on facts SFT installed minus the decline on facts SFT
  got right without training on them.

Every gain is a difference in differences: the change from the base on train facts minus the change on
held-out facts, in one prompt form. What training does to every fact alike, above all teaching the QA format
the base never saw in pretraining, cancels.

The grid and its scores are `dint.analyses.budgets` (`budgets.scores`, a cached artifact); `shifts` turns them into
one row per model and item, which every analysis here takes.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import compare, plot, stats
from ..stats import fits, intervals, proportions
from ..world import World
from . import mechanism
from .budgets import FACT_TYPES, FORMS, Grid, plateau, units

__all__ = ["shifts", "largest", "smallest", "convergence", "support", "support_bins", "gaps", "propagation", "entity_groups",
           "locality", "forgetting", "numbers", "CLAIMED", "claimed", "figure"]

# ------------------------------------------------------------------------------------------------ shifts
def shifts(grid: Grid, world: World) -> pd.DataFrame:
    """Per model and item, its shift from the base (`dint.compare.shift`) with what the item is about.

    Returns
    -------
    DataFrame ``model, intervention, budget``, `compare.shift`'s columns (``fact, form, kl, p_true_base, p_true_post,
    correct_base, correct_post``, ...), then `units`' ``split, type, relation, facts`` and ``support``: the base's
    probability of the truth in the statement form of the item's (first) fact.
    """
    s = grid.scores
    base = s[s["model"] == "base"].drop(columns=["model", "intervention", "budget"])
    info = units(world)
    base_items = compare.shift(base, base)
    support = base_items[base_items["form"] == "statement"].set_index("fact")["p_true_base"]
    info["support"] = [support.get(f[0], np.nan) if form != "reverse" else np.nan
                       for f, form in zip(info["facts"], info["form"])]
    frames = []
    models = grid.records[["model", "intervention", "budget"]]
    for m in models.itertuples():
        post = s[s["model"] == m.model].drop(columns=["model", "intervention", "budget"])
        frames.append(compare.shift(base[base["form"].isin(set(post["form"]))], post).assign(model=m.model, intervention=m.intervention, budget=m.budget))
    out = pd.concat(frames, ignore_index=True).merge(info, on=["form", "fact"], how="left", validate="many_to_one")
    out["d_p_true"] = out["p_true_post"] - out["p_true_base"]
    return out


def largest(records: pd.DataFrame) -> dict:
    """intervention -> its model at the largest budget of the grid."""
    r = records.sort_values("budget")
    return {m: g["model"].iloc[-1] for m, g in r.groupby("intervention")}


def smallest(records: pd.DataFrame) -> dict:
    """intervention -> its model at the smallest budget of the grid."""
    r = records.sort_values("budget")
    return {m: g["model"].iloc[0] for m, g in r.groupby("intervention")}


# ------------------------------------------------------------------------------------------------ installation
def convergence(items: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (Wilson interval) and mean probability of the truth of every model, by form (qa, statement), split
    and fact type (and over every type, ``type`` "all"), beside the base's.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, type, measure`` (``accuracy``, ``p_true``,
    ``accuracy_base``) and `dint.stats.ROW`.
    """
    rows = []
    f = items[items["form"].isin(["qa", "statement"])]
    f = pd.concat([f, f.assign(type="all")], ignore_index=True)
    for (model, intervention, budget, form, split, ftype), g in f.groupby(["model", "intervention", "budget", "form", "split", "type"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form, split=split, type=ftype)
        for measure, col in (("accuracy", "correct_post"), ("accuracy_base", "correct_base")):
            k = int(g[col].sum())
            rows.append(stats.proportion(k, len(g)).row(**labels, measure=measure))
        p = g["p_true_post"].to_numpy(float)
        if len(p) > 1:
            rows.append(stats.bootstrap_mean(p, n_resamples=500, rng=0).row(**labels, measure="p_true"))
    return pd.DataFrame(rows)


def support(items: pd.DataFrame, *, form: str = "qa", split: str = "train") -> pd.DataFrame:
    """The support dependence of every model: the OLS slope (HC3 interval) of its probability of the truth on the
    base's statement-form probability of the truth, over the facts of ``split`` in ``form``.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, measure`` (``support_slope``) and `dint.stats.ROW`.
    """
    rows = []
    f = items[(items["form"] == form) & (items["split"] == split)]
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        r = fits.slope(g["support"].to_numpy(float), g["p_true_post"].to_numpy(float))
        rows.append(r.row(model=model, intervention=intervention, budget=budget, form=form, split=split, measure="support_slope"))
    return pd.DataFrame(rows)


def support_bins(items: pd.DataFrame, models, *, bins: int = 5, form: str = "qa", split: str = "train",
                 n_resamples: int = 2000, rng=0) -> pd.DataFrame:
    """The mean probability of the truth of each of ``models`` on the facts of ``split`` in ``form``, in ``bins`` equal
    bins of the base's support (its statement-form probability of the truth), with bootstrap intervals.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, support`` (the bin's middle) and `dint.stats.ROW`.
    """
    edges = np.linspace(0, 1, bins + 1)
    f = items[items["model"].isin(list(models)) & (items["form"] == form) & (items["split"] == split)]
    f = f.assign(bin=np.clip(np.digitize(f["support"], edges[1:-1]), 0, bins - 1))
    rows = []
    for (model, intervention, budget, b), g in f.groupby(["model", "intervention", "budget", "bin"], sort=False):
        if len(g) < 2:
            continue
        rows.append(stats.bootstrap_mean(g["p_true_post"].to_numpy(float), n_resamples=n_resamples, rng=rng).row(
            model=model, intervention=intervention, budget=budget, support=float((edges[b] + edges[b + 1]) / 2)))
    return pd.DataFrame(rows).sort_values(["model", "support"], ignore_index=True)


def gaps(items: pd.DataFrame, *, form: str = "qa", split: str = "train") -> pd.DataFrame:
    """Accuracy on never-stated and on contested facts minus accuracy on frequent facts, of ``split`` in ``form``,
    per model (difference of two proportions, Newcombe interval and z-test).

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, measure`` (``unseen_gap``, ``contested_gap``) and
    `dint.stats.ROW`.
    """
    rows = []
    f = items[(items["form"] == form) & (items["split"] == split)]
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        frequent = g.loc[g["type"] == "frequent", "correct_post"]
        for ftype in ("unseen", "contested"):
            other = g.loc[g["type"] == ftype, "correct_post"]
            if len(other) and len(frequent):
                r = proportions.diff_proportions(int(other.sum()), len(other), int(frequent.sum()), len(frequent))
                rows.append(r.row(model=model, intervention=intervention, budget=budget, form=form, split=split,
                                  measure=f"{ftype}_gap"))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ propagation
def _trained_change(items: pd.DataFrame) -> pd.Series:
    """(model, fact) -> the change of the probability of the truth in the trained QA form."""
    qa = items[items["form"] == "qa"]
    return qa.set_index(["model", "fact"])["d_p_true"]


def propagation(items: pd.DataFrame) -> pd.DataFrame:
    """The installation effect of every model in each form, and in each untrained form the difference from the
    trained form's effect on the same items.

    The installation effect in a form is the mean change of the probability of the truth on train items minus that
    on held-out items (Welch). For an untrained form, each item's change minus the trained QA change of the facts
    it rests on (itself; a two-hop question's first hop; a reverse question's mentee facts, averaged) gives the
    difference (``propagation``, Welch on train minus held-out items): 0 when the form gains as the trained
    one does, the whole trained effect below 0 when it gains nothing. The ratio of the two effects is given only
    where the trained form's effect on those items has an interval that excludes 0.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, measure`` (``effect``: the form's installation effect;
    ``trained_effect``: the QA form's on the same items; ``propagation``: their difference; ``ratio``) and
    `dint.stats.ROW`.
    """
    trained = _trained_change(items)
    rows = []
    for (model, intervention, budget), g in items.groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget)
        t = trained.loc[model]
        for form in FORMS:
            f = g[(g["form"] == form) & g["split"].isin(["train", "heldout"])]
            if f.empty:
                continue
            train = (f["split"] == "train").to_numpy()
            b = f["d_p_true"].to_numpy(float)
            if train.sum() < 2 or (~train).sum() < 2:
                continue
            effect = intervals.welch(b[train], b[~train])
            rows.append(effect.row(**labels, form=form, measure="effect"))
            if form == "qa":
                continue
            a = np.array([t.reindex(list(fs)).mean() for fs in f["facts"]])
            base_effect = intervals.welch(a[train], a[~train])
            rows.append(base_effect.row(**labels, form=form, measure="trained_effect"))
            rows.append(intervals.welch((b - a)[train], (b - a)[~train]).row(**labels, form=form, measure="propagation"))
            low, high = base_effect.confidence_interval.low, base_effect.confidence_interval.high
            ratio = effect.statistic / base_effect.statistic if (low > 0 or high < 0) else float("nan")
            rows.append({**labels, "form": form, "measure": "ratio", "estimate": ratio, "n": effect.n,
                         "method": "ratio of the two installation effects (no interval)",
                         "reason": "" if np.isfinite(ratio) else "the trained form's effect has an interval containing 0"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ locality
def entity_groups(world: World) -> pd.Series:
    """fact -> ``train``, ``heldout, same entity`` (a held-out fact of an entity with a train fact) or ``heldout,
    other entity`` (of an entity none of whose facts is trained)."""
    f = world.facts
    trained = set(f.loc[f["split"] == "train", "entity"])
    group = np.where(f["split"] == "train", "train",
                     np.where(f["entity"].isin(trained), "heldout, same entity", "heldout, other entity"))
    return pd.Series(group, index=f["fact"].to_numpy(), name="group")


def locality(items: pd.DataFrame, world: World, *, form: str = "statement", n_resamples: int = 2000, rng=0) -> pd.DataFrame:
    """Where each model's change falls, in ``form``: the ratio of its mean KL from the base on held-out facts to that
    on train facts (`mechanism.locality`), and per group of `entity_groups` the mean KL (bootstrap interval) and the
    accuracy change (paired, McNemar).

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, group, measure`` (``locality``, ``kl``, ``d_accuracy``) and
    `dint.stats.ROW`.
    """
    groups = entity_groups(world)
    f = items[items["form"] == form]
    rows = []
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form)
        local = mechanism.locality({model: g}, form=form, n_resamples=n_resamples, rng=rng)
        for r in local.to_dict("records"):
            rows.append({**labels, "group": "heldout / train", "measure": "locality",
                         **{k: r[k] for k in stats.ROW}})
        gg = g.assign(group=groups.reindex(g["fact"]).to_numpy())
        for group, h in gg.groupby("group"):
            if len(h) < 2:
                continue
            rows.append(stats.bootstrap_mean(h["kl"].to_numpy(float), n_resamples=n_resamples, rng=rng)
                        .row(**labels, group=group, measure="kl"))
            rows.append(proportions.mcnemar(h["correct_base"].to_numpy(bool), h["correct_post"].to_numpy(bool))
                        .row(**labels, group=group, measure="d_accuracy"))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ forgetting
def forgetting(items: pd.DataFrame, start: str, *, form: str = "qa") -> pd.DataFrame:
    """RL after SFT: among facts the SFT model ``start`` answers right and the base does not, the share each RL model
    gets wrong on train facts (installed) minus the share on held-out facts (right without training), within fact
    types (`dint.stats.proportions.stratified_difference`), and the two shares.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, measure`` (``forgetting_did``, ``decline_train``,
    ``decline_heldout``) and `dint.stats.ROW`.
    """
    f = items[items["form"] == form]
    s = f[f["model"] == start].set_index("fact")
    right = s.index[s["correct_post"].to_numpy(bool) & ~s["correct_base"].to_numpy(bool)]
    rows = []
    for (model, intervention, budget), g in f[f["intervention"] == "rl"].groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form)
        h = g[g["fact"].isin(right)]
        declined = ~h["correct_post"].to_numpy(bool)
        train = (h["split"] == "train").to_numpy()
        k1, n1, k2, n2 = [], [], [], []
        for ftype in FACT_TYPES:
            t = (h["type"] == ftype).to_numpy()
            k1.append(int((declined & train & t).sum()))
            n1.append(int((train & t).sum()))
            k2.append(int((declined & ~train & t).sum()))
            n2.append(int((~train & t).sum()))
        rows.append(proportions.stratified_difference(k1, n1, k2, n2).row(**labels, measure="forgetting_did"))
        for name, mask in (("decline_train", train), ("decline_heldout", ~train)):
            if mask.any():
                rows.append(stats.proportion(int(declined[mask].sum()), int(mask.sum())).row(**labels, measure=name))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ numbers
def _pick(table: pd.DataFrame, model: str, **where) -> dict | None:
    t = table[table["model"] == model]
    for k, v in where.items():
        t = t[t[k] == v]
    if len(t) != 1:
        return None
    return stats.Result.from_row(t.iloc[0]).asdict()


def _missing(reason: str) -> dict:
    return stats.Result.not_estimable(reason).asdict()


def numbers(records: pd.DataFrame, conv: pd.DataFrame, slopes: pd.DataFrame, gap: pd.DataFrame, prop: pd.DataFrame,
            local: pd.DataFrame, forget: pd.DataFrame) -> dict:
    """The numbers the paper and the claims quote, for each method at its largest budget (``<method>_…``) and at its
    smallest (``<method>_first_…``): ``support_slope``, ``unseen_gap``, ``contested_gap``, ``train_accuracy`` and
    ``heldout_accuracy`` (QA), ``statement_train_accuracy``, ``effect_<form>``, ``propagation_<form>``,
    ``locality``, ``kl_<group>`` and ``d_accuracy_<group>`` in the statement form (``train``, ``same_entity``: held-out
    facts of entities with a train fact, ``other_entity``: of entities without one); for RL ``forgetting_did``, ``decline_train``, ``decline_heldout``; and each method's ``budget``,
    ``objective`` (the training loss, RL's proxy reward, at the largest budget) and ``objective_change`` (its
    relative change over the last 20% of that run's curve, `plateau`)."""
    out = {}
    for which, pick in (("", largest(records)), ("_first", smallest(records))):
        for method, model in pick.items():
            p = f"{method}{which}_"
            out[p + "support_slope"] = _pick(slopes, model)
            out[p + "unseen_gap"] = _pick(gap, model, measure="unseen_gap")
            out[p + "contested_gap"] = _pick(gap, model, measure="contested_gap")
            for split in ("train", "heldout"):
                out[p + f"{split}_accuracy"] = _pick(conv, model, form="qa", split=split, type="all", measure="accuracy")
            out[p + "statement_train_accuracy"] = _pick(conv, model, form="statement", split="train", type="all",
                                                        measure="accuracy")
            for form in FORMS:
                out[p + f"effect_{form}"] = _pick(prop, model, form=form, measure="effect")
                if form != "qa":
                    out[p + f"propagation_{form}"] = _pick(prop, model, form=form, measure="propagation")
            out[p + "locality"] = _pick(local, model, measure="locality")
            for group, key in (("train", "train"), ("heldout, same entity", "same_entity"),
                               ("heldout, other entity", "other_entity")):
                for measure in ("kl", "d_accuracy"):   # a group of fewer than 2 facts (a small world) is not estimable
                    out[p + f"{measure}_{key}"] = _pick(local, model, measure=measure, group=group) or _missing(
                        f"fewer than 2 facts in the group {group!r}")
            if method == "rl":
                for m in ("forgetting_did", "decline_train", "decline_heldout"):
                    out[p + m] = _pick(forget, model, measure=m)
    for method, g in records.sort_values("budget").groupby("intervention"):
        out[f"{method}_budget"] = int(g["budget"].iloc[-1])
        out[f"{method}_objective"] = float(g["objective"].iloc[-1])
        out[f"{method}_objective_change"] = plateau(json.loads(g["curve"].iloc[-1]))
    return {k: v for k, v in out.items() if v is not None}


# the numbers paper/claims.yaml judges (its section 08)
CLAIMED = ("sft_support_slope", "sft_unseen_gap", "sft_contested_gap", *(f"sft_propagation_{f}" for f in FORMS[1:]),
           "sft_locality", "rl_forgetting_did")


def claimed(numbers: dict) -> pd.DataFrame:
    """The numbers the registry judges (`CLAIMED`), as a table to show: ``estimate, ci_low, ci_high, pvalue, n``."""
    rows = {k: {c: numbers[k].get(c) for c in ("estimate", "ci_low", "ci_high", "pvalue", "n")}
            for k in CLAIMED if isinstance(numbers.get(k), dict)}
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------------------ figure
METHOD_COLORS = {"sft": plot.PALETTE[0], "dpo": plot.PALETTE[1], "rl": plot.PALETTE[2]}
FORM_LABELS = {"qa": "QA (trained)", "statement": "statement", "paraphrase": "paraphrase", "reverse": "reverse",
               "twohop": "two-hop"}


def figure(conv: pd.DataFrame, bins: pd.DataFrame, prop: pd.DataFrame, local: pd.DataFrame, records: pd.DataFrame):
    """The notebook's figure, four panels: (a) SFT's accuracy on train facts (QA) by fact type along its budget
    (`convergence`), held-out facts dotted; (b) the probability of the truth on train facts (QA) at each method's
    largest budget against the base's support (`support_bins`); (c) the installation effect in each form at the
    largest budgets (`propagation`); (d) the locality ratio along each method's budget (`locality`)."""
    fig, axes = plot.panels(4, ncols=2, row_height=2.3)
    a, b, c, d = axes
    sft = conv[(conv["intervention"] == "sft") & (conv["form"] == "qa") & (conv["measure"] == "accuracy")]
    for ftype in FACT_TYPES:
        for split, style in (("train", "-"), ("heldout", ":")):
            g = sft[(sft["type"] == ftype) & (sft["split"] == split)].sort_values("budget")
            if g.empty:
                continue
            a.plot(g["budget"], g["estimate"], style, marker=plot.TYPE_MARKERS[ftype], color=plot.TYPE_COLORS[ftype],
                   label=ftype if split == "train" else None)
    a.set_xscale("log")
    epochs = sorted(sft["budget"].unique())
    a.set_xticks(epochs, [str(e) for e in epochs])
    a.minorticks_off()
    a.set_xlabel("SFT epochs")
    a.set_ylabel("accuracy, QA (train: solid)")
    a.set_ylim(-0.02, 1.02)
    plot.legend(a, above=True, ncols=4)

    ends = largest(records)
    for model, g in bins.groupby("model", sort=False):
        b.errorbar(g["support"], g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                   marker="o", capsize=2, color=METHOD_COLORS[g["intervention"].iloc[0]], label=model)
    b.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    b.set_xlabel("base P(true), statement form")
    b.set_ylabel("P(true) after, train facts, QA")
    b.set_ylim(-0.02, 1.02)
    plot.legend(b)

    p = prop[prop["model"].isin(ends.values()) & (prop["measure"] == "effect")]
    x = np.arange(len(FORMS))
    width = 0.8 / max(1, len(ends))
    for i, (method, model) in enumerate(ends.items()):
        g = p[p["model"] == model].set_index("form").reindex(list(FORMS))
        c.errorbar(x + (i - (len(ends) - 1) / 2) * width, g["estimate"],
                   yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]], fmt="o", capsize=2,
                   color=METHOD_COLORS[method], label=model)
    c.axhline(0, color="0.6", lw=0.8)
    c.set_xticks(x, [FORM_LABELS[f] for f in FORMS], rotation=20)
    c.set_ylabel("installation effect, ΔP(true)\ntrain − held-out")
    plot.legend(c)

    loc = local[local["measure"] == "locality"]
    for method, g in loc.groupby("intervention"):
        g = g.sort_values("budget")
        d.errorbar(g["budget"], g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                   marker="o", capsize=2, color=METHOD_COLORS[method], label=method)
    d.axhline(1, color="0.6", lw=0.8, ls="--")
    d.axhline(0.25, color="0.6", lw=0.8, ls=":")
    d.set_xscale("log")
    d.set_xlabel("budget (epochs; RL: steps)")
    d.set_ylabel("KL held-out / KL train\nstatement form")
    plot.legend(d)
    for ax, letter in zip(axes, "abcd"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
