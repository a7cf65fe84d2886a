"""Does post-training install a fact? The analysis of notebook 08.

The other notebooks measure post-training on held-out facts, which no intervention sees. Here the facts an
intervention trains on are the object, and the two framings make predictions that can each come out:

- installation at convergence (`convergence`, `support`, `gaps`): SFT, DPO and RL trained on the train split
  along a budget grid up to a plateau of their training objective; truth installation predicts trained facts
  reach the truth whatever the corpus said, the distributional framing gains that track the base's support;
- propagation (`propagation`): the gain on trained facts in forms no training used (the statement form, a QA
  paraphrase, the reverse question of the mentor relation, two-hop questions through the trained fact)
  against the gain in the trained QA form, as knowledge-editing evaluations measure generalisation and
  portability;
- locality (`locality`): the change on facts not trained (held-out facts of entities with a trained fact, of
  entities without one) against the change on trained ones;
- forgetting (`forgetting`): RL after SFT, the decline on facts SFT installed minus the decline on facts SFT
  got right without training on them.

Every gain is a difference in differences: the change from the base on train facts minus the change on
held-out facts, in one prompt form. What training does to every fact alike, above all teaching the QA format
the base never saw in pretraining, cancels.

`scores` is the cached artifact (``results/<profile>/installation/``, ``dint build installation``): every model
of the grid and the base scored in the five forms (`FORMS`), with the grid's training records. The grid is the
notebook's parameters ``sft_epochs``, ``dpo_epochs`` and ``rl_steps`` (a profile's ``notebooks`` section may set
them, `budgets`); a budget equal to the profile's own intervention reuses that model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import compare, plot, stats
from ..pipeline import artifacts, notebooks
from ..pipeline.config import Profile, notebook_parameters
from ..scoring import score
from ..stats import fits, intervals, proportions
from ..world import World, qa_prompt
from . import mechanism, reasoning

__all__ = ["NOTEBOOK", "METHODS", "FORMS", "PROPAGATION", "PARAPHRASES", "REVERSE", "Grid", "budgets", "prompts",
           "scores", "shifts", "convergence", "support", "gaps", "propagation", "locality", "forgetting", "numbers", "plateau",
           "CLAIMED", "claimed", "figure"]

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


def _own_budget(profile: Profile, method: str) -> int:
    """The budget of the profile's own intervention of ``method`` (sft, dpo, rlhf)."""
    cfg = profile.interventions
    return cfg.config("rl").steps if method == "rl" else cfg.config(method).epochs


def model_name(method: str, budget: int) -> str:
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
    grid = {m: tuple(sorted({*b, _own_budget(profile, m)})) for m, b in grid.items()}   # RL starts from the own SFT
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
                if b == _own_budget(profile, method):
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


# ------------------------------------------------------------------------------------------------ shifts
def shifts(grid: Grid, world: World) -> pd.DataFrame:
    """Per model and item, its shift from the base (`dint.compare.shift`) with what the item is about.

    Returns
    -------
    DataFrame ``model, intervention, budget``, `compare.shift`'s columns (``fact, form, kl, p_true_base, p_true_post,
    correct_base, correct_post``, ...), then `units`' ``split, type, relation, facts`` and ``support``: the base's
    probability of the truth in the statement form of the item's (first) fact.
    """
    s = grid.scores
    base = s[s["model"] == "base"].drop(columns=["model", "intervention", "budget"])
    info = units(world)
    base_items = compare.shift(base, base)
    support = base_items[base_items["form"] == "statement"].set_index("fact")["p_true_base"]
    info["support"] = [support.get(f[0], np.nan) if form != "reverse" else np.nan
                       for f, form in zip(info["facts"], info["form"])]
    frames = []
    models = grid.records[["model", "intervention", "budget"]]
    for m in models.itertuples():
        post = s[s["model"] == m.model].drop(columns=["model", "intervention", "budget"])
        frames.append(compare.shift(base[base["form"].isin(set(post["form"]))], post).assign(model=m.model, intervention=m.intervention, budget=m.budget))
    out = pd.concat(frames, ignore_index=True).merge(info, on=["form", "fact"], how="left", validate="many_to_one")
    out["d_p_true"] = out["p_true_post"] - out["p_true_base"]
    return out


def _largest(records: pd.DataFrame) -> dict:
    """method -> the model at its largest budget."""
    r = records.sort_values("budget")
    return {m: g["model"].iloc[-1] for m, g in r.groupby("intervention")}


