"""Two-hop reasoning: a composed question asked directly, as a sampled chain, and as a verified chain.

The world's two-hop questions compose two facts: "what is the favorite color of the mentor of X ?"
needs (X, mentor, B) and (B, color, V). Three ways to answer one, compared on the same questions:

``direct``    the composed question in one QA prompt; the answer is the top of the model's exact
              answer distribution over the relation's candidate set.
``chain``     a sampled chain: step 1 asks for the bridge ("who is the mentor of X ?") over the
              entity candidates, step 2 asks the relation of the step-1 answer; each step answer
              is drawn from the model's exact candidate distribution with a seeded NumPy
              generator, so sampling is exact and reproducible. ``chain`` reports the first chain;
              ``majority`` the most frequent final answer of ``n_chains`` chains (self-consistency:
              more sampling, no verification).
``verified``  a verifier checks each step's claim against the reference store — a step is accepted
              when a document states that (entity, relation, value) — and the first chain whose
              steps all verify gives the answer; if none does within ``n_chains``, abstain.

Verification, not the chain, is what makes the answer reliable: on a clean store every accepted
chain is right, and on a stale store the verified chain follows the stale documents. Reasoning
depends on the reference it is checked against.

Cost is counted as the forward-pass tokens of scoring: per scored candidate, the tokens of prompt
+ answer (the cost of one teacher-forced pass per candidate, as lm-evaluation-harness counts it;
the packed scorer of `dint.scoring` spends less), and inference FLOPs = 2·N·tokens. A step
distribution is exact, so chains that reuse a prompt reuse its distribution: a question's cost is
its step-1 prompt plus the distinct step-2 prompts its chains needed (for ``verified``, those of
chains whose step 1 verified, up to the accepted chain). Store look-ups cost no FLOPs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import console
from ..interventions.record import inference_flops
from ..models import torch_threads
from ..stats.proportions import mcnemar
from ..scoring import score
from ..stats import ROW, ConfidenceInterval, Result, proportion
from ..world import RELATIONS, World, qa_prompt
from ..stats.checks import check_int

METHODS = ("direct", "chain", "majority", "verified")
ANSWER_COLUMNS = ["item", "method", "entity", "bridge", "relation", "value", "answer", "via_answer",
                  "answered", "correct", "p_correct", "chains", "tokens", "flops"]
# by_method's table: labels, the result columns (dint.stats.ROW), plain per-strategy numbers
SUMMARY_COLUMNS = ["strategy", "measure", *ROW, "correct", "answered", "coverage", "abstention", "expected_accuracy",
                   "chains", "tokens", "flops", "tokens_per_question", "flops_per_question"]
Scorer = Callable[[list[str], list[tuple[str, ...]]], list]


@dataclass(frozen=True)
class ReasoningConfig:
    """How the two-hop questions are answered (the store, and its stale share, is the caller's)."""

    n_chains: int = 8          # sampled chains per question (the verifier's budget, the vote's size)
    max_questions: int = 0     # questions evaluated, a seeded subset (0: all)
    seed: int = 0              # chain sampling and the question subset
    threads: int = 1           # torch threads while scoring (0: leave torch's default)

    def __post_init__(self):
        for name, least in (("n_chains", 1), ("max_questions", 0), ("seed", 0), ("threads", 0)):
            check_int(f"ReasoningConfig.{name}", getattr(self, name), least)


def composed_question(relation: str, via: str, entity: str) -> str:
    """The QA prompt of a two-hop question, e.g. "Q : what is the favorite color of the mentor of X ? A :"."""
    return qa_prompt(RELATIONS[relation].question.format(e=f"the {via} of {entity}"))


def step_prompt(relation: str, entity: str) -> str:
    """The QA prompt of one step, e.g. "Q : who is the mentor of X ? A :"."""
    return qa_prompt(RELATIONS[relation].question.format(e=entity))


def twohop_items(world: World, facts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The world's two-hop questions with their composed prompts.

    Parameters
    ----------
    world : World, with ``mentor`` among its relations (else it has no two-hop questions).
    facts : rows of ``world.facts``; keep the questions whose two facts are both among them
        (e.g. the held-out split). Default: every question.

    Returns
    -------
    DataFrame, one row per question: ``item`` (the row of ``world.twohop``, a stable id),
    ``entity``, ``via``, ``bridge``, ``relation``, ``value`` (the true answer), ``fact1`` and
    ``fact2`` (the ids of (entity, via) and (bridge, relation)) and ``prompt`` (the composed
    question).
    """
    if not isinstance(world, World):
        raise TypeError(f"world must be a dint.world.World, got {type(world).__name__}")
    if world.twohop.empty:
        raise ValueError("world has no two-hop questions: build it with 'mentor' in WorldConfig.relations")
    t = world.twohop.reset_index(drop=True)
    items = pd.DataFrame({"item": np.arange(len(t)), **{c: t[c].to_numpy() for c in t.columns}})
    items["prompt"] = [composed_question(r, v, e) for r, v, e in zip(items["relation"], items["via"], items["entity"])]
    vocabulary = set(world.vocabulary())
    for p in items["prompt"]:
        if unknown := sorted(set(p.split()) - vocabulary):
            raise ValueError(f"world: the composed question {p!r} has words outside world.vocabulary(): "
                             f"{unknown}; the model's tokenizer could not read it")
    ids = {(e, r): f for f, e, r in zip(world.facts["fact"], world.facts["entity"], world.facts["relation"])}
    items.insert(len(items.columns) - 1, "fact1", [ids[e, v] for e, v in zip(items["entity"], items["via"])])
    items.insert(len(items.columns) - 1, "fact2", [ids[b, r] for b, r in zip(items["bridge"], items["relation"])])
    if facts is not None:
        if not isinstance(facts, pd.DataFrame) or "fact" not in facts.columns:
            raise ValueError("facts must be a DataFrame of rows of world.facts (with a 'fact' column)")
        keep = set(facts["fact"])
        items = items[items["fact1"].isin(keep) & items["fact2"].isin(keep)].reset_index(drop=True)
        if items.empty:
            raise ValueError("facts: no two-hop question has both of its facts among these rows")
    return items


# -- scoring --------------------------------------------------------------------------------------

def _model_scorer(model, tokenizer, threads: int, progress: bool) -> Scorer:
    """Exact candidate distributions (``p_set``) from `dint.scoring.score`; answers get a leading space."""
    def scorer(prompts, candidates):
        with torch_threads(threads):
            df = score(model, tokenizer, prompts, [[" " + c for c in cs] for cs in candidates], progress=progress)
        return np.split(df["p_set"].to_numpy(), np.cumsum([len(c) for c in candidates])[:-1])
    return scorer


def _distributions(scorer: Scorer, prompts: list[str], candidates: list[tuple[str, ...]]) -> list[np.ndarray]:
    """The scorer's distributions, checked and renormalised."""
    out = list(scorer(list(prompts), list(candidates)))
    if len(out) != len(prompts):
        raise ValueError(f"scorer returned {len(out)} distributions for {len(prompts)} prompts")
    dists = []
    for p, cs, prompt in zip(out, candidates, prompts):
        p = np.asarray(p, dtype=float)
        if p.shape != (len(cs),) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"scorer: the distribution for {prompt!r} must be {len(cs)} non-negative "
                             f"numbers with a positive sum, got {p!r}")
        dists.append(p / p.sum())
    return dists


class _Cost:
    """Forward-pass tokens of scoring a prompt over its candidates: Σ_c tokens(prompt + " " + c)."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self._memo = model, tokenizer, {}

    def tokens(self, prompt: str, candidates: tuple[str, ...]) -> int:
        if prompt not in self._memo:
            ids = self.tokenizer([f"{prompt} {c}" for c in candidates])["input_ids"]
            self._memo[prompt] = sum(map(len, ids))
        return self._memo[prompt]

    def flops(self, tokens: int) -> float:
        return inference_flops(self.model, tokens)


def _draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: per row of ``p`` (n, K), index i with probability p[i] / Σ p, at uniforms ``u`` (n,).

    Never an index of zero probability: a zero step of the CDF cannot hold ``u · Σ p``, and the
    rounding guard clips to the last positive index.
    """
    cdf = np.cumsum(p, axis=1)                                                       # (n, K)
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)                        # (n,)
    return np.minimum((cdf <= (u * cdf[:, -1])[:, None]).sum(1), last)


