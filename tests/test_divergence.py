"""Tests for dint.divergence: exact divergences, Monte-Carlo KL and pass@k."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from dint.stats import ConfidenceInterval
from dint.divergence import MCKLResult, entropy, js, kl, mc_kl, pass_at_k, pass_exact, tv

TWO_ARG = [kl, tv, js]


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(x, dtype=float))


def _dirichlet(seed, size, k=7):
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=size)


# ---------------------------------------------------------------- input validation
def test_entropy_iv():
    with pytest.raises(ValueError, match="logp must contain no NaN"):
        entropy([np.nan, 0.0])
    with pytest.raises(ValueError, match=r"logp must be log-probabilities \(<= 0\)"):
        entropy([0.1, -1.0])
    with pytest.raises(ValueError, match="axis"):
        entropy([-1.0, -1.0], axis=1)
    with pytest.raises(ValueError, match="logp must have positive mass"):
        entropy([-np.inf, -np.inf], normalize=True)
    assert entropy([1e-9, -np.inf]) == 0.0  # rounding above 0 is tolerated


def _check_two_arg_iv(fn):
    good = _log([0.5, 0.5])
    with pytest.raises(ValueError, match="logp must contain no NaN"):
        fn([np.nan, 0.0], good)
    with pytest.raises(ValueError, match="logq must contain no NaN"):
        fn(good, [np.nan, 0.0])
    with pytest.raises(ValueError, match=r"logq must be log-probabilities \(<= 0\)"):
        fn(good, [0.5, -1.0])
    with pytest.raises(ValueError, match="logp and logq must have the same support size"):
        fn(good, _log([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="logp and logq must be broadcastable"):
        fn(np.zeros((2, 3)) - 1, np.zeros((4, 3)) - 1)
    with pytest.raises(ValueError, match="logq must have positive mass"):
        fn(good, [-np.inf, -np.inf], normalize=True)


def test_kl_iv():
    _check_two_arg_iv(kl)


def test_tv_iv():
    _check_two_arg_iv(tv)


def test_js_iv():
    _check_two_arg_iv(js)


def test_mc_kl_iv():
    with pytest.raises(ValueError, match="logp must contain at least 2"):
        mc_kl([-1.0], [-2.0])
    with pytest.raises(ValueError, match="logp must contain no NaN"):
        mc_kl([np.nan, -1.0], [-1.0, -1.0])
    with pytest.raises(ValueError, match="logq must be finite"):
        mc_kl([-1.0, -1.0], [-np.inf, -1.0])
    with pytest.raises(ValueError, match="logp must be log-probabilities"):
        mc_kl([3.0, -1.0], [-1.0, -1.0])
    with pytest.raises(ValueError, match="logp and logq must be 1-D arrays of the same length"):
        mc_kl([-1.0, -1.0], [-1.0, -1.0, -1.0])
    with pytest.raises(ValueError, match="logp and logq must be 1-D"):
        mc_kl(-np.ones((2, 2)), -np.ones((2, 2)))
    with pytest.raises(ValueError, match="confidence_level"):
        mc_kl([-1.0, -2.0], [-1.0, -1.0], confidence_level=1.0)


def test_pass_at_k_iv():
    with pytest.raises(ValueError, match=r"k=0: must be an integer >= 1"):
        pass_at_k(10, 3, 0)
    with pytest.raises(ValueError, match=r"k=.*: must be an integer"):
        pass_at_k(10, 3, 1.5)
    with pytest.raises(ValueError, match="k must not exceed n"):
        pass_at_k([10, 4], [3, 1], 5)
    with pytest.raises(ValueError, match="c must not exceed n"):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError, match="c must be non-negative"):
        pass_at_k(5, -1, 1)
    with pytest.raises(ValueError, match="n must be non-negative"):
        pass_at_k(-5, 0, 1)
    with pytest.raises(ValueError, match="n must contain integers"):
        pass_at_k(5.5, 1, 1)


# ---------------------------------------------------------------- against scipy
def test_entropy_against_scipy():
    p = _dirichlet(0, 50)
    np.testing.assert_allclose(entropy(np.log(p)), stats.entropy(p, axis=-1), rtol=1e-10)


def test_kl_against_scipy():
    p, q = _dirichlet(1, 50), _dirichlet(2, 50)
    np.testing.assert_allclose(kl(np.log(p), np.log(q)), stats.entropy(p, q, axis=-1),
                               rtol=1e-10)


def test_js_against_scipy():
    p, q = _dirichlet(3, 50), _dirichlet(4, 50)
    ref = jensenshannon(p, q, axis=-1) ** 2
    np.testing.assert_allclose(js(np.log(p), np.log(q)), ref, rtol=1e-10)


def test_tv_against_scipy():
    p, q = _dirichlet(5, 50), _dirichlet(6, 50)
    ref = 0.5 * np.abs(p - q).sum(axis=-1)
    np.testing.assert_allclose(tv(np.log(p), np.log(q)), ref, rtol=1e-10)


# ---------------------------------------------------------------- against theory
def test_entropy_against_theory():
    for k in (1, 2, 10, 1000):
        assert entropy(np.full(k, -np.log(k))) == pytest.approx(np.log(k), rel=1e-12, abs=1e-15)
    # Bernoulli(0.3): -0.3 log 0.3 - 0.7 log 0.7
    assert entropy(_log([0.3, 0.7])) == pytest.approx(0.6108643020548935, rel=1e-12)
    assert entropy(_log([0.0, 1.0, 0.0])) == 0.0


@pytest.mark.filterwarnings("error")
def test_kl_against_theory():
    a, b = 0.3, 0.6
    ref = a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    assert kl(_log([a, 1 - a]), _log([b, 1 - b])) == pytest.approx(ref, rel=1e-12)
    assert ref == pytest.approx(0.1837868973868122, rel=1e-12)
    p = _log([0.5, 0.5, 0.0])
    assert kl(p, p) == 0.0
    assert kl(p, _log([0.25, 0.25, 0.5])) == pytest.approx(np.log(2), rel=1e-12)  # finite
    assert kl(p, _log([0.0, 0.5, 0.5])) == np.inf  # p > 0 where q = 0
    assert kl(_log([0.0, 0.5, 0.5]), _log([0.5, 0.0, 0.5])) == np.inf


@pytest.mark.filterwarnings("error")
def test_tv_against_theory():
    assert tv(_log([1.0, 0.0]), _log([0.0, 1.0])) == 1.0
    assert tv(_log([0.3, 0.7]), _log([0.6, 0.4])) == pytest.approx(0.3, rel=1e-12)
    p = _log([0.2, 0.8, 0.0])
    assert tv(p, p) == 0.0


@pytest.mark.filterwarnings("error")
def test_js_against_theory():
    p, q = _dirichlet(7, 200), _dirichlet(8, 200)
    d = js(np.log(p), np.log(q))
    assert np.all((d >= 0) & (d <= np.log(2)))
    np.testing.assert_allclose(d, js(np.log(q), np.log(p)), rtol=1e-12)  # symmetric
    disjoint = js(_log([0.5, 0.5, 0.0, 0.0]), _log([0.0, 0.0, 0.1, 0.9]))
    assert disjoint == pytest.approx(np.log(2), rel=1e-12)
    assert js(_log([0.2, 0.8, 0.0]), _log([0.2, 0.8, 0.0])) == 0.0
    # Bernoulli(0) vs Bernoulli(1/2): m = (1/4, 3/4)
    ref = 0.5 * np.log(1 / 0.75) + 0.5 * (0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75))
    assert js(_log([0.0, 1.0]), _log([0.5, 0.5])) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("fn", [entropy, *TWO_ARG])
def test_divergence_axis_broadcast_against_theory(fn):
    p, q = _dirichlet(9, (4, 3), k=5), _dirichlet(10, 3, k=5)  # batch (4, 3) vs (3,)
    lp, lq = np.log(p), np.log(q)
    args = (lp,) if fn is entropy else (lp, lq)
    expected = np.array([[fn(*(a[i, j] if a.ndim == 3 else a[j] for a in args))
                          for j in range(3)] for i in range(4)])
    out = fn(*args)
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    moved = [np.moveaxis(a if a.ndim == 3 else a[None], -1, 0) for a in args]  # (5, ., 3)
    np.testing.assert_allclose(fn(*moved, axis=0), expected, rtol=1e-12)
    # positive axis refers to the broadcast shape even when ranks differ
    np.testing.assert_allclose(fn(*args, axis=2), expected, rtol=1e-12)


@pytest.mark.parametrize("fn", [entropy, *TWO_ARG])
def test_divergence_normalize_against_theory(fn):
    p, q = _dirichlet(11, 6), _dirichlet(12, 6)
    args = (np.log(p),) if fn is entropy else (np.log(p), np.log(q))
    sub = [a + np.log(0.37) for a in args]  # candidate set leaving 63% of mass outside
    np.testing.assert_allclose(fn(*sub, normalize=True), fn(*args), rtol=1e-12)


def test_mc_kl_against_theory():
    rng = np.random.default_rng(2024)
    p = np.array([0.5, 0.2, 0.2, 0.1])
    q = np.array([0.25, 0.25, 0.3, 0.2])
    exact = kl(np.log(p), np.log(q))
    assert exact == pytest.approx(0.15153714033950327, rel=1e-12)
    y = rng.choice(4, size=5000, p=p)
    res = mc_kl(np.log(p[y]), np.log(q[y]))
    assert isinstance(res, MCKLResult) and isinstance(res.confidence_interval, ConfidenceInterval)
    assert res.n == 5000 and isinstance(res.method, str)
    assert abs(res.statistic - exact) < 3 * res.standard_error
    assert res.confidence_interval.low < exact < res.confidence_interval.high
    assert abs(res.k3 - exact) < 0.02
    r = np.log(p[y]) - np.log(q[y])
    assert res.standard_error == pytest.approx(r.std(ddof=1) / np.sqrt(5000), rel=1e-12)
    t = stats.t.ppf(0.975, df=4999)
    assert res.confidence_interval.high - res.statistic == pytest.approx(t * res.standard_error)
    with pytest.raises(Exception):
        res.statistic = 0.0  # frozen


def test_mc_kl_coverage_against_theory():
    rng = np.random.default_rng(7)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    exact = kl(np.log(p), np.log(q))
    ys = rng.choice(4, size=(400, 200), p=p)
    covered = []
    for y in ys:
        ci = mc_kl(np.log(p[y]), np.log(q[y])).confidence_interval
        covered.append(ci.low <= exact <= ci.high)
    assert 0.92 <= np.mean(covered) <= 0.98


def test_mc_kl_k3_against_theory():
    # k3 is nonnegative per sample, hence nonnegative; zero when p == q.
    res = mc_kl([-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0])
    assert res.statistic == 0.0 and res.k3 == 0.0 and res.standard_error == 0.0
    r = np.array([0.5, -0.25])
    res = mc_kl(-1.0 + r, np.array([-1.0, -1.0]))
    assert res.k3 == pytest.approx(np.mean(np.exp(-r) - 1 + r), rel=1e-12)
    assert res.k3 >= 0


# ---------------------------------------------------------------- pass@k
def test_pass_at_k_against_brute_force():
    for n in range(1, 8):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(outcomes, k))
                ref = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_pass_at_k_against_comb():
    rng = np.random.default_rng(3)
    n = rng.integers(20, 300, size=100)
    c = rng.integers(0, n + 1)
    for k in (1, 5, 20):
        ref = [1 - math.comb(int(ni - ci), k) / math.comb(int(ni), k) for ni, ci in zip(n, c)]
        np.testing.assert_allclose(pass_at_k(n, c, k), ref, rtol=1e-10, atol=1e-15)
    assert pass_at_k(10, 3, 2) == pytest.approx(24 / 45, rel=1e-14)
    assert pass_at_k(200, 13, 1) == pytest.approx(13 / 200, rel=1e-14)
    # large n: no overflow, tiny probability kept to relative precision
    assert pass_at_k(10**6, 1, 1) == pytest.approx(1e-6, rel=1e-12)


def test_pass_at_k_edge_cases():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k
    assert pass_at_k(10, 10, 1) == 1.0
    out = pass_at_k(np.array([[10], [20]]), np.array([0, 3, 8]), 3)  # broadcast
    assert out.shape == (2, 3)
    ref = [[1 - math.comb(ni - ci, 3) / math.comb(ni, 3) for ci in (0, 3, 8)] for ni in (10, 20)]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert out[0, 2] == 1.0 and out[0, 0] == 0.0


def test_pass_exact_against_theory_and_pass_at_k():
    p = np.array([0.0, 0.01, 0.3, 0.9, 1.0])
    k = np.array([1, 2, 8, 64])
    out = pass_exact(p, k)
    np.testing.assert_allclose(out, 1 - (1 - p[:, None]) ** k[None, :], atol=1e-15)
    np.testing.assert_allclose(out[:, 0], p)
    assert pass_exact(p, 3).shape == (5, 1)
    # pass_at_k is unbiased for it: its expectation over c ~ Binomial(n, p) is exact
    n = 64
    c = np.arange(n + 1)
    for kk in (1, 4, 16):
        expected = [(stats.binom.pmf(c, n, q) * pass_at_k(n, c, kk)).sum() for q in p]
        np.testing.assert_allclose(expected, pass_exact(p, kk)[:, 0], atol=1e-12)
    # and on seeded samples: the mean estimate lies within 4 standard errors
    rng = np.random.default_rng(0)
    est = pass_at_k(n, rng.binomial(n, 0.05, size=4000), 8)
    assert abs(est.mean() - pass_exact([0.05], 8)[0, 0]) < 4 * est.std() / np.sqrt(len(est))
    for bad in ([[0.1]], [1.5], [np.nan]):
        with pytest.raises(ValueError, match="p must be"):
            pass_exact(bad, 1)
    for bad in (0, [1.5], [], [[1]]):
        with pytest.raises(ValueError, match="k="):
            pass_exact([0.1], bad)
