"""Verifiers, and selection by verification: sample answers until one is verified.

Reliability comes from checking an answer against a reference, not from the model that wrote it.
A *verifier* scores (item, answer) pairs; three kinds are here:

``ReferenceVerifier``  exact look-up of (entity, relation, value) in a document store or the
                       world's facts table. It accepts what the reference states, so a stale
                       store accepts stale claims: the verifier is only as right as its reference.
``NumericVerifier``    numeric answers (arithmetic): parse the answer's number, compare it with the
                       item's reference value within a relative tolerance.
``LearnedVerifier``    a reward model's score squashed to [0, 1], with a conformal threshold that
                       holds a target error rate (it learns what labelers prefer, not the truth).

Protocol: a verifier has a ``name``, ``check(items, answers) -> (n,)`` scores in [0, 1] (or bools)
and ``cost(items, answers) -> (n,)`` forward tokens (0 for look-ups). ``items`` is a DataFrame (or
an array, see each verifier) with one row per answer.

Selection on a finite candidate set is exact. Data convention: ``p`` is an (m, k) array, per item
the answer distribution over its k candidates (rows sum to 1, e.g. :func:`dint.scoring.score`'s
``p_set``; pad ragged sets with p = 0); ``accept`` / ``score`` are (m, k) arrays over the same
candidates (see :func:`verify_candidates`); ``correct`` is (m, k) boolean or (m,) the index of
the true candidate. A single item may be passed as (k,) arrays.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.special import expit

from .calibration import ConformalResult, conformal_threshold
from .interventions import bestofn

__all__ = ["CandidateChecks", "LearnedVerifier", "NumericVerifier", "ReferenceVerifier", "Verifier",
           "best_of_n_by_verifier", "parse_number", "sample_until_verified",
           "sample_until_verified_mc", "verify_candidates"]

_SUM_TOL = 1e-6          # largest |sum(p) - 1| accepted
SELECTION_COLUMNS = ["item", "budget", "p_correct", "p_wrong", "p_abstain", "draws", "cost"]


# ------------------------------------------------------------------------------ the protocol
@runtime_checkable
class Verifier(Protocol):
    """What selection needs of a verifier."""

    name: str

    def check(self, items, answers) -> np.ndarray:
        """Score in [0, 1] (or a bool) per (item, answer) pair, (n,)."""

    def cost(self, items, answers) -> np.ndarray:
        """Forward-pass tokens spent checking each pair, (n,); 0 for store look-ups."""


def _answers(answers, n: int | None = None) -> list:
    if isinstance(answers, str) or not isinstance(answers, (Sequence, np.ndarray, pd.Series)):
        raise TypeError(f"answers must be a sequence of answers (one per item), got {type(answers).__name__}")
    answers = list(answers)
    if n is not None and len(answers) != n:
        raise ValueError(f"answers has {len(answers)} entries but items has {n}; pass them paired")
    return answers


def _norm(text) -> str:
    """An answer as the store spells values: stripped, single spaces (completions start with one)."""
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------ reference
class ReferenceVerifier:
    """Exact check of (entity, relation, value) claims against a reference.

    Parameters
    ----------
    store : DocumentStore (:func:`dint.interventions.retrieval.build_store`) or a DataFrame with columns
        ``entity``, ``relation``, ``value`` (and optionally ``fact``): the claims the reference states.
        A claim is accepted when some row states it, so a stale store accepts its stale values.
    name : label in result tables.

    Notes
    -----
    ``items`` in :meth:`check` is a DataFrame with ``entity`` and ``relation`` columns, or with a
    ``fact`` column (e.g. ``world.prompts(...)``) resolved through the reference's ``fact`` column.
    Look-ups cost no forward tokens.
    """

    def __init__(self, store, *, name: str = "reference"):
        table = getattr(store, "table", store)
        need = {"entity", "relation", "value"}
        if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
            raise ValueError("store must be a DocumentStore or a DataFrame with columns "
                             f"{sorted(need)}, got {type(store).__name__}")
        self.name = name
        self.claims = set(zip(table["entity"], table["relation"], map(_norm, table["value"])))
        self._fact = None
        if "fact" in table.columns:
            first = table.drop_duplicates("fact")
            self._fact = dict(zip(first["fact"], zip(first["entity"], first["relation"])))

    @classmethod
    def from_world(cls, world, *, name: str = "truth") -> ReferenceVerifier:
        """A verifier against the world's true values (its ``facts`` table): the ideal reference."""
        return cls(world.facts, name=name)

    def _keys(self, items) -> list[tuple[str, str]]:
        if not isinstance(items, pd.DataFrame):
            raise TypeError(f"items must be a DataFrame with entity and relation (or fact) columns, "
                             f"got {type(items).__name__}")
        if {"entity", "relation"} <= set(items.columns):
            return list(zip(items["entity"], items["relation"]))
        if "fact" in items.columns and self._fact is not None:
            missing = set(items["fact"]) - set(self._fact)
            if missing:
                raise ValueError(f"items has facts the reference does not know: {sorted(missing)[:5]}")
            return [self._fact[f] for f in items["fact"]]
        raise ValueError("items needs entity and relation columns (or fact, when the reference has one)")

    def check(self, items, answers) -> np.ndarray:
        """Whether the reference states each claim (entity, relation, answer), (n,) bool."""
        keys = self._keys(items)
        answers = _answers(answers, len(keys))
        return np.array([(e, r, _norm(a)) in self.claims for (e, r), a in zip(keys, answers)], dtype=bool)

    def cost(self, items, answers) -> np.ndarray:
        """Zero tokens per pair: a look-up, not a forward pass."""
        return np.zeros(len(_answers(answers, len(self._keys(items)))), dtype=np.int64)


