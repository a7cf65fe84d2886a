"""The data each intervention gets from the world: demonstrations, labelled preferences, shams and the
format-only control.

Every function here is a pure function of the world and a seed. Prompts are the world's own
(`World.prompts`), and answers are continuations with a leading space (``" kessa vale"``), in
TRL's prompt-completion (SFT) and preference (DPO) formats, so a trainer appends its EOS token
and scores exactly the answers that `dint.scoring.score` scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..world import World
from ..stats.checks import check_int

STYLE_MARKER = " ."  # the labelers' stylistic marker: a closing full stop, a word of every world's vocabulary


def _facts(world: World, facts: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``world.facts`` to use: the train split by default."""
    if facts is None:
        return world.facts[world.facts["split"] == "train"]
    if not isinstance(facts, pd.DataFrame):
        raise TypeError(f"facts must be a DataFrame of rows of world.facts, got {type(facts).__name__}")
    missing = {"fact", "entity", "relation", "value", "type", "misconception"} - set(facts.columns)
    if missing:
        raise ValueError(f"facts lacks columns {sorted(missing)}: pass rows of world.facts")
    if facts.empty:
        raise ValueError("facts is empty: pass at least one row of world.facts")
    return facts


def sft_demos(world: World, *, facts: pd.DataFrame | None = None, form: str = "qa") -> pd.DataFrame:
    """Demonstrations of the true answer, one per fact.

    Parameters
    ----------
    world : World
    facts : rows of ``world.facts`` to demonstrate (default: the train split).
    form : "qa" or "statement", the prompt form of `World.prompts`.

    Returns
    -------
    DataFrame with ``fact``, ``relation``, ``prompt`` and ``completion`` (``" " + true value``), in
    the order of ``facts``: TRL's prompt-completion format plus the two keys that `shuffled` and
    the evaluations use.
    """
    facts = _facts(world, facts)
    prompts = world.prompts(form, facts)
    return pd.DataFrame({"fact": prompts["fact"].to_numpy(), "relation": facts["relation"].to_numpy(),
                         "prompt": prompts["prompt"].to_numpy(),
                         "completion": [" " + v for v in prompts["target"]]})


