"""LoRA against full SFT across learning rates (notebook 05): "LoRA learns less and forgets less" (Biderman et al.
2024) tested at matched training loss.

`sweep` is a cached artifact (``results/<profile>/lora_sweep/``): `train_sweep` fine-tunes the base with full SFT and
with SFT-LoRA at every learning rate of `SweepConfig` (the profile's SFT config otherwise) and scores each run on the
train facts in the QA form (what it learnt) and on the held-out facts in the statement form (what it forgot of what the
base held). `runs` reduces the sweep to one row per run and measure; `matched` compares LoRA with full SFT at a common
final training loss (or a common learning), each method's per-fact outcomes interpolated along its sweep; `best` at
each method's best learning rate; `compare` all three; `numbers` what the paper quotes; `draw` the figure's panels.

Forgetting is the base's P(true) (candidate-set probability of the true value) minus the model's, averaged over the
held-out facts; learning is the model's QA accuracy on the train facts minus the base's. Tables with estimates are
tidy: label columns, then `dint.stats.ROW`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import compare, plot, stats
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..scoring import score
from ..stats import proportions
from ..stats.resampling import mean_difference

__all__ = ["METHODS", "Comparison", "SweepConfig", "best", "compare_methods", "draw", "matched", "numbers", "runs",
           "sweep", "train_sweep"]

METHODS = ("sft", "sft_lora")   # full fine-tuning and LoRA (the profile's interventions.lora), from the base
# where each quantity is measured: (form, split)
LEARNING = ("qa", "train")             # what was trained, in the trained form
FORGETTING = ("statement", "heldout")  # what was not, in the corpus's form, which the base already answers
_NAMES = {"sft": "full SFT", "sft_lora": "SFT-LoRA"}


@dataclass(frozen=True)
class SweepConfig:
    """The learning rates of the sweep, as multiples of the profile's SFT learning rate (``interventions.sft.lr``)."""

    sft: tuple = (0.1, 0.3, 1.0, 3.0, 10.0)         # full SFT: centred on the profile's rate
    sft_lora: tuple = (1.0, 3.0, 10.0, 30.0, 100.0)  # LoRA: centred on ten times it (adapters take a larger rate)

    def __post_init__(self):
        for m in METHODS:
            v = getattr(self, m)
            if (not isinstance(v, (tuple, list)) or len(v) < 2 or len(set(v)) != len(v)
                    or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0 for x in v)):
                raise ValueError(f"SweepConfig.{m}={v!r}: give two or more distinct positive multiples of the "
                                 "profile's SFT learning rate, e.g. (0.1, 1.0, 10.0)")
            object.__setattr__(self, m, tuple(sorted(float(x) for x in v)))

    def rates(self, profile: Profile) -> dict:
        """``{method: ((multiple, learning rate), ...)}`` for the profile."""
        lr = profile.interventions.config("sft").lr
        return {m: tuple((x, x * lr) for x in getattr(self, m)) for m in METHODS}


def _subset_scores(model, tokenizer, world, profile: Profile, form: str, split: str) -> pd.DataFrame:
    """`dint.pipeline.artifacts.score_world`'s table for one form and split of the facts."""
    P = world.prompts(form, world.facts[world.facts["split"] == split])
    with artifacts.threads(profile):
        df = score(model, tokenizer, P["prompt"], [[" " + c for c in cs] for cs in P["candidates"]],
                   config=profile.scoring)
    df["answer"] = df["answer"].str[1:]
    df.insert(0, "form", form)
    df.insert(0, "fact", P["fact"].to_numpy()[df["item"].to_numpy()])
    df["is_true"] = df["answer"].to_numpy() == P["target"].to_numpy()[df["item"].to_numpy()]
    return df.drop(columns="item")


