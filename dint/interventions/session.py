"""A TRL training run that leaves the process as it found it, and prints nothing."""
from __future__ import annotations

import gc
import logging
import random
import warnings
from contextlib import contextmanager

import numpy as np


@contextmanager
def session(progress: bool = False, threads: int = 0):
    """Run a training block (TRL / `transformers.Trainer`) and restore the process afterwards.

    Restores the caller's Python, NumPy and torch random states (`Trainer` seeds them globally)
    and torch's thread count (``threads``: the count inside the block, 0 leaves it as is); keeps
    `datasets` progress bars off unless ``progress``; lowers the transformers / TRL / accelerate
    loggers to errors and silences the deprecation warnings that TRL 1.16 and PEFT trigger inside
    transformers 5 (version skew, not ours to act on).
    """
    import datasets
    import torch

    _freeze_once()
    py, np_state, n_threads = random.getstate(), np.random.get_state(), torch.get_num_threads()
    bars = datasets.utils.is_progress_bar_enabled()
    loggers = [logging.getLogger(n) for n in ("transformers", "trl", "accelerate")]
    levels = [lg.level for lg in loggers]
    if not progress:
        datasets.utils.disable_progress_bars()
    if threads:
        torch.set_num_threads(threads)
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6.*",
                                    category=FutureWarning)
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_num_threads(n_threads)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars:
            datasets.utils.enable_progress_bars()


_FROZEN = [False]


def _freeze_once() -> None:
    """Move what is alive at the first training of the process (the imported libraries, the world, the base
    model) out of the garbage collector's sight (`gc.freeze`), once: `transformers.Trainer` runs a full collection
    at the start of every training (accelerate's ``free_memory``), which otherwise walks all of it every time."""
    if not _FROZEN[0]:
        gc.collect()
        gc.freeze()
        _FROZEN[0] = True


def quiet(trainer) -> None:
    """No stdout: with the progress bar off, `Trainer` prints every log line instead."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
