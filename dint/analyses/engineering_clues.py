"""The analysis of notebook 02 (engineering clues): practice treats post-training as distribution control.

In notebook order:

`load`              the world, the base and SFT models' scores, the SFT model and the proxy reward's record.
`sweep`             the RL β sweep (`dint.analyses.experiments.rl_sweep`) with d = √KL at every checkpoint;
                    `last_checkpoints` its last checkpoint per β.
`rl_fits`           Gao et al.'s RL form fitted to the proxy and gold reward gains against d (tidy rows).
`overoptimisation`  the smallest-β run's proxy and gold reward at its start and end, and the RLHF model
                    against its SFT start, item by item.
`overoptimisation.analyse`  over-optimisation of proxies that start aligned (`dint.analyses.overoptimisation`):
                    does gold rise, then fall? Its numbers join `numbers`' and its curves panel (f) of `figure`.
`best_of_n`         exact best-of-n by the proxy on held-out QA items: the tidy curve (KL, proxy and gold
                    gains per n) and Gao et al.'s best-of-n form fitted to it; `kl_gap` the gap to the
                    bound log n − (n−1)/n item by item, against the collision probability.
`baselines`         accuracy and in-set mass of the base, the sham, the format-only control and every
                    intervention, and McNemar's tests of each intervention against the base and both controls
                    (Holm); the format-only control's in-set mass against SFT's.
`twohop`            two-hop questions answered directly, by chains and by verified chains, on a clean and a
                    stale store (`dint.analyses.reasoning`).
`numbers`           the numbers the paper quotes (`quoted`: those outside the fits and curves, as a table);
                    `figure` the notebook's figure.

Every table with intervals has the columns `dint.stats.ROW` after its labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import compare, plot, stats
from ..interventions import bestofn, plan, retrieval
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..stats import fits, proportions
from ..stats.resampling import mean_difference
from ..stats.checks import check_int
from . import experiments, reasoning
from . import overoptimisation as _overopt

__all__ = ["Inputs", "BestOfN", "Baselines", "load", "sweep", "last_checkpoints", "rl_fits", "overoptimisation",
           "best_of_n", "kl_gap", "baselines", "twohop", "numbers", "quoted", "figure"]

REWARDS = ("gold", "proxy")
# the interventions compared with the base and the sham
OTHERS = ("sft", "sft_lora", "dpo", "dpo_lora", "rlhf", "rag")


@dataclass(frozen=True)
class Inputs:
    """What the notebook's analyses share: the world, scores and models of the profile."""

    world: object            # dint.world.World
    base_scores: pd.DataFrame
    sft_model: object        # the SFT model (a transformers causal LM)
    tokenizer: object
    sft_scores: pd.DataFrame
    reward_record: object    # the proxy reward model's training record


def load(profile: Profile) -> Inputs:
    """The cached artifacts the notebook reads (built on first use)."""
    world = artifacts.world(profile)
    _, tokenizer, _ = artifacts.base_model(profile)
    sft_model, _, _ = artifacts.intervention(profile, "sft")
    _, _, reward_record = artifacts.intervention(profile, "reward")
    return Inputs(world, artifacts.base_scores(profile), sft_model, tokenizer,
                  artifacts.intervention_scores(profile, "sft"), reward_record)


# -- (a) RL against the proxy --------------------------------------------------------------------

def sweep(profile: Profile) -> pd.DataFrame:
    """The RL β sweep with ``d`` = √KL (negative KL estimates clipped to 0).

    Returns
    -------
    `dint.analyses.experiments.rl_sweep`'s table, one row per (beta, checkpoint), with a ``d`` column.
    """
    table = experiments.rl_sweep(profile)
    return table.assign(d=np.sqrt(table["kl"].clip(lower=0)))


