"""Shared by the figures: the palette, colour and marker maps, axes creation and saving."""
from __future__ import annotations

from pathlib import Path

import math
import textwrap

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..stats.checks import check_int

PALETTE = sns.color_palette("colorblind")
TYPE_COLORS = {"frequent": PALETTE[0], "rare": PALETTE[2], "unseen": PALETTE[7], "contested": PALETTE[3]}
TYPE_MARKERS = {"frequent": "o", "rare": "s", "unseen": "^", "contested": "D"}
SPLIT_COLORS = {"train": PALETTE[0], "heldout": PALETTE[1]}
# error classes of `dint.taxonomy`
CLASS_COLORS = {"routing": PALETTE[4], "imitative": PALETTE[3], "regression": PALETTE[1], "selection": PALETTE[2],
                "absent_support": PALETTE[7], "unclassified": "0.85"}
FAMILY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


# The paper's text width (US letter, 2.3 cm margins) and the smallest text size that reads in print: every
# figure is drawn at the size it is printed, so its text sizes are its printed sizes (`save` checks both).
PAGE_WIDTH = 6.7   # inches
MIN_FONT = 7.0     # points
PAPER_RC = {"font.size": 7.5, "axes.titlesize": 8, "axes.labelsize": 7.5, "xtick.labelsize": 7, "ytick.labelsize": 7,
            "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 8, "lines.markersize": 4}


def panels(n: int, *, ncols: int = 3, row_height: float = 2.2, width: float = PAGE_WIDTH):
    """A figure of ``n`` panels in balanced rows of at most ``ncols`` (3), at the paper's text width: ``(fig, axes)``
    with ``axes`` a 1-D array of the ``n`` panels (unused cells of the last row are hidden).

    It sets the paper's text sizes (`PAPER_RC`) for what is drawn next, so the figure prints at its own
    size with text of at least `MIN_FONT` points.
    """
    check_int("n (the number of panels)", n, 1)
    if not 1 <= ncols <= 3:
        raise ValueError(f"ncols={ncols!r}: at most three panels a row read at the paper's width")
    mpl.rcParams.update(PAPER_RC)
    rows = math.ceil(n / ncols)
    cols = math.ceil(n / rows)     # balanced rows: 4 panels are 2 x 2, 5 are 3 + 2
    fig = plt.figure(figsize=(width, rows * row_height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def print_problems(fig) -> list[str]:
    """What would not read at print size: a figure wider than `PAGE_WIDTH`, visible text under `MIN_FONT`,
    text that runs off the figure's edge, on the figure laid out as `save` then saves it."""
    out = []
    width = fig.get_figwidth()
    if width > PAGE_WIDTH + 0.05:
        out.append(f"the figure is {width:.1f} in wide; the paper's text is {PAGE_WIDTH} in (use plot.panels)")
    small = sorted({(round(t.get_fontsize(), 1), t.get_text()[:30]) for t in fig.findobj(mpl.text.Text)
                    if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT - 1e-6
                    and (t.axes is None or t.axes.get_visible())})
    out += [f"text {text!r} at {size} pt, under {MIN_FONT} pt" for size, text in small[:10]]
    # lay the figure out (twice: constrained layout moves the panels again after the first pass)
    fig.canvas.draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()] for t in (tick.label1, tick.label2)}
    cut = sorted({t.get_text()[:40] for t in fig.findobj(mpl.text.Text)
                  if id(t) not in ticks and t.get_visible() and t.get_text().strip()
                  and (t.axes is None or t.axes.get_visible()) and _outside(t.get_window_extent(renderer), w, h)})
    out += [f"text {text!r} runs off the figure" for text in cut[:10]]
    # tick labels: those drawn are inside each panel's tight box
    for ax in fig.axes:
        if ax.get_visible() and _outside(ax.get_tightbbox(renderer), w, h, margin=0.0):
            name = ax.get_title(loc="left") or ax.get_title() or ax.get_xlabel() or "a panel"
            out.append(f"the tick labels of {name} run off the figure")
    return out


def _outside(box, w, h, margin=4.0) -> bool:
    """Whether ``box`` (pixels) comes within ``margin`` pixels of the figure's edge or crosses it: text
    drawn at another resolution (the PNG's 200 dpi, the PDF) is a little wider than at 100 dpi."""
    return box.x0 < margin or box.y0 < margin or box.x1 > w - margin or box.y1 > h - margin


def legend(ax, *, above: bool = False, width: int = 22, **kw):
    """The panel's legend at 7 pt with its labels wrapped at ``width`` characters, so that it fits a panel
    a third of the page wide: inside (``loc="best"``), or ``above`` the panel, on its right, where it hides
    no data (two columns from five short entries)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    labels = [textwrap.fill(label, width) for label in labels]
    if above:
        longest = max(len(line) for label in labels for line in label.splitlines())
        kw = {"loc": "lower right", "bbox_to_anchor": (1.0, 1.07), "ncols": 2 if len(labels) >= 5 and longest <= 17 else 1,
              "columnspacing": 0.8, "handlelength": 1.2, **kw}
    return ax.legend(handles, labels, fontsize=7, frameon=False, **{"loc": "best", **kw})


# where a point's label may go, in points from the point: right-above, right-below, left-above, left-below
_LABEL_OFFSETS = ((3, 2, "left", "bottom"), (3, -2, "left", "top"), (-3, 2, "right", "bottom"),
                  (-3, -2, "right", "top"))


def label_points(ax, xs, ys, labels, *, fontsize: float = 7) -> list[str]:
    """Label points with text that overlaps no other label and stays inside the axes: each label goes to the
    first free place of four around its point, in order; a label with no free place is left out. Call it once
    everything that sets the axes' limits is drawn.

    Returns
    -------
    The labels left out (crowded points), in order; a caption or another panel names them.
    """
    fig = ax.figure
    ax.autoscale_view()   # the data limits the points are drawn at (autoscaling is otherwise left to the draw)
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed, left_out = [], []
    for x, y, label in zip(xs, ys, labels):
        for dx, dy, ha, va in _LABEL_OFFSETS:
            text = ax.annotate(str(label), (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               ha=ha, va=va)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            text.remove()
        else:
            left_out.append(str(label))
    return left_out


def figure_axes(ax, ncols=1, figsize=(4.2, 3.4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize, constrained_layout=True)
    return fig, ax


def save(fig, stem: str | Path, *, check: bool = True) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf`` (vector) and ``<stem>.png``; returns the paths.

    With ``check`` (the default) a figure that would not read in the paper (`print_problems`: wider than
    the text, text under 7 pt or running off the figure) is a ``ValueError`` naming what to change, and
    nothing is written; otherwise the layout checked is the layout saved (its layout engine is stopped).
    """
    if check:
        problems = print_problems(fig)
        if problems:
            raise ValueError(f"fig {stem}: would not read at print size: " + "; ".join(problems))
        fig.set_layout_engine("none")   # save the layout just checked (a new layout pass could move it)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(out[0])
    fig.savefig(out[1], dpi=200)
    return out