# ------------------------------------------------------------------------------ numeric
_NUMBER = re.compile(
    r"(?P<num>[-+]?\d+)\s*/\s*(?P<den>\d+)"                                # a fraction 3/4
    r"|(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"  # 1,234.5 or 12 or 1e3
    r"|(?<![\w.])[-+]?\.\d+(?:[eE][-+]?\d+)?")                             # .5


def parse_number(answer) -> float:
    """The number an answer states (its last one, the final-answer convention); NaN if none.

    Handles ints and floats, thousands separators ("1,234"), signs (also the Unicode minus),
    decimals and exponents, fractions ("3/4"), and surrounding text ("the answer is $12.").
    Booleans and None are not numbers.
    """
    if answer is None or isinstance(answer, (bool, np.bool_)):
        return float("nan")
    if isinstance(answer, (int, float, np.integer, np.floating)):
        return float(answer)
    text = str(answer).replace("\u2212", "-")
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return float("nan")
    m = matches[-1]
    if m.group("num") is not None:
        den = int(m.group("den"))
        return int(m.group("num")) / den if den else float("nan")
    return float(m.group(0).replace(",", ""))


class NumericVerifier:
    """Accept a numeric answer within ``tolerance · max(1, |reference|)`` of the reference value.

    Parameters
    ----------
    tolerance : relative tolerance >= 0 (absolute below 1 in magnitude).
    column : column of an ``items`` DataFrame holding the reference values (default ``target``,
        else ``value``).
    name : label in result tables.

    Notes
    -----
    ``items`` is a DataFrame with the reference column, or a 1-D array of reference values (numbers
    or numeric strings). An answer with no number is rejected. Checking costs no forward tokens.
    """

    def __init__(self, tolerance: float = 1e-6, *, column: str | None = None, name: str = "numeric"):
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance={tolerance!r}: must be a finite number >= 0")
        self.tolerance, self.column, self.name = float(tolerance), column, name

    def _reference(self, items) -> np.ndarray:
        if isinstance(items, pd.DataFrame):
            col = self.column or ("target" if "target" in items.columns else "value")
            if col not in items.columns:
                raise ValueError(f"items has no {col!r} column of reference values")
            values = items[col].tolist()
        else:
            values = list(np.asarray(items, dtype=object).ravel()) if np.ndim(items) else None
            if values is None:
                raise ValueError("items must be a DataFrame or a 1-D array of reference values")
        ref = np.array([parse_number(v) for v in values], dtype=float)
        if not np.isfinite(ref).all():
            raise ValueError(f"items has {int((~np.isfinite(ref)).sum())} reference values that are not "
                             "finite numbers")
        return ref

    def check(self, items, answers) -> np.ndarray:
        """Whether each answer's number is within tolerance of its reference, (n,) bool."""
        ref = self._reference(items)
        got = np.array([parse_number(a) for a in _answers(answers, len(ref))], dtype=float)
        with np.errstate(invalid="ignore"):
            return np.abs(got - ref) <= self.tolerance * np.maximum(1.0, np.abs(ref))

    def cost(self, items, answers) -> np.ndarray:
        """Zero tokens per pair: arithmetic, not a forward pass."""
        return np.zeros(len(_answers(answers, len(self._reference(items)))), dtype=np.int64)


