"""How interventions move answer distributions: shifts, transitions, token shift and answer positions, error classes,
pass@k."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns

from ._base import CLASS_COLORS, PALETTE, SPLIT_COLORS, figure_axes, legend

# Lin et al. (2023), URIAL, arXiv:2312.01552: base vs aligned token shift (shares of positions)
URIAL_SHARES = {"Llama-2-7b → chat": {"unshifted": 0.777, "marginal": 0.145, "shifted": 0.078},
                "Mistral-7b → Instruct": {"unshifted": 0.822, "marginal": 0.125, "shifted": 0.052}}


def shift_measure(summary: pd.DataFrame, measure: str, *, ax=None, xlabel: str | None = None,
                  reference: float | None = 0.0):
    """One measure of `dint.compare.summarize` per intervention and split, with intervals.

    Parameters
    ----------
    summary : ``summarize`` rows with an ``intervention`` and a ``split`` column
    measure : a value of its ``measure`` column, e.g. ``"kl"`` or ``"d_accuracy"``
    """
    fig, ax = figure_axes(ax)
    rows = summary[summary["measure"] == measure]
    names = list(dict.fromkeys(rows["intervention"]))
    splits = list(dict.fromkeys(rows["split"]))
    width = 0.8 / max(1, len(splits))
    for j, split in enumerate(splits):
        g = rows[rows["split"] == split].set_index("intervention").reindex(names)
        y = np.arange(len(names)) + (j - (len(splits) - 1) / 2) * width
        err = np.vstack([g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]])
        ax.errorbar(g["estimate"], y, xerr=err, fmt="o", ms=4, capsize=2, lw=1,
                    color=SPLIT_COLORS.get(split, PALETTE[j]), label=f"{split} facts")
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel or measure)
    legend(ax, above=True)   # above the panel: with one row per model, no place inside is free of data
    return fig


def transitions(summary: pd.DataFrame, *, ax=None):
    """Per intervention, the items whose top answer went right→wrong and wrong→right (shares)."""
    fig, ax = figure_axes(ax)
    rows = summary[summary["measure"] == "d_accuracy"]
    names = list(rows["intervention"])
    n = rows["n"].to_numpy(float)
    y = np.arange(len(names))
    ax.barh(y, rows["wrong_right"] / n, color=PALETTE[2], label="wrong → right")
    ax.barh(y, -rows["right_wrong"] / n, color=PALETTE[3], label="right → wrong")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("share of items")
    legend(ax, above=True)
    return fig


def token_shift(shares: pd.DataFrame, *, ax=None, reference: dict | None = None, prefix: str = ""):
    """Token-shift classes per model (stacked shares with intervals), beside published references.

    Parameters
    ----------
    shares : `dint.analyses.mechanism.token_shift` shares: tidy rows ``model``, ``measure`` (the classes
        ``prefix`` + unshifted / marginal / shifted are drawn; other measures, e.g. ``kl``, are left out),
        ``estimate``
    reference : {label: {class: share}} drawn as hatched bars (default: URIAL's)
    prefix : of the measures drawn: ``""`` every decoded position, ``"answer_"`` the answer tokens
    """
    fig, ax = figure_axes(ax)
    reference = URIAL_SHARES if reference is None else reference
    classes = ("unshifted", "marginal", "shifted")
    colors = dict(zip(classes, (PALETTE[0], PALETTE[8], PALETTE[3])))
    models = list(dict.fromkeys(shares.loc[shares["measure"].isin([prefix + c for c in classes]), "model"]))
    labels = models + list(reference)
    for i, label in enumerate(labels):
        left = 0.0
        for c in classes:
            if label in reference:
                v, hatch = reference[label][c], "//"
            else:
                row = shares[(shares["model"] == label) & (shares["measure"] == prefix + c)]["estimate"]
                v, hatch = float(np.nan_to_num(row.iloc[0])), None
            ax.barh(i, v, left=left, color=colors[c], hatch=hatch, edgecolor="white", lw=0.5,
                    label=c if i == 0 else None)
            left += v
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of answer tokens" if prefix == "answer_" else "share of greedy tokens")
    ax.legend(fontsize=7, frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.26))
    return fig


def answer_positions(shares: pd.DataFrame, *, ax=None):
    """Per model, the mean positions of a greedy output per item: answer tokens and tokens after the answer
    (stacked, with the answer's interval), and the share of outputs that stop right after the answer.

    Parameters
    ----------
    shares : `dint.analyses.mechanism.token_shift` shares: rows ``model``, ``measure`` (``answer_positions``,
        ``after_positions``, ``stop``), ``estimate``, ``ci_low``, ``ci_high``
    """
    fig, ax = figure_axes(ax)
    table = shares.pivot_table(index="model", columns="measure", values=["estimate", "ci_low", "ci_high"],
                               sort=False)
    models = [m for m in dict.fromkeys(shares["model"]) if m in table.index]
    y = np.arange(len(models))
    answer = table.loc[models, ("estimate", "answer_positions")].to_numpy(float)
    after = table.loc[models, ("estimate", "after_positions")].to_numpy(float)
    err = np.nan_to_num(np.vstack([answer - table.loc[models, ("ci_low", "answer_positions")].to_numpy(float),
                                   table.loc[models, ("ci_high", "answer_positions")].to_numpy(float) - answer]))
    ax.barh(y, answer, color=PALETTE[0], label="answer", xerr=err, error_kw={"lw": 0.8, "capsize": 2})
    ax.barh(y, after, left=answer, color=PALETTE[7], label="after the answer")
    right = np.fmax(answer + after, answer + err[1])
    for yi, x, stop in zip(y, right, table.loc[models, ("estimate", "stop")].to_numpy(float)):
        ax.text(x + 0.1, yi, f"stops {stop:.2f}", va="center", fontsize=7)
    ax.set_yticks(y, models)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.0, float(np.nanmax(right))) * 1.6)
    ax.set_xlabel("positions per item")
    ax.legend(fontsize=7, frameon=False, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.26))
    return fig


def error_composition(shares: pd.DataFrame, *, by: str = "intervention", ax=None, min_label: int = 8,
                      min_width: float = 0.07):
    """Stacked horizontal bars: each model's errors by class, with the counts written in.

    Parameters
    ----------
    shares : `dint.analyses.composition.class_shares` table (``by``, ``class``, ``count``)
    by : the column that names the model (one bar each, top to bottom in first-seen order)
    min_label : write a segment's count only when it is at least this
    min_width : and only when the segment is at least this share of the longest bar (narrower ones would overlap)
    """
    fig, ax = figure_axes(ax)
    models = list(dict.fromkeys(shares[by]))
    counts = shares.pivot_table(index=by, columns="class", values="count", aggfunc="sum", sort=False)
    counts = counts.reindex(index=models).fillna(0)
    classes = [c for c in CLASS_COLORS if c in counts.columns] + [c for c in counts.columns if c not in CLASS_COLORS]
    y = np.arange(len(models))[::-1]
    left = np.zeros(len(models))
    shortest = max(min_label, min_width * float(counts[classes].sum(axis=1).max()))
    for i, c in enumerate(classes):
        w = counts[c].to_numpy(float)
        ax.barh(y, w, left=left, color=CLASS_COLORS.get(c, PALETTE[i % len(PALETTE)]), label=c.replace("_", " "),
                edgecolor="white", lw=0.5)
        for yy, ll, ww in zip(y, left, w):
            if ww >= shortest:
                ax.text(ll + ww / 2, yy, f"{ww:.0f}", ha="center", va="center", fontsize=7)
        left += w
    ax.set_yticks(y, models, fontsize=8)
    ax.set(xlabel="errors (held-out items)")
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return fig


def confusion(table: pd.DataFrame, *, ax=None, cmap: str = "Blues", xlabel: str = "predicted class",
              ylabel: str = "known cause", drop_empty: bool = True):
    """Heatmap of a confusion matrix: counts written in, colour = the share of the row (recall on the diagonal).

    Parameters
    ----------
    table : `dint.agreement.AgreementResult.confusion` (a crosstab of counts, rows the known cause)
    drop_empty : leave out rows without any item (e.g. no error has the known cause "unclassified")
    """
    fig, ax = figure_axes(ax)
    if drop_empty:
        table = table[table.sum(axis=1) > 0]
    pretty = table.rename(index=lambda s: s.replace("_", " "), columns=lambda s: s.replace("_", " "))
    share = pretty.div(pretty.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    sns.heatmap(share, annot=pretty.to_numpy(), fmt=".0f", cmap=cmap, vmin=0, vmax=1, cbar=False, ax=ax,
                annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.tick_params(labelsize=7)
    return fig


def pass_curves(curve: pd.DataFrame, *, hue: str, ax=None, reference: pd.DataFrame | None = None,
                colors: dict | None = None):
    """Pass@k against k (log scale) per ``hue`` level, with interval bands.

    Parameters
    ----------
    curve : `dint.analyses.composition.pass_curve` table (``hue``, ``k``, ``estimate``, ``ci_low``, ``ci_high``;
        the rows of measure "pass" where it has a ``measure`` column)
    reference : an optional second `pass_curve` table with the same ``hue`` levels (e.g. a uniform
        guess, ``column="base_rate"``), drawn dashed in the same colours
    colors : {level: colour}; default the palette in first-seen order
    """
    fig, ax = figure_axes(ax)
    if "measure" in curve.columns:
        curve = curve[curve["measure"] == "pass"]
    levels = list(dict.fromkeys(curve[hue]))
    given = colors or {}
    free = iter(PALETTE[i % len(PALETTE)] for i in range(len(levels)))    # palette order for the others
    colors = {lev: given[lev] if lev in given else next(free) for lev in levels}
    for lev in levels:
        g = curve[curve[hue] == lev].sort_values("k")
        ax.plot(g["k"], g["estimate"], color=colors[lev], lw=1.3, label=str(lev).replace("_", " "))
        ax.fill_between(g["k"], g["ci_low"], g["ci_high"], color=colors[lev], alpha=0.2, lw=0)
        if reference is not None:
            r = reference[reference[hue] == lev].sort_values("k")
            ax.plot(r["k"], r["estimate"], color=colors[lev], lw=0.9, ls="--")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="k (samples, with replacement)", ylabel="pass@k", ylim=(0, 1.02))
    legend(ax, loc="best")
    return fig
