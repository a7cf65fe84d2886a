"""Stacked interventions: SFT, DPO, RL and RAG applied one after another to the base model.

A *stack* is a sequence of steps from `STEPS`, each trained from the model the previous step left:

``sft``  supervised fine-tuning on true answers to train facts (`dint.interventions.sft`)
``dpo``  DPO on the biased labelers' preference pairs, with the incoming model as reference
``rl``   KL-penalised RL (RLOO) against the proxy reward model, KL to the incoming model
``rag``  a retrieval reader trained by RAG-SFT from the incoming model, deployed over the store

``rag`` is a routing step: its reader answers from a retrieved context, so it is the last step of
any stack that has it. `PLAN` holds every subset of the four steps in the canonical order (sft,
dpo, rl, rag) — 16 stacks, the base included — and `ORDERS` the reversed orders of three pairs.
A profile may restrict the plan to some of the steps (``interventions.stack_steps``, e.g. to fit
a real model's compute budget): `plan` and `orders` give the stacks of its plan.
A stack's name joins its steps with ``+`` (``"sft+dpo+rl"``); the empty stack is ``"base"``.

Stacks that are single interventions of the profile's plan are not trained again: ``sft``,
``dpo`` and ``rag`` are those interventions, and ``sft+rl`` is ``rlhf``. Each stack is cached
(`stack`) with its answer distributions on every fact (`stack_scores`); a stack is trained from
its cached prefix, so ``sft+dpo+rl`` costs one RL run once ``sft+dpo`` exists.

The analysis helpers lay the per-item outcomes of all stacks out for a factorial model of
correctness (`design`) and compare each stack with the additive prediction from its single
steps (`additive`).
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from ..pipeline import artifacts
from .. import models
from ..pipeline.config import Profile
from ..interventions.plan import STACK_STEPS
from ..interventions.record import InterventionRecord

__all__ = ["ORDERS", "PLAN", "STEPS", "additive", "additivity", "describe", "design", "manifest_path", "measures",
           "name", "orders", "outcomes", "parse", "plan", "prefix", "stack", "stack_scores", "train_flops"]

STEPS = STACK_STEPS
# every subset of STEPS in the canonical order, smallest first
PLAN = tuple(s for r in range(len(STEPS) + 1) for s in itertools.combinations(STEPS, r))
# reversed orders of three pairs: (dpo, sft) against (sft, dpo), and so on
ORDERS = (("dpo", "sft"), ("rl", "sft"), ("rl", "dpo"))
# stacks that are interventions of the profile's plan (`dint.interventions.plan.NAMES`)
ALIASES = {("sft",): "sft", ("dpo",): "dpo", ("rag",): "rag", ("sft", "rl"): "rlhf"}


def plan(profile: Profile) -> tuple[tuple[str, ...], ...]:
    """The profile's factorial plan: every subset of its ``interventions.stack_steps`` in the
    canonical order, smallest first (`PLAN` when it has all four steps)."""
    steps = profile.interventions.stack_steps
    return tuple(s for s in PLAN if set(s) <= set(steps))


def orders(profile: Profile) -> tuple[tuple[str, ...], ...]:
    """The reversed orders of `ORDERS` whose steps are all in the profile's plan."""
    steps = profile.interventions.stack_steps
    return tuple(o for o in ORDERS if set(o) <= set(steps))


def name(steps) -> str:
    """The name of a stack: its steps joined with ``+``, or ``"base"``."""
    return "+".join(parse(steps)) or "base"


def parse(steps) -> tuple[str, ...]:
    """A stack as a tuple of steps, from a name (``"sft+dpo"``, ``"base"``) or a sequence.

    Raises ValueError for an unknown step, a repeated step, or ``rag`` before the last step.
    """
    if isinstance(steps, str):
        steps = () if steps in ("base", "") else tuple(steps.split("+"))
    steps = tuple(steps)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"stack {steps!r}: unknown step(s) {unknown}; steps are {STEPS} joined by '+'")
    if len(set(steps)) != len(steps):
        raise ValueError(f"stack {steps!r}: a step appears twice")
    if "rag" in steps[:-1]:
        raise ValueError(f"stack {steps!r}: rag routes the final answer, so it must be the last step")
    return steps


