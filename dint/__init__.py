"""dint: post-training as distributional intervention, measured against reference states.

The package is laid out by role, one level deep:

- the toolkit, at the top: what a researcher imports for their own models (`world`, `realworld`, `models`,
  `scoring`, `sampling`, `divergence`, `tokens`, `calibration`, `selective`, `verify`, `taxonomy`, `agreement`,
  `causes`, `compare`, `card`, `lmeval`, `interventions`, `plot`);
- `dint.stats`: the statistics (intervals, resampling, tests, multiple testing, model fits, their validity);
- `dint.analyses`: the analyses behind the claim notebooks;
- `dint.pipeline`: the plumbing that runs them (profiles, paths, cached artifacts, notebooks, numbers,
  macros, the paper, benchmarks); `dint.cli` is the command line on top of it all.

Randomness is named the same way everywhere: ``seed`` is the integer a run's world, stores, training and
other built artifacts are drawn from; ``rng`` (an int seed or a ``numpy.random.Generator``) is the
randomness of a statistic (bootstrap resamples, permutations, random splits). ``n_resamples`` counts
bootstrap resamples, ``n_permutations`` the sign flips or permutations of a test.

Imports go down that list's reverse: the statistics import nothing else of dint, the toolkit imports the
statistics, the pipeline the toolkit, the analyses all three. Submodules load on first use
(``dint.stats``, ``dint.pipeline.config``, ...), so that ``import dint`` is quick and torch is imported
only by the modules that run a model.
"""
from .lazy import submodules

__version__ = "0.1.0"

TOOLKIT = ("agreement", "answers", "cache", "calibration", "card", "causes", "compare", "console", "countries",
           "divergence", "interventions", "lazy", "lmeval", "models", "plot", "realworld", "sampling", "scoring",
           "selective", "taxonomy", "tokens", "verify", "world")
__getattr__, __dir__ = submodules(__name__, (*TOOLKIT, "analyses", "cli", "pipeline", "stats"), globals())
