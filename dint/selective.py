"""Selective prediction: answer only when a confidence or verifier score is high enough.

A rule that abstains is judged by its risk-coverage curve (how the error among answered items falls
as fewer are answered) and, with a guarantee, set by conformal risk control: a threshold learned on
calibration items that keeps the joint error P(answered and wrong) at most alpha on exchangeable new
items. Scores come from `dint.calibration` (a model's confidence) or `dint.verify` (a verifier).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .calibration import paired_inputs

__all__ = ["ConformalResult", "RiskCoverageResult", "conformal_risk_threshold", "conformal_threshold", "risk_coverage",
           "selective_error"]


@dataclass(frozen=True)
class RiskCoverageResult:
    """Selective-prediction curve (one point per distinct confidence) and its AURC."""

    coverage: np.ndarray
    risk: np.ndarray
    aurc: float
    n: int


@dataclass(frozen=True)
class ConformalResult:
    """Answer-threshold from conformal risk control; answer only when ``score >= threshold``."""

    threshold: float
    alpha: float
    n: int
    method: str

    def asdict(self) -> dict:
        return asdict(self)


def risk_coverage(confidence, correct) -> RiskCoverageResult:
    """Risk-coverage curve of answering the most confident items first, and its AURC.

    Parameters
    ----------
    confidence : (n,) array of scores (any real values; higher means answer first)
    correct : (n,) boolean or 0/1 array; n >= 1

    Returns
    -------
    RiskCoverageResult with ``coverage`` and ``risk`` arrays (one point per distinct confidence,
    descending, so coverage ends at 1 with the overall error rate), ``aurc`` and ``n``.

    Notes
    -----
    Geifman & El-Yaniv (2017), "Selective classification for deep neural networks"; AURC as in
    Geifman et al. (2019). Tied confidences are answered together: the curve has a point only
    after each tie group. ``aurc = (1/n) sum_{k=1..n} risk(k/n)``, where inside a tie group the
    error count is interpolated linearly, i.e. the expected risk when ties are broken at random.
    """
    s, y = paired_inputs("confidence", confidence, "correct", correct, unit=False, min_n=1)
    order = np.argsort(-s, kind="stable")
    s, err = s[order], 1.0 - y[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]      # last index of each tie group
    cum_n = (ends + 1).astype(float)
    cum_e = np.cumsum(err)[ends]
    k = np.arange(1, len(s) + 1, dtype=float)
    expected_e = np.interp(k, np.r_[0.0, cum_n], np.r_[0.0, cum_e])
    return RiskCoverageResult(coverage=cum_n / len(s), risk=cum_e / cum_n,
                              aurc=float(np.mean(expected_e / k)), n=len(s))


def conformal_threshold(score_cal, correct_cal, *, alpha: float = 0.05) -> ConformalResult:
    """Smallest answer-threshold whose joint error P(answered and wrong) is controlled at alpha.

    Parameters
    ----------
    score_cal : (n,) array of confidence or verifier scores on calibration items (higher = surer)
    correct_cal : (n,) boolean or 0/1 array, whether each calibration answer is right; n >= 1
    alpha : target risk in (0, 1)

    Returns
    -------
    ConformalResult with ``threshold`` (answer a new item iff ``score >= threshold``; ``+inf``
    means always abstain), ``alpha``, ``n`` and ``method``.

    Notes
    -----
    Conformal risk control (Angelopoulos, Bates, Fisch, Lei & Schuster 2022, "Conformal risk
    control") with loss ``L_i(lam) = 1[score_i >= lam and not correct_i]``, non-increasing in lam
    and bounded by B = 1. With ``R_n(lam)`` its calibration mean,
    ``lam_hat = min{lam in scores ∪ {+inf} : n/(n+1) R_n(lam) + 1/(n+1) <= alpha}``.
    For a new item exchangeable with the calibration items this guarantees
    ``E[L_{n+1}(lam_hat)] = P(answered AND wrong) <= alpha`` -- the *joint* rate over all items,
    NOT the error rate among answered items ``P(wrong | answered)``, which can exceed alpha when
    coverage is low. (The guarantee transfers from the right-continuous loss
    ``1[score > lam, wrong]``, for which the theorem's infimum is the (m+1)-th largest wrong score;
    ``lam_hat`` is the next calibration score strictly above it, so it answers a subset.) When
    ``alpha < 1/(n+1)`` no threshold qualifies and ``threshold = +inf``. If few enough calibration
    items are wrong, ``lam_hat`` is the smallest calibration score (answering everything would
    also be valid). Evaluate with :func:`selective_error`.
    """
    s, y = paired_inputs("score_cal", score_cal, "correct_cal", correct_cal, unit=False, min_n=1)
    if not (isinstance(alpha, (int, float, np.floating)) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r}: must lie in (0, 1), e.g. 0.05")
    n = len(s)
    cand = np.r_[np.unique(s), np.inf]                        # ascending; loss non-increasing
    wrong = np.sort(s[y == 0])
    n_wrong_answered = len(wrong) - np.searchsorted(wrong, cand, side="left")
    ok = (n / (n + 1)) * (n_wrong_answered / n) + 1 / (n + 1) <= alpha
    thr = float(cand[np.argmax(ok)]) if ok.any() else float("inf")
    return ConformalResult(thr, float(alpha), n, "conformal risk control, joint error "
                           "P(answered and wrong) <= alpha (Angelopoulos et al. 2022)")


def selective_error(threshold: float, score, correct) -> dict:
    """Coverage and error rates of answering only items with ``score >= threshold``.

    Parameters
    ----------
    threshold : answer-threshold, e.g. ``conformal_threshold(...).threshold``
    score : (n,) array of scores on evaluation items
    correct : (n,) boolean or 0/1 array; n >= 1

    Returns
    -------
    dict with ``coverage`` (share answered), ``error_joint`` (share answered and wrong, the rate
    :func:`conformal_threshold` controls), ``error_given_answered`` (wrong among answered; NaN if
    none answered) and ``n``.

    Notes
    -----
    Selective classification metrics (Geifman & El-Yaniv 2017); the joint rate is the risk of
    conformal risk control (Angelopoulos et al. 2022).
    """
    s, y = paired_inputs("score", score, "correct", correct, unit=False, min_n=1)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN; pass a number (+inf abstains on every item)")
    ans = s >= threshold
    k = int(ans.sum())
    wrong = int(np.sum(ans & (y == 0)))
    return {"coverage": k / len(s), "error_joint": wrong / len(s),
                "error_given_answered": (wrong / k) if k else float("nan"), "n": len(s)}


def conformal_risk_threshold(loss, thresholds, *, alpha: float = 0.05) -> ConformalResult:
    """Smallest threshold on a grid whose expected loss is controlled at alpha, for any bounded loss.

    Parameters
    ----------
    loss : (n, L) array in [0, 1], the loss of each calibration item at each threshold of the grid
        (e.g. the probability that a policy answering when a score reaches the threshold returns a
        wrong answer); need not be monotone
    thresholds : (L,) strictly increasing grid; its last entry must be a threshold at which every
        item's loss is 0 (e.g. ``+inf``: answer nothing)
    alpha : target risk in (0, 1)

    Returns
    -------
    ConformalResult with the ``threshold`` of the grid (``+inf`` or the grid's last entry when no
    smaller one qualifies), ``alpha``, ``n`` and ``method``.

    Notes
    -----
    Conformal risk control (Angelopoulos, Bates, Fisch, Lei & Schuster 2022, "Conformal risk
    control", Theorem 1, on a finite grid) applied to the monotonised loss
    ``L~_i(lam) = max_{lam' >= lam} L_i(lam')`` (their section on non-monotone losses), which is
    non-increasing, bounded by 1 and at least ``L_i``: ``lam_hat`` is the smallest grid value with
    ``n/(n+1) mean_i L~_i(lam) + 1/(n+1) <= alpha``, and for a new item exchangeable with the
    calibration items ``E[L_{n+1}(lam_hat)] <= E[L~_{n+1}(lam_hat)] <= alpha``. With the 0/1 loss
    ``1[score >= lam and wrong]`` on the grid of calibration scores and ``+inf`` it is
    :func:`conformal_threshold`.
    """
    loss = np.asarray(loss, dtype=float)
    grid = np.asarray(thresholds, dtype=float)
    if loss.ndim != 2 or loss.shape[0] < 1:
        raise ValueError(f"loss must be an (n, L) array with n >= 1, got shape {loss.shape}")
    if grid.shape != (loss.shape[1],) or np.isnan(grid).any() or (np.diff(grid) <= 0).any():
        raise ValueError(f"thresholds must be a strictly increasing grid of {loss.shape[1]} values "
                         f"(one per column of loss), got shape {grid.shape}")
    if not np.isfinite(loss).all() or (loss < 0).any() or (loss > 1).any():
        raise ValueError("loss must lie in [0, 1] (a bounded loss, e.g. a probability of a wrong answer)")
    if (loss[:, -1] > 0).any():
        raise ValueError("loss must be 0 at the grid's last threshold for every item: end the grid with a "
                         "threshold that answers nothing (e.g. +inf)")
    if not (isinstance(alpha, (int, float, np.floating)) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r}: must lie in (0, 1), e.g. 0.05")
    n = len(loss)
    monotone = np.maximum.accumulate(loss[:, ::-1], axis=1)[:, ::-1]    # sup over the thresholds above
    ok = (n / (n + 1)) * monotone.mean(0) + 1 / (n + 1) <= alpha
    thr = float(grid[np.argmax(ok)]) if ok.any() else float("inf")
    return ConformalResult(thr, float(alpha), n, "conformal risk control of a bounded loss, monotonised "
                           "(Angelopoulos et al. 2022)")
