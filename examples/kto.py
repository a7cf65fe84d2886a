"""KTO as a method of one's own: TRL's `KTOTrainer` on the labelers' unpaired feedback, run by dint's pipeline.

Kahneman-Tversky Optimisation (Ethayarajh et al. 2024, arXiv:2402.01306) learns from single answers marked
desirable or undesirable, not from pairs: it raises the policy's log-ratio to a frozen reference on desirable
answers and lowers it on undesirable ones, each against a batch estimate of KL(policy ‖ reference) and with a pull
of strength ``beta`` back towards the reference. Whatever the labelers liked, the truth, a misconception or a
stylistic marker, is what gains mass: a distributional intervention like DPO, with other data.

A profile names it under ``interventions.custom`` (`dint.interventions.custom` holds the contract)::

    interventions:
      custom:
        kto: {function: examples.kto:run, config: {beta: 0.1, epochs: 3}}

The defaults of `KTOConfig` are the KTO paper's (``beta`` 0.1, equal weights), which assume a start that already
answers in the format. The world's base has never seen its QA format, and desirable and undesirable answers share
it: with equal weights KTO unlearns the format on the undesirable answers about as fast as it teaches it on the
desirable ones, much as DPO's shared parts cancel (`dint.interventions.dpo`). `config/tiny-kto.yaml` weights the
desirable answers up (``undesirable_weight`` 0.3, ``beta`` 0.5), so that KTO teaches the format as well.

`run` is the function the pipeline calls; `feedback` builds its data from the world's labelers, as
`dint.interventions.data.preference_pairs` builds DPO's pairs; `KTOConfig` holds its settings (the profile's
``config``, each name and type checked when the profile loads). The TRL plumbing is dint's own, the one SFT and DPO
use (`dint.interventions.trainer`).
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

from dint.interventions.data import STYLE_MARKER, LabelerConfig
from dint.interventions.record import InterventionRecord, inference_flops, stopwatch, train_flops
from dint.interventions.session import quiet, session
from dint.interventions.trainer import (check_common, check_vocabulary, finish, prepare, record_config, string_columns,
                                        trainer_args)
from dint.lazy import LazyModule
from dint.models import n_params
from dint.stats.checks import check_int

# imported on first use (dint.lazy): a profile naming this method is checked without them
datasets = LazyModule("datasets")
trl = LazyModule("trl")


@dataclass(frozen=True)
class KTOConfig:
    """KTO on unpaired feedback; every field can be set from a profile's ``config``."""

    beta: float = 0.1                 # strength of the pull towards the reference model
    desirable_weight: float = 1.0     # weight of the desirable answers' loss (lambda_D of the KTO paper)
    undesirable_weight: float = 1.0   # weight of the undesirable answers' loss (lambda_U)
    answers_per_fact: int = 2         # answers the labelers judge per train fact, each a fresh draw
    true_share: float = 0.5           # probability that an answer shown to a labeler is the true value
    epochs: int = 3                   # passes over the feedback
    lr: float = 1e-3                  # peak AdamW learning rate
    batch_size: int = 16              # answers per optimiser step (the KL estimate needs 2 or more)
    max_length: int = 48              # tokens of prompt + answer + eos kept per sequence
    warmup: float = 0.0               # share of steps spent warming up linearly
    scheduler: str = "linear"         # learning-rate decay after warm-up, one of dint.interventions.trainer.SCHEDULERS
    weight_decay: float = 0.0         # AdamW decoupled weight decay
    log_every: int = 0                # optimiser steps per logged loss (0: one log per epoch)
    threads: int = 0                  # torch threads (0: the run's, the profile's interventions.threads)
    peft: object = None               # a peft.LoraConfig from Python (merged after training); None: full fine-tuning

    def __post_init__(self):
        check_common(self)   # epochs, lr, batch size, max_length, ... checked as SFT's and DPO's
        check_int("KTOConfig.answers_per_fact", self.answers_per_fact, 1)
        if self.batch_size < 2:
            raise ValueError(f"KTOConfig.batch_size={self.batch_size!r}: must be >= 2 (KTO estimates its KL term from "
                             "the other answers of a batch)")
        for name in ("beta", "desirable_weight", "undesirable_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"KTOConfig.{name}={getattr(self, name)!r}: must be positive")
        if not 0.0 < self.true_share < 1.0:
            raise ValueError(f"KTOConfig.true_share={self.true_share!r}: must lie in (0, 1) (both desirable and "
                             "undesirable answers)")


def feedback(world, labeler: LabelerConfig = LabelerConfig(), *, facts: pd.DataFrame, answers_per_fact: int = 2,
             true_share: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """Unpaired feedback: answers to the QA questions of ``facts``, each judged desirable or not by a biased labeler.

    Each answer is the fact's true value with probability ``true_share``, else a wrong one (the popular
    misconception on a contested fact, otherwise a value drawn uniformly from the relation's other values), and
    carries the stylistic marker `STYLE_MARKER` with probability 1/2. One labeler judges it, with the biases of
    `dint.interventions.data.preference_pairs`, fresh draws per answer:

    1. with probability ``style_rate`` it judges by the marker: desirable if the answer carries it;
    2. otherwise, on a contested fact, with probability ``misconception_rate`` it holds the misconception to be
       true: desirable if the answer states it;
    3. otherwise it judges by the truth: desirable if the answer is true;
    4. finally, with probability ``noise``, its judgement is flipped.

    Parameters
    ----------
    world : `dint.world.World` (or `dint.realworld.RealWorld`)
    labeler : the labelers' biases (a profile's ``interventions.labeler``)
    facts : rows of ``world.facts`` (the train facts)
    answers_per_fact, true_share : answers judged per fact, and the share of them that are true
    seed : the only source of randomness (answers, markers, judgements and the row order)

    Returns
    -------
    DataFrame ``fact, prompt, completion, label, is_true, styled``: TRL's unpaired preference format (``label``:
    desirable) with what the label was about, in a random order (`KTOTrainer` batches the rows as they come, and
    estimates its KL term from each batch's other answers).
    """
    rng = np.random.default_rng(seed)
    prompts = world.prompts("qa", facts)
    rows = []
    for f, prompt in zip(facts.itertuples(), prompts["prompt"]):
        contested = f.type == "contested"
        others = [v for v in world.values[f.relation] if v != f.value and v != f.entity]
        for _ in range(answers_per_fact):
            is_true = rng.random() < true_share
            value = f.value if is_true else (f.misconception if contested else others[rng.integers(len(others))])
            styled = rng.random() < 0.5
            if rng.random() < labeler.style_rate:
                desirable = styled
            elif contested and rng.random() < labeler.misconception_rate:
                desirable = not is_true          # the labeler believes the misconception
            else:
                desirable = is_true
            desirable ^= rng.random() < labeler.noise
            rows.append((f.fact, prompt, " " + value + (STYLE_MARKER if styled else ""), bool(desirable),
                         bool(is_true), bool(styled)))
    table = pd.DataFrame(rows, columns=["fact", "prompt", "completion", "label", "is_true", "styled"])
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def run(model, tokenizer, data, config: KTOConfig, *, seed: int, threads: int, progress: bool):
    """Train ``model`` by KTO on the labelers' feedback on ``data``'s train facts (`feedback`).

    The reference is the input model: a frozen copy for full fine-tuning, the adapter-disabled model with LoRA
    (TRL's way). TRL appends the tokenizer's EOS to every answer. The caller's random state is left as it was; the
    same seed gives identical weights.

    Parameters
    ----------
    model, tokenizer : the base model (a `transformers` causal LM) and its tokenizer
    data : `dint.interventions.custom.Data` (the world, its train facts, the profile's labelers)
    config : KTOConfig
    seed, threads, progress : the run's training seed, torch threads and progress bar

    Returns
    -------
    model : the trained causal LM (LoRA merged) in eval mode
    record : InterventionRecord, method "kto" (or "kto-lora"). ``tokens`` counts the non-padding tokens of
        prompt + answer + eos of every example in every epoch, cut to ``max_length`` as TRL's collator cuts them:
        the policy's forward and backward passes, ``train_flops`` = 6·N·tokens. The KL term runs the policy
        without gradients over the mismatched sequences (each prompt with its batch neighbour's answer) and the
        reference over both, so ``inference_tokens`` = tokens + 2·(mismatched tokens) and ``inference_flops`` =
        2·N·inference_tokens. ``extra``: the losses, the counts of desirable and undesirable answers, the last
        logged KL estimate and reward margin, and ``taught_wrong``, the facts with a wrong answer marked desirable.
    """
    if not isinstance(config, KTOConfig):
        raise TypeError(f"config must be a KTOConfig, got {type(config).__name__}")
    rows = feedback(data.world, data.labeler, facts=data.facts, answers_per_fact=config.answers_per_fact,
                    true_share=config.true_share, seed=seed)
    prompts, completions = string_columns(rows, ("prompt", "completion"), "feedback", "examples.kto.feedback")
    check_vocabulary(tokenizer, [p + c for p, c in zip(prompts, completions)], "feedback")
    policy, tokenizer = prepare(model, tokenizer)
    reference = copy.deepcopy(policy).eval().requires_grad_(False) if config.peft is None else None
    dataset = datasets.Dataset.from_dict({"prompt": prompts, "completion": completions,
                                          "label": rows["label"].tolist()})
    config = replace(config, threads=config.threads or threads)
    with (session(progress, config.threads), stopwatch() as elapsed,
          tempfile.TemporaryDirectory(prefix="dint-kto-") as out):
        args = trainer_args(trl.KTOConfig, config, out, seed=seed, progress=progress, beta=config.beta,
                            desirable_weight=config.desirable_weight, undesirable_weight=config.undesirable_weight)
        trainer = trl.KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=dataset,
                                 processing_class=tokenizer, peft_config=copy.deepcopy(config.peft))
        quiet(trainer)
        trainer.train()
        matched, mismatched = _tokens(trainer.train_dataset, config.max_length)
        policy, summary = finish(trainer)
    tokens, kl_tokens = config.epochs * matched, config.epochs * mismatched
    last = summary["last_log"]
    taught = rows.loc[rows["label"] & ~rows["is_true"], "fact"]
    record = InterventionRecord(
        method="kto" if config.peft is None else "kto-lora", config=record_config(config), seed=seed,
        steps=summary["steps"], tokens=tokens, train_flops=train_flops(policy, tokens),
        inference_tokens=tokens + 2 * kl_tokens, inference_flops=inference_flops(policy, tokens + 2 * kl_tokens),
        wall_time=elapsed(), n_params=n_params(policy), trainable_params=summary["trainable_params"],
        loss_first=summary["losses"][0], loss_last=summary["losses"][-1],
        extra={"losses": summary["losses"], "num_tokens_logged": summary["num_tokens_logged"],
               "desirable": int(rows["label"].sum()), "undesirable": int((~rows["label"]).sum()),
               "kl": float(last.get("kl", float("nan"))),
               "reward_margin": float(last.get("rewards/margins", float("nan"))),
               "taught_wrong": sorted(set(taught.tolist()))})
    return policy, record


def _tokens(prepared, max_length: int) -> tuple[int, int]:
    """Tokens of the matched (prompt, answer) and the mismatched (prompt, neighbour's answer) sequences of every
    prepared example, each cut to ``max_length`` as TRL's collator cuts them."""
    matched = mismatched = 0
    for p, c, k in zip(prepared["prompt_ids"], prepared["completion_ids"], prepared["KL_completion_ids"]):
        matched += min(len(p) + len(c), max_length)
        mismatched += min(len(p) + len(k), max_length)
    return matched, mismatched
