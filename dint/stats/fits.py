"""Model fits with intervals: logistic GEE for clustered binary outcomes, curve fits and a robust slope.

Tidy outputs with intervals on every parameter; statsmodels and scipy do the fitting. Gao et al.'s
reward-vs-KL forms are here as the functions to fit (`gao_bon`, `gao_rl`).
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from .checks import check_level
from .result import ConfidenceInterval, Result

__all__ = ["curve_peak", "fit_curve", "gao_bon", "gao_rl", "logit_gee", "logit_gee_joint", "slope"]


def logit_gee(formula: str, data, *, groups, cov_type: str = "bias_reduced", confidence_level: float = 0.95):
    """Logistic regression for clustered binary outcomes by GEE, as a tidy table.

    Parameters
    ----------
    formula : str
        Patsy formula, e.g. ``"correct ~ C(model) + log_freq"``; the response is 0/1.
    data : pandas.DataFrame with n rows
    groups : str or (n,) array
        Cluster of each row (a column name of ``data`` or the labels), e.g. the fact an item
        asks about; rows of a cluster may be correlated.
    cov_type : {"bias_reduced", "robust"}
        The cluster-robust covariance: Mancl & DeRouen's bias-reduced sandwich (default) or the
        plain sandwich, which is liberal with few clusters (see Notes).
    confidence_level : float in (0, 1)

    Returns
    -------
    pandas.DataFrame
        One row per term: ``term, estimate, std_error, z, pvalue, ci_low, ci_high`` on the
        log-odds scale, with cluster-robust (sandwich) standard errors and Wald intervals, and
        ``reason``: empty for an estimable term, otherwise why its NaNs are not estimable (see
        Notes). Leave a term with a NaN p-value out of a multiple-testing family
        (``stats.adjust(..., nan_policy="omit")``).

    Notes
    -----
    Liang & Zeger (1986), Biometrika 73:13; wraps ``statsmodels.formula.api.gee`` with a binomial
    family (logit link) and an exchangeable working correlation; the robust covariance keeps the
    standard errors valid when the working correlation is wrong. With 80 clusters the plain
    sandwich rejects a null interaction about 7% of the time at alpha = 0.05; the bias-reduced
    sandwich (Mancl & DeRouen 2001, Biometrics 57:126) holds the level (``dint validate``).

    Terms the data cannot estimate are NaN with a ``reason`` (a factorial of interventions meets
    each of these when a step changes nothing or a cell's answers are all right):

    * *aliased*: the term's coefficient is not an estimable function of the design (its unit
      vector is not in the row space of the design matrix; Searle 1971, *Linear Models*), e.g.
      a column of zeros (a combination no row has) or two identical columns: the estimate is NaN;
    * *separated*: the response is perfectly predicted on some rows (quasi-complete separation,
      Albert & Anderson 1984, Biometrika 71:1; found by the linear program of Konis 2007, DPhil
      thesis, Oxford), so the maximum-likelihood estimate of a term those rows identify is
      infinite: NaN. The other terms are fitted on the remaining rows, the finite part of the
      extended estimate (Clarkson & Jennrich 1991, JRSS-B 53:417);
    * *no variability*: the estimate is defined (kept), but no cluster's score moves in the
      term's direction (e.g. a step that leaves every answer unchanged: its estimate is exactly
      0), so the cluster-robust variance is 0, or negative after the bias reduction: the standard
      error, z, p-value and interval are NaN. Flagged when the robust variance is not positive or
      below 1e-12 of the model-based one (rounding error is about 1e-15 of it).
    """
    import pandas as pd

    check_level(confidence_level)
    fit, names, reasons = _gee_fit(formula, data, groups, cov_type)
    nan = np.full(len(names), np.nan)
    est, se, z, p, lo, hi = (nan.copy() for _ in range(6))
    if fit is not None:
        with np.errstate(invalid="ignore"):   # sqrt of a negative variance: reported with its reason
            ci = fit.conf_int(alpha=1 - confidence_level)
            at = [names.index(t) for t in fit.params.index]
            est[at], se[at], z[at] = (fit.params.to_numpy(float), fit.bse.to_numpy(float),
                                      fit.tvalues.to_numpy(float))
            p[at], lo[at], hi[at] = (fit.pvalues.to_numpy(float), ci.iloc[:, 0].to_numpy(float),
                                     ci.iloc[:, 1].to_numpy(float))
    for j, t in enumerate(names):
        if t in reasons:
            se[j] = z[j] = p[j] = lo[j] = hi[j] = np.nan
            if not reasons[t].startswith(_NO_VARIANCE):
                est[j] = np.nan
    return pd.DataFrame({"term": names, "estimate": est, "std_error": se, "z": z, "pvalue": p, "ci_low": lo,
                         "ci_high": hi, "reason": [reasons.get(t, "") for t in names]})


_NO_VARIANCE = "standard error not estimable"


def _null_space(x):
    """Orthonormal basis (p, k) of the null space of ``x`` (n, p), numpy's rank tolerance."""
    if len(x) == 0:
        return np.eye(x.shape[1])
    _, s, vt = np.linalg.svd(x, full_matrices=len(x) < x.shape[1])   # vt is (p, p) either way
    tol = (s.max() if len(s) else 0.0) * max(x.shape) * np.finfo(float).eps
    return vt[int(np.sum(s > tol)):].T


