"""Distribution cards and verification systems: what to report about a model instead of "it knows".

A *distribution card* characterises a model by its answer distributions on a set of facts, against
a reference model (the base): how spread its answers are (entropy), how far post-training moved
them (KL from the base), how often its top answer is right, how well its confidence tracks that
(calibration error), how much mass it puts on known misconceptions and outside the candidate set
— each with an interval. `card` computes one from two `score_world` tables; `cards` lays several
out as a table.

A *verification system* answers with the model's top answer only when a score (the model's own
confidence, or a verifier's) clears a threshold fitted by conformal risk control on calibration
facts; `verification_system` fits it on one half of the facts and reports the realised error and
coverage on the other half, each with a Wilson interval.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import calibration, compare, selective
from . import stats as st
from .stats.checks import check_int

__all__ = ["Card", "VerificationResult", "card", "cards", "characterise", "split_facts", "verification_splits",
           "verification_system"]


@dataclass(frozen=True)
class Card:
    """A model's distribution card: every field a `dint.stats.Result` (estimate, interval, n, method)."""

    model: str
    n: int
    entropy: st.Result            # mean entropy (nats) of the answer distribution over the candidate set
    kl_from_base: st.Result       # mean KL(model || base) over the candidate set
    accuracy: st.Result           # the top answer is the true value (Wilson)
    ece: st.Result                # debiased l2 calibration error of the top answer's probability
    misconception_mass: st.Result  # mean probability of the misconception, on facts that have one
    mass_outside: st.Result       # mean probability outside the candidate set (format)

    def asdict(self) -> dict:
        return asdict(self)

    def row(self) -> dict:
        """One flat table row: ``<field>``, ``<field>_low``, ``<field>_high`` per measure."""
        out = {"model": self.model, "n": self.n}
        for name in ("entropy", "kl_from_base", "accuracy", "ece", "misconception_mass", "mass_outside"):
            r = getattr(self, name)
            out.update({name: r.statistic, f"{name}_low": r.confidence_interval.low,
                        f"{name}_high": r.confidence_interval.high})
        return out


def _select(scores: pd.DataFrame, facts: pd.DataFrame, form: str, split: str | None) -> pd.DataFrame:
    keep = facts["fact"] if split is None else facts.loc[facts["split"] == split, "fact"]
    return scores[(scores["form"] == form) & scores["fact"].isin(keep)]


def _mean(x, n_resamples, rng) -> st.Result:
    x = np.asarray(x, float)
    if len(x) == 0:
        return st.Result(float("nan"), st.ConfidenceInterval(float("nan"), float("nan")), 0, "no items")
    if len(x) < 2 or np.ptp(x) == 0:
        return st.Result(float(x.mean()), st.ConfidenceInterval(float(x.mean()), float(x.mean())), len(x),
                         "mean, constant values")
    return st.bootstrap_mean(x, n_resamples=n_resamples, rng=rng)


