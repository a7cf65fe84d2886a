"""Direct preference optimisation: TRL's `DPOTrainer` on labelled answer pairs, full or LoRA.

DPO moves probability mass from the rejected towards the chosen answers relative to a frozen
reference (the input model), with a KL-like pull of strength ``beta`` back towards it. Whatever
the labelers preferred — the truth, a misconception, a stylistic marker — is what gains mass.

Both answers of a pair end with the same stop (the tokenizer's EOS, as SFT's demonstrations do), and
what the two answers share — the answer format, the stop — the preference loss does not teach: it
moves only their difference. Started from a base that has never seen the QA format, DPO alone goes on
past the answer. A small negative log-likelihood of the chosen answer and its EOS beside the
preference loss (``sft_weight``; TRL's ``"sft"`` loss, the NLL term of RPO, Pang et al. 2024,
arXiv:2404.19733) teaches the format and the stop; the DPO paper (Rafailov et al. 2023, §4) fits its
reference to the preferred answers for the same reason when no SFT model exists.
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

LOSS_TYPES = ("sigmoid", "ipo", "hinge")  # DPO, IPO, SLiC: TRL's losses on one preference pair


@dataclass(frozen=True)
class DPOConfig:
    """Direct preference optimisation on labelled pairs."""

    beta: float = 0.1                    # strength of the pull towards the reference model
    loss_type: str = "sigmoid"           # TRL loss, one of LOSS_TYPES ("sigmoid": the DPO paper's)
    sft_weight: float = 0.1              # weight of TRL's "sft" loss (NLL of the chosen answer and its eos) beside it
    epochs: int = 3                      # passes over the pairs
    lr: float = 1e-3                     # peak AdamW learning rate
    batch_size: int = 16                 # pairs per optimiser step
    max_length: int = 48                 # tokens of prompt + answer + eos kept per sequence (TRL cuts the rest)
    warmup: float = 0.0                  # share of steps spent warming up linearly
    scheduler: str = "linear"            # learning-rate decay after warm-up, one of trainer.SCHEDULERS
    weight_decay: float = 0.0            # AdamW decoupled weight decay
    log_every: int = 0                   # optimiser steps per logged loss (0: one log per epoch)
    threads: int = 0                     # torch threads while training (0: leave torch's default)
    peft: peft.LoraConfig | None = None  # LoRA adapters (merged after training); None: full fine-tuning

    def __post_init__(self):
        check_common(self)
        if not self.beta > 0:
            raise ValueError(f"DPOConfig.beta={self.beta!r}: must be positive")
        if not self.sft_weight >= 0:
            raise ValueError(f"DPOConfig.sft_weight={self.sft_weight!r}: must be 0 (the preference loss alone) or "
                             "positive")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"DPOConfig.loss_type={self.loss_type!r}: choose one of {LOSS_TYPES}")


def run(model, tokenizer, pairs: pd.DataFrame, config: DPOConfig = DPOConfig(), *, seed: int = 0,
        progress: bool = False):
    """Train a copy of ``model`` on preference pairs with TRL's `DPOTrainer`.

    The reference policy is the input model: a frozen copy for full fine-tuning, and for LoRA the
    adapter-disabled base model (TRL's way, no second copy). TRL appends the tokenizer's EOS to
    both answers; the loss is the preference loss plus ``config.sft_weight`` times the mean NLL of
    the chosen answers' tokens and EOS. ``model`` and ``tokenizer`` are not modified; the caller's random state is left
    as it was; the same seed gives identical weights.

    Parameters
    ----------
    model : a `transformers` causal LM
    tokenizer : its tokenizer (with pad and eos tokens)
    pairs : DataFrame with ``prompt``, ``chosen`` and ``rejected`` (e.g. `data.preference_pairs`);
        other columns are ignored.
    config : DPOConfig
    seed : int
    progress : show TRL's progress bar

    Returns
    -------
    model : the trained causal LM (LoRA merged into the weights) in eval mode
    record : InterventionRecord, method "dpo" or "dpo-lora". ``tokens`` counts the non-padding
        tokens of prompt + chosen + eos and prompt + rejected + eos of every pair in every epoch:
        the policy's forward and backward passes, ``train_flops`` = 6·N·tokens (it equals TRL's
        logged ``num_tokens``, kept in ``extra``). The reference model runs a forward pass over the
        same sequences in every step, so ``inference_tokens`` = ``tokens`` and
        ``inference_flops`` = 2·N·tokens. With LoRA the 6·N·D rule is kept by convention, though
        the backward pass skips the frozen weights' gradients. ``extra`` also keeps the last logged
        reward accuracy and margin (β-scaled log-ratios of chosen over rejected, policy against
        reference, mean over the last logging interval).
    """
    if not isinstance(config, DPOConfig):
        raise TypeError(f"config must be a DPOConfig, got {type(config).__name__}")
    prompts, chosen, rejected = string_columns(pairs, ("prompt", "chosen", "rejected"), "pairs",
                                               "data.preference_pairs")
    check_vocabulary(tokenizer, [p + a for p, a in zip(prompts + prompts, chosen + rejected)], "pairs")
    policy, tokenizer = prepare(model, tokenizer)
    # full fine-tuning needs its own frozen reference; with LoRA, TRL disables the adapters instead
    reference = copy.deepcopy(policy).eval().requires_grad_(False) if config.peft is None else None
    data = datasets.Dataset.from_dict({"prompt": prompts, "chosen": chosen, "rejected": rejected})
    with (session(progress, config.threads), stopwatch() as elapsed,
          tempfile.TemporaryDirectory(prefix="dint-dpo-") as out):
        losses = {config.loss_type: 1.0, **({"sft": config.sft_weight} if config.sft_weight else {})}
        args = trainer_args(trl.DPOConfig, config, out, seed=seed, progress=progress, beta=config.beta,
                            loss_type=list(losses), loss_weights=list(losses.values()))
        trainer = trl.DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=data,
                                 processing_class=tokenizer, peft_config=copy.deepcopy(config.peft))
        quiet(trainer)
        trainer.train()
        tokens = config.epochs * _pair_tokens(trainer.train_dataset, config.max_length)
        policy, summary = finish(trainer)
    last = summary["last_log"]
    record = InterventionRecord(
        method="dpo" if config.peft is None else "dpo-lora", config=record_config(config), seed=seed,
        steps=summary["steps"], tokens=tokens, train_flops=train_flops(policy, tokens), inference_tokens=tokens,
        inference_flops=inference_flops(policy, tokens), wall_time=elapsed(), n_params=n_params(policy),
        trainable_params=summary["trainable_params"], loss_first=summary["losses"][0],
        loss_last=summary["losses"][-1],
        extra={"losses": summary["losses"], "num_tokens_logged": summary["num_tokens_logged"],
               "reward_accuracy": float(last.get("rewards/accuracies", float("nan"))),
               "reward_margin": float(last.get("rewards/margins", float("nan")))})
    return policy, record


def _pair_tokens(prepared, max_length: int) -> int:
    """Tokens of both sequences of every prepared pair, each cut to ``max_length`` as TRL's
    collator cuts them."""
    total = 0
    for p, c, r in zip(prepared["prompt_ids"], prepared["chosen_ids"], prepared["rejected_ids"]):
        total += min(len(p) + len(c), max_length) + min(len(p) + len(r), max_length)
    return total
