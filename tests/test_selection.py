"""Selection by verification, exact against brute force and theory (`dint.analyses.selection`)."""
import numpy as np
import pandas as pd
import pytest

from dint.interventions import bestofn
from dint.analyses.selection import best_of_n_by_verifier, sample_until_verified, sample_until_verified_mc


def _brute_force(p, a, c, cost, budget):
    """Enumerate every draw sequence and every verdict; stop at the first accepted draw."""
    totals = np.zeros(5)                        # right, wrong, abstain, draws, tokens

    def walk(weight, t, tokens):
        if t == budget:                         # all draws rejected
            totals[:] += weight * np.array([0, 0, 1, budget, tokens])
            return
        for j in range(len(p)):
            w = weight * p[j]
            totals[:] += w * a[j] * np.array([c[j], 1 - c[j], 0, t + 1, tokens + cost[j]])
            walk(w * (1 - a[j]), t + 1, tokens + cost[j])

    walk(1.0, 0, 0.0)
    return totals


def test_sample_until_verified_against_brute_force():
    rng = np.random.default_rng(0)
    for k, budget in [(2, 1), (3, 2), (3, 4), (4, 3)]:
        p = rng.dirichlet(np.ones(k))
        a = rng.random(k) * (rng.random(k) < 0.7)              # stochastic, some never accepted
        c = np.zeros(k, bool)
        c[rng.integers(k)] = True
        cost = rng.integers(1, 9, k).astype(float)
        got = sample_until_verified(p, a, budget, correct=c, cost=cost).iloc[0]
        want = _brute_force(p, a, c, cost, budget)
        np.testing.assert_allclose(
            [got.p_correct, got.p_wrong, got.p_abstain, got.draws, got.cost], want, rtol=1e-10, atol=1e-12)


def test_sample_until_verified_perfect_verifier_against_theory():
    p = np.array([[0.1, 0.6, 0.3], [0.02, 0.9, 0.08], [0.0, 0.5, 0.5]])
    target = np.array([0, 2, 0])
    correct = np.zeros_like(p, dtype=bool)
    correct[np.arange(3), target] = True
    out = sample_until_verified(p, correct, [1, 3, 10], correct=target)
    p_true = p[np.arange(3), target]
    for b, g in out.groupby("budget"):
        np.testing.assert_allclose(g["p_correct"], 1 - (1 - p_true) ** b, rtol=1e-12)
        np.testing.assert_allclose(g["p_wrong"], 0.0, atol=1e-15)
        np.testing.assert_allclose(g["p_abstain"], (1 - p_true) ** b, rtol=1e-12)
    # an item whose truth has p = 0 can never be verified: full budget, always abstain
    last = out[out["item"] == 2]
    np.testing.assert_array_equal(last["draws"], [1, 3, 10])
    np.testing.assert_array_equal(last["p_abstain"], 1.0)


def test_sample_until_verified_accept_all_is_plain_sampling():
    p = np.array([0.2, 0.5, 0.3])
    out = sample_until_verified(p, np.ones(3, bool), 5, correct=np.array(1), cost=7.0).iloc[0]
    assert out.p_correct == pytest.approx(0.5) and out.p_abstain == 0.0
    assert out.draws == 1.0 and out.cost == 7.0