def train_sweep(world, base, tokenizer, base_scores: pd.DataFrame, profile: Profile, *,
                config: SweepConfig = SweepConfig(), progress: bool = False) -> pd.DataFrame:
    """Full SFT and SFT-LoRA from ``base`` at every learning rate of ``config``, each scored against the base.

    Every run uses the profile's config of its method (``interventions.sft`` / ``sft_lora``) except the learning rate,
    the demonstrations of all train facts (`data.sft_demos`) and the profile's training seed.

    Parameters
    ----------
    world, base, tokenizer : the profile's world, base model and tokenizer
    base_scores : the base's `score_world` table (`dint.pipeline.artifacts.base_scores`)
    profile : the run's profile
    config : `SweepConfig`

    Returns
    -------
    DataFrame, one row per run and scored fact: ``intervention`` (``sft`` or ``sft_lora``), ``multiple``, ``lr``, ``loss`` (the last logged training
    loss: the mean over the last epoch), ``loss_first``, ``steps``, ``train_flops``, ``trainable_params``, ``wall_time``
    (training, seconds), then `dint.compare.shift`'s per-item columns (``fact``, ``form``, ``split``, ``kl``,
    ``p_true_base``, ``p_true_post``, ``correct_base``, ``correct_post``, ...) for the train facts in the QA form and
    the held-out facts in the statement form.
    """
    from ..interventions import data, sft

    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    demos = data.sft_demos(world)
    where = (LEARNING, FORGETTING)
    bases = {(f, s): base_scores[(base_scores["form"] == f) & base_scores["fact"].isin(
        world.facts.loc[world.facts["split"] == s, "fact"])] for f, s in where}
    frames = []
    for method, grid in config.rates(profile).items():
        for multiple, lr in grid:
            model, record = sft.run(base, tokenizer, demos, profile.interventions.config(method, lr=lr),
                                    seed=profile.train_seed, progress=progress)
            run = {"intervention": method, "multiple": multiple, "lr": lr, "loss": record.loss_last,
                   "loss_first": record.loss_first, "steps": record.steps, "train_flops": record.train_flops,
                   "trainable_params": record.trainable_params, "wall_time": record.wall_time}
            for f, s in where:
                items = compare.shift(bases[f, s], _subset_scores(model, tokenizer, world, profile, f, s), world.facts)
                frames.append(items.assign(**run))
    table = pd.concat(frames, ignore_index=True)
    first = list(run)
    return table[first + [c for c in table.columns if c not in first]]


def sweep(profile: Profile, *, config: SweepConfig = SweepConfig(), folder: str | Path | None = None,
          rebuild: bool = False, progress: bool = False) -> pd.DataFrame:
    """`train_sweep` on the profile's world and base, a cached artifact.

    Parameters
    ----------
    profile : the run's profile
    config : `SweepConfig` (recorded in the manifest: another grid is another artifact)
    folder : where the artifact lives (default ``results/<profile>/lora_sweep/``)
    rebuild, progress : as for `dint.pipeline.artifacts.cached`

    Returns
    -------
    `train_sweep`'s table.
    """
    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    manifest = {**artifacts.intervention_manifest(profile, "lora_sweep"), "kind": "lora_sweep",
                "scoring": profile.asdict()["scoring"], "sweep": asdict(config)}

    def compute():
        w = artifacts.world(profile)
        base, tok, _ = artifacts.base_model(profile, progress=progress)
        return train_sweep(w, base, tok, artifacts.base_scores(profile), profile, config=config, progress=progress)

    artifacts.base_scores(profile)   # built and valid before its folder is named as an input
    inputs = {"world": artifacts.ensure_world(profile), "base": artifacts.ensure_base(profile, progress=progress),
              "base_scores": artifacts.scores_dir(profile)}
    return artifacts.cached_table(folder or artifacts.root(profile) / "lora_sweep", manifest, compute,
                                  file="runs.parquet", inputs=inputs, rebuild=rebuild)


# ------------------------------------------------------------------------------ per run
_RUN = ["intervention", "multiple", "lr", "loss", "steps", "train_flops", "wall_time"]


def _check(table: pd.DataFrame) -> None:
    need = {*_RUN, "fact", "form", "split", "p_true_base", "p_true_post", "correct_base", "correct_post", "kl"}
    missing = sorted(need - set(table.columns)) if isinstance(table, pd.DataFrame) else ["(not a DataFrame)"]
    if missing:
        raise ValueError(f"table lacks {missing}: pass the output of lora_sweep.sweep or train_sweep")
    absent = sorted(set(METHODS) - set(table["intervention"]))
    if absent:
        raise ValueError(f"table has no runs of {absent}: the comparison needs both {METHODS}")


