"""Figures. Functions take what the compute step returns and ``ax=None``, return the figure, never compute.

Colours come from a colour-blind-safe palette (seaborn's ``colorblind``); figures are saved as
vector PDF plus PNG by `save`.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = sns.color_palette("colorblind")
TYPE_COLORS = {"frequent": PALETTE[0], "rare": PALETTE[2], "unseen": PALETTE[7], "contested": PALETTE[3]}
TYPE_MARKERS = {"frequent": "o", "rare": "s", "unseen": "^", "contested": "D"}


def _axes(ax, ncols=1, figsize=(4.2, 3.4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize, constrained_layout=True)
    return fig, ax


def corpus_fit(table: pd.DataFrame, *, ax=None, annotate: dict | None = None):
    """Per fact: the model's probability of the true value against the corpus's rate of true statements.

    Parameters
    ----------
    table : `dint.reference.facts_table` output (``corpus_p_true``, ``p_true``, ``type``)
    annotate : optional {label: `dint.stats.Result`} printed in the corner (e.g. correlations)
    """
    fig, ax = _axes(ax)
    for t in ("rare", "frequent", "contested"):
        g = table[table["type"] == t]
        ax.scatter(g["corpus_p_true"], g["p_true"], s=12 if t == "rare" else 18, alpha=0.35 if t == "rare" else 0.8,
                   color=TYPE_COLORS[t], marker=TYPE_MARKERS[t], label=f"{t} (n={len(g)})", linewidths=0)
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--", label="model = corpus")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="corpus: share of true statements",
           ylabel="base model: P(true value)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    if annotate:
        text = "\n".join(f"{k}: {r.statistic:.2f} [{r.confidence_interval.low:.2f}, {r.confidence_interval.high:.2f}]"
                         for k, r in annotate.items())
        ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
    return fig


def by_mentions(summary: pd.DataFrame, *, ax=None):
    """Accuracy and normalised entropy (with intervals) by a fact's mention count in the corpus.

    Parameters
    ----------
    summary : `dint.reference.by_mentions` output
    """
    fig, ax = _axes(ax)
    x = np.arange(len(summary))
    for col, color, marker, label in (("accuracy", PALETTE[0], "o", "accuracy (mode = truth)"),
                                      ("entropy_norm", PALETTE[1], "s", "entropy / log K")):
        y = summary[col].to_numpy()
        err = np.vstack([y - summary[f"{col}_low"].to_numpy(), summary[f"{col}_high"].to_numpy() - y])
        ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(err), 0, None), color=color, marker=marker, capsize=2, lw=1, label=label)
    ax.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(summary["mention_bin"], summary["n"])], fontsize=7)
    ax.set(ylim=(-0.02, 1.02), xlabel="mentions of the fact in the corpus")
    ax.legend(fontsize=7, frameon=False, loc="center right")
    return fig


def type_distribution(table: pd.DataFrame, *, ax=None):
    """Mass on the true value, on the misconception and the normalised entropy, by fact type."""
    fig, ax = _axes(ax)
    labels = {"p_true": "P(true value)", "p_misconception": "P(misconception)", "entropy_norm": "entropy / log K"}
    long = table[["type", *labels]].rename(columns=labels).melt(
        id_vars="type", var_name="measure", value_name="score").dropna()
    order = [t for t in ("frequent", "rare", "unseen", "contested") if t in set(table["type"])]
    sns.barplot(long, x="type", y="score", hue="measure", order=order, ax=ax, palette=PALETTE[:3],
                errorbar=("ci", 95), n_boot=1000, seed=0, err_kws={"linewidth": 1})
    ax.set(ylim=(0, 1.02), xlabel="fact type", ylabel="")
    ax.legend(fontsize=7, frameon=False)
    return fig


def save(fig, stem: str | Path) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf`` (vector) and ``<stem>.png``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(out[0])
    fig.savefig(out[1], dpi=200)
    return out


def intervals(results: dict, *, ax=None, reference: float | None = None, xlabel: str = "estimate"):
    """Forest plot: one row per named result (`dint.stats.Result`), its estimate and interval.

    Parameters
    ----------
    results : {label: Result}, drawn top to bottom in insertion order
    reference : optional value drawn as a vertical line (e.g. 0 for a difference)
    """
    fig, ax = _axes(ax, figsize=(4.2, 0.35 * len(results) + 1.0))
    labels = list(results)
    y = np.arange(len(labels))[::-1]
    est = np.array([results[k].statistic for k in labels])
    low = np.array([results[k].confidence_interval.low for k in labels])
    high = np.array([results[k].confidence_interval.high for k in labels])
    err = np.clip(np.nan_to_num(np.vstack([est - low, high - est])), 0, None)
    ax.errorbar(est, y, xerr=err, fmt="o", color=PALETTE[0], capsize=2, lw=1)
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlabel=xlabel)
    return fig


def reliability(diagram: pd.DataFrame, *, ax=None, label: str | None = None, color=None):
    """Reliability diagram: accuracy (Wilson interval) against mean confidence per bin.

    Parameters
    ----------
    diagram : `dint.calibration.reliability_diagram` output
    """
    fig, ax = _axes(ax)
    color = PALETTE[0] if color is None else color
    acc = diagram["accuracy"].to_numpy()
    err = np.clip(np.vstack([acc - diagram["accuracy_low"].to_numpy(), diagram["accuracy_high"].to_numpy() - acc]), 0, None)
    ax.errorbar(diagram["confidence"], acc, yerr=err, fmt="o-", color=color, capsize=2, lw=1, ms=3, label=label)
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="confidence", ylabel="accuracy")
    if label:
        ax.legend(fontsize=7, frameon=False)
    return fig


def risk_coverage(result, *, ax=None, label: str | None = None, color=None):
    """Selective risk against coverage (`dint.calibration.RiskCoverageResult`), AURC in the label."""
    fig, ax = _axes(ax)
    color = PALETTE[0] if color is None else color
    text = f"AURC {result.aurc:.3f}" if label is None else f"{label} (AURC {result.aurc:.3f})"
    ax.step(result.coverage, result.risk, where="post", color=color, lw=1.2, label=text)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="coverage", ylabel="risk (error among answered)")
    ax.legend(fontsize=7, frameon=False)
    return fig