def _not_estimable(x, names):
    """{term: reason} for the coefficients that are not estimable functions of design ``x``."""
    null = _null_space(x)
    out = {}
    for j, t in enumerate(names):
        if np.linalg.norm(null[j]) <= 1e-8:
            continue
        if not np.any(x[:, j]):
            out[t] = "not estimable: no row has this term (its column is all zero)"
            continue
        tied = np.abs(null @ null[j]) > 1e-8
        tied[j] = False
        others = ", ".join(n for n, k in zip(names, tied) if k)
        out[t] = f"not estimable: aliased with {others} (the design's columns are linearly dependent)"
    return out


def _separated_rows(x, y):
    """Rows on which a logistic fit of ``y`` (0/1) on ``x`` predicts perfectly in the limit.

    The rows i with ``(2 y_i - 1) x_i b > 0`` for some ``b`` with ``(2 y - 1) X b >= 0`` on every row
    (quasi-complete separation; Albert & Anderson 1984): the linear program of Konis (2007),
    maximising the number of such rows, each capped at 1, over the cone of separating directions."""
    from scipy import sparse
    from scipy.optimize import linprog

    signed = x * (2.0 * y - 1.0)[:, None]
    rows, inverse = np.unique(signed, axis=0, return_inverse=True)    # the cone needs distinct rows only
    m, p = rows.shape
    a = sparse.csr_matrix(-rows)
    res = linprog(np.r_[np.zeros(p), -np.ones(m)],                    # maximise the capped rows' count
                  A_ub=sparse.bmat([[a, None], [a, sparse.identity(m)]], format="csr"), b_ub=np.zeros(2 * m),
                  bounds=[(None, None)] * p + [(0.0, 1.0)] * m, method="highs")
    if res.status != 0:   # cannot happen for this bounded, feasible program; fit everything then
        return np.zeros(len(x), bool)
    return (res.x[p:] > 0.5)[inverse.ravel()]