def shuffled(demos: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """The sham intervention's data: the same demonstrations with completions moved to other facts.

    Within each relation, the completions are permuted among the facts, so the sham has the same
    prompts, the same format and the same answer distribution as ``demos``, but teaches wrong facts.
    The permutation avoids giving a fact its own true answer wherever the relation's answers allow
    (it cannot when every fact of a relation has the same value).

    Parameters
    ----------
    demos : the output of `sft_demos` (``fact``, ``relation``, ``prompt``, ``completion``).
    seed : int, the permutation's only source of randomness.

    Returns
    -------
    DataFrame with the columns and row order of ``demos``; only ``completion`` differs.
    """
    missing = {"relation", "completion"} - set(demos.columns)
    if missing:
        raise ValueError(f"demos lacks columns {sorted(missing)}: pass the output of sft_demos")
    rng = np.random.default_rng(seed)
    out = demos.copy()
    completion = demos["completion"].to_numpy()
    new = completion.copy()
    for relation in sorted(demos["relation"].unique()):
        rows = np.flatnonzero(demos["relation"].to_numpy() == relation)
        new[rows] = completion[rows][_derangement(completion[rows], rng)]
    out["completion"] = new
    return out


def format_demos(world: World, *, form: str = "qa", seed: int = 0) -> pd.DataFrame:
    """The format-only control's data: SFT's demonstrations asked about entities that no text states anything about.

    Each train fact's demonstration keeps its relation and its answer, and asks about one of the world's
    ``control_entities`` instead of its own entity (within a relation, each control entity once), so the control
    has SFT's number of demonstrations, its format and its answers, and teaches no fact of an evaluated entity.
    The sham (`shuffled`) instead gives the world's own entities wrong answers, which teaches that the answer does
    not depend on the entity.

    Parameters
    ----------
    world : World with ``control_entities`` (``WorldConfig.control_share`` > 0)
    form : "qa" or "statement", as `sft_demos`
    seed : int, the assignment of control entities (the only randomness)

    Returns
    -------
    DataFrame with `sft_demos`' columns (``fact``: the train fact whose answer the demonstration carries) and
    ``entity``, the control entity asked about.
    """
    control = tuple(getattr(world, "control_entities", ()))
    if not control:
        raise ValueError("world has no control_entities: the format-only control needs a synthetic world built with "
                         "world.control_share > 0 in the profile (e.g. 0.6)")
    facts = _facts(world, None)
    relation = facts["relation"].to_numpy()
    rng = np.random.default_rng(seed)
    entity = np.empty(len(facts), dtype=object)
    for r in sorted(set(relation)):
        rows = np.flatnonzero(relation == r)
        if len(rows) > len(control):
            raise ValueError(f"world has {len(control)} control_entities but {len(rows)} train facts of relation {r!r}: "
                             "raise world.control_share so that each relation's facts get distinct entities")
        entity[rows] = np.asarray(control, dtype=object)[rng.permutation(len(control))[:len(rows)]]
    demos = sft_demos(world, facts=facts, form=form)
    demos["prompt"] = world.prompts(form, facts.assign(entity=entity))["prompt"].to_numpy()
    demos["entity"] = entity
    return demos


def _derangement(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation ``p`` with ``values[p[i]] != values[i]`` wherever swaps can achieve it."""
    n = len(values)
    p = rng.permutation(n)
    for i in range(n):
        if values[p[i]] != values[i]:
            continue
        for j in rng.permutation(n):  # swap with a row whose answer differs and that accepts this one
            if values[p[j]] != values[i] and values[p[i]] != values[j]:
                p[i], p[j] = p[j], p[i]
                break
    return p


@dataclass(frozen=True)
class LabelerConfig:
    """How the simulated labelers judge a pair of answers (see `preference_pairs`)."""

    misconception_rate: float = 0.6  # P(prefer the popular misconception over the truth), contested facts
    style_rate: float = 0.2          # P(prefer the answer with the stylistic marker, whatever its truth)
    noise: float = 0.1               # P(the judgement is flipped at random), at most 0.5
    pairs_per_fact: int = 1          # comparisons per fact, each a fresh labeler draw

    def __post_init__(self):
        for name in ("misconception_rate", "style_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"LabelerConfig.{name}={v!r}: must lie in [0, 1]")
        if not 0.0 <= self.noise <= 0.5:
            raise ValueError(f"LabelerConfig.noise={self.noise!r}: must lie in [0, 0.5] (0.5 is a coin flip)")
        check_int("LabelerConfig.pairs_per_fact", self.pairs_per_fact, 1)

    def p_chosen_true(self, contested: bool) -> float:
        """Probability that the chosen answer is the true one, by the law of `preference_pairs`."""
        q = self.style_rate / 2 + (1 - self.style_rate) * (1 - self.misconception_rate * bool(contested))
        return (1 - self.noise) * q + self.noise * (1 - q)

    def p_style_chosen(self) -> float:
        """Probability that the chosen answer carries the stylistic marker (any fact)."""
        q = self.style_rate + (1 - self.style_rate) / 2
        return (1 - self.noise) * q + self.noise * (1 - q)


def preference_pairs(world: World, config: LabelerConfig = LabelerConfig(), *,
                     facts: pd.DataFrame | None = None, form: str = "qa", seed: int = 0) -> pd.DataFrame:
    """Pairs of answers judged by simulated, biased labelers.

    Each pair compares a fact's true value with one wrong value: the popular misconception for
    contested facts, otherwise a value drawn uniformly from the relation's other values (never the
    entity itself). Exactly one of the two answers carries the stylistic marker `STYLE_MARKER`
    appended (``" kessa vale ."``): the true one or the wrong one with probability 1/2 each, so the
    marker is independent of truth. One labeler then judges the pair, with independent draws per
    pair:

    1. with probability ``style_rate`` it prefers the answer carrying the marker;
    2. otherwise, on a contested fact, with probability ``misconception_rate`` it prefers the
       misconception;
    3. otherwise it prefers the true answer;
    4. finally, with probability ``noise``, its preference is flipped.

    Hence P(chosen is true) = (1 − e)·q + e·(1 − q) with q = s/2 + (1 − s)(1 − m·[contested])
    (`LabelerConfig.p_chosen_true`), and the marker is chosen with probability
    (1 − e)·(1 + s)/2 + e·(1 − s)/2 (`LabelerConfig.p_style_chosen`).

    Parameters
    ----------
    world : World
    config : LabelerConfig
    facts : rows of ``world.facts`` to label (default: the train split).
    form : "qa" or "statement", the prompt form of `World.prompts`.
    seed : int, the only source of randomness (wrong values, marker placement, judgements).

    Returns
    -------
    DataFrame, ``pairs_per_fact`` rows per fact in the order of ``facts``: ``fact``, ``prompt``,
    ``chosen``, ``rejected`` (answers with a leading space, TRL's preference format),
    ``chosen_true`` (bool, the chosen answer states the true value) and ``style_chosen`` (bool,
    the chosen answer carries the marker).
    """
    if not isinstance(config, LabelerConfig):
        raise TypeError(f"config must be a LabelerConfig, got {type(config).__name__}")
    facts = _facts(world, facts)
    prompts = world.prompts(form, facts)
    rng = np.random.default_rng(seed)
    k = config.pairs_per_fact
    rows = []
    for f, prompt in zip(facts.itertuples(), prompts["prompt"]):
        contested = f.type == "contested"
        others = [v for v in world.values[f.relation] if v != f.value and v != f.entity]
        if contested:
            wrong = [f.misconception] * k
        else:
            wrong = [others[i] for i in rng.integers(len(others), size=k)]
        styled_true = rng.random(k) < 0.5               # which answer carries the marker
        by_style = rng.random(k) < config.style_rate
        by_misconception = contested & (rng.random(k) < config.misconception_rate)
        flip = rng.random(k) < config.noise
        prefers_true = np.where(by_style, styled_true, ~by_misconception) ^ flip
        for j in range(k):
            true = " " + f.value + (STYLE_MARKER if styled_true[j] else "")
            false = " " + wrong[j] + ("" if styled_true[j] else STYLE_MARKER)
            chosen, rejected = (true, false) if prefers_true[j] else (false, true)
            rows.append((f.fact, prompt, chosen, rejected, bool(prefers_true[j]),
                         bool(prefers_true[j] == styled_true[j])))
    return pd.DataFrame(rows, columns=["fact", "prompt", "chosen", "rejected", "chosen_true", "style_chosen"])