def test_sample_until_verified_mc_agrees_with_exact():
    rng = np.random.default_rng(1)
    m, k = 4, 5
    p = rng.dirichlet(np.ones(k), size=m)
    p[0, 3] = 0.0
    p[0] /= p[0].sum()
    accept = rng.random((m, k)) < 0.5
    accept[1] = rng.random(k)                                     # one stochastic row
    target = rng.integers(k, size=m)
    cost = rng.integers(1, 20, (m, k))
    exact = sample_until_verified(p, accept, [1, 4], correct=target, cost=cost)
    size = 20000
    mc = sample_until_verified_mc(p, accept, [1, 4], correct=target, cost=cost, rng=np.random.default_rng(2),
                                  size=size)
    assert list(mc.columns[:-1]) == list(exact.columns) and (mc["size"] == size).all()
    for col in ("p_correct", "p_wrong", "p_abstain"):
        se = np.sqrt(exact[col] * (1 - exact[col]) / size) + 1e-9
        assert (np.abs(mc[col] - exact[col]) <= 4.5 * se).all(), col
    np.testing.assert_allclose(mc["draws"], exact["draws"], rtol=0.03)
    np.testing.assert_allclose(mc["cost"], exact["cost"], rtol=0.04)
    # seeded: same generator state, same numbers
    again = sample_until_verified_mc(p, accept, [1, 4], correct=target, cost=cost, rng=2, size=size)
    pd.testing.assert_frame_equal(mc, again)


def test_best_of_n_by_verifier():
    p = np.array([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1]])
    score = np.array([[0.1, 0.9, 0.4], [0.2, 0.2, 0.8]])
    target = np.array([1, 0])
    out = best_of_n_by_verifier(p, score, [1, 3], correct=target, cost=np.array([2.0, 3.0]))
    for n, g in out.groupby("budget"):
        q = bestofn.exact(p, score, n)
        np.testing.assert_allclose(g["p_correct"], q[np.arange(2), target], rtol=1e-12)
        np.testing.assert_allclose(g["p_abstain"], 0.0, atol=1e-12)
        np.testing.assert_array_equal(g["cost"], [2.0 * n, 3.0 * n])
    # with a threshold, abstain exactly when all draws score below it
    out = best_of_n_by_verifier(p, score, 3, correct=target, threshold=0.5).set_index("item")
    below = np.array([0.5 + 0.2, 0.7 + 0.2])                        # P(score < 0.5) per item
    np.testing.assert_allclose(out["p_abstain"], below ** 3, rtol=1e-12)
    assert out.loc[0, "p_correct"] == pytest.approx(1 - 0.7 ** 3)


def test_selection_iv():
    p = np.array([[0.5, 0.5]])
    ok = np.array([[True, False]])
    with pytest.raises(ValueError, match="p must"):
        sample_until_verified([[0.5, 0.6]], ok, 2, correct=[0])
    with pytest.raises(ValueError, match="p must"):
        sample_until_verified([[-0.5, 1.5]], ok, 2, correct=[0])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(p, [[1.2, 0.0]], 2, correct=[0])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(p, [[1, 0, 0]], 2, correct=[0])
    for bad in (0, 2.5, True, [], [1, 0]):
        with pytest.raises(ValueError, match="budget"):
            sample_until_verified(p, ok, bad, correct=[0])
    with pytest.raises(ValueError, match="correct"):
        sample_until_verified(p, ok, 2, correct=[2])
    with pytest.raises(ValueError, match="correct"):
        sample_until_verified(p, ok, 2, correct=[[0.5, 0.5]])
    with pytest.raises(ValueError, match="correct"):               # (k,) masks only for one item
        sample_until_verified(np.full((2, 2), 0.5), np.ones((2, 2)), 2, correct=[True, False])
    with pytest.raises(ValueError, match="accept"):
        sample_until_verified(np.full((2, 2), 0.5), [1, 0], 2, correct=[0, 1])
    with pytest.raises(ValueError, match="cost"):
        sample_until_verified(p, ok, 2, correct=[0], cost=-1.0)
    with pytest.raises(TypeError, match="rng"):
        sample_until_verified_mc(p, ok, 2, correct=[0], rng=None)
    with pytest.raises(ValueError, match="size"):
        sample_until_verified_mc(p, ok, 2, correct=[0], rng=0, size=0)
    with pytest.raises(ValueError, match="score"):
        best_of_n_by_verifier(p, [[np.nan, 0.0]], 2, correct=[0])
    with pytest.raises(ValueError, match="threshold"):
        best_of_n_by_verifier(p, ok, 2, correct=[0], threshold=float("nan"))