def prefix(steps) -> tuple[str, ...]:
    """The stack a stack is trained from (all steps but the last)."""
    return parse(steps)[:-1]


def _folder(profile: Profile, steps):
    return artifacts.root(profile) / "stacks" / name(steps)


def _manifest(profile: Profile, steps) -> dict:
    return {**artifacts.intervention_manifest(profile, "stack"), "kind": "stack", "stack": name(steps)}


def _records(profile: Profile, steps) -> list[InterventionRecord]:
    """The training records of every step of a built stack, first step first."""
    if not steps:
        return []
    if steps in ALIASES:
        alias = ALIASES[steps]
        recs = [InterventionRecord.load(artifacts.intervention_dir(profile, alias) / "record.json")]
        return _records(profile, ("sft",)) + recs if alias == "rlhf" else recs
    folder = _folder(profile, steps)
    return _records(profile, prefix(steps)) + [InterventionRecord.load(folder / "record.json")]


def train_flops(profile: Profile, steps) -> float:
    """Training FLOPs of a stack: the sum over its steps (the base's pretraining excluded)."""
    return float(sum(r.train_flops for r in _records(profile, parse(steps))))


def _train_step(profile: Profile, step: str, model, tok, *, progress: bool):
    from ..interventions import plan, rag

    cfg, w, seed = profile.interventions, artifacts.world(profile), profile.train_seed
    if step == "rl":
        rm, _, _ = artifacts.intervention(profile, "reward", progress=progress)
        return plan.rlhf(cfg, w, model, tok, rm, seed=seed, progress=progress)
    if step == "rag":
        policy, record = rag.run(model, tok, w, cfg.config("rag"), store_config=cfg.config("store"),
                                 retriever="bm25", seed=seed, progress=progress)
        return policy.model, record
    return plan.build(step, cfg, w, model, tok, seed=seed, progress=progress)


def stack(profile: Profile, steps, *, rebuild: bool = False, progress: bool = False):
    """A stacked model of the profile, trained from its cached prefix on first use.

    Parameters
    ----------
    steps : a stack name (``"sft+dpo"``) or a sequence of `STEPS`; ``"base"`` or () is the base model

    Returns
    -------
    model, tokenizer, records — the model is a `RAGPolicy` when the last step is ``rag``; records
    are the `InterventionRecord` of every step, first step first.
    """
    steps = parse(steps)
    if not steps:
        model, tok, _ = artifacts.base_model(profile, progress=progress)
        return model, tok, []
    if steps in ALIASES:
        model, tok, _ = artifacts.intervention(profile, ALIASES[steps], rebuild=rebuild, progress=progress)
        return model, tok, _records(profile, steps)
    folder = _ensure(profile, steps, rebuild=rebuild, progress=progress)
    model, tok, _ = artifacts.load_intervention(profile, "rag" if steps[-1] == "rag" else "stack", folder)
    return model, tok, _records(profile, steps)


def _ensure(profile: Profile, steps: tuple[str, ...], *, rebuild: bool = False, progress: bool = False):
    """The folder of a stack's model (the base's, an intervention's or a trained stack's), built unless
    valid (`artifacts.cached`); a trained stack's inputs are the world, its prefix and, for an ``rl`` step,
    the reward model."""
    if not steps:
        return artifacts.ensure_base(profile, progress=progress)
    if steps in ALIASES:
        return artifacts.ensure_intervention(profile, ALIASES[steps], rebuild=rebuild, progress=progress)
    inputs = {"world": artifacts.ensure_world(profile), "start": _ensure(profile, prefix(steps), progress=progress)}
    if steps[-1] == "rl":
        inputs["reward"] = artifacts.ensure_intervention(profile, "reward", progress=progress)

    def build(tmp):
        start, tok, _ = stack(profile, prefix(steps), progress=progress)
        model, record = _train_step(profile, steps[-1], start, tok, progress=progress)
        models.save(model, tok, tmp)
        record.save(tmp / "record.json")

    return artifacts.cached(_folder(profile, steps), _manifest(profile, steps), build, inputs=inputs, rebuild=rebuild)