def _check_items(items) -> pd.DataFrame:
    need = ["item", "entity", "via", "bridge", "relation", "value", "prompt"]
    if not isinstance(items, pd.DataFrame) or not set(need) <= set(items.columns):
        raise ValueError(f"items must be a DataFrame with columns {need}: pass twohop_items(world)")
    if items.empty:
        raise ValueError("items is empty: pass at least one two-hop question")
    return items


# -- the three ways of answering ------------------------------------------------------------------

def answer_direct(model, tokenizer, world: World, items: pd.DataFrame, config: ReasoningConfig = ReasoningConfig(),
                  *, scorer: Scorer | None = None, progress: bool = False) -> pd.DataFrame:
    """Answer each composed question in one prompt: the top of the exact candidate distribution.

    Parameters
    ----------
    model, tokenizer : a `transformers` causal LM and its tokenizer (N and token counts for the
        cost; the distributions too, unless ``scorer`` is given).
    world : World
    items : output of :func:`twohop_items`.
    config : ReasoningConfig (its ``threads``).
    scorer : optional ``scorer(prompts, candidates) -> list of (K_i,) arrays``, the distribution
        over each prompt's candidates (answers without the leading space), used instead of the
        model (an oracle, a cached table).
    progress : show the scorer's progress bar.

    Returns
    -------
    DataFrame with the columns of ``ANSWER_COLUMNS``, method "direct", one row per item;
    ``p_correct`` is the model's probability of the true value (the accuracy of a direct answer
    sampled rather than taken at the top).
    """
    items = _check_items(items)
    if not isinstance(config, ReasoningConfig):
        raise TypeError(f"config must be a ReasoningConfig, got {type(config).__name__}")
    scorer = scorer or _model_scorer(model, tokenizer, config.threads, progress)
    cands = [world.values[r] for r in items["relation"]]
    dists = _distributions(scorer, items["prompt"].tolist(), cands)
    cost = _Cost(model, tokenizer)
    rows = []
    for it, p, cs in zip(items.itertuples(), dists, cands):
        answer = cs[int(np.argmax(p))]
        tokens = cost.tokens(it.prompt, cs)
        rows.append((it.item, "direct", it.entity, it.bridge, it.relation, it.value, answer, "", True,
                     answer == it.value, float(p[cs.index(it.value)]), 0, tokens, cost.flops(tokens)))
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)


