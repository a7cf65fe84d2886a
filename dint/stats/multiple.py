"""Multiple testing: p-values adjusted as a family."""
from __future__ import annotations

import numpy as np

from .checks import check_choice

__all__ = ["adjust"]


def adjust(pvalues, *, method: str = "holm", nan_policy: str = "raise") -> np.ndarray:
    """Adjust p-values for multiple comparisons.

    Parameters
    ----------
    pvalues : (k,) array of p-values in [0, 1]
    method : {"holm", "fdr_bh"}
        Holm (1979) step-down family-wise error control, or Benjamini & Hochberg (1995)
        false discovery rate.
    nan_policy : {"raise", "omit"}
        What to do with NaN p-values (tests that could not be made, `Result.reason`): raise, or
        leave them out of the family, so the others are adjusted among themselves, and return
        NaN in their places.

    Returns
    -------
    (k,) numpy array of adjusted p-values, in the input order.

    Notes
    -----
    Wraps ``statsmodels.stats.multitest.multipletests``. A test that could not be made is not a
    member of the family: counting it would make the others' adjustment stricter for nothing.
    """
    from statsmodels.stats.multitest import multipletests

    check_choice("method", method, ("holm", "fdr_bh"))
    check_choice("nan_policy", nan_policy, ("raise", "omit"))
    p = np.asarray(pvalues, float)
    if p.ndim != 1:
        raise ValueError("pvalues must be a 1-D array")
    missing = np.isnan(p)
    if nan_policy == "raise" and missing.any():
        raise ValueError(f"pvalues must lie in [0, 1] (no nan): {int(missing.sum())} are NaN; pass "
                         "nan_policy='omit' to leave tests that could not be made out of the family")
    if not ((p[~missing] >= 0) & (p[~missing] <= 1)).all():
        raise ValueError("pvalues must lie in [0, 1]")
    out = np.full(len(p), np.nan)
    if (~missing).any():
        out[~missing] = multipletests(p[~missing], method=method)[1]
    return out
