"""Replicated runs: the paper's experiment at several world seeds × training seeds.

A profile's ``replication`` section (`dint.pipeline.config.replication`) names its world seeds and training
seeds; every pair is one run. The world seed fixes the world, its split and the base model's pretraining;
the training seed every intervention, stack, sampling and resampling. A run's artifacts live in its own
folder (`dint.pipeline.artifacts.root`: ``results/<profile>/runs/w<w>-t<t>/``, the profile's own seeds in
``results/<profile>/``), the world and base model in the folder its world's runs share
(`dint.pipeline.artifacts.world_root`).

`build` trains and scores everything one run's notebooks read, in one process (the imports of torch,
transformers, PEFT and TRL once, not once per artifact); `collect` gathers the runs' numbers into one table,
which `dint.claims.judge_replication` pools claim by claim.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd

from ..pipeline import artifacts
from ..pipeline.config import Profile, load_profile, notebook_parameters, replication
from ..pipeline.notebooks import for_profile
from . import experiments, lora_sweep, sft_grid, stacks

__all__ = ["INTERVENTIONS", "ANSWERING", "answering", "build", "interventions", "collect", "profiles", "read_run", "reward_forms", "trained_stacks"]

# the interventions every run trains (the reward model is a step of RLHF, not an answering model)
INTERVENTIONS = ("sft", "sft_lora", "sft_sham", "sft_format", "dpo", "dpo_lora", "reward", "rlhf", "rag")
ANSWERING = tuple(n for n in INTERVENTIONS if n != "reward")


def interventions(profile: Profile) -> tuple[str, ...]:
    """The interventions a run of the profile trains: `INTERVENTIONS`, on a real profile without those only a
    synthetic world can train (`dint.interventions.plan.WORLD_ONLY`), then the profile's own methods
    (``interventions.custom``, `dint.interventions.custom`)."""
    from ..interventions.plan import WORLD_ONLY

    builtin = tuple(n for n in INTERVENTIONS if not (profile.real and n in WORLD_ONLY))
    return builtin + profile.interventions.custom_names


def answering(profile: Profile) -> tuple[str, ...]:
    """`interventions` that answer questions (all but the reward model)."""
    return tuple(n for n in interventions(profile) if n != "reward")


def trained_stacks(profile: Profile) -> list[str]:
    """The stacks of the profile's plan that are trained as stacks (not single interventions,
    `dint.analyses.stacks.ALIASES`), prefixes first."""
    names = [stacks.name(s) for s in stacks.plan(profile) + stacks.orders(profile)]
    return sorted((n for n in names if stacks.parse(n) and stacks.parse(n) not in stacks.ALIASES),
                  key=lambda n: len(stacks.parse(n)))


def reward_forms(name: str) -> list[str]:
    """The prompt forms whose candidates the proxy reward scores: QA, and the form notebook 07 verifies in."""
    return sorted({"qa", notebook_parameters(name, "07_verification").get("form", "qa")})


def profiles(name: str) -> list[Profile]:
    """The profile at every (world seed, training seed) of its replication, world by world."""
    return [load_profile(name, seed=w, train_seed=t) for w, t in replication(name).runs()]


def build(profile: Profile, *, rebuild: bool = False, progress: bool = False,
          report: Callable[[str], None] = print) -> dict:
    """Train and score everything one run's notebooks read, in this process: the world, base model and
    its scores (shared with the world's other runs), every intervention with its scores, the stacks
    (prefixes first), the proxy reward's scores, the RL sweep and the training curve. What is already
    built and valid is loaded, not built again (`dint.pipeline.artifacts.cached`); with ``rebuild``,
    everything the run trains is built again, each artifact once (the world's artifacts are loaded).

    Returns
    -------
    dict artifact -> its folder's content digest (`dint.pipeline.artifacts.digest`), what the run was built from
    """
    built = {}

    def done(what: str, folder: Path):
        built[what] = artifacts.digest(folder)
        report(f"{profile.run}: {what}")

    artifacts.world(profile)
    done("world", artifacts.world_dir(profile))
    artifacts.base_model(profile, progress=progress)
    done("base", artifacts.base_dir(profile))
    artifacts.base_scores(profile)
    done("base scores", artifacts.scores_dir(profile))
    for n in interventions(profile):
        artifacts.intervention(profile, n, rebuild=rebuild, progress=progress)
        if n != "reward":
            artifacts.intervention_scores(profile, n, rebuild=rebuild)
        done(n, artifacts.intervention_dir(profile, n))
    for s in trained_stacks(profile):
        stacks.stack(profile, s, rebuild=rebuild, progress=progress)
        stacks.stack_scores(profile, s, rebuild=rebuild)
        done(f"stack {s}", Path(stacks.manifest_path(profile, s)).parent)
    for form in reward_forms(profile.name):
        experiments.reward_table(profile, form=form, rebuild=rebuild)
        done(f"reward scores ({form})", artifacts.root(profile) / "reward_scores" / form)
    experiments.rl_sweep(profile, rebuild=rebuild, progress=progress)
    done("rl sweep", artifacts.root(profile) / "rl_sweep")
    experiments.aligned_sweep(profile, rebuild=rebuild, progress=progress)
    done("aligned proxies", artifacts.root(profile) / "aligned")
    sft_grid.training_curve(profile, rebuild=rebuild, progress=progress)
    done("training curve", artifacts.root(profile) / "training_curve")
    if not profile.real:   # the real profile is not swept
        lora_sweep.sweep(profile, rebuild=rebuild, progress=progress)
        done("lora sweep", artifacts.root(profile) / "lora_sweep")
    return built


def read_run(profile: Profile) -> pd.DataFrame:
    """One run's numbers (its notebooks' ``numbers.json``), one row per number: `collect`'s columns; empty when
    the run has none yet."""
    rows = []
    for nb in for_profile(profile.name):
        f = artifacts.root(profile) / nb / "numbers.json"
        if not f.exists():
            continue
        data = json.loads(f.read_text())
        for key, v in data["numbers"].items():
            if isinstance(v, dict) and "estimate" in v:
                values = {k: v.get(k) for k in ("estimate", "ci_low", "ci_high", "pvalue")}
            elif isinstance(v, (int, float)):   # a plain number; a yes/no as 1/0
                values = {"estimate": float(v), "ci_low": None, "ci_high": None, "pvalue": None}
            else:
                continue
            rows.append({"run": profile.run, "world_seed": profile.seed, "train_seed": profile.train_seed,
                         "notebook": data["notebook"], "key": key, **values})
    table = pd.DataFrame(rows, columns=["run", "world_seed", "train_seed", "notebook", "key", "estimate", "ci_low",
                                        "ci_high", "pvalue"])
    for c in ("estimate", "ci_low", "ci_high", "pvalue"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype(float)
    return table


def collect(name: str) -> pd.DataFrame:
    """Every run's numbers of a profile's replication, one row per run and number.

    Returns
    -------
    DataFrame ``run, world_seed, train_seed, notebook, key, estimate, ci_low, ci_high, pvalue`` (NaN where a
    number has no interval or test; a plain number is its own estimate, a yes/no 1 or 0), the claim
    notebooks' numbers only.

    Raises
    ------
    FileNotFoundError naming the runs that have no numbers yet, and the command that makes them
    """
    tables = [read_run(P) for P in profiles(name)]
    missing = [P.run for P, t in zip(profiles(name), tables) if t.empty]
    if missing:
        raise FileNotFoundError(f"no numbers of run(s) {missing} of profile {name!r}: run `make replicate "
                                f"PROFILE={name}` first")
    return pd.concat(tables, ignore_index=True)