def _items(table: pd.DataFrame, where: tuple) -> pd.DataFrame:
    f, s = where
    return table[(table["form"] == f) & (table["split"] == s)]


def _outcome(table: pd.DataFrame, where: tuple, column: str) -> dict:
    """``{(intervention, lr): per-fact values}``, facts in one order for every run."""
    t = _items(table, where).sort_values("fact")
    return {k: g[column].to_numpy(float) for k, g in t.groupby(["intervention", "lr"], sort=True)}


def runs(table: pd.DataFrame, *, n_resamples: int = 2000, n_permutations: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Each run of the sweep against the base.

    Parameters
    ----------
    table : `sweep`
    n_resamples, n_permutations, seed : of the bootstrap intervals and the sign-flip tests

    Returns
    -------
    Tidy DataFrame, five rows per run: ``intervention``, ``multiple``, ``lr``, ``loss``, ``steps``, ``train_flops``,
    ``wall_time``, ``best`` (the method's lowest final loss), ``measure``: ``learning`` (QA accuracy on the train facts,
    model minus base: McNemar exact, Newcombe interval), ``learning_p_true`` (mean P(true) gain on them: paired
    bootstrap, sign-flip test), ``forgetting`` (held-out facts, statement form: base's mean P(true) minus the model's),
    ``forgetting_accuracy`` (the same in accuracy, McNemar) and ``kl`` (mean KL(model ‖ base) on the held-out
    statement prompts, bootstrap interval); then `dint.stats.ROW`.
    """
    _check(table)
    rows = []
    meta = table[_RUN].drop_duplicates().sort_values(["intervention", "lr"])
    lowest = meta.groupby("intervention")["loss"].transform("min")
    meta = meta.assign(best=meta["loss"] == lowest)
    learn, forget = _items(table, LEARNING), _items(table, FORGETTING)
    for r in meta.to_dict("records"):
        a = learn[(learn.intervention == r["intervention"]) & (learn.lr == r["lr"])].sort_values("fact")
        b = forget[(forget.intervention == r["intervention"]) & (forget.lr == r["lr"])].sort_values("fact")
        kw = dict(n_resamples=n_resamples, n_permutations=n_permutations, rng=seed)
        measures = {
            "learning": proportions.mcnemar(a.correct_base.to_numpy(), a.correct_post.to_numpy()),
            "learning_p_true": mean_difference(a.p_true_post.to_numpy(), a.p_true_base.to_numpy(), **kw),
            "forgetting": mean_difference(b.p_true_base.to_numpy(), b.p_true_post.to_numpy(), **kw),
            "forgetting_accuracy": proportions.mcnemar(b.correct_post.to_numpy(), b.correct_base.to_numpy()),
            "kl": stats.bootstrap_mean(b.kl.to_numpy(), n_resamples=n_resamples, rng=seed),
        }
        rows += [res.row(**r, measure=m) for m, res in measures.items()]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ LoRA against full SFT
def _branch(meta: pd.DataFrame, method: str) -> pd.DataFrame:
    """A method's runs in order of learning rate up to and including its lowest final loss."""
    m = meta[meta.intervention == method].sort_values("lr").reset_index(drop=True)
    return m.iloc[: int(m["loss"].to_numpy().argmin()) + 1]


def _weights(x: np.ndarray, target: float) -> tuple[int, float] | None:
    """The first adjacent pair ``(i, i + 1)`` of ``x`` that brackets ``target`` and the weight of ``i + 1``
    (linear interpolation), or None when no pair does."""
    exact = np.flatnonzero(x == target)
    if len(exact):
        return int(exact[0]), 0.0
    for i in range(len(x) - 1):
        if min(x[i], x[i + 1]) <= target <= max(x[i], x[i + 1]):
            return i, float((target - x[i]) / (x[i + 1] - x[i]))
    return None


@dataclass(frozen=True)
class Matched:
    """The point at which the two methods are compared, and each one's runs and weights there."""

    on: str          # "loss" (final training loss) or "learning" (train-fact QA accuracy gain)
    target: float    # the matched value (NaN where not estimable)
    reached: bool    # both methods' branches bracket it
    runs: dict       # {method: ((lr, weight), ...)}: the runs mixed at the target
    reason: str      # why not, where not reached


def _match(table: pd.DataFrame, on: str) -> Matched:
    meta = table[_RUN].drop_duplicates()
    branches = {m: _branch(meta, m) for m in METHODS}
    if on == "loss":
        xs = {m: b["loss"].to_numpy(float) for m, b in branches.items()}
        target = max(x.min() for x in xs.values())   # the lowest loss both reach
    else:
        learn = _items(table, LEARNING)
        gain = (learn.correct_post.astype(float) - learn.correct_base.astype(float)).groupby(
            [learn.intervention, learn.lr]).mean()
        xs = {m: np.array([gain[m, lr] for lr in b["lr"]]) for m, b in branches.items()}
        target = min(x.max() for x in xs.values())   # the most learning both reach
    mixed = {}
    for m, b in branches.items():
        w = _weights(xs[m], target)
        if w is None:
            return Matched(on, float("nan"), False, {},
                           f"{_NAMES[m]}'s sweep does not reach {on} {target:.3g} (its range "
                           f"{xs[m].min():.3g} to {xs[m].max():.3g}): widen its learning rates")
        i, wt = w
        lrs = b["lr"].to_numpy(float)
        mixed[m] = ((lrs[i], 1.0 - wt),) if wt == 0.0 else ((lrs[i], 1.0 - wt), (lrs[i + 1], wt))
    return Matched(on, float(target), True, mixed, "")


def _at(values: dict, mix: tuple) -> np.ndarray:
    return sum(w * values[lr] for lr, w in mix)


def matched(table: pd.DataFrame, *, on: str = "loss", n_resamples: int = 2000, n_permutations: int = 9999,
            seed: int = 0) -> pd.DataFrame:
    """LoRA against full SFT at a matched final training loss (or a matched learning).

    The matched value is the lowest final loss both methods reach (``on="loss"``), or the highest train-fact QA
    accuracy gain both reach (``on="learning"``). Each method's per-fact outcomes there are interpolated linearly, in
    the matched quantity, between the two adjacent runs that bracket it, along the method's runs in order of learning
    rate up to its lowest final loss; the weights are taken as fixed.

    Parameters
    ----------
    table : `sweep`
    on : ``"loss"`` or ``"learning"``
    n_resamples, n_permutations, seed : of the paired bootstrap intervals and the sign-flip tests

    Returns
    -------
    Tidy DataFrame, one row per measure, LoRA minus full SFT, paired by fact: ``on``, ``target``, ``reached``,
    ``mixed`` (each method's runs and weights at the target), ``measure``: ``forgetting`` (mean P(true), held-out
    statement prompts; LoRA's forgetting minus full SFT's), ``forgetting_accuracy``, ``learning`` (train-fact QA
    accuracy) and ``kl`` (mean KL from the base, held-out statement prompts); then `dint.stats.ROW` (mean paired
    difference, paired bootstrap hull interval, sign-flip test; not estimable, with the reason, when a method's runs
    do not reach the target).
    """
    _check(table)
    if on not in ("loss", "learning"):
        raise ValueError(f"on={on!r}: choose 'loss' (final training loss) or 'learning' (train QA accuracy gain)")
    point = _match(table, on)
    labels = {"on": on, "target": point.target, "reached": point.reached,
              "mixed": "; ".join(f"{m}: " + " + ".join(f"{w:.2f} x lr {lr:.3g}" for lr, w in mix)
                                 for m, mix in point.runs.items())}
    # (measure, where, column, sign): sign +1 when LoRA minus full is lora - full of the column, -1 when full - lora
    spec = (("forgetting", FORGETTING, "p_true_post", -1), ("forgetting_accuracy", FORGETTING, "correct_post", -1),
            ("learning", LEARNING, "correct_post", 1), ("kl", FORGETTING, "kl", 1))
    rows = []
    for measure, where, column, sign in spec:
        if not point.reached:
            r = stats.Result.not_estimable(point.reason, method="mean paired difference at a matched " + on)
        else:
            v = _outcome(table, where, column)
            full = _at({lr: x for (m, lr), x in v.items() if m == "sft"}, point.runs["sft"])
            lora = _at({lr: x for (m, lr), x in v.items() if m == "sft_lora"}, point.runs["sft_lora"])
            x, y = (lora, full) if sign > 0 else (full, lora)
            r = mean_difference(x, y, n_resamples=n_resamples, n_permutations=n_permutations, rng=seed)
            r = stats.Result(r.statistic, r.confidence_interval, r.n,
                             f"LoRA - full SFT at matched {on} (interpolated per fact); {r.method}", r.pvalue,
                             reason=r.reason)
        rows.append(r.row(**labels, measure=measure))
    return pd.DataFrame(rows)


def best(table: pd.DataFrame, *, n_resamples: int = 2000, n_permutations: int = 9999, seed: int = 0) -> pd.DataFrame:
    """LoRA against full SFT, each at its best learning rate (its lowest final training loss), the same steps.

    Returns
    -------
    Tidy DataFrame: ``lr_sft``, ``lr_sft_lora``, ``measure``: ``learning`` (train-fact QA accuracy, LoRA minus full:
    McNemar exact, Newcombe interval), ``forgetting`` (LoRA's forgetting minus full SFT's in mean P(true) on the
    held-out statement prompts: paired bootstrap, sign-flip test) and ``kl`` (LoRA minus full mean KL from the base
    there); then `dint.stats.ROW`.
    """
    _check(table)
    meta = table[_RUN].drop_duplicates()
    lr = {m: float(_branch(meta, m)["lr"].iloc[-1]) for m in METHODS}
    kw = dict(n_resamples=n_resamples, n_permutations=n_permutations, rng=seed)

    def get(where, column, m):
        return _outcome(table, where, column)[m, lr[m]]

    measures = {
        "learning": proportions.mcnemar(get(LEARNING, "correct_post", "sft"), get(LEARNING, "correct_post", "sft_lora")),
        "forgetting": mean_difference(get(FORGETTING, "p_true_post", "sft"), get(FORGETTING, "p_true_post", "sft_lora"),
                                      **kw),
        "kl": mean_difference(get(FORGETTING, "kl", "sft_lora"), get(FORGETTING, "kl", "sft"), **kw),
    }
    return pd.DataFrame([r.row(lr_sft=lr["sft"], lr_sft_lora=lr["sft_lora"], measure=m) for m, r in measures.items()])


@dataclass(frozen=True)
class Comparison:
    """The sweep's runs and the comparisons of LoRA with full SFT."""

    runs: pd.DataFrame       # `runs`
    matched: pd.DataFrame    # `matched` at a matched final training loss, then at a matched learning
    best: pd.DataFrame       # `best`
    reason: str = ""         # why the profile was not swept (then every table is empty)

    @property
    def table(self) -> pd.DataFrame:
        """`matched` and `best` in one tidy table (``comparison`` a label column); empty when not swept."""
        if self.reason:
            return pd.DataFrame()
        return pd.concat([self.matched.assign(comparison="matched " + self.matched["on"]),
                          self.best.assign(comparison="best learning rate")], ignore_index=True)


def compare_methods(table: pd.DataFrame, *, n_resamples: int = 2000, n_permutations: int = 9999,
                    seed: int = 0) -> Comparison:
    """`runs`, `matched` (on the final loss and on learning) and `best` of one sweep."""
    kw = dict(n_resamples=n_resamples, n_permutations=n_permutations, seed=seed)
    both = pd.concat([matched(table, on="loss", **kw), matched(table, on="learning", **kw)], ignore_index=True)
    return Comparison(runs(table, **kw), both, best(table, **kw))


def not_swept(reason: str) -> Comparison:
    """An empty `Comparison` for a profile that is not swept, with the reason."""
    return Comparison(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), reason)


