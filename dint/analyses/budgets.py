"""Notebook 08's budget grid: SFT, DPO and RL at several training budgets, every model scored in five prompt forms.

`scores` is a cached artifact (``results/<profile>/installation/``, ``dint build installation``): from the base, SFT at
each of the notebook's ``sft_epochs`` and DPO at each of its ``dpo_epochs``; from the profile's SFT model, RL against the
proxy reward at each of its ``rl_steps`` (a profile's ``notebooks`` section may set them, `budgets`). The profile's own
intervention of each method is a point of the grid, loaded rather than trained again. Every model, and the base, is
scored exactly on every fact in the trained QA form and the statement form; the base and each method's smallest and
largest budgets also in three forms no training uses (`PROPAGATION` less the statement form): a QA paraphrase of the
question (`PARAPHRASES`), the reverse question of the mentor relation (`REVERSE`, every mentee a right answer) and
two-hop questions through the mentor fact (`dint.analyses.reasoning.twohop_items`). `prompts` gives each form's items,
`units` what each item is about; `dint.analyses.installation` analyses the grid.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..pipeline import artifacts, notebooks
from ..pipeline.config import Profile, notebook_parameters
from ..scoring import score
from ..world import World, qa_prompt
from . import reasoning

__all__ = ["NOTEBOOK", "METHODS", "FORMS", "PROPAGATION", "PARAPHRASES", "REVERSE", "FACT_TYPES", "Grid", "budgets",
           "model_name", "own_budget", "plateau", "prompts", "units", "score_forms", "scores"]

NOTEBOOK = "08_installation"
METHODS = ("sft", "dpo", "rl")
# the notebook parameter that holds each method's budgets, and the budget's unit
GRID_PARAMETERS = {"sft": "sft_epochs", "dpo": "dpo_epochs", "rl": "rl_steps"}
UNITS = {"sft": "epochs", "dpo": "epochs", "rl": "steps"}
# the trained form first, then the forms no training uses
FORMS = ("qa", "statement", "paraphrase", "reverse", "twohop")
PROPAGATION = FORMS[1:]
# a second question for each relation, in words the world's vocabulary already has (its tokenizer reads them),
# asked by no training and no corpus sentence
PARAPHRASES = {"home": "where was {e} born ?", "color": "what is the color {e} loves most ?",
               "craft": "what is the trade of {e} ?", "pet": "what is the pet of {e} ?",
               "mentor": "who was {e} taught by ?"}
# the reverse question of the mentor relation: its answer is every mentee of {v}
REVERSE = "who studied under {v} ?"
FACT_TYPES = ("frequent", "rare", "contested", "unseen")


@dataclass(frozen=True)
class Grid:
    """The installation artifact: every model's answer distributions in every form, and the training records."""

    scores: pd.DataFrame    # ``model, intervention, budget, fact, form, candidate, answer, p_set, mass_outside, is_true``
    records: pd.DataFrame   # one row per model: ``model, intervention, budget, unit, steps, train_flops, wall_time,
                            # objective`` (SFT, DPO: the last epoch's training loss; RL: the proxy reward), ``curve``


# ------------------------------------------------------------------------------------------------ the grid
def _check_budgets(name: str, values) -> tuple[int, ...]:
    vals = list(values) if isinstance(values, (list, tuple)) else None
    if not vals or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in vals):
        raise ValueError(f"{name}={values!r}: give a non-empty list of positive integers, e.g. {name}=[3, 10, 30]")
    return tuple(sorted({int(v) for v in vals}))


def budgets(name: str, **override) -> dict:
    """The budget grid of notebook 08 for profile ``name``: method -> sorted budgets (SFT and DPO epochs, RL steps).

    The notebook's declared parameters, then the profile's ``notebooks.08_installation`` section, then
    ``override`` (``sft_epochs=``, ``dpo_epochs=``, ``rl_steps=``; None keeps the profile's).
    """
    unknown = sorted(set(override) - set(GRID_PARAMETERS.values()))
    if unknown:
        raise ValueError(f"unknown budget parameter(s) {unknown}; valid: {sorted(GRID_PARAMETERS.values())}")
    params = {**notebooks.parameters(NOTEBOOK), **notebook_parameters(name, NOTEBOOK),
              **{k: v for k, v in override.items() if v is not None}}
    return {m: _check_budgets(p, params[p]) for m, p in GRID_PARAMETERS.items()}


def own_budget(profile: Profile, method: str) -> int:
    """The budget of the profile's own intervention of ``method`` (sft, dpo, rlhf)."""
    cfg = profile.interventions
    return cfg.config("rl").steps if method == "rl" else cfg.config(method).epochs


def model_name(method: str, budget: int) -> str:
    """A grid model's name: ``<method>@<budget>``, e.g. ``sft@30``."""
    return f"{method}@{budget}"


