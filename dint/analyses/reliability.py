"""Trust against reliability: calibration, confidence and temperature, per model and paired.

One data convention throughout: an *answer table* (`answer_table`) has one row per item (a fact in
one prompt form) and the columns ``confidence`` (the largest probability over the item's candidate
set, ``p_set``), ``agreement`` (the exact probability that two independent draws give the same
answer, ``sum p^2``), ``correct`` (the top answer is the true value), ``entropy`` (nats) and
``distinct`` (the expected number of distinct answers among ``n_draws`` draws). Two models' tables
on the same facts are compared *paired*: resampling and permuting facts, never models separately
(`dint.stats.resampling`). Diversity, per input and across inputs, is `dint.analyses.diversity`.

Results are tidy DataFrames (one row per model and measure: ``estimate``, ``ci_low``, ``ci_high``,
``pvalue``, ``n``, ``method``, ``reason``: why a NaN is not estimable, empty otherwise; `dint.stats.ROW`) so that a
notebook can concatenate every test it makes and adjust them together (`dint.stats.holm`, which
leaves the tests that could not be made out of the family); single results are `dint.stats.Result`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from .. import calibration, compare, divergence, selective, stats
from ..calibration import ece_difference   # the toolkit's, used here and named here as before
from ..stats.resampling import bootstrap_values, mean_difference
from ..stats import ConfidenceInterval, Result
from ..stats.checks import check_int

__all__ = ["GPT4_ECE", "KADAVATH_T", "two_draw_agreement", "answer_table", "auroc", "calibration_changes",
           "calibration_summary", "ece_difference", "expected_distinct", "held_out", "log_temperature_values",
           "temperature", "temperature_scaling"]

# OpenAI (2023), GPT-4 Technical Report, arXiv:2303.08774, Fig. 8: ECE on an MMLU subset
GPT4_ECE = {"pre-trained": 0.007, "PPO": 0.074}
# Kadavath et al. (2022), arXiv:2207.05221, sec. 3.3: the temperature that recalibrates RLHF policies
KADAVATH_T = 2.5

# the tables of this module: labels, then `dint.stats.ROW` (``reason``: why a NaN is not estimable)
TIDY_COLUMNS = ["model", "reference", "measure", *stats.ROW]


# ------------------------------------------------------------------------------ per item
def _as_prob_rows(p, name="p"):
    p = np.asarray(p, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"{name} must be an (m, K) array of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise ValueError(f"{name} rows must be finite, non-negative and sum to 1; exponentiate and "
                         "renormalise log-probabilities first")
    return p


def two_draw_agreement(p) -> np.ndarray:
    """Probability that two independent draws from each row's distribution agree, ``sum_k p_k^2``.

    Parameters
    ----------
    p : (m, K) array, rows are probability distributions

    Returns
    -------
    (m,) array in [1/K, 1]: the exact sample-agreement confidence (no sampling needed).
    """
    p = _as_prob_rows(p)
    return np.sum(p ** 2, axis=1)


def expected_distinct(p, n: int) -> np.ndarray:
    """Expected number of distinct answers among ``n`` independent draws, exactly.

    Parameters
    ----------
    p : (m, K) array, rows are probability distributions
    n : number of draws, n >= 1

    Returns
    -------
    (m,) array in [1, min(n, K)]: ``sum_k 1 - (1 - p_k)^n`` (linearity of expectation over the
    indicator that answer k appears at least once).
    """
    check_int("n", n, 1)
    p = _as_prob_rows(p)
    with np.errstate(divide="ignore"):   # p = 1: log1p(-1) = -inf, and the answer surely appears
        return np.sum(-np.expm1(n * np.log1p(-np.minimum(p, 1.0))), axis=1)


def answer_table(scores: pd.DataFrame, facts: pd.DataFrame | None = None, *, n_draws: int = 8,
                 temperature: float = 1.0) -> pd.DataFrame:
    """One row per item of a one-form score table: confidence, agreement, correctness, diversity.

    Parameters
    ----------
    scores : a `dint.pipeline.artifacts.score_world` table restricted to one prompt form
    facts : the world's ``facts`` table, optional; its ``split``, ``type`` and ``relation`` are joined
    n_draws : draws for the expected number of distinct answers
    temperature : softmax temperature applied to each item's candidate-set log-probabilities first

    Returns
    -------
    DataFrame ``fact, form, confidence, agreement, correct, p_true, entropy, distinct,
    mass_outside`` (+ ``split, type, relation``), sorted by fact. ``confidence`` is the largest
    ``p_set`` (renormalised over the candidate set, so mass outside the set does not count).
    """
    forms = scores["form"].unique() if "form" in scores.columns else []
    if len(forms) != 1:
        raise ValueError(f"scores must hold exactly one prompt form, got {list(forms)}; "
                         "filter it first, e.g. scores[scores.form == 'qa']")
    items, logp, true = compare.distributions(scores)
    if temperature != 1.0:
        logp = calibration.apply_temperature(logp, temperature)
    p = np.exp(logp)
    top = p.argmax(axis=1)
    out = items.copy()
    out["confidence"] = p.max(axis=1)
    out["agreement"] = two_draw_agreement(p)
    out["correct"] = true[np.arange(len(p)), top]
    out["p_true"] = np.where(true, p, 0.0).sum(axis=1)
    out["entropy"] = divergence.entropy(logp)
    out["distinct"] = expected_distinct(p, n_draws)
    out["mass_outside"] = scores.groupby("fact")["mass_outside"].first().loc[items["fact"]].to_numpy()
    if facts is not None:
        cols = [c for c in ("split", "type", "relation") if c in facts.columns]
        out = out.merge(facts[["fact", *cols]], on="fact", how="left", validate="one_to_one")
    return out


# ------------------------------------------------------------------------------ AUROC
def auroc(score, correct, *, confidence_level: float = 0.95) -> Result:
    """Area under the ROC curve of a confidence score for correctness, with DeLong's interval.

    Parameters
    ----------
    score : (n,) array, higher means more confident
    correct : (n,) boolean or 0/1 array; needs at least one correct and one wrong item
    confidence_level : level of the two-sided interval

    Returns
    -------
    Result with ``statistic`` = P(score of a correct item > score of a wrong one) + P(tie)/2,
    the DeLong Wald interval (clipped to [0, 1]; NaN with fewer than 2 items in a class) and the
    two-sided Mann-Whitney p-value for AUROC = 0.5 (no discrimination).

    Notes
    -----
    AUROC = U / (n_1 n_0) with U the Mann-Whitney statistic of the correct items' scores
    (``scipy.stats.mannwhitneyu``, normal approximation with tie correction). Variance from the
    structural components of DeLong, DeLong & Clarke-Pearson (1988), computed from mid-ranks
    (Sun & Xu 2014); the Wald interval is pROC's default.
    """
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")
    s, y = calibration.paired_inputs("score", score, "correct", correct, unit=False, min_n=2)
    pos, neg = s[y == 1], s[y == 0]
    n1, n0 = len(pos), len(neg)
    if n1 == 0 or n0 == 0:
        raise ValueError(f"correct has {n1} correct and {n0} wrong items; AUROC needs both classes")
    mw = sps.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic")
    a = float(mw.statistic) / (n1 * n0)
    low = high = float("nan")
    if n1 > 1 and n0 > 1:
        r_all = sps.rankdata(np.r_[pos, neg])
        v10 = (r_all[:n1] - sps.rankdata(pos)) / n0          # per correct item: share of wrong below
        v01 = 1.0 - (r_all[n1:] - sps.rankdata(neg)) / n1    # per wrong item: share of correct above
        se = math.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)
        z = sps.norm.ppf(0.5 + confidence_level / 2)
        low, high = max(0.0, a - z * se), min(1.0, a + z * se)
    return Result(a, ConfidenceInterval(low, high), n1 + n0,
                  "AUROC, DeLong interval, Mann-Whitney test of 0.5", float(mw.pvalue))


# ------------------------------------------------------------------------------ temperature
def temperature(logp, labels, *, confidence_level: float = 0.95,
                bounds: tuple[float, float] = (0.05, 20.0), null: float = 1.0) -> Result:
    """Fitted softmax temperature with its profile-likelihood interval and the test of T = 1.

    Parameters
    ----------
    logp : (n, K) array of log-probabilities (or logits); ``-inf`` for padded candidates
    labels : (n,) integer array, the true candidate of each item
    confidence_level : level of the interval
    bounds : search interval for T, as in `dint.calibration.fit_temperature`
    null : the temperature tested (default 1: the model's own probabilities; e.g. `KADAVATH_T`)

    Returns
    -------
    Result with ``statistic`` the NLL-minimising T (the same fit as `calibration.fit_temperature`),
    the profile-likelihood interval ``{T : 2n [NLL(T) - NLL(T_hat)] <= chi2_1(level)}`` and the
    likelihood-ratio p-value of T = ``null``. An interval end that does
    not cross inside ``bounds`` is set to the bound and the method says so.

    Notes
    -----
    Temperature scaling: Guo et al. (2017). Likelihood-ratio test and interval: Wilks (1938);
    profile-likelihood intervals: Venzon & Moolgavkar (1988). Items are treated as independent.
    """
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")
    if isinstance(null, bool) or not isinstance(null, (int, float)) or not 0 < null < math.inf:
        raise ValueError(f"null={null!r}: give the temperature to test, a finite number > 0 (1: no scaling)")
    fit = calibration.fit_temperature(logp, labels, bounds=bounds)
    nll, n = calibration.temperature_nll(logp, labels), fit.n
    t_hat, nll_hat = fit.temperature, fit.nll_after
    lo, hi = bounds
    crit = sps.chi2.ppf(confidence_level, 1)

    def excess(u):   # deviance above the minimum, minus the critical value, at T = exp(u)
        return 2 * n * (nll(math.exp(u)) - nll_hat) - crit

    ends, truncated = [], False
    for edge in (math.log(lo), math.log(hi)):
        if excess(edge) <= 0:
            ends.append(math.exp(edge))
            truncated = True
        else:
            ends.append(math.exp(optimize.brentq(excess, *sorted((math.log(t_hat), edge)), xtol=1e-10)))
    lr = max(0.0, 2 * n * (nll(float(null)) - nll_hat))
    method = f"temperature (NLL), profile-likelihood interval, likelihood-ratio test of T = {null:g}"
    if truncated:
        method += f" (interval truncated at the search bounds {bounds})"
    return Result(t_hat, ConfidenceInterval(*ends), n, method, float(sps.chi2.sf(lr, 1)))


def log_temperature_values(logp, labels, *, n_resamples: int = 2000, rng: np.random.Generator | int = 0,
                           bounds: tuple[float, float] = (0.05, 20.0), n_grid: int = 601) -> tuple:
    """log T fitted on the items and on each bootstrap resample of them, for paired comparisons.

    Parameters
    ----------
    logp : (n, K) array of log-probabilities (or logits); ``-inf`` for padded candidates
    labels : (n,) integer array, the true candidate of each item
    n_resamples : bootstrap resamples of the items
    rng : int seed (the same resamples for every model of the same n: `dint.stats.resampling.bootstrap_values`)
        or ``numpy.random.Generator``
    bounds : the range of T, as in `dint.calibration.fit_temperature`
    n_grid : log-spaced temperatures the NLL curve is evaluated at

    Returns
    -------
    (estimate, (n_resamples,) array): the NLL-minimising log T on the items and on each resample, as
    `dint.stats.resampling.bootstrap_values` returns them, so that two models' values on the same items pair
    up resample by resample (`dint.stats.resampling.paired_difference`). A minimum at a bound is the bound.

    Notes
    -----
    Each resample reweights the items' NLL curves (`dint.calibration.temperature_nll_items`, item-additive) and
    takes the minimum on the grid, refined by the parabola through its neighbours (spacing of log T
    ``log(high / low) / (n_grid - 1)``, 0.01 by default; the refinement brings the error far below it).
    Temperature scaling: Guo et al. (2017); the bootstrap: Efron & Tibshirani (1993).
    """
    check_int("n_grid", n_grid, 3)
    lo, hi = bounds
    if not 0 < lo < 1 < hi < math.inf:
        raise ValueError(f"bounds={bounds!r}: need 0 < low < 1 < high < inf")
    u = np.linspace(math.log(lo), math.log(hi), n_grid)
    curves = calibration.temperature_nll_items(logp, labels, np.exp(u))   # (n, G)
    h = u[1] - u[0]

    def value(s):   # s: (R, G) summed NLL curves -> (R,) refined argmin in log T
        i = np.clip(s.argmin(axis=1), 1, n_grid - 2)
        r = np.arange(len(s))
        f0, f1, f2 = s[r, i - 1], s[r, i], s[r, i + 1]
        curv = f0 - 2 * f1 + f2
        step = np.where(curv > 0, 0.5 * (f0 - f2) / np.where(curv > 0, curv, 1.0), 0.0)
        out = u[i] + h * np.clip(step, -1.0, 1.0)
        edge = s.argmin(axis=1)
        return np.where(edge == 0, u[0], np.where(edge == n_grid - 1, u[-1], out))

    return bootstrap_values(lambda w: w @ curves, value, len(curves), n_resamples, rng)


# ------------------------------------------------------------------------------ tidy summaries
def tidy_row(model, measure, r, reference=None, method=None, reason=""):
    """A row of this module's tables: ``model, reference, measure`` then `dint.stats.ROW` (`Result.row`);
    ``r`` a `Result`, or a plain number (no interval, no test) with its ``method`` and ``reason``."""
    if isinstance(r, Result):
        row = r.row(model=model, reference=reference, measure=measure)
        return {**row, "method": method or r.method}
    return {"model": model, "reference": reference, "measure": measure, "estimate": float(r), "ci_low": np.nan,
            "ci_high": np.nan, "pvalue": np.nan, "n": np.nan, "method": method or "", "reason": reason}


def _check_answers(answers, need=("confidence", "correct")):
    if not isinstance(answers, dict) or not answers:
        raise ValueError("answers must be a non-empty dict {model name: answer_table(...)}")
    for name, a in answers.items():
        missing = sorted(set(need) - set(a.columns))
        if missing:
            raise ValueError(f"answers[{name!r}] lacks column(s) {missing}; build it with answer_table")
        if len(a) < 2:
            raise ValueError(f"answers[{name!r}] has {len(a)} items; need at least 2")


def calibration_summary(answers: dict, *, n_bins: int = 15, confidence_level: float = 0.95,
                        n_resamples: int = 2000, rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Per model: accuracy, confidence, ECE, debiased calibration error, Brier and its parts, AUROC, AURC.

    Parameters
    ----------
    answers : {model name: `answer_table` rows to evaluate (e.g. the held-out facts)}
    n_bins : equal-width bins for ECE and the Brier decomposition
    confidence_level, n_resamples, rng : intervals (bootstrap where no closed form exists)

    Returns
    -------
    Tidy DataFrame (``model, reference, measure, estimate, ci_low, ci_high, pvalue, n, method, reason``);
    measures ``accuracy`` (Wilson), ``confidence`` and ``overconfidence`` (mean confidence minus
    correctness; t intervals), ``ece`` and ``ece_debiased`` (bootstrap, `calibration.ece`), ``brier``
    (t interval of the per-item squared error) with ``brier_reliability``, ``brier_resolution``,
    ``brier_uncertainty``, ``brier_within_bin`` (`calibration.brier`), ``auroc_confidence`` and
    ``auroc_agreement`` (`auroc`, with the Mann-Whitney p-value; NaN when a class is empty),
    ``aurc`` (`selective.risk_coverage`) and ``mass_outside`` (mean mass outside the candidate set).
    """
    _check_answers(answers)
    rows = []
    for name, a in answers.items():
        c, y = a["confidence"].to_numpy(float), a["correct"].to_numpy(bool)
        rows.append(tidy_row(name, "accuracy", stats.proportion(int(y.sum()), len(y), confidence_level=confidence_level)))
        rows.append(tidy_row(name, "confidence", stats.bootstrap_mean(c, method="t", confidence_level=confidence_level)))
        rows.append(tidy_row(name, "overconfidence", stats.bootstrap_mean(c - y, method="t",
                                                                      confidence_level=confidence_level)))
        for measure, debiased in (("ece", False), ("ece_debiased", True)):
            rows.append(tidy_row(name, measure, calibration.ece(c, y, n_bins=n_bins, debiased=debiased, rng=rng,
                                                            confidence_level=confidence_level,
                                                            n_resamples=n_resamples)))
        b = calibration.brier(c, y, n_bins=n_bins)
        rows.append(tidy_row(name, "brier", stats.bootstrap_mean((c - y) ** 2, method="t",
                                                             confidence_level=confidence_level)))
        rows += [tidy_row(name, f"brier_{k}", getattr(b, k), method="Murphy decomposition")
                 for k in ("reliability", "resolution", "uncertainty", "within_bin")]
        for measure, col in (("auroc_confidence", "confidence"), ("auroc_agreement", "agreement")):
            if col in a.columns and 0 < y.sum() < len(y):
                rows.append(tidy_row(name, measure, auroc(a[col].to_numpy(float), y, confidence_level=confidence_level)))
            elif col in a.columns:
                rows.append(tidy_row(name, measure, np.nan, method="AUROC undefined: one class is empty",
                                 reason="every item is correct, or every item is wrong: AUROC is undefined"))
        rows.append(tidy_row(name, "aurc", selective.risk_coverage(c, y).aurc, method="AURC (Geifman et al. 2019)"))
        if "mass_outside" in a.columns:
            rows.append(tidy_row(name, "mass_outside", stats.bootstrap_mean(a["mass_outside"].to_numpy(float), method="t",
                                                                        confidence_level=confidence_level)))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def aligned(a, b, cols):
    m = a[["fact", *cols]].merge(b[["fact", *cols]], on="fact", suffixes=("_a", "_b"), validate="one_to_one")
    if len(m) < 2:
        raise ValueError("the two answer tables share fewer than 2 facts; compare models on the same facts")
    return m


def calibration_changes(answers: dict, reference: str, *, models=None, n_bins: int = 15,
                        confidence_level: float = 0.95, n_resamples: int = 2000, n_test_resamples: int = 9999,
                        rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Paired change in ECE, debiased calibration error and Brier score of each model from a reference.

    Parameters
    ----------
    answers : {model name: `answer_table`}, paired with the reference by ``fact``
    reference : the key of ``answers`` to compare against (e.g. ``"base"``)
    models : keys to compare (default: every other key)
    n_bins : equal-width bins, as in `ece_difference`
    confidence_level : level of the intervals
    n_resamples : resamples of the Brier difference's interval
    n_test_resamples : bootstrap resamples of the ECE differences (interval and test) and sign
        flips of the Brier test
    rng : int seed or ``numpy.random.Generator``

    Returns
    -------
    Tidy DataFrame with ``reference`` set; measures ``d_ece``, ``d_ece_debiased`` (`ece_difference`)
    and ``d_brier`` (`dint.stats.resampling.mean_difference` of the per-item squared errors). Positive: worse than the
    reference.
    """
    _check_answers(answers)
    if reference not in answers:
        raise ValueError(f"reference={reference!r}: not a key of answers {list(answers)}")
    models = [m for m in answers if m != reference] if models is None else list(models)
    bad = sorted(set(models) - set(answers))
    if bad:
        raise ValueError(f"models: {bad} are not keys of answers {list(answers)}")
    rows = []
    for name in models:
        m = aligned(answers[name], answers[reference], ["confidence", "correct"])
        ca, ya = m["confidence_a"].to_numpy(float), m["correct_a"].to_numpy(bool)
        cb, yb = m["confidence_b"].to_numpy(float), m["correct_b"].to_numpy(bool)
        for measure, debiased in (("d_ece", False), ("d_ece_debiased", True)):
            rows.append(tidy_row(name, measure, ece_difference(ca, ya, cb, yb, n_bins=n_bins, debiased=debiased, rng=rng,
                                                           confidence_level=confidence_level,
                                                           n_resamples=n_test_resamples), reference))
        rows.append(tidy_row(name, "d_brier", mean_difference((ca - ya) ** 2, (cb - yb) ** 2, rng=rng,
                                                          confidence_level=confidence_level, n_resamples=n_resamples,
                                                          n_permutations=n_test_resamples), reference))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def single_form(scores, name):
    if "form" not in scores.columns or scores["form"].nunique() != 1:
        raise ValueError(f"{name} must hold exactly one prompt form; filter it first, e.g. "
                         f"{name}[{name}.form == 'qa']")


def held_out(scores: pd.DataFrame, facts: pd.DataFrame) -> tuple:
    """The held-out items of a one-form score table, for temperatures: (fact ids (m,), log p_set (m, K) with
    ``-inf`` padding, the true candidate (m,))."""
    single_form(scores, "scores")
    items, logp, true = compare.distributions(scores)
    held = facts.set_index("fact").loc[items["fact"], "split"].to_numpy() == "heldout"
    return items["fact"].to_numpy()[held], logp[held], true[held].argmax(axis=1)


def temperature_scaling(scores: pd.DataFrame, facts: pd.DataFrame, *, n_bins: int = 15, n_folds: int = 2,
                        confidence_level: float = 0.95, n_resamples: int = 2000, n_test_resamples: int = 9999,
                        rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Temperature scaling of one model, fitted two ways and evaluated on held-out facts.

    Parameters
    ----------
    scores : a one-form `score_world` table of the model over train and held-out facts
    facts : the world's ``facts`` table (``fact``, ``split`` in {"train", "heldout"})
    n_bins : equal-width bins for ECE
    n_folds : folds for cross-fitting on the held-out facts (>= 2)
    confidence_level : level of the intervals
    n_resamples : bootstrap resamples of each ECE's interval
    n_test_resamples : bootstrap resamples of the ECE changes (interval and test)
    rng : int seed or ``numpy.random.Generator``; also assigns the held-out facts to folds

    Returns
    -------
    Tidy DataFrame (``model`` left empty for the caller) with measures ``t_train`` (T fitted on the
    train facts, `temperature`, with its likelihood-ratio test of T = 1), ``t_heldout`` (T fitted on
    all held-out facts: the temperature they want), ``ece_before`` (held-out), ``ece_after_train``
    and ``d_ece_train`` (held-out ECE after scaling by ``t_train``, and its paired change,
    `ece_difference`), ``ece_after_crossfit`` and ``d_ece_crossfit`` (each held-out fact scaled by a
    T fitted on the other folds). Scaling never changes the top answer, so only confidence moves.

    Notes
    -----
    Guo et al. (2017). The train facts are the ones SFT, DPO and RL were trained on, so a T fitted
    there describes seen facts; cross-fitting (sample splitting, Chernozhukov et al. 2018) gives
    every held-out fact a T fitted on other held-out facts only.
    """
    single_form(scores, "scores")
    check_int("n_folds", n_folds, 2)
    items, logp, true = compare.distributions(scores)
    split = facts.set_index("fact").loc[items["fact"], "split"].to_numpy()
    train, held = split == "train", split == "heldout"
    if train.sum() < 2 or held.sum() < 2 * n_folds:
        raise ValueError(f"scores has {train.sum()} train and {held.sum()} held-out facts; need >= 2 train and "
                         f">= 2 * n_folds held-out facts")
    labels = true.argmax(axis=1)
    gen = np.random.default_rng(rng)

    def conf(lp):
        return np.exp(lp).max(axis=1)

    lh, yh = logp[held], labels[held]
    correct = true[held][np.arange(len(yh)), lh.argmax(axis=1)]
    t_train = temperature(logp[train], labels[train], confidence_level=confidence_level)
    t_held = temperature(lh, yh, confidence_level=confidence_level)
    fold = gen.permutation(np.arange(len(yh)) % n_folds)
    conf_of = {"before": conf(lh), "after_train": conf(calibration.apply_temperature(lh, t_train.statistic)),
               "after_crossfit": np.empty(len(yh))}
    for k in range(n_folds):
        t = temperature(lh[fold != k], yh[fold != k]).statistic
        conf_of["after_crossfit"][fold == k] = conf(calibration.apply_temperature(lh[fold == k], t))
    rows = [tidy_row(None, "t_train", t_train), tidy_row(None, "t_heldout", t_held)]
    for name, c in conf_of.items():
        rows.append(tidy_row(None, f"ece_{name}", calibration.ece(c, correct, n_bins=n_bins, rng=rng, n_resamples=n_resamples,
                                                              confidence_level=confidence_level)))
    for how in ("train", "crossfit"):
        rows.append(tidy_row(None, f"d_ece_{how}", ece_difference(
            conf_of[f"after_{how}"], correct, conf_of["before"], correct, n_bins=n_bins, rng=rng,
            confidence_level=confidence_level, n_resamples=n_test_resamples), reference="unscaled"))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)
