"""Costs and returns: reward against KL, best-of-n, baselines, accuracy per FLOP, stacks, frontiers."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd

from ._base import FAMILY_MARKERS, PALETTE, SPLIT_COLORS, figure_axes, legend


def reward_vs_kl(table: pd.DataFrame, *, x: str = "d", ax=None, hue: str | None = None, fits: dict | None = None):
    """Proxy and gold reward against d = sqrt(KL) (Gao et al.'s axes), with optional fitted curves.

    Parameters
    ----------
    table : rows with ``x``, ``proxy`` and ``gold`` (e.g. RL checkpoints or best-of-n sizes)
    hue : column whose values get separate markers (e.g. ``beta``)
    fits : {label: (callable d -> R, color)} curves drawn over the range of ``x``
    """
    fig, ax = figure_axes(ax)
    groups = [(None, table)] if hue is None else table.groupby(hue, sort=True)
    for i, (key, g) in enumerate(groups):
        g = g.sort_values(x)
        lab = "" if key is None else f" ({hue} {key:g})"
        ax.plot(g[x], g["proxy"], marker="o", ms=3, lw=0.8, color=PALETTE[0], alpha=0.4 + 0.6 * i / max(1, len(groups)),
                label=f"proxy{lab}" if i in (0, len(groups) - 1) else None)
        ax.plot(g[x], g["gold"], marker="s", ms=3, lw=0.8, color=PALETTE[3], alpha=0.4 + 0.6 * i / max(1, len(groups)),
                label=f"gold{lab}" if i in (0, len(groups) - 1) else None)
    if fits:
        d = np.linspace(max(1e-3, table[x].min()), table[x].max(), 200)
        for label, (f, color) in fits.items():
            ax.plot(d, f(d), color=color, lw=1.5, ls="--", label=label)
    ax.set_xlabel("d = √KL(policy ‖ start)")
    ax.set_ylabel("reward")
    legend(ax)
    return fig


def bon_kl(curve: pd.DataFrame, *, ax=None):
    """Exact KL of best-of-n against the bound log n − (n−1)/n."""
    fig, ax = figure_axes(ax)
    ax.plot(curve["n"], curve["kl_bound"], color="0.3", ls="--", label="log n − (n−1)/n")
    ax.errorbar(curve["n"], curve["kl"], yerr=[curve["kl"] - curve["kl_low"], curve["kl_high"] - curve["kl"]],
                fmt="o-", ms=3, lw=1, color=PALETTE[0], label="exact KL (mean over items)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="n", ylabel="KL(best-of-n ‖ base)")
    legend(ax)
    return fig


def baselines(table: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) of each model on train and held-out facts, base and sham first.

    Parameters
    ----------
    table : rows ``model``, ``split``, ``accuracy``, ``acc_low``, ``acc_high``
    """
    fig, ax = figure_axes(ax)
    names = list(dict.fromkeys(table["model"]))
    for j, split in enumerate(("train", "heldout")):
        g = table[table["split"] == split].set_index("model").reindex(names)
        x = np.arange(len(names)) + (j - 0.5) * 0.38
        ax.bar(x, g["accuracy"], width=0.36, color=SPLIT_COLORS[split], label=f"{split} facts",
               yerr=[g["accuracy"] - g["acc_low"], g["acc_high"] - g["accuracy"]], capsize=2,
               error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (QA form)")
    legend(ax)
    return fig


def accuracy_cost(summary: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) against inference tokens per question, per method and store.

    Parameters
    ----------
    summary : `dint.analyses.reasoning.by_method` rows with a ``store`` column
    """
    fig, ax = figure_axes(ax)
    markers = {"direct": "o", "chain": "s", "majority": "^", "verified": "D"}
    for i, (store, g) in enumerate(summary.groupby("store", sort=False)):
        for r in g.itertuples():
            ax.errorbar(r.tokens_per_question, r.accuracy, yerr=[[r.accuracy - r.accuracy_low], [r.accuracy_high - r.accuracy]],
                        fmt=markers.get(r.method, "o"), color=PALETTE[i], ms=5, capsize=2, lw=0.8,
                        label=f"{r.method} ({store})")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="inference tokens per question", ylabel="accuracy (abstention = wrong)")
    legend(ax)
    return fig


def additive(table: pd.DataFrame, *, ax=None, x: str = "additive", y: str = "accuracy"):
    """Each stack's measured value (with its interval) against the additive prediction from its steps.

    Parameters
    ----------
    table : one row per stack with ``stack``, ``n_steps``, ``x`` and ``y`` and ``{y}_low`` / ``{y}_high``
        (e.g. `dint.analyses.stacks.measures` merged with `dint.analyses.stacks.additivity`'s ``additive``)
    """
    fig, ax = figure_axes(ax)
    err = np.vstack([table[y] - table[f"{y}_low"], table[f"{y}_high"] - table[y]])
    colors = [PALETTE[int(k) % len(PALETTE)] for k in table["n_steps"]]
    ax.errorbar(table[x], table[y], yerr=np.clip(err, 0, None), fmt="none", ecolor="0.6", lw=0.8, capsize=2)
    ax.scatter(table[x], table[y], c=colors, s=22, zorder=3)
    for r in table.itertuples():
        ax.annotate(r.stack, (getattr(r, x), getattr(r, y)), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    lo = float(np.nanmin([table[x].min(), table[f"{y}_low"].min()]))
    hi = float(np.nanmax([table[x].max(), table[f"{y}_high"].max()]))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    for k in sorted(table["n_steps"].unique()):
        ax.scatter([], [], color=PALETTE[int(k) % len(PALETTE)], s=22, label=f"{k} step{'s' if k != 1 else ''}")
    legend(ax, loc="best")
    ax.set(xlabel=f"{y}, additive prediction", ylabel=f"{y}, measured")
    return fig


def stack_measure(table: pd.DataFrame, measure: str, *, ax=None, label: str | None = None):
    """One measure per stack with its interval (``{measure}_low`` / ``_high``), coloured by the number of steps."""
    fig, ax = figure_axes(ax, figsize=(4.2, 0.28 * len(table) + 1.0))
    y = np.arange(len(table))
    err = np.vstack([table[measure] - table[f"{measure}_low"], table[f"{measure}_high"] - table[measure]])
    steps = table["n_steps"] if "n_steps" in table else pd.Series(np.zeros(len(table), int))
    for k in sorted(steps.unique()):
        m = (steps == k).to_numpy()
        ax.errorbar(table[measure][m], y[m], xerr=np.clip(err[:, m], 0, None), fmt="o", ms=4, capsize=2, lw=1,
                    color=PALETTE[int(k) % len(PALETTE)], label=f"{k} step{'s' if k != 1 else ''}")
    ax.set_yticks(y, table["stack"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(label or measure)
    if steps.nunique() > 1:
        legend(ax, above=True)
    return fig


def frontiers(points: pd.DataFrame, *, ax=None, reference: float | None = None,
              reference_label: str = "reference", colors: dict | None = None):
    """Accuracy against total FLOPs (log axis), one colour per family: each family's Pareto frontier
    as a step line (the best accuracy it reaches within a budget) with intervals, the points off the
    frontier as faint markers; the legend counts each family's points.

    Parameters
    ----------
    points : `dint.analyses.resources.accuracy_cost` rows (``family``, ``accuracy``, ``ci_low``, ``ci_high``,
        ``total_flops``) with a boolean ``frontier`` column (`dint.analyses.resources.pareto`)
    reference : an optional accuracy drawn as a dashed horizontal line (e.g. the base rate 1/K)
    colors : {family: colour}; default the palette in first-seen order
    """
    fig, ax = figure_axes(ax, figsize=(5.6, 4.0))
    families = list(dict.fromkeys(points["family"]))
    colors = {f: (colors or {}).get(f, PALETTE[i % len(PALETTE)]) for i, f in enumerate(families)}
    for i, family in enumerate(families):
        g = points[points["family"] == family].sort_values("total_flops")
        c, marker = colors[family], FAMILY_MARKERS[i % len(FAMILY_MARKERS)]
        on = g["frontier"].astype(bool)
        ax.plot(g.loc[~on, "total_flops"], g.loc[~on, "accuracy"], marker, ms=3, color=c, alpha=0.35, ls="none")
        f = g[on]
        ax.errorbar(f["total_flops"], f["accuracy"], yerr=[f["accuracy"] - f["ci_low"], f["ci_high"] - f["accuracy"]],
                    fmt="none", lw=0.8, capsize=2, color=c, alpha=0.8)
        ax.plot(f["total_flops"], f["accuracy"], drawstyle="steps-post", color=c, lw=1.4, marker=marker, ms=4.5,
                label=f"{family} ({len(g)})")
    if reference is not None:
        ax.axhline(reference, color="0.35", lw=0.9, ls="--", label=reference_label)
    ax.set_xscale("log")
    ax.set(xlabel="total FLOPs (post-training + inference on the query set)",
           ylabel="accuracy (abstention = not correct)", ylim=(-0.02, 1.02))
    legend(ax, loc="upper left", width=40)
    return fig