# ------------------------------------------------------------------------------------------------ prompts
def prompts(world: World, form: str) -> pd.DataFrame:
    """The items of one form, with their candidates and true answers.

    Returns
    -------
    DataFrame ``fact`` (the item's id in its form: a fact for qa, statement and paraphrase, a mentor's index in
    ``world.entities`` for reverse, a row of ``world.twohop`` for twohop), ``prompt``, ``candidates`` and
    ``true`` (tuples of str: a reverse question's true set is every mentee).
    """
    if form not in FORMS:
        raise ValueError(f"form={form!r}: choose one of {FORMS}")
    if form in ("qa", "statement"):
        p = world.prompts(form)
        return pd.DataFrame({"fact": p["fact"], "prompt": p["prompt"], "candidates": p["candidates"],
                             "true": [(t,) for t in p["target"]]})
    f = world.facts
    if form == "paraphrase":
        vocabulary = set(world.vocabulary())
        for rel, q in PARAPHRASES.items():
            if unknown := sorted(set(q.format(e="").split()) - vocabulary):
                raise ValueError(f"PARAPHRASES[{rel!r}] = {q!r} has words outside world.vocabulary(): {unknown}")
        return pd.DataFrame({"fact": f["fact"].to_numpy(),
                             "prompt": [qa_prompt(PARAPHRASES[r].format(e=e)) for e, r in zip(f["entity"], f["relation"])],
                             "candidates": [world.values[r] for r in f["relation"]],
                             "true": [(v,) for v in f["value"]]})
    if form == "reverse":
        if "mentor" not in world.values:
            raise ValueError("world has no mentor relation: the reverse question needs one")
        mentor = f[f["relation"] == "mentor"]
        mentees = mentor.groupby("value")["entity"].apply(tuple)
        index = {e: i for i, e in enumerate(world.entities)}
        ys = [y for y in world.entities if y in mentees.index]
        return pd.DataFrame({"fact": [index[y] for y in ys], "prompt": [qa_prompt(REVERSE.format(v=y)) for y in ys],
                             "candidates": [tuple(e for e in world.entities if e != y) for y in ys],
                             "true": [mentees[y] for y in ys]})
    items = reasoning.twohop_items(world)
    return pd.DataFrame({"fact": items["item"].to_numpy(), "prompt": items["prompt"].to_numpy(),
                         "candidates": [world.values[r] for r in items["relation"]],
                         "true": [(v,) for v in items["value"]]})


def units(world: World) -> pd.DataFrame:
    """What each item of each form is about: ``form, fact``, its ``split`` (train, heldout; a reverse question
    whose mentees' facts are in both splits is ``mixed``), ``type``, ``relation`` and ``facts`` (the ids of the
    facts whose trained QA question is its comparator: the fact itself, a two-hop question's first hop, a
    reverse question's mentee facts)."""
    f = world.facts.set_index("fact")
    rows = []
    for form in ("qa", "statement", "paraphrase"):
        rows.append(pd.DataFrame({"form": form, "fact": f.index.to_numpy(), "split": f["split"].to_numpy(),
                                  "type": f["type"].to_numpy(), "relation": f["relation"].to_numpy(),
                                  "facts": [(i,) for i in f.index]}))
    if "mentor" in world.values:
        mentor = world.facts[world.facts["relation"] == "mentor"]
        index = {e: i for i, e in enumerate(world.entities)}
        for y, g in mentor.groupby("value"):
            splits = set(g["split"])
            rows.append(pd.DataFrame({"form": ["reverse"], "fact": [index[y]],
                                      "split": [splits.pop() if len(splits) == 1 else "mixed"], "type": [""],
                                      "relation": ["mentor"], "facts": [tuple(g["fact"])]}))
        t = reasoning.twohop_items(world)
        rows.append(pd.DataFrame({"form": "twohop", "fact": t["item"].to_numpy(),
                                  "split": f.loc[t["fact1"], "split"].to_numpy(),
                                  "type": f.loc[t["fact1"], "type"].to_numpy(), "relation": t["relation"].to_numpy(),
                                  "facts": [(i,) for i in t["fact1"]]}))
    return pd.concat(rows, ignore_index=True)


def score_forms(model, tokenizer, world: World, profile: Profile, forms) -> pd.DataFrame:
    """Exact answer distributions of ``model`` on every item of each form: ``fact, form, candidate, answer, p_set,
    mass_outside, is_true`` (a candidate of the item's true set)."""
    tables = []
    for form in forms:
        p = prompts(world, form)
        with artifacts.threads(profile):
            df = score(model, tokenizer, p["prompt"], [[" " + c for c in cs] for cs in p["candidates"]],
                       config=profile.scoring)
        df["answer"] = df["answer"].str[1:]
        true = p["true"].to_numpy()[df["item"].to_numpy()]
        df["is_true"] = [a in t for a, t in zip(df["answer"], true)]
        df.insert(0, "form", form)
        df.insert(0, "fact", p["fact"].to_numpy()[df["item"].to_numpy()])
        tables.append(df[["fact", "form", "candidate", "answer", "p_set", "mass_outside", "is_true"]])
    return pd.concat(tables, ignore_index=True)


def _record(label, method, budget, record) -> dict:
    if method == "rl":
        curve = [c.get("proxy_exact", c.get("proxy")) for c in record.extra.get("checkpoints", [])]
    else:
        curve = list(record.extra.get("losses", []))
    return {"model": label, "intervention": method, "budget": budget, "unit": UNITS[method], "steps": record.steps,
            "train_flops": record.train_flops, "wall_time": record.wall_time,
            "objective": float(curve[-1]) if curve else float("nan"), "curve": json.dumps([float(c) for c in curve])}


