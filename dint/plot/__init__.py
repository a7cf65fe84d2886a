"""Figures. Functions take what the compute step returns and ``ax=None``, return the figure, never compute.

Colours come from a colour-blind-safe palette (seaborn's ``colorblind``); figures are saved as
vector PDF plus PNG by `save`.

The functions live in small modules by subject (`world`, `estimates`, `calibration`, `shifts`,
`costs`, `lmeval`) and are all importable from ``dint.plot``.
"""
from ._base import (CLASS_COLORS, FAMILY_MARKERS, MIN_FONT, PAGE_WIDTH, PALETTE, PAPER_RC, SPLIT_COLORS, TYPE_COLORS,
                    TYPE_MARKERS, label_points, legend, panels, print_problems, save)
from .calibration import reliability_diagram, risk_coverage, temperature_sweep, verification
from .costs import (accuracy_cost, additive, answer_risk, baselines, bon_kl, equal_flops, frontiers, reward_vs_kl,
                    stack_measure)
from .estimates import card_scatter, forest, intervals, model_intervals
from .lmeval import lm_eval
from .shifts import URIAL_SHARES, answer_positions, confusion, error_composition, pass_curves, shift_measure, token_shift, transitions
from .world import by_mentions, corpus_fit, misconception_scatter, type_distribution

__all__ = [
    "CLASS_COLORS", "FAMILY_MARKERS", "MIN_FONT", "PAGE_WIDTH", "PALETTE", "PAPER_RC", "SPLIT_COLORS", "TYPE_COLORS", "TYPE_MARKERS", "URIAL_SHARES",
    "accuracy_cost", "additive", "answer_positions", "answer_risk", "baselines", "bon_kl", "by_mentions", "card_scatter", "confusion",
    "corpus_fit", "equal_flops", "error_composition", "forest", "frontiers", "intervals", "label_points", "legend", "lm_eval", "misconception_scatter",
    "model_intervals", "panels", "pass_curves", "print_problems", "reliability_diagram", "reward_vs_kl", "risk_coverage", "save", "shift_measure",
    "stack_measure", "temperature_sweep", "token_shift", "transitions", "type_distribution", "verification",
]
