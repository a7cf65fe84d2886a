"""Verifiers: check an answer against a reference state.

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

`verify_candidates` lays a verifier's scores out over each item's candidate set, the input of
selection by verification (`dint.analyses.selection`).
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

from .selective import ConformalResult, conformal_threshold

__all__ = ["CandidateChecks", "LearnedVerifier", "NumericVerifier", "ReferenceVerifier", "Verifier",
           "parse_number", "verify_candidates"]



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
        :func:`dint.selective.conformal_threshold` (Angelopoulos et al. 2022, "Conformal risk
        control"): the guarantee is on the joint rate P(accepted and wrong), in expectation over
        calibration sets; evaluate with :func:`dint.selective.selective_error`.
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
