"""Accuracy against FLOPs: answer matrices, per-item outcomes, points with intervals, frontiers, paired tests.

The lower-level pieces of notebook 06 (`dint.analyses.resources`). Every point is a *policy* that answers the
held-out questions, with the compute it cost: ``total FLOPs = one-time post-training FLOPs + inference FLOPs
over the held-out query set`` (pretraining is shared by every point and left out); inference is 2·N·D per
forward token (a store look-up costs 0 FLOPs).

A model's answer distributions become an `Answers` matrix (`answer_matrix`, with the mass outside the
candidate set as a last pseudo-candidate: `with_outside`), answered greedily (`greedy`, `p_true`) or sampled
(`sample_index`), each draw costing `draw_tokens`. Policies give per-item *outcomes* — one row per (family,
point, fact) with ``p_correct`` (probability the returned answer is right; 0/1 for a deterministic answer),
``p_abstain`` and ``cost`` (inference FLOPs spent on the item) (`outcomes`) — and outcomes give points in the
tidy form of `dint.stats.ROW` (`accuracy_cost`, and `rl_points` for the RL sweep's checkpoints), Pareto
frontiers (`pareto`) and paired tests (`paired_difference`, `trend`). One cost footing per deployed query:
`per_query` amortises one-time FLOPs (post-training, a store's build: `reading_flops`) over the deployed
queries, and `frontier_mixture` reads a family's frontier at a given compute, interpolated in log FLOPs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .. import compare, stats
from ..stats import proportions
from ..stats.resampling import mean_difference

__all__ = [
    "OUTCOME_COLUMNS",
    "RL_METHOD",
    "Answers",
    "accuracy_cost",
    "answer_matrix",
    "draw_tokens",
    "frontier_mixture",
    "greedy",
    "outcomes",
    "p_true",
    "paired_difference",
    "pareto",
    "per_query",
    "reading_flops",
    "rl_points",
    "sample_index",
    "trend",
    "with_outside",
]

OUTCOME_COLUMNS = ["family", "point", "fact", "p_correct", "p_abstain", "cost", "train_flops"]
# the method of an RL checkpoint's accuracy (`rl_points`)
RL_METHOD = "mean P(true) on the sweep's evaluation prompts, conservative Wilson interval"


# ------------------------------------------------------------------------------ answers
@dataclass(frozen=True)
class Answers:
    """A model's answer distributions over items, with the mass outside each candidate set.

    Attributes
    ----------
    fact : (m,) fact ids, sorted
    p : (m, k + 1) probability of each candidate (0 where padded); the last column is the mass
        outside the candidate set (a draw that is no candidate: never verified, never right)
    correct : (m, k + 1) bool, the true value's position (the last column is never true)
    candidates : m tuples of candidate answers, in column order
    """

    fact: np.ndarray
    p: np.ndarray
    correct: np.ndarray
    candidates: list


def with_outside(x, fill) -> np.ndarray:
    """``x`` (m, k) with one column appended for the draws outside the candidate set, (m, k + 1)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be an (m, k) array over candidates, got shape {x.shape}")
    col = np.broadcast_to(np.asarray(fill, dtype=x.dtype if x.dtype != bool else bool), (len(x),))
    return np.column_stack([x, col])


def answer_matrix(scores: pd.DataFrame, facts, *, form: str = "qa") -> Answers:
    """The answer distributions of a `score_world` table on ``facts`` (ids), one prompt form.

    The candidate-set distribution ``p_set`` is scaled by ``1 − mass_outside`` and the outside
    mass becomes a last pseudo-candidate, so that sampling from ``p`` wastes the draws that the
    model spends outside the set.
    """
    need = {"fact", "form", "candidate", "answer", "p_set", "mass_outside", "is_true"}
    if not isinstance(scores, pd.DataFrame) or not need <= set(scores.columns):
        raise ValueError(f"scores must be a score_world table with columns {sorted(need)}")
    facts = np.unique(np.asarray(facts))
    s = scores[(scores["form"] == form) & scores["fact"].isin(facts)]
    if s.empty or set(s["fact"]) != set(facts):
        missing = [int(f) for f in sorted(set(facts) - set(s["fact"]))[:5]]
        raise ValueError(f"scores has no {form!r} rows for facts {missing}; pass facts that were scored")
    items, logp, true = compare.distributions(s)
    outside = s.groupby("fact", sort=True)["mass_outside"].first().to_numpy(float)
    p = np.exp(logp) * (1.0 - outside)[:, None]
    s = s.sort_values(["fact", "candidate"])
    candidates = [tuple(g["answer"]) for _, g in s.groupby("fact", sort=True)]
    return Answers(fact=items["fact"].to_numpy(), p=with_outside(p, outside), correct=with_outside(true, False),
                   candidates=candidates)


