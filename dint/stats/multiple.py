"""Multiple testing: p-values adjusted as a family (`adjust`), and a table's tests adjusted as a notebook's
family (`holm`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_choice
from .result import is_floor

__all__ = ["adjust", "holm"]


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


def holm(table: pd.DataFrame, *, family: list[str] | None = None) -> pd.DataFrame:
    """Add ``pvalue_holm``: Holm's adjustment across the rows with a p-value, within each family.

    Parameters
    ----------
    table : one row per estimate, with a ``pvalue`` column (NaN where no test is made) and optionally a
        ``reason`` column: why a test could not be made (not estimable: an aliased term, no discordant
        pairs, identical samples, ...), empty otherwise
    family : the columns whose rows form one family (e.g. ``["measure"]``: the accuracy tests of every
        intervention are one family, the entropy tests another); None: all rows

    Returns
    -------
    A copy of ``table`` with ``pvalue_holm`` (NaN where the row has no p-value), and, where ``table`` has a
    ``pvalue_floor`` column (`Result.row` of a Monte-Carlo p-value at its floor), ``pvalue_holm_floor``: the
    adjusted p-value of each row whose p-value is at its floor, which is then a bound too (the adjustment
    is monotone in every p-value), NaN elsewhere; `stats.results` with ``pvalue="pvalue_holm"`` carries it.

    Notes
    -----
    Holm (1979). A test that could not be made (NaN p-value with a ``reason``) is left out of its family,
    so the adjustment is over the tests that were made, and a line is printed for each, naming it and the
    reason: a notebook's output says what its family left out.
    """
    out = table.copy()
    out["pvalue_holm"] = np.nan
    groups = [(None, out)] if not family else out.groupby(family, sort=False)
    for _, g in groups:
        ok = g["pvalue"].notna()
        if ok.any():
            out.loc[g.index[ok], "pvalue_holm"] = adjust(g.loc[ok, "pvalue"].to_numpy(float), method="holm")
    if "pvalue_floor" in out.columns:
        floored = [is_floor(p, f) for p, f in zip(out["pvalue"], out["pvalue_floor"])]
        out["pvalue_holm_floor"] = out["pvalue_holm"].where(floored)
    if "reason" in out.columns:
        left_out = out[out["pvalue"].isna() & out["reason"].fillna("").astype(bool)]
        names = [c for c in out.columns if c != "reason" and not pd.api.types.is_numeric_dtype(out[c])]   # labels
        for _, r in left_out.iterrows():
            name = ", ".join(f"{c}={r[c]}" for c in names if isinstance(r[c], str))
            print(f"not estimable, left out of the Holm family: {name} ({r['reason']})")
    return out