def card(model: str, base_scores: pd.DataFrame, scores: pd.DataFrame, facts: pd.DataFrame, *, form: str = "qa",
         split: str | None = "heldout", n_bins: int = 10, n_resamples: int = 2000, rng: int = 0) -> Card:
    """The distribution card of a model scored on the same items as the base.

    Parameters
    ----------
    model : the model's name on the card
    base_scores, scores : `dint.pipeline.artifacts.score_world` tables of the reference (base) model and of
        the model (``fact, form, candidate, answer, p_set, mass_outside, is_true``)
    facts : the world's (or a real data set's) facts table: ``fact``, ``split``, and optionally
        ``misconception`` (the popular wrong value; empty where none)
    form : the prompt form (``"qa"`` or ``"statement"``)
    split : the facts described (``"heldout"``, ``"train"``, or None for all)
    n_bins : equal-width bins of the calibration error
    n_resamples, rng : of the bootstrap intervals

    Returns
    -------
    Card
    """
    if form not in ("qa", "statement"):
        raise ValueError(f"form={form!r}: choose 'qa' or 'statement'")
    if split not in ("heldout", "train", None):
        raise ValueError(f"split={split!r}: choose 'heldout', 'train' or None")
    if not {"fact", "split"} <= set(getattr(facts, "columns", ())):
        raise ValueError("facts must be a facts table with 'fact' and 'split' columns")
    b, s = _select(base_scores, facts, form, split), _select(scores, facts, form, split)
    if len(s) == 0:
        raise ValueError(f"scores has no items of form {form!r} in split {split!r}")
    items = compare.shift(b, s, facts)
    _, logp, _ = compare.distributions(s)
    conf = np.exp(logp.max(axis=1))
    correct = items["correct_post"].to_numpy(bool)
    n = len(items)
    acc = st.proportion(int(correct.sum()), n)
    ece = calibration.ece(conf, correct, n_bins=n_bins, debiased=True, n_resamples=n_resamples, rng=rng)
    mis = np.array([], float)
    if "misconception" in facts.columns:
        m = facts.set_index("fact")["misconception"].fillna("").astype(str)
        rows = s[s["answer"].to_numpy() == m.reindex(s["fact"]).to_numpy()]
        has = m.loc[items["fact"]].to_numpy() != ""
        by_fact = rows.groupby("fact")["p_set"].sum()
        mis = by_fact.reindex(items["fact"][has]).fillna(0.0).to_numpy(float)
    outside = s.groupby(["fact", "form"])["mass_outside"].first().to_numpy(float)
    return Card(model=model, n=n, entropy=_mean(items["entropy_post"], n_resamples, rng),
                kl_from_base=_mean(items["kl"], n_resamples, rng), accuracy=acc, ece=ece,
                misconception_mass=_mean(mis, n_resamples, rng), mass_outside=_mean(outside, n_resamples, rng))


def cards(base_scores: pd.DataFrame, scores: dict, facts: pd.DataFrame, **kw) -> pd.DataFrame:
    """`card` of every model in ``scores`` (name -> score table), one row each (`Card.row`)."""
    if not scores:
        raise ValueError("scores is empty: pass {model name: score_world table}")
    return pd.DataFrame([card(name, base_scores, s, facts, **kw).row() for name, s in scores.items()])