def _gee_fit(formula, data, groups, cov_type):
    """The GEE fit of the estimable terms, the model's term names and {term: reason} for the others.

    Without aliasing or separation this is statsmodels' fit of the whole model (None if no term
    is estimable); otherwise the fit of a full-rank set of columns on the rows that are not
    separated. Terms whose robust variance is degenerate are added to the reasons."""
    import warnings

    import pandas as pd
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    if cov_type not in ("bias_reduced", "robust"):
        raise ValueError(f"cov_type={cov_type!r}: must be 'bias_reduced' or 'robust'")
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame")
    if isinstance(groups, str) and groups not in data.columns:
        raise ValueError(f"groups={groups!r}: not a column of data")
    if not isinstance(groups, str) and len(np.asarray(groups)) != len(data):
        raise ValueError(f"groups must be a column name or one label per row of data ({len(data)})")
    family, corr = sm.families.Binomial(), sm.cov_struct.Exchangeable()
    model = smf.gee(formula, groups, data, family=family, cov_struct=corr)
    x, y, names = np.asarray(model.exog, float), np.asarray(model.endog, float), list(model.exog_names)
    reasons = _not_estimable(x, names)
    keep = ~_separated_rows(x, y)
    if not keep.all():
        for t, why in _not_estimable(x[keep], names).items():
            reasons.setdefault(t, f"not estimable: separation, the response is perfectly predicted on "
                                  f"{int((~keep).sum())} rows that identify this term (its estimate is infinite)")
    if not reasons:
        fit = model.fit(cov_type=cov_type)
    else:
        cols = [j for j, t in enumerate(names) if t not in reasons]
        if not cols:
            return None, names, reasons
        for j in range(len(names)):   # complete a full-rank design; the added columns are not reported
            if j not in cols and np.linalg.matrix_rank(x[keep][:, sorted(cols + [j])]) > len(cols):
                cols.append(j)
        cols.sort()
        exog = pd.DataFrame(x[keep][:, cols], columns=[names[j] for j in cols])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the refit is of the degenerate data's estimable part
            fit = sm.GEE(y[keep], exog, groups=np.asarray(model.groups)[keep], family=family,
                         cov_struct=sm.cov_struct.Exchangeable()).fit(cov_type=cov_type)
    robust = np.diag(np.asarray(fit.cov_params(), float))
    naive = np.diag(np.asarray(fit.cov_naive, float))
    for t, v, v0, b in zip(fit.params.index, robust, naive, fit.params.to_numpy(float)):
        if t in reasons:
            continue
        if not np.isfinite(b):
            reasons[t] = "not estimable: the fit did not reach a finite estimate"
        elif not (np.isfinite(v) and v > 1e-12 * v0):
            reasons[t] = (f"{_NO_VARIANCE}: no cluster varies in this term's direction (e.g. a step that "
                          "leaves every answer unchanged), so its cluster-robust variance is "
                          f"{'negative' if v < 0 else 'zero up to rounding' if np.isfinite(v) else 'undefined'}")
    return fit, names, reasons