def stack_scores(profile: Profile, steps, *, rebuild: bool = False) -> pd.DataFrame:
    """Exact answer distributions of a stack on every fact, both forms (`artifacts.score_world`)."""
    steps = parse(steps)
    if not steps:
        return artifacts.base_scores(profile, rebuild=rebuild)
    if steps in ALIASES:
        return artifacts.intervention_scores(profile, ALIASES[steps], rebuild=rebuild)
    manifest = {**_manifest(profile, steps), "kind": "stack_scores", "scoring": profile.asdict()["scoring"]}

    def compute():
        model, tok, _ = stack(profile, steps)
        w = artifacts.world(profile)
        with artifacts.threads(profile):
            if steps[-1] == "rag":
                return artifacts.score_world(model.model, tok, w, profile, route=model.prompts)
            return artifacts.score_world(model, tok, w, profile)

    inputs = {"world": artifacts.ensure_world(profile), "model": _ensure(profile, steps)}
    return artifacts.cached_table(artifacts.root(profile) / "scores" / "stacks" / name(steps), manifest, compute,
                                  file="scores.parquet", inputs=inputs, rebuild=rebuild)


def manifest_path(profile: Profile, steps) -> str:
    """Path of the manifest that marks a stack's scores as built (for the pipeline)."""
    steps = parse(steps)
    if not steps:
        return str(artifacts.scores_dir(profile) / "manifest.json")
    if steps in ALIASES:
        return str(artifacts.root(profile) / "scores" / ALIASES[steps] / "manifest.json")
    return str(artifacts.root(profile) / "scores" / "stacks" / name(steps) / "manifest.json")


# ------------------------------------------------------------------------------ analysis
def design(outcomes: dict) -> pd.DataFrame:
    """Long table of per-item outcomes of canonical-order stacks, with one 0/1 column per step.

    Parameters
    ----------
    outcomes : mapping stack name (or steps) -> DataFrame with ``fact`` and the outcome columns
        (e.g. ``compare.shift(base, stack)`` rows); every stack on the same items. Stacks in a
        non-canonical order (see `ORDERS`) are rejected: a factorial model has one cell per subset.

    Returns
    -------
    The frames stacked, with ``stack`` (name), ``n_steps`` and a 0/1 column per step of `STEPS`.
    """
    if not outcomes:
        raise ValueError("outcomes is empty: pass {stack name: per-item table}")
    frames, items = [], None
    for key, df in outcomes.items():
        steps = parse(key)
        if list(steps) != sorted(steps, key=STEPS.index):
            raise ValueError(f"stack {name(steps)!r} is not in the canonical order {STEPS}: leave order "
                             "variants out of the factorial design")
        if "fact" not in df.columns:
            raise ValueError(f"outcomes[{name(steps)!r}] lacks a 'fact' column")
        keys = df[[c for c in ("fact", "form") if c in df.columns]].reset_index(drop=True)
        if items is None:
            items = keys
        elif not keys.equals(items):
            raise ValueError(f"outcomes[{name(steps)!r}] is on other items than the first stack: align them")
        frames.append(df.reset_index(drop=True).assign(stack=name(steps), n_steps=len(steps),
                                                        **{s: int(s in steps) for s in STEPS}))
    return pd.concat(frames, ignore_index=True)


