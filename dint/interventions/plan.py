"""The interventions a profile applies to its base model, and how each is built from the world.

The profile's ``interventions`` section (`InterventionsConfig`) holds one mapping per method, the
fields of that method's config dataclass; `build` turns a name of `NAMES` into a trained model and
its record. Every intervention starts from the same base model with the same seed and the same
train/held-out split of facts:

``sft``, ``sft_lora``      supervised fine-tuning on true answers to train facts (QA form)
``sft_sham``               the same training on answers shuffled among facts (wrong facts of the world's entities)
``sft_format``             the same training on the same answers asked about entities no text states anything
                           about (the format-only control; a synthetic world with ``control_share`` only)
``dpo``, ``dpo_lora``      DPO on biased labelers' preference pairs over train facts
``reward``                 the proxy reward model trained on those pairs (from the base)
``rlhf``                   SFT, then KL-penalised RL (RLOO) against the proxy reward
``rag``                    retrieval (BM25 over a clean document store) with a reader trained by RAG-SFT

A profile may add methods of its own (``interventions.custom``: a function of the researcher's module,
`dint.interventions.custom`), each trained from the base model by `build` as the built-in ones are; `names`
lists every intervention a profile's plan can build, and `with_custom` adds the profile's own methods to a list.

Beside them, notebook 02's proxies that start aligned: `gold_pairs` (pairs judged by the truth) and
`aligned_proxy` (a reward model trained on them); `rl_against` runs RL against any proxy, prompt by prompt.

Best-of-n is a selection policy, not a trained model: `dint.interventions.bestofn` applies it to
a model's exact answer distributions with the proxy reward's scores of each candidate.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields

from ..stats.checks import check_int

# fields of the section that set experiments' grids, not how any model is trained
EXPERIMENT_FIELDS = ("rl_betas", "bon_n", "sft_epochs", "sft_data", "stack_steps", "aligned")
# the steps that stacks are made of (`dint.analyses.stacks`), in their canonical order
STACK_STEPS = ("sft", "dpo", "rl", "rag")
NAMES = ("sft", "sft_lora", "sft_sham", "sft_format", "dpo", "dpo_lora", "reward", "rlhf", "rag")
# what each intervention is trained from: the base model, or another intervention's model
START = {"sft": "base", "sft_lora": "base", "sft_sham": "base", "sft_format": "base", "dpo": "base",
         "dpo_lora": "base", "reward": "base", "rlhf": "sft", "rag": "base"}
# the interventions only a synthetic world can train (a real world has no entities that no text mentions)
WORLD_ONLY = ("sft_format",)


@dataclass(frozen=True)
class AlignedConfig:
    """The aligned-proxy experiment of notebook 02 (`dint.analyses.experiments.aligned_sweep`; the section's
    ``aligned`` field): proxies trained on gold-labelled pairs of nested shares of the train facts (the profile's
    reward config), and RL from the SFT model against each at the smallest β of the profile's sweep, every
    checkpoint evaluated on the same prompts of train facts."""

    shares: tuple[float, ...] = (0.0625, 0.25, 1.0)   # shares of the train facts whose gold pairs a proxy sees
    names: tuple[str, ...] = ("small", "medium", "large")   # the proxies' names, in the order of shares
    pairs_per_fact: int = 2     # gold-labelled pairs per fact, each against a fresh wrong value
    n_eval: int = 256           # evaluation prompts (QA prompts of train facts; all of them when fewer)
    eval_samples: int = 2       # sampled completions per evaluation prompt (the sequence-level view of rl.run)

    def __post_init__(self):
        for name in ("shares", "names"):   # a profile's YAML gives lists
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if (not self.shares or len(self.names) != len(self.shares) or len(set(self.names)) != len(self.names)
                or any(not 0 < s <= 1 for s in self.shares) or list(self.shares) != sorted(set(self.shares))):
            raise ValueError(f"interventions.aligned: shares={self.shares!r}, names={self.names!r}: give increasing shares "
                             "in (0, 1] and one distinct name each")
        check_int("interventions.aligned.pairs_per_fact", self.pairs_per_fact, 1)
        check_int("interventions.aligned.n_eval", self.n_eval, 4)
        check_int("interventions.aligned.eval_samples", self.eval_samples, 2)


@dataclass(frozen=True)
class InterventionsConfig:
    """Configs of the interventions, one mapping of field -> value per method.

    ``threads`` sets every method's torch threads (one thread is fastest for the small world
    models on a shared CPU); ``lora`` holds `trainer.gpt2_lora`'s arguments for the LoRA variants, and
    ``sft_lora`` / ``dpo_lora`` override fields of ``sft`` / ``dpo`` for them (adapters usually
    take a larger learning rate than full fine-tuning);
    ``rl_betas`` are the KL coefficients of notebook 02's sweep; ``bon_n`` the best-of-n sizes;
    ``sft_epochs`` × ``sft_data`` the grid of `dint.analyses.sft_grid.training_curve` (notebook 06): SFT
    epochs, and shares of the training demonstrations (nested subsets); ``stack_steps`` the steps of
    notebook 05's factorial plan of stacks (`dint.analyses.stacks.plan`: every subset, in the canonical order
    sft, dpo, rl, rag), all four by default; ``custom`` the profile's own methods, name -> ``"module:function"``
    or ``{function: ..., config: {...}}`` (`dint.interventions.custom`), checked here (the function imported, its
    signature and config) and kept in the long form; ``aligned`` the fields of `AlignedConfig`, the aligned-proxy
    experiment's size (its default when empty).
    """

    threads: int = 1
    labeler: dict = field(default_factory=dict)
    sft: dict = field(default_factory=dict)
    lora: dict = field(default_factory=dict)
    sft_lora: dict = field(default_factory=dict)
    dpo_lora: dict = field(default_factory=dict)
    dpo: dict = field(default_factory=dict)
    reward: dict = field(default_factory=dict)
    rl: dict = field(default_factory=dict)
    store: dict = field(default_factory=dict)
    rag: dict = field(default_factory=dict)
    rl_betas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    bon_n: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    sft_epochs: tuple[int, ...] = (1, 2, 3, 6, 12)
    sft_data: tuple[float, ...] = (0.25, 0.5, 1.0)
    stack_steps: tuple[str, ...] = STACK_STEPS
    custom: dict = field(default_factory=dict)
    aligned: dict = field(default_factory=dict)

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("rl_betas", "bon_n", "sft_epochs", "sft_data"):
                if not isinstance(v, (tuple, list)) or not v or any(
                        isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0 for x in v):
                    raise ValueError(f"interventions.{f.name}={v!r}: give a non-empty list of positive numbers")
            elif f.name == "stack_steps":
                if (not isinstance(v, (tuple, list)) or len(v) < 2 or len(set(v)) != len(v)
                        or any(x not in STACK_STEPS for x in v)
                        or list(v) != sorted(v, key=STACK_STEPS.index)):
                    raise ValueError(f"interventions.stack_steps={v!r}: give two or more of {STACK_STEPS}, "
                                     "without repeats, in that order")
            elif f.name == "threads":
                check_int("interventions.threads", v, 0)   # 0: torch's default
            elif f.name == "custom":
                methods = _method("custom").methods(v)
                object.__setattr__(self, "custom", {n: {"function": m.function, "config": m.config}
                                                    for n, m in methods.items()})
            elif not isinstance(v, dict):
                raise ValueError(f"interventions.{f.name} must be a mapping of field -> value, got {v!r}")
        if any(int(n) != n or n < 1 for n in self.bon_n):
            raise ValueError(f"interventions.bon_n={self.bon_n!r}: sizes must be positive integers")
        if any(int(n) != n for n in self.sft_epochs):
            raise ValueError(f"interventions.sft_epochs={self.sft_epochs!r}: epochs must be positive integers")
        if any(x > 1 for x in self.sft_data):
            raise ValueError(f"interventions.sft_data={self.sft_data!r}: shares of the demonstrations lie in (0, 1]")
        # build every method's config now, so that a bad name or value fails before any work; the LoRA
        # variants are checked with `trainer.check_lora` in place of PEFT's config, which their training builds
        try:
            _method("trainer").check_lora(**self.lora)
        except ValueError as e:
            raise ValueError(f"interventions.lora: {e}") from None
        for name in ("labeler", "sft", "sft_lora", "dpo", "dpo_lora", "reward", "rl", "store", "rag", "aligned"):
            self.config(name, **({"peft": None} if name in _LORA else {}))

    def config(self, name: str, **override):
        """The config dataclass of ``name`` (a field of this section), with ``override`` applied; for
        ``sft_lora`` and ``dpo_lora``, the ``sft`` / ``dpo`` config with their overrides and LoRA."""
        cls = config_class(name)
        if name in _LORA:
            values = {**getattr(self, _LORA[name]), **getattr(self, name), **override}
            if "peft" not in override:
                values["peft"] = self.lora_config()
        else:
            values = {**getattr(self, name), **override}
        if "threads" in {f.name for f in fields(cls)}:
            values.setdefault("threads", self.threads)
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"unknown interventions.{name} parameter(s) {unknown}; valid: {sorted(valid)}")
        return cls(**values)

    def lora_config(self):
        return _method("trainer").gpt2_lora(**self.lora)

    @property
    def custom_names(self) -> tuple[str, ...]:
        """The names of the profile's own methods (``custom``), in the profile's order."""
        return tuple(self.custom)

    def method(self, name: str):
        """The `dint.interventions.custom.Method` of the profile's own method ``name``."""
        if name not in self.custom:
            raise ValueError(f"{name!r} is not a method of interventions.custom; the profile's own: {self.custom_names}")
        return _method("custom").Method(name, self.custom[name]["function"], dict(self.custom[name]["config"]))


