"""Calibration and selective prediction: reliability diagrams, risk-coverage, temperature along an RL sweep,
verification systems."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from ._base import PALETTE, figure_axes, legend


def reliability_diagram(diagram: pd.DataFrame, *, ax=None, label: str | None = None, color=None):
    """Reliability diagram: accuracy (Wilson interval) against mean confidence per bin.

    Parameters
    ----------
    diagram : one row per bin: ``confidence`` (the bin's mean) and its accuracy as ``estimate``, ``ci_low``,
        ``ci_high`` (`dint.analyses.trust_reliability.calibration_tables`' diagrams, one model's rows)
    """
    fig, ax = figure_axes(ax)
    color = PALETTE[0] if color is None else color
    acc = diagram["estimate"].to_numpy()
    err = np.clip(np.vstack([acc - diagram["ci_low"].to_numpy(), diagram["ci_high"].to_numpy() - acc]), 0, None)
    ax.errorbar(diagram["confidence"], acc, yerr=err, fmt="o-", color=color, capsize=2, lw=1, ms=3, label=label)
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="confidence", ylabel="accuracy")
    if label:
        legend(ax, above=True, width=18)
    return fig


def risk_coverage(result, *, ax=None, label: str | None = None, color=None):
    """Selective risk against coverage (`dint.selective.RiskCoverageResult`), the AURC in the legend."""
    fig, ax = figure_axes(ax)
    color = PALETTE[0] if color is None else color
    text = f"{result.aurc:.3f}" if label is None else f"{label}: {result.aurc:.2f}"
    ax.step(result.coverage, result.risk, where="post", color=color, lw=1.2, label=text)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="coverage", ylabel="risk (error among answered)")
    legend(ax, above=True, width=22, title="AURC", title_fontsize=7)
    return fig


def temperature_sweep(overview: pd.DataFrame, *, ax=None, references: dict | None = None):
    """The temperature each model wants against the KL from the start model it reached (log T axis).

    Parameters
    ----------
    overview : one row per model (index: its name): ``beta`` (NaN for a model off the sweep), ``kl_from_sft``,
        ``t_heldout`` and their ``ci_low`` / ``ci_high`` columns (`dint.analyses.temperature_sweep.overview`);
        the start model (no KL) is drawn at KL 0, the sweep's models joined in order of β and labelled by it
    references : {label: T} drawn as dashed horizontal lines (e.g. T = 1, Kadavath et al.'s 2.5)
    """
    fig, ax = figure_axes(ax)
    kl = overview["kl_from_sft"].fillna(0.0)
    swept = overview["beta"].notna()
    start = overview["kl_from_sft"].isna()
    line = overview[swept | start].assign(kl=kl).sort_values("kl")
    ax.plot(line["kl"], line["t_heldout"], color=PALETTE[0], lw=0.8, alpha=0.6)
    rank = {name: i for i, name in enumerate(overview.index[swept].sort_values(key=lambda i: overview.loc[i, "beta"]))}
    for j, (name, r) in enumerate(overview.iterrows()):
        color = PALETTE[0] if swept[name] else PALETTE[(j + 1) % len(PALETTE)]
        xerr = np.nan_to_num([[kl[name] - r["kl_from_sft ci_low"]], [r["kl_from_sft ci_high"] - kl[name]]])
        yerr = np.nan_to_num([[r["t_heldout"] - r["t_heldout ci_low"]], [r["t_heldout ci_high"] - r["t_heldout"]]])
        label = f"β = {r['beta']:g}" if swept[name] else name
        ax.errorbar([kl[name]], [r["t_heldout"]], xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None),
                    fmt="o" if swept[name] else "s", ms=3.5, lw=0.8, capsize=1.5, color=color,
                    label=None if swept[name] else label)
        if swept[name]:
            # neighbours in β often reach nearly the same point: their labels are stacked, not overprinted
            ax.annotate(label, (kl[name], r["t_heldout"]), textcoords="offset points", fontsize=7,
                        xytext=(4, 4 - 8 * (rank[name] % 3)), va="center")
    for i, (label, t) in enumerate((references or {}).items()):
        ax.axhline(t, color="0.35", lw=0.8, ls=("--", ":", "-.")[i % 3], label=label)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set(xlabel="KL from SFT (nats, held-out facts)", ylabel="temperature T (log scale)")
    legend(ax, above=True)
    return fig


def verification(systems: pd.DataFrame, measure: str, *, ax=None, reference: float | None = None,
                 label: str | None = None):
    """A measure of verification systems per model, one colour per system, with its interval; ``reference``
    e.g. the target alpha.

    ``systems``: a tidy table, one row per (``model``, ``system``, ``measure``) with ``estimate``, ``ci_low``,
    ``ci_high`` (`dint.analyses.verification.Systems.table`)."""
    systems = systems[systems["measure"] == measure]
    models = list(dict.fromkeys(systems["model"]))
    names = list(dict.fromkeys(systems["system"]))
    fig, ax = figure_axes(ax, figsize=(4.2, 0.25 * len(models) + 1.2))
    width = 0.8 / max(1, len(names))
    for j, s in enumerate(names):
        g = systems[systems["system"] == s].set_index("model").reindex(models)
        yy = np.arange(len(models)) + (j - (len(names) - 1) / 2) * width
        err = np.clip(np.vstack([g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]]), 0, None)
        ax.errorbar(g["estimate"], yy, xerr=err, fmt="o", ms=3, lw=0.8, capsize=1.5, color=PALETTE[j % len(PALETTE)],
                    label=s)
    if reference is not None:
        ax.axvline(reference, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(models)), models, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(label or measure)
    legend(ax, above=True)
    return fig
