"""Figures of the reference world and its base model (notebook 00)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from ._base import PALETTE, TYPE_COLORS, TYPE_MARKERS, figure_axes, label_points, legend


def corpus_fit(table: pd.DataFrame, *, ax=None, annotate: dict | None = None):
    """Per fact: the model's probability of the true value against the corpus's rate of true statements.

    Parameters
    ----------
    table : `dint.analyses.reference.facts_table` output (``corpus_p_true``, ``p_true``, ``type``)
    annotate : optional {label: `dint.stats.Result`} printed in the upper left corner (e.g. correlations); the
        legend (facts per type in brackets) is above the panel
    """
    fig, ax = figure_axes(ax)
    for t in ("rare", "frequent", "contested"):
        g = table[table["type"] == t]
        ax.scatter(g["corpus_p_true"], g["p_true"], s=12 if t == "rare" else 18, alpha=0.35 if t == "rare" else 0.8,
                   color=TYPE_COLORS[t], marker=TYPE_MARKERS[t], label=f"{t} ({len(g)})", linewidths=0)
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--", label="model = corpus")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="corpus: share of true statements",
           ylabel="base model: P(true value)")
    legend(ax, above=True, ncols=2)   # above the panel: inside, it hid the frequent facts near the diagonal
    if annotate:
        text = "\n".join(f"{k}\n{r.statistic:.2f} [{r.confidence_interval.low:.2f}, {r.confidence_interval.high:.2f}]"
                         for k, r in annotate.items())   # narrow, in the corner no fact reaches
        ax.text(0.02, 0.98, text, transform=ax.transAxes, ha="left", va="top", fontsize=7)   # where no fact lies
    return fig


def by_mentions(summary: pd.DataFrame, *, ax=None):
    """Accuracy and normalised entropy (with intervals) by a fact's mention count in the corpus.

    Parameters
    ----------
    summary : `dint.analyses.reference.by_mentions` output: tidy rows ``mention_bin``, ``measure``
        (``accuracy``, ``entropy_norm``), ``estimate``, ``ci_low``, ``ci_high``, ``n``
    """
    fig, ax = figure_axes(ax)
    bins = list(dict.fromkeys(summary["mention_bin"]))
    x = np.arange(len(bins))
    for measure, color, marker, label in (("accuracy", PALETTE[0], "o", "accuracy (mode = truth)"),
                                          ("entropy_norm", PALETTE[1], "s", "entropy / log K")):
        g = summary[summary["measure"] == measure].set_index("mention_bin").reindex(bins)
        y = g["estimate"].to_numpy()
        err = np.vstack([y - g["ci_low"].to_numpy(), g["ci_high"].to_numpy() - y])
        ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(err), 0, None), color=color, marker=marker, capsize=2, lw=1, label=label)
    n = summary[summary["measure"] == "accuracy"].set_index("mention_bin")["n"].reindex(bins)
    ax.set_xticks(x, [f"{b}\n{k}" for b, k in zip(bins, n)], fontsize=7)
    ax.set(ylim=(-0.02, 1.02), xlabel="mentions of the fact in the corpus\n(below: facts in the bin)")
    legend(ax, above=True)
    return fig


def type_distribution(table: pd.DataFrame, *, ax=None, by: str = "type"):
    """Mass on the true value, on the misconception and the normalised entropy, by fact type (or by
    another column of the facts table, ``by``, e.g. ``"relation"``)."""
    fig, ax = figure_axes(ax)
    labels = {"p_true": "P(true value)", "p_misconception": "P(misconception)", "entropy_norm": "entropy / log K"}
    long = table[[by, *labels]].rename(columns=labels).melt(
        id_vars=by, var_name="measure", value_name="score").dropna()
    present = set(table[by])
    order = ([t for t in ("frequent", "rare", "unseen", "contested") if t in present] if by == "type"
             else sorted(present))
    sns.barplot(long, x=by, y="score", hue="measure", order=order, ax=ax, palette=PALETTE[:3],
                errorbar=("ci", 95), n_boot=1000, seed=0, err_kws={"linewidth": 1})
    ax.set(ylim=(0, 1.02), xlabel="fact type" if by == "type" else by, ylabel="")
    if by != "type":   # longer names (a real world's relations) would run into each other
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    legend(ax, above=True)   # inside, the legend hid the bars of the middle types
    return fig


def misconception_scatter(table: pd.DataFrame, *, ax=None, label: str = "entity"):
    """Per contested fact, the mass on its misconception against the mass on its true value.

    Parameters
    ----------
    table : a facts table (`dint.analyses.reference.facts_table`) with ``type``, ``p_true``,
        ``p_misconception`` and a ``label`` column naming each point (labels that would overlap another are left
        out)
    """
    fig, ax = figure_axes(ax)
    c = table[table["type"] == "contested"]
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=0.8)
    ax.scatter(c["p_true"], c["p_misconception"], s=14, color=TYPE_COLORS["contested"], marker=TYPE_MARKERS["contested"])
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="P(true value)", ylabel="P(misconception)")
    label_points(ax, c["p_true"], c["p_misconception"], c[label])   # crowded points go unlabelled
    return fig