def split_facts(facts, share: float = 0.5, *, rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split fact ids at random into calibration and test sets (``share`` to calibration)."""
    facts = np.asarray(facts)
    if not 0 < share < 1:
        raise ValueError(f"share={share!r}: must lie in (0, 1)")
    if len(facts) < 2:
        raise ValueError("need at least two facts to split")
    perm = np.random.default_rng(rng).permutation(len(facts))
    k = round(share * len(facts))
    k = min(max(k, 1), len(facts) - 1)
    return np.sort(facts[perm[:k]]), np.sort(facts[perm[k:]])


@dataclass(frozen=True)
class VerificationResult:
    """A fitted verification system and its realised behaviour on test facts.

    ``error`` is the realised joint error P(answered and wrong) on test facts (the rate conformal
    risk control bounds by ``alpha``), ``coverage`` the share answered, ``selective_accuracy`` the
    share right among answered, ``error_unverified`` the error of always answering (1 − accuracy);
    each a `Result` with a Wilson interval. ``within_guarantee``: the realised error is at most
    ``alpha``; ``compatible``: its interval reaches down to ``alpha`` (the guarantee holds in
    expectation over calibration sets, so one test set may exceed ``alpha`` by chance).
    """

    threshold: float
    alpha: float
    n_calibration: int
    error: st.Result
    coverage: st.Result
    selective_accuracy: st.Result
    error_unverified: st.Result
    within_guarantee: bool
    compatible: bool

    def row(self) -> dict:
        out = {"threshold": self.threshold, "alpha": self.alpha, "n_calibration": self.n_calibration,
               "within_guarantee": self.within_guarantee, "compatible": self.compatible}
        for name in ("error", "coverage", "selective_accuracy", "error_unverified"):
            r = getattr(self, name)
            out.update({name: r.statistic, f"{name}_low": r.confidence_interval.low,
                        f"{name}_high": r.confidence_interval.high})
        out["n_test"] = self.error.n
        return out


def verification_system(score, correct, calibration_mask, *, alpha: float = 0.05) -> VerificationResult:
    """Fit a conformal answer-threshold on calibration items and evaluate it on the rest.

    Parameters
    ----------
    score : (n,) the score the system thresholds (the model's confidence, or a verifier's score)
    correct : (n,) whether the model's answer is right
    calibration_mask : (n,) bool, True for calibration items (e.g. from `split_facts`)
    alpha : target of P(answered and wrong) on new items

    Returns
    -------
    VerificationResult
    """
    s, y = np.asarray(score, float), np.asarray(correct, bool)
    cal = np.asarray(calibration_mask, bool)
    if not (s.shape == y.shape == cal.shape) or s.ndim != 1:
        raise ValueError(f"score, correct and calibration_mask must be (n,) arrays of one length; got "
                         f"{s.shape}, {y.shape}, {cal.shape}")
    if not cal.any() or cal.all():
        raise ValueError("calibration_mask must mark some items, not all: the rest are the test items")
    if np.isnan(s).any():
        raise ValueError("score contains NaN")
    fit = selective.conformal_threshold(s[cal], y[cal], alpha=alpha)
    test_s, test_y = s[~cal], y[~cal]
    answered = test_s >= fit.threshold
    n = len(test_s)
    err = st.proportion(int(np.sum(answered & ~test_y)), n)
    cov = st.proportion(int(answered.sum()), n)
    sel = (st.proportion(int(np.sum(answered & test_y)), int(answered.sum())) if answered.any()
           else st.Result(float("nan"), st.ConfidenceInterval(float("nan"), float("nan")), 0, "none answered"))
    unverified = st.proportion(int(np.sum(~test_y)), n)
    return VerificationResult(threshold=fit.threshold, alpha=float(alpha), n_calibration=int(cal.sum()), error=err,
                              coverage=cov, selective_accuracy=sel, error_unverified=unverified,
                              within_guarantee=bool(err.statistic <= alpha),
                              compatible=bool(err.confidence_interval.low <= alpha))


def verification_splits(score, correct, *, alpha: float = 0.05, share: float = 0.5, n_splits: int = 200,
                        rng: int = 0, confidence_level: float = 0.95) -> dict:
    """The verification system's realised error and coverage averaged over random calibration/test splits.

    Conformal risk control bounds the joint error in expectation over the draw of calibration and
    test items; one split shows one draw. Averaging over ``n_splits`` random splits of the same
    items (exchangeable under a random split) estimates that expectation.

    Parameters
    ----------
    score, correct : (n,) as in `verification_system`, one entry per fact
    alpha, share : target joint error, share of items used for calibration
    n_splits : random splits (seeded by ``rng``)
    confidence_level : of the Monte-Carlo interval of each mean (Student-t over splits)

    Returns
    -------
    dict of `dint.stats.Result`: ``error`` (mean realised joint error; its ``pvalue`` is the
    one-sided t-test of mean > alpha), ``coverage``, ``error_unverified`` (mean 1 − accuracy on
    the test halves); and ``worst_split`` (the largest realised error over splits, a float).
    """
    from scipy import stats as sps

    s, y = np.asarray(score, float), np.asarray(correct, bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"score and correct must be (n,) arrays of one length; got {s.shape}, {y.shape}")
    check_int("n_splits", n_splits, 2)
    rng = np.random.default_rng(rng)
    k = min(max(round(share * len(s)), 1), len(s) - 1)
    err, cov, unv = np.empty(n_splits), np.empty(n_splits), np.empty(n_splits)
    for i in range(n_splits):
        cal = np.zeros(len(s), bool)
        cal[rng.permutation(len(s))[:k]] = True
        thr = selective.conformal_threshold(s[cal], y[cal], alpha=alpha).threshold
        answered = s[~cal] >= thr
        err[i] = np.mean(answered & ~y[~cal])
        cov[i] = answered.mean()
        unv[i] = np.mean(~y[~cal])
    out = {}
    for name, x in (("error", err), ("coverage", cov), ("error_unverified", unv)):
        m, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(n_splits))
        h = float(sps.t.ppf(0.5 + confidence_level / 2, n_splits - 1) * se)
        p = float(sps.t.sf((m - alpha) / se, n_splits - 1)) if name == "error" and se > 0 else float("nan")
        reason = (f"the realised error is {m:.4g} on every split: the t-test has no variance"
                  if name == "error" and se == 0 else "")
        out[name] = st.Result(m, st.ConfidenceInterval(m - h, m + h), n_splits,
                              f"mean over {n_splits} random splits, t interval", p, reason=reason)
    out["worst_split"] = float(err.max())
    return out


def characterise(model: str, base_scores: pd.DataFrame, scores: pd.DataFrame, facts: pd.DataFrame, *,
                 form: str = "qa", alpha: float = 0.05, n_splits: int = 200, n_bins: int = 10,
                 n_resamples: int = 2000, rng: int = 0) -> dict:
    """A model's distribution card, calibration and verification on held-out facts, as quotable numbers.

    The card (`card`); the Brier score of the top answer's confidence with Murphy's decomposition;
    and a verification system that thresholds the model's own confidence, fitted by conformal risk
    control at ``alpha`` on half of the facts: its realised joint error and coverage on one split
    (`verification_system`, Wilson intervals) and averaged over ``n_splits`` random splits
    (`verification_splits`, with the one-sided test of "the mean error exceeds alpha").

    Returns
    -------
    dict name -> `dint.stats.Result` or float (``card_*``, ``brier*``, ``verify_*``), for
    `dint.pipeline.report.Outputs.numbers`.
    """
    # checked before the card's bootstrap, which takes a while
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: must lie in (0, 1), e.g. 0.05")
    check_int("n_splits", n_splits, 2)
    c = card(model, base_scores, scores, facts, form=form, split="heldout", n_bins=n_bins,
             n_resamples=n_resamples, rng=rng)
    s = _select(scores, facts, form, "heldout")
    items = compare.shift(_select(base_scores, facts, form, "heldout"), s, facts)
    _, logp, _ = compare.distributions(s)
    conf, correct = np.exp(logp.max(axis=1)), items["correct_post"].to_numpy(bool)
    out = {f"card_{k}": getattr(c, k) for k in ("entropy", "kl_from_base", "accuracy", "ece", "misconception_mass",
                                                  "mass_outside")}
    b = calibration.brier(conf, correct, n_bins=n_bins)
    out.update({"brier": b.statistic, "brier_reliability": b.reliability, "brier_resolution": b.resolution,
                "brier_uncertainty": b.uncertainty})
    cal, _ = split_facts(items["fact"].to_numpy(), rng=rng)
    v = verification_system(conf, correct, np.isin(items["fact"].to_numpy(), cal), alpha=alpha)
    out.update({"verify_alpha": float(alpha), "verify_error": v.error, "verify_coverage": v.coverage,
                "verify_selective_accuracy": v.selective_accuracy, "verify_within_guarantee": v.within_guarantee})
    splits = verification_splits(conf, correct, alpha=alpha, n_splits=n_splits, rng=rng)
    out.update({"verify_mean_error": splits["error"], "verify_mean_coverage": splits["coverage"],
                "verify_worst_split": splits["worst_split"], "verify_n_splits": int(n_splits), "n_heldout": c.n})
    return out
