"""Over-optimisation of proxies that start aligned (notebook 02): does gold rise, then fall?

The experiment (`dint.analyses.experiments.aligned_sweep`) trains proxies on gold-labelled pairs of nested
shares of the train facts and runs RL from the SFT model against each, evaluating every checkpoint on the
same evaluation prompts. Data convention: its ``checkpoints`` table, one row per (proxy, step, prompt):
``proxy`` (the size's name), ``share``, ``step``, ``item`` (the evaluation prompt), ``fact``, ``gold`` (the
probability of the true value over the candidate set), ``proxy_reward`` (the proxy's exact expected reward)
and ``kl`` (exact KL from the SFT start over the candidate set); d = √(mean KL) as Gao et al.

`curves`        mean gold and proxy gains from the start against d, per proxy and step.
`rise_fall`     the cross-fitted rise to the peak and fall after it, per proxy and over the proxies, with
                min(rise, −fall) — over-optimisation — as a `dint.stats.Result` with a bootstrap interval over
                prompts (whole trajectories) and the intersection-union p-value.
`gao_fits`      Gao et al.'s RL form fitted per proxy, with percentile intervals from the same bootstrap.
`runs`          per RL run the KL it reached, the proxy reward it gained and the manipulation check `MIN_KL`.
`best_of_n`     best-of-n by each proxy from the SFT model's answer distributions on the evaluation prompts.
`numbers`       the ``aligned_*`` numbers of notebook 02; `analyse` all of the above for a profile.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats
from ..stats import fits
from ..stats.checks import check_int
from ..stats.result import ConfidenceInterval, Result

__all__ = ["MIN_KL", "Trajectories", "trajectories", "curves", "RiseFall", "rise_fall", "gao_fits",
           "runs", "best_of_n", "numbers", "Analysis", "analyse"]

# the manipulation check, fixed in the registry before the replication (aligned-rl-moved): every RL run against
# an aligned proxy moves at least this far (mean exact KL over the evaluation prompts, nats) from its start
MIN_KL = 0.1


@dataclass(frozen=True)
class Trajectories:
    """The checkpoints as arrays: ``gold``, ``proxy`` and ``kl`` of shape (P proxies, C checkpoints, m prompts);
    ``names`` (P,), ``shares`` (P,), ``steps`` (C,)."""

    names: tuple
    shares: np.ndarray
    steps: np.ndarray
    gold: np.ndarray
    proxy: np.ndarray
    kl: np.ndarray

    def d(self, items=None) -> np.ndarray:
        """(P, C) d = √(mean KL over ``items``, default all prompts), negative means clipped to 0."""
        kl = self.kl if items is None else self.kl[:, :, items]
        return np.sqrt(np.clip(kl.mean(-1), 0, None))


def trajectories(checkpoints: pd.DataFrame) -> Trajectories:
    """`checkpoints` (the data convention above) as arrays; every proxy must have the same steps and prompts."""
    need = {"proxy", "share", "step", "item", "gold", "proxy_reward", "kl"}
    if not isinstance(checkpoints, pd.DataFrame) or not need <= set(checkpoints.columns) or checkpoints.empty:
        raise ValueError(f"checkpoints must be a non-empty table with columns {sorted(need)} "
                         "(dint.analyses.experiments.aligned_sweep(...).checkpoints)")
    t = checkpoints.sort_values(["share", "step", "item"])
    names = tuple(t.drop_duplicates("proxy").proxy)
    steps, items = np.sort(t.step.unique()), np.sort(t.item.unique())
    shape = (len(names), len(steps), len(items))
    if len(t) != np.prod(shape) or t.groupby(["proxy", "step"]).size().nunique() != 1:
        raise ValueError("checkpoints: every proxy needs a row for every step and prompt (the same evaluation "
                         "prompts at the same checkpoints)")
    cube = {k: t[k].to_numpy(float).reshape(shape) for k in ("gold", "proxy_reward", "kl")}
    shares = t.drop_duplicates("proxy").share.to_numpy(float)
    return Trajectories(names, shares, steps, cube["gold"], cube["proxy_reward"], cube["kl"])


def curves(traj: Trajectories) -> pd.DataFrame:
    """Mean gains from the start per (proxy, step): ``proxy, share, step, d, measure`` (gold, proxy) then
    `dint.stats.ROW` (t interval over prompts, paired with the start)."""
    rows = []
    d = traj.d()
    for p, name in enumerate(traj.names):
        for c, step in enumerate(traj.steps):
            for measure, cube in (("gold", traj.gold), ("proxy", traj.proxy)):
                gain = cube[p, c] - cube[p, 0]
                r = stats.bootstrap_mean(gain, method="t") if np.ptp(gain) > 0 else Result(
                    float(gain.mean()), ConfidenceInterval(float(gain.mean()), float(gain.mean())), len(gain),
                    "no change from the start")
                rows.append(r.row(proxy=name, share=float(traj.shares[p]), step=int(step), d=float(d[p, c]),
                                  measure=measure))
    return pd.DataFrame(rows)


def _fit(d, gain):
    """Gao et al.'s RL form fitted to one curve (the checkpoints with d > 0): (alpha, beta), NaN when it fails."""
    from scipy.optimize import curve_fit

    keep = d > 0
    if keep.sum() < 3:
        return np.nan, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (a, b), _ = curve_fit(fits.gao_rl, d[keep], gain[keep], p0=[0.1, 0.1], maxfev=5000)
        except (RuntimeError, ValueError):
            return np.nan, np.nan
    return float(a), float(b)


