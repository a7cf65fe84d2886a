"""Estimates with intervals: one row per estimate, per model or per model and measure."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import PALETTE, figure_axes, label_points, legend


def intervals(results: dict, *, ax=None, reference: float | None = None, xlabel: str = "estimate"):
    """Forest plot: one row per named result (`dint.stats.Result`), its estimate and interval.

    Parameters
    ----------
    results : {label: Result}, drawn top to bottom in insertion order; one whose estimate is NaN (not
        estimable) keeps its row, labelled so
    reference : optional value drawn as a vertical line (e.g. 0 for a difference)
    """
    fig, ax = figure_axes(ax, figsize=(4.2, 0.35 * len(results) + 1.0))
    labels = list(results)
    y = np.arange(len(labels))[::-1]
    est = np.array([results[k].statistic for k in labels], float)
    low = np.array([results[k].confidence_interval.low for k in labels])
    high = np.array([results[k].confidence_interval.high for k in labels])
    err = np.clip(np.nan_to_num(np.vstack([est - low, high - est])), 0, None)
    ax.errorbar(est, y, xerr=err, fmt="o", color=PALETTE[0], capsize=2, lw=1)
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{k} (not estimable)" if np.isnan(e) else k for k, e in zip(labels, est)], fontsize=8)
    ax.set(xlabel=xlabel)
    return fig


def forest(table: pd.DataFrame, *, y: str = "label", hue: str | None = None, ax=None,
           reference: float | None = 0.0, xlabel: str = "estimate"):
    """Forest plot of a tidy table: one row per ``y``, one marker per ``hue`` level, with intervals.

    Parameters
    ----------
    table : ``y``, optional ``hue``, ``estimate``, ``ci_low``, ``ci_high``
    reference : a value drawn as a vertical line, or None
    """
    rows = list(dict.fromkeys(table[y]))
    fig, ax = figure_axes(ax, figsize=(4.2, 0.35 * len(rows) + 1.0))
    levels = [None] if hue is None else list(dict.fromkeys(table[hue]))
    step = 0.6 / max(len(levels), 1)
    pos = dict(zip(rows, np.arange(len(rows))[::-1]))
    for i, lev in enumerate(levels):
        g = table if lev is None else table[table[hue] == lev]
        yy = np.array([pos[r] for r in g[y]]) + (len(levels) - 1) * step / 2 - i * step
        est = g["estimate"].to_numpy(float)
        err = np.clip(np.nan_to_num(np.vstack([est - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - est])),
                      0, None)
        ax.errorbar(est, yy, xerr=err, fmt="o", color=PALETTE[i], capsize=2, lw=1, ms=4,
                    label=None if lev is None else str(lev))
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, ls="--")
    ax.set_yticks(list(pos.values()), list(pos), fontsize=8)
    ax.set(xlabel=xlabel)
    if hue is not None:
        legend(ax, above=True)   # above the rows: none hidden
    return fig


def model_intervals(table: pd.DataFrame, *, ax=None, series: str = "measure", labels: dict | None = None,
                    references: dict | None = None, xlabel: str = "estimate", log: bool = False):
    """Estimates with intervals, one row per model and one dodged marker per series (e.g. ECE before
    and after temperature scaling, or a change from the base per measure).

    Parameters
    ----------
    table : tidy rows ``model``, ``series``, ``estimate``, ``ci_low``, ``ci_high`` (e.g.
        `dint.analyses.reliability.calibration_summary` rows); models drawn top to bottom in first-seen order,
        rows without an interval drawn as open markers
    series : the column that names each series
    labels : {series value: legend label}; default the values themselves
    references : {label: x} drawn as dashed vertical lines (e.g. published values, 0, T = 1)
    log : log-scaled x axis
    """
    fig, ax = figure_axes(ax)
    models = list(dict.fromkeys(table["model"]))
    names = list(dict.fromkeys(table[series]))
    width = 0.7 / max(1, len(names))
    for j, name in enumerate(names):
        g = table[table[series] == name].set_index("model").reindex(models)
        y = np.arange(len(models)) + (j - (len(names) - 1) / 2) * width
        est = g["estimate"].to_numpy(float)
        err = np.clip(np.nan_to_num(np.vstack([est - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - est])),
                      0, None)
        closed = np.isfinite(g["ci_low"].to_numpy(float))
        color = PALETTE[j % len(PALETTE)]
        ax.errorbar(est, y, xerr=err, fmt="none", ecolor=color, capsize=2, lw=1)
        ax.plot(est[closed], y[closed], "o", ms=4, color=color, label=(labels or {}).get(name, name))
        ax.plot(est[~closed], y[~closed], "o", ms=4, mfc="white", color=color)
    for i, (label, x) in enumerate((references or {}).items()):
        ax.axvline(x, color="0.35", lw=0.8, ls=("--", ":", "-.")[i % 3], label=label)
    if log:
        ax.set_xscale("log")
    ax.set_yticks(np.arange(len(models)), models, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    legend(ax, above=True)   # above the rows: none hidden
    return fig


def card_scatter(cards: pd.DataFrame, x: str, y: str, *, ax=None):
    """Two measures of distribution cards against each other, one labelled point per model, intervals on both.

    ``cards``: a tidy table, one row per (``model``, ``measure``) with ``estimate``, ``ci_low``, ``ci_high``
    (`dint.analyses.verification.cards`); ``x``, ``y``: two of its measures."""
    fig, ax = figure_axes(ax)
    wide = cards.pivot(index="model", columns="measure", values=["estimate", "ci_low", "ci_high"])
    wide = wide.reindex(list(dict.fromkeys(cards["model"])))            # the models in the table's order
    est, low, high = wide["estimate"], wide["ci_low"], wide["ci_high"]
    xerr = np.clip(np.vstack([est[x] - low[x], high[x] - est[x]]), 0, None)
    yerr = np.clip(np.vstack([est[y] - low[y], high[y] - est[y]]), 0, None)
    ax.errorbar(est[x], est[y], xerr=xerr, yerr=yerr, fmt="o", ms=3, lw=0.7, capsize=1.5, color=PALETTE[0],
                ecolor="0.6")
    crowded = label_points(ax, est[x], est[y], est.index)
    if crowded:   # a cluster of points too close to label one by one
        ax.text(0.03, 0.97, f"unlabelled: {len(crowded)} models", transform=ax.transAxes, ha="left", va="top",
                fontsize=7, color="0.35")
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "))
    return fig