# ------------------------------------------------------------------------------ learned
class LearnedVerifier:
    """A reward model as a verifier: score = sigmoid((reward − shift) / scale).

    Parameters
    ----------
    reward_model : object with ``score(prompts, completions) -> (n,)`` rewards, e.g.
        :class:`dint.interventions.reward.RewardModel`; its ``encode`` (if any) counts tokens.
    prompts : sequence of prompt strings, or a DataFrame with a ``prompt`` column, indexed by item
        position; None when ``items`` carries the prompts.
    shift, scale : the reward's affine map before the sigmoid (scale > 0).
    name : label in result tables.

    Notes
    -----
    ``items`` in :meth:`check` is an int array of positions into ``prompts``, or a DataFrame with an
    ``item`` column (positions into ``prompts``) or a ``prompt`` column. Cost is the reward model's
    forward tokens, ``prompt + answer + eos`` per pair (inference FLOPs = 2·N·tokens). The
    reward orders answers by what the labelers preferred; only :meth:`calibrate` ties a threshold
    to an error rate.
    """

    def __init__(self, reward_model, prompts=None, *, shift: float = 0.0, scale: float = 1.0,
                 name: str = "learned"):
        if not callable(getattr(reward_model, "score", None)):
            raise TypeError("reward_model must have a score(prompts, completions) method")
        if isinstance(prompts, pd.DataFrame):
            if "prompt" not in prompts.columns:
                raise ValueError("prompts is a DataFrame without a prompt column")
            prompts = prompts["prompt"].tolist()
        elif prompts is not None:
            if isinstance(prompts, str):
                raise TypeError("prompts must be a sequence of prompt strings, not one string")
            prompts = list(prompts)
        if not (math.isfinite(shift)):
            raise ValueError(f"shift={shift!r}: must be finite")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale={scale!r}: must be a finite number > 0")
        self.reward_model, self.prompts, self.name = reward_model, prompts, name
        self.shift, self.scale = float(shift), float(scale)
        self.calibration: ConformalResult | None = None

    @property
    def threshold(self) -> float:
        """The calibrated answer-threshold on the score (see :meth:`calibrate`)."""
        if self.calibration is None:
            raise RuntimeError("the verifier is not calibrated: call calibrate(items, answers, correct, alpha=...)")
        return self.calibration.threshold

    def _prompts(self, items) -> list[str]:
        if isinstance(items, pd.DataFrame):
            if "item" in items.columns and self.prompts is not None:
                idx = items["item"].to_numpy()
            elif "prompt" in items.columns:
                return items["prompt"].tolist()
            else:
                raise ValueError("items needs an item column (with prompts given) or a prompt column")
        else:
            idx = np.asarray(items)
            if self.prompts is None:
                raise ValueError("items are positions but the verifier has no prompts: pass prompts, or "
                                 "items as a DataFrame with a prompt column")
        if idx.ndim != 1 or (idx.size and (not np.issubdtype(idx.dtype, np.integer)
                                           or idx.min() < 0 or idx.max() >= len(self.prompts))):
            raise ValueError(f"items must be integer positions in 0..{len(self.prompts) - 1} (into prompts)")
        return [self.prompts[i] for i in idx]

    def reward(self, items, answers) -> np.ndarray:
        """The reward model's raw rewards, (n,)."""
        prompts = self._prompts(items)
        r = np.asarray(self.reward_model.score(prompts, _answers(answers, len(prompts))), dtype=float)
        if r.shape != (len(prompts),) or not np.isfinite(r).all():
            raise ValueError(f"reward_model.score returned {r.shape} (finite: {np.isfinite(r).all()}); "
                             f"need ({len(prompts)},) finite rewards")
        return r

    def check(self, items, answers) -> np.ndarray:
        """sigmoid((reward − shift)/scale) per pair, (n,) in [0, 1]."""
        return expit((self.reward(items, answers) - self.shift) / self.scale)

    def accept(self, items, answers) -> np.ndarray:
        """Whether each score reaches the calibrated threshold, (n,) bool."""
        return self.check(items, answers) >= self.threshold

    def cost(self, items, answers) -> np.ndarray:
        """Forward tokens of scoring each pair: ``prompt + answer + eos``."""
        prompts = self._prompts(items)
        answers = _answers(answers, len(prompts))
        encode = getattr(self.reward_model, "encode", None)
        if callable(encode):
            return np.array([len(x) for x in encode(prompts, answers)], dtype=np.int64)
        return np.array([len(f"{p} {a}".split()) + 1 for p, a in zip(prompts, answers)], dtype=np.int64)

    def calibrate(self, items, answers, correct, *, alpha: float = 0.05) -> ConformalResult:
        """Set the threshold by conformal risk control on labelled calibration pairs.

        Parameters
        ----------
        items, answers : (n,) calibration pairs, exchangeable with the pairs to be verified.
        correct : (n,) boolean or 0/1, whether each answer is right.
        alpha : target of P(accepted and wrong), in (0, 1).

        Returns
        -------
        ConformalResult (also kept as ``self.calibration``); accept when ``score >= threshold``.

        Notes
        -----
        :func:`dint.calibration.conformal_threshold` (Angelopoulos et al. 2022, "Conformal risk
        control"): the guarantee is on the joint rate P(accepted and wrong), in expectation over
        calibration sets; evaluate with :func:`dint.calibration.selective_error`.
        """
        self.calibration = conformal_threshold(self.check(items, answers), correct, alpha=alpha)
        return self.calibration