def greedy(answers: Answers, tokens) -> tuple[np.ndarray, np.ndarray]:
    """The greedy answer per item: whether its top candidate is right, (m,) bool, and the tokens
    of answering it, (m,) from ``tokens`` (m, k + 1) (e.g. `draw_tokens`)."""
    tokens = np.asarray(tokens)
    if tokens.shape != answers.p.shape:
        raise ValueError(f"tokens must have the shape of answers.p {answers.p.shape}, got {tokens.shape}")
    top = answers.p[:, :-1].argmax(1)
    rows = np.arange(len(top))
    return answers.correct[rows, top], tokens[rows, top]


def p_true(answers: Answers) -> np.ndarray:
    """Candidate-set probability of the true value per item, (m,) (the accuracy of one sampled answer
    among the candidates)."""
    inside = 1.0 - answers.p[:, -1]
    return (answers.p * answers.correct).sum(1) / np.where(inside > 0, inside, 1.0)


def draw_tokens(tokenizer, prompts, candidates) -> np.ndarray:
    """Forward tokens of one sampled answer per (item, candidate): prompt + answer + eos.

    Returns an (m, k + 1) int array (0 where padded); the last column, a draw outside the
    candidate set, is charged as the item's longest candidate. Counted without sharing the
    prompt's forward pass between draws (an upper bound for batched sampling with a KV cache).
    """
    prompts = list(prompts)
    if len(prompts) != len(candidates):
        raise ValueError(f"prompts has {len(prompts)} items but candidates {len(candidates)}; pass them paired")
    k = max(len(c) for c in candidates)

    def enc(texts):
        return [len(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    out = np.zeros((len(prompts), k + 1), dtype=np.int64)
    for i, (n_prompt, cands) in enumerate(zip(enc(prompts), candidates)):
        lengths = np.asarray(enc(cands)) + n_prompt + 1
        out[i, :len(cands)] = lengths
        out[i, k] = lengths.max()
    return out


def sample_index(p, *, rng) -> np.ndarray:
    """One candidate index drawn per row of ``p`` (m, k) (rows renormalised), from ``rng``."""
    p = np.asarray(p, float)
    if p.ndim != 2 or (p < 0).any() or not (p.sum(1) > 0).all():
        raise ValueError("p must be an (m, k) array of non-negative weights with a positive sum per row")
    cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
    u = np.random.default_rng(rng).random(len(p))
    return np.minimum((cdf < u[:, None]).sum(1), p.shape[1] - 1)


# ------------------------------------------------------------------------------ outcomes and points
def outcomes(family: str, point, fact, p_correct, *, cost, train_flops: float, p_abstain=0.0) -> pd.DataFrame:
    """Per-item outcomes of one policy in the tidy format of `accuracy_cost` (`OUTCOME_COLUMNS`).

    Parameters
    ----------
    family, point : labels (e.g. ``"training"``, ``"3 ep, 100%"``)
    fact : (m,) fact ids of the items
    p_correct : (m,) probability that the returned answer is right (0/1 for a greedy answer)
    cost : (m,) or scalar inference FLOPs spent on each item
    train_flops : one-time training FLOPs of the models the policy uses
    p_abstain : (m,) or scalar probability of abstaining
    """
    fact = np.asarray(fact)
    m = len(fact)
    cols = {"p_correct": p_correct, "p_abstain": p_abstain, "cost": cost}
    cols = {k: np.broadcast_to(np.asarray(v, float), (m,)) for k, v in cols.items()}
    for k, v in cols.items():
        if not np.isfinite(v).all() or (v < 0).any() or (k != "cost" and (v > 1 + 1e-9).any()):
            raise ValueError(f"{k} must be finite, >= 0{'' if k == 'cost' else ' and <= 1'} (one value per item)")
    if not (np.isfinite(train_flops) and train_flops >= 0):
        raise ValueError(f"train_flops={train_flops!r}: must be a finite number >= 0")
    return pd.DataFrame({"family": family, "point": str(point), "fact": fact, **cols,
                         "train_flops": float(train_flops)})[OUTCOME_COLUMNS]


def accuracy_cost(table: pd.DataFrame, *, n_resamples: int = 2000, rng: int = 0) -> pd.DataFrame:
    """One row per (family, point): accuracy with its interval, coverage, and total FLOPs.

    Parameters
    ----------
    table : `outcomes` rows (several points and families concatenated)

    Returns
    -------
    DataFrame: ``family``, ``point``, then the columns `dint.stats.ROW`: the accuracy (mean P(correct);
    abstentions count as not correct) as ``estimate`` with ``ci_low`` / ``ci_high`` (Wilson when every
    outcome is 0/1, else the bootstrap hull interval of `stats.bootstrap_mean`, cut to [0, 1]; no test:
    ``pvalue`` NaN), ``n`` items and the interval's ``method``; then ``coverage`` (1 − mean P(abstain)),
    ``selective_accuracy`` (correct among answered), ``train_flops``, ``inference_flops`` (summed
    over the items) and ``total_flops``; plus any extra columns constant within a point.
    """
    missing = sorted(set(OUTCOME_COLUMNS) - set(getattr(table, "columns", ())))
    if missing:
        raise ValueError(f"table lacks columns {missing}: build it with flops.outcomes")
    extra = [c for c in table.columns if c not in OUTCOME_COLUMNS]
    rows = []
    for (family, point), g in table.groupby(["family", "point"], sort=False):
        x = g["p_correct"].to_numpy(float)
        if np.isin(x, (0.0, 1.0)).all():
            r = stats.proportion(int(x.sum()), len(x))
        else:
            r = stats.bootstrap_mean(x, n_resamples=n_resamples, rng=rng)
        low, high = max(0.0, r.confidence_interval.low), min(1.0, r.confidence_interval.high)
        answered = float((1 - g["p_abstain"]).sum())
        inference = float(g["cost"].sum())
        train = float(g["train_flops"].iloc[0])
        accuracy = stats.Result(r.statistic, stats.ConfidenceInterval(low, high), len(g), r.method, reason=r.reason)
        rows.append({**accuracy.row(family=family, point=point), "coverage": answered / len(g),
                     "selective_accuracy": float(x.sum()) / answered if answered > 0 else float("nan"),
                     "train_flops": train, "inference_flops": inference, "total_flops": train + inference,
                     **{c: g[c].iloc[0] for c in extra if g[c].nunique(dropna=False) == 1}})
    return pd.DataFrame(rows)


def pareto(flops, accuracy) -> np.ndarray:
    """Whether each point is on the Pareto frontier: no other point is as cheap and as accurate
    with one of the two strictly better. (n,) bool."""
    x, y = np.asarray(flops, float), np.asarray(accuracy, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("flops and accuracy must be 1-D arrays of the same length")
    order = np.lexsort((-y, x))                       # cheapest first, the most accurate first at ties
    keep = np.zeros(len(x), dtype=bool)
    best = -np.inf
    for i in order:
        if y[i] > best:
            keep[i], best = True, y[i]
    return keep


def rl_points(sweep: pd.DataFrame, *, start_flops: float, rollout_ratio: float, n_eval: int,
              inference_flops: float, family: str = "RL checkpoints (β sweep)") -> pd.DataFrame:
    """RL checkpoints of `experiments.rl_sweep` as points in `accuracy_cost`'s format.

    Parameters
    ----------
    sweep : `rl_sweep` rows (``beta``, ``step``, ``gold_exact``, ``train_flops`` of the whole run)
    start_flops : training FLOPs before RL (the SFT start and the reward model)
    rollout_ratio : the run's rollout FLOPs (generation, policy and reference log-probs, reward
        model) per training FLOP, e.g. the profile's rlhf record's inference / train FLOPs (the
        sweep stores only the training FLOPs)
    n_eval : held-out prompts each checkpoint is evaluated on
    inference_flops : FLOPs of answering the held-out query set once
    family : the points' family label

    Returns
    -------
    DataFrame in the form of `accuracy_cost` with ``beta`` and ``step``: the ``estimate`` is the
    checkpoint's mean probability of the true value (the accuracy of one sampled answer), with
    a conservative interval: the Wilson interval of accuracy·n_eval successes in n_eval trials —
    a value in [0, 1] with mean μ has variance at most μ(1 − μ), that of a 0/1 outcome. The FLOPs
    of a checkpoint are the run's, scaled by step / steps (RL's cost is linear in steps).
    """
    need = {"beta", "step", "gold_exact", "train_flops"}
    if not need <= set(getattr(sweep, "columns", ())):
        raise ValueError(f"sweep lacks columns {sorted(need - set(sweep.columns))}: pass experiments.rl_sweep(P)")
    if n_eval < 1:
        raise ValueError(f"n_eval={n_eval!r}: must be >= 1")
    rows = []
    for beta, g in sweep.groupby("beta", sort=True):
        steps = g["step"].max()
        for r in g.itertuples():
            rl = r.train_flops * (1 + rollout_ratio) * r.step / steps
            low, high = proportion_confint(r.gold_exact * n_eval, n_eval, alpha=0.05, method="wilson")
            train = start_flops + rl
            accuracy = stats.Result(r.gold_exact, stats.ConfidenceInterval(low, high), n_eval, RL_METHOD)
            rows.append({**accuracy.row(family=family, point=f"beta {beta:g}, step {r.step}"), "coverage": 1.0,
                         "selective_accuracy": r.gold_exact, "train_flops": train,
                         "inference_flops": inference_flops, "total_flops": train + inference_flops,
                         "beta": beta, "step": r.step})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ tests
def paired_difference(x, y, *, n_resamples: int = 2000, n_permutations: int = 9999, rng: int = 0) -> stats.Result:
    """Mean of ``x − y`` over paired items, with its interval and a two-sided test of no difference.

    0/1 outcomes on both sides: McNemar's exact test with Newcombe's interval
    (`proportions.mcnemar`). Otherwise (probabilities): the paired bootstrap hull interval and the
    sign-flip permutation p-value (`dint.stats.resampling.mean_difference`).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("x and y must be 1-D arrays of the same length >= 2 (paired by item)")
    if np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all():
        return proportions.mcnemar(y, x)
    return mean_difference(x, y, n_resamples=n_resamples, n_permutations=n_permutations, rng=rng)


def trend(table: pd.DataFrame, *, x: str, y: str, by: str = "fact", n_resamples: int = 2000,
          n_permutations: int = 9999, rng: int = 0) -> stats.Result:
    """Mean within-cluster least-squares slope of ``y`` on ``x``, with its interval and test.

    Each cluster (e.g. a fact seen by every training run) gives one slope; clusters are
    independent, so the mean slope gets the bootstrap hull interval and the sign-flip test of
    `paired_difference` against 0. Clusters whose ``x`` does not vary are dropped.
    """
    for c in (x, y, by):
        if c not in table.columns:
            raise ValueError(f"table has no column {c!r}")
    slopes = []
    for _, g in table.groupby(by, sort=True):
        gx, gy = g[x].to_numpy(float), g[y].to_numpy(float)
        if np.ptp(gx) > 0:
            slopes.append(np.polyfit(gx, gy, 1)[0])
    if len(slopes) < 2:
        raise ValueError(f"need at least 2 clusters in which {x!r} varies, got {len(slopes)}")
    slopes = np.asarray(slopes)
    r = mean_difference(slopes, np.zeros_like(slopes), n_resamples=n_resamples, n_permutations=n_permutations,
                        rng=rng)
    return stats.Result(r.statistic, r.confidence_interval, r.n, f"mean per-{by} slope of {y} on {x}; {r.method}",
                        r.pvalue, reason=r.reason)


# ------------------------------------------------------------------------------ one cost footing
def reading_flops(tokenizer, texts, n_params: int) -> float:
    """FLOPs of one forward pass of an ``n_params`` model over ``texts``: 2·N per token (e.g. a store's build,
    reading the corpus once to take down what it states)."""
    if n_params < 1:
        raise ValueError(f"n_params={n_params!r}: give the model's parameter count (>= 1)")
    texts = list(texts)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    return 2.0 * n_params * float(sum(len(x) for x in ids))


def per_query(one_time, inference, queries) -> np.ndarray:
    """FLOPs per deployed query: one-time FLOPs (post-training, a store's build) amortised over ``queries``
    deployed queries, plus the inference FLOPs of one query."""
    q = np.asarray(queries, float)
    if (q <= 0).any() or not np.isfinite(q).all():
        raise ValueError(f"queries={queries!r}: give a number of deployed queries > 0")
    return np.asarray(one_time, float) / q + np.asarray(inference, float)


def frontier_mixture(cost, accuracy, at):
    """A family's frontier at compute ``at``: the two Pareto points that bracket it and the upper one's weight.

    The frontier (`pareto`) as a function of compute is linear in log10 FLOPs between its points and flat
    beyond its most accurate point, so its value at ``at`` is ``(1 − w)·accuracy[lo] + w·accuracy[hi]``; per
    item the same mixture of the two points' outcomes gives a paired comparison at equal compute.

    Parameters
    ----------
    cost : (n,) FLOPs of each point (> 0)
    accuracy : (n,) or (R, n) each point's accuracy (R: e.g. bootstrap resamples)
    at : scalar, or (R,), the compute to read the frontier at

    Returns
    -------
    lo, hi : int arrays (R,) (scalars for 1-D ``accuracy``): the bracketing points (``lo == hi`` where the
        frontier is flat: beyond its most accurate point); -1 where ``at`` is below every point's cost
    w : float array, the weight of ``hi`` (0 where flat, NaN below every point)
    """
    cost = np.asarray(cost, float)
    acc = np.asarray(accuracy, float)
    one = acc.ndim == 1
    acc = np.atleast_2d(acc)
    if cost.ndim != 1 or acc.shape[1] != len(cost) or len(cost) == 0 or (cost <= 0).any():
        raise ValueError(f"cost must be (n,) FLOPs > 0 and accuracy (n,) or (R, n); got {cost.shape}, {acc.shape}")
    at = np.broadcast_to(np.asarray(at, float), (len(acc),))
    order = np.lexsort((-acc.mean(0), cost))               # cheapest first
    c, a = cost[order], acc[:, order]                       # (n,), (R, n)
    below = c[None, :] <= at[:, None]                       # (R, n)
    masked = np.where(below, a, -np.inf)
    lo = masked.argmax(1)                                   # the most accurate point within the compute
    best = masked.max(1)
    above = (c[None, :] > at[:, None]) & (a > best[:, None])
    has_hi = above.any(1)
    hi = np.where(has_hi, above.argmax(1), lo)              # the next Pareto point: first cheapest better one
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(has_hi, (np.log10(at) - np.log10(c[lo])) / (np.log10(c[hi]) - np.log10(c[lo])), 0.0)
    none = ~below.any(1)
    lo, hi = np.where(none, -1, order[lo]), np.where(none, -1, order[hi])
    w = np.where(none, np.nan, np.clip(w, 0.0, 1.0))
    return (int(lo[0]), int(hi[0]), float(w[0])) if one else (lo, hi, w)
