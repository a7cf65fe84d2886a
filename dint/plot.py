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


def additive(table: pd.DataFrame, *, ax=None, x: str = "additive", y: str = "accuracy"):
    """Each stack's measured value (with its interval) against the additive prediction from its steps.

    Parameters
    ----------
    table : one row per stack with ``stack``, ``n_steps``, ``x`` and ``y`` and ``{y}_low`` / ``{y}_high``
        (e.g. `dint.stacks.measures` merged with `dint.stacks.additivity`'s ``additive``)
    """
    fig, ax = _axes(ax)
    err = np.vstack([table[y] - table[f"{y}_low"], table[f"{y}_high"] - table[y]])
    colors = [PALETTE[int(k) % len(PALETTE)] for k in table["n_steps"]]
    ax.errorbar(table[x], table[y], yerr=np.clip(err, 0, None), fmt="none", ecolor="0.6", lw=0.8, capsize=2)
    ax.scatter(table[x], table[y], c=colors, s=22, zorder=3)
    for r in table.itertuples():
        ax.annotate(r.stack, (getattr(r, x), getattr(r, y)), fontsize=6, xytext=(3, 2),
                    textcoords="offset points")
    lo = float(np.nanmin([table[x].min(), table[f"{y}_low"].min()]))
    hi = float(np.nanmax([table[x].max(), table[f"{y}_high"].max()]))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    for k in sorted(table["n_steps"].unique()):
        ax.scatter([], [], color=PALETTE[int(k) % len(PALETTE)], s=22, label=f"{k} step{'s' if k != 1 else ''}")
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set(xlabel=f"{y}, additive prediction", ylabel=f"{y}, measured")
    return fig


def stack_measure(table: pd.DataFrame, measure: str, *, ax=None, label: str | None = None):
    """One measure per stack with its interval (``{measure}_low`` / ``_high``), coloured by the number of steps."""
    fig, ax = _axes(ax, figsize=(4.2, 0.28 * len(table) + 1.0))
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
        ax.legend(fontsize=7, frameon=False, loc="best")
    return fig


# -- 03_diagnosability: error taxonomy -------------------------------------------------------------

CLASS_COLORS = {"routing": PALETTE[4], "imitative": PALETTE[3], "regression": PALETTE[1], "selection": PALETTE[2],
                "absent_support": PALETTE[7], "unclassified": "0.85"}