def additive(table: pd.DataFrame, value: str = "estimate") -> pd.DataFrame:
    """The additive prediction of each stack from the base and its single steps.

    Parameters
    ----------
    table : one row per canonical-order stack (``stack`` name) with the measured ``value``; must
        hold the base and every single step that the stacks use.

    Returns
    -------
    ``table`` with ``additive`` = value(base) + Σ_steps [value(step) − value(base)] and
    ``excess`` = value − additive (0 for the base and the single steps by construction).
    """
    if "stack" not in table.columns or value not in table.columns:
        raise ValueError(f"table needs 'stack' and {value!r} columns")
    v = table.set_index("stack")[value]
    if "base" not in v.index:
        raise ValueError("table lacks the base (stack 'base')")
    pred = []
    for s in table["stack"]:
        steps = parse(s)
        missing = [x for x in steps if x not in v.index]
        if missing:
            raise ValueError(f"stack {s!r}: single step(s) {missing} missing from table")
        pred.append(v["base"] + sum(v[x] - v["base"] for x in steps))
    out = table.copy()
    out["additive"] = pred
    out["excess"] = out[value] - out["additive"]
    return out


def describe(profile: Profile, steps) -> dict:
    """A stack's name, steps and training cost, as a plain dict (for tables)."""
    steps = parse(steps)
    recs = _records(profile, steps)
    return {"stack": name(steps), "n_steps": len(steps), "train_flops": float(sum(r.train_flops for r in recs)),
            "train_tokens": int(sum(r.tokens for r in recs)), "wall_time": float(sum(r.wall_time for r in recs)),
            "steps_detail": json.dumps([r.method for r in recs])}


def outcomes(base_scores: pd.DataFrame, scores: dict, facts: pd.DataFrame, *, form: str = "qa",
             split: str | None = "heldout", others=()) -> dict:
    """Per-item shift of each stack from the base (`dint.compare.shift`) with its confidence.

    Parameters
    ----------
    base_scores : the base's `score_world` table
    scores : mapping stack name -> its `score_world` table (e.g. `stack_scores`)
    facts : the world's ``facts`` table
    form : prompt form kept (``"qa"`` or ``"statement"``)
    split : ``"heldout"``, ``"train"`` or None (all facts)
    others : names in ``scores`` that are not stacks (a profile's own methods), kept as they are

    Returns
    -------
    dict stack name -> DataFrame, one row per fact (same order in every table): `compare.shift`'s
    columns plus ``confidence`` (the stack's top probability over the candidate set).
    """
    from ..compare import distributions, shift

    if form not in ("qa", "statement"):
        raise ValueError(f"form={form!r}: choose 'qa' or 'statement'")
    if split not in ("heldout", "train", None):
        raise ValueError(f"split={split!r}: choose 'heldout', 'train' or None")
    keep = facts["fact"] if split is None else facts.loc[facts["split"] == split, "fact"]
    b = base_scores[(base_scores["form"] == form) & base_scores["fact"].isin(keep)]
    out = {}
    for key, s in scores.items():
        s = s[(s["form"] == form) & s["fact"].isin(keep)]
        items = shift(b, s, facts)
        _, logp, _ = distributions(s)
        items["confidence"] = np.exp(logp.max(axis=1))
        out[key if key in others else name(key)] = items
    return out


