"""Cost 4 without the answer key (notebook 06): verification and retrieval with only what training sees,
against the training frontier at equal compute per deployed query.

The reference store of `dint.analyses.resources`'s exact verifier and of the RAG policy holds the world's true
value of every fact, held-out and never-stated facts included, and costs nothing to build: an *oracle*, whose
gain over training measures the information in its answer key and is an upper bound on what checking or
retrieving can add. The *corpus store* (`dint.interventions.retrieval.corpus_store`) holds what training sees
and nothing more: the train facts' true values and the corpus's majority value of every other fact it states.
Its build is charged as one forward pass of the post-trained model over the corpus and the demonstrations
(`store_flops`).

One cost footing: a policy answering ``queries`` deployed queries costs, per query, its one-time FLOPs
(post-training and a store's build) over ``queries`` plus its mean inference FLOPs per held-out question
(`flops.per_query`). The training points (the base, the SFT grid, RLHF) form a frontier at each number of
queries, linear in log10 FLOPs between its Pareto points and flat beyond the most accurate one
(`flops.frontier_mixture`); a policy is compared with the frontier *at its own per-query FLOPs*, paired by item
(`equal_flops`). For a verification family the budget is the largest whose per-query FLOPs at ``queries`` are
at most the most expensive training point's, chosen by cost alone. `curves` gives the comparison at every
number of deployed queries, with a bootstrap band, and `crossover` the number at which it changes sign: where
the policy and training cost the same for equal accuracy.

In notebook order: `store_flops` and `retrieval` (the RAG policy over the corpus store, its outcomes), then
`compare` (`Parity`), `numbers`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import models, stats
from ..interventions import data as demos_data
from ..interventions import retrieval as rag_store
from ..pipeline import artifacts
from ..pipeline.config import Profile
from .flops import draw_tokens, frontier_mixture, greedy, outcomes, paired_difference, per_query, reading_flops
from .flops import OUTCOME_COLUMNS, answer_matrix

__all__ = ["ARMS", "CORPUS_RAG", "CORPUS_VERIFY", "QUERIES", "Parity", "compare", "crossover", "curves",
           "equal_flops", "numbers", "retrieval", "store_flops"]

QUERIES = 10_000                                    # the registered number of deployed queries (Q0)
CORPUS_VERIFY = "verify: corpus store"              # the family of `resources.verification` on the corpus store
CORPUS_RAG = "retrieval (RAG), corpus store"        # the family of `retrieval`
# the arms compared with the training frontier: key -> (family, whether it chooses a budget, information)
ARMS = {"parity_verify": (CORPUS_VERIFY, True, "parity"), "parity_rag": (CORPUS_RAG, False, "parity"),
        "oracle_verify": ("verify: exact", True, "oracle"), "oracle_rag": ("retrieval (RAG)", False, "oracle")}
# the numbers' keys of each arm's comparison at the registered number of queries
_KEYS = {"parity_verify": "parity_verify_vs_training", "parity_rag": "parity_rag_vs_training",
         "oracle_verify": "oracle_verify_vs_training_equal", "oracle_rag": "oracle_rag_vs_training_equal"}
_CROSSOVER_KEYS = {"parity_verify": "parity_crossover_log10_queries",
                   "parity_rag": "parity_rag_crossover_log10_queries",
                   "oracle_verify": "oracle_crossover_log10_queries",
                   "oracle_rag": "oracle_rag_crossover_log10_queries"}
TRAINING = ("SFT (epochs × data)", "RLHF")          # `resources.SFT` and RLHF: the training points


def store_flops(world, tokenizer, n_params: int) -> float:
    """The corpus store's build: one forward pass of the post-trained model over the pretraining corpus and the
    train demonstrations (2·N per token), the cost of taking down what they state with the model (exact
    counting is cheaper, so this overstates it)."""
    demos = demos_data.sft_demos(world)
    return reading_flops(tokenizer, list(world.corpus) + (demos.prompt + demos.completion).tolist(), n_params)


def retrieval(P: Profile, inputs, *, build_flops: float) -> pd.DataFrame:
    """The RAG policy (the profile's reader and retriever) deployed over the corpus store, greedy on the held-out
    questions: its `flops.outcomes` (family `CORPUS_RAG`), charged the reader's training and the store's build
    (``build_flops``) once, and per question its prompt with the retrieved document plus the retriever's FLOPs.

    Parameters
    ----------
    P : the profile
    inputs : `resources.load`'s
    build_flops : `store_flops`

    On real facts (``P.real``) there is no corpus to count: no rows.
    """
    if P.real:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    policy = inputs.rag_policy.with_store(rag_store.corpus_store(inputs.world))
    record = inputs.records["rag"]
    before = dict(policy.retriever.cost)
    with models.torch_threads(P.interventions.threads):   # the profile's threads: the same numbers anywhere
        scores = artifacts.score_world(policy.model, policy.tokenizer,
                                       dataclasses.replace(inputs.world, facts=inputs.heldout), P, route=policy.prompts)
    queries = policy.retriever.cost["queries"] - before["queries"]
    retrieval_flops = (policy.retriever.cost["flops"] - before["flops"]) / max(1, queries)
    answers = answer_matrix(scores, inputs.heldout.fact)
    routed = policy.prompts(inputs.prompts)
    correct, tokens = greedy(answers, draw_tokens(inputs.tokenizer, routed.prompt, answers.candidates))
    return outcomes(CORPUS_RAG, "rag", answers.fact, correct, cost=2 * inputs.n_params * tokens + retrieval_flops,
                    train_flops=record.train_flops + build_flops)


# ------------------------------------------------------------------------------ the comparison
def _points(table: pd.DataFrame, families) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """The points of ``families`` in ``table`` (`flops.outcomes` rows): labels, one-time FLOPs (n,),
    inference FLOPs per query (n,) and per-item P(correct) (n, m), items sorted by fact."""
    labels, one_time, inference, items = [], [], [], []
    for (family, point), g in table[table.family.isin(families)].groupby(["family", "point"], sort=False):
        g = g.sort_values("fact")
        labels.append((family, point))
        one_time.append(float(g.train_flops.iloc[0]))
        inference.append(float(g.cost.mean()))
        items.append(g.p_correct.to_numpy(float))
    if not labels:
        raise ValueError(f"table has no points of {list(families)}: pass `Frontiers.outcomes`")
    return labels, np.array(one_time), np.array(inference), np.vstack(items)


def _choose(labels, one_time, inference, budgeted: bool, ceiling: float) -> int:
    """The arm's point: the largest budget whose per-query FLOPs are at most ``ceiling`` (the most expensive
    training point's), else the cheapest; an arm without budgets has one point."""
    if not budgeted:
        return 0
    budget = np.array([float(p.removeprefix("B=")) for _, p in labels])
    cost = one_time + inference
    ok = cost <= ceiling
    return int(np.flatnonzero(ok)[budget[ok].argmax()]) if ok.any() else int(cost.argmin())


@dataclass(frozen=True)
class Parity:
    """The arms against the training frontier on one cost footing.

    Attributes
    ----------
    table : one row per arm (`ARMS`): ``arm``, ``family``, ``information`` (parity or oracle), ``point`` (its
        budget), ``flops_per_query``, ``training`` (the frontier's bracketing points and weight), ``beyond``
        (the arm costs more than every training point: the training side is the frontier's most accurate
        point), then the columns `dint.stats.ROW` of the paired difference at ``queries``
    curves : one row per (arm, log10 deployed queries): the equal-FLOPs difference with its pointwise
        percentile bootstrap band (``estimate``, ``ci_low``, ``ci_high``)
    crossovers : one row per arm: log10 of the crossover's deployed queries, the columns `dint.stats.ROW`
    queries : the deployed queries of ``table`` (the registered `QUERIES`)
    """

    table: pd.DataFrame
    curves: pd.DataFrame
    crossovers: pd.DataFrame
    queries: float


def equal_flops(table: pd.DataFrame, family: str, point: str, *, queries: float, training=TRAINING,
                n_resamples: int = 2000, seed: int = 0) -> tuple[stats.Result, dict]:
    """One point of ``family`` against the training frontier at its per-query FLOPs, paired by item.

    Returns the paired difference (`flops.paired_difference`; its method names the training side) and the
    comparison's details: ``flops_per_query``, ``training`` (the bracketing points and weight), ``beyond``.
    """
    labels, one_time, inference, items = _points(table, training)
    arm = table[(table.family == family) & (table.point == point)].sort_values("fact")
    if arm.empty:
        raise ValueError(f"table has no point {point!r} of family {family!r}")
    facts = np.sort(table[table.family.isin(training)].fact.unique())
    if not np.array_equal(arm.fact.to_numpy(), facts):
        raise ValueError(f"{family} {point} answers other items than the training points; score the same facts")
    cost = per_query(one_time, inference, queries)
    at = float(per_query(arm.train_flops.iloc[0], arm.cost.mean(), queries))
    lo, hi, w = frontier_mixture(cost, items.mean(1), at)
    if lo < 0:
        return stats.Result.not_estimable(f"{family} {point} costs less per query than every training point",
                                          n=len(arm)), {"flops_per_query": at, "training": "", "beyond": False}
    mixture = (1 - w) * items[lo] + w * items[hi]
    beyond = bool(at > cost.max())
    name = (f"{labels[lo][1]}" if lo == hi else f"{labels[lo][1]} ⟷ {labels[hi][1]} (w = {w:.2f})")
    r = paired_difference(arm.p_correct.to_numpy(float), mixture, n_resamples=n_resamples, rng=seed)
    where = "beyond the training frontier: its most accurate point" if beyond else "the training frontier interpolated"
    r = dataclasses.replace(r, method=f"{r.method}; {family} {point} minus {where} ({name}) at "
                                      f"{at:.3g} FLOPs per query, {queries:g} deployed queries")
    return r, {"flops_per_query": at, "training": name, "beyond": beyond}


def crossover(x, d) -> float:
    """The first sign change of ``d`` along ``x`` (linear between grid points); NaN if none."""
    x, d = np.asarray(x, float), np.asarray(d, float)
    s = np.sign(d)
    change = np.flatnonzero((s[:-1] != 0) & (s[1:] != s[:-1]))
    if not len(change):
        return float(0 if s[0] == 0 else np.nan) if len(s) else float("nan")
    i = change[0]
    return float(x[i] + (x[i + 1] - x[i]) * d[i] / (d[i] - d[i + 1]))


def curves(table: pd.DataFrame, family: str, point: str, *, log10_queries, training=TRAINING,
           n_resamples: int = 2000, seed: int = 0, confidence_level: float = 0.95) -> tuple[pd.DataFrame, stats.Result]:
    """The equal-FLOPs difference of one point against the training frontier at every number of deployed
    queries, and its crossover.

    The difference is the point's accuracy minus the frontier's at the point's per-query FLOPs; resampling the
    items (percentile bootstrap, the frontier refitted on each resample; the FLOPs per query held at their
    means) gives its pointwise band and the crossover's interval. A resample whose difference keeps one sign
    over the grid has its crossover beyond the grid's end on that side; the interval is cut at the grid's ends.

    Returns
    -------
    DataFrame: ``log10_queries``, ``estimate``, ``ci_low``, ``ci_high``; and the crossover (log10 deployed
    queries) as a `dint.stats.Result`, not estimable (with its reason) when the difference keeps one sign.
    """
    x = np.asarray(log10_queries, float)
    if x.ndim != 1 or len(x) < 2 or (np.diff(x) <= 0).any():
        raise ValueError("log10_queries must be an increasing grid of at least 2 values")
    labels, one_time, inference, items = _points(table, training)
    arm = table[(table.family == family) & (table.point == point)].sort_values("fact")
    v = arm.p_correct.to_numpy(float)
    m = len(v)
    rng = np.random.default_rng(seed)
    counts = np.vstack([np.ones(m), np.stack([np.bincount(rng.integers(m, size=m), minlength=m)
                                              for _ in range(n_resamples)])])           # (1 + R, m)
    acc = counts @ items.T / m                                                            # (1 + R, n)
    v_mean = counts @ v / m                                                               # (1 + R,)
    rows_ = np.arange(len(acc))
    d = np.empty((len(x), len(acc)))
    for i, lq in enumerate(x):
        q = 10.0 ** lq
        cost = per_query(one_time, inference, q)
        at = float(per_query(arm.train_flops.iloc[0], arm.cost.mean(), q))
        lo, hi, w = frontier_mixture(cost, acc, at)
        frontier = np.where(lo < 0, np.nan, (1 - w) * acc[rows_, lo] + w * acc[rows_, hi])
        d[i] = v_mean - frontier
    tail = (1 - confidence_level) / 2
    band = np.nanquantile(d[:, 1:], [tail, 1 - tail], axis=1)
    curve = pd.DataFrame({"log10_queries": x, "estimate": d[:, 0], "ci_low": band[0], "ci_high": band[1]})
    method = (f"log10 deployed queries at which {family} {point} and the training frontier are equally accurate at "
              f"equal FLOPs per query; percentile bootstrap over items ({n_resamples}), cut at the grid "
              f"[{x[0]:g}, {x[-1]:g}]")
    est = crossover(x, d[:, 0])
    if np.isnan(est):
        side = "ahead of" if np.nanmean(d[:, 0]) > 0 else "behind"
        return curve, stats.Result.not_estimable(
            f"{family} {point} is {side} the training frontier at every number of deployed queries from "
            f"10^{x[0]:g} to 10^{x[-1]:g}", n=m, method=method)
    first = np.sign(d[0, 1:])
    boot = np.array([crossover(x, d[:, j]) for j in range(1, len(acc))])
    # no sign change in a resample: its crossover lies beyond the end of the grid on the side its sign says
    beyond = np.where(first == np.sign(d[0, 0]), np.inf, -np.inf)
    boot = np.clip(np.where(np.isnan(boot), beyond, boot), x[0], x[-1])
    low, high = np.quantile(boot, [tail, 1 - tail])
    return curve, stats.Result(est, stats.ConfidenceInterval(float(low), float(high)), m, method)


def compare(table: pd.DataFrame, *, queries: float = QUERIES, log10_queries=np.arange(1.0, 12.0001, 0.05),
            training=TRAINING, n_resamples: int = 2000, seed: int = 0) -> Parity:
    """Every arm of `ARMS` present in ``table`` against the training frontier at equal FLOPs per query.

    Parameters
    ----------
    table : `resources.Frontiers.outcomes` with the corpus families (`CORPUS_VERIFY` from
        `resources.verification`, `CORPUS_RAG` from `retrieval`)
    queries : deployed queries the comparison is made at (the registered `QUERIES`)
    log10_queries : the grid of `curves`
    training : the training families
    n_resamples, seed : of the bootstrap intervals and permutation tests
    """
    if not (np.isfinite(queries) and queries > 0):
        raise ValueError(f"queries={queries!r}: give a number of deployed queries > 0")
    _, t_one, t_inf, _ = _points(table, training)
    ceiling = float(per_query(t_one, t_inf, queries).max())
    rows, curve_rows, crossing = [], [], []
    for key, (family, budgeted, information) in ARMS.items():
        if family not in set(table.family):
            continue
        labels, one_time, inference, _ = _points(table, [family])
        point = labels[_choose(labels, one_time / queries, inference, budgeted, ceiling)][1]
        r, details = equal_flops(table, family, point, queries=queries, training=training,
                                 n_resamples=n_resamples, seed=seed)
        rows.append(r.row(arm=key, family=family, information=information, point=point, **details))
        curve, cross = curves(table, family, point, log10_queries=log10_queries, training=training,
                              n_resamples=n_resamples, seed=seed)
        curve_rows.append(curve.assign(arm=key, family=family, information=information, point=point))
        crossing.append(cross.row(arm=key, family=family, point=point))
    return Parity(table=pd.DataFrame(rows), curves=pd.concat(curve_rows, ignore_index=True),
                  crossovers=pd.DataFrame(crossing), queries=float(queries))


def numbers(parity: Parity, *, build_flops: float) -> dict:
    """The numbers the paper quotes: per arm its paired difference at the registered queries
    (``parity_verify_vs_training``, ``parity_rag_vs_training``, ``oracle_verify_vs_training_equal``,
    ``oracle_rag_vs_training_equal``) with ``<arm>_point``, ``<arm>_training``, ``<arm>_flops_per_query`` and
    ``<arm>_beyond_frontier``; the crossovers (``parity_crossover_log10_queries`` and the other arms'
    ``<arm>_crossover_log10_queries``); ``parity_queries`` and ``parity_store_build_flops``."""
    out = {}
    for r in parity.table.to_dict("records"):
        arm = r["arm"]
        out[_KEYS[arm]] = stats.Result.from_row(r)
        out[f"{arm}_point"], out[f"{arm}_training"] = r["point"], r["training"]
        out[f"{arm}_flops_per_query"], out[f"{arm}_beyond_frontier"] = float(r["flops_per_query"]), bool(r["beyond"])
    for r in parity.crossovers.to_dict("records"):
        out[_CROSSOVER_KEYS[r["arm"]]] = stats.Result.from_row(r)
    out["parity_queries"], out["parity_store_build_flops"] = parity.queries, float(build_flops)
    return out
