"""Supervised fine-tuning: TRL's `SFTTrainer` on prompt-completion demonstrations, full or LoRA.

SFT shifts the answer distribution towards the demonstrated completions under the demonstrated
prompt format; `run` returns the shifted model and what the shift cost. With LoRA the adapters
are merged into the weights afterwards, so that every scorer sees a plain causal LM.

The helpers below `run` (`gpt2_lora`, `prepare`, `trainer_args`, `finish`) are the
plumbing that `dint.interventions.dpo` shares.
"""
from __future__ import annotations

import copy
import inspect
import os
import tempfile
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

from ..lazy import LazyModule
from ..models import n_params
from .record import InterventionRecord, config_dict, inference_flops, stopwatch, train_flops
from .session import quiet, session

# imported on first use (dint.lazy): a profile's configs are checked without them
datasets = LazyModule("datasets")
peft = LazyModule("peft")
trl = LazyModule("trl")

GPT2_LORA_TARGETS = ("c_attn", "c_proj", "c_fc")   # GPT-2's attention and MLP projections (Conv1D)
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


def gpt2_lora(*, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
              target_modules: tuple[str, ...] = GPT2_LORA_TARGETS, fan_in_fan_out: bool = True) -> peft.LoraConfig:
    """A LoRA config, by default for GPT-2: its projections are ``Conv1D`` layers, whose weights are
    stored transposed (``fan_in_fan_out=True``). For models built of ``nn.Linear`` layers (Gemma,
    Llama: ``q_proj``, ``v_proj``, ...) name their modules and set ``fan_in_fan_out=False``."""
    check_lora(r=r, alpha=alpha, dropout=dropout, target_modules=target_modules, fan_in_fan_out=fan_in_fan_out)
    return peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                           fan_in_fan_out=fan_in_fan_out, bias="none", task_type="CAUSAL_LM")


def check_lora(**kwargs) -> None:
    """Validate `gpt2_lora`'s arguments without importing PEFT; ``ValueError`` names the argument."""
    try:
        bound = inspect.signature(gpt2_lora).bind(**kwargs)
    except TypeError as e:
        raise ValueError(f"LoRA arguments {sorted(kwargs)}: {e}; valid: {list(inspect.signature(gpt2_lora).parameters)}")
    bound.apply_defaults()
    a = bound.arguments

    def bad(name, why):
        raise ValueError(f"LoRA {name}={a[name]!r}: {why}")

    if isinstance(a["r"], bool) or not isinstance(a["r"], (int, np.integer)) or a["r"] < 1:
        bad("r", "the adapters' rank must be an integer >= 1")
    if isinstance(a["alpha"], bool) or not isinstance(a["alpha"], (int, float)) or not a["alpha"] > 0:
        bad("alpha", "must be a positive number (the adapters' scale is alpha / r)")
    if isinstance(a["dropout"], bool) or not isinstance(a["dropout"], (int, float)) or not 0 <= a["dropout"] < 1:
        bad("dropout", "must lie in [0, 1)")
    t = a["target_modules"]
    if isinstance(t, str) or not isinstance(t, (list, tuple)) or not t or not all(isinstance(x, str) and x for x in t):
        bad("target_modules", "name the modules to adapt, e.g. ['c_attn', 'c_proj'] (GPT-2) or ['q_proj', 'v_proj']")
    if type(a["fan_in_fan_out"]) is not bool:
        bad("fan_in_fan_out", "must be True (GPT-2's Conv1D layers) or False (nn.Linear layers)")


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


def check_common(config) -> None:
    """Validate the fields that SFT and DPO configs share; ``ValueError`` names the field."""
    name = type(config).__name__

    def bad(field, why):
        raise ValueError(f"{name}.{field}={getattr(config, field)!r}: {why}")

    for field in ("epochs", "batch_size", "max_length", "log_every", "threads"):
        v = getattr(config, field)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            bad(field, "must be an integer")
    if config.epochs < 1:
        bad("epochs", "must be >= 1")
    if config.batch_size < 1:
        bad("batch_size", "must be >= 1")
    if config.max_length < 2:
        bad("max_length", "must be >= 2 (a prompt token and an answer token)")
    if config.log_every < 0:
        bad("log_every", "must be >= 0 (0: log once per epoch)")
    if config.threads < 0:
        bad("threads", "must be >= 0 (0: torch's default)")
    if not config.lr > 0:
        bad("lr", "must be positive")
    if not 0.0 <= config.warmup < 1.0:
        bad("warmup", "must lie in [0, 1) (a share of the steps)")
    if not config.weight_decay >= 0:
        bad("weight_decay", "must be >= 0")
    if config.scheduler not in SCHEDULERS:
        bad("scheduler", f"choose one of {SCHEDULERS}")
    if config.peft is not None and not isinstance(config.peft, peft.LoraConfig):
        bad("peft", "must be a peft.LoraConfig (e.g. dint.interventions.sft.gpt2_lora()) or None")


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