def error_composition(shares: pd.DataFrame, *, by: str = "intervention", ax=None, min_label: int = 8):
    """Stacked horizontal bars: each model's errors by class, with the counts written in.

    Parameters
    ----------
    shares : `dint.composition.class_shares` table (``by``, ``class``, ``count``)
    by : the column that names the model (one bar each, top to bottom in first-seen order)
    min_label : write a segment's count only when it is at least this
    """
    fig, ax = _axes(ax)
    models = list(dict.fromkeys(shares[by]))
    counts = shares.pivot_table(index=by, columns="class", values="count", aggfunc="sum", sort=False)
    counts = counts.reindex(index=models).fillna(0)
    classes = [c for c in CLASS_COLORS if c in counts.columns] + [c for c in counts.columns if c not in CLASS_COLORS]
    y = np.arange(len(models))[::-1]
    left = np.zeros(len(models))
    for i, c in enumerate(classes):
        w = counts[c].to_numpy(float)
        ax.barh(y, w, left=left, color=CLASS_COLORS.get(c, PALETTE[i % len(PALETTE)]), label=c.replace("_", " "),
                edgecolor="white", lw=0.5)
        for yy, ll, ww in zip(y, left, w):
            if ww >= min_label:
                ax.text(ll + ww / 2, yy, f"{ww:.0f}", ha="center", va="center", fontsize=6)
        left += w
    ax.set_yticks(y, models, fontsize=8)
    ax.set(xlabel="errors (held-out items)")
    ax.legend(fontsize=6, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return fig


def confusion(table: pd.DataFrame, *, ax=None, cmap: str = "Blues", xlabel: str = "predicted class",
              ylabel: str = "known cause", drop_empty: bool = True):
    """Heatmap of a confusion matrix: counts written in, colour = the share of the row (recall on the diagonal).

    Parameters
    ----------
    table : `dint.taxonomy.AgreementResult.confusion` (a crosstab of counts, rows the known cause)
    drop_empty : leave out rows without any item (e.g. no error has the known cause "unclassified")
    """
    fig, ax = _axes(ax)
    if drop_empty:
        table = table[table.sum(axis=1) > 0]
    pretty = table.rename(index=lambda s: s.replace("_", " "), columns=lambda s: s.replace("_", " "))
    share = pretty.div(pretty.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    sns.heatmap(share, annot=pretty.to_numpy(), fmt=".0f", cmap=cmap, vmin=0, vmax=1, cbar=False, ax=ax,
                annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="white")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.tick_params(labelsize=7)
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
    fig, ax = _axes(ax, figsize=(4.2, 0.35 * len(rows) + 1.0))
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
        ax.legend(fontsize=7, frameon=False)
    return fig


def pass_curves(curve: pd.DataFrame, *, hue: str, ax=None, reference: pd.DataFrame | None = None,
                colors: dict | None = None):
    """Pass@k against k (log scale) per ``hue`` level, with interval bands.

    Parameters
    ----------
    curve : `dint.composition.pass_curve` table (``hue``, ``k``, ``pass``, ``ci_low``, ``ci_high``)
    reference : an optional second `pass_curve` table with the same ``hue`` levels (e.g. a uniform
        guess, ``column="base_rate"``), drawn dashed in the same colours
    colors : {level: colour}; default the palette in first-seen order
    """
    fig, ax = _axes(ax)
    levels = list(dict.fromkeys(curve[hue]))
    given = colors or {}
    free = iter(PALETTE[i % len(PALETTE)] for i in range(len(levels)))    # palette order for the others
    colors = {lev: given[lev] if lev in given else next(free) for lev in levels}
    for lev in levels:
        g = curve[curve[hue] == lev].sort_values("k")
        ax.plot(g["k"], g["pass"], color=colors[lev], lw=1.3, label=str(lev).replace("_", " "))
        ax.fill_between(g["k"], g["ci_low"], g["ci_high"], color=colors[lev], alpha=0.2, lw=0)
        if reference is not None:
            r = reference[reference[hue] == lev].sort_values("k")
            ax.plot(r["k"], r["pass"], color=colors[lev], lw=0.9, ls="--")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="k (samples, with replacement)", ylabel="pass@k", ylim=(0, 1.02))
    ax.legend(fontsize=6, frameon=False, loc="best")
    return fig


FAMILY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def frontiers(points: pd.DataFrame, *, ax=None, reference: float | None = None,
              reference_label: str = "reference", colors: dict | None = None):
    """Accuracy against total FLOPs (log axis), one colour per family: each family's Pareto frontier
    as a step line (the best accuracy it reaches within a budget) with intervals, the points off the
    frontier as faint markers; the legend counts each family's points.

    Parameters
    ----------
    points : `dint.resources.summarize` rows (``family``, ``accuracy``, ``ci_low``, ``ci_high``,
        ``total_flops``) with a boolean ``frontier`` column (`dint.resources.pareto`)
    reference : an optional accuracy drawn as a dashed horizontal line (e.g. the base rate 1/K)
    colors : {family: colour}; default the palette in first-seen order
    """
    fig, ax = _axes(ax, figsize=(5.6, 4.0))
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
    ax.legend(fontsize=6, frameon=False, loc="upper left")
    return fig


def model_intervals(table: pd.DataFrame, *, ax=None, series: str = "measure", labels: dict | None = None,
                    references: dict | None = None, xlabel: str = "estimate", log: bool = False):
    """Estimates with intervals, one row per model and one dodged marker per series (e.g. ECE before
    and after temperature scaling, or a change from the base per measure).

    Parameters
    ----------
    table : tidy rows ``model``, ``series``, ``estimate``, ``ci_low``, ``ci_high`` (e.g.
        `dint.reliability.calibration_summary` rows); models drawn top to bottom in first-seen order,
        rows without an interval drawn as open markers
    series : the column that names each series
    labels : {series value: legend label}; default the values themselves
    references : {label: x} drawn as dashed vertical lines (e.g. published values, 0, T = 1)
    log : log-scaled x axis
    """
    fig, ax = _axes(ax)
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
    ax.legend(fontsize=6, frameon=False, loc="best")
    return fig


def card_scatter(cards: pd.DataFrame, x: str, y: str, *, ax=None):
    """Two measures of distribution cards (`dint.card.cards`) against each other, one labelled point per model."""
    fig, ax = _axes(ax)
    xerr = np.clip(np.vstack([cards[x] - cards[f"{x}_low"], cards[f"{x}_high"] - cards[x]]), 0, None)
    yerr = np.clip(np.vstack([cards[y] - cards[f"{y}_low"], cards[f"{y}_high"] - cards[y]]), 0, None)
    ax.errorbar(cards[x], cards[y], xerr=xerr, yerr=yerr, fmt="o", ms=3, lw=0.7, capsize=1.5, color=PALETTE[0],
                ecolor="0.6")
    for r in cards.itertuples():
        ax.annotate(r.model, (getattr(r, x), getattr(r, y)), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "))
    return fig


def verification(systems: pd.DataFrame, measure: str, *, ax=None, reference: float | None = None,
                 label: str | None = None):
    """A measure of verification systems (``dint.card.VerificationResult.row`` rows with ``model`` and
    ``system``) per model, one colour per system, with its interval; ``reference`` e.g. the target alpha."""
    models = list(dict.fromkeys(systems["model"]))
    names = list(dict.fromkeys(systems["system"]))
    fig, ax = _axes(ax, figsize=(4.2, 0.25 * len(models) + 1.2))
    width = 0.8 / max(1, len(names))
    for j, s in enumerate(names):
        g = systems[systems["system"] == s].set_index("model").reindex(models)
        yy = np.arange(len(models)) + (j - (len(names) - 1) / 2) * width
        err = np.clip(np.vstack([g[measure] - g[f"{measure}_low"], g[f"{measure}_high"] - g[measure]]), 0, None)
        ax.errorbar(g[measure], yy, xerr=err, fmt="o", ms=3, lw=0.8, capsize=1.5, color=PALETTE[j % len(PALETTE)],
                    label=s)
    if reference is not None:
        ax.axvline(reference, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(models)), models, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(label or measure)
    ax.legend(fontsize=6, frameon=False, loc="best")
    return fig
