"""The analysis of notebook 06 (resources): compute against accuracy for more training, inference-time
verification and retrieval on one FLOPs axis.

Every point is a *policy* that answers the held-out questions, with the compute it cost: ``total FLOPs =
one-time post-training FLOPs + inference FLOPs over the held-out query set`` (pretraining is shared by every
point and left out). Training FLOPs follow the 6·N·D rule of the intervention records; inference is 2·N·D per
forward token (a store look-up costs 0 FLOPs). The lower-level pieces (answer matrices, per-item outcomes,
points with intervals, frontiers, paired tests) are `dint.analyses.flops`.

`training_curve` (from `dint.analyses.sft_grid`, where it is built) is a cached artifact: SFT from the base
model over a grid of epochs and shares of the training demonstrations, each run scored on the held-out facts.
The notebook, in order: `load` (the world, the models' answers and records, `Inputs`); `record_flops`
(the interventions' FLOPs); `training` (the SFT grid, the base and the RLHF model as outcomes, `Training`);
`rl_checkpoints` (the RL β-sweep's checkpoints as points); `verification` (sampling until a verifier
accepts, `Verified`; the learned verifier's risk controlled per returned answer, `dint.analyses.answer_risk`);
`retrieval` (the RAG policy, `Retrieved`); `frontiers` (every point's accuracy with its
interval and each family's Pareto frontier, `Frontiers`); `ceiling` (the same on the facts the corpus never
states, against the base rate 1/K, `Ceiling`); `tests` (the paired tests, Holm-adjusted together, `Tests`);
`figure`; `numbers` (what the paper quotes) and `headline` (their display).

The exact verifier's store and the RAG policy's hold the world's true value of every fact, held-out and
never-stated facts included, at no build cost: oracle arms, upper bounds. The arms that see only what training
sees (the corpus store), and the comparison of every arm with the training frontier at equal FLOPs per deployed
query, are `dint.analyses.parity`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import models, plot, stats, verify
from ..interventions import retrieval as rag_store
from ..interventions.record import InterventionRecord
from ..pipeline import artifacts
from ..pipeline.config import Profile
from . import answer_risk, experiments, parity, selection
from .sft_grid import training_curve
from .flops import (accuracy_cost, answer_matrix, draw_tokens, greedy, outcomes, p_true, paired_difference,
                    pareto, rl_points, trend, with_outside)

__all__ = [
    "OWN",
    "RL_FAMILY",
    "SFT",
    "Ceiling",
    "Frontiers",
    "Inputs",
    "Retrieved",
    "Tests",
    "Training",
    "Verified",
    "ceiling",
    "figure",
    "frontiers",
    "headline",
    "load",
    "numbers",
    "record_flops",
    "retrieval",
    "rl_checkpoints",
    "tests",
    "training",
    "verification",
]

SFT = "SFT (epochs × data)"               # the family of the SFT grid and the base (its zero-training point)
RL_FAMILY = "RL checkpoints (β sweep)"    # the family of `rl_checkpoints`
OWN = "{name} (own method)"               # the family of a method of the profile's own (interventions.custom)


# ------------------------------------------------------------------------------ notebook 06
@dataclass(frozen=True)
class Inputs:
    """What notebook 06 reads: the held-out questions, the models' answers on them and their records.

    Attributes
    ----------
    world : the profile's `dint.world.World`
    heldout : the held-out facts (rows of ``world.facts``), sorted by fact
    prompts : their QA prompts, in the same order
    unseen : the held-out facts of ``ceiling_type``, sorted
    ceiling_type : ``"unseen"`` (facts the corpus never states); ``"rare"`` on real facts, whose corpus
        cannot be searched (countries below the median population, a proxy: `dint.realworld`)
    tokenizer : the base model's
    records : {"sft", "reward", "rlhf", "rag", the profile's own methods: `InterventionRecord`}
    reward_model : the proxy reward model (the learned verifier)
    rag_policy : the RAG policy (its retriever routes the prompts)
    answers : {"base", "sft", "rlhf", "rag", the profile's own methods: `flops.Answers` on the held-out facts}
    gen : (m, k + 1) forward tokens of one sampled answer per item and candidate (`flops.draw_tokens`)
    """

    world: object
    heldout: pd.DataFrame
    prompts: pd.DataFrame
    unseen: list
    ceiling_type: str
    tokenizer: object
    records: dict
    reward_model: object
    rag_policy: object
    answers: dict
    gen: np.ndarray

    @property
    def n_params(self) -> int:
        """Parameters of the post-trained models (the SFT record's), N in 2·N FLOPs per token."""
        return self.records["sft"].n_params


def load(P: Profile) -> Inputs:
    """The cached world, models, records and answer distributions notebook 06 uses (`Inputs`)."""
    world = artifacts.world(P)
    heldout = world.facts[world.facts.split == "heldout"].sort_values("fact")
    prompts = world.prompts("qa", heldout).reset_index(drop=True)
    # facts the corpus never states; a real corpus cannot be searched, so on real facts the rare type
    # (countries below the median population, a proxy: dint.realworld) stands in for them
    ceiling_type = "rare" if P.real else "unseen"
    unseen = sorted(heldout.fact[heldout.type == ceiling_type])
    _, tokenizer, _ = artifacts.base_model(P)
    reward_model, _, reward_record = artifacts.intervention(P, "reward")
    rag_policy, _, rag_record = artifacts.intervention(P, "rag")
    records = {"sft": artifacts.intervention(P, "sft")[2], "reward": reward_record,
               "rlhf": artifacts.intervention(P, "rlhf")[2], "rag": rag_record}
    own = P.interventions.custom_names   # the profile's own methods (interventions.custom), charged their records
    records.update({n: InterventionRecord.load(artifacts.ensure_intervention(P, n) / "record.json") for n in own})
    answers = {"base": answer_matrix(artifacts.base_scores(P), heldout.fact)}
    answers.update({n: answer_matrix(artifacts.intervention_scores(P, n), heldout.fact)
                    for n in ("sft", "rlhf", "rag", *own)})
    gen = draw_tokens(tokenizer, prompts.prompt, answers["base"].candidates)   # (m, k + 1) tokens of one sampled answer
    return Inputs(world=world, heldout=heldout, prompts=prompts, unseen=unseen, ceiling_type=ceiling_type,
                  tokenizer=tokenizer, records=records, reward_model=reward_model, rag_policy=rag_policy,
                  answers=answers, gen=gen)


def record_flops(records: dict) -> pd.DataFrame:
    """The interventions' training FLOPs, rollout FLOPs and steps, one row per intervention record."""
    return pd.DataFrame({name: {"train FLOPs": r.train_flops, "rollout FLOPs": r.inference_flops, "steps": r.steps}
                         for name, r in records.items()}).T


@dataclass(frozen=True)
class Training:
    """(a) More training.

    Attributes
    ----------
    curve : `training_curve`, one row per SFT run and held-out fact
    outcomes : `flops.outcomes` of the base (zero training), every SFT run (``epochs``, ``data_share``), RLHF and
        each of the profile's own methods (its own family, `OWN`)
    grid : accuracy and mean P(true) per SFT run, epochs by data share (the display)
    """

    curve: pd.DataFrame
    outcomes: pd.DataFrame
    grid: pd.DataFrame


def training(P: Profile, inputs: Inputs) -> Training:
    """Greedy answers of the base, of SFT over the profile's grid of epochs × data shares, of RLHF and of the
    profile's own methods (``interventions.custom``), with their FLOPs; RLHF is charged the SFT, the reward model
    and the RL run, rollouts included; an own method its record's training and inference FLOPs (e.g. KTO's frozen
    reference)."""
    N, gen, records = inputs.n_params, inputs.gen, inputs.records
    curve = training_curve(P)
    base, rlhf = inputs.answers["base"], inputs.answers["rlhf"]
    rows = []
    correct, tokens = greedy(base, gen)
    rows.append(outcomes(SFT, "base", base.fact, correct, cost=2 * N * tokens, train_flops=0.0)
                .assign(epochs=0, data_share=0.0))
    for (e, share), g in curve.groupby(["epochs", "data_share"]):
        rows.append(outcomes(SFT, f"{e} ep, {share:.0%} data", g.fact, g.correct, cost=2 * N * g.gen_tokens,
                             train_flops=g.train_flops.iloc[0]).assign(epochs=e, data_share=share))
    correct, tokens = greedy(rlhf, gen)
    rl_train = sum(records[k].train_flops for k in ("sft", "reward", "rlhf")) + records["rlhf"].inference_flops
    rows.append(outcomes("RLHF", "rlhf", rlhf.fact, correct, cost=2 * N * tokens, train_flops=rl_train))
    for name in (n for n in inputs.answers if n in P.interventions.custom):
        correct, tokens = greedy(inputs.answers[name], gen)
        rows.append(outcomes(OWN.format(name=name), name, inputs.answers[name].fact, correct, cost=2 * N * tokens,
                             train_flops=records[name].train_flops + records[name].inference_flops))
    grid = curve.groupby(["data_share", "epochs"]).agg(train_flops=("train_flops", "first"),
                                                       accuracy=("correct", "mean"),
                                                       p_true=("p_true", "mean")).unstack("data_share")
    return Training(curve=curve, outcomes=pd.concat(rows, ignore_index=True), grid=grid)


def rl_checkpoints(P: Profile, inputs: Inputs) -> pd.DataFrame:
    """The RL checkpoints of notebook 02's β-sweep as points (`flops.rl_points`): each charged the SFT and
    reward-model FLOPs plus its run's FLOPs scaled by step/steps, with rollouts in the ratio of the profile's
    RLHF record, and the FLOPs of answering the held-out questions once (RLHF's greedy answers)."""
    records = inputs.records
    _, tokens = greedy(inputs.answers["rlhf"], inputs.gen)
    return rl_points(experiments.rl_sweep(P), start_flops=records["sft"].train_flops + records["reward"].train_flops,
                     rollout_ratio=records["rlhf"].inference_flops / records["rlhf"].train_flops,
                     n_eval=min(P.interventions.config("rl").n_eval, len(inputs.heldout)),
                     inference_flops=float(2 * inputs.n_params * tokens.sum()), family=RL_FAMILY)


@dataclass(frozen=True)
class Verified:
    """(b) Sampling with verification.

    Attributes
    ----------
    outcomes : `flops.outcomes` of every verification family and budget (``budget``)
    selections : {family: the `selection.SELECTION_COLUMNS` rows of its rule, one per item and budget}
    calibration : the learned verifier's thresholds, per held-out item and budget, each fitted on the other
        fold (`answer_risk.cross_fit`: ``item``, ``budget``, ``fold``, ``threshold``)
    conformal : mean P(correct), P(wrong), P(abstain) and draws per budget of the learned + conformal family
    risk : `answer_risk.splits`: the learned + conformal policy's P(returned and wrong), coverage and accuracy
        per budget, mean over random calibration splits of the held-out facts
    build_flops : the corpus store's build (`parity.store_flops`; 0 where there is no corpus)
    """

    outcomes: pd.DataFrame
    selections: dict
    calibration: object
    conformal: pd.DataFrame
    risk: pd.DataFrame | None = None
    build_flops: float = 0.0


def verification(P: Profile, inputs: Inputs, *, budgets, stale_share: float = 0.2, alpha: float = 0.1,
                 n_splits: int = 200, seed: int = 0) -> Verified:
    """The SFT model sampled until a verifier accepts, at most B draws for each B in ``budgets``.

    Verifiers: exact look-up in the world's facts (an oracle: the true value of every fact, held-out and
    never-stated ones included), in a store with ``stale_share`` stale documents (the oracle's, part stale),
    in the corpus store (`retrieval.corpus_store`: what training sees, the information-parity reference, its
    build charged: `parity.store_flops`; not on real facts, whose corpus cannot be counted), and the learned
    verifier (the proxy reward model) by best-of-n and with a conformal threshold. The threshold holds
    P(returned and wrong) at ``alpha`` per returned answer, not per checked draw: conformal risk control of
    the policy's exact probability of returning a wrong answer, fitted per budget on one half of the held-out
    facts and applied to the other (`answer_risk.cross_fit`), and averaged over ``n_splits`` random splits
    (`answer_risk.splits`). Outcomes are exact expectations (`selection.sample_until_verified`,
    `selection.best_of_n_by_verifier`)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: give a target error in (0, 1)")
    if not 0 <= stale_share <= 1:
        raise ValueError(f"stale_share={stale_share!r}: give a share in [0, 1]")
    world, prompts, records = inputs.world, inputs.prompts, inputs.records
    sft = inputs.answers["sft"]
    draw = 2.0 * inputs.n_params * inputs.gen
    stale_store = rag_store.build_store(world, rag_store.StoreConfig(stale_share=stale_share), seed=seed)
    checks = {"exact": verify.verify_candidates(verify.ReferenceVerifier.from_world(world), prompts, sft.candidates),
              "stale": verify.verify_candidates(verify.ReferenceVerifier(stale_store, name="stale"), prompts,
                                                sft.candidates)}
    corpus = not P.real
    if corpus:   # looked up by entity and relation: the corpus store has no document for a never-stated fact
        keyed = prompts.merge(world.facts[["fact", "entity", "relation"]], on="fact", how="left")
        checks["corpus"] = verify.verify_candidates(
            verify.ReferenceVerifier(rag_store.corpus_store(world), name="corpus"), keyed, sft.candidates)
    with models.torch_threads(P.interventions.threads):   # the reward model scores every candidate
        checks["learned"] = verify.verify_candidates(verify.LearnedVerifier(inputs.reward_model, prompts),
                                                     np.arange(len(prompts)), sft.candidates)
    n_rm = inputs.reward_model.n_params
    learned_cost = draw + 2.0 * n_rm * with_outside(checks["learned"].cost, checks["learned"].cost.max(1))
    learned_score = with_outside(checks["learned"].score, -1.0)   # a draw outside the set is never kept

    # the learned verifier's threshold per budget: conformal risk control of the returned answer's error
    grid = answer_risk.grid(checks["learned"].score[checks["learned"].mask])
    calibration = answer_risk.cross_fit(sft.p, learned_score, sft.correct, budgets, alpha=alpha, thresholds=grid,
                                        seed=seed)
    risk = answer_risk.splits(sft.p, learned_score, sft.correct, budgets, alpha=alpha, n_splits=n_splits,
                              thresholds=grid, seed=seed)

    sft_flops, learned_flops = records["sft"].train_flops, records["sft"].train_flops + records["reward"].train_flops
    build_flops = parity.store_flops(world, inputs.tokenizer, inputs.n_params) if corpus else 0.0
    until = selection.sample_until_verified
    conformal = []
    for b, g in calibration.groupby("budget"):
        accept = learned_score >= g.sort_values("item").threshold.to_numpy()[:, None]
        conformal.append(until(sft.p, accept, [b], correct=sft.correct, cost=learned_cost))
    rules = {
        "verify: exact": (until(sft.p, with_outside(checks["exact"].score, 0.0), budgets, correct=sft.correct,
                                cost=draw), sft_flops),
        "verify: stale store": (until(sft.p, with_outside(checks["stale"].score, 0.0), budgets, correct=sft.correct,
                                      cost=draw), sft_flops),
        "verify: learned, best-of-n": (selection.best_of_n_by_verifier(sft.p, learned_score, budgets,
                                                                       correct=sft.correct, cost=learned_cost),
                                       learned_flops),
        "verify: learned + conformal": (pd.concat(conformal, ignore_index=True), learned_flops)}
    if corpus:
        rules[parity.CORPUS_VERIFY] = (until(sft.p, with_outside(checks["corpus"].score, 0.0), budgets,
                                             correct=sft.correct, cost=draw), sft_flops + build_flops)
    rows = []
    for family, (sel, train_flops) in rules.items():
        for b, g in sel.groupby("budget"):
            rows.append(outcomes(family, f"B={b}", sft.fact[g.item], g.p_correct, p_abstain=g.p_abstain, cost=g.cost,
                                 train_flops=train_flops).assign(budget=b))
    chosen = rules["verify: learned + conformal"][0]
    return Verified(outcomes=pd.concat(rows, ignore_index=True),
                    selections={family: sel for family, (sel, _) in rules.items()}, calibration=calibration,
                    conformal=chosen.groupby("budget")[["p_correct", "p_wrong", "p_abstain", "draws"]].mean(),
                    risk=risk, build_flops=float(build_flops))


@dataclass(frozen=True)
class Retrieved:
    """(c) Retrieval: the RAG policy's `flops.outcomes` and its ``summary`` (context tokens per question and
    retrieval FLOPs per query)."""

    outcomes: pd.DataFrame
    summary: dict


def retrieval(inputs: Inputs) -> Retrieved:
    """The RAG policy's greedy answers; each costs its prompt with the retrieved document plus the retriever's
    FLOPs per query (as its record counts them)."""
    rag, record = inputs.answers["rag"], inputs.records["rag"]
    routed = inputs.rag_policy.prompts(inputs.prompts)
    correct, tokens = greedy(rag, draw_tokens(inputs.tokenizer, routed.prompt, rag.candidates))
    retrieval_flops = record.extra["retrieval"]["flops"] / max(1, record.extra["retrieval"]["queries"])
    rows = outcomes("retrieval (RAG)", "rag", rag.fact, correct, cost=2 * inputs.n_params * tokens + retrieval_flops,
                    train_flops=record.train_flops)
    gen = inputs.gen
    context = float(tokens.mean() - gen[np.arange(len(gen)), rag.p[:, :-1].argmax(1)].mean())
    return Retrieved(outcomes=rows, summary={"context tokens per question": context,
                                             "retrieval FLOPs per query": retrieval_flops})


def _with_frontier(points: pd.DataFrame) -> pd.DataFrame:
    """``points`` with ``frontier``: whether the point is on its family's Pareto frontier (`flops.pareto`)."""
    points = points.copy()
    points["frontier"] = False
    for _, g in points.groupby("family"):
        points.loc[g.index, "frontier"] = pareto(g.total_flops, g.estimate)
    return points


@dataclass(frozen=True)
class Frontiers:
    """Every point: ``outcomes`` (`flops.OUTCOME_COLUMNS` rows of every family) and ``points`` (`flops.accuracy_cost`
    of them, then the RL checkpoints, with ``frontier``)."""

    outcomes: pd.DataFrame
    points: pd.DataFrame


def frontiers(parts, rl_points_table: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0) -> Frontiers:
    """Every point's accuracy (abstentions count as not correct) with its interval, coverage and total FLOPs, and
    each family's Pareto frontier.

    Parameters
    ----------
    parts : `flops.outcomes` tables (e.g. ``training.outcomes``, ``verified.outcomes``, ``retrieved.outcomes``)
    rl_points_table : `rl_checkpoints`, points already
    n_resamples, seed : of the bootstrap intervals of points whose outcomes are not 0/1
    """
    table = pd.concat(list(parts), ignore_index=True)
    points = pd.concat([accuracy_cost(table, n_resamples=n_resamples, rng=seed), rl_points_table], ignore_index=True)
    return Frontiers(outcomes=table, points=_with_frontier(points))


@dataclass(frozen=True)
class Ceiling:
    """The points on the ``ceiling_type`` held-out facts only (``points``, with ``frontier``), the ``base_rate``
    (mean 1/K over those facts) and their number ``n``."""

    points: pd.DataFrame
    base_rate: float
    n: int


def ceiling(inputs: Inputs, table: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0) -> Ceiling:
    """The points of ``table`` (`Frontiers.outcomes`) on the facts the corpus never states (`Inputs.unseen`),
    inference FLOPs summed over those items, against the base rate: the mean over them of 1/K, K the size of
    the fact's candidate set (the accuracy of a guess that knows nothing about the fact)."""
    unseen = inputs.unseen
    points = _with_frontier(accuracy_cost(table[table.fact.isin(unseen)], n_resamples=n_resamples, rng=seed))
    sizes = {r: len(v) for r, v in inputs.world.values.items()}
    base_rate = float(np.mean(1.0 / inputs.heldout.set_index("fact").loc[unseen].relation.map(sizes)))
    return Ceiling(points=points, base_rate=base_rate, n=len(unseen))


@dataclass(frozen=True)
class Tests:
    """The notebook's paired tests.

    Attributes
    ----------
    table : one row per test: ``test``, ``description``, the columns `dint.stats.ROW` and ``pvalue_holm`` (all
        the tests Holm-adjusted together)
    matched : one row per verification family and retrieval matched with a training point: ``key``, ``point``,
        ``flops`` (its total FLOPs), ``training_point`` and ``training_flops``
    """

    table: pd.DataFrame
    matched: pd.DataFrame


def _best(points: pd.DataFrame, families, budget: float = np.inf):
    """The most accurate point of ``families`` that costs at most ``budget`` total FLOPs (None if none does)."""
    g = points[points.family.isin(families) & (points.total_flops <= budget)]
    return None if g.empty else g.loc[g.estimate.idxmax()]


def _per_item(table: pd.DataFrame, family: str, point: str, facts=None) -> np.ndarray:
    """P(correct) per item of one point of `Frontiers.outcomes`, sorted by fact (or in the order of ``facts``)."""
    g = table[(table.family == family) & (table.point == point)].set_index("fact").p_correct
    return (g if facts is None else g.loc[facts]).to_numpy()


# the families matched against training at no more compute, with their short names
_MATCHED = (("exact", "verify: exact"), ("stale", "verify: stale store"), ("learned_bon", "verify: learned, best-of-n"),
            ("learned_conformal", "verify: learned + conformal"), ("rag", "retrieval (RAG)"))


def tests(inputs: Inputs, curve: pd.DataFrame, found: Frontiers, verified: Verified, *, budgets, alpha: float = 0.1,
          n_resamples: int = 2000, seed: int = 0) -> Tests:
    """The paired tests by fact (`flops.paired_difference`, `flops.trend`), Holm-adjusted together.

    1. Matched compute: each verification family's and retrieval's most accurate point against the most
       accurate training point (SFT grid or RLHF) that costs at most as many total FLOPs.
    2. The ceiling: on unseen facts, the SFT run with the most training FLOPs against the base (P(true)),
       and the trend of P(true) in log10 training FLOPs over the grid; the same trend on the other facts.
    3. On unseen facts, exact verification at the largest budget against that SFT run.
    4. The stale store against the exact one at the largest budget; the learned verifier's held-out joint
       error P(accepted and wrong) at B = 1 against ``alpha``.

    Parameters
    ----------
    inputs : `load`'s
    curve : `training_curve` (`Training.curve`)
    found : `frontiers`
    verified : `verification`
    budgets, alpha : as given to `verification`
    n_resamples, seed : of the bootstrap intervals and permutation tests
    """
    table, points, unseen = found.outcomes, found.points, inputs.unseen
    B = max(budgets)
    kw = dict(n_resamples=n_resamples, rng=seed)
    results, described, matched = {}, {}, []
    for key, family in _MATCHED:
        v = _best(points, [family])
        t = _best(points, [SFT, "RLHF"], v.total_flops)
        if t is None:      # no training point is as cheap
            continue
        matched.append({"key": key, "point": v.point, "flops": v.total_flops, "training_point": t.point,
                        "training_flops": t.total_flops})
        described[f"{key}_vs_training"] = (f"{family} {v.point} vs {t.family} {t.point} "
                                           f"(FLOPs {t.total_flops / v.total_flops:.2f}x)")
        results[f"{key}_vs_training"] = paired_difference(_per_item(table, family, v.point),
                                                          _per_item(table, t.family, t.point), **kw)
    grid = curve.assign(log_flops=np.log10(curve.train_flops))
    most = grid.loc[grid.train_flops.idxmax(), ["epochs", "data_share"]]
    most_label = f"{int(most.epochs)} ep, {most.data_share:.0%} data"
    most_pt = grid[(grid.epochs == most.epochs) & (grid.data_share == most.data_share)].set_index("fact").p_true.loc[unseen]
    base = inputs.answers["base"]
    base_pt = pd.Series(p_true(base), index=base.fact).loc[unseen]
    described["unseen_most_vs_base"] = f"unseen facts: P(true), SFT {most_label} vs base"
    results["unseen_most_vs_base"] = paired_difference(most_pt.to_numpy(), base_pt.to_numpy(), **kw)
    described["unseen_trend"] = "unseen facts: P(true) per decade of training FLOPs (SFT grid)"
    results["unseen_trend"] = trend(grid[grid.fact.isin(unseen)], x="log_flops", y="p_true", **kw)
    described["seen_trend"] = "other held-out facts: P(true) per decade of training FLOPs (SFT grid)"
    results["seen_trend"] = trend(grid[~grid.fact.isin(unseen)], x="log_flops", y="p_true", **kw)
    described["unseen_exact_vs_most"] = f"unseen facts: exact verification B={B} vs SFT {most_label}"
    results["unseen_exact_vs_most"] = paired_difference(_per_item(table, "verify: exact", f"B={B}", unseen),
                                                        _per_item(table, SFT, most_label, unseen), **kw)
    described["stale_vs_exact"] = f"stale store vs exact, B={B}"
    results["stale_vs_exact"] = paired_difference(_per_item(table, "verify: stale store", f"B={B}"),
                                                  _per_item(table, "verify: exact", f"B={B}"), **kw)
    wrong1 = verified.selections["verify: learned + conformal"].query("budget == 1").p_wrong.to_numpy()
    described["conformal_error_vs_alpha"] = f"learned + conformal: held-out P(accepted and wrong) at B=1 minus alpha={alpha}"
    results["conformal_error_vs_alpha"] = paired_difference(wrong1, np.full(len(wrong1), alpha), **kw)
    rows = pd.DataFrame([r.row(test=k, description=described[k]) for k, r in results.items()])
    return Tests(table=stats.holm(rows), matched=pd.DataFrame(matched))


def figure(points: pd.DataFrame, ceiling_: Ceiling, *, ceiling_type: str = "unseen", parity_=None, risk=None,
           alpha: float | None = None):
    """(a) Accuracy on held-out facts against total FLOPs, each family's points and Pareto frontier
    (`plot.frontiers`); (b) the same on the ``ceiling_type`` facts, with the base rate 1/K; with ``parity_``,
    (c) each arm's accuracy minus the training frontier's at equal FLOPs per query against the deployed
    queries (`plot.equal_flops`); with ``risk``, (d) the learned verifier's P(returned and wrong) per draw
    budget against ``alpha`` (`plot.answer_risk`).

    Parameters
    ----------
    points : `Frontiers.points`
    ceiling_ : `ceiling`
    ceiling_type : `Inputs.ceiling_type` (the label of panel b)
    parity_ : `parity.compare` (optional)
    risk : `Verified.risk` (optional), with ``alpha`` its target
    """
    n = 2 + (parity_ is not None) + (risk is not None)
    fig, axes = plot.panels(n, ncols=2, row_height=3.2)
    # the profile's own methods drawn last, in greys, so that the built-in families keep their colours and markers
    own = OWN.format(name="")

    def last(t):
        return pd.concat([t[~t.family.str.endswith(own)], t[t.family.str.endswith(own)]])

    points, ceiling_points = last(points), last(ceiling_.points)
    families = list(dict.fromkeys(points.family))
    colors = dict(zip([f for f in families if not f.endswith(own)],
                      [plot.PALETTE[i % len(plot.PALETTE)] for i in (0, 1, 2, 3, 6, 5, 4, 7, 8, 9)]))
    colors.update(zip([f for f in families if f.endswith(own)], ("0.15", "0.45", "0.6", "0.3")))
    plot.frontiers(points, ax=axes[0], colors=colors)
    plot.frontiers(ceiling_points, ax=axes[1], colors=colors, reference=ceiling_.base_rate,
                   reference_label="base rate 1/K")
    axes[0].set_title("(a) held-out facts", loc="left", fontsize=9)
    axes[1].set_title(f"(b) {ceiling_type} held-out facts (n={ceiling_.n})", loc="left", fontsize=9)
    i = 2
    if parity_ is not None:
        plot.equal_flops(parity_.curves, ax=axes[i], queries=parity_.queries)
        axes[i].set_title("(c) against training at equal FLOPs per query", loc="left", fontsize=9)
        i += 1
    if risk is not None:
        plot.answer_risk(risk, alpha=alpha, ax=axes[i])
        axes[i].set_title("(d) learned verifier: risk per answer", loc="left", fontsize=9)
    return fig


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def numbers(found: Tests, points: pd.DataFrame, ceiling_: Ceiling, verified: Verified, rl_points_table: pd.DataFrame,
            *, budgets, alpha: float, parity_=None) -> dict:
    """The numbers the paper quotes, named for its macros.

    ``test_<test>`` (Holm p-values); ``matched_<key>_{point,training_point,flops_ratio}``; per frontier point
    (the RL checkpoints aside) ``acc_<family>_<point>`` and ``flops_<family>_<point>``;
    ``best_training_{point,flops,accuracy}``; ``exact_beats_training_{budget,flops_ratio}`` (the cheapest exact
    verification budget more accurate than the best training point, if any); ``unseen_base_rate``,
    ``unseen_n``; ``conformal_threshold`` (the learned verifier's at the largest budget, first fold),
    ``conformal_alpha``, ``conformal_joint_error_B<max budget>`` (held-out P(returned and wrong), cross-fitted);
    with `Verified.risk`: ``conformal_answer_error_B<budget>`` (its mean over random splits),
    ``conformal_answer_mean_within`` (budgets whose mean is at most alpha), ``conformal_budgets`` and
    ``conformal_answer_worst_mean_error``; ``rl_checkpoint_best``; with ``parity_``, `parity.numbers`.

    Parameters
    ----------
    found : `tests`
    points : `Frontiers.points`
    ceiling_ : `ceiling`
    verified : `verification`
    rl_points_table : `rl_checkpoints`
    budgets, alpha : as given to `verification`
    parity_ : `parity.compare` (optional)
    """
    t = found.table
    out = stats.results(t.assign(method=t.method + f"; Holm across the notebook's {len(t)} tests"), "test_{test}",
                        pvalue="pvalue_holm")
    for m in found.matched.itertuples():
        out[f"matched_{m.key}_point"], out[f"matched_{m.key}_training_point"] = m.point, m.training_point
        out[f"matched_{m.key}_flops_ratio"] = m.training_flops / m.flops
    nan = float("nan")
    for r in points[points.frontier & points.family.ne(RL_FAMILY)].to_dict("records"):
        name = f"{_slug(r['family'])}_{_slug(r['point'])}"
        out[f"acc_{name}"] = stats.Result.from_row(
            r, method="accuracy, Wilson (0/1 outcomes) or bootstrap hull interval", pvalue=nan, reason="")
        out[f"flops_{name}"] = float(r["total_flops"])
    top = _best(points, [SFT, "RLHF"])
    out["best_training_point"], out["best_training_flops"] = top.point, float(top.total_flops)
    out["best_training_accuracy"] = stats.Result.from_row(top, method="accuracy, Wilson interval", pvalue=nan, reason="")
    exact = points[points.family.eq("verify: exact") & (points.estimate > top.estimate)]
    if len(exact):   # the cheapest exact-verification budget more accurate than the best training point
        e = exact.loc[exact.total_flops.idxmin()]
        out["exact_beats_training_budget"] = e.budget
        out["exact_beats_training_flops_ratio"] = e.total_flops / top.total_flops
    out["unseen_base_rate"], out["unseen_n"] = ceiling_.base_rate, ceiling_.n
    cal = verified.calibration
    first = cal[(cal.budget == max(budgets)) & (cal.fold == cal.fold.min())]
    out["conformal_threshold"], out["conformal_alpha"] = float(first.threshold.iloc[0]), float(alpha)
    out[f"conformal_joint_error_B{max(budgets)}"] = float(verified.conformal.p_wrong.loc[max(budgets)])
    if verified.risk is not None:
        err = verified.risk[verified.risk.measure == "error"]
        for r in err.to_dict("records"):
            out[f"conformal_answer_error_B{r['budget']}"] = stats.Result.from_row(r)
        out["conformal_answer_mean_within"] = int(err.within.astype(bool).sum())
        out["conformal_budgets"] = len(err)
        out["conformal_answer_worst_mean_error"] = float(err.estimate.max())
    out["rl_checkpoint_best"] = stats.Result.from_row(rl_points_table.loc[rl_points_table.estimate.idxmax()])
    if parity_ is not None:
        out.update(parity.numbers(parity_, build_flops=verified.build_flops))
    return out


def headline(numbers_: dict) -> pd.DataFrame:
    """The quoted numbers other than the per-point ``acc_`` / ``flops_`` ones, one row each: a result's
    estimate, interval and p-value, or the value."""
    rows = []
    for k, v in numbers_.items():
        if k.startswith(("acc_", "flops_")):
            continue
        if isinstance(v, stats.Result):
            rows.append({"number": k, **{c: v.row()[c] for c in ("estimate", "ci_low", "ci_high", "pvalue")}})
        else:
            rows.append({"number": k, "value": v})
    return pd.DataFrame(rows).set_index("number")
