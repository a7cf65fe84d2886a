"""The composition of a model's errors and what sampling could recover, with intervals over facts.

`dint.taxonomy.classify` gives each error a class; for several models stacked
(`dint.taxonomy.diagnose`), the classes say what accuracy cannot: `class_shares` (each class's share
of the errors), `composition_test` and `compare_compositions` (do two models on the same items make
different kinds of errors, beyond their error rates: a paired, clustered permutation test), and
`pass_curve` (exact pass@k from the answer distributions, `dint.divergence.pass_exact`, averaged
with an interval: how much of each class k draws would recover).

Items are clustered (the two prompt forms of a fact, every model's answer on it), so every
interval and test resamples or permutes whole facts (`dint.stats.resampling`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..divergence import pass_exact
from ..stats.clustered import check_resampling, cluster_draws, cluster_sums, expanded_percentile, wald_pvalues
from ..stats import ConfidenceInterval, Result
from ..taxonomy import ITEM_KEYS, CLASSES
from ..stats.checks import check_int

__all__ = ["COMPARISONS", "CompositionResult", "class_shares", "compare_compositions", "composition_test", "pass_curve"]


def _check_items(items, need, name="items"):
    missing = sorted(set(need) - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}: pass dint.taxonomy.classify's table "
                         "(with the cluster column)")


def _group(items, by):
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    return by, ([((), items)] if not by else
                [(key if isinstance(key, tuple) else (key,), g) for key, g in items.groupby(by, sort=False)])


def class_shares(items: pd.DataFrame, *, by=None, classes=CLASSES, cluster: str = "fact",
                 confidence_level: float = 0.95, n_resamples: int = 2000,
                 rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """The composition of the errors: each class's share of the errors, with a cluster bootstrap interval.

    Parameters
    ----------
    items : `dint.taxonomy.classify`'s table (``error``, ``class``) with a ``cluster`` column, possibly stacked
        for several models (then group with ``by``)
    by : column(s) to group by (e.g. ``"intervention"``), or None
    classes : the classes to report, in order
    cluster : the column whose values are resampled whole (default ``fact``)
    confidence_level, n_resamples, rng : of the bootstrap

    Returns
    -------
    DataFrame, one row per group and class: ``by`` columns, ``class``, ``count``, then the columns
    `dint.stats.ROW`: ``estimate`` the share (count / errors) with ``ci_low``, ``ci_high``, ``pvalue`` (NaN:
    no test), ``n`` the errors (the share's denominator), ``method``, ``reason`` (why the share is NaN: no
    errors); then ``items`` and ``clusters``. The share is a ratio of cluster sums; its interval is the
    expanded percentile interval over cluster resamples (`dint.stats.cluster_bootstrap`, method
    "expanded"; Hesterberg 2015).
    """
    check_resampling(n_resamples, confidence_level)
    _check_items(items, {"error", "class", cluster})
    classes = list(classes)
    rng = np.random.default_rng(rng)
    by, groups = _group(items, by)
    rows = []
    for key, g in groups:
        err = g["error"].to_numpy(bool)
        cls = g["class"].to_numpy(object)
        hit = np.stack([err & (cls == c) for c in classes], axis=1)     # (n, C)
        counts, inverse, n_cl = cluster_draws(g[cluster].to_numpy(), n_resamples, rng)
        num, den = cluster_sums(hit, inverse, n_cl), cluster_sums(err, inverse, n_cl)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = (counts @ num) / (counts @ den)[:, None]
            share = num.sum(axis=0) / den.sum()
        low, high = expanded_percentile(theta, confidence_level, n_cl)
        method = f"share of errors, cluster expanded percentile bootstrap by {cluster} ({n_cl} clusters)"
        reason = "" if err.any() else "no errors: a share of errors is undefined"
        for j, c in enumerate(classes):
            r = Result(share[j], ConfidenceInterval(low[j], high[j]), int(err.sum()), method, reason=reason)
            rows.append({**r.row(**dict(zip(by, key)), **{"class": c, "count": int(hit[:, j].sum())}),
                         "items": len(g), "clusters": n_cl})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class CompositionResult(Result):
    """:class:`Result` of :func:`composition_test`: ``statistic`` is the TV distance between the compositions.

    ``counts``: errors per class (rows) of ``a`` and ``b`` (columns); ``null_distribution``: the
    statistic under the paired permutations.
    """

    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    null_distribution: np.ndarray = field(default_factory=lambda: np.empty(0))


def _tv(a, b):
    """TV distance between the compositions of count vectors (..., C)."""
    na, nb = a.sum(-1, keepdims=True), b.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        tv = 0.5 * np.abs(a / na - b / nb).sum(-1)
    return np.where((na[..., 0] > 0) & (nb[..., 0] > 0), tv, np.nan)   # undefined without errors


def _onehot(x, classes):
    """(n, C) indicator of each item's class; rows of zeros where the item has none."""
    return (np.asarray(x, dtype=object)[:, None] == np.asarray(classes, dtype=object)[None, :]).astype(float)


