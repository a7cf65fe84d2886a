"""The temperature RL needs along its β sweep (notebook 04), beside SFT's and DPO's.

`scores` reads the exact answer distributions, on every fact in both forms, of the RL policy trained
from SFT against the proxy reward at every KL coefficient β of the profile's sweep (``interventions.rl_betas``)
and at the ``rlhf`` intervention's own β (that intervention), which the RL sweep's artifact keeps
(`dint.analyses.experiments.rl_sweep_scores`). `load` gathers them in one form with SFT's and DPO's; `temperatures` fits,
per model on the held-out facts, the temperature they want, the KL from SFT each model reached, log T's
paired change from SFT at the smallest β and for DPO, and the slope of log T against the KL across the
sweep.

The table is tidy: ``model, reference, measure`` then `dint.stats.ROW`. RL models are named by `model_name`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import divergence, stats
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..stats.resampling import bootstrap_values, common_seed, paired_difference
from . import reliability

__all__ = ["SMALLEST", "Sweep", "betas", "load", "model_name", "overview", "scores", "temperatures"]

# the row of `temperatures` that contrasts the RL model at the smallest β (the furthest from SFT) with SFT
SMALLEST = "rl_smallest_beta"


def model_name(beta: float) -> str:
    """The name of the RL model trained at ``beta`` (``0.01`` -> ``"rl_beta_0.01"``)."""
    return f"rl_beta_{float(beta):g}"


def betas(profile: Profile) -> tuple:
    """The sweep's KL coefficients: ``interventions.rl_betas`` and the ``rlhf`` intervention's own β, ascending."""
    own = float(profile.interventions.config("rl").beta)
    return tuple(sorted({float(b) for b in profile.interventions.rl_betas} | {own}))


def scores(profile: Profile, *, rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """The RL policies of the β sweep, scored on every fact in both forms: the RL sweep's own artifact
    (`dint.analyses.experiments.rl_sweep_scores`; at the ``rlhf`` intervention's β, that intervention).

    Returns
    -------
    DataFrame: `dint.pipeline.artifacts.score_world`'s columns with ``beta`` first, one block per β.
    """
    from .experiments import rl_sweep_scores

    return rl_sweep_scores(profile, rebuild=rebuild, progress=progress)


@dataclass(frozen=True)
class Sweep:
    """The β sweep's RL models beside SFT and DPO, in one prompt form."""

    facts: pd.DataFrame      # the world's facts table (``fact``, ``split``)
    betas: dict              # {RL model name: β}, ascending β
    conditions: dict         # {model: one-form score_world table, all facts}: "sft", "dpo", then the RL models
    form: str                # the prompt form


def load(profile: Profile, *, form: str = "qa", progress: bool = False) -> Sweep:
    """SFT's, DPO's and the sweep's RL models' scores in one form (cached artifacts; `scores` built on first use).

    Parameters
    ----------
    profile : the run's profile
    form : the prompt form (``"qa"``, the one RL trains, or ``"statement"``)
    """
    from .. import world as world_mod

    if form not in world_mod.FORMS:
        raise ValueError(f"form={form!r}: choose one of {world_mod.FORMS}")
    conditions = {}
    for name in ("sft", "dpo"):
        s = artifacts.intervention_scores(profile, name)
        conditions[name] = s[s.form == form]
    sweep = scores(profile, progress=progress)
    sweep = sweep[sweep.form == form]
    names = {}
    for beta, s in sweep.groupby("beta", sort=True):
        names[model_name(beta)] = float(beta)
        conditions[model_name(beta)] = s.drop(columns="beta")
    return Sweep(artifacts.world(profile).facts, names, conditions, form)


def temperatures(sweep: Sweep, *, reference: str = "sft", confidence_level: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> pd.DataFrame:
    """The temperature the held-out facts want, per model of the sweep, against the KL from SFT it reached.

    Parameters
    ----------
    sweep : `load`
    reference : the model every RL model starts from and is compared with
    confidence_level : level of the intervals
    n_resamples : bootstrap resamples of held-out facts (paired across models) behind the log T changes
    seed : int seed of the resamples

    Returns
    -------
    Tidy DataFrame (``model, reference, measure`` then `dint.stats.ROW`), measures:
    ``t_heldout`` per RL model (T fitted by NLL on all held-out facts, profile-likelihood interval,
    `reliability.temperature`, no test; SFT's and DPO's, with their tests of T = 1, are the rows of
    `dint.analyses.trust_reliability.temperatures`: `overview` sets them side by side);
    ``kl_from_sft`` per model but the reference (mean over held-out facts of the exact KL(model ‖ reference)
    between answer distributions over the candidate set, Student-t interval; no test: KL >= 0);
    ``d_log_t`` with ``reference`` set, for DPO and for the RL model at the smallest β (named `SMALLEST`):
    log T minus the reference's log T on the same facts (paired bootstrap over facts,
    `dint.stats.resampling.paired_difference`, both Ts refitted on every resample,
    `reliability.log_temperature_values`); ``slope_log_t_kl`` (model ``"rl"``): the least-squares slope of
    log T against the mean KL over the reference (at KL 0) and the RL models, recomputed on every resample
    (interval and test of 0 as for ``d_log_t``).

    Notes
    -----
    Temperature scaling: Guo et al. (2017); T for RLHF policies: Kadavath et al. (2022). Resampling facts
    jointly for every model keeps their dependence (Efron & Tibshirani 1993).
    """
    if reference not in sweep.conditions:
        raise ValueError(f"reference={reference!r}: not a model of the sweep {list(sweep.conditions)}")
    if not sweep.betas:
        raise ValueError("sweep has no RL model: load it with `load` on a profile with interventions.rl_betas")
    seed = common_seed(seed)
    held = {m: reliability.held_out(s, sweep.facts) for m, s in sweep.conditions.items()}
    ref_facts, ref_logp, _ = held[reference]
    for m, (f, _, _) in held.items():
        if not np.array_equal(f, ref_facts):
            raise ValueError(f"sweep.conditions[{m!r}] holds other held-out facts than {reference!r}; score every "
                             "model on the same world")
    rows, log_t, kl = [], {}, {reference: (0.0, np.zeros(n_resamples))}
    for m, (_, logp, labels) in held.items():
        if m in sweep.betas:   # SFT's and DPO's are the temperature table's (`trust_reliability.temperatures`)
            t = reliability.temperature(logp, labels, confidence_level=confidence_level)
            method = "temperature (NLL) on the held-out facts, profile-likelihood interval" + (
                " (truncated at the search bounds)" if "truncated" in t.method else "")
            rows.append(reliability.tidy_row(m, "t_heldout", stats.Result(t.statistic, t.confidence_interval, t.n,
                                                                          method)))
        log_t[m] = reliability.log_temperature_values(logp, labels, n_resamples=n_resamples, rng=seed)
        if m == reference:
            continue
        per_fact = divergence.kl(logp, ref_logp, axis=-1)                              # (m,)
        r = stats.bootstrap_mean(per_fact, method="t", confidence_level=confidence_level)
        rows.append(reliability.tidy_row(m, "kl_from_sft", stats.Result(
            r.statistic, r.confidence_interval, r.n, "mean KL(model || SFT) over held-out facts, exact over the "
            "candidate set, Student-t interval"), reference=reference))
        kl[m] = bootstrap_values(lambda w: w @ per_fact[:, None], lambda s: s[:, 0] / len(per_fact), len(per_fact),
                                 n_resamples, seed)
    smallest = min(sweep.betas, key=sweep.betas.get)
    for m, label in (("dpo", "dpo"), (smallest, SMALLEST)):
        if m in log_t and m != reference:
            est, ci, p, reason = paired_difference(log_t[m], log_t[reference], confidence_level)
            what = f"RL at the smallest beta ({sweep.betas[m]:g})" if m == smallest else m
            rows.append(reliability.tidy_row(label, "d_log_t", stats.Result(
                est, ci, len(ref_facts), f"log T of {what} minus log T of {reference} on the same held-out facts, "
                "paired bootstrap over facts (both refitted on every resample)", p, reason), reference=reference))
    path = [reference, *sweep.betas]
    x = np.column_stack([np.r_[kl[m][0], kl[m][1]] for m in path])                  # (1 + R, models)
    y = np.column_stack([np.r_[log_t[m][0], log_t[m][1]] for m in path])
    xc = x - x.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (xc * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / (xc ** 2).sum(axis=1)
    est, ci, p, reason = paired_difference((slope[0], slope[1:]), (0.0, np.zeros(n_resamples)), confidence_level)
    rows.append(reliability.tidy_row("rl", "slope_log_t_kl", stats.Result(
        est, ci, len(ref_facts), f"least-squares slope of log T on the mean KL from {reference} over {reference} and "
        f"the RL models at beta {', '.join(f'{b:g}' for b in sweep.betas.values())}, paired bootstrap over facts "
        "(every T and KL recomputed on every resample)", p, reason), reference=reference))
    return pd.DataFrame(rows, columns=reliability.TIDY_COLUMNS)


def overview(sweep: Sweep, table: pd.DataFrame, temperatures: pd.DataFrame) -> pd.DataFrame:
    """Per model of the sweep (rows: SFT, DPO, then the RL models by β): β, the KL from SFT and the held-out T
    with their intervals.

    Parameters
    ----------
    sweep : `load`
    table : `temperatures` (this module's)
    temperatures : `dint.analyses.trust_reliability.temperatures`, for SFT's and DPO's ``t_heldout``
    """
    fitted = temperatures[(temperatures.measure == "t_heldout") & temperatures.model.isin(["sft", "dpo"])]
    rows = pd.concat([fitted, table[table.measure.isin(["t_heldout", "kl_from_sft"])]], ignore_index=True)
    wide = rows.pivot(index="model", columns="measure", values=["estimate", "ci_low", "ci_high"])
    wide.columns = [f"{m} {c}".replace(" estimate", "") for c, m in wide.columns]
    order = [m for m in ("sft", "dpo", *sweep.betas) if m in wide.index]
    out = wide.reindex(order)[[f"{m}{c}" for m in ("kl_from_sft", "t_heldout") for c in ("", " ci_low", " ci_high")]]
    return out.assign(beta=[sweep.betas.get(m, np.nan) for m in order])[["beta", *out.columns]]