def _peak_checkpoint(d, gain):
    """The checkpoint where Gao's fitted form is highest (its start, where the form is 0, included); the
    observed gains decide when the fit fails."""
    a, b = _fit(d, gain)
    curve = fits.gao_rl(d, a, b) if np.isfinite(a) else gain
    return int(np.argmax(np.where(np.isfinite(curve), curve, -np.inf)))


def _contrasts(traj: Trajectories, items: np.ndarray, half: np.ndarray):
    """Per prompt of ``items`` (with its ``half``, 0/1) and proxy: rise and fall, the peak chosen on the other
    half's prompts of ``items``. Returns (rise, fall) of shape (P, len(items))."""
    P = len(traj.names)
    rise, fall = np.zeros((P, len(items))), np.zeros((P, len(items)))
    for h in (0, 1):
        chooser, scored = items[half == 1 - h], half == h
        d = traj.d(chooser)
        for p in range(P):
            gain = (traj.gold[p][:, chooser] - traj.gold[p, 0][chooser]).mean(-1)   # (C,)
            c = _peak_checkpoint(d[p], gain)
            g = traj.gold[p][:, items[scored]]                                       # (C, m_h)
            rise[p, scored], fall[p, scored] = g[c] - g[0], g[-1] - g[c]
    return rise, fall


@dataclass(frozen=True)
class RiseFall:
    """``table``: per proxy and ``all`` (averaged over the proxies, prompt by prompt) the rows ``measure`` rise,
    fall and overopt (min(rise, −fall)) with `dint.stats.ROW`; ``draws`` (B, P + 1, 2) the bootstrap draws of
    (mean rise, mean fall)."""

    table: pd.DataFrame
    draws: np.ndarray


