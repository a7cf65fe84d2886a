"""Input checks shared by the statistics: each raises ``ValueError`` naming the parameter and what it must be."""
from __future__ import annotations

import numpy as np

__all__ = ["accepts_axis", "check_choice", "check_int", "check_level", "check_n_resamples", "paired_arrays"]


def check_level(confidence_level):
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level={confidence_level!r}: must lie in (0, 1)")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(map(repr, choices))}")


def check_int(name: str, value, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name``: it must be an integer (Python or numpy, not a
    bool) in ``minimum..maximum``."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < minimum or (maximum is not None and value > maximum):
        bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name}={value!r}: must be an integer {bound}")
    return int(value)


def check_n_resamples(n_resamples):
    return check_int("n_resamples", n_resamples, 1)


def paired_arrays(x, y, min_n=2):
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if len(x) < min_n:
        raise ValueError(f"x has {len(x)} observations; need at least {min_n}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (no nan or inf)")
    return x, y


def accepts_axis(f) -> bool:
    """Whether callable ``f`` takes an ``axis`` keyword (so scipy can vectorise over resamples)."""
    import inspect
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False
    return "axis" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