# the config class of each section field; the method modules (TRL, PEFT, ...) load on first use
_CONFIGS = {"labeler": ("data", "LabelerConfig"), "sft": ("sft", "SFTConfig"), "dpo": ("dpo", "DPOConfig"),
            "sft_lora": ("sft", "SFTConfig"), "dpo_lora": ("dpo", "DPOConfig"),
            "reward": ("reward", "RewardConfig"), "rl": ("rl", "RLConfig"), "store": ("retrieval", "StoreConfig"),
            "rag": ("rag", "RAGSFTConfig"), "aligned": ("plan", "AlignedConfig")}
_LORA = {"sft_lora": "sft", "dpo_lora": "dpo"}   # the LoRA variants and the method whose fields they override
# the fields of the section that hold one method's config, as a mapping of its fields
METHOD_FIELDS = tuple(n for n in _CONFIGS if n != "aligned")
# the fields that hold a config dataclass's fields: each method's, and the aligned-proxy experiment's
CONFIG_FIELDS = tuple(_CONFIGS)


def config_class(name: str) -> type:
    """The config dataclass that method field ``name`` of the section fills (``sft_lora``:
    `sft.SFTConfig`); its module is imported, not TRL, PEFT or torch, which load on first use.

    Parameters
    ----------
    name : one of `CONFIG_FIELDS` (a method's, or ``aligned``)

    Returns
    -------
    the dataclass
    """
    if name not in _CONFIGS:
        raise ValueError(f"{name!r} is not a config field of the interventions section; choose one of {CONFIG_FIELDS}")
    module, cls = _CONFIGS[name]
    return getattr(_method(module), cls)