# -- plumbing shared with dpo -----------------------------------------------------------------

def string_columns(df: pd.DataFrame, names: tuple[str, ...], what: str, source: str) -> list[list[str]]:
    """The named string columns of ``df`` as lists, or a ``ValueError`` that says what to pass."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a DataFrame (see {source}), got {type(df).__name__}")
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}: pass the output of {source}")
    if df.empty:
        raise ValueError(f"{what} is empty: pass at least one row")
    out = []
    for n in names:
        col = df[n].tolist()
        if not all(isinstance(s, str) and s for s in col):
            raise ValueError(f"{what}.{n} must hold non-empty strings")
        out.append(col)
    return out


def check_vocabulary(tokenizer, texts: list[str], what: str) -> None:
    """Fail when a text has a word the tokenizer does not know (it would train on <unk>)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return
    for text, ids in zip(texts, tokenizer(texts, add_special_tokens=False)["input_ids"]):
        if unk in ids:
            raise ValueError(f"{what} has words outside the tokenizer's vocabulary, e.g. in {text!r}; "
                             "build the tokenizer from the world's vocabulary()")


def prepare(model, tokenizer):
    """Private copies of model and tokenizer for a trainer to change (the trainers set pad and eos
    ids on the model's configs, wrap it in adapters and patch its forward)."""
    if isinstance(model, peft.PeftModel):
        raise TypeError("model is a PEFT model: merge its adapters first (merge_and_unload()) and pass "
                        "the plain causal LM")
    policy = copy.deepcopy(model)
    _unpatch(policy)
    return policy, copy.deepcopy(tokenizer)


def _unpatch(model) -> None:
    """Drop an instance-level ``forward`` (TRL's fused LM head patches one in), back to the class's."""
    vars(model).pop("forward", None)


def trainer_args(cls, config, output_dir: str, *, seed: int, progress: bool, **extra):
    """TRL config (`trl.SFTConfig`, `trl.DPOConfig`) for a local, deterministic CPU run: no
    evaluation, no checkpoints, no reporting, fp32, one process."""
    logging_kw = ({"logging_strategy": "epoch"} if config.log_every == 0
                  else {"logging_strategy": "steps", "logging_steps": config.log_every})
    return cls(
        output_dir=output_dir, num_train_epochs=config.epochs, learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size, lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup, weight_decay=config.weight_decay, max_length=config.max_length,
        seed=seed, data_seed=seed, use_cpu=True, bf16=False, fp16=False,
        # TRL defaults to checkpointing, which trades compute for memory: nothing to save here. Set under
        # transformers 5's name, as the old one (TRL's) warns
        activation_checkpointing=False,
        eval_strategy="no", save_strategy="no", report_to=[], disable_tqdm=not progress,
        dataloader_num_workers=0, dataloader_pin_memory=False, **logging_kw, **extra)


def finish(trainer):
    """The trained model as a plain causal LM (LoRA merged, TRL's forward patch removed, eval
    mode) and a summary of the run from the trainer's state."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if isinstance(model, peft.PeftModel):
        model = model.merge_and_unload()
    _unpatch(model)
    for p in model.parameters():  # LoRA froze the base weights; a plain LM trains as a whole again
        p.requires_grad_(True)
    model.eval()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    if not logs:
        raise RuntimeError("the trainer logged no training loss")
    summary = {"steps": int(trainer.state.global_step), "trainable_params": int(trainable),
               "losses": [float(h["loss"]) for h in logs],
               "num_tokens_logged": int(logs[-1].get("num_tokens", -1)), "last_log": logs[-1]}
    return model, summary


def record_config(config) -> dict:
    """``config`` as a JSON-able dict, with the LoRA config reduced to its own fields in a
    stable form (sets as sorted lists)."""
    out = config_dict(config)
    if config.peft is not None:
        out["peft"] = {k: sorted(v) if isinstance(v, (set, frozenset)) else v
                       for k, v in config.peft.to_dict().items()}
        out = config_dict(out)
    return out
