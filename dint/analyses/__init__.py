"""The analyses behind the claim notebooks: one module per notebook, which the notebook calls, and the
analyses they share.

One module per notebook, named after it: `base_model` (00), `mechanism` (01), `engineering_clues` (02),
`diagnosability` (03), `trust_reliability` (04), `compound_failure` (05), `resources` (06) and
`verification` (07). What they build on: `reference` (the base model against its corpus), `experiments`
(the RL sweep and best-of-n against the proxy reward, cached), `selection` and `reasoning` (best-of-n
selection and two-hop chains), `composition` (error classes and pass@k), `reliability` and `diversity`
(calibration and diversity measures), `temperature_sweep` (the temperature along the RL β sweep),
`overoptimisation` (proxies that start aligned), `lora_sweep` (LoRA against full SFT over learning rates,
cached), `stacks` (stacked interventions, cached), `flops` and `sft_grid` (compute against accuracy, the SFT
budget grid, cached), `parity` and `answer_risk` (verification with only what training sees, at equal FLOPs;
conformal risk per returned answer), `installation` and `budgets` (notebook 08: does post-training install a
fact), `replication` (the replicated runs) and `validity` (the simulation study of every test, on the data of
`simulations`). Submodules load on first use.
"""
from ..lazy import submodules

NOTEBOOK_MODULES = ("base_model", "mechanism", "engineering_clues", "diagnosability", "trust_reliability",
                    "compound_failure", "resources", "verification")
__getattr__, __dir__ = submodules(__name__, (*NOTEBOOK_MODULES, "answer_risk", "budgets", "composition", "diversity",
                                             "experiments", "flops", "installation", "lora_sweep", "overoptimisation",
                                             "parity", "reasoning", "reference", "reliability", "replication",
                                             "selection", "sft_grid", "simulations", "stacks", "temperature_sweep",
                                             "validity"),
                                  globals())
