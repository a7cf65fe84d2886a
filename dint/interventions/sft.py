"""Supervised fine-tuning: TRL's `SFTTrainer` on prompt-completion demonstrations, full or LoRA.

SFT shifts the answer distribution towards the demonstrated completions under the demonstrated
prompt format; `run` returns the shifted model and what the shift cost. With LoRA the adapters
are merged into the weights afterwards, so that every scorer sees a plain causal LM.

The TRL plumbing it shares with `dint.interventions.dpo` (LoRA configs, trainer arguments, the trained
model back as a plain causal LM) is `dint.interventions.trainer`.
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd

from ..lazy import LazyModule
from ..models import n_params
from .record import InterventionRecord, inference_flops, stopwatch, train_flops
from .session import quiet, session
from .trainer import check_common, check_vocabulary, finish, prepare, record_config, string_columns, trainer_args

# imported on first use (dint.lazy): a profile's configs are checked without them
datasets = LazyModule("datasets")
peft = LazyModule("peft")
trl = LazyModule("trl")

@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on demonstrations."""

    epochs: int = 3                      # passes over the demonstrations
    lr: float = 1e-3                     # peak AdamW learning rate
    batch_size: int = 16                 # demonstrations per optimiser step
    max_length: int = 48                 # tokens of prompt + answer + eos kept (TRL cuts the rest)
    warmup: float = 0.0                  # share of steps spent warming up linearly
    scheduler: str = "linear"            # learning-rate decay after warm-up, one of SCHEDULERS
    weight_decay: float = 0.0            # AdamW decoupled weight decay
    completion_only_loss: bool = True    # loss on the answer (and eos) only, not on the prompt
    log_every: int = 0                   # optimiser steps per logged loss (0: one log per epoch)
    threads: int = 0                     # torch threads while training (0: leave torch's default)
    peft: peft.LoraConfig | None = None  # LoRA adapters (merged after training); None: full fine-tuning

    def __post_init__(self):
        check_common(self)


def run(model, tokenizer, demos: pd.DataFrame, config: SFTConfig = SFTConfig(), *, seed: int = 0,
        progress: bool = False):
    """Fine-tune a copy of ``model`` on prompt-completion demonstrations with TRL's `SFTTrainer`.

    The completion gets the tokenizer's EOS appended (by TRL) and, by default, only the completion
    and EOS tokens carry loss. ``model`` and ``tokenizer`` are not modified. The caller's random
    state is left as it was; randomness (LoRA initialisation, batch order) comes from ``seed``, and
    the same seed gives identical weights.

    Parameters
    ----------
    model : a `transformers` causal LM
    tokenizer : its tokenizer (with pad and eos tokens)
    demos : DataFrame with ``prompt`` and ``completion`` (e.g. `data.sft_demos`); other columns
        are ignored.
    config : SFTConfig
    seed : int
    progress : show TRL's progress bar

    Returns
    -------
    model : the fine-tuned causal LM (LoRA merged into the weights) in eval mode
    record : InterventionRecord, method "sft" or "sft-lora". ``tokens`` counts the non-padding
        tokens of prompt + completion + eos of every demonstration in every epoch — what the
        training forward passes process — so ``train_flops`` = 6·N·tokens; it equals TRL's logged
        ``num_tokens`` (kept in ``extra``); with LoRA the 6·N·D rule is kept by convention, though
        the backward pass skips the frozen weights' gradients. No inference passes:
        ``inference_tokens`` = 0.
    """
    if not isinstance(config, SFTConfig):
        raise TypeError(f"config must be an SFTConfig, got {type(config).__name__}")
    texts = string_columns(demos, ("prompt", "completion"), "demos", "data.sft_demos")
    check_vocabulary(tokenizer, [p + c for p, c in zip(*texts)], "demos")
    policy, tokenizer = prepare(model, tokenizer)
    data = datasets.Dataset.from_dict({"prompt": texts[0], "completion": texts[1]})
    with (session(progress, config.threads), stopwatch() as elapsed,
          tempfile.TemporaryDirectory(prefix="dint-sft-") as out):
        args = trainer_args(trl.SFTConfig, config, out, seed=seed, progress=progress,
                            completion_only_loss=config.completion_only_loss)
        trainer = trl.SFTTrainer(model=policy, args=args, train_dataset=data, processing_class=tokenizer,
                                 peft_config=copy.deepcopy(config.peft))
        quiet(trainer)
        trainer.train()
        # every prepared sequence (already cut to max_length) is one forward pass per epoch
        tokens = config.epochs * sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        policy, summary = finish(trainer)
    method = "sft" if config.peft is None else "sft-lora"
    record = InterventionRecord(
        method=method, config=record_config(config), seed=seed, steps=summary["steps"], tokens=tokens,
        train_flops=train_flops(policy, tokens), inference_tokens=0, inference_flops=inference_flops(policy, 0),
        wall_time=elapsed(), n_params=n_params(policy), trainable_params=summary["trainable_params"],
        loss_first=summary["losses"][0], loss_last=summary["losses"][-1],
        extra={"losses": summary["losses"], "num_tokens_logged": summary["num_tokens_logged"]})
    return policy, record