def _swaps(g: int, n_permutations: int, rng) -> np.ndarray:
    """(n_permutations, g) 0/1: whether each cluster's two labels are swapped."""
    return rng.integers(0, 2, (n_permutations, g)).astype(float)


def _composition(A, B, counts, flips, confidence_level):
    """TV of the compositions of per-cluster counts A, B (g, C), its null under ``flips``, its interval."""
    a, b = A.sum(0), B.sum(0)
    stat = float(_tv(a, b))                                             # NaN when a model has no error
    moved = flips @ (B - A)                                             # what the swaps move from a to b
    null = _tv(a + moved, b - moved)
    ok = np.isfinite(null)
    pval = float((1 + np.count_nonzero(null[ok] >= stat - 1e-12)) / (ok.sum() + 1)) \
        if np.isfinite(stat) and ok.any() else np.nan
    low, high = expanded_percentile(_tv(counts @ A, counts @ B)[:, None], confidence_level, len(A))[:, 0]
    floor = 1 / (ok.sum() + 1) if ok.any() else np.nan    # the Monte-Carlo p-value's floor: at it, a bound
    return stat, float(low), float(high), pval, null, float(floor)


def _at_floor(pval: float, floor: float) -> float | None:
    """``floor`` where the Monte-Carlo p-value sits at it (no permutation reached the statistic: a bound), else None."""
    return floor if np.isfinite(pval) and pval <= floor * (1 + 1e-9) else None


def _as_classes(x):
    return np.array([None if pd.isna(v) else v for v in np.asarray(x, dtype=object)], dtype=object)


def _class_set(seen, classes):
    classes = [c for c in CLASSES if c in seen] + sorted(seen - set(CLASSES)) if classes is None else list(classes)
    if not seen <= set(classes):
        raise ValueError(f"classes lacks {sorted(seen - set(classes))}: pass every class that occurs")
    return classes


def _check_permutations(n_permutations):
    check_int("n_permutations", n_permutations, 1)


def composition_test(a, b, clusters, *, classes=None, confidence_level: float = 0.95, n_resamples: int = 2000,
                     n_permutations: int = 9999, rng: np.random.Generator | int = 0) -> CompositionResult:
    """Do two models on the same items make different kinds of errors? A paired permutation test.

    Parameters
    ----------
    a, b : (n,) class of each item's error under model a and model b (`dint.taxonomy.classify`'s ``class``),
        missing (None/NaN) where that model is right; the same items in the same order
    clusters : (n,) cluster of each item (e.g. its fact): the unit that is swapped and resampled
    classes : the class set (default: the classes that occur, in `dint.taxonomy.CLASSES` order)
    confidence_level, n_resamples : of the bootstrap interval
    n_permutations : random swaps for the null distribution
    rng : int seed or Generator (bootstrap draws first, then the swaps)

    Returns
    -------
    CompositionResult: ``statistic`` = TV distance between the two error compositions (the share
    of errors whose class would have to change to turn one into the other), its cluster bootstrap
    expanded percentile interval, ``pvalue`` (one-sided: larger than under H0), ``n`` = items,
    ``counts``; the statistic and p-value are NaN, with the ``reason``, when a model has no errors.

    Notes
    -----
    H0: within each cluster, the labels "a" and "b" are exchangeable (the two models err alike on
    every fact). The null distribution swaps a and b cluster by cluster (a paired, clustered
    permutation test; Good 2005, *Permutation, Parametric and Bootstrap Tests of Hypotheses*,
    sec. 3.6), so the pairing by item and the clustering by fact are both kept; p = (1 + #{T* ≥ T})
    / (B + 1), never zero. Only the error composition enters the statistic, not the error rates.
    The bootstrap interval of a distance is biased upwards (sampling noise alone makes TV > 0);
    the test, not the interval, says whether the compositions differ.
    """
    check_resampling(n_resamples, confidence_level)
    _check_permutations(n_permutations)
    a, b = _as_classes(a), _as_classes(b)
    clusters = np.asarray(clusters)
    if len(a) != len(b) or clusters.shape != (len(a),):
        raise ValueError(f"a, b and clusters must have one entry per item: {len(a)}, {len(b)}, {clusters.shape}")
    classes = _class_set({c for c in np.concatenate([a, b]) if c is not None}, classes)
    rng = np.random.default_rng(rng)
    counts, inverse, g = cluster_draws(clusters, n_resamples, rng)
    A, B = cluster_sums(_onehot(a, classes), inverse, g), cluster_sums(_onehot(b, classes), inverse, g)  # (g, C)
    stat, low, high, pval, null, floor = _composition(A, B, counts, _swaps(g, n_permutations, rng), confidence_level)
    table = pd.DataFrame({"a": A.sum(0).astype(int), "b": B.sum(0).astype(int)}, index=pd.Index(classes, name="class"))
    none = [name for name, m in (("a", A), ("b", B)) if m.sum() == 0]
    reason = (f"model {' and '.join(none)} {'has' if len(none) == 1 else 'have'} no errors: an error composition "
              "is undefined" if none else "")
    return CompositionResult(stat, ConfidenceInterval(low, high), len(a),
                             f"TV of error compositions, paired cluster permutation test ({g} clusters)", pval,
                             reason, pvalue_floor=_at_floor(pval, floor), counts=table, null_distribution=null)


