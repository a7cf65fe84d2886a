"""Costs and returns: reward against KL, best-of-n, baselines, accuracy per FLOP, stacks, frontiers."""
from __future__ import annotations

import matplotlib
import matplotlib.lines
import numpy as np
import pandas as pd

from ._base import FAMILY_MARKERS, PALETTE, SPLIT_COLORS, figure_axes, label_points, legend


def reward_vs_kl(table: pd.DataFrame, *, x: str = "d", ax=None, hue: str | None = None, fits: dict | None = None):
    """Proxy and gold reward against d = sqrt(KL) (Gao et al.'s axes), with optional fitted curves.

    Parameters
    ----------
    table : tidy rows with ``x``, ``measure`` ("proxy", "gold") and ``estimate`` (e.g. RL checkpoints, or
        `dint.analyses.engineering_clues.best_of_n`'s curve)
    hue : column whose values are drawn apart (e.g. ``beta``): shaded by value, or, where the table holds one
        measure, each in its own colour (``PALETTE[i]``, the values in ascending order)
    fits : {label: (callable d -> R, color)} curves drawn over the range of ``x`` (not where the curve is all NaN)
    """
    fig, ax = figure_axes(ax)
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=True))
    styles = [s for s in (("proxy", "o", PALETTE[0]), ("gold", "s", PALETTE[3])) if (table["measure"] == s[0]).any()]
    by_hue = hue is not None and len(styles) == 1   # one measure: each value of ``hue`` in its own colour
    for i, (key, g) in enumerate(groups):
        lab = "" if key is None else f" ({hue} {key:g})"
        for measure, marker, color in styles:
            m = g[g["measure"] == measure].sort_values(x)
            if by_hue:
                ax.plot(m[x], m["estimate"], marker=marker, ms=3, lw=0.8, color=PALETTE[i % len(PALETTE)],
                        label=f"{hue} {key:g}")
                continue
            ax.plot(m[x], m["estimate"], marker=marker, ms=3, lw=0.8, color=color,
                    alpha=0.4 + 0.6 * i / max(1, len(groups)),
                    label=f"{measure}{lab}" if i in (0, len(groups) - 1) else None)
    if fits:
        d = np.linspace(max(1e-3, table[x].min()), table[x].max(), 200)
        for label, (f, color) in fits.items():
            y = np.asarray(f(d), float)
            if np.isfinite(y).any():   # a fit that could not be made (too few checkpoints) is neither drawn nor listed
                ax.plot(d, y, color=color, lw=1.5, ls="--", label=label)
    ax.set_xlabel("d = √KL(policy ‖ start)")
    ax.set_ylabel("reward")
    legend(ax, above=len(ax.get_legend_handles_labels()[1]) > 4)   # many entries: above, where they hide no curve
    return fig