# ------------------------------------------------------------------------------ candidate matrices
@dataclass(frozen=True)
class CandidateChecks:
    """A verifier's verdicts over each item's candidate set (ragged sets padded).

    Attributes
    ----------
    score : (m, k) float, the verifier's score per candidate (0 where padded).
    cost : (m, k) int, tokens spent checking each candidate (0 where padded).
    mask : (m, k) bool, True where a candidate exists.
    verifier : the verifier's name.
    """

    score: np.ndarray
    cost: np.ndarray
    mask: np.ndarray
    verifier: str


def verify_candidates(verifier, items, candidates) -> CandidateChecks:
    """Run ``verifier`` on every (item, candidate) pair.

    Parameters
    ----------
    verifier : a :class:`Verifier`.
    items : m items in the verifier's format (a DataFrame's rows, or an array).
    candidates : m sequences of candidate answers (e.g. ``world.prompts()["candidates"]``).

    Returns
    -------
    CandidateChecks with (m, k) matrices, k the largest candidate set.
    """
    if not isinstance(verifier, Verifier):
        raise TypeError(f"verifier must have name, check(items, answers) and cost(items, answers); "
                         f"got {type(verifier).__name__}")
    candidates = [list(c) for c in candidates]
    m = len(items)
    if len(candidates) != m:
        raise ValueError(f"candidates has {len(candidates)} sets but items has {m}; pass one set per item")
    sizes = np.array([len(c) for c in candidates], dtype=int)
    if m == 0 or sizes.min() < 1:
        raise ValueError("candidates must hold at least one item, each with at least one candidate")
    row = np.repeat(np.arange(m), sizes)
    col = np.concatenate([np.arange(s) for s in sizes])
    flat_items = items.iloc[row].reset_index(drop=True) if isinstance(items, pd.DataFrame) \
        else np.asarray(items)[row]
    answers = [a for c in candidates for a in c]
    k = int(sizes.max())
    score, cost = np.zeros((m, k)), np.zeros((m, k), dtype=np.int64)
    mask = np.zeros((m, k), dtype=bool)
    score[row, col] = np.asarray(verifier.check(flat_items, answers), dtype=float)
    cost[row, col] = np.asarray(verifier.cost(flat_items, answers), dtype=np.int64)
    mask[row, col] = True
    return CandidateChecks(score=score, cost=cost, mask=mask, verifier=verifier.name)