def _method(name: str):
    return importlib.import_module(f"{__package__}.{name}")


def names(cfg: InterventionsConfig) -> tuple[str, ...]:
    """Every intervention a profile's plan builds: `NAMES`, then the profile's own methods (``cfg.custom``)."""
    return NAMES + cfg.custom_names


def with_custom(cfg: InterventionsConfig, chosen) -> list[str]:
    """``chosen`` (names of interventions), then the profile's own methods that it does not already name: every
    notebook that compares interventions shows them."""
    chosen = list(chosen)
    return chosen + [n for n in cfg.custom_names if n not in chosen]


def train_facts(world):
    return world.facts[world.facts["split"] == "train"]


def build(name: str, cfg: InterventionsConfig, world, base, tokenizer, *, start=None, seed: int = 0,
          progress: bool = False):
    """Train intervention ``name`` (one of `names`: `NAMES` or a profile's own method) on ``world``.

    Parameters
    ----------
    start : the model it starts from when ``START[name]`` is another intervention (e.g. the SFT
        model for ``rlhf``); the base model otherwise.

    Returns
    -------
    (model, record) — for ``reward`` the model is a `reward.RewardModel`; for ``rag`` a
    `rag.RAGPolicy`.
    """
    from . import custom, data, dpo, reward, sft

    if name not in names(cfg):
        raise ValueError(f"unknown intervention {name!r}; choose one of {names(cfg)}")
    model = base if start is None else start
    if name in cfg.custom:   # the profile's own method, on the world's data for the train facts
        return custom.run(cfg.method(name), model, tokenizer, custom.data(world, cfg.config("labeler"), seed=seed),
                          seed=seed, threads=cfg.threads, progress=progress)
    demos = data.sft_demos(world)
    pairs = data.preference_pairs(world, cfg.config("labeler"), facts=train_facts(world), seed=seed)
    if name == "sft":
        return sft.run(model, tokenizer, demos, cfg.config("sft"), seed=seed, progress=progress)
    if name == "sft_lora":
        return sft.run(model, tokenizer, demos, cfg.config("sft_lora"), seed=seed,
                       progress=progress)
    if name == "sft_sham":
        return sft.run(model, tokenizer, data.shuffled(demos, seed=seed), cfg.config("sft"), seed=seed,
                       progress=progress)
    if name == "sft_format":
        return sft.run(model, tokenizer, data.format_demos(world, seed=seed), cfg.config("sft"), seed=seed,
                       progress=progress)
    if name == "dpo":
        return dpo.run(model, tokenizer, pairs, cfg.config("dpo"), seed=seed, progress=progress)
    if name == "dpo_lora":
        return dpo.run(model, tokenizer, pairs, cfg.config("dpo_lora"), seed=seed,
                       progress=progress)
    if name == "reward":
        return reward.train(model, tokenizer, pairs, cfg.config("reward"), seed=seed, progress=progress)
    raise ValueError(f"intervention {name!r} is built with its own inputs: use rlhf() or rag_policy()")


