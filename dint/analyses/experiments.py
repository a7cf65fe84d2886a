"""Experiments shared by the notebooks: the RL beta sweep and best-of-n curves.

`rl_sweep` is a cached artifact (KL-penalised RL from the SFT model at every beta of the profile,
with proxy reward, gold reward and KL at checkpoints); so is `reward_table`, the proxy reward of
every candidate answer. `bon_curve` computes best-of-n exactly from a model's answer distributions
and a reward of every candidate.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..pipeline import artifacts
from .. import compare, stats
from ..pipeline.config import Profile
from ..interventions import bestofn, plan


def rl_sweep(profile: Profile, *, rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """RL from the SFT model against the proxy reward at each ``interventions.rl_betas``.

    Returns
    -------
    DataFrame, one row per (beta, checkpoint): ``beta``, ``step`` and the checkpoint's ``proxy``,
    ``gold``, ``kl`` (exact, over candidate sets, on held-out facts), ``proxy_exact``,
    ``gold_exact``, ``kl_seq``, ``kl_seq_se``, ``mass_outside``; plus ``train_flops`` and
    ``wall_time`` of the run. The run at the profile's own ``rl.beta`` is the ``rlhf`` intervention
    (same start, reward, config and seed): its checkpoints are read from that artifact, not trained again.
    """
    manifest = {**artifacts.intervention_manifest(profile, "rl_sweep", grids=("rl_betas",)), "kind": "rl_sweep"}
    own = profile.interventions.config("rl").beta
    inputs = {"world": artifacts.ensure_world(profile),
              "sft": artifacts.ensure_intervention(profile, "sft", progress=progress),
              "reward": artifacts.ensure_intervention(profile, "reward", progress=progress)}
    if any(float(beta) == own for beta in profile.interventions.rl_betas):
        inputs["rlhf"] = artifacts.ensure_intervention(profile, "rlhf", progress=progress)

    def compute():
        w = artifacts.world(profile)
        sft_model, tok, _ = artifacts.intervention(profile, "sft", progress=progress)
        rm, _, _ = artifacts.intervention(profile, "reward", progress=progress)
        rows = []
        for beta in profile.interventions.rl_betas:
            if float(beta) == own:
                record = artifacts.intervention(profile, "rlhf", progress=progress)[2]
            else:
                _, record = plan.rlhf(profile.interventions, w, sft_model, tok, rm, beta=float(beta),
                                      seed=profile.train_seed, progress=progress)
            for c in record.extra["checkpoints"]:
                rows.append({"beta": float(beta), **{k: v for k, v in c.items() if np.isscalar(v)},
                             "train_flops": record.train_flops, "wall_time": record.wall_time})
        return pd.DataFrame(rows)

    return artifacts.cached_table(artifacts.root(profile) / "rl_sweep", manifest, compute, file="checkpoints.parquet",
                                  inputs=inputs, rebuild=rebuild)


def reward_table(profile: Profile, *, form: str = "qa", rebuild: bool = False) -> pd.DataFrame:
    """The proxy reward model's score of every candidate answer of every fact, in one prompt form.

    A cached artifact (``results/<profile>/reward_scores/<form>/``), built on first use from the
    cached reward model with the profile's torch threads; the notebooks that select or verify by the
    proxy reward read it rather than scoring the same candidates again.

    Returns
    -------
    DataFrame, one row per (fact, candidate): ``fact``, ``candidate`` (index in the fact's candidate
    set, as in `dint.pipeline.artifacts.score_world`), ``answer`` and ``reward`` (under the fact's prompt).
    """
    from .. import models
    from .. import world as world_mod

    if form not in world_mod.FORMS:
        raise ValueError(f"form={form!r}: choose one of {world_mod.FORMS}")
    manifest = {**artifacts.intervention_manifest(profile, "reward"), "kind": "reward_scores", "form": form}

    def compute():
        prompts = artifacts.world(profile).prompts(form).sort_values("fact")
        sizes = [len(c) for c in prompts["candidates"]]
        table = pd.DataFrame({"fact": np.repeat(prompts["fact"].to_numpy(), sizes),
                              "candidate": np.concatenate([np.arange(n) for n in sizes]),
                              "answer": [a for cs in prompts["candidates"] for a in cs]})
        reward_model, _, _ = artifacts.intervention(profile, "reward")
        with models.torch_threads(profile.interventions.threads):   # the same numbers wherever it is built
            table["reward"] = reward_model.score(np.repeat(prompts["prompt"].to_numpy(), sizes).tolist(),
                                                 (" " + table["answer"]).tolist())
        return table

    inputs = {"world": artifacts.ensure_world(profile), "reward": artifacts.ensure_intervention(profile, "reward")}
    return artifacts.cached_table(artifacts.root(profile) / "reward_scores" / form, manifest, compute,
                                  file="rewards.parquet", inputs=inputs, rebuild=rebuild)


def candidate_rewards(rewards: pd.DataFrame, scores: pd.DataFrame, *, form: str = "qa") -> tuple:
    """The proxy reward of every candidate answer of every item of one form, laid out as a model's
    answer distributions are.

    Parameters
    ----------
    rewards : `reward_table` of the same form
    scores : a `score_world` table (any model of the profile)

    Returns
    -------
    items : DataFrame ``fact, form`` in the order of `compare.distributions`
    logp : (m, k) log p_set of ``scores``
    true : (m, k) bool, the true value's position
    proxy : (m, k) reward of each candidate under its item's prompt (0 where padded)
    """
    need = {"fact", "candidate", "answer", "reward"}
    if not isinstance(rewards, pd.DataFrame) or not need <= set(rewards.columns):
        raise ValueError(f"rewards must be a reward_table with columns {sorted(need)}")
    s = scores[scores["form"] == form]
    items, logp, true = compare.distributions(s)
    order = s.sort_values(["fact", "candidate"])
    row = order.groupby("fact", sort=True).ngroup().to_numpy()
    keyed = order[["fact", "candidate", "answer"]].merge(rewards, on=["fact", "candidate"], how="left",
                                                        suffixes=("", "_rewarded"), validate="one_to_one")
    if keyed["reward"].isna().any() or not (keyed["answer"] == keyed["answer_rewarded"]).all():
        raise ValueError("rewards does not cover the candidates of scores: pass the reward_table of the same "
                         f"profile and form ({form!r})")
    proxy = np.zeros(logp.shape)
    proxy[row, order["candidate"].to_numpy()] = keyed["reward"].to_numpy()
    return items, logp, true, proxy


def bon_curve(logp: np.ndarray, proxy: np.ndarray, true: np.ndarray, ns) -> pd.DataFrame:
    """Exact best-of-n by the proxy reward, for each n: KL from the base, proxy and gold reward.

    Parameters
    ----------
    logp : (m, k) base log-probabilities over each item's candidates (``-inf`` where padded)
    proxy : (m, k) the selector's reward of each candidate
    true : (m, k) bool, the true answer (the gold reward is 1 for it, 0 otherwise)
    ns : the sizes n

    Returns
    -------
    DataFrame per n: ``n``, ``kl`` (mean over items of the exact KL(P_bon ‖ p)) with
    ``kl_low``/``kl_high``, ``kl_bound`` (log n − (n−1)/n), ``d`` = √kl, ``proxy`` and ``gold``
    (expected rewards under P_bon, means over items) with intervals.
    """
    p = np.exp(logp)
    p = p / p.sum(axis=1, keepdims=True)
    rows = []
    for n in ns:
        q = bestofn.exact(p, proxy, int(n))
        kl = bestofn.exact_kl(p, proxy, int(n))
        res = {"kl": stats.bootstrap_mean(kl, method="t") if np.ptp(kl) > 0 else None,
               "proxy": stats.bootstrap_mean((q * proxy).sum(1), method="t"),
               "gold": stats.bootstrap_mean((q * true).sum(1), method="t")}
        row = {"n": int(n), "kl_bound": bestofn.kl_bound(int(n)), "kl": float(kl.mean()), "d": float(np.sqrt(kl.mean()))}
        for k, r in res.items():
            if r is None:
                row.update({f"{k}_low": float(kl.mean()), f"{k}_high": float(kl.mean())})
                continue
            row[k] = r.statistic
            row[f"{k}_low"], row[f"{k}_high"] = r.confidence_interval.low, r.confidence_interval.high
        rows.append(row)
    return pd.DataFrame(rows)