def numbers(comparison: Comparison) -> dict:
    """The numbers the paper quotes (empty when the profile was not swept).

    Returns
    -------
    dict: `dint.stats.Result` ``lora_matched_forgetting`` (LoRA minus full SFT forgetting at the matched final loss),
    ``lora_matched_forgetting_accuracy``, ``lora_matched_learning``, ``lora_matched_kl``,
    ``lora_learning_matched_forgetting`` (at a matched learning), ``lora_best_learning``, ``lora_best_forgetting``,
    ``lora_best_kl`` (each at its best learning rate), ``{method}_best_learning`` and ``{method}_best_forgetting`` (each
    method's own against the base); plain numbers ``lora_matched_loss``, ``lora_matched_reached`` (1 or 0) and
    ``{method}_best_lr``.
    """
    if comparison.reason:
        return {}
    out = {}
    m = comparison.matched
    for on, prefix in (("loss", "lora_matched_"), ("learning", "lora_learning_matched_")):
        t = m[m["on"] == on]
        keep = t if on == "loss" else t[t.measure == "forgetting"]
        out.update(stats.results(keep, prefix + "{measure}"))
    loss = m[m["on"] == "loss"].iloc[0]
    out["lora_matched_loss"] = float(loss["target"])
    out["lora_matched_reached"] = int(bool(loss["reached"]))
    out.update(stats.results(comparison.best, "lora_best_{measure}"))
    r = comparison.runs
    mine = r[r["best"].astype(bool) & r.measure.isin(["learning", "forgetting"])]
    out.update(stats.results(mine, "{intervention}_best_{measure}"))
    for method in METHODS:
        out[f"{method}_best_lr"] = float(comparison.best[f"lr_{method}"].iloc[0])
    return out


