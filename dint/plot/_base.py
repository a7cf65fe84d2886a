"""Shared by the figures: the palette, colour and marker maps, axes creation and saving."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = sns.color_palette("colorblind")
TYPE_COLORS = {"frequent": PALETTE[0], "rare": PALETTE[2], "unseen": PALETTE[7], "contested": PALETTE[3]}
TYPE_MARKERS = {"frequent": "o", "rare": "s", "unseen": "^", "contested": "D"}
SPLIT_COLORS = {"train": PALETTE[0], "heldout": PALETTE[1]}
# error classes of `dint.taxonomy`
CLASS_COLORS = {"routing": PALETTE[4], "imitative": PALETTE[3], "regression": PALETTE[1], "selection": PALETTE[2],
                "absent_support": PALETTE[7], "unclassified": "0.85"}
FAMILY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def figure_axes(ax, ncols=1, figsize=(4.2, 3.4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize, constrained_layout=True)
    return fig, ax


def save(fig, stem: str | Path) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf`` (vector) and ``<stem>.png``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(out[0])
    fig.savefig(out[1], dpi=200)
    return out