def scores(profile: Profile, *, sft_epochs=None, dpo_epochs=None, rl_steps=None, rebuild: bool = False,
           progress: bool = False) -> Grid:
    """The installation grid, trained and scored on first use (a cached artifact, ``results/<profile>/installation/``).

    From the base: SFT at each of ``sft_epochs`` and DPO at each of ``dpo_epochs``; from the profile's SFT model,
    RL against its proxy reward at each of ``rl_steps``; every method otherwise with the profile's config and
    training seed. The profile's own intervention of each method is always a point of the grid (RL starts from
    its SFT model), loaded, not trained again.
    The base and every model are scored on every item of the qa and statement forms; the base and each method's
    smallest and largest budgets also on the paraphrase, reverse and two-hop items (`PROPAGATION`).

    Parameters
    ----------
    profile : Profile
    sft_epochs, dpo_epochs, rl_steps : budgets (None: `budgets` of the profile)
    rebuild : build even if a valid artifact exists
    """
    grid = budgets(profile.name, sft_epochs=sft_epochs, dpo_epochs=dpo_epochs, rl_steps=rl_steps)
    grid = {m: tuple(sorted({*b, own_budget(profile, m)})) for m, b in grid.items()}   # RL starts from the own SFT
    manifest = {**artifacts.intervention_manifest(profile, "installation"), "kind": "installation",
                "grid": {m: list(b) for m, b in grid.items()}, "forms": list(FORMS),
                "scoring": profile.asdict()["scoring"]}
    inputs = {"world": artifacts.ensure_world(profile), "base": artifacts.ensure_base(profile, progress=progress),
              **{n: artifacts.ensure_intervention(profile, n, progress=progress) for n in ("sft", "dpo", "reward", "rlhf")}}

    def build(tmp):
        from ..interventions import plan

        w = artifacts.world(profile)
        base, tok, _ = artifacts.base_model(profile, progress=progress)
        cfg, seed = profile.interventions, profile.train_seed
        tables, records = [], []

        def add(label, method, budget, model, own, ends):
            """Score one model: qa and statement (an own intervention's cached scores), and at the ends of its
            method's grid (``ends``) the forms no training uses."""
            if own is None:
                t = score_forms(model, tok, w, profile, ("qa", "statement"))
            else:
                cached = own()
                t = cached[cached["form"].isin(["qa", "statement"])][
                    ["fact", "form", "candidate", "answer", "p_set", "mass_outside", "is_true"]]
            if ends:
                t = pd.concat([t, score_forms(model, tok, w, profile, PROPAGATION[1:])], ignore_index=True)
            tables.append(t.assign(model=label, intervention=method, budget=budget))

        add("base", "base", 0, base, lambda: artifacts.base_scores(profile), True)
        own_name = {"sft": "sft", "dpo": "dpo", "rl": "rlhf"}
        start = reward_model = None
        for method in METHODS:
            ends = (grid[method][0], grid[method][-1])
            for b in grid[method]:
                label = model_name(method, b)
                if b == own_budget(profile, method):
                    model, _, record = artifacts.intervention(profile, own_name[method], progress=progress)
                    add(label, method, b, model, lambda n=own_name[method]: artifacts.intervention_scores(profile, n),
                        b in ends)
                else:
                    if method == "rl":
                        if start is None:
                            start, _, _ = artifacts.intervention(profile, "sft", progress=progress)
                            reward_model, _, _ = artifacts.intervention(profile, "reward", progress=progress)
                        model, record = plan.rlhf(replace(cfg, rl={**cfg.rl, "steps": b}), w, start, tok,
                                                  reward_model, seed=seed, progress=progress)
                    else:
                        model, record = plan.build(method, replace(cfg, **{method: {**getattr(cfg, method), "epochs": b}}),
                                                   w, base, tok, seed=seed, progress=progress)
                    add(label, method, b, model, None, b in ends)
                records.append(_record(label, method, b, record))
        pd.concat(tables, ignore_index=True).to_parquet(tmp / "scores.parquet", index=False)
        pd.DataFrame(records).to_parquet(tmp / "records.parquet", index=False)

    folder = artifacts.cached(artifacts.root(profile) / "installation", manifest, build, inputs=inputs, rebuild=rebuild)
    return Grid(scores=pd.read_parquet(folder / "scores.parquet"), records=pd.read_parquet(folder / "records.parquet"))


def plateau(curve, share: float = 0.2) -> float:
    """The relative change of a training curve over its last ``share`` (20%) of points: (last - earlier) / |earlier|,
    near 0 on a plateau; NaN for a curve of fewer than 2 points or an earlier value of 0."""
    c = np.asarray(curve, dtype=float)
    if len(c) < 2:
        return float("nan")
    earlier = c[max(0, min(len(c) - 2, int(round((1 - share) * (len(c) - 1)))))]
    return float((c[-1] - earlier) / abs(earlier)) if earlier else float("nan")
