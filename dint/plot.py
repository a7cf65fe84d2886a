"""Figures. Functions take what the compute step returns and ``ax=None``, return the figure, never compute.

Colours come from a colour-blind-safe palette (seaborn's ``colorblind``); figures are saved as
vector PDF plus PNG by `save`.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
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


SPLIT_COLORS = {"train": PALETTE[0], "heldout": PALETTE[1]}

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
    fig, ax = _axes(ax)
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
    ax.legend(fontsize=7, frameon=False, loc="best")
    return fig


def transitions(summary: pd.DataFrame, *, ax=None):
    """Per intervention, the items whose top answer went right→wrong and wrong→right (shares)."""
    fig, ax = _axes(ax)
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
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def token_shift(shares: pd.DataFrame, *, ax=None, reference: dict | None = None):
    """Token-shift classes per model (stacked shares with intervals), beside published references.

    Parameters
    ----------
    shares : DataFrame with ``model``, ``shift`` (unshifted / marginal / shifted), ``estimate``,
        ``ci_low``, ``ci_high``
    reference : {label: {class: share}} drawn as hatched bars (default: URIAL's)
    """
    fig, ax = _axes(ax)
    reference = URIAL_SHARES if reference is None else reference
    classes = ("unshifted", "marginal", "shifted")
    colors = dict(zip(classes, (PALETTE[0], PALETTE[8], PALETTE[3])))
    models = list(dict.fromkeys(shares["model"]))
    labels = models + list(reference)
    for i, label in enumerate(labels):
        left = 0.0
        for c in classes:
            if label in reference:
                v, hatch = reference[label][c], "//"
            else:
                v, hatch = float(shares[(shares["model"] == label) & (shares["shift"] == c)]["estimate"].iloc[0]), None
            ax.barh(i, v, left=left, color=colors[c], hatch=hatch, edgecolor="white", lw=0.5,
                    label=c if i == 0 else None)
            left += v
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of greedy tokens")
    ax.legend(fontsize=7, frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def reward_vs_kl(table: pd.DataFrame, *, x: str = "d", ax=None, hue: str | None = None, fits: dict | None = None):
    """Proxy and gold reward against d = sqrt(KL) (Gao et al.'s axes), with optional fitted curves.

    Parameters
    ----------
    table : rows with ``x``, ``proxy`` and ``gold`` (e.g. RL checkpoints or best-of-n sizes)
    hue : column whose values get separate markers (e.g. ``beta``)
    fits : {label: (callable d -> R, color)} curves drawn over the range of ``x``
    """
    fig, ax = _axes(ax)
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
    ax.legend(fontsize=6, frameon=False)
    return fig


def bon_kl(curve: pd.DataFrame, *, ax=None):
    """Exact KL of best-of-n against the bound log n − (n−1)/n."""
    fig, ax = _axes(ax)
    ax.plot(curve["n"], curve["kl_bound"], color="0.3", ls="--", label="log n − (n−1)/n")
    ax.errorbar(curve["n"], curve["kl"], yerr=[curve["kl"] - curve["kl_low"], curve["kl_high"] - curve["kl"]],
                fmt="o-", ms=3, lw=1, color=PALETTE[0], label="exact KL (mean over items)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="n", ylabel="KL(best-of-n ‖ base)")
    ax.legend(fontsize=7, frameon=False)
    return fig


def baselines(table: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) of each model on train and held-out facts, base and sham first.

    Parameters
    ----------
    table : rows ``model``, ``split``, ``accuracy``, ``acc_low``, ``acc_high``
    """
    fig, ax = _axes(ax)
    names = list(dict.fromkeys(table["model"]))
    for j, split in enumerate(("train", "heldout")):
        g = table[table["split"] == split].set_index("model").reindex(names)
        x = np.arange(len(names)) + (j - 0.5) * 0.38
        ax.bar(x, g["accuracy"], width=0.36, color=SPLIT_COLORS[split], label=f"{split} facts",
               yerr=[g["accuracy"] - g["acc_low"], g["acc_high"] - g["accuracy"]], capsize=2,
               error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (QA form)")
    ax.legend(fontsize=7, frameon=False)
    return fig


def accuracy_cost(summary: pd.DataFrame, *, ax=None):
    """Accuracy (with intervals) against inference tokens per question, per method and store.

    Parameters
    ----------
    summary : `dint.reasoning.summarize` rows with a ``store`` column
    """
    fig, ax = _axes(ax)
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
    ax.legend(fontsize=6, frameon=False)
    return fig