def _claims(store) -> set[tuple[str, str, str]]:
    """(entity, relation, value) triples that some document of the store states."""
    table = getattr(store, "table", None)
    need = {"entity", "relation", "value"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError("store must be a DocumentStore (dint.interventions.retrieval.build_store) whose table "
                         f"has columns {sorted(need)}")
    return set(zip(table["entity"], table["relation"], table["value"]))


def answer_chains(model, tokenizer, world: World, items: pd.DataFrame, store,
                  config: ReasoningConfig = ReasoningConfig(), *, scorer: Scorer | None = None,
                  progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample ``n_chains`` two-step chains per question; answer by the first chain, the majority,
    and the first chain that the store verifies.

    Each question draws from its own generator, ``np.random.default_rng([seed, item])``, two
    uniforms per chain in chain order, so its chains do not depend on which other questions are
    asked, and a smaller budget draws a prefix of a larger one's chains. Per chain: the bridge by
    inverse CDF of the step-1 distribution, then the answer by inverse CDF of the step-2
    distribution of the drawn bridge.

    Parameters
    ----------
    model, tokenizer, world, items, scorer, progress : as in :func:`answer_direct`.
    store : DocumentStore, the reference the verifier checks each step's claim against.
    config : ReasoningConfig

    Returns
    -------
    answers : DataFrame with the columns of ``ANSWER_COLUMNS``, methods "chain", "majority" and
        "verified", one row per (item, method). ``answered`` is False (``answer`` "") when the
        verified chain abstains; ``via_answer`` is the step-1 answer of the chain that gave the
        answer; ``chains`` the chains drawn to answer. ``p_correct`` is exact where it has a
        closed form: Σ_b p1(b)·p2(v | b) for "chain"; for "verified" (1 − (1 − a)^n)·c / a, with a
        the probability that a chain verifies and c that it verifies and is right; NaN for
        "majority".
    chains : DataFrame, one row per (item, chain): ``item``, ``chain``, ``bridge`` and ``answer``
        (the two step answers), ``verified1`` and ``verified2`` (the store states each step's claim).
    """
    items = _check_items(items)
    if not isinstance(config, ReasoningConfig):
        raise TypeError(f"config must be a ReasoningConfig, got {type(config).__name__}")
    claims = _claims(store)
    scorer = scorer or _model_scorer(model, tokenizer, config.threads, progress)
    # Every step distribution is exact, so each distinct step prompt is scored once, for all chains.
    bridges = {v: world.values[v] for v in items["via"].unique()}
    keys = sorted({(r.via, r.entity) for r in items.itertuples()}
                  | {(r.relation, b) for r in items.itertuples() for b in bridges[r.via]})
    dist = dict(zip(keys, _distributions(scorer, [step_prompt(r, e) for r, e in keys],
                                         [world.values[r] for r, _ in keys])))
    P2, ok2 = {}, {}                       # per (via, relation): step-2 distributions and verdicts
    for v, r in {(r.via, r.relation) for r in items.itertuples()}:
        P2[v, r] = np.stack([dist[r, b] for b in bridges[v]])                        # (K1, K2)
        ok2[v, r] = np.array([[(b, r, a) in claims for a in world.values[r]] for b in bridges[v]])
    cost = _Cost(model, tokenizer)
    n = config.n_chains
    rows, chain_rows = [], []
    for it in tqdm(items.itertuples(), total=len(items), desc="chains", disable=not progress,
                   file=console.stream()):
        B, V = bridges[it.via], world.values[it.relation]
        p1, p2, k2 = dist[it.via, it.entity], P2[it.via, it.relation], ok2[it.via, it.relation]
        k1 = np.array([(it.entity, it.via, b) in claims for b in B])                 # (K1,)
        u = np.random.default_rng([config.seed, int(it.item)]).random((n, 2))       # chain j: row j
        b_idx = _draw(np.broadcast_to(p1, (n, len(B))), u[:, 0])                     # (n,)
        a_idx = _draw(p2[b_idx], u[:, 1])                                            # (n,)
        v1, v2 = k1[b_idx], k2[b_idx, a_idx]
        chain_rows += [(it.item, j, B[b_idx[j]], V[a_idx[j]], bool(v1[j]), bool(v2[j])) for j in range(n)]

        t = V.index(it.value)
        votes = np.bincount(a_idx, minlength=len(V))
        first = int(np.flatnonzero(votes[a_idx] == votes.max())[0])                 # ties: the answer drawn first
        a = float(p1 @ (k1[:, None] * k2 * p2).sum(1))                               # P(a chain verifies)
        c = float(p1 @ (k1 * k2[:, t] * p2[:, t]))                                   # ... and is right
        hit = np.flatnonzero(v1 & v2)
        j_ver = int(hit[0]) if len(hit) else None
        used = n if j_ver is None else j_ver + 1
        # (method, chain that answers, exact P(correct), chains drawn, bridges whose step 2 was scored)
        picks = [("chain", 0, float(p1 @ p2[:, t]), 1, {b_idx[0]}),
                 ("majority", first, float("nan"), n, set(b_idx)),
                 ("verified", j_ver, (1 - (1 - a) ** n) * c / a if a > 0 else 0.0, used,
                  set(b_idx[:used][v1[:used]]))]             # step 2 runs only after step 1 verifies
        step1 = cost.tokens(step_prompt(it.via, it.entity), B)
        for method, j, p_correct, drawn, need in picks:
            tokens = step1 + sum(cost.tokens(step_prompt(it.relation, B[i]), V) for i in sorted(need))
            answer, via = ("", "") if j is None else (V[a_idx[j]], B[b_idx[j]])
            rows.append((it.item, method, it.entity, it.bridge, it.relation, it.value, answer, via, j is not None,
                         answer == it.value, p_correct, drawn, tokens, cost.flops(tokens)))
    answers = pd.DataFrame(rows, columns=ANSWER_COLUMNS)
    chains = pd.DataFrame(chain_rows, columns=["item", "chain", "bridge", "answer", "verified1", "verified2"])
    return answers, chains


# -- evaluation -----------------------------------------------------------------------------------

def by_method(answers: pd.DataFrame, *, confidence_level: float = 0.95) -> pd.DataFrame:
    """Per method: accuracy, accuracy among answered and the paired test vs direct, with coverage and cost.

    Parameters
    ----------
    answers : rows of :func:`answer_direct` and :func:`answer_chains` on the same items.
    confidence_level : of every interval.

    Returns
    -------
    DataFrame with the columns `SUMMARY_COLUMNS`, tidy: one row per (``strategy``, ``measure``), strategies
    in ``METHODS`` order (``strategy`` is the answers' ``method``: in a result row ``method`` names the
    statistical method), then the columns `dint.stats.ROW`. Measures: ``accuracy`` (an abstention counts as
    wrong; Wilson interval; ``n`` questions), ``selective_accuracy`` (among answered, Wilson; NaN with a
    ``reason`` when nothing was answered) and, for every strategy but direct, ``vs_direct`` (accuracy −
    direct accuracy on the same questions, Newcombe's paired interval and McNemar's exact ``pvalue``; NaN
    with a ``reason`` when the two never disagree). Plain per-strategy columns, the same on its rows:
    ``correct``, ``answered``, ``coverage`` and ``abstention`` rates, ``expected_accuracy`` (mean exact
    ``p_correct``; NaN where not exact), mean ``chains``, ``tokens`` and ``flops`` (totals) and their
    per-question means.

    Notes
    -----
    Wilson (1927); McNemar (1947); Newcombe (1998), Stat Med 17:2635 — via `dint.stats.proportion`
    and `dint.stats.proportions.mcnemar`.
    """
    missing = set(ANSWER_COLUMNS) - set(answers.columns)
    if missing:
        raise ValueError(f"answers lacks columns {sorted(missing)}: pass the rows of answer_direct/answer_chains")
    correct = answers.pivot(index="item", columns="method", values="correct")
    rows = []
    for m in [m for m in METHODS if m in correct.columns]:
        g = answers[answers["method"] == m]
        k, n, answered = int(g["correct"].sum()), len(g), int(g["answered"].sum())
        nan = float("nan")
        plain = {"correct": k, "answered": answered, "coverage": answered / n, "abstention": 1 - answered / n,
                 "expected_accuracy": g["p_correct"].mean() if g["p_correct"].notna().all() else nan,
                 "chains": g["chains"].mean(), "tokens": int(g["tokens"].sum()), "flops": float(g["flops"].sum()),
                 "tokens_per_question": g["tokens"].mean(), "flops_per_question": g["flops"].mean()}
        acc = proportion(k, n, confidence_level=confidence_level)
        sel = proportion(k, answered, confidence_level=confidence_level) if answered else Result(
            nan, ConfidenceInterval(nan, nan), 0, acc.method, reason="no question answered")
        rows += [{**acc.row(strategy=m, measure="accuracy"), **plain},
                 {**sel.row(strategy=m, measure="selective_accuracy"), **plain}]
        if m != "direct" and "direct" in correct.columns:
            pair = correct[["direct", m]].dropna()
            test = mcnemar(pair["direct"].astype(bool), pair[m].astype(bool), confidence_level=confidence_level)
            rows.append({**test.row(strategy=m, measure="vs_direct"), **plain})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def evaluate(model, tokenizer, world: World, store, config: ReasoningConfig = ReasoningConfig(), *,
             facts: pd.DataFrame | None = None, scorer: Scorer | None = None, confidence_level: float = 0.95,
             progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Direct, chain, majority and verified answers to the same two-hop questions, and their summary.

    Parameters
    ----------
    model, tokenizer : a `transformers` causal LM (e.g. after SFT on QA) and its tokenizer.
    world : World
    store : DocumentStore the verifier checks against (clean or stale: the caller's choice).
    config : ReasoningConfig; ``max_questions`` > 0 keeps a seeded subset of the questions.
    facts : restrict to questions whose two facts are among these rows of ``world.facts``.
    scorer : optional distribution function instead of the model (see :func:`answer_direct`).
    confidence_level : of the summary's intervals.
    progress : show progress bars.

    Returns
    -------
    answers : per (question, method), the columns of ``ANSWER_COLUMNS``.
    summary : :func:`by_method` of ``answers``.
    """
    if not isinstance(config, ReasoningConfig):
        raise TypeError(f"config must be a ReasoningConfig, got {type(config).__name__}")
    items = twohop_items(world, facts)
    if 0 < config.max_questions < len(items):
        keep = np.random.default_rng(config.seed).choice(len(items), config.max_questions, replace=False)
        items = items.iloc[np.sort(keep)].reset_index(drop=True)
    direct = answer_direct(model, tokenizer, world, items, config, scorer=scorer, progress=progress)
    chains, _ = answer_chains(model, tokenizer, world, items, store, config, scorer=scorer, progress=progress)
    answers = pd.concat([direct, chains], ignore_index=True)
    order = answers["method"].map(METHODS.index)
    answers = answers.iloc[np.lexsort((order, answers["item"]))].reset_index(drop=True)
    return answers, by_method(answers, confidence_level=confidence_level)
