"""What every estimate and test of dint returns: an estimate with its interval, as a frozen dataclass.

One convention from a function to the paper: a `Result` object (scipy's field names) while it is computed;
a table row with the columns `ROW` (`Result.row`) in tidy tables, plots, ``numbers.json`` (`Result.asdict`)
and the claims; back to a `Result` by `Result.from_row`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from string import Formatter

__all__ = ["ROW", "ConfidenceInterval", "Result", "is_floor", "results"]

# the columns of a result in a table, in order
ROW = ("estimate", "ci_low", "ci_high", "pvalue", "n", "method", "reason")


@dataclass(frozen=True)
class ConfidenceInterval:
    """Two-sided confidence interval ``[low, high]``."""

    low: float
    high: float


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def _floor(value) -> float | None:
    """A p-value floor from a table cell: None where there is none (missing or NaN)."""
    value = _float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Result:
    """An estimate with its interval (and a p-value where a test is made).

    ``reason`` says why a part of the result is NaN (not estimable, e.g. "x is constant"); it is
    empty when everything the method reports is defined. ``pvalue_floor`` is set (not None) only where
    the p-value is a Monte-Carlo p-value at its floor, the smallest value its resamples can give
    (``1 / (B + 1)``, two-sided ``2 / (B + 1)``): no resample reached the statistic, so the data say
    "p < floor" and the paper prints that bound, not a number that reads as weak evidence.
    """

    statistic: float
    confidence_interval: ConfidenceInterval
    n: int
    method: str
    pvalue: float = float("nan")
    reason: str = ""
    pvalue_floor: float | None = None

    @property
    def at_floor(self) -> bool:
        """Whether the p-value is a Monte-Carlo p-value at its floor (a bound, "p < pvalue_floor")."""
        return is_floor(self.pvalue, self.pvalue_floor)

    def asdict(self) -> dict:
        """The flat form of ``numbers.json``: the columns `ROW` (``estimate``, ``ci_low``, ``ci_high``, ``pvalue``,
        ``n``, ``method``, ``reason``), ``pvalue_floor`` where the p-value is at its floor, then any field a
        subclass adds (e.g. McNemar's discordant counts)."""
        d = asdict(self)
        ci, estimate = d.pop("confidence_interval"), d.pop("statistic")
        row = {"estimate": estimate, "ci_low": ci["low"], "ci_high": ci["high"], "pvalue": d.pop("pvalue"),
               "n": d.pop("n"), "method": d.pop("method"), "reason": d.pop("reason")}
        floor = d.pop("pvalue_floor")
        return {**row, **({"pvalue_floor": floor} if self.at_floor else {}), **d}

    def row(self, **labels) -> dict:
        """The result as a table row: ``labels`` (e.g. ``model="sft", measure="ece"``) then the columns `ROW`,
        and ``pvalue_floor`` where the p-value is at its floor (`stats.holm` carries it to the adjusted
        p-value)."""
        return {**labels, "estimate": self.statistic, "ci_low": self.confidence_interval.low,
                "ci_high": self.confidence_interval.high, "pvalue": self.pvalue, "n": self.n, "method": self.method,
                "reason": self.reason, **({"pvalue_floor": self.pvalue_floor} if self.at_floor else {})}

    @classmethod
    def not_estimable(cls, reason: str, *, n: int = 0, method: str = "not estimable") -> "Result":
        """A result whose estimate, interval and p-value are NaN, with the ``reason`` (e.g. "no fact in the
        group"): what a table or ``numbers.json`` holds where the data do not define the quantity."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason={reason!r}: say why the quantity is not estimable")
        nan = float("nan")
        return cls(nan, ConfidenceInterval(nan, nan), n, method, nan, reason)

    @classmethod
    def from_row(cls, row, **changes) -> "Result":
        """The `Result` of a table row (a mapping, a pandas row or an ``itertuples`` tuple) with the columns
        `ROW` (``pvalue``, ``reason`` and ``pvalue_floor`` optional); ``changes`` replace fields (e.g.
        ``pvalue=`` a Holm-adjusted p-value, ``method=``)."""
        get = row.get if isinstance(row, Mapping) or hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
        missing = [c for c in ("estimate", "ci_low", "ci_high", "n", "method") if get(c, None) is None]
        if missing:
            raise ValueError(f"row lacks {missing}: a result row has the columns {ROW}")
        n = get("n")
        reason = get("reason", "")
        fields = {"statistic": _float(get("estimate")),
                  "confidence_interval": ConfidenceInterval(_float(get("ci_low")), _float(get("ci_high"))),
                  "n": int(n) if not (isinstance(n, float) and math.isnan(n)) else 0, "method": str(get("method")),
                  "pvalue": _float(get("pvalue", float("nan"))),
                  "reason": reason if isinstance(reason, str) else "",
                  "pvalue_floor": _floor(get("pvalue_floor", None))}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"changes: {sorted(unknown)} are not fields of Result ({sorted(fields)})")
        return cls(**{**fields, **changes})


def results(table, key: str, *, pvalue: str = "pvalue", **changes) -> dict[str, Result]:
    """The rows of a tidy table as named results: ``{key.format(**row): Result.from_row(row)}``.

    Parameters
    ----------
    table : a DataFrame with the columns `ROW` (``pvalue`` and ``reason`` optional) and label columns
    key : a format string over the label columns naming each row's result, e.g.
        ``"{model}_vs_{against}_{split}_d_accuracy"``; it must give every row its own name
    pvalue : the column that holds the p-value to keep (e.g. ``"pvalue_holm"`` after `holm`); its floor, where the
        table has one, is the column ``pvalue + "_floor"`` (``pvalue_floor``, ``pvalue_holm_floor``)
    changes : fields replaced in every result (e.g. ``method="McNemar exact, Holm"``)

    Returns
    -------
    dict of `Result`, in the table's row order: what ``numbers.json`` stores.
    """
    fields = {name for _, name, _, _ in Formatter().parse(key) if name}
    missing = sorted(fields - set(table.columns))
    if missing:
        raise ValueError(f"key={key!r}: the table has no column {missing}; its columns are {list(table.columns)}")
    if pvalue not in table.columns:
        raise ValueError(f"pvalue={pvalue!r}: the table has no such column; its columns are {list(table.columns)}")
    out = {}
    for row in table.to_dict("records"):
        name = key.format(**row)
        if name in out:
            raise ValueError(f"key={key!r} names two rows {name!r}: add the label that tells them apart")
        floor = _floor(row.get(f"{pvalue}_floor", None))
        out[name] = Result.from_row(row, **{"pvalue": _float(row[pvalue]), "pvalue_floor": floor, **changes})
    return out


def is_floor(pvalue, floor) -> bool:
    """Whether ``pvalue`` sits at its Monte-Carlo ``floor`` (both finite, equal up to rounding)."""
    return bool(math.isfinite(_float(pvalue)) and math.isfinite(_float(floor)) and pvalue <= floor * (1 + 1e-9))
