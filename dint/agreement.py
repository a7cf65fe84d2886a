"""How far two labellings of the same errors agree: Cohen's κ, with intervals that respect clusters.

`agreement` compares a taxonomy's classes (`dint.taxonomy.classify`) with the known causes of the same errors
(`dint.taxonomy.known_cause`, `dint.causes`): confusion matrix, κ with its interval and test, per-class
precision and recall. `accuracy_only` is what right/wrong accounting alone tells apart: one class for every
error, whose κ is 0. Items are clustered (the two prompt forms of a fact, every model's answer on it), so κ's
interval and test can come from a bootstrap over whole clusters (`cluster_kappa`), and two labellings are
compared on the same resamples (`cluster_kappa_difference`); `kappa` is the bare statistic, for fitting.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.inter_rater import cohens_kappa

from .stats import ConfidenceInterval, Result
from .stats.checks import check_level
from .stats.clustered import check_resampling, cluster_draws, cluster_sums, expanded_percentile, wald_pvalues
from .taxonomy import CLASSES

__all__ = ["AgreementResult", "accuracy_only", "agreement", "cluster_kappa", "cluster_kappa_difference", "kappa"]


@dataclass(frozen=True)
class AgreementResult(Result):
    """:class:`Result` of :func:`agreement`: ``statistic`` is Cohen's κ.

    ``confusion``: crosstab, rows the known cause, columns the predicted class (square, same
    labels); ``per_class``: ``precision``, ``recall``, ``support`` (known count), ``predicted``
    count per label; ``observed``: the share of items where the two agree.
    """

    confusion: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    observed: float = float("nan")


def _labels(x, name):
    a = pd.Series(np.asarray(x, dtype=object), name=name)
    if a.isna().any():
        raise ValueError(f"{name} has missing labels: pass errors only (items[items.error])")
    return a.astype(str)


def agreement(predicted, known, *, confidence_level: float = 0.95, clusters=None, n_resamples: int = 2000,
              rng: np.random.Generator | int = 0) -> AgreementResult:
    """Agreement of the predicted classes with the known causes, item by item.

    Parameters
    ----------
    predicted, known : (n,) label sequences on the same errors, aligned by position (e.g.
        ``e["class"]`` and ``known_cause(world, e)["cause"]`` for ``e = items[items.error]``)
    confidence_level : of κ's interval
    clusters : optional (n,) labels (e.g. the fact of each error): items of one cluster are not
        independent (two forms of a fact, several models on one fact), so κ's interval and test
        come from a cluster bootstrap instead of the asymptotic standard errors (NaN with a
        single cluster)
    n_resamples, rng : of the cluster bootstrap (unused without ``clusters``)

    Returns
    -------
    AgreementResult: ``statistic`` = Cohen's κ, its Wald interval, ``pvalue`` of H0: κ = 0
    (two-sided), ``confusion``, ``per_class``, ``observed``. With ``clusters``: the cluster
    bootstrap (expanded percentile) interval and the bootstrap test of κ = 0 (`cluster_kappa`).

    Notes
    -----
    κ and its asymptotic standard errors are statsmodels' ``cohens_kappa`` (Fleiss, Cohen &
    Everitt 1969); the interval is κ ± z·ASE, the test z = κ / ASE₀. Items are treated as
    independent (two forms of one fact are two items). κ, its interval and test are NaN, with the
    ``reason``, when both raters use one and the same label (chance agreement is then 1 and
    κ = 0/0); with a single cluster the interval and test are NaN and κ stays.
    """
    check_level(confidence_level)
    p, k = _labels(predicted, "predicted"), _labels(known, "known")
    if len(p) != len(k):
        raise ValueError(f"predicted and known differ in length: {len(p)} != {len(k)}")
    if len(p) == 0:
        raise ValueError("predicted is empty: no errors to compare")
    seen = set(p) | set(k)
    labels = [c for c in CLASSES if c in seen] + sorted(seen - set(CLASSES))
    cm = pd.crosstab(pd.Categorical(k, labels), pd.Categorical(p, labels), dropna=False,
                     rownames=["known"], colnames=["predicted"])
    table = cm.to_numpy(float)
    n = int(table.sum())
    observed = float(np.trace(table) / n)
    reason = ""
    if len(labels) == 1:
        kappa, lo, hi, pval = np.nan, np.nan, np.nan, np.nan
        reason = _one_label_reason(labels[0])
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            r = cohens_kappa(table)
        z = sps.norm.ppf(0.5 + confidence_level / 2)
        kappa = float(r.kappa)
        se, s0 = float(r.std_kappa), float(r.std_kappa0)
        lo, hi = (kappa - z * se, kappa + z * se) if se > 0 else (np.nan, np.nan)
        pval = float(2 * sps.norm.sf(abs(kappa / s0))) if s0 > 0 else np.nan
        # a zero-width interval or an infinite z would read as certainty
        missing = [what for what, ok in (("interval", se > 0), ("test", s0 > 0)) if not ok]
        if missing:
            reason = (f"κ's standard error{' under H0' if missing == ['test'] else ''} is 0 (one rater gives every "
                      f"item the same label, or every item agrees): no {' or '.join(missing)}")
    col, row = table.sum(axis=0), table.sum(axis=1)
    diag = np.diag(table)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = pd.DataFrame({"precision": diag / col, "recall": diag / row, "support": row.astype(int),
                            "predicted": col.astype(int)}, index=pd.Index(labels, name="class"))
    method = "Cohen's kappa (statsmodels ASE)"
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (n,):
            raise ValueError(f"clusters must be 1-D with one label per item ({n}), got shape {clusters.shape}")
        if len(np.unique(clusters)) < 2:                # one cluster: no resampling interval
            lo, hi, pval, method = np.nan, np.nan, np.nan, "Cohen's kappa (one cluster: no interval)"
            if len(labels) > 1:   # the asymptotic standard errors are not used with clusters
                reason = "one cluster: a cluster bootstrap has nothing to resample (no interval or test)"
        elif len(labels) > 1:
            r = cluster_kappa(p, k, clusters, labels=labels, confidence_level=confidence_level,
                              n_resamples=n_resamples, rng=rng)
            lo, hi, pval, method = r.confidence_interval.low, r.confidence_interval.high, r.pvalue, r.method
            reason = r.reason
    return AgreementResult(statistic=kappa, confidence_interval=ConfidenceInterval(lo, hi), n=n,
                           method=method, pvalue=pval, reason=reason, confusion=cm, per_class=per,
                           observed=observed)


def _one_label_reason(label):
    return (f"both raters give every item the one label {label!r}: chance agreement is 1 and Cohen's "
            "kappa is 0/0 (undefined)")


def accuracy_only(items: pd.DataFrame, *, confidence_level: float = 0.95) -> AgreementResult:
    """What right/wrong accounting can tell apart: every error gets the one class ``"error"``.

    Parameters
    ----------
    items : `known_cause`'s table (``error``, ``cause``); rows without an error are dropped

    Returns
    -------
    `agreement` of that one-class labelling with the known causes: κ = 0 (the one class agrees
    with no cause beyond chance), ``observed`` = 0, recall 0 for every cause.
    """
    missing = sorted({"error", "cause"} - set(getattr(items, "columns", ())))
    if missing:
        raise ValueError(f"items lacks column(s) {missing}: pass dint.taxonomy.known_cause's table")
    e = items[items["error"].to_numpy(bool)]
    return agreement(np.full(len(e), "error", dtype=object), e["cause"].to_numpy(), confidence_level=confidence_level)


# -- κ with a cluster bootstrap ----------------------------------------------------------------------
def _kappa(tables):
    """Cohen's κ of confusion tables (..., L, L)."""
    n = tables.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        po = np.trace(tables, axis1=-2, axis2=-1) / n
        pe = (tables.sum(axis=-1) * tables.sum(axis=-2)).sum(axis=-1) / n ** 2
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def cluster_kappa(predicted, known, clusters, *, labels=None, confidence_level: float = 0.95,
                  n_resamples: int = 2000, rng: np.random.Generator | int = 0) -> Result:
    """Cohen's κ with a cluster bootstrap interval and test.

    Parameters
    ----------
    predicted, known : (n,) labels of the same items, aligned by position
    clusters : (n,) cluster of each item (e.g. its fact); at least 2 distinct
    labels : the label set (default: the labels that occur, in `CLASSES` order)
    confidence_level, n_resamples, rng : of the bootstrap

    Returns
    -------
    Result: κ, its expanded percentile interval over cluster resamples (as `dint.stats.cluster_bootstrap`
    with method "expanded"), ``n`` = items, ``pvalue`` of H0: κ = 0, two-sided. κ, its interval and
    test are NaN, with the ``reason``, when every item has one and the same label (κ = 0/0); the
    interval and test are NaN when the bootstrap distribution is a point mass (e.g. perfect agreement
    in every cluster: every resample gives the same κ).

    Notes
    -----
    The test is a Wald test with the cluster bootstrap standard error, z = κ / sd(κ*)
    (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 6 and 16): unlike a
    Monte-Carlo p-value it does not bottom out at 1 / (B + 1), so it survives a correction over
    many tests. Resamples in which κ is undefined (one label only) are left out.
    """
    kappas, theta, seen, g = _cluster_kappas([predicted], known, clusters, labels=labels,
                                             confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    kappa, theta = float(kappas[0]), theta[:, 0]
    low, high = expanded_percentile(theta[:, None], confidence_level, g)[:, 0]
    pval = float(wald_pvalues(kappa, theta[:, None])[0])
    defined, reason = theta[np.isfinite(theta)], ""
    if np.isnan(kappa):
        low = high = pval = np.nan
        reason = _one_label_reason(next(iter(seen))) if len(seen) == 1 else "chance agreement is 1: κ is undefined"
    elif len(defined) == 0 or np.ptp(defined) <= 1e-12:
        low = high = pval = np.nan
        reason = ("every cluster resample gives the same κ (a point mass, e.g. perfect agreement in every "
                  "cluster) or none is defined: no interval or test")
    return Result(kappa, ConfidenceInterval(float(low), float(high)), len(np.asarray(clusters)),
                  f"Cohen's kappa, cluster expanded percentile bootstrap ({g} clusters), Wald test with bootstrap SE",
                  float(pval), reason)


def _cluster_kappas(predicted: list, known, clusters, *, labels, confidence_level, n_resamples, rng):
    """κ of each labelling in ``predicted`` with ``known`` and its replicates over the same cluster resamples.

    Returns ``kappas`` (m,), ``theta`` (n_resamples, m), the labels that occur and the number of clusters."""
    check_resampling(n_resamples, confidence_level)
    k = _labels(known, "known").to_numpy()
    ps = [_labels(p, "predicted").to_numpy() for p in predicted]
    clusters = np.asarray(clusters)
    if any(len(p) != len(k) for p in ps) or clusters.shape != (len(k),):
        raise ValueError(f"predicted, known and clusters must have one entry per item: {[len(p) for p in ps]}, "
                         f"{len(k)}, {clusters.shape}")
    if len(k) == 0:
        raise ValueError("predicted is empty: no errors to compare")
    seen = set(k).union(*map(set, ps))
    labels = [c for c in CLASSES if c in seen] + sorted(seen - set(CLASSES)) if labels is None else list(labels)
    if not seen <= set(labels):
        raise ValueError(f"labels lacks {sorted(seen - set(labels))}: pass every label that occurs")
    index = {c: i for i, c in enumerate(labels)}
    L = len(labels)
    counts, inverse, g = cluster_draws(clusters, n_resamples, rng)
    kappas, theta = [], []
    for p in ps:
        cell = np.array([index[a] * L + index[b] for a, b in zip(k, p)])   # rows known, columns predicted
        per_cluster = cluster_sums(np.eye(L * L)[cell], inverse, g)       # (g, L*L)
        kappas.append(float(_kappa(per_cluster.sum(axis=0).reshape(L, L))))
        theta.append(_kappa((counts @ per_cluster).reshape(-1, L, L)))   # (B,)
    return np.array(kappas), np.stack(theta, axis=1), seen, g


def kappa(predicted, known) -> float:
    """Cohen's κ of two labellings of the same items (no interval: for fitting; `agreement` reports κ)."""
    p, k = _labels(predicted, "predicted").to_numpy(), _labels(known, "known").to_numpy()
    if len(p) != len(k) or len(p) == 0:
        raise ValueError(f"predicted and known must be non-empty and of one length: {len(p)}, {len(k)}")
    codes, labels = pd.factorize(np.concatenate([k, p]))
    L = len(labels)
    table = np.bincount(codes[:len(k)] * L + codes[len(k):], minlength=L * L).reshape(L, L)
    return float(_kappa(table.astype(float)))


def cluster_kappa_difference(predicted, baseline, known, clusters, *, labels=None, confidence_level: float = 0.95,
                             n_resamples: int = 2000, rng: np.random.Generator | int = 0) -> Result:
    """The paired difference κ(predicted, known) − κ(baseline, known) of two labellings of the same items.

    Parameters
    ----------
    predicted, baseline, known : (n,) labels of the same items, aligned by position
    clusters : (n,) cluster of each item (e.g. its fact); at least 2 distinct
    labels : the label set (default: the labels that occur, in `CLASSES` order)
    confidence_level, n_resamples, rng : of the bootstrap

    Returns
    -------
    Result: the difference, its expanded percentile interval over cluster resamples, ``n`` = items, ``pvalue`` of
    H0: no difference (two-sided). NaN, with the ``reason``, where either κ is undefined.

    Notes
    -----
    Paired: both κ are computed on every resample of whole clusters (as `cluster_kappa`), so the items' shared
    difficulty cancels in the difference; the test is a Wald test with the bootstrap standard error of the
    difference (Efron & Tibshirani 1993, ch. 6 and 16). Resamples where either κ is undefined are left out.
    """
    kappas, theta, _, g = _cluster_kappas([predicted, baseline], known, clusters, labels=labels,
                                               confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    d, theta = float(kappas[0] - kappas[1]), theta[:, 0] - theta[:, 1]
    low, high = expanded_percentile(theta[:, None], confidence_level, g)[:, 0]
    pval, reason = float(wald_pvalues(d, theta[:, None])[0]), ""
    defined = theta[np.isfinite(theta)]
    if np.isnan(d):
        low = high = pval = np.nan
        reason = "a κ is undefined (one labelling and the known labels share one single label: chance agreement is 1)"
    elif len(defined) == 0 or np.ptp(defined) <= 1e-12:
        low = high = pval = np.nan
        reason = "every cluster resample gives the same difference (a point mass) or none is defined: no interval or test"
    return Result(d, ConfidenceInterval(float(low), float(high)), int(len(np.asarray(known))),
                  f"paired difference of Cohen's kappa, cluster expanded percentile bootstrap ({g} clusters), "
                  "Wald test with bootstrap SE", pval, reason)