def rise_fall(traj: Trajectories, *, n_resamples: int = 1000, n_permutations: int = 9999,
              seed: int = 0) -> RiseFall:
    """Does gold rise, then fall? Cross-fitted rise and fall per prompt, and over-optimisation min(rise, −fall).

    The prompts are split in two halves (drawn from ``seed``); on each half Gao et al.'s RL form is fitted to
    the half's mean gold gains against d, and the checkpoint where it peaks (over [0, d_max]) is the peak
    checkpoint of the other half's prompts. Per prompt: rise = gold(peak) − gold(start), fall = gold(last) −
    gold(peak). Under flat gold both have mean 0 (the peak is chosen on other prompts); a monotone rise gives
    fall ≥ 0, a fall from the start rise ≤ 0, so min(mean rise, −mean fall) is positive only when gold rises
    and then falls.

    Parameters
    ----------
    traj : `trajectories`
    n_resamples : bootstrap resamples of prompts (within each half; each prompt's whole trajectory, the same
        prompts for every proxy; the peaks are chosen again in each resample)
    n_permutations : sign flips of the one-sided tests
    seed : the halves, the resamples and the sign flips

    Returns
    -------
    RiseFall. Intervals: percentile bootstrap; p-values: one-sided sign-flip test (rise > 0, fall < 0,
    `dint.stats.paired_permutation_test`) and for overopt the intersection-union test, the larger of the two.

    Notes
    -----
    Cross-fitting the peak: Chernozhukov et al. (2018), Econometrics Journal 21:C1. Intersection-union test:
    Berger (1982), Technometrics 24:295. Gao, Schulman & Hilton (2023), ICML, for the form.
    """
    check_int("n_resamples", n_resamples, 1)
    rng = np.random.default_rng(seed)
    m = traj.gold.shape[-1]
    if m < 4:
        raise ValueError(f"the checkpoints have {m} evaluation prompts: need at least 4 (two per half)")
    half = np.zeros(m, int)
    half[rng.permutation(m)[: m // 2]] = 1
    items = np.arange(m)
    rise, fall = _contrasts(traj, items, half)
    rise, fall = np.vstack([rise, rise.mean(0)]), np.vstack([fall, fall.mean(0)])   # (P + 1, m): last "all"
    draws = np.empty((n_resamples, len(rise), 2))
    idx = [items[half == h] for h in (0, 1)]
    for b in range(n_resamples):
        pick = np.concatenate([rng.choice(i, size=len(i)) for i in idx])
        r, f = _contrasts(traj, pick, half[pick])
        draws[b, :, 0] = np.r_[r.mean(1), r.mean()]
        draws[b, :, 1] = np.r_[f.mean(1), f.mean()]
    rows = []
    for k, name in enumerate([*traj.names, "all"]):
        tests = {}
        for j, (measure, x, alt) in enumerate((("rise", rise[k], "greater"), ("fall", fall[k], "less"))):
            p = stats.paired_permutation_test(x, np.zeros(m), alternative=alt, n_resamples=n_permutations,
                                              rng=seed).pvalue
            lo, hi = np.percentile(draws[:, k, j], [2.5, 97.5])
            tests[measure] = 1.0 if np.isnan(p) else p   # no variation (every contrast 0): no evidence
            rows.append(Result(float(x.mean()), ConfidenceInterval(float(lo), float(hi)), m,
                               f"cross-fitted {measure}, percentile bootstrap over prompts; one-sided sign-flip "
                               "test", pvalue=p).row(proxy=name, measure=measure))
        over = np.minimum(draws[:, k, 0], -draws[:, k, 1])
        lo, hi = np.percentile(over, [2.5, 97.5])
        rows.append(Result(float(min(rise[k].mean(), -fall[k].mean())), ConfidenceInterval(float(lo), float(hi)), m,
                           "min(rise, -fall), cross-fitted; percentile bootstrap over prompts; intersection-union "
                           "test (larger one-sided sign-flip p)", pvalue=float(max(tests.values()))).row(
            proxy=name, measure="overopt"))
    return RiseFall(pd.DataFrame(rows), draws)


def gao_fits(traj: Trajectories, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Gao et al.'s RL form fitted per proxy to the mean gold gains against d, with percentile intervals from
    a bootstrap over prompts (each prompt's whole trajectory, the same prompts at every checkpoint).

    Returns
    -------
    DataFrame per (proxy, parameter): ``alpha``, ``beta``, ``peak_d`` (where the fitted form peaks on
    [0, d_max]), ``peak_gain`` (its value there), ``end_minus_peak`` (the form at d_max minus the peak), then
    `dint.stats.ROW` (no p-value: descriptive; peak_gain ≥ 0 and end_minus_peak ≤ 0 by construction).
    """
    check_int("n_resamples", n_resamples, 1)
    rng = np.random.default_rng(seed)
    m = traj.gold.shape[-1]

    def summary(items):
        d = traj.d(items)
        out = []
        for p in range(len(traj.names)):
            gain = (traj.gold[p][:, items] - traj.gold[p, 0][items]).mean(-1)
            a, b = _fit(d[p], gain)
            if not np.isfinite(a) or not d[p].max() > 0:
                out.append([a, b, np.nan, np.nan, np.nan])
                continue
            x = np.linspace(0, d[p].max(), 2001)
            y = fits.gao_rl(x, a, b)
            i = int(np.argmax(y))
            out.append([a, b, x[i], y[i], y[-1] - y[i]])
        return np.array(out)   # (P, 5)

    est = summary(np.arange(m))
    boot = np.array([summary(rng.integers(0, m, m)) for _ in range(n_resamples)])   # (B, P, 5)
    rows = []
    for p, name in enumerate(traj.names):
        for j, par in enumerate(("alpha", "beta", "peak_d", "peak_gain", "end_minus_peak")):
            lo, hi = np.nanpercentile(boot[:, p, j], [2.5, 97.5]) if np.isfinite(boot[:, p, j]).any() else (np.nan,) * 2
            rows.append(Result(float(est[p, j]), ConfidenceInterval(float(lo), float(hi)), m,
                               "Gao et al.'s RL form, least squares; percentile bootstrap over prompts",
                               reason="" if np.isfinite(est[p, j]) else "the fit did not converge").row(
                proxy=name, parameter=par))
    return pd.DataFrame(rows)


def runs(traj: Trajectories) -> pd.DataFrame:
    """Per RL run (proxy): ``kl`` reached at the last checkpoint (mean exact KL, nats) and its ``d``,
    ``proxy_gain`` and ``gold_gain`` (last minus start, mean over prompts, t interval), and ``moved``: the
    manipulation check kl ≥ `MIN_KL` (a run that fails it is reported, never dropped). Tidy: ``proxy,
    measure`` then `dint.stats.ROW`, plus ``moved``."""
    rows = []
    for p, name in enumerate(traj.names):
        kl = traj.kl[p, -1]
        moved = bool(kl.mean() >= MIN_KL)
        for measure, x in (("kl", kl), ("proxy_gain", traj.proxy[p, -1] - traj.proxy[p, 0]),
                           ("gold_gain", traj.gold[p, -1] - traj.gold[p, 0])):
            r = stats.bootstrap_mean(x, method="t") if np.ptp(x) > 0 else Result(
                float(x.mean()), ConfidenceInterval(float(x.mean()), float(x.mean())), len(x), "constant")
            rows.append({**r.row(proxy=name, measure=measure), "moved": moved})
        rows.append({**Result(float(np.sqrt(max(kl.mean(), 0))), ConfidenceInterval(np.nan, np.nan), len(kl),
                              "sqrt of the mean KL").row(proxy=name, measure="d"), "moved": moved})
    return pd.DataFrame(rows)


def best_of_n(candidates: pd.DataFrame, sft_scores: pd.DataFrame, ns) -> pd.DataFrame:
    """Exact best-of-n by each aligned proxy from the SFT model's answer distributions on the evaluation facts.

    Parameters
    ----------
    candidates : `aligned_sweep`'s ``candidates`` (``proxy, fact, candidate, answer, reward``)
    sft_scores : the SFT model's `score_world` table
    ns : the sizes n (the profile's ``bon_n``)

    Returns
    -------
    DataFrame per (proxy, n): `dint.analyses.experiments.bon_curve`'s columns with the gold and proxy gains
    over n = 1 (``gold_gain``, ``proxy_gain``).
    """
    from . import experiments

    out = []
    for name, table in candidates.groupby("proxy", sort=False):
        scores = sft_scores[sft_scores.fact.isin(set(table.fact))]
        _, logp, true, proxy = experiments.candidate_rewards(table, scores, form="qa")
        curve = experiments.bon_curve(logp, proxy, true, ns)
        out.append(curve.assign(proxy=name, gold_gain=curve.gold - curve.gold.iloc[0],
                                proxy_gain=curve.proxy - curve.proxy.iloc[0]))
    return pd.concat(out, ignore_index=True)


def numbers(*, proxies: pd.DataFrame, rise_fall: RiseFall, gao_fits: pd.DataFrame, runs: pd.DataFrame,
            bon: pd.DataFrame) -> dict:
    """Notebook 02's ``aligned_*`` numbers.

    Returns
    -------
    dict: ``aligned_overopt`` (over the proxies), ``aligned_rise``, ``aligned_fall``;
    ``aligned_<proxy>_overopt``/``_rise``/``_fall``; ``aligned_<proxy>_kl``/``_proxy_gain``/``_gold_gain``
    (`dint.stats.Result`), ``_d``, ``_moved`` (1/0); ``aligned_kl_min`` (the manipulation check's number);
    ``aligned_<proxy>_<parameter>`` of Gao's form; ``aligned_<proxy>_train_accuracy``/``_eval_accuracy``/
    ``_heldout_accuracy`` (Wilson) and ``aligned_large_eval_accuracy`` (the largest proxy's);
    ``aligned_<proxy>_bon_gold_max_n`` (best-of-n gold gain at the largest n) and ``_bon_gold_peak`` (the
    largest gain over n).
    """
    rf = rise_fall.table
    out = {}
    for r in rf.itertuples():
        key = "aligned" + ("" if r.proxy == "all" else f"_{r.proxy}") + f"_{r.measure}"
        out[key] = Result.from_row(r._asdict())
    for r in runs.itertuples():
        if r.measure == "d":
            out[f"aligned_{r.proxy}_d"] = float(r.estimate)
            out[f"aligned_{r.proxy}_moved"] = int(r.moved)
        else:
            out[f"aligned_{r.proxy}_{r.measure}"] = Result.from_row(r._asdict())
    out["aligned_kl_min"] = float(runs[runs.measure == "kl"].estimate.min())
    for r in gao_fits.itertuples():
        out[f"aligned_{r.proxy}_{r.parameter}"] = Result.from_row(r._asdict())
    for r in proxies.itertuples():
        for split in ("train", "eval", "heldout"):
            out[f"aligned_{r.proxy}_{split}_accuracy"] = stats.proportion(int(getattr(r, f"{split}_correct")),
                                                                          int(getattr(r, f"{split}_pairs")))
    largest = proxies.sort_values("share").proxy.iloc[-1]
    out["aligned_large_eval_accuracy"] = out[f"aligned_{largest}_eval_accuracy"]
    for name, g in bon.groupby("proxy", sort=False):
        out[f"aligned_{name}_bon_gold_max_n"] = float(g.sort_values("n").gold_gain.iloc[-1])
        out[f"aligned_{name}_bon_gold_peak"] = float(g.gold_gain.max())
    return out


@dataclass(frozen=True)
class Analysis:
    """Everything notebook 02 reports of the aligned proxies: ``proxies`` (`aligned_sweep`'s), ``curves``,
    ``rise_fall``, ``gao_fits``, ``runs`` and ``bon`` (the functions of the same names)."""

    proxies: pd.DataFrame
    curves: pd.DataFrame
    rise_fall: RiseFall
    gao_fits: pd.DataFrame
    runs: pd.DataFrame
    bon: pd.DataFrame


def analyse(profile, sft_scores: pd.DataFrame, *, n_resamples: int = 1000, n_permutations: int = 9999,
            seed: int = 0) -> Analysis:
    """The aligned-proxy experiment of ``profile`` (`dint.analyses.experiments.aligned_sweep`, built on first
    use) analysed: curves, the cross-fitted rise and fall, Gao's fits, the runs and best-of-n by each proxy
    from the SFT model (``sft_scores``) at the profile's ``bon_n``."""
    from . import experiments

    check_int("n_resamples", n_resamples, 1)
    aligned = experiments.aligned_sweep(profile)
    traj = trajectories(aligned.checkpoints)
    return Analysis(aligned.proxies, curves(traj), rise_fall(traj, n_resamples=n_resamples,
                                                             n_permutations=n_permutations, seed=seed),
                    gao_fits(traj, n_resamples=n_resamples, seed=seed), runs(traj),
                    best_of_n(aligned.candidates, sft_scores, profile.interventions.bon_n))
