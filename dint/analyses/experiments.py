"""Experiments shared by the notebooks: the RL beta sweep, proxies that start aligned, best-of-n curves.

`rl_sweep` is a cached artifact (KL-penalised RL from the SFT model at every beta of the profile,
with proxy reward, gold reward and KL at checkpoints, and each final policy's scores: `rl_sweep_scores`); so are `aligned_sweep` (proxies trained on
gold-labelled pairs and RL against each, prompt by prompt) and `reward_table`, the proxy reward of every
candidate answer. `bon_curve` computes best-of-n exactly from a model's answer distributions and a reward of
every candidate.
"""
from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from dataclasses import asdict, dataclass

from ..pipeline import artifacts
from .. import compare, stats
from ..pipeline.config import Profile
from ..interventions import bestofn, plan
from ..interventions.plan import AlignedConfig


RL_SWEEP_FILES = ("checkpoints", "scores")   # the RL sweep's tables (`rl_sweep`, `rl_sweep_scores`)


def _rl_sweep(profile: Profile, *, rebuild: bool = False, progress: bool = False):
    """The RL sweep's folder, built on first use: its checkpoints and its final policies' scores."""
    manifest = {**artifacts.intervention_manifest(profile, "rl_sweep", grids=("rl_betas",)), "kind": "rl_sweep",
                "scoring": profile.asdict()["scoring"]}
    own = profile.interventions.config("rl").beta
    inputs = {"world": artifacts.ensure_world(profile),
              "sft": artifacts.ensure_intervention(profile, "sft", progress=progress),
              "reward": artifacts.ensure_intervention(profile, "reward", progress=progress),
              "rlhf": artifacts.ensure_intervention(profile, "rlhf", progress=progress)}

    def build(tmp):
        w = artifacts.world(profile)
        sft_model, tok, _ = artifacts.intervention(profile, "sft", progress=progress)
        rm, _, _ = artifacts.intervention(profile, "reward", progress=progress)
        rows, tables = [], []
        swept = {float(b) for b in profile.interventions.rl_betas}
        for beta in sorted(swept | {float(own)}):
            if beta == float(own):
                record = artifacts.intervention(profile, "rlhf", progress=progress)[2]
                table = artifacts.intervention_scores(profile, "rlhf")
            else:
                policy, record = plan.rlhf(profile.interventions, w, sft_model, tok, rm, beta=beta,
                                           seed=profile.train_seed, progress=progress)
                with artifacts.threads(profile):
                    table = artifacts.score_world(policy, tok, w, profile)
            tables.append(table.assign(beta=beta)[["beta", *table.columns]])
            if beta in swept:
                for c in record.extra["checkpoints"]:
                    rows.append({"beta": beta, **{k: v for k, v in c.items() if np.isscalar(v)},
                                 "train_flops": record.train_flops, "wall_time": record.wall_time})
        pd.DataFrame(rows).to_parquet(tmp / "checkpoints.parquet", index=False)
        pd.concat(tables, ignore_index=True).to_parquet(tmp / "scores.parquet", index=False)

    return artifacts.cached(artifacts.root(profile) / "rl_sweep", manifest, build, inputs=inputs, rebuild=rebuild)


