"""TRL plumbing shared by SFT and DPO: LoRA configs, the checks of their common fields, trainer arguments
for a local deterministic run, and the trained model back as a plain causal LM with a summary of the run."""
from __future__ import annotations

import copy
import inspect

import pandas as pd

from ..lazy import LazyModule
from .record import config_dict
from ..stats.checks import check_int

# imported on first use (dint.lazy): a profile's configs are checked without them
peft = LazyModule("peft")

__all__ = ["GPT2_LORA_TARGETS", "SCHEDULERS", "check_common", "check_lora", "check_vocabulary", "finish", "gpt2_lora",
           "prepare", "record_config", "string_columns", "trainer_args"]

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

    check_int("LoRA r (the adapters' rank)", a["r"], 1)
    if isinstance(a["alpha"], bool) or not isinstance(a["alpha"], (int, float)) or not a["alpha"] > 0:
        bad("alpha", "must be a positive number (the adapters' scale is alpha / r)")
    if isinstance(a["dropout"], bool) or not isinstance(a["dropout"], (int, float)) or not 0 <= a["dropout"] < 1:
        bad("dropout", "must lie in [0, 1)")
    t = a["target_modules"]
    if isinstance(t, str) or not isinstance(t, (list, tuple)) or not t or not all(isinstance(x, str) and x for x in t):
        bad("target_modules", "name the modules to adapt, e.g. ['c_attn', 'c_proj'] (GPT-2) or ['q_proj', 'v_proj']")
    if type(a["fan_in_fan_out"]) is not bool:
        bad("fan_in_fan_out", "must be True (GPT-2's Conv1D layers) or False (nn.Linear layers)")


def check_common(config) -> None:
    """Validate the fields that SFT and DPO configs share; ``ValueError`` names the field."""
    name = type(config).__name__

    def bad(field, why):
        raise ValueError(f"{name}.{field}={getattr(config, field)!r}: {why}")

    for field, least in (("epochs", 1), ("batch_size", 1), ("log_every", 0), ("threads", 0)):
        check_int(f"{name}.{field}", getattr(config, field), least)   # log_every 0: once per epoch; threads 0: torch's
    check_int(f"{name}.max_length", config.max_length, 0)
    if config.max_length < 2:
        bad("max_length", "must be >= 2 (a prompt token and an answer token)")
    if not config.lr > 0:
        bad("lr", "must be positive")
    if not 0.0 <= config.warmup < 1.0:
        bad("warmup", "must lie in [0, 1) (a share of the steps)")
    if not config.weight_decay >= 0:
        bad("weight_decay", "must be >= 0")
    if config.scheduler not in SCHEDULERS:
        bad("scheduler", f"choose one of {SCHEDULERS}")
    if config.peft is not None and not isinstance(config.peft, peft.LoraConfig):
        bad("peft", "must be a peft.LoraConfig (e.g. dint.interventions.trainer.gpt2_lora()) or None")


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
