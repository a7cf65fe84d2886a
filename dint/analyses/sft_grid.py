"""The SFT grid of notebook 06: SFT from the base model over epochs × shares of the demonstrations.

`training_curve` is a cached artifact (``results/<profile>/training_curve/``, ``dint build training-curve``;
`dint.analyses.resources` re-exports it): every run of `train_grid` (`demo_subset` of the demonstrations, the
profile's SFT otherwise) scored on the held-out facts by `heldout_items`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..scoring import score

__all__ = ["demo_subset", "heldout_items", "train_grid", "training_curve"]


def demo_subset(demos: pd.DataFrame, share: float, *, seed: int = 0) -> pd.DataFrame:
    """The first ``round(share · n)`` demonstrations of one seeded permutation, in their original order.

    Shares of the same seed are nested (a smaller share is a subset of a larger one), so runs with
    more data add demonstrations and change nothing else.
    """
    if not isinstance(demos, pd.DataFrame) or demos.empty:
        raise ValueError("demos must be a non-empty DataFrame (see dint.interventions.data.sft_demos)")
    if isinstance(share, bool) or not isinstance(share, (int, float, np.floating)) or not 0 < share <= 1:
        raise ValueError(f"share={share!r}: must lie in (0, 1] (a share of the demonstrations)")
    n = max(1, round(float(share) * len(demos)))
    keep = np.sort(np.random.default_rng(seed).permutation(len(demos))[:n])
    return demos.iloc[keep]


def heldout_items(model, tokenizer, world, profile: Profile) -> pd.DataFrame:
    """Exact answer distribution of ``model`` on each held-out fact's QA prompt, reduced per item.

    Returns
    -------
    DataFrame, one row per held-out fact: ``fact``, ``type``, ``relation``, ``k`` (candidates),
    ``p_true`` (candidate-set probability of the true value), ``correct`` (the top candidate is
    the true value), ``mass_outside`` and ``gen_tokens`` (prompt + top answer + eos: the tokens
    of one greedy answer).
    """
    facts = world.facts[world.facts["split"] == "heldout"]
    P = world.prompts("qa", facts).reset_index(drop=True)
    with artifacts.threads(profile):
        df = score(model, tokenizer, P["prompt"], [[" " + c for c in cs] for cs in P["candidates"]],
                   config=profile.scoring)
    df["answer"] = df["answer"].str[1:]
    df["is_true"] = df["answer"].to_numpy() == P["target"].to_numpy()[df["item"].to_numpy()]
    top = df.loc[df.groupby("item")["p_set"].idxmax()].set_index("item").sort_index()
    true = df[df["is_true"]].set_index("item")["p_set"].reindex(top.index, fill_value=0.0)
    info = facts.set_index("fact").loc[P["fact"]]
    prompt_tokens = np.array([len(x) for x in tokenizer(P["prompt"].tolist(), add_special_tokens=False)["input_ids"]])
    answer_tokens = np.array([len(x) for x in tokenizer(top["answer"].tolist(), add_special_tokens=False)["input_ids"]])
    return pd.DataFrame({"fact": P["fact"].to_numpy(), "type": info["type"].to_numpy(),
                         "relation": info["relation"].to_numpy(), "k": P["candidates"].map(len).to_numpy(),
                         "p_true": true.to_numpy(float), "correct": top["is_true"].to_numpy(bool),
                         "mass_outside": top["mass_outside"].to_numpy(float),
                         "gen_tokens": prompt_tokens + answer_tokens + 1})


def _grid(name, values, *, integer):
    vals = tuple(values) if isinstance(values, (tuple, list, np.ndarray)) else ()
    bad = not vals or any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                          for v in vals)
    if not bad and integer:
        bad = any(int(v) != v or v < 1 for v in vals)
    elif not bad:
        bad = any(not 0 < v <= 1 for v in vals)
    if bad:
        need = "positive integers" if integer else "shares in (0, 1]"
        raise ValueError(f"{name}={values!r}: give a non-empty list of {need}")
    return sorted({int(v) if integer else float(v) for v in vals})


def train_grid(world, base, tokenizer, profile: Profile, *, epochs, shares, progress: bool = False) -> pd.DataFrame:
    """SFT from ``base`` for every (epochs, share) pair, each scored on the held-out facts.

    Every run uses the profile's SFT config except ``epochs`` and the demonstrations
    (`demo_subset` of `data.sft_demos` by the profile's training seed). Returns the rows of
    `heldout_items` per run, with the run's ``epochs``, ``data_share``, ``demos``, ``steps``,
    ``tokens``, ``train_flops``, ``n_params`` and ``wall_time``.
    """
    from ..interventions import data, sft

    epochs, shares = _grid("epochs", epochs, integer=True), _grid("shares", shares, integer=False)
    demos = data.sft_demos(world)
    frames = []
    for share in shares:
        subset = demo_subset(demos, share, seed=profile.train_seed)
        for e in epochs:
            model, record = sft.run(base, tokenizer, subset, profile.interventions.config("sft", epochs=e),
                                    seed=profile.train_seed, progress=progress)
            items = heldout_items(model, tokenizer, world, profile)
            run = {"epochs": e, "data_share": share, "demos": len(subset), "steps": record.steps,
                   "tokens": record.tokens, "train_flops": record.train_flops, "n_params": record.n_params,
                   "wall_time": record.wall_time}
            frames.append(items.assign(**run))
    return pd.concat(frames, ignore_index=True)


def training_curve(profile: Profile, *, rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """SFT runs over ``interventions.sft_epochs`` × ``interventions.sft_data``, scored on held-out facts.

    A cached artifact (``results/<profile>/training_curve/``), built on first use from the cached
    world and base model; see `train_grid` for the columns (one row per run and held-out fact).
    """
    manifest = {**artifacts.intervention_manifest(profile, "training_curve", grids=("sft_epochs", "sft_data")),
                "kind": "training_curve", "scoring": profile.asdict()["scoring"]}

    def compute():
        w = artifacts.world(profile)
        base, tok, _ = artifacts.base_model(profile, progress=progress)
        return train_grid(w, base, tok, profile, epochs=profile.interventions.sft_epochs,
                          shares=profile.interventions.sft_data, progress=progress)

    inputs = {"world": artifacts.ensure_world(profile), "base": artifacts.ensure_base(profile, progress=progress)}
    return artifacts.cached_table(artifacts.root(profile) / "training_curve", manifest, compute, file="runs.parquet",
                                  inputs=inputs, rebuild=rebuild)
