"""The proxy reward model, trained on labelers' preferences, and the world's gold reward.

A proxy reward model is a sequence classifier with one output (the reward), initialised from the
base model's transformer and trained with TRL's `RewardTrainer` on preference pairs by the
Bradley--Terry loss ``-log sigmoid(r(chosen) - r(rejected))``. It learns what the simulated labelers
prefer — their misconceptions and their taste for a stylistic marker included — not the truth.
The gold reward is the truth itself: 1 when a completion's answer is the fact's true value.

Text convention (shared by training and scoring): a sequence is ``prompt + completion`` followed by
the tokenizer's eos token, as TRL's `RewardTrainer` builds it; the reward is the head's output at
that final eos token. Completions start with a space (``" red"``); one that does not is joined to
its prompt with a single space, because word-level decoders drop the leading space.
"""
from __future__ import annotations

import copy
import math
import os
import re
import string
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from ..lazy import LazyModule, no_grad
from ..models import n_params
from .record import InterventionRecord, config_dict, stopwatch, train_flops
from .session import quiet, session
from ..stats.checks import check_int

torch = LazyModule("torch")                # imported on first use (dint.lazy)
transformers = LazyModule("transformers")

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class RewardConfig:
    """How the proxy reward model is trained."""

    epochs: int = 3                 # passes over the preference pairs
    lr: float = 1e-3                # peak AdamW learning rate (linear decay to 0)
    batch_size: int = 16            # pairs per optimiser step
    warmup: float = 0.0             # share of steps spent warming up
    weight_decay: float = 0.0       # AdamW decoupled weight decay
    max_grad_norm: float = 1.0      # gradient clipping
    center_rewards: float = 0.0     # TRL's center_rewards_coefficient: pulls rewards to mean 0 (0: off)
    score_batch_size: int = 512     # sequences per forward pass when scoring
    threads: int = 0                # torch threads while training (0: leave torch's default)

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"RewardConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("epochs", "batch_size", "score_batch_size"):
            v = getattr(self, name)
            check_int(f"{type(self).__name__}.{name}", v, 1)
        check_int(f"{type(self).__name__}.threads", self.threads, 0)   # 0: torch's default
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "must be a positive number, e.g. 1e-3")
        if not 0.0 <= self.warmup < 1.0:
            bad("warmup", "must lie in [0, 1)")
        for name in ("weight_decay", "max_grad_norm", "center_rewards"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                bad(name, "must be a finite number >= 0")


class RewardModel:
    """A scalar reward r(prompt, completion): a one-output sequence classifier and its tokenizer.

    Parameters
    ----------
    model : a `transformers` sequence-classification model with ``num_labels == 1`` and
        ``config.pad_token_id`` set (the reward is read at the last non-pad token).
    tokenizer : its tokenizer (with pad and eos tokens).
    batch_size : sequences per forward pass in `score`.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 64):
        if getattr(model.config, "num_labels", None) != 1:
            raise ValueError("model must have num_labels=1 (one scalar reward per sequence)")
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("tokenizer needs a pad token and an eos token")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be >= 1")
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, int(batch_size)

    @property
    def n_params(self) -> int:
        """Non-embedding parameters (the N of the 2·N·D inference FLOPs)."""
        return n_params(self.model)

    @property
    def max_length(self) -> int | None:
        return getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", None)

    def encode(self, prompts, completions) -> list[list[int]]:
        """Token ids of ``prompt + completion + eos`` for each pair (the text convention above)."""
        prompts, completions = list(prompts), list(completions)
        if len(prompts) != len(completions):
            raise ValueError(f"prompts has {len(prompts)} items but completions has {len(completions)}")
        texts = [_join(p, c) for p, c in zip(prompts, completions)]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        eos = self.tokenizer.eos_token_id
        return [list(x) + [eos] for x in ids]

    @no_grad
    def score_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Rewards of already encoded sequences, (n,) float64; batched by length, no gradients."""
        out = np.zeros(len(ids))
        if not ids:
            return out
        longest, limit = max(map(len, ids)), self.max_length
        if limit is not None and longest > limit:
            raise ValueError(f"a sequence has {longest} tokens > the reward model's limit of {limit}; "
                             "shorten the prompts/completions")
        pad = self.tokenizer.pad_token_id
        order = np.argsort([len(x) for x in ids], kind="stable")
        was_training = self.model.training
        self.model.eval()
        device = self.model.device
        try:
            for start in range(0, len(ids), self.batch_size):
                rows = order[start:start + self.batch_size]
                width = max(len(ids[i]) for i in rows)
                x = torch.full((len(rows), width), pad, dtype=torch.long)  # (B, T), right padded
                mask = torch.zeros_like(x)
                for b, i in enumerate(rows):
                    x[b, :len(ids[i])] = torch.tensor(ids[i])
                    mask[b, :len(ids[i])] = 1
                logits = self.model(input_ids=x.to(device), attention_mask=mask.to(device)).logits  # (B, 1)
                out[rows] = logits[:, 0].double().cpu().numpy()
        finally:
            self.model.train(was_training)
        return out

    def score(self, prompts, completions) -> np.ndarray:
        """Reward of each (prompt, completion) pair, (n,) float64."""
        return self.score_ids(self.encode(prompts, completions))

    def save(self, directory: str | Path) -> Path:
        """Write model (safetensors) and tokenizer to ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(d, safe_serialization=True)
        self.tokenizer.save_pretrained(d)
        return d

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "cpu", batch_size: int = 64) -> RewardModel:
        """Read a reward model written by `save` (safetensors only, no remote code)."""
        d = Path(directory)
        if not (d / "config.json").exists():
            raise ValueError(f"directory={str(d)!r} has no config.json: pass a folder written by RewardModel.save")
        tok = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            d, local_files_only=True, use_safetensors=True, trust_remote_code=False)
        return cls(model.to(device), tok, batch_size=batch_size)


def _join(prompt: str, completion: str) -> str:
    if completion and not completion[0].isspace() and prompt and not prompt[-1].isspace():
        return prompt + " " + completion
    return prompt + completion


def reward_head(base_model, tokenizer, *, seed: int = 0):
    """A one-output sequence classifier whose transformer is a copy of ``base_model``'s.

    The score head is drawn from ``seed``; ``config.pad_token_id`` is the tokenizer's pad id.
    """
    cfg = base_model.config.__class__.from_dict(base_model.config.to_dict())
    cfg.num_labels, cfg.pad_token_id = 1, tokenizer.pad_token_id
    cfg.architectures = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForSequenceClassification.from_config(cfg)
    body = getattr(model, model.base_model_prefix)
    missing, unexpected = body.load_state_dict(getattr(base_model, base_model.base_model_prefix).state_dict(),
                                               strict=False)
    if unexpected or any("attn.bias" not in k for k in missing):  # GPT-2's causal buffers may be absent
        raise ValueError(f"base_model's transformer does not fit the classifier: missing {missing}, "
                         f"unexpected {unexpected}")
    return model.to(base_model.device).eval()


def _check_pairs(pairs) -> pd.DataFrame:
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"pairs must be a DataFrame with columns {PAIR_COLUMNS}, got {type(pairs).__name__}")
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs lacks columns {missing}; need {PAIR_COLUMNS} (TRL's preference format)")
    if len(pairs) == 0:
        raise ValueError("pairs is empty: pass at least one preference pair")
    for c in PAIR_COLUMNS:
        if not all(isinstance(x, str) and x for x in pairs[c]):
            raise ValueError(f"pairs[{c!r}] must hold non-empty strings")
    return pairs


def checkpointing_off() -> dict:
    """Trainer kwargs that turn activation checkpointing off (TRL turns it on by default)."""
    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}
    # transformers renamed gradient_checkpointing (now a deprecated alias that warns)
    return {"activation_checkpointing": False} if "activation_checkpointing" in names else {
        "gradient_checkpointing": False}


def train(base_model, tokenizer, pairs: pd.DataFrame, config: RewardConfig = RewardConfig(), *,
          seed: int = 0, progress: bool = False) -> tuple[RewardModel, InterventionRecord]:
    """Train a proxy reward model on preference pairs with TRL's `RewardTrainer`.

    Parameters
    ----------
    base_model : `transformers` causal LM whose transformer initialises the reward model; not
        modified.
    tokenizer : its tokenizer (pad and eos tokens set).
    pairs : DataFrame with ``prompt``, ``chosen``, ``rejected`` (completions with a leading space);
        other columns are ignored.
    config : RewardConfig
    seed : the score head's initialisation and the data order; global random state is restored.
    progress : show TRL's tqdm bar.

    Returns
    -------
    reward_model : RewardModel in eval mode
    record : InterventionRecord, method ``"reward"``; ``tokens`` counts chosen and rejected
        sequences (with eos) over all epochs, ``train_flops`` = 6·N·tokens with N the reward
        model's non-embedding parameters; ``extra["accuracy"]`` is the share of training pairs
        ranked correctly after training, ``extra["margin"]`` the mean r(chosen) − r(rejected)
        (measurement passes, not counted in the FLOPs).
    """
    if not isinstance(config, RewardConfig):
        raise TypeError(f"config must be a RewardConfig, got {type(config).__name__}")
    pairs = _check_pairs(pairs)
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("tokenizer needs a pad token and an eos token")

    with session(progress, config.threads), stopwatch() as elapsed:
        # imported here: importing trl draws from the global random state
        from datasets import Dataset
        from trl import RewardConfig as TRLRewardConfig
        from trl import RewardTrainer

        rm = RewardModel(reward_head(base_model, tokenizer, seed=seed), tokenizer,
                         batch_size=config.score_batch_size)
        chosen = rm.encode(pairs["prompt"], pairs["chosen"])
        rejected = rm.encode(pairs["prompt"], pairs["rejected"])
        limit = rm.max_length
        if limit is not None and max(map(len, chosen + rejected)) > limit:
            raise ValueError(f"pairs: a prompt + completion is longer than the model's {limit} positions")
        # Pre-tokenised, so that training sees exactly the ids that RewardModel.score feeds.
        data = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
        with tempfile.TemporaryDirectory(prefix="dint-reward-") as tmp:
            args = TRLRewardConfig(
                output_dir=tmp, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
                learning_rate=config.lr, lr_scheduler_type="linear", warmup_steps=float(config.warmup),
                weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
                center_rewards_coefficient=config.center_rewards or None, max_length=None,
                bf16=False, fp16=False, logging_steps=1, save_strategy="no", **checkpointing_off(),
                report_to="none", disable_tqdm=not progress, seed=seed, data_seed=seed,
                dataloader_num_workers=0, use_cpu=base_model.device.type == "cpu")
            trainer = RewardTrainer(model=rm.model, args=args, train_dataset=data,
                                    processing_class=copy.deepcopy(tokenizer))  # TRL sets its pad token
            quiet(trainer)
            trainer.train()
            log = [e for e in trainer.state.log_history if "loss" in e]
            steps = trainer.state.global_step
        rm.model.eval()
        wall = elapsed()

    r_chosen, r_rejected = rm.score_ids(chosen), rm.score_ids(rejected)
    per_epoch = math.ceil(len(pairs) / config.batch_size)
    losses = [float(e["loss"]) for e in log]
    tokens = config.epochs * sum(len(x) for x in chosen + rejected)
    record = InterventionRecord(
        method="reward", config=config_dict(config), seed=seed, steps=steps, tokens=tokens,
        train_flops=train_flops(rm.model, tokens), inference_tokens=0, inference_flops=0.0, wall_time=wall,
        n_params=rm.n_params, trainable_params=sum(p.numel() for p in rm.model.parameters() if p.requires_grad),
        loss_first=float(np.mean(losses[:per_epoch])) if losses else float("nan"),
        loss_last=float(np.mean(losses[-per_epoch:])) if losses else float("nan"),
        extra={"accuracy": float(np.mean(r_chosen > r_rejected)),
               "margin": float(np.mean(r_chosen - r_rejected)), "n_pairs": len(pairs),
               "trainer": "trl.RewardTrainer"})
    return rm, record


# -- the world's truth ------------------------------------------------------------------------------

_SPECIAL = re.compile(r"<[^<>\s]+>")  # <eos>, <pad>, <unk>, <|endoftext|>, ...


def gold_reward(world, facts, completions) -> np.ndarray:
    """The world's truth as a reward: 1.0 when a completion answers its fact's true value, else 0.0.

    Parameters
    ----------
    world : World
    facts : sequence of n fact ids (``world.facts["fact"]``), one per completion.
    completions : sequence of n strings.

    Returns
    -------
    (n,) float64 array of 0.0 and 1.0.

    Notes
    -----
    A completion's answer is the first value of the fact's relation (its candidate set,
    ``world.values``) that it mentions, read left to right over words; at a position where several
    values match, the longest (in words) wins. Before matching, special tokens such as ``<eos>`` are
    removed, text is lower-cased and split on whitespace, and punctuation at word edges is dropped.
    Words that are not part of a value — stylistic markers, filler, a trailing ``.`` — are
    skipped, so the marker a labeler likes neither earns nor costs gold reward. A completion that
    mentions no value scores 0.
    """
    facts, completions = list(facts), list(completions)
    if len(facts) != len(completions):
        raise ValueError(f"facts has {len(facts)} items but completions has {len(completions)}")
    index, truth = _truth(world)
    unknown = sorted(set(facts) - set(truth))
    if unknown:
        raise ValueError(f"facts {unknown[:5]} are not fact ids of this world (see world.facts['fact'])")
    out = np.zeros(len(facts))
    for i, (f, text) in enumerate(zip(facts, completions)):
        rel, value = truth[f]
        out[i] = float(_first_value(_words(text), index[rel]) == value)
    return out


# (world, its value index, its facts' truth) of the last few worlds: RL calls `gold_reward` at every step
_TRUTH: OrderedDict = OrderedDict()
_TRUTH_SIZE = 4


def _truth(world) -> tuple[dict, dict]:
    """The world's values indexed for matching (relation -> first word -> [(value words, value)], longest
    first) and its facts' truth (fact -> (relation, value)), memoised on the world object (held, so that its id
    is not reused while memoised)."""
    key = id(world)
    if key in _TRUTH and _TRUTH[key][0] is world:
        _TRUTH.move_to_end(key)
        return _TRUTH[key][1:]
    index = {}
    for rel, values in world.values.items():
        by_first: dict[str, list] = {}
        for v in values:
            w = tuple(_words(v))            # the same normalisation as the completions' words
            by_first.setdefault(w[0], []).append((w, v))
        for lst in by_first.values():
            lst.sort(key=lambda x: -len(x[0]))
        index[rel] = by_first
    f = world.facts
    truth = dict(zip(f["fact"].tolist(), zip(f["relation"].tolist(), f["value"].tolist())))
    _TRUTH[key] = (world, index, truth)
    while len(_TRUTH) > _TRUTH_SIZE:
        _TRUTH.popitem(last=False)
    return index, truth


def _words(text: str) -> list[str]:
    words = (w.strip(string.punctuation) for w in _SPECIAL.sub(" ", str(text)).lower().split())
    return [w for w in words if w]


def _first_value(words: list[str], by_first: dict) -> str | None:
    for j, w in enumerate(words):
        for value_words, value in by_first.get(w, ()):
            if tuple(words[j:j + len(value_words)]) == value_words:
                return value
    return None
