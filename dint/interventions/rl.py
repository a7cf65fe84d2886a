"""KL-penalised online RL against the proxy reward model (RLHF), with TRL's `RLOOTrainer`.

The policy samples completions, the proxy `RewardModel` scores them, and the policy moves towards
high proxy reward while a KL penalty holds it near the reference (the input model). The world's
gold reward (the truth) is never seen by the trainer; it is measured alongside, so the
over-optimisation curve of Gao et al. (proxy keeps rising, gold peaks and falls, as √KL grows)
can be drawn from ``record.extra["checkpoints"]``.

Why `RLOOTrainer` (TRL 1.16)
---------------------------
- `RLOOTrainer` applies ``beta`` as the classic RLHF penalty *in the reward*:
  ``r(x, y) − beta · Σ_t [log π(y_t|·) − log π_ref(y_t|·)]`` (a sequence-level k1 estimate of
  KL(π‖π_ref) from the sampled completion), then leave-one-out baselines over the
  ``num_generations`` completions of a prompt. This is the objective of Gao et al. §3.6.
- `GRPOTrainer` instead adds ``beta`` times a per-token k3 estimate to the *loss* (and defaults to
  ``beta = 0``), which is not the KL-penalised reward that the over-optimisation laws are stated for.
- Both accept a callable reward; a callable is used rather than passing the reward model as an
  ``nn.Module`` because TRL's module path scores ``prompt + decoded completion`` without an eos
  token, whereas `RewardTrainer` trained on sequences ending in eos, and a word-level decoder drops
  the completion's leading space (so the module path would see ``"A :red"``, an unknown word).
- The reference model is built by `RLOOTrainer` from the policy's path, so the input model is saved
  to a temporary folder (safetensors) and both policy and reference are loaded from it: the input
  model is never touched.

Costs (``InterventionRecord``)
------------------------------
With G the prompt + completion tokens generated over the run (non-padding):
``tokens`` = G × the number of optimiser passes each generation batch gets (``num_iterations``),
the policy's training forward/backward tokens, so ``train_flops`` = 6·N·tokens.
``inference_tokens`` = G (generation) + G (the policy's no-grad log-prob pass) + G (the reference
pass) + the reward model's tokens (prompt + completion + eos); ``inference_flops`` = 2·N·3G +
2·N_rm·(reward tokens). Checkpoint evaluation is measurement and is not counted.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from .. import divergence, sampling, scoring
from ..lazy import LazyModule, no_grad
from ..models import n_params
from .record import InterventionRecord, config_dict, inference_flops, stopwatch, train_flops
from .reward import RewardModel, checkpointing_off, gold_reward
from .session import quiet, session
from ..stats.checks import check_int

torch = LazyModule("torch")   # imported on first use (dint.lazy)


@dataclass(frozen=True)
class RLConfig:
    """KL-penalised RL (RLOO) against a proxy reward."""

    beta: float = 0.05              # KL coefficient: reward − beta · KL(policy ‖ reference), > 0
    steps: int = 200                # optimiser steps
    num_generations: int = 4        # completions per prompt (leave-one-out baseline), >= 2
    prompts_per_step: int = 4       # distinct prompts per optimiser step
    lr: float = 1e-4                # AdamW learning rate (constant)
    max_completion_length: int = 6  # generated tokens per completion, at most
    temperature: float = 1.0        # sampling temperature of the policy during training
    num_iterations: int = 1         # optimiser passes per generation batch (μ)
    epsilon: float = 0.2            # PPO-style ratio clipping, used when num_iterations > 1
    normalize_advantages: bool = False  # rescale advantages per batch to mean 0, sd 1
    weight_decay: float = 0.0       # AdamW decoupled weight decay
    max_grad_norm: float = 1.0      # gradient clipping
    checkpoint_every: int = 20      # steps between checkpoint evaluations (also at step 0 and the end)
    n_eval: int = 32                # evaluation prompts (the first distinct ones of prompts_df)
    eval_samples: int = 4           # sampled completions per evaluation prompt
    threads: int = 0                # torch threads while running (0: leave torch's default)

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"RLConfig.{name}={getattr(self, name)!r}: {why}")

        check_int(f"{type(self).__name__}.threads", self.threads, 0)   # 0: torch's default
        ints = ("steps", "num_generations", "prompts_per_step", "max_completion_length", "num_iterations",
                "checkpoint_every", "n_eval", "eval_samples")
        for name in ints:
            v = getattr(self, name)
            check_int(f"{type(self).__name__}.{name}", v, 1)
        if self.num_generations < 2:
            bad("num_generations", "RLOO's leave-one-out baseline needs at least 2 completions per prompt")
        if self.eval_samples < 2:
            bad("eval_samples", "the sequence-level KL estimate needs at least 2 samples per prompt")
        if not (math.isfinite(self.beta) and self.beta > 0):
            bad("beta", "must be > 0 (a KL-penalised objective); for beta = 0 use an unpenalised trainer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "must be a positive number, e.g. 1e-4")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            bad("temperature", "must be > 0")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            bad("epsilon", "must be > 0")
        for name in ("weight_decay", "max_grad_norm"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                bad(name, "must be a finite number >= 0")


class _ProxyReward:
    """The reward function RLOOTrainer calls: the proxy RewardModel; gold reward is logged beside it."""

    __name__ = "proxy"

    def __init__(self, reward_model: RewardModel, tokenizer, world):
        self.rm, self.tokenizer, self.world = reward_model, tokenizer, world
        self.generated: list[int] = []    # prompt + completion tokens per call (one call per generation batch)
        self.reward_tokens = 0

    def __call__(self, prompts, completions, completion_ids, fact=None, log_metric=None, **_):
        texts = [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in completion_ids]
        ids = self.rm.encode(prompts, texts)
        rewards = self.rm.score_ids(ids)
        self.reward_tokens += sum(map(len, ids))
        prompt_ids = self.tokenizer(list(prompts))["input_ids"]  # as RLOOTrainer tokenises them
        self.generated.append(sum(map(len, prompt_ids)) + sum(map(len, completion_ids)))
        if fact is not None and log_metric is not None:
            log_metric("gold", float(np.mean(gold_reward(self.world, fact, texts))))
        return rewards.tolist()


_LOGITS_BUDGET = 2 ** 26   # logits per forward pass of `_EvalSet._sequence_logp` (256 MB in float32)


class _EvalSet:
    """Fixed evaluation prompts: exact answer distributions, and samples for the sequence-level view."""

    def __init__(self, reference, tokenizer, reward_model, world, prompts: pd.DataFrame, config: RLConfig, seed,
                 per_prompt: bool = False):
        facts = world.facts.set_index("fact")
        self.tokenizer, self.rm, self.world, self.config, self.seed = tokenizer, reward_model, world, config, seed
        self.per_prompt = per_prompt
        self.facts = prompts["fact"].tolist()
        self.prompts = prompts["prompt"].tolist()
        self.candidates = [[" " + v for v in world.values[facts.at[f, "relation"]]] for f in self.facts]
        self.target = np.array([world.values[facts.at[f, "relation"]].index(facts.at[f, "value"])
                                for f in self.facts])
        k = max(map(len, self.candidates))
        self.valid = np.array([[j < len(c) for j in range(k)] for c in self.candidates])  # (m, k)
        r = self.rm.score([p for p, c in zip(self.prompts, self.candidates) for _ in c],
                          [a for c in self.candidates for a in c])
        self.cand_reward = np.zeros(self.valid.shape)
        self.cand_reward[self.valid] = r
        self.ref_logp = self._answer_logp(reference)
        self.reference = reference

    def _answer_logp(self, model) -> tuple[np.ndarray, np.ndarray]:
        """log p_set (m, k) padded with -inf, and the mass outside each candidate set (m,)."""
        df = scoring.score(model, self.tokenizer, self.prompts, self.candidates)
        logp = np.full(self.valid.shape, -np.inf)
        logp[self.valid] = np.log(df["p_set"].to_numpy())
        return logp, df.groupby("item")["mass_outside"].first().to_numpy()

    @no_grad
    def _sequence_logp(self, model, rows: pd.DataFrame) -> np.ndarray:
        """Teacher-forced log-probability of each sampled token sequence given its prompt."""
        pids = self.tokenizer(rows["prompt"].tolist(), add_special_tokens=False)["input_ids"]
        seqs = [list(p) + list(t) for p, t in zip(pids, rows["tokens"])]
        width = max(map(len, seqs))
        x = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros_like(x)
        for b, s in enumerate(seqs):
            x[b, :len(s)], mask[b, :len(s)] = torch.tensor(s), 1
        # the logits of a batch are (B, T, V): with a large vocabulary (Gemma's 262k) and hundreds of sequences
        # they would take tens of GB, so the sequences go through in chunks of at most _LOGITS_BUDGET logits
        vocab = int(getattr(model.config, "vocab_size", 0) or 50_000)
        per = max(1, _LOGITS_BUDGET // (width * vocab))
        was_training = model.training
        model.eval()
        chunks = []
        try:
            for i in range(0, len(seqs), per):
                xb, mb = x[i:i + per], mask[i:i + per]
                logits = model(input_ids=xb.to(model.device), attention_mask=mb.to(model.device)).logits
                logp = torch.log_softmax(logits[:, :-1].float(), -1)                        # (b, T-1, V)
                chunks.append(logp.gather(-1, xb[:, 1:, None].to(logp.device))[..., 0].double().cpu())
                del logits, logp
        finally:
            model.train(was_training)
        tok = torch.cat(chunks)                                                         # (B, T-1)
        starts = torch.tensor([len(p) - 1 for p in pids])[:, None]                 # first predicting position
        ends = starts + torch.tensor([len(t) for t in rows["tokens"]])[:, None]
        pos = torch.arange(width - 1)[None, :]
        return ((pos >= starts) & (pos < ends)).double().mul(tok).sum(-1).numpy()

    def __call__(self, policy, step: int) -> dict:
        logp, outside = self._answer_logp(policy)
        ref_logp, _ = self.ref_logp
        p = np.exp(logp)
        kl = divergence.kl(logp, ref_logp, axis=-1)
        cfg = sampling.SamplingConfig(n=self.config.eval_samples, max_new_tokens=self.config.max_completion_length,
                                      seed=self.seed)
        s = sampling.sample(policy, self.tokenizer, self.prompts, cfg)
        s = s[s["tokens"].map(len) > 0]
        prompts = s["prompt"].tolist()
        facts = [self.facts[i] for i in s["item"]]
        lp, lq = self._sequence_logp(policy, s), self._sequence_logp(self.reference, s)
        mc = divergence.mc_kl(np.minimum(lp, 0), np.minimum(lq, 0))
        proxy_exact = np.sum(np.where(self.valid, p * self.cand_reward, 0.0), -1)   # (m,)
        gold_exact = p[np.arange(len(p)), self.target]                                # (m,)
        row = {"step": int(step),
               "proxy": float(np.mean(self.rm.score(prompts, s["text"].tolist()))),
               "gold": float(np.mean(gold_reward(self.world, facts, s["text"].tolist()))),
               "kl": float(np.mean(kl)),
               "proxy_exact": float(np.mean(proxy_exact)),
               "gold_exact": float(np.mean(gold_exact)),
               "kl_seq": float(mc.statistic), "kl_seq_se": float(mc.standard_error),
               "mass_outside": float(np.mean(outside))}
        if self.per_prompt:
            row["per_prompt"] = {"gold_exact": gold_exact.tolist(), "proxy_exact": proxy_exact.tolist(),
                                 "kl": np.asarray(kl, float).tolist()}
        return row


def _checkpoints(evaluate: _EvalSet, every: int):
    """A trainer callback that evaluates the policy at step 0, every ``every`` steps and at the last
    step, into its ``rows`` (the class is made here: transformers is imported on first use)."""
    from transformers import TrainerCallback

    class Checkpoints(TrainerCallback):
        def __init__(self):
            self.rows = []

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.rows.append(evaluate(model, 0))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every == 0 or state.global_step >= state.max_steps:
                self.rows.append(evaluate(model, state.global_step))

    return Checkpoints()


def _check(model, tokenizer, prompts_df, reward_model, config, world, eval_prompts):
    if not isinstance(config, RLConfig):
        raise TypeError(f"config must be an RLConfig, got {type(config).__name__}")
    if not isinstance(reward_model, RewardModel):
        raise TypeError(f"reward_model must be a RewardModel (see dint.interventions.reward.train), got "
                         f"{type(reward_model).__name__}")
    for name, df in (("prompts_df", prompts_df), ("eval_prompts", eval_prompts)):
        if df is None and name == "eval_prompts":
            continue
        if not isinstance(df, pd.DataFrame) or not {"prompt", "fact"} <= set(df.columns) or len(df) == 0:
            raise ValueError(f"{name} must be a non-empty DataFrame with columns 'fact' and 'prompt', e.g. "
                             "world.prompts('qa', facts)")
        unknown = set(df["fact"]) - set(world.facts["fact"])
        if unknown:
            raise ValueError(f"{name}: facts {sorted(unknown)[:5]} are not fact ids of world")
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("tokenizer needs a pad token and an eos token")
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    longest = max(len(x) for x in tokenizer(prompts_df["prompt"].tolist())["input_ids"])
    if limit is not None and longest + config.max_completion_length + 1 > limit:
        raise ValueError(f"RLConfig.max_completion_length={config.max_completion_length}: prompts of {longest} "
                         f"tokens plus the completion and eos exceed the model's {limit} positions")


def run(model, tokenizer, prompts_df: pd.DataFrame, reward_model: RewardModel, config: RLConfig = RLConfig(), *,
        world, eval_prompts: pd.DataFrame | None = None, seed: int = 0, progress: bool = False,
        per_prompt: bool = False) -> tuple[torch.nn.Module, InterventionRecord]:
    """Optimise ``model`` against ``reward_model`` with a KL penalty to ``model`` itself (RLOO).

    Parameters
    ----------
    model : `transformers` causal LM, the policy's start and the KL reference; not modified.
    tokenizer : its tokenizer (pad and eos set).
    prompts_df : DataFrame with ``prompt`` and ``fact`` (e.g. ``world.prompts("qa", train_facts)``);
        prompts are drawn from it in a seeded order, cycling as needed.
    reward_model : RewardModel, the proxy the policy optimises.
    config : RLConfig
    world : World, for the gold reward (the truth), which the trainer never sees.
    eval_prompts : DataFrame with ``prompt`` and ``fact`` evaluated at every checkpoint; default the
        first ``config.n_eval`` distinct (fact, prompt) rows of ``prompts_df``.
    seed : all randomness (prompt order, sampling); the caller's global random state is restored.
    progress : show the trainer's tqdm bar.
    per_prompt : also keep, per checkpoint, ``per_prompt``: ``gold_exact``, ``proxy_exact`` and ``kl`` of each
        evaluation prompt (lists in the order of ``eval_prompts``), whose means are the checkpoint's values.

    Returns
    -------
    policy : the trained causal LM (a new object), in eval mode
    record : InterventionRecord, method ``"rl"``. ``extra["checkpoints"]`` is a list of dicts, one
        per checkpoint, on the evaluation prompts: ``step``; ``proxy`` and ``gold``, the mean proxy
        and gold reward of ``eval_samples`` completions sampled per prompt from the policy (T = 1);
        ``kl``, the exact KL(policy ‖ reference) between answer distributions over each prompt's
        candidate set (renormalised, `dint.scoring.score`), averaged over prompts;
        ``proxy_exact`` and ``gold_exact``, the proxy reward and truth probability under those
        answer distributions; ``kl_seq`` ± ``kl_seq_se``, the Monte-Carlo sequence-level KL from the
        samples (`dint.divergence.mc_kl`); ``mass_outside``, the policy's mass outside the candidate
        sets; ``trainer_kl`` and ``trainer_reward``, what TRL logged at that step (per-token k1 KL
        of the training batch, mean proxy reward). ``extra["log"]`` is TRL's log history.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check(model, tokenizer, prompts_df, reward_model, config, world, eval_prompts)
    if eval_prompts is None:
        eval_prompts = prompts_df[["fact", "prompt"]].drop_duplicates().head(config.n_eval)
    eval_prompts = eval_prompts[["fact", "prompt"]].reset_index(drop=True)
    data = Dataset.from_dict({"prompt": prompts_df["prompt"].astype(str).tolist(),
                              "fact": [int(f) for f in prompts_df["fact"]]})

    with session(progress, config.threads), stopwatch() as elapsed, tempfile.TemporaryDirectory(prefix="dint-rl-") as tmp:
        # imported here: importing trl draws from the global random state
        from trl import RLOOConfig, RLOOTrainer

        init = Path(tmp) / "init"
        model.save_pretrained(init, safe_serialization=True)
        tokenizer.save_pretrained(init)
        reference = AutoModelForCausalLM.from_pretrained(init, local_files_only=True, use_safetensors=True,
                                                         dtype=torch.float32).to(model.device).eval()
        tok = AutoTokenizer.from_pretrained(init, local_files_only=True)
        evaluate = _EvalSet(reference, tok, reward_model, world, eval_prompts, config, seed, per_prompt)
        checkpoints = _checkpoints(evaluate, config.checkpoint_every)
        rewards = _ProxyReward(reward_model, tok, world)
        args = RLOOConfig(
            output_dir=str(Path(tmp) / "out"), max_steps=config.steps, beta=config.beta,
            per_device_train_batch_size=config.prompts_per_step * config.num_generations,
            num_generations=config.num_generations, learning_rate=config.lr, lr_scheduler_type="constant",
            max_completion_length=config.max_completion_length, temperature=config.temperature,
            num_iterations=config.num_iterations, epsilon=config.epsilon,
            normalize_advantages=config.normalize_advantages, weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm, disable_dropout=True, model_init_kwargs={"dtype": "float32"},
            bf16=False, fp16=False, logging_steps=1, save_strategy="no", report_to="none",
            disable_tqdm=not progress, seed=seed, data_seed=seed, dataloader_num_workers=0,
            use_cpu=model.device.type == "cpu", **checkpointing_off())
        trainer = RLOOTrainer(model=str(init), reward_funcs=rewards, args=args, train_dataset=data,
                              processing_class=copy.deepcopy(tok), callbacks=[checkpoints])
        quiet(trainer)
        trainer.train()
        policy = trainer.accelerator.unwrap_model(trainer.model)
        policy.__dict__.pop("forward", None)  # drop TRL's fused-LM-head patch: a plain causal LM again
        policy.config._name_or_path = model.config._name_or_path
        policy.eval()
        steps, log = trainer.state.global_step, [dict(e) for e in trainer.state.log_history]
        del trainer
        wall = elapsed()

    by_step = {e["step"]: e for e in log if "step" in e and "loss" in e}
    for row in checkpoints.rows:
        e = by_step.get(row["step"], {})
        row["trainer_kl"] = e.get("kl")
        row["trainer_reward"] = e.get("reward")
    mu = config.num_iterations
    passes = [min(mu, steps - i * mu) for i in range(len(rewards.generated))]
    tokens = int(sum(g * k for g, k in zip(rewards.generated, passes)))
    generated = int(sum(rewards.generated))
    record = InterventionRecord(
        method="rl", config=config_dict(config), seed=seed, steps=steps, tokens=tokens,
        train_flops=train_flops(policy, tokens), inference_tokens=3 * generated + rewards.reward_tokens,
        inference_flops=inference_flops(policy, 3 * generated) + 2.0 * reward_model.n_params * rewards.reward_tokens,
        wall_time=wall, n_params=n_params(policy),
        trainable_params=sum(p.numel() for p in policy.parameters() if p.requires_grad),
        loss_first=_first(log, "loss"), loss_last=_first(log[::-1], "loss"),
        extra={"checkpoints": checkpoints.rows, "log": log, "eval_facts": [int(f) for f in eval_prompts["fact"]],
               "inference_tokens": {"generation": generated, "policy_logp": generated, "reference": generated,
                                    "reward_model": rewards.reward_tokens},
               "trainer": "trl.RLOOTrainer",
               "kl_penalty": "reward - beta * sequence-level k1 estimate of KL(policy || reference)"})
    return policy, record


def _first(log: list[dict], key: str) -> float:
    return next((float(e[key]) for e in log if e.get(key) is not None), float("nan"))
