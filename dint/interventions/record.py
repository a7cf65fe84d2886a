"""What an intervention did and what it cost: the record every intervention returns."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from ..models import n_params


@dataclass(frozen=True)
class InterventionRecord:
    """One intervention run.

    Attributes
    ----------
    method : str, e.g. "sft", "sft-lora", "dpo", "reward", "rl", "rag", "best-of-n"
    config : dict, the method's config dataclass as a dict
    seed : int
    steps : int, optimiser steps (0 for methods that do not train)
    tokens : int, non-padding tokens processed by training forward passes (with repetition)
    train_flops : float, 6 * N * tokens (N: non-embedding parameters of the trained model)
    inference_tokens : int, tokens processed by forward passes that only score or generate
    inference_flops : float, 2 * N * inference_tokens
    wall_time : float, seconds
    n_params : int, non-embedding parameters N
    trainable_params : int, parameters the optimiser updated (all, or LoRA's adapters)
    loss_first, loss_last : float, mean training loss over the first and last logged steps (nan
        when the method does not train)
    extra : dict, method-specific numbers (e.g. the RL trainer's logged proxy/gold reward and KL)
    """

    method: str
    config: dict
    seed: int
    steps: int
    tokens: int
    train_flops: float
    inference_tokens: int
    inference_flops: float
    wall_time: float
    n_params: int
    trainable_params: int
    loss_first: float = float("nan")
    loss_last: float = float("nan")
    extra: dict = field(default_factory=dict)

    def asdict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.asdict(), indent=1, default=float))
        return path

    @classmethod
    def load(cls, path: str | Path) -> InterventionRecord:
        return cls(**json.loads(Path(path).read_text()))


def train_flops(model, tokens: int) -> float:
    """The 6·N·D rule: forward and backward passes over ``tokens`` tokens (N without embeddings)."""
    return 6.0 * n_params(model) * tokens


def inference_flops(model, tokens: int) -> float:
    """The 2·N·D rule: forward passes only."""
    return 2.0 * n_params(model) * tokens


def config_dict(config) -> dict:
    """A config dataclass as a JSON-able dict (nested dataclasses and PEFT configs flattened)."""
    out = {}
    for k, v in (asdict(config) if is_dataclass(config) else dict(config)).items():
        if hasattr(v, "to_dict"):
            v = v.to_dict()
        if isinstance(v, dict):
            v = {kk: sorted(vv) if isinstance(vv, (set, frozenset)) else vv for kk, vv in v.items()}
        if isinstance(v, (set, frozenset)):
            v = sorted(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return json.loads(json.dumps(out, default=str))


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` is the elapsed wall time in seconds."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()