def logit_gee_joint(formula: str, data, *, groups, terms, cov_type: str = "bias_reduced") -> Result:
    """Joint Wald test that several terms of a logistic GEE are all zero (e.g. every interaction).

    Parameters
    ----------
    formula, data, groups, cov_type : as in `logit_gee`
    terms : callable ``f(term name) -> bool`` or a sequence of term names, the terms tested

    Returns
    -------
    Result
        ``statistic`` the Wald chi-square W, ``pvalue`` of ``W (G - df) / (df (G - 1))`` on the F
        distribution with ``(df, G - df)`` degrees of freedom (G clusters; both in ``method``), ``n`` = rows;
        no interval (NaN). Only the estimable terms among ``terms`` are
        tested (those `logit_gee` reports with a p-value); ``method`` and ``reason`` name the
        ones left out and why. NaN, with the ``reason``, when none is estimable.

    Notes
    -----
    ``W = b' V^-1 b`` with the cluster-robust covariance V of the tested coefficients b
    (statsmodels' ``wald_test``, chi-square form). Its reference distribution is that of Hotelling's T^2:
    ``W (G - df) / (df (G - 1))`` on ``F(df, G - df)`` with G clusters (Hotelling 1931; as a small-sample
    Wald test with a cluster-robust covariance, Pan & Wall 2002, *Stat. Med.* 21:1429, and Cameron &
    Miller 2015, *J. Human Resources* 50:317, sec. VI), which tends to the chi-square on ``df`` as G
    grows: a joint test of many terms estimates a large covariance from G clusters, and the chi-square
    reference rejects too often. Of a 2^4 factorial of interventions (11 interaction terms, a fact effect
    of sd 1 logit) with no interaction, at 0.05 the chi-square test rejected in 8.7% of 300 simulations
    with 80 facts and 7.6% of 2,000 with 160; ``W / df`` on ``F(df, G - 1)`` in 5.3% and 6.4%; this
    reference in 2.3% and 4.7%; with 499 facts (notebook 05's design) all three in 5.5% of 200.
    ``dint validate`` measures it at 160 facts. With no more clusters than tested terms the test is NaN.
    Where V is singular (a combination of the tested terms has no variability of its own) the
    generalised Wald statistic ``b' V^+ b`` on ``rank(V)`` degrees of freedom is used (Moore-Penrose inverse; Andrews 1987, Econometrica
    55:1465), and ``method`` says so.
    """
    fit, names, reasons = _gee_fit(formula, data, groups, cov_type)
    chosen = [t for t in names if terms(t)] if callable(terms) else list(terms)
    unknown = sorted(set(chosen) - set(names))
    if unknown or not chosen:
        raise ValueError(f"terms={chosen!r}: choose among the model's terms {names}")
    tested = [t for t in chosen if t not in reasons]
    left = [t for t in chosen if t in reasons]
    why = {}
    for t in left:
        why.setdefault(reasons[t], []).append(t)
    reason = "; ".join(f"{', '.join(ts)} left out, {r}" for r, ts in why.items())
    g = len(np.unique(np.asarray(fit.model.groups))) if fit is not None else 0
    method = f"GEE joint Wald test, Hotelling F(df = {{df}}, {{df2}}) ({g} clusters, {cov_type} sandwich)"
    if left:
        method += f"; not estimable, left out: {', '.join(left)}"
    nan = float("nan")
    if not tested:
        return Result(nan, ConfidenceInterval(nan, nan), len(data), method.format(df=0, df2=g), nan,
                      f"no term of {chosen} is estimable: {reason}")
    fitted = list(fit.params.index)
    r = np.zeros((len(tested), len(fitted)))
    for i, t in enumerate(tested):
        r[i, fitted.index(t)] = 1.0
    cov = r @ np.asarray(fit.cov_params(), float) @ r.T
    eig = np.linalg.eigvalsh(cov)
    if eig.min() > 1e-12 * eig.max():
        w = fit.wald_test(r, scalar=True, use_f=False)
        stat, df = float(w.statistic), len(tested)
    else:
        b = r @ fit.params.to_numpy(float)
        df = int(np.sum(eig > 1e-12 * eig.max()))
        stat = float(b @ np.linalg.pinv(cov, rcond=1e-12, hermitian=True) @ b)
        method += "; singular covariance: generalised Wald (Moore-Penrose inverse), df = its rank"
    if g > df:
        pvalue = float(sps.f.sf(stat * (g - df) / (df * (g - 1)), df, g - df))
    else:
        pvalue = nan
        reason = "; ".join(filter(None, [reason, f"{g} clusters for {df} tested terms: the covariance of the "
                                                 "tested terms cannot be estimated (need more clusters than terms)"]))
    return Result(stat, ConfidenceInterval(nan, nan), len(data), method.format(df=df, df2=g - df), pvalue, reason)


def fit_curve(f, x, y, p0, *, sigma=None, confidence_level: float = 0.95) -> dict:
    """Nonlinear least-squares fit of ``y = f(x, *params)`` with a t interval per parameter.

    Parameters
    ----------
    f : callable ``f(x, p1, p2, ...) -> (n,) array``
    x, y : (n,) arrays, n > number of parameters
    p0 : (k,) initial values of the parameters
    sigma : (n,) array, optional
        Standard deviations of y, relative (weights); as ``scipy.optimize.curve_fit``.
    confidence_level : float in (0, 1)

    Returns
    -------
    dict of str to Result
        Keyed by the parameter names of ``f`` (``p0``, ``p1``, ... if it takes ``*args``):
        the estimate, its interval ``estimate -+ t_{n-k} SE`` and the t-test of zero.

    Notes
    -----
    Wraps ``scipy.optimize.curve_fit`` (Levenberg-Marquardt); standard errors from the
    asymptotic covariance scaled by the residual variance (Seber & Wild 1989, *Nonlinear
    Regression*, sec. 5.1), so they are exact for a model linear in its parameters.
    """
    import inspect

    from scipy.optimize import curve_fit

    check_level(confidence_level)
    if not callable(f):
        raise TypeError(f"f={f!r}: must be a callable f(x, *params)")
    x, y = np.asarray(x, float), np.asarray(y, float)
    p0 = np.atleast_1d(np.asarray(p0, float))
    k = len(p0)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if len(x) <= k:
        raise ValueError(f"x has {len(x)} observations; fitting {k} parameters needs more than {k}")
    try:
        params = list(inspect.signature(f).parameters.values())[1:]
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    if len(names) != k:
        names = [f"p{i}" for i in range(k)]
    popt, pcov = curve_fit(f, x, y, p0=p0, sigma=sigma, absolute_sigma=False)
    se = np.sqrt(np.diag(pcov))
    df = len(x) - k
    q = sps.t.ppf(0.5 + confidence_level / 2, df)
    out = {}
    for name, est, s in zip(names, popt, se):
        pvalue = float(2 * sps.t.sf(abs(est / s), df)) if s > 0 else float("nan")
        out[name] = Result(float(est), ConfidenceInterval(float(est - q * s), float(est + q * s)), len(x),
                           f"{name}, nonlinear least squares, t interval ({df} df)", pvalue)
    return out