def last_checkpoints(sweep: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint of each β: ``step, proxy, gold, kl, gold_exact, proxy_exact, mass_outside``, indexed by beta."""
    last = sweep.sort_values("step").groupby("beta").tail(1).set_index("beta")
    return last[["step", "proxy", "gold", "kl", "gold_exact", "proxy_exact", "mass_outside"]]


def _start(sweep):
    return sweep[sweep.step == 0].groupby("beta").first()


def _fit_rows(fitted: dict, curve: str) -> pd.DataFrame:
    return pd.DataFrame([r.row(curve=curve, reward=k, parameter=p) for k, f in fitted.items() for p, r in f.items()])


def rl_fits(sweep: pd.DataFrame) -> pd.DataFrame:
    """Gao et al.'s RL form ``d (alpha − beta log d)`` fitted to the gold and proxy gains over each run's start.

    Parameters
    ----------
    sweep : `sweep`'s table; the checkpoints with d > 0 enter the fit

    Returns
    -------
    DataFrame, one row per (reward, parameter): ``curve`` ("rl"), ``reward`` (gold, proxy), ``parameter``
    (alpha, beta), then the columns `dint.stats.ROW` (`dint.stats.fits.fit_curve`: t interval, t-test of zero).
    """
    first = _start(sweep)
    moving = sweep[sweep.d > 0]
    return _fit_rows({k: fits.fit_curve(fits.gao_rl, moving.d, moving[k] - first.loc[moving.beta, k].to_numpy(),
                                        p0=[0.1, 0.1]) for k in REWARDS}, "rl")


@dataclass(frozen=True)
class Overoptimisation:
    """The smallest-β run's start and end (``run``: plain numbers) and the RLHF model against SFT (a `Result`)."""

    run: dict
    rlhf_vs_sft: stats.Result


def overoptimisation(sweep: pd.DataFrame, inputs: Inputs, profile: Profile, *, n_resamples: int = 2000,
                     n_permutations: int = 9999, seed: int = 0) -> Overoptimisation:
    """Over-optimisation, measured: the smallest-β run's proxy and gold reward (exact) at its start and end,
    and the step of its gold peak; and the profile's RLHF model against its SFT start on held-out QA facts.

    Returns
    -------
    Overoptimisation: ``run`` {beta, proxy_start, proxy_end, gold_start, gold_end, gold_peak_step};
    ``rlhf_vs_sft`` the paired mean difference of the probability of the truth, with its interval and
    sign-flip test (`dint.stats.resampling.mean_difference`).
    """
    check_int("n_resamples", n_resamples, 1)
    b0 = min(sweep.beta)
    run0 = sweep[sweep.beta == b0].sort_values("step")
    run = {"beta": b0, "proxy_start": float(run0.proxy_exact.iloc[0]), "proxy_end": float(run0.proxy_exact.iloc[-1]),
           "gold_start": float(run0.gold_exact.iloc[0]), "gold_end": float(run0.gold_exact.iloc[-1]),
           "gold_peak_step": int(run0.loc[run0.gold_exact.idxmax(), "step"])}
    rlhf_scores = artifacts.intervention_scores(profile, "rlhf")
    paired = compare.shift(inputs.sft_scores, rlhf_scores, inputs.world.facts)
    paired = paired[(paired.form == "qa") & (paired.split == "heldout")]
    r = mean_difference(paired.p_true_post.to_numpy(), paired.p_true_base.to_numpy(), rng=seed,
                        n_resamples=n_resamples, n_permutations=n_permutations)
    return Overoptimisation(run, r)


# -- (b) best-of-n ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BestOfN:
    """Exact best-of-n on held-out QA items.

    ``curve``: tidy rows per (best_of, measure) — ``best_of`` (n), ``kl_bound`` (log n − (n−1)/n), ``d``
    (√ mean KL), ``measure`` (kl; proxy and gold: the gain over n = 1), then `dint.stats.ROW` (``n`` the
    items); ``fits``: Gao et al.'s best-of-n form fitted to the gains (rows as `rl_fits`'s, ``curve`` "bon");
    ``p`` (m, K) the SFT model's answer distributions and ``proxy`` (m, K) the proxy reward of each
    candidate, on the m items.
    """

    curve: pd.DataFrame
    fits: pd.DataFrame
    p: np.ndarray
    proxy: np.ndarray


BON_METHODS = {"kl": "mean exact KL, t interval", "proxy": "mean proxy gain over n = 1, t interval",
               "gold": "mean gold gain over n = 1, t interval"}


def best_of_n(profile: Profile, inputs: Inputs, *, items: int = 0) -> BestOfN:
    """Best-of-n by the proxy reward for n in the profile's ``interventions.bon_n``, exact on held-out QA items.

    Parameters
    ----------
    profile, inputs : the profile and `load`'s inputs
    items : keep the first ``items`` held-out items (0: all)

    Returns
    -------
    BestOfN
    """
    check_int("items", items, 0)
    world = inputs.world
    table, logp, true, proxy = experiments.candidate_rewards(experiments.reward_table(profile, form="qa"),
                                                             inputs.sft_scores, form="qa")
    keep = world.facts.set_index("fact").loc[table.fact, "split"].to_numpy() == "heldout"
    if items:
        keep &= np.cumsum(keep) <= items
    bon = experiments.bon_curve(logp[keep], proxy[keep], true[keep], profile.interventions.bon_n)
    for k in REWARDS:   # gains over n = 1 (the SFT model itself)
        bon[[k, f"{k}_low", f"{k}_high"]] -= bon[k].iloc[0]
    fitted = _fit_rows({k: fits.fit_curve(fits.gao_bon, bon.d, bon[k], p0=[0.1, 0.01]) for k in REWARDS}, "bon")
    n_items = int(keep.sum())
    curve = pd.DataFrame([{"best_of": int(r["n"]), "kl_bound": r["kl_bound"], "d": r["d"], "measure": m,
                           "estimate": r[m], "ci_low": r[f"{m}_low"], "ci_high": r[f"{m}_high"], "pvalue": np.nan,
                           "n": n_items, "method": BON_METHODS[m], "reason": ""}
                          for r in bon.to_dict("records") for m in ("kl", "proxy", "gold")])
    p = np.exp(logp[keep])
    p /= p.sum(1, keepdims=True)
    return BestOfN(curve, fitted, p, proxy[keep])


def kl_gap(bon: BestOfN, *, n: int = 16) -> dict:
    """The gap log n − (n−1)/n − KL(best-of-n ‖ p) item by item, against the probability that two draws tie.

    Returns
    -------
    dict: ``mean gap``; ``r(gap, collision probability)`` (`dint.stats.pearson`, a `Result`); ``gap without
    ties (k = 1e5, uniform)``: the same gap on 100,000 equally likely answers with distinct rewards (≈ 0).
    """
    check_int("n", n, 1)
    gap = bestofn.kl_bound(n) - bestofn.exact_kl(bon.p, bon.proxy, n)
    collision = (bon.p ** 2).sum(1)   # P(two draws tie on the same answer)
    no_ties = bestofn.kl_bound(n) - bestofn.exact_kl(np.full(100_000, 1e-5), np.arange(100_000.0), n)
    return {"mean gap": float(gap.mean()), "r(gap, collision probability)": stats.pearson(collision, gap),
            "gap without ties (k = 1e5, uniform)": float(no_ties)}


# -- (c) baselines and shams -----------------------------------------------------------------------

@dataclass(frozen=True)
class Baselines:
    """``table``: per (model, split, measure) — measure accuracy (top answer true, Wilson interval) or
    format_mass (mean mass inside the candidate set, t interval) — then `dint.stats.ROW`; ``tests``: per
    (model, against, split) the paired accuracy difference (McNemar exact, Newcombe interval), with
    ``pvalue_holm`` over all of them; ``format_check``: the format-only control's mean in-set mass on held-out QA
    prompts minus SFT's, paired by fact (hull interval; None where there is no format-only control)."""

    table: pd.DataFrame
    tests: pd.DataFrame
    format_check: stats.Result | None = None


def baselines(profile: Profile, inputs: Inputs, *, models=None) -> Baselines:
    """Each intervention against the base and against two controls, QA form, per split: the sham (SFT on answers
    shuffled among the train facts) and, on a synthetic world, the format-only control (SFT on the same answers
    asked about entities no text mentions, `dint.interventions.data.format_demos`); the format-only control also
    against the sham.

    Parameters
    ----------
    profile, inputs : the profile and `load`'s inputs
    models : the interventions compared (names of `dint.interventions.plan.names`); default `OTHERS` and the
        profile's own methods (``interventions.custom``)

    Returns
    -------
    Baselines
    """
    models = plan.with_custom(profile.interventions, OTHERS) if models is None else list(models)
    if not models:
        raise ValueError("models=[]: pass at least one intervention, e.g. ('sft', 'dpo')")
    world = inputs.world
    controls = {"sft_sham": artifacts.intervention_scores(profile, "sft_sham")}
    if not profile.real:   # a real world has no entities that no text mentions
        controls["sft_format"] = artifacts.intervention_scores(profile, "sft_format")
    others = {name: artifacts.intervention_scores(profile, name) for name in models}
    inside = {}
    rows = []
    for name, s in {"base": inputs.base_scores, **controls, **others}.items():
        qa = s[s.form == "qa"]
        inside[name] = 1 - qa.groupby("fact").mass_outside.first()
        top = qa.loc[qa.groupby("fact").p_set.idxmax()].set_index("fact")
        for split in ("train", "heldout"):
            facts = world.facts[world.facts.split == split].fact
            acc = stats.proportion(int(top.loc[facts, "is_true"].sum()), len(facts))
            fmt = stats.bootstrap_mean(inside[name].loc[facts].to_numpy(), method="t")
            rows += [acc.row(model=name, split=split, measure="accuracy"),
                     fmt.row(model=name, split=split, measure="format_mass")]
    pairs = [(name, ref) for name in others for ref in ("base", *controls)]
    pairs += [("sft_format", "sft_sham")] if "sft_format" in controls else []
    scores = {"base": inputs.base_scores, **controls, **others}
    tests = []
    for name, ref in pairs:
        it = compare.shift(scores[ref][scores[ref].form == "qa"], scores[name][scores[name].form == "qa"], world.facts)
        for split in ("train", "heldout"):
            g = it[it.split == split]
            r = proportions.mcnemar(g.correct_base.to_numpy(), g.correct_post.to_numpy())
            tests.append(r.row(model=name, against=ref, split=split))
    check = None
    if "sft_format" in controls and "sft" in others:
        held = world.facts[world.facts.split == "heldout"].fact
        check = stats.bootstrap_mean((inside["sft_format"].loc[held] - inside["sft"].loc[held]).to_numpy())
    return Baselines(pd.DataFrame(rows), stats.holm(pd.DataFrame(tests)), check)


# -- (d) two-hop reasoning -------------------------------------------------------------------------

def twohop(profile: Profile, inputs: Inputs, *, n_chains: int = 16, questions: int = 150, stale_share: float = 0.2,
           seed: int = 0) -> pd.DataFrame:
    """Two-hop questions answered by the SFT model directly, by chains and by verified chains, on a clean store
    and on one with a share ``stale_share`` of stale documents.

    Parameters
    ----------
    n_chains : sampled chains per question; questions : two-hop questions (0: all)
    stale_share : in [0, 1], the stale share of the second store
    seed : of the stores and the chains

    Returns
    -------
    `dint.analyses.reasoning.by_method`'s rows of both stores with a ``store`` label ("clean", "stale <share>")
    first; empty (same columns) on real facts, where no relation names an entity to chain through.
    """
    if not 0 <= stale_share <= 1:
        raise ValueError(f"stale_share={stale_share!r}: give a share in [0, 1]")
    config = reasoning.ReasoningConfig(n_chains=n_chains, max_questions=questions, seed=seed)
    if profile.real:
        return pd.DataFrame(columns=["store", *reasoning.SUMMARY_COLUMNS])
    tables = []
    for label, share in (("clean", 0.0), (f"stale {stale_share:g}", stale_share)):
        store = retrieval.build_store(inputs.world, retrieval.StoreConfig(stale_share=share), seed=seed)
        _, summary = reasoning.evaluate(inputs.sft_model, inputs.tokenizer, inputs.world, store, config)
        tables.append(summary.assign(store=label))
    out = pd.concat(tables, ignore_index=True)
    return out[["store", *reasoning.SUMMARY_COLUMNS]]


# -- the numbers and the figure --------------------------------------------------------------------

def _params(table: pd.DataFrame, curve: str, reward: str) -> dict:
    return stats.results(table[(table.curve == curve) & (table.reward == reward)], "{parameter}")


def numbers(*, sweep: pd.DataFrame, rl_fits: pd.DataFrame, overoptimisation: Overoptimisation, bon: BestOfN,
            kl_gap: dict, baselines: Baselines, twohop: pd.DataFrame, aligned=None) -> dict:
    """The numbers the paper quotes, named as its macros read them.

    Returns
    -------
    dict of `dint.stats.Result` and plain numbers: ``rl_*``/``bon_*`` fitted parameters and peaks,
    ``overopt_*``, ``rlhf_vs_sft_p_true``, ``bon{n}_kl``/``_kl_bound``/``_gold`` at n = 16 and the largest n
    (also as ``bon_max_*``), ``bon16_gap_*``, ``<model>_vs_<against>_<split>_d_accuracy`` (Holm),
    ``<model>_<split>_accuracy``/``_format_mass``, ``twohop_<store>_<strategy>_accuracy``/``_coverage``/
    ``_tokens``/``_vs_direct``; with ``aligned`` (`dint.analyses.overoptimisation.analyse`'s) its ``aligned_*``
    numbers (`dint.analyses.overoptimisation.numbers`).
    """
    fitted = pd.concat([rl_fits, bon.fits], ignore_index=True)
    out = stats.results(fitted, "{curve}_{reward}_{parameter}")
    # where the fitted gold curves peak within the observed range of d (the lower end: gold only falls)
    bon_d_max = float(bon.curve.d.max())
    out["rl_gold_peak_d"], out["rl_gold_peak"] = fits.curve_peak(fits.gao_rl, _params(fitted, "rl", "gold"), 0.0,
                                                                 float(sweep.d.max()))
    out["bon_gold_peak_d"], out["bon_gold_peak"] = fits.curve_peak(fits.gao_bon, _params(fitted, "bon", "gold"), 0.0,
                                                                   bon_d_max)
    out["rl_d_max"], out["bon_d_max"] = float(sweep.d.max()), bon_d_max
    out.update({f"overopt_{k}": v for k, v in overoptimisation.run.items()})
    out["rlhf_vs_sft_p_true"] = overoptimisation.rlhf_vs_sft
    n_max = int(bon.curve.best_of.max())
    out["bon_max_n"] = n_max
    curve = bon.curve[bon.curve.measure.isin(["kl", "gold"])]
    for n in sorted({n for n in (16, n_max) if n in set(curve.best_of)}):   # n = 16 and the largest n
        at = curve[curve.best_of == n]
        for key in [f"bon{n}"] + (["bon_max"] if n == n_max else []):   # bon_max: a name that holds on any profile
            named = stats.results(at, key + "_{measure}")
            out[f"{key}_kl"] = named[f"{key}_kl"]
            out[f"{key}_kl_bound"] = float(at.kl_bound.iloc[0])
            out[f"{key}_gold"] = named[f"{key}_gold"]
    out["bon16_gap_vs_collision"] = kl_gap["r(gap, collision probability)"]
    out["bon16_gap_no_ties"] = kl_gap["gap without ties (k = 1e5, uniform)"]
    out.update(stats.results(baselines.tests, "{model}_vs_{against}_{split}_d_accuracy", pvalue="pvalue_holm",
                             method="McNemar exact, Holm"))
    table = baselines.table
    out.update(stats.results(table[table.measure == "accuracy"], "{model}_{split}_accuracy", method="Wilson"))
    mass = table[table.measure == "format_mass"]
    out.update({f"{m}_{s}_format_mass": float(v) for m, s, v in zip(mass.model, mass.split, mass.estimate)})
    if baselines.format_check is not None:
        out["sft_format_vs_sft_heldout_format_mass"] = baselines.format_check
    t = twohop.assign(key="twohop_" + twohop.store.str.split().str[0] + "_" + twohop.strategy)
    acc = t[t.measure == "accuracy"]
    out.update(stats.results(acc, "{key}_accuracy", method="Wilson"))
    out.update({f"{k}_coverage": float(v) for k, v in zip(acc.key, acc.coverage)})
    out.update({f"{k}_tokens": float(v) for k, v in zip(acc.key, acc.tokens_per_question)})
    out.update(stats.results(t[t.measure == "vs_direct"], "{key}_vs_direct", method="McNemar exact"))
    if aligned is not None:
        out.update(_aligned_numbers(aligned))
    return out


def _aligned_numbers(a) -> dict:
    return _overopt.numbers(proxies=a.proxies, rise_fall=a.rise_fall, gao_fits=a.gao_fits, runs=a.runs, bon=a.bon)


def quoted(numbers: dict, *, skip=("twohop", "bon_", "rl_", "aligned_")) -> pd.DataFrame:
    """The numbers whose names do not start with ``skip``, as a table to show: one row per name, ``estimate``,
    ``ci_low``, ``ci_high``, ``pvalue`` (NaN interval and p-value for a plain number)."""
    rows = []
    for name, v in numbers.items():
        if name.startswith(tuple(skip)):
            continue
        r = v if isinstance(v, stats.Result) else stats.Result(float(v), stats.ConfidenceInterval(np.nan, np.nan), 0, "")
        rows.append({"name": name, **{k: r.row()[k] for k in ("estimate", "ci_low", "ci_high", "pvalue")}})
    return pd.DataFrame(rows).set_index("name")


def _relative(sweep: pd.DataFrame) -> pd.DataFrame:
    """The sweep's proxy and gold rewards as changes from each run's start, long: ``beta, d, measure, estimate``."""
    first = _start(sweep)
    rel = sweep.assign(proxy=sweep.proxy - first.loc[sweep.beta, "proxy"].to_numpy(),
                       gold=sweep.gold - first.loc[sweep.beta, "gold"].to_numpy())
    return rel.melt(id_vars=["beta", "step", "d"], value_vars=["proxy", "gold"], var_name="measure",
                    value_name="estimate")


def figure(*, sweep: pd.DataFrame, rl_fits: pd.DataFrame, bon: BestOfN, baselines: Baselines,
           twohop: pd.DataFrame, aligned=None):
    """The notebook's figure: (a) RL and (b) best-of-n rewards against d with Gao et al.'s forms, (c) the exact
    KL of best-of-n against its bound, (d) accuracy of the base, the sham and each intervention, (e) two-hop
    accuracy against cost (world only); with ``aligned`` (`dint.analyses.overoptimisation.analyse`'s), (f) the
    gold gain of RL against each proxy that starts aligned, against d, with Gao et al.'s RL form fitted."""
    fig, axes = plot.panels(5 if aligned is None else 6)

    def curves(f, table, curve):
        params = {k: _params(table, curve, k) for k in REWARDS}
        return {f"{k} fit": (lambda d, r=params[k]: f(d, r["alpha"].statistic, r["beta"].statistic), plot.PALETTE[c])
                for k, c in (("gold", 3), ("proxy", 0))}

    plot.reward_vs_kl(_relative(sweep), hue="beta", ax=axes[0], fits=curves(fits.gao_rl, rl_fits, "rl"))
    plot.reward_vs_kl(bon.curve[bon.curve.measure != "kl"], ax=axes[1], fits=curves(fits.gao_bon, bon.fits, "bon"))
    plot.bon_kl(bon.curve, ax=axes[2])
    plot.baselines(baselines.table, ax=axes[3])
    if len(twohop):
        plot.accuracy_cost(twohop, ax=axes[4])
    else:
        axes[4].text(0.5, 0.5, "two-hop questions:\nworld only (no real relation\nnames an entity)", ha="center",
                     va="center", transform=axes[4].transAxes)
        axes[4].set_axis_off()
    if aligned is not None:
        gao = aligned.gao_fits.set_index(["proxy", "parameter"]).estimate
        share = aligned.proxies.set_index("proxy").share
        rank = {v: i for i, v in enumerate(sorted(share.unique()))}   # the colour of each share's gold curve
        plot.reward_vs_kl(aligned.curves[aligned.curves.measure == "gold"], hue="share", ax=axes[5],
                          fits={f"fit, share {share[p]:g}": (lambda d, a=gao[(p, "alpha")], b=gao[(p, "beta")]:
                                                              fits.gao_rl(d, a, b), plot.PALETTE[rank[share[p]]])
                                for p in share.index})
        axes[5].set_ylabel("gold gain (aligned proxies)")
        plot.legend(axes[5], above=True, width=18, bbox_to_anchor=(1.0, 1.12))   # clear of the panel's letter
    for ax, letter in zip(axes, "abcdef"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