# ------------------------------------------------------------------------------ selection
def _check_p(p) -> tuple[np.ndarray, bool]:
    p = np.asarray(p, dtype=float)
    if p.ndim not in (1, 2) or p.shape[-1] < 1 or p.size == 0:
        raise ValueError(f"p must have shape (k,) or (m, k) with k >= 1, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("p must be finite and non-negative")
    total = p.sum(-1)
    if (np.abs(total - 1.0) > _SUM_TOL).any():
        raise ValueError(f"p must sum to 1 over the last axis (sums from {total.min():.6g} to "
                         f"{total.max():.6g}); renormalise it over the candidate set")
    p2 = np.atleast_2d(p)
    return p2 / p2.sum(-1, keepdims=True), p.ndim == 1


def _matrix(name, x, shape, *, unit: bool) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape != shape and not (shape[0] == 1 and x.shape == shape[1:]):
        raise ValueError(f"{name} must have the shape of p {shape}, got {x.shape}")
    x = np.broadcast_to(x, shape)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    if unit and ((x < 0) | (x > 1)).any():
        raise ValueError(f"{name} must hold values in [0, 1] (booleans, or acceptance probabilities)")
    return x


def _correct(correct, shape) -> np.ndarray:
    c = np.asarray(correct)
    m, k = shape
    if c.shape in ((m,), ()) and np.issubdtype(c.dtype, np.integer) and c.dtype != bool:
        c = np.broadcast_to(c, (m,))
        if ((c < 0) | (c >= k)).any():
            raise ValueError(f"correct must hold candidate indices in 0..{k - 1}")
        out = np.zeros(shape, dtype=bool)
        out[np.arange(m), c] = True
        return out
    if c.shape != shape and not (m == 1 and c.shape == shape[1:]):
        raise ValueError(f"correct must be (m,) indices of the true candidate or a boolean array of "
                         f"p's shape {shape}, got shape {c.shape}")
    if c.dtype != bool and not np.isin(c, (0, 1)).all():
        raise ValueError("correct must be boolean or 0/1")
    return np.broadcast_to(c.astype(bool), shape)


def _budgets(budget) -> list[int]:
    b = np.atleast_1d(np.asarray(budget, dtype=object))
    if b.ndim != 1 or b.size == 0 or any(isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer))
                                         or x < 1 for x in b):
        raise ValueError(f"budget={budget!r}: must be an integer >= 1 (draws) or a sequence of them")
    return [int(x) for x in b]


def _cost(cost, shape) -> np.ndarray:
    c = np.asarray(cost, dtype=float)
    if c.ndim == 1 and c.shape == (shape[0],):
        c = c[:, None]
    elif c.shape not in ((), shape) and not (shape[0] == 1 and c.shape == shape[1:]):
        raise ValueError(f"cost must be a scalar, (m,) per item or p's shape {shape} per candidate; "
                         f"got shape {c.shape}")
    c = np.broadcast_to(c, shape)
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("cost must be finite and non-negative (tokens per draw)")
    return c


def _prepare(p, accept, correct, budget, cost):
    p, _ = _check_p(p)
    a = _matrix("accept", accept, p.shape, unit=True)
    return p, a, _correct(correct, p.shape), _budgets(budget), _cost(cost, p.shape)