def rl_sweep(profile: Profile, *, rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """RL from the SFT model against the proxy reward at each ``interventions.rl_betas`` (a cached artifact,
    ``results/<profile>/rl_sweep/``, which also holds the final policies' scores: `rl_sweep_scores`).

    Returns
    -------
    DataFrame, one row per (beta, checkpoint): ``beta``, ``step`` and the checkpoint's ``proxy``,
    ``gold``, ``kl`` (exact, over candidate sets, on held-out facts), ``proxy_exact``,
    ``gold_exact``, ``kl_seq``, ``kl_seq_se``, ``mass_outside``; plus ``train_flops`` and
    ``wall_time`` of the run. The run at the profile's own ``rl.beta`` is the ``rlhf`` intervention
    (same start, reward, config and seed): its checkpoints are read from that artifact, not trained again.
    """
    return pd.read_parquet(_rl_sweep(profile, rebuild=rebuild, progress=progress) / "checkpoints.parquet")


def rl_sweep_scores(profile: Profile, *, rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """The final policy of the RL sweep at every β (``interventions.rl_betas`` and the ``rlhf`` intervention's own
    β, which is that intervention), scored on every fact in both forms as `dint.pipeline.artifacts.score_world`
    scores an intervention.

    Returns
    -------
    DataFrame: `dint.pipeline.artifacts.score_world`'s columns with ``beta`` first, one block per β, ascending.
    """
    return pd.read_parquet(_rl_sweep(profile, rebuild=rebuild, progress=progress) / "scores.parquet")


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


# -- proxies that start aligned (notebook 02, over-optimisation) ------------------------------------

@dataclass(frozen=True)
class Aligned:
    """`aligned_sweep`'s tables.

    ``proxies``: per proxy ``proxy, share, facts, pairs`` and its accuracy on gold pairs (``<split>_correct``,
    ``<split>_pairs`` for its own training pairs, the evaluation facts' and held-out facts'), ``wall_time``
    (proxy and RL); ``checkpoints``: per (proxy, step, evaluation prompt) ``proxy, share, step, item, fact,
    gold, proxy_reward, kl`` (`dint.analyses.overoptimisation`'s convention); ``runs``: per (proxy, step)
    the means `dint.interventions.rl.run` records (its sampled ``proxy`` and ``gold`` renamed ``proxy_sampled``,
    ``gold_sampled``); ``candidates``: per (proxy, evaluation fact, candidate)
    the proxy's ``reward`` (`reward_table`'s columns).
    """

    proxies: pd.DataFrame
    checkpoints: pd.DataFrame
    runs: pd.DataFrame
    candidates: pd.DataFrame


ALIGNED_FILES = ("proxies", "checkpoints", "runs", "candidates")


def aligned_sweep(profile: Profile, config: AlignedConfig | None = None, *, rebuild: bool = False,
                  progress: bool = False) -> Aligned:
    """Proxies that start aligned, and RL against each (a cached artifact, ``results/<profile>/aligned/``).

    Each proxy is a reward model trained from the base on gold-labelled pairs (`plan.gold_pairs`: the true
    value always chosen) of a nested share of the train facts (the facts permuted once by the training seed),
    and scored on its own pairs, on gold pairs of the evaluation facts and of held-out facts. RL runs from
    the SFT model against it on QA prompts of every train fact (`plan.rl_against`, the profile's RL config at
    the smallest ``rl_betas``), evaluated at every checkpoint on ``n_eval`` QA prompts of train facts drawn
    once by the training seed, per prompt (`dint.interventions.rl.run` with ``per_prompt``).

    Returns
    -------
    Aligned
    """
    config = profile.interventions.config("aligned") if config is None else config
    if not isinstance(config, AlignedConfig):
        raise TypeError(f"config must be an AlignedConfig, got {type(config).__name__}")
    manifest = {**artifacts.intervention_manifest(profile, "aligned", grids=("rl_betas",)), "kind": "aligned",
                "aligned": asdict(config)}
    inputs = {"world": artifacts.ensure_world(profile),
              "sft": artifacts.ensure_intervention(profile, "sft", progress=progress)}

    def build(tmp):
        tables = _aligned(profile, config, progress=progress)
        for name in ALIGNED_FILES:
            tables[name].to_parquet(tmp / f"{name}.parquet", index=False)

    folder = artifacts.cached(artifacts.root(profile) / "aligned", manifest, build, inputs=inputs, rebuild=rebuild)
    return Aligned(*(pd.read_parquet(folder / f"{name}.parquet") for name in ALIGNED_FILES))


def _aligned(profile: Profile, config: AlignedConfig, *, progress: bool) -> dict:
    from .. import models

    seed, cfg = profile.train_seed, profile.interventions
    w = artifacts.world(profile)
    base, tok, _ = artifacts.base_model(profile, progress=progress)
    sft_model, sft_tok, _ = artifacts.intervention(profile, "sft", progress=progress)
    train = plan.train_facts(w)
    heldout = w.facts[w.facts["split"] == "heldout"]
    pool = w.prompts("qa", train)
    evaluation = pool.sample(n=min(config.n_eval, len(pool)), random_state=seed).sort_values("fact")
    evaluation = evaluation.reset_index(drop=True)
    eval_facts = train[train["fact"].isin(set(evaluation["fact"]))]
    pairs = plan.gold_pairs(w, train, pairs_per_fact=config.pairs_per_fact, seed=seed)
    pairs_eval = pairs[pairs["fact"].isin(set(eval_facts["fact"]))]
    pairs_heldout = plan.gold_pairs(w, heldout, pairs_per_fact=config.pairs_per_fact, seed=seed)
    order = np.random.default_rng(seed).permutation(train["fact"].to_numpy())
    rl_config = cfg.config("rl", beta=float(min(cfg.rl_betas)), eval_samples=config.eval_samples)
    prompts = w.prompts("qa", train)
    sizes = [len(c) for c in evaluation["candidates"]]
    proxies, checkpoints, runs, candidates = [], [], [], []
    for name, share in zip(config.names, config.shares):
        facts = set(order[:max(1, round(share * len(order)))])
        own = pairs[pairs["fact"].isin(facts)]
        rm, record = plan.aligned_proxy(cfg, w, base, tok, own, seed=seed, progress=progress)
        row = {"proxy": name, "share": float(share), "facts": len(facts), "pairs": len(own)}
        for split, p in (("train", own), ("eval", pairs_eval), ("heldout", pairs_heldout)):
            with models.torch_threads(cfg.threads):
                right = rm.score(p["prompt"], p["chosen"]) > rm.score(p["prompt"], p["rejected"])
            row.update({f"{split}_correct": int(right.sum()), f"{split}_pairs": len(p)})
        policy, rl_record = plan.rl_against(cfg, w, sft_model, sft_tok, rm, prompts, evaluation, config=rl_config,
                                            seed=seed, progress=progress)
        proxies.append({**row, "wall_time": record.wall_time + rl_record.wall_time})
        for c in rl_record.extra["checkpoints"]:
            per = c["per_prompt"]
            checkpoints.append(pd.DataFrame({"proxy": name, "share": float(share), "step": int(c["step"]),
                                             "item": np.arange(len(evaluation)), "fact": evaluation["fact"].to_numpy(),
                                             "gold": per["gold_exact"], "proxy_reward": per["proxy_exact"],
                                             "kl": per["kl"]}))
            means = {{"proxy": "proxy_sampled", "gold": "gold_sampled"}.get(k, k): v for k, v in c.items() if np.isscalar(v)}
            runs.append({**means, "proxy": name, "share": float(share), "beta": rl_config.beta,
                         "wall_time": rl_record.wall_time})
        with models.torch_threads(cfg.threads):
            answers = [a for cs in evaluation["candidates"] for a in cs]
            reward = rm.score(np.repeat(evaluation["prompt"].to_numpy(), sizes).tolist(), [" " + a for a in answers])
        candidates.append(pd.DataFrame({"proxy": name, "fact": np.repeat(evaluation["fact"].to_numpy(), sizes),
                                        "candidate": np.concatenate([np.arange(n) for n in sizes]),
                                        "answer": answers, "reward": reward}))
        del rm, policy   # this proxy and its policy, before the next proxy trains (a real base: GBs each)
        gc.collect()
    return {"proxies": pd.DataFrame(proxies), "checkpoints": pd.concat(checkpoints, ignore_index=True),
            "runs": pd.DataFrame(runs), "candidates": pd.concat(candidates, ignore_index=True)}
