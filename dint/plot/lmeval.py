"""lm-evaluation-harness runs compared by task: what `dint.lmeval.cards` and `dint.lmeval.pairs` return."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ._base import PAGE_WIDTH, PALETTE, PAPER_RC, legend

MAX_HEIGHT = 9.0      # inches: the tallest figure a page holds with its caption
ROW_BASE = 1.0        # inches of a panel row besides its tasks (title, axis, legend above)
TASK_HEIGHT = 0.14    # inches per task of a panel (a 7 pt label and its markers)
LABEL_CHARS = 28      # a longer task name is cut in the middle to this many characters


def _label(task: str) -> str:
    """The task's name, its middle cut where it is long: subtasks differ at the end (mmlu_…_chemistry)."""
    if len(task) <= LABEL_CHARS:
        return task
    head = (LABEL_CHARS - 1) // 3
    return task[:head] + "…" + task[len(task) - (LABEL_CHARS - 1 - head):]


def _by_task(ax, table: pd.DataFrame, tasks: list[str], hue: str, *, reference=None, alpha=None, title="",
             xlabel="estimate", show_tasks=True, show_legend=True):
    """One panel: a row per task (top to bottom), one dodged marker per ``hue`` level with its interval; a marker
    is open where the row has a Holm-adjusted p-value of at least ``alpha`` (or none)."""
    levels = list(dict.fromkeys(table[hue]))
    step = 0.6 / max(len(levels), 1)
    pos = dict(zip(tasks, np.arange(len(tasks))[::-1]))
    for i, lev in enumerate(levels):
        g = table[(table[hue] == lev) & table.task.isin(pos)]
        y = np.array([pos[t] for t in g.task], float) + (len(levels) - 1) * step / 2 - i * step
        est = g["estimate"].to_numpy(float)
        err = np.clip(np.nan_to_num(np.vstack([est - g["ci_low"].to_numpy(float),
                                               g["ci_high"].to_numpy(float) - est])), 0, None)
        color = PALETTE[i % len(PALETTE)]
        ax.errorbar(est, y, xerr=err, fmt="none", ecolor=color, capsize=1.5, lw=0.8)
        filled = (g["pvalue_holm"].to_numpy(float) < alpha) if alpha is not None else np.ones(len(g), bool)
        ax.plot(est[filled], y[filled], "o", ms=3.5, color=color, label=str(lev))
        ax.plot(est[~filled], y[~filled], "o", ms=3.5, mfc="white", color=color,
                label=None if filled.any() else str(lev))
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, ls="--")
    if show_tasks:
        ax.set_yticks(list(pos.values()), [_label(t) for t in pos])
    else:   # the row's tasks are labelled on its first panel (a shared y axis)
        ax.tick_params(labelleft=False)
    ax.set_ylim(-0.6, len(tasks) - 0.4)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    if show_legend:
        legend(ax, above=True)


def lm_eval(cards: pd.DataFrame, pairs: pd.DataFrame, *, alpha: float = 0.05):
    """lm-eval runs by task: (a) accuracy per model (Wilson intervals); with two runs or more, per pair of runs
    (b) the mean KL(model || reference) between choice distributions, (c) the accuracy difference (Newcombe) and
    (d) the ECE difference; a difference's marker is filled where its Holm-adjusted p-value is under ``alpha``.

    Parameters
    ----------
    cards : `dint.lmeval.cards` (``task, model, measure`` and `dint.stats.ROW`)
    pairs : `dint.lmeval.pairs` (``task, model, reference, measure``, `dint.stats.ROW` and ``pvalue_holm``); may
        be empty (one run: panel a only)
    alpha : the level a filled marker marks

    Returns
    -------
    The figure, at most `MAX_HEIGHT` inches tall: where the tasks do not fit, the first ones in alphabetical
    order are drawn and a line under the panels says how many (every task is in the tables).
    """
    mpl.rcParams.update(PAPER_RC)
    tasks = sorted(cards.task.unique())
    paired = len(pairs) > 0
    rows = 2 if paired else 1
    fit = max(1, int((MAX_HEIGHT / rows - ROW_BASE) / TASK_HEIGHT))
    shown = tasks[:fit]
    height = rows * (ROW_BASE + TASK_HEIGHT * len(shown))
    fig = plt.figure(figsize=(PAGE_WIDTH if paired else PAGE_WIDTH / 2, height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, 2 if paired else 1, sharey="row")).ravel()
    acc = cards[cards.measure == "accuracy"]
    _by_task(axes[0], acc, shown, "model", title="(a) accuracy", xlabel="accuracy (Wilson interval)")
    if paired:
        p = pairs.assign(pair=pairs.model + " vs " + pairs.reference)
        _by_task(axes[1], p[p.measure == "kl"], shown, "pair", title="(b) KL(model ‖ reference)",
                 xlabel="mean KL per document (nats)", show_tasks=False)
        _by_task(axes[2], p[p.measure == "d_accuracy"], shown, "pair", reference=0.0, alpha=alpha,
                 title="(c) accuracy difference", xlabel=f"model − reference (filled: Holm p < {alpha:g})",
                 show_legend=False)
        _by_task(axes[3], p[p.measure == "d_ece"], shown, "pair", reference=0.0, alpha=alpha,
                 title="(d) ECE difference", xlabel=f"model − reference (filled: Holm p < {alpha:g})",
                 show_tasks=False, show_legend=False)
    if len(shown) < len(tasks):
        fig.supxlabel(f"the first {len(shown)} of {len(tasks)} tasks; every task is in the tables", fontsize=7)
    return fig
