"""What every estimate and test of dint returns: an estimate with its interval, as a frozen dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ConfidenceInterval", "Result"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Two-sided confidence interval ``[low, high]``."""

    low: float
    high: float


@dataclass(frozen=True)
class Result:
    """An estimate with its interval (and a p-value where a test is made).

    ``reason`` says why a part of the result is NaN (not estimable, e.g. "x is constant"); it is
    empty when everything the method reports is defined.
    """

    statistic: float
    confidence_interval: ConfidenceInterval
    n: int
    method: str
    pvalue: float = float("nan")
    reason: str = ""

    def asdict(self) -> dict:
        """Flat dict for tables and the paper's macros."""
        d = asdict(self)
        ci = d.pop("confidence_interval")
        return {**d, "ci_low": ci["low"], "ci_high": ci["high"]}