# the measures of compare_compositions, per pair
COMPARISONS = ("d_accuracy", "d_accuracy_tost", "tv")


def compare_compositions(items: pd.DataFrame, *, by: str = "intervention", cluster: str = "fact",
                         margin: float = 0.05, confidence_level: float = 0.95, n_resamples: int = 2000,
                         n_permutations: int = 9999, rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Every pair of models: the accuracy difference and the difference in error composition.

    Parameters
    ----------
    items : `dint.taxonomy.classify`'s tables of several models stacked, ``by`` naming the model; every model
        on the same items (``fact, form``)
    by : the column that names the model
    cluster : the column resampled and swapped whole (default ``fact``)
    margin : accuracy differences within ±margin count as "similar accuracy" when the
        (1 − 2α) interval of the difference lies inside it (two one-sided tests at level
        α = 1 − confidence_level, Schuirmann 1987)
    confidence_level, n_resamples, n_permutations, rng : as in `composition_test`; one set of
        bootstrap draws and one set of swaps serve every pair (the items are the same)

    Returns
    -------
    DataFrame, tidy: per pair (``a``, ``b``) in first-seen order three rows by ``measure``, then the columns
    `dint.stats.ROW` (``n`` the items): ``d_accuracy`` (accuracy a − b, paired by item, with its cluster
    bootstrap expanded percentile interval), ``d_accuracy_tost`` (the same difference with its (1 − 2α)
    interval, the TOST interval) and ``tv`` (`composition_test`'s TV distance with its interval and
    ``pvalue``); plain per-pair columns ``similar_accuracy``, ``errors_a``, ``errors_b``.
    """
    check_resampling(n_resamples, confidence_level)
    _check_permutations(n_permutations)
    _check_items(items, {by, cluster, "fact", "form", "error", "class"})
    if not (isinstance(margin, (int, float)) and 0 < margin < 1):
        raise ValueError(f"margin={margin!r}: must lie in (0, 1) (an accuracy difference)")
    names = list(dict.fromkeys(items[by]))
    wide = {n: g.sort_values(ITEM_KEYS).reset_index(drop=True) for n, g in items.groupby(by, sort=False)}
    ref = wide[names[0]]
    for n in names[1:]:
        if not wide[n][ITEM_KEYS].equals(ref[ITEM_KEYS]):
            raise ValueError(f"items: model {n!r} is not on the same items (fact, form) as {names[0]!r}")
    rng = np.random.default_rng(rng)
    counts, inverse, g = cluster_draws(ref[cluster].to_numpy(), n_resamples, rng)
    flips = _swaps(g, n_permutations, rng)
    size = cluster_sums(np.ones(len(ref)), inverse, g)[:, 0]
    err = {n: w["error"].to_numpy(bool) for n, w in wide.items()}
    cls = {n: _as_classes(w["class"].where(w["error"].astype(bool), None)) for n, w in wide.items()}
    classes = _class_set({c for v in cls.values() for c in v if c is not None}, None)
    per_cluster = {n: cluster_sums(_onehot(cls[n], classes), inverse, g) for n in names}   # (g, C)
    boot = f"cluster expanded percentile bootstrap by {cluster} ({g} clusters)"
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            d = cluster_sums(err[y].astype(float) - err[x], inverse, g)[:, 0]   # accuracy a − b, per cluster
            theta = (counts @ d / (counts @ size))[:, None]
            (lo,), (hi,) = expanded_percentile(theta, confidence_level, g)
            (tlo,), (thi,) = expanded_percentile(theta, 2 * confidence_level - 1, g)
            tv, tv_lo, tv_hi, pval, _, floor = _composition(per_cluster[x], per_cluster[y], counts, flips,
                                                            confidence_level)
            plain = {"similar_accuracy": bool(-margin < tlo and thi < margin), "errors_a": int(err[x].sum()),
                     "errors_b": int(err[y].sum())}
            diff = d.sum() / size.sum()
            none = [name for name, e in ((x, err[x]), (y, err[y])) if not e.any()]
            reason = f"{' and '.join(none)}: no errors, an error composition is undefined" if none else ""
            found = [Result(diff, ConfidenceInterval(lo, hi), len(ref), f"paired accuracy difference, {boot}"),
                     Result(diff, ConfidenceInterval(tlo, thi), len(ref),
                            f"paired accuracy difference, {boot}, {2 * confidence_level - 1:g} interval (TOST)"),
                     Result(tv, ConfidenceInterval(tv_lo, tv_hi), len(ref),
                            f"TV of error compositions, paired cluster permutation test ({g} clusters)", pval, reason,
                            pvalue_floor=_at_floor(pval, floor))]
            rows += [{**r.row(a=x, b=y, measure=m), **plain} for r, m in zip(found, COMPARISONS)]
    return pd.DataFrame(rows)


def pass_curve(items: pd.DataFrame, k, *, column: str = "p_true_post", by=None, cluster: str = "fact",
               reference: str | None = None, confidence_level: float = 0.95, n_resamples: int = 2000,
               rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Mean exact pass@k over items (`dint.divergence.pass_exact` of ``column``), with a cluster bootstrap interval.

    Parameters
    ----------
    items : a table with ``column`` (a probability per item) and ``cluster``, e.g. `dint.taxonomy.classify`'s
    k : int or 1-D ints >= 1
    column : the probability of the true answer (``p_true_post``, ``p_true_base``, or
        ``base_rate`` for a uniform guess over the candidate set)
    by : column(s) to group by, or None
    cluster, confidence_level, n_resamples, rng : of the bootstrap (one set of draws per group,
        shared by every k)
    reference : optional column of a reference probability on the same items (e.g. ``base_rate``):
        adds the paired excess of ``column`` over it, its interval and a test of zero excess

    Returns
    -------
    DataFrame, tidy: per group and k a row of ``measure`` "pass" and, with ``reference``, one of "excess"
    (the paired excess over the reference, with the two-sided ``pvalue`` of zero excess): ``by`` columns,
    ``k``, ``measure``, the columns `dint.stats.ROW` (``n`` the items; ``pvalue`` NaN for "pass"; the
    interval NaN, with a ``reason``, when the group has one cluster), ``clusters``; with ``reference`` also
    the plain ``pass_reference`` (its pass@k, the same on both rows).

    Notes
    -----
    The test of zero excess is a Wald test with the cluster bootstrap standard error, as in
    `dint.agreement.cluster_kappa`.
    """
    check_resampling(n_resamples, confidence_level)
    missing = sorted({column, cluster, *([reference] if reference else [])} - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}")
    ks = np.atleast_1d(np.asarray(k))
    rng = np.random.default_rng(rng)
    by, groups = _group(items, by)
    rows = []
    for key, g in groups:
        v = pass_exact(g[column].to_numpy(float), ks)                   # (n, m)
        if reference:                                                    # columns: pass, then excess
            v = np.hstack([v, v - pass_exact(g[reference].to_numpy(float), ks)])
        est, n_cl = v.mean(axis=0), g[cluster].nunique()
        pval = np.full(v.shape[1], np.nan)
        if n_cl < 2:                                                     # one cluster: no interval
            low = high = np.full(v.shape[1], np.nan)
        else:
            counts, inverse, n_cl = cluster_draws(g[cluster].to_numpy(), n_resamples, rng)
            num, size = cluster_sums(v, inverse, n_cl), cluster_sums(np.ones(len(g)), inverse, n_cl)[:, 0]
            theta = (counts @ num) / (counts @ size)[:, None]
            low, high = expanded_percentile(theta, confidence_level, n_cl)
            pval = wald_pvalues(est, theta)
        m = len(ks)
        boot = f"cluster expanded percentile bootstrap by {cluster} ({n_cl} clusters)"
        reason = "one cluster: no interval" if n_cl < 2 else ""
        for j, kk in enumerate(ks):
            labels = {**dict(zip(by, key)), "k": int(kk)}
            found = [("pass", Result(est[j], ConfidenceInterval(low[j], high[j]), len(g),
                                     f"exact pass@k of {column}, mean over items, {boot}", reason=reason))]
            if reference:
                found.append(("excess", Result(est[m + j], ConfidenceInterval(low[m + j], high[m + j]), len(g),
                                               f"pass@k of {column} minus {reference}, {boot}, Wald test with "
                                               "bootstrap SE", pval[m + j], reason)))
            for measure, r in found:
                row = {**r.row(**labels, measure=measure), "clusters": n_cl}
                if reference:
                    row["pass_reference"] = est[j] - est[m + j]
                rows.append(row)
    return pd.DataFrame(rows)