def gao_bon(d, alpha, beta):
    """Best-of-n gold reward against ``d = sqrt(KL)``: ``d (alpha - beta d)`` (Gao et al. 2023)."""
    d = np.asarray(d, float)
    return d * (alpha - beta * d)


def gao_rl(d, alpha, beta):
    """RL gold reward against ``d = sqrt(KL)``: ``d (alpha - beta log d)`` (Gao et al. 2023).

    Gao, Schulman & Hilton (2023), *Scaling Laws for Reward Model Overoptimization*, ICML.
    At ``d = 0`` the limit 0 is returned.
    """
    d = np.asarray(d, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = d * (alpha - beta * np.log(d))
    return np.where(d == 0, 0.0, out)


def curve_peak(f, params: dict, low: float, high: float, *, points: int = 4001) -> tuple[float, float]:
    """Where a fitted curve peaks on ``[low, high]`` (e.g. the observed range of d), and its value.

    Parameters
    ----------
    f : the fitted function ``f(x, *params)`` (e.g. `gao_rl`)
    params : `fit_curve`'s output (its ``statistic`` values are used, in order)

    Returns
    -------
    (x_peak, f(x_peak)) — on the boundary when the curve has no interior maximum there (e.g. a
    gold reward that only falls: ``x_peak == low``).
    """
    if not high > low:
        raise ValueError(f"need high > low, got low={low!r}, high={high!r}")
    x = np.linspace(low, high, points)
    y = f(x, *[r.statistic for r in params.values()])
    i = int(np.argmax(y))
    return float(x[i]), float(y[i])


def slope(x, y, *, confidence_level: float = 0.95) -> Result:
    """Least-squares slope of ``y`` on ``x`` with its HC3 (heteroskedasticity-robust) interval and t-test.

    Parameters
    ----------
    x, y : (n,) paired observations, n >= 3
    confidence_level : level of the interval

    Returns
    -------
    Result with the slope, its interval and the two-sided p-value of slope = 0 (Student t, n - 2 degrees of
    freedom, HC3 standard error); NaN with the ``reason`` when ``x`` is constant.

    Notes
    -----
    statsmodels ``OLS(...).fit(cov_type="HC3", use_t=True)``; HC3 (MacKinnon & White 1985) keeps the
    interval's level when the residual variance changes with ``x``, as it does for probabilities near 0 or 1
    (Long & Ervin 2000).
    """
    import statsmodels.api as sm

    check_level(confidence_level)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d arrays of the same length, got shapes {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"x and y have {len(x)} points: a slope with an interval needs at least 3")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite: drop missing points first")
    method = "OLS slope, HC3 standard error, t-test"
    if np.ptp(x) == 0:
        nan = float("nan")
        return Result(nan, ConfidenceInterval(nan, nan), len(x), method, nan, "x is constant: no slope")
    fit = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC3", use_t=True)
    low, high = fit.conf_int(alpha=1 - confidence_level)[1]
    return Result(float(fit.params[1]), ConfidenceInterval(float(low), float(high)), len(x), method,
                  float(fit.pvalues[1]))