def _smallest(records: pd.DataFrame) -> dict:
    r = records.sort_values("budget")
    return {m: g["model"].iloc[0] for m, g in r.groupby("intervention")}


# ------------------------------------------------------------------------------------------------ installation
def convergence(items: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (Wilson interval) and mean probability of the truth of every model, by form (qa, statement), split
    and fact type (and over every type, ``type`` "all"), beside the base's.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, type, measure`` (``accuracy``, ``p_true``,
    ``accuracy_base``) and `dint.stats.ROW`.
    """
    rows = []
    f = items[items["form"].isin(["qa", "statement"])]
    f = pd.concat([f, f.assign(type="all")], ignore_index=True)
    for (model, intervention, budget, form, split, ftype), g in f.groupby(["model", "intervention", "budget", "form", "split", "type"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form, split=split, type=ftype)
        for measure, col in (("accuracy", "correct_post"), ("accuracy_base", "correct_base")):
            k = int(g[col].sum())
            rows.append(stats.proportion(k, len(g)).row(**labels, measure=measure))
        p = g["p_true_post"].to_numpy(float)
        if len(p) > 1:
            rows.append(stats.bootstrap_mean(p, n_resamples=500, rng=0).row(**labels, measure="p_true"))
    return pd.DataFrame(rows)


def support(items: pd.DataFrame, *, form: str = "qa", split: str = "train") -> pd.DataFrame:
    """The support dependence of every model: the OLS slope (HC3 interval) of its probability of the truth on the
    base's statement-form probability of the truth, over the facts of ``split`` in ``form``.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, measure`` (``support_slope``) and `dint.stats.ROW`.
    """
    rows = []
    f = items[(items["form"] == form) & (items["split"] == split)]
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        r = fits.slope(g["support"].to_numpy(float), g["p_true_post"].to_numpy(float))
        rows.append(r.row(model=model, intervention=intervention, budget=budget, form=form, split=split, measure="support_slope"))
    return pd.DataFrame(rows)


def gaps(items: pd.DataFrame, *, form: str = "qa", split: str = "train") -> pd.DataFrame:
    """Accuracy on never-stated and on contested facts minus accuracy on frequent facts, of ``split`` in ``form``,
    per model (difference of two proportions, Newcombe interval and z-test).

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, split, measure`` (``unseen_gap``, ``contested_gap``) and
    `dint.stats.ROW`.
    """
    rows = []
    f = items[(items["form"] == form) & (items["split"] == split)]
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        frequent = g.loc[g["type"] == "frequent", "correct_post"]
        for ftype in ("unseen", "contested"):
            other = g.loc[g["type"] == ftype, "correct_post"]
            if len(other) and len(frequent):
                r = proportions.diff_proportions(int(other.sum()), len(other), int(frequent.sum()), len(frequent))
                rows.append(r.row(model=model, intervention=intervention, budget=budget, form=form, split=split,
                                  measure=f"{ftype}_gap"))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ propagation
def _trained_change(items: pd.DataFrame) -> pd.Series:
    """(model, fact) -> the change of the probability of the truth in the trained QA form."""
    qa = items[items["form"] == "qa"]
    return qa.set_index(["model", "fact"])["d_p_true"]


def propagation(items: pd.DataFrame) -> pd.DataFrame:
    """The installation effect of every model in each form, and in each untrained form the difference from the
    trained form's effect on the same items.

    The installation effect in a form is the mean change of the probability of the truth on train items minus that
    on held-out items (Welch). For an untrained form, each item's change minus the trained QA change of the facts
    it rests on (itself; a two-hop question's first hop; a reverse question's mentee facts, averaged) gives the
    difference (``propagation``, Welch on train minus held-out items): 0 when the form gains as the trained
    one does, the whole trained effect below 0 when it gains nothing. The ratio of the two effects is given only
    where the trained form's effect on those items has an interval that excludes 0.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, measure`` (``effect``: the form's installation effect;
    ``trained_effect``: the QA form's on the same items; ``propagation``: their difference; ``ratio``) and
    `dint.stats.ROW`.
    """
    trained = _trained_change(items)
    rows = []
    for (model, intervention, budget), g in items.groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget)
        t = trained.loc[model]
        for form in FORMS:
            f = g[(g["form"] == form) & g["split"].isin(["train", "heldout"])]
            if f.empty:
                continue
            train = (f["split"] == "train").to_numpy()
            b = f["d_p_true"].to_numpy(float)
            if train.sum() < 2 or (~train).sum() < 2:
                continue
            effect = intervals.welch(b[train], b[~train])
            rows.append(effect.row(**labels, form=form, measure="effect"))
            if form == "qa":
                continue
            a = np.array([t.reindex(list(fs)).mean() for fs in f["facts"]])
            base_effect = intervals.welch(a[train], a[~train])
            rows.append(base_effect.row(**labels, form=form, measure="trained_effect"))
            rows.append(intervals.welch((b - a)[train], (b - a)[~train]).row(**labels, form=form, measure="propagation"))
            low, high = base_effect.confidence_interval.low, base_effect.confidence_interval.high
            ratio = effect.statistic / base_effect.statistic if (low > 0 or high < 0) else float("nan")
            rows.append({**labels, "form": form, "measure": "ratio", "estimate": ratio, "n": effect.n,
                         "method": "ratio of the two installation effects (no interval)",
                         "reason": "" if np.isfinite(ratio) else "the trained form's effect has an interval containing 0"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ locality
def entity_groups(world: World) -> pd.Series:
    """fact -> ``train``, ``heldout, same entity`` (a held-out fact of an entity with a train fact) or ``heldout,
    other entity`` (of an entity none of whose facts is trained)."""
    f = world.facts
    trained = set(f.loc[f["split"] == "train", "entity"])
    group = np.where(f["split"] == "train", "train",
                     np.where(f["entity"].isin(trained), "heldout, same entity", "heldout, other entity"))
    return pd.Series(group, index=f["fact"].to_numpy(), name="group")


def locality(items: pd.DataFrame, world: World, *, form: str = "statement", n_resamples: int = 2000, rng=0) -> pd.DataFrame:
    """Where each model's change falls, in ``form``: the ratio of its mean KL from the base on held-out facts to that
    on train facts (`mechanism.locality`), and per group of `entity_groups` the mean KL (bootstrap interval) and the
    accuracy change (paired, McNemar).

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, group, measure`` (``locality``, ``kl``, ``d_accuracy``) and
    `dint.stats.ROW`.
    """
    groups = entity_groups(world)
    f = items[items["form"] == form]
    rows = []
    for (model, intervention, budget), g in f.groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form)
        local = mechanism.locality({model: g}, form=form, n_resamples=n_resamples, rng=rng)
        for r in local.to_dict("records"):
            rows.append({**labels, "group": "heldout / train", "measure": "locality",
                         **{k: r[k] for k in stats.ROW}})
        gg = g.assign(group=groups.reindex(g["fact"]).to_numpy())
        for group, h in gg.groupby("group"):
            if len(h) < 2:
                continue
            rows.append(stats.bootstrap_mean(h["kl"].to_numpy(float), n_resamples=n_resamples, rng=rng)
                        .row(**labels, group=group, measure="kl"))
            rows.append(proportions.mcnemar(h["correct_base"].to_numpy(bool), h["correct_post"].to_numpy(bool))
                        .row(**labels, group=group, measure="d_accuracy"))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ forgetting
def forgetting(items: pd.DataFrame, start: str, *, form: str = "qa") -> pd.DataFrame:
    """RL after SFT: among facts the SFT model ``start`` answers right and the base does not, the share each RL model
    gets wrong on train facts (installed) minus the share on held-out facts (right without training), within fact
    types (`dint.stats.proportions.stratified_difference`), and the two shares.

    Returns
    -------
    Tidy DataFrame ``model, intervention, budget, form, measure`` (``forgetting_did``, ``decline_train``,
    ``decline_heldout``) and `dint.stats.ROW`.
    """
    f = items[items["form"] == form]
    s = f[f["model"] == start].set_index("fact")
    right = s.index[s["correct_post"].to_numpy(bool) & ~s["correct_base"].to_numpy(bool)]
    rows = []
    for (model, intervention, budget), g in f[f["intervention"] == "rl"].groupby(["model", "intervention", "budget"]):
        labels = dict(model=model, intervention=intervention, budget=budget, form=form)
        h = g[g["fact"].isin(right)]
        declined = ~h["correct_post"].to_numpy(bool)
        train = (h["split"] == "train").to_numpy()
        k1, n1, k2, n2 = [], [], [], []
        for ftype in FACT_TYPES:
            t = (h["type"] == ftype).to_numpy()
            k1.append(int((declined & train & t).sum()))
            n1.append(int((train & t).sum()))
            k2.append(int((declined & ~train & t).sum()))
            n2.append(int((~train & t).sum()))
        rows.append(proportions.stratified_difference(k1, n1, k2, n2).row(**labels, measure="forgetting_did"))
        for name, mask in (("decline_train", train), ("decline_heldout", ~train)):
            if mask.any():
                rows.append(stats.proportion(int(declined[mask].sum()), int(mask.sum())).row(**labels, measure=name))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ numbers
def _pick(table: pd.DataFrame, model: str, **where) -> dict | None:
    t = table[table["model"] == model]
    for k, v in where.items():
        t = t[t[k] == v]
    if len(t) != 1:
        return None
    return stats.Result.from_row(t.iloc[0]).asdict()


def numbers(records: pd.DataFrame, conv: pd.DataFrame, slopes: pd.DataFrame, gap: pd.DataFrame, prop: pd.DataFrame,
            local: pd.DataFrame, forget: pd.DataFrame) -> dict:
    """The numbers the paper and the claims quote, for each method at its largest budget (``<method>_…``) and at its
    smallest (``<method>_first_…``): ``support_slope``, ``unseen_gap``, ``contested_gap``, ``train_accuracy`` and
    ``heldout_accuracy`` (QA), ``statement_train_accuracy``, ``effect_<form>``, ``propagation_<form>``,
    ``locality``; for RL ``forgetting_did``, ``decline_train``, ``decline_heldout``; and each method's ``budget``,
    ``objective`` (the training loss, RL's proxy reward, at the largest budget) and ``objective_change`` (its
    relative change over the last 20% of that run's curve, `plateau`)."""
    out = {}
    for which, pick in (("", _largest(records)), ("_first", _smallest(records))):
        for method, model in pick.items():
            p = f"{method}{which}_"
            out[p + "support_slope"] = _pick(slopes, model)
            out[p + "unseen_gap"] = _pick(gap, model, measure="unseen_gap")
            out[p + "contested_gap"] = _pick(gap, model, measure="contested_gap")
            for split in ("train", "heldout"):
                out[p + f"{split}_accuracy"] = _pick(conv, model, form="qa", split=split, type="all", measure="accuracy")
            out[p + "statement_train_accuracy"] = _pick(conv, model, form="statement", split="train", type="all",
                                                        measure="accuracy")
            for form in FORMS:
                out[p + f"effect_{form}"] = _pick(prop, model, form=form, measure="effect")
                if form != "qa":
                    out[p + f"propagation_{form}"] = _pick(prop, model, form=form, measure="propagation")
            out[p + "locality"] = _pick(local, model, measure="locality")
            if method == "rl":
                for m in ("forgetting_did", "decline_train", "decline_heldout"):
                    out[p + m] = _pick(forget, model, measure=m)
    for method, g in records.sort_values("budget").groupby("intervention"):
        out[f"{method}_budget"] = int(g["budget"].iloc[-1])
        out[f"{method}_objective"] = float(g["objective"].iloc[-1])
        out[f"{method}_objective_change"] = plateau(json.loads(g["curve"].iloc[-1]))
    return {k: v for k, v in out.items() if v is not None}


def plateau(curve, share: float = 0.2) -> float:
    """The relative change of a training curve over its last ``share`` (20%) of points: (last - earlier) / |earlier|,
    near 0 on a plateau; NaN for a curve of fewer than 2 points or an earlier value of 0."""
    c = np.asarray(curve, dtype=float)
    if len(c) < 2:
        return float("nan")
    earlier = c[max(0, min(len(c) - 2, int(round((1 - share) * (len(c) - 1)))))]
    return float((c[-1] - earlier) / abs(earlier)) if earlier else float("nan")


# the numbers paper/claims.yaml judges (its section 08)
CLAIMED = ("sft_support_slope", "sft_unseen_gap", "sft_contested_gap", *(f"sft_propagation_{f}" for f in PROPAGATION),
           "sft_locality", "rl_forgetting_did")


def claimed(numbers: dict) -> pd.DataFrame:
    """The numbers the registry judges (`CLAIMED`), as a table to show: ``estimate, ci_low, ci_high, pvalue, n``."""
    rows = {k: {c: numbers[k].get(c) for c in ("estimate", "ci_low", "ci_high", "pvalue", "n")}
            for k in CLAIMED if isinstance(numbers.get(k), dict)}
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------------------ figure
METHOD_COLORS = {"sft": plot.PALETTE[0], "dpo": plot.PALETTE[1], "rl": plot.PALETTE[2]}
FORM_LABELS = {"qa": "QA (trained)", "statement": "statement", "paraphrase": "paraphrase", "reverse": "reverse",
               "twohop": "two-hop"}


def figure(conv: pd.DataFrame, items: pd.DataFrame, prop: pd.DataFrame, local: pd.DataFrame, records: pd.DataFrame):
    """The notebook's figure, four panels: (a) SFT's accuracy on train facts (QA) by fact type along its budget,
    held-out facts dashed; (b) the probability of the truth on train facts (QA) at each method's largest budget
    against the base's support, binned; (c) the installation effect in each form at the largest budgets, with
    intervals; (d) the locality ratio along each method's budget."""
    fig, axes = plot.panels(4, ncols=2, row_height=2.3)
    a, b, c, d = axes
    sft = conv[(conv["intervention"] == "sft") & (conv["form"] == "qa") & (conv["measure"] == "accuracy")]
    for ftype in FACT_TYPES:
        for split, style in (("train", "-"), ("heldout", ":")):
            g = sft[(sft["type"] == ftype) & (sft["split"] == split)].sort_values("budget")
            if g.empty:
                continue
            a.plot(g["budget"], g["estimate"], style, marker=plot.TYPE_MARKERS[ftype], color=plot.TYPE_COLORS[ftype],
                   label=ftype if split == "train" else None)
    a.set_xscale("log")
    epochs = sorted(sft["budget"].unique())
    a.set_xticks(epochs, [str(e) for e in epochs])
    a.minorticks_off()
    a.set_xlabel("SFT epochs")
    a.set_ylabel("accuracy, QA (train: solid)")
    a.set_ylim(-0.02, 1.02)
    plot.legend(a, above=True, ncols=4)

    largest = _largest(records)
    bins = np.linspace(0, 1, 6)
    for method, model in largest.items():
        g = items[(items["model"] == model) & (items["form"] == "qa") & (items["split"] == "train")]
        cut = pd.cut(g["support"], bins, include_lowest=True)
        m = g.groupby(cut, observed=True)["p_true_post"].agg(["mean", "sem", "size"])
        mids = [iv.mid for iv in m.index]
        b.errorbar(mids, m["mean"], yerr=1.96 * m["sem"].fillna(0), marker="o", capsize=2,
                   color=METHOD_COLORS[method], label=model)
    b.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    b.set_xlabel("base P(true), statement form")
    b.set_ylabel("P(true) after, train facts, QA")
    b.set_ylim(-0.02, 1.02)
    plot.legend(b)

    p = prop[prop["model"].isin(largest.values()) & (prop["measure"] == "effect")]
    x = np.arange(len(FORMS))
    width = 0.8 / max(1, len(largest))
    for i, (method, model) in enumerate(largest.items()):
        g = p[p["model"] == model].set_index("form").reindex(list(FORMS))
        c.errorbar(x + (i - (len(largest) - 1) / 2) * width, g["estimate"],
                   yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]], fmt="o", capsize=2,
                   color=METHOD_COLORS[method], label=model)
    c.axhline(0, color="0.6", lw=0.8)
    c.set_xticks(x, [FORM_LABELS[f] for f in FORMS], rotation=20)
    c.set_ylabel("installation effect, ΔP(true)\ntrain − held-out")
    plot.legend(c)

    loc = local[local["measure"] == "locality"]
    for method, g in loc.groupby("intervention"):
        g = g.sort_values("budget")
        d.errorbar(g["budget"], g["estimate"], yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                   marker="o", capsize=2, color=METHOD_COLORS[method], label=method)
    d.axhline(1, color="0.6", lw=0.8, ls="--")
    d.axhline(0.25, color="0.6", lw=0.8, ls=":")
    d.set_xscale("log")
    d.set_xlabel("budget (epochs; RL: steps)")
    d.set_ylabel("KL held-out / KL train\nstatement form")
    plot.legend(d)
    for ax, letter in zip(axes, "abcd"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