# ------------------------------------------------------------------------------ figure
_COLORS = {"sft": "C0", "sft_lora": "C1"}


def draw(comparison: Comparison, axes) -> None:
    """Three panels of the sweep on ``axes``: final training loss against the learning rate; learning (train-fact
    QA accuracy gain) and forgetting (base's minus the model's mean P(true), held-out statement prompts) against the
    final loss, each with its interval, solid up to each method's lowest loss and dotted (open markers) past it, the
    matched loss dashed. Draws, never computes."""
    if len(axes) != 3:
        raise ValueError(f"axes has {len(axes)} panels: pass three")
    if comparison.reason:
        for ax in axes:
            ax.text(0.5, 0.5, "not swept", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return
    r = comparison.runs
    target = comparison.matched
    target = target[target["on"] == "loss"]["target"].iloc[0]
    for method in METHODS:
        t = r[(r.intervention == method) & (r.measure == "learning")].sort_values("lr")
        axes[0].plot(t["lr"], t["loss"], "o-", color=_COLORS[method], label=_NAMES[method], ms=3)
        for ax, measure in ((axes[1], "learning"), (axes[2], "forgetting")):
            t = r[(r.intervention == method) & (r.measure == measure)].sort_values("lr")
            cut = int(np.flatnonzero(t["best"].to_numpy(bool))[0]) + 1
            # solid up to the lowest loss (the runs the comparison interpolates), dotted past it
            for part, style, face in ((t.iloc[:cut], "o-", _COLORS[method]), (t.iloc[cut - 1:], "o:", "none")):
                ax.errorbar(part["loss"], part["estimate"],
                            yerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]], fmt=style,
                            color=_COLORS[method], mfc=face, ms=3, capsize=2)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("learning rate")
    axes[0].set_ylabel("final training loss")
    plot.legend(axes[0])
    axes[1].set_ylabel("learning: Δ accuracy,\ntrain facts (QA)")
    axes[2].set_ylabel("forgetting: Δ P(true),\nheld-out (statement)")
    for ax in axes[1:]:
        ax.set_xlabel("final training loss")
        ax.axhline(0.0, color="0.6", lw=0.6)
        if np.isfinite(target):
            ax.axvline(target, color="0.3", ls="--", lw=0.8)