def measures(items: dict, *, n_resamples: int = 2000, rng: int = 0, n_bins: int = 10, others=()) -> pd.DataFrame:
    """Accuracy, KL from the base and calibration error of each stack, each with its interval.

    Parameters
    ----------
    items : `outcomes`' mapping (the base included as ``"base"``, KL 0)
    others : names in ``items`` that are not stacks but single interventions outside the plan (a profile's own
        methods, ``interventions.custom``), one step each
    n_resamples, rng : of the bootstrap intervals
    n_bins : equal-width bins of the debiased calibration error

    Returns
    -------
    Tidy DataFrame, one row per stack and measure: ``stack``, ``n_steps``, ``measure`` then `dint.stats.ROW`;
    measures ``accuracy`` (Wilson interval), ``kl`` (mean KL(stack ‖ base) over items, bootstrap interval),
    ``ece`` (debiased l2 calibration error of the top answer, Kumar et al. 2019, bootstrap interval),
    ``confidence`` (mean top probability) and ``p_true`` (mean probability of the truth), the last two
    without an interval.
    """
    from .. import calibration
    from .. import stats as st

    rows = []
    for key, it in items.items():
        n = len(it)
        labels = {"stack": key, "n_steps": 1} if key in others else {"stack": name(key), "n_steps": len(parse(key))}
        acc = st.proportion(int(it["correct_post"].sum()), n)
        kl = it["kl"].to_numpy(float)
        klr = (st.Result(0.0, st.ConfidenceInterval(0.0, 0.0), n, "zero") if np.ptp(kl) == 0 and kl[0] == 0
               else st.bootstrap_mean(kl, n_resamples=n_resamples, rng=rng))
        e = calibration.ece(it["confidence"].to_numpy(float), it["correct_post"].to_numpy(bool), n_bins=n_bins,
                            debiased=True, n_resamples=n_resamples, rng=rng)
        rows += [{**r.row(**labels, measure=m), "n": n} for m, r in (("accuracy", acc), ("kl", klr), ("ece", e))]
        for m, v, what in (("confidence", float(it["confidence"].mean()), "mean top probability"),
                           ("p_true", float(it["p_true_post"].mean()), "mean probability of the truth")):
            rows.append(st.Result(v, st.ConfidenceInterval(np.nan, np.nan), n, what).row(**labels, measure=m))
    return pd.DataFrame(rows)


def additivity(items: dict, column: str = "correct_post", *, n_permutations: int = 9999, rng: int = 0) -> pd.DataFrame:
    """Each multi-step stack against the additive prediction from its single steps, item by item.

    For item i and stack S, the additive prediction is ``y_i(base) + Σ_{s∈S} [y_i(s) − y_i(base)]``
    of the per-item outcome ``column`` (e.g. ``correct_post`` on the probability scale, ``kl``,
    ``p_true_post``); the excess is the stack's outcome minus that prediction, paired by item.

    Parameters
    ----------
    items : `outcomes`' mapping; must hold the base and every single step of the stacks
    column : the per-item outcome
    n_permutations, rng : of the sign-flip permutation test

    Returns
    -------
    Tidy DataFrame, one row per canonical-order stack of two or more steps: ``stack``, ``n_steps``, then
    `dint.stats.ROW` for the mean excess (stack − prediction) with its t interval and the paired permutation
    ``pvalue`` (H0: the stack is additive on average; NaN with a ``reason`` where the test cannot be made),
    then ``observed`` and ``additive`` (the means, without an interval).
    """
    from .. import stats as st

    names = {name(k): v for k, v in items.items()}
    if "base" not in names:
        raise ValueError("items lacks the base ('base'): pass outcomes(...) of the base too")
    if column not in names["base"].columns:
        raise ValueError(f"column={column!r} is not a per-item outcome; e.g. 'correct_post', 'kl', 'p_true_post'")
    y0 = names["base"][column].to_numpy(float) if column != "kl" else np.zeros(len(names["base"]))
    rows = []
    for key, it in names.items():
        steps = parse(key)
        if len(steps) < 2 or list(steps) != sorted(steps, key=STEPS.index):
            continue
        missing = [s for s in steps if s not in names]
        if missing:
            raise ValueError(f"stack {key!r}: single step(s) {missing} missing from items")
        pred = y0 + sum(names[s][column].to_numpy(float) - y0 for s in steps)
        obs = it[column].to_numpy(float)
        r = st.paired_permutation_test(obs, pred, n_resamples=n_permutations, rng=rng)
        rows.append({**r.row(stack=key, n_steps=len(steps)), "n": len(obs), "observed": float(obs.mean()),
                     "additive": float(pred.mean())})
    return pd.DataFrame(rows)
