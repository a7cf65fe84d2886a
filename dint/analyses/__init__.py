"""The analyses behind the claim notebooks: what each notebook calls.

`reference` (00: the base model against its corpus), `experiments` (the interventions' shared
experiments: RL sweep, best-of-n, baselines), `selection` and `reasoning` (02: engineering clues),
`composition` (03: error composition), `reliability` and `diversity` (04: trust), `stacks` (05: stacked
interventions), `resources` (06: compute). Submodules load on first use.
"""
from ..lazy import submodules

__getattr__, __dir__ = submodules(__name__, ("composition", "diversity", "experiments", "reasoning", "reference",
                                             "reliability", "resources", "selection", "stacks", "validity"), globals())