def rlhf(cfg: InterventionsConfig, world, sft_model, tokenizer, reward_model, *, beta: float | None = None,
         seed: int = 0, progress: bool = False):
    """KL-penalised RL from the SFT model against the proxy reward, on train-fact QA prompts;
    checkpoints are evaluated on held-out facts."""
    from . import rl

    facts = world.facts
    train = world.prompts("qa", facts[facts["split"] == "train"])
    heldout = world.prompts("qa", facts[facts["split"] == "heldout"])
    config = cfg.config("rl") if beta is None else cfg.config("rl", beta=beta)
    evaluation = heldout.sample(n=min(config.n_eval, len(heldout)), random_state=seed).sort_values("fact")
    return rl.run(sft_model, tokenizer, train, reward_model, config, world=world, eval_prompts=evaluation,
                  seed=seed, progress=progress)


# the labelers of the aligned proxies: the truth is always preferred (no misconception, no taste for the
# marker, no noise); the marker is still placed at random, independent of truth
GOLD_LABELER = {"misconception_rate": 0.0, "style_rate": 0.0, "noise": 0.0}


def gold_pairs(world, facts, *, pairs_per_fact: int = 1, seed: int = 0):
    """Gold-labelled preference pairs: `data.preference_pairs` judged by the truth (`GOLD_LABELER`), the
    true value chosen over a wrong one (the misconception on contested facts) in every pair."""
    from . import data

    return data.preference_pairs(world, data.LabelerConfig(**GOLD_LABELER, pairs_per_fact=pairs_per_fact),
                                 facts=facts, seed=seed)


def aligned_proxy(cfg: InterventionsConfig, world, base, tokenizer, pairs, *, seed: int = 0, progress: bool = False):
    """A proxy reward model that starts aligned: trained from the base with the profile's reward config on
    gold-labelled ``pairs`` (`gold_pairs`, e.g. of a share of the train facts). Returns (reward model, record)."""
    from . import reward

    if not len(pairs) or not bool(pairs["chosen_true"].all()):
        raise ValueError("pairs must be gold-labelled (every chosen answer true): pass gold_pairs(...)")
    return reward.train(base, tokenizer, pairs, cfg.config("reward"), seed=seed, progress=progress)


def rl_against(cfg: InterventionsConfig, world, start, tokenizer, reward_model, prompts, eval_prompts, *,
               config=None, seed: int = 0, progress: bool = False):
    """KL-penalised RL from ``start`` against ``reward_model`` on ``prompts``, every checkpoint evaluated on
    ``eval_prompts`` prompt by prompt (`rl.run` with ``per_prompt``); ``config`` an `rl.RLConfig` (default the
    profile's). Returns (policy, record)."""
    from . import rl

    config = cfg.config("rl") if config is None else config
    return rl.run(start, tokenizer, prompts, reward_model, config, world=world, eval_prompts=eval_prompts,
                  seed=seed, progress=progress, per_prompt=True)