def bon_kl(curve: pd.DataFrame, *, ax=None):
    """Exact KL of best-of-n against the bound log n − (n−1)/n.

    Parameters
    ----------
    curve : tidy rows ``best_of``, ``kl_bound``, ``measure``, ``estimate``, ``ci_low``, ``ci_high``
        (`dint.analyses.engineering_clues.best_of_n`'s curve); the rows of measure ``kl`` are drawn
    """
    fig, ax = figure_axes(ax)
    curve = curve[curve["measure"] == "kl"]
    ax.plot(curve["best_of"], curve["kl_bound"], color="0.3", ls="--", label="log n − (n−1)/n")
    ax.errorbar(curve["best_of"], curve["estimate"],
                yerr=[curve["estimate"] - curve["ci_low"], curve["ci_high"] - curve["estimate"]],
                fmt="o-", ms=3, lw=1, color=PALETTE[0], label="exact KL (mean over items)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="n", ylabel="KL(best-of-n ‖ base)")
    legend(ax)
    return fig


def baselines(table: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) of each model on train and held-out facts, base and sham first.

    Parameters
    ----------
    table : tidy rows ``model``, ``split``, ``measure``, ``estimate``, ``ci_low``, ``ci_high``; the rows of
        measure ``accuracy`` are drawn
    """
    fig, ax = figure_axes(ax)
    table = table[table["measure"] == "accuracy"]
    names = list(dict.fromkeys(table["model"]))
    for j, split in enumerate(("train", "heldout")):
        g = table[table["split"] == split].set_index("model").reindex(names)
        x = np.arange(len(names)) + (j - 0.5) * 0.38
        ax.bar(x, g["estimate"], width=0.36, color=SPLIT_COLORS[split], label=f"{split} facts",
               yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]], capsize=2,
               error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (QA form)")
    legend(ax, above=True)   # inside, it hid the bars of the middle models
    return fig


def accuracy_cost(summary: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) against inference tokens per question, per method and store.

    Parameters
    ----------
    summary : `dint.analyses.reasoning.by_method` rows (``strategy``, ``measure``, ``estimate``, ``ci_low``,
        ``ci_high``, ``tokens_per_question``) with a ``store`` column; the rows of measure ``accuracy`` are drawn
    """
    fig, ax = figure_axes(ax)
    markers = {"direct": "o", "chain": "s", "majority": "^", "verified": "D"}
    for i, (store, g) in enumerate(summary[summary["measure"] == "accuracy"].groupby("store", sort=False)):
        for r in g.itertuples():
            ax.errorbar(r.tokens_per_question, r.estimate, yerr=[[r.estimate - r.ci_low], [r.ci_high - r.estimate]],
                        fmt=markers.get(r.strategy, "o"), color=PALETTE[i], ms=5, capsize=2, lw=0.8,
                        label=f"{r.strategy} ({store})")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="inference tokens per question", ylabel="accuracy (abstention = wrong)")
    # one legend entry per strategy (marker) and per store (colour), above the panel, where it hides no point
    stores = list(dict.fromkeys(summary.loc[summary["measure"] == "accuracy", "store"]))
    strategies = list(dict.fromkeys(summary.loc[summary["measure"] == "accuracy", "strategy"]))
    handles = ([matplotlib.lines.Line2D([], [], ls="", marker=markers.get(s, "o"), color="0.3", ms=5) for s in strategies]
               + [matplotlib.lines.Line2D([], [], ls="", marker="s", color=PALETTE[i], ms=5) for i in range(len(stores))])
    ax.legend(handles, strategies + [f"store: {s}" for s in stores], fontsize=7, frameon=False, loc="lower right",
              bbox_to_anchor=(1.0, 1.07), ncols=2, columnspacing=0.8, handlelength=1.2)
    return fig


def additive(table: pd.DataFrame, *, ax=None, x: str = "additive", measure: str = "accuracy"):
    """Each stack's measured value (with its interval) against the additive prediction from its steps.

    Parameters
    ----------
    table : tidy rows, one per stack: ``stack``, ``n_steps``, the measured ``estimate`` with ``ci_low`` /
        ``ci_high``, and the prediction ``x`` (e.g. `dint.analyses.compound_failure.prediction`)
    measure : what is measured, for the axis labels
    """
    fig, ax = figure_axes(ax)
    y = table["estimate"]
    err = np.vstack([y - table["ci_low"], table["ci_high"] - y])
    colors = [PALETTE[int(k) % len(PALETTE)] for k in table["n_steps"]]
    ax.errorbar(table[x], y, yerr=np.clip(err, 0, None), fmt="none", ecolor="0.6", lw=0.8, capsize=2)
    ax.scatter(table[x], y, c=colors, s=22, zorder=3)
    lo = float(np.nanmin([table[x].min(), table["ci_low"].min()]))
    hi = float(np.nanmax([table[x].max(), table["ci_high"].max()]))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    crowded = label_points(ax, table[x], y, table["stack"])
    if crowded:   # a cluster of stacks too close to label one by one
        ax.text(0.03, 0.97, f"unlabelled: {len(crowded)} stacks", transform=ax.transAxes, ha="left", va="top",
                fontsize=7, color="0.35")
    for k in sorted(table["n_steps"].unique()):
        ax.scatter([], [], color=PALETTE[int(k) % len(PALETTE)], s=22, label=f"{k} step{'s' if k != 1 else ''}")
    legend(ax, above=True)
    ax.set(xlabel=f"{measure}, additive prediction", ylabel=f"{measure}, measured")
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
    points : `dint.analyses.flops.accuracy_cost` rows (``family``, the accuracy as ``estimate`` with ``ci_low``,
        ``ci_high``, and ``total_flops``) with a boolean ``frontier`` column (`dint.analyses.flops.pareto`)
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
        ax.plot(g.loc[~on, "total_flops"], g.loc[~on, "estimate"], marker, ms=3, color=c, alpha=0.35, ls="none")
        f = g[on]
        ax.errorbar(f["total_flops"], f["estimate"], yerr=[f["estimate"] - f["ci_low"], f["ci_high"] - f["estimate"]],
                    fmt="none", lw=0.8, capsize=2, color=c, alpha=0.8)
        ax.plot(f["total_flops"], f["estimate"], drawstyle="steps-post", color=c, lw=1.4, marker=marker, ms=4.5,
                label=f"{family} ({len(g)})")
    if reference is not None:
        ax.axhline(reference, color="0.35", lw=0.9, ls="--", label=reference_label)
    ax.set_xscale("log")
    ax.set(xlabel="total FLOPs (training + inference, all queries)",
           ylabel="accuracy (abstention = not correct)", ylim=(-0.02, 1.02))
    legend(ax, loc="upper left", width=40)
    return fig