def sample_until_verified(p, accept, budget, *, correct, cost=1.0) -> pd.DataFrame:
    """Exact outcome of "draw up to ``budget`` answers from p, return the first accepted, else abstain".

    Parameters
    ----------
    p : (m, k) or (k,) answer distribution per item over its candidates (rows sum to 1).
    accept : same shape, per candidate the probability that the verifier accepts one draw of it
        (booleans for a deterministic verifier; draws are checked independently).
    budget : int >= 1, or a sequence of them: the most draws per item.
    correct : (m, k) boolean, or (m,) index of the true candidate.
    cost : tokens spent per draw of a candidate — generation plus verification — as a scalar,
        (m,) per item or (m, k) per candidate (e.g. ``gen_tokens + checks.cost``).

    Returns
    -------
    DataFrame, one row per (item, budget): ``item``, ``budget``, ``p_correct``, ``p_wrong``,
    ``p_abstain`` (they sum to 1), ``draws`` (expected draws) and ``cost`` (expected tokens).

    Notes
    -----
    With per-draw acceptance q = Σ p·a and accepted-and-right s = Σ p·a·1[correct], the draws are
    iid, so P(abstain) = (1 − q)^B, P(correct) = s/q · (1 − (1 − q)^B), E[draws] =
    (1 − (1 − q)^B)/q (B when q = 0), and by Wald's identity E[cost] = E[draws] · Σ p·cost.
    With a perfect verifier P(correct) = 1 − (1 − p_true)^B: verification turns coverage of the
    truth under sampling (pass@B) into accuracy.
    """
    p, a, c, budgets, tok = _prepare(p, accept, correct, budget, cost)
    q = (p * a).sum(-1)                                               # (m,) P(a draw is accepted)
    s = (p * a * c).sum(-1)                                           # (m,) P(accepted and right)
    per_draw = (p * tok).sum(-1)                                      # (m,) expected tokens per draw
    frames = []
    for b in budgets:
        with np.errstate(divide="ignore", invalid="ignore"):
            answered = -np.expm1(b * np.log1p(-np.minimum(q, 1.0)))   # 1 − (1 − q)^B
            draws = np.where(q > 0, answered / q, float(b))
            right = np.where(q > 0, s / q, 0.0) * answered
        wrong = np.clip(answered - right, 0.0, 1.0)
        frames.append(pd.DataFrame({"item": np.arange(len(p)), "budget": b, "p_correct": right,
                                    "p_wrong": wrong, "p_abstain": 1.0 - answered, "draws": draws,
                                    "cost": draws * per_draw}))
    return pd.concat(frames, ignore_index=True)[SELECTION_COLUMNS]


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def sample_until_verified_mc(p, accept, budget, *, correct, cost=1.0, rng, size: int = 1000) -> pd.DataFrame:
    """Monte-Carlo twin of :func:`sample_until_verified`: ``size`` simulated runs per item.

    Parameters
    ----------
    p, accept, budget, correct, cost : as in :func:`sample_until_verified`.
    rng : numpy Generator or int seed, the only source of randomness.
    size : int >= 1, runs per item and budget.

    Returns
    -------
    DataFrame with the columns of :func:`sample_until_verified` (run means) plus ``size``.
    """
    p, a, c, budgets, tok = _prepare(p, accept, correct, budget, cost)
    gen = _rng(rng)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size={size!r}: must be an integer >= 1")
    k = p.shape[1]
    rows = []
    for b in budgets:
        for i, (pi, ai, ci, ti) in enumerate(zip(p, a, c, tok)):
            cdf = np.cumsum(pi)
            last = k - 1 - np.argmax(pi[::-1] > 0)                      # never draw a p = 0 candidate
            draws = np.minimum(np.searchsorted(cdf, gen.random((size, b)) * cdf[-1], side="right"), last)
            ok = gen.random((size, b)) < ai[draws]                      # (size, B) accepted draws
            hit = ok.any(1)
            first = np.where(hit, np.argmax(ok, 1), b - 1)              # index of the last draw made
            chosen = draws[np.arange(size), first]
            n_draws = first + 1
            spent = np.where(np.arange(b) < n_draws[:, None], ti[draws], 0.0).sum(1)
            right = hit & ci[chosen]
            rows.append((i, b, right.mean(), (hit & ~ci[chosen]).mean(), 1.0 - hit.mean(),
                         n_draws.mean(), spent.mean(), int(size)))
    return pd.DataFrame(rows, columns=[*SELECTION_COLUMNS, "size"])


def best_of_n_by_verifier(p, score, n, *, correct, threshold: float = -math.inf, cost=1.0) -> pd.DataFrame:
    """Exact outcome of "draw n answers from p, keep the highest-scored; abstain if below threshold".

    Parameters
    ----------
    p : (m, k) or (k,) answer distribution per item (rows sum to 1).
    score : same shape, the verifier's score per candidate (ties: see :mod:`dint.interventions.bestofn`).
    n : int >= 1, or a sequence of them: draws per item.
    correct : (m, k) boolean, or (m,) index of the true candidate.
    threshold : answer only when the kept answer's score >= threshold (e.g. a calibrated
        ``LearnedVerifier.threshold``); -inf always answers.
    cost : tokens per draw of a candidate, as in :func:`sample_until_verified`.

    Returns
    -------
    DataFrame with the columns of :func:`sample_until_verified`; ``budget`` is n and ``draws`` = n
    (all n draws are made and verified).

    Notes
    -----
    The kept answer's law is :func:`dint.interventions.bestofn.exact`; the threshold then abstains
    on the kept answers scored below it. Stiennon et al. (2020), App. G.3.
    """
    p, _ = _check_p(p)
    r = _matrix("score", score, p.shape, unit=False)
    c, budgets, tok = _correct(correct, p.shape), _budgets(n), _cost(cost, p.shape)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or math.isnan(threshold):
        raise ValueError(f"threshold={threshold!r}: must be a number (-inf always answers)")
    keep = r >= threshold
    per_draw = (p * tok).sum(-1)
    frames = []
    for b in budgets:
        q = bestofn.exact(p, r, b) * keep                             # (m, k) law of answered picks
        right, answered = (q * c).sum(-1), q.sum(-1)
        frames.append(pd.DataFrame({"item": np.arange(len(p)), "budget": b, "p_correct": right,
                                    "p_wrong": np.clip(answered - right, 0.0, 1.0),
                                    "p_abstain": np.clip(1.0 - answered, 0.0, 1.0), "draws": float(b),
                                    "cost": b * per_draw}))
    return pd.concat(frames, ignore_index=True)[SELECTION_COLUMNS]
