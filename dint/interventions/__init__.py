"""Post-training methods as distributional interventions on one base model.

Each method is a module with a frozen config dataclass and a run function that takes a base
model (a `transformers` causal LM), its data and the config, and returns the new model or policy
with an `InterventionRecord` (config, seed, steps, tokens, training and inference FLOPs, wall time).
"""
from .record import InterventionRecord, inference_flops, train_flops

__all__ = ["InterventionRecord", "inference_flops", "train_flops"]