def equal_flops(curves: pd.DataFrame, *, ax=None, queries: float | None = None, colors: dict | None = None):
    """Each arm's accuracy minus the training frontier's at equal FLOPs per query, against the deployed
    queries the one-time FLOPs are amortised over (log axis), with its band; the information-parity arms
    solid, the oracle arms (upper bounds) dashed; zero marks where they cost the same for equal accuracy.

    Parameters
    ----------
    curves : `dint.analyses.parity.Parity.curves` rows (``arm``, ``information``, ``log10_queries``,
        ``estimate``, ``ci_low``, ``ci_high``)
    queries : the registered number of deployed queries, marked by a vertical line
    colors : {arm: colour}; default the palette in first-seen order
    """
    fig, ax = figure_axes(ax, figsize=(5.0, 3.6))
    arms = list(dict.fromkeys(curves["arm"]))
    colors = {a: (colors or {}).get(a, PALETTE[i % len(PALETTE)]) for i, a in enumerate(arms)}
    for arm in arms:
        g = curves[curves["arm"] == arm].sort_values("log10_queries")
        x = 10.0 ** g["log10_queries"].to_numpy(float)
        oracle = (g["information"] == "oracle").any()
        ax.fill_between(x, g["ci_low"], g["ci_high"], color=colors[arm], alpha=0.15, lw=0)
        ax.plot(x, g["estimate"], color=colors[arm], lw=1.4, ls="--" if oracle else "-",
                label=f"{arm}{' (upper bound)' if oracle else ''}")
    ax.axhline(0.0, color="0.35", lw=0.8)
    if queries is not None:
        ax.axvline(queries, color="0.35", lw=0.8, ls=":", label=f"registered: {queries:,.0f} queries")
    ax.set_xscale("log")
    ax.set(xlabel="deployed queries (one-time FLOPs amortised over them)",
           ylabel="accuracy − training frontier\nat equal FLOPs per query")
    legend(ax, width=34)
    return fig


def answer_risk(table: pd.DataFrame, *, alpha: float | None = None, ax=None):
    """A selective policy's realised P(returned and wrong) and its coverage per draw budget, means over random
    calibration splits with their intervals, against the target ``alpha``.

    Parameters
    ----------
    table : `dint.analyses.answer_risk.splits` rows (``budget``, ``measure``, ``estimate``, ``ci_low``,
        ``ci_high``); the rows of measures ``error`` and ``coverage`` are drawn
    """
    fig, ax = figure_axes(ax)
    for i, (measure, label) in enumerate((("error", "P(returned and wrong)"), ("coverage", "coverage"))):
        g = table[table["measure"] == measure].sort_values("budget")
        ax.errorbar(g["budget"], g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                    fmt="o-", ms=3, lw=1, capsize=2, color=PALETTE[i], label=label)
    if alpha is not None:
        ax.axhline(alpha, color="0.35", lw=0.9, ls="--", label=f"α = {alpha:g}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="draws at most (B)", ylabel="mean over calibration splits", ylim=(-0.02, 1.02))
    legend(ax)
    return fig
