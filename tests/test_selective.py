"""Tests for dint.selective: risk-coverage curves, conformal risk control, selective error."""
import math

import numpy as np
import pytest

from dint.selective import conformal_risk_threshold, conformal_threshold, risk_coverage, selective_error

SMALL_C = np.array([0.2, 0.3, 0.4, 0.6, 0.8, 0.9])
SMALL_Y = np.array([0, 1, 0, 1, 1, 1])


# ---------------------------------------------------------------- risk_coverage
def test_risk_coverage_iv():
    with pytest.raises(ValueError, match="paired"):
        risk_coverage([0.1, 0.2], [1])


def test_risk_coverage_hand_example():
    r = risk_coverage([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0])
    np.testing.assert_allclose(r.coverage, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(r.risk, [0.0, 1 / 3, 0.5])
    # k=1: 0; k=2: tie group {wrong, right} -> expected 0.5 errors -> 0.25; k=3: 1/3; k=4: 1/2
    assert r.aurc == pytest.approx((0 + 0.25 + 1 / 3 + 0.5) / 4, abs=1e-12)
    assert r.n == 4


def test_risk_coverage_against_theory_perfect_ranking():
    rng = np.random.default_rng(13)
    n, m = 500, 120                                   # m errors, all ranked below the correct items
    y = np.r_[np.ones(n - m), np.zeros(m)]
    s = np.r_[rng.uniform(0.5, 1, n - m), rng.uniform(0, 0.49, m)]
    perm = rng.permutation(n)
    r = risk_coverage(s[perm], y[perm])
    h = lambda j: np.sum(1.0 / np.arange(1, j + 1))
    assert r.aurc == pytest.approx((m - (n - m) * (h(n) - h(n - m))) / n, abs=1e-12)
    assert r.coverage[-1] == 1.0 and r.risk[-1] == pytest.approx(m / n)
    assert len(r.coverage) == n


def test_risk_coverage_all_tied_is_overall_error():
    r = risk_coverage(np.full(10, 0.7), np.r_[np.ones(7), np.zeros(3)])
    np.testing.assert_allclose(r.coverage, [1.0])
    assert r.aurc == pytest.approx(0.3, abs=1e-12)     # random tie-breaking: risk 0.3 at every k


# ---------------------------------------------------------------- conformal
@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_conformal_threshold_iv(alpha):
    with pytest.raises(ValueError, match="alpha"):
        conformal_threshold(SMALL_C, SMALL_Y, alpha=alpha)


def test_conformal_threshold_iv_inputs():
    with pytest.raises(ValueError, match="paired"):
        conformal_threshold([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="correct_cal"):
        conformal_threshold([0.1, 0.2], [1, 3])
    with pytest.raises(ValueError, match="threshold"):
        selective_error(float("nan"), [0.1], [1])


def test_conformal_threshold_hand_example():
    # n=6, alpha=0.5: need (#wrong answered + 1)/7 <= 0.5 -> at most 2 wrong answered (both are)
    assert conformal_threshold(SMALL_C, SMALL_Y, alpha=0.5).threshold == 0.2
    # alpha=0.3: at most 1 wrong answered -> skip the wrong item at 0.2 -> 0.3
    assert conformal_threshold(SMALL_C, SMALL_Y, alpha=0.3).threshold == 0.3
    # alpha=0.15: no wrong answered -> above the wrong item at 0.4
    assert conformal_threshold(SMALL_C, SMALL_Y, alpha=0.15).threshold == 0.6
    # alpha < 1/(n+1): nothing qualifies, abstain always
    r = conformal_threshold(SMALL_C, SMALL_Y, alpha=0.1)
    assert r.threshold == math.inf and r.n == 6 and r.alpha == 0.1
    assert conformal_threshold(np.linspace(0, 1, 500), np.ones(500), alpha=0.001).threshold == math.inf


def test_selective_error_hand_example():
    e = selective_error(0.4, SMALL_C, SMALL_Y)
    assert e == {"coverage": 4 / 6, "error_joint": 1 / 6, "error_given_answered": 1 / 4, "n": 6}
    e = selective_error(math.inf, SMALL_C, SMALL_Y)
    assert e["coverage"] == 0.0 and e["error_joint"] == 0.0 and math.isnan(e["error_given_answered"])


def test_conformal_threshold_against_theory():
    # logistic model of correctness: score = sigmoid(x), P(correct | x) = sigmoid(0.5 + 2x)
    rng = np.random.default_rng(17)
    x = rng.standard_normal(1000)
    score = 1 / (1 + np.exp(-x))
    correct = rng.uniform(size=1000) < 1 / (1 + np.exp(-(0.5 + 2 * x)))
    alpha, joint, cover = 0.1, [], []
    for _ in range(1000):
        perm = rng.permutation(1000)
        cal, test = perm[:500], perm[500:]
        thr = conformal_threshold(score[cal], correct[cal], alpha=alpha).threshold
        e = selective_error(thr, score[test], correct[test])
        joint.append(e["error_joint"])
        cover.append(e["coverage"])
    joint, cover = np.array(joint), np.array(cover)
    print(f"conformal joint error over 1000 splits: mean {joint.mean():.4f}, sd {joint.std():.4f}; "
          f"coverage mean {cover.mean():.3f}; overall error {1 - correct.mean():.3f}")
    # realised (seed 17): mean joint error 0.0987, sd 0.0187; coverage 0.513; overall error 0.427
    assert joint.mean() <= alpha + 0.005
    assert joint.mean() >= alpha - 0.01          # CRC is tight: E >= alpha - 2/(n+1) roughly
    assert cover.mean() > 0.3 and (1 - correct.mean()) > 2 * alpha


# ------------------------------------------------------------------------------ conformal_risk_threshold
def test_conformal_risk_threshold_iv():
    loss = np.array([[0.5, 0.0], [0.2, 0.0]])
    with pytest.raises(ValueError, match="alpha="):
        conformal_risk_threshold(loss, [0.1, np.inf], alpha=1.5)
    with pytest.raises(ValueError, match="thresholds must be a strictly increasing"):
        conformal_risk_threshold(loss, [0.5, 0.1])
    with pytest.raises(ValueError, match="loss must lie in"):
        conformal_risk_threshold(loss + 1.0, [0.1, np.inf])
    with pytest.raises(ValueError, match="last threshold"):
        conformal_risk_threshold(np.array([[0.5, 0.1]]), [0.1, np.inf])


def test_conformal_risk_threshold_is_conformal_threshold_for_the_01_loss():
    rng = np.random.default_rng(3)
    for _ in range(20):
        score = rng.uniform(size=60).round(2)          # ties included
        correct = rng.uniform(size=60) < score
        grid = np.r_[np.unique(score), np.inf]
        loss = (score[:, None] >= grid[None, :]) & ~correct[:, None]
        for alpha in (0.05, 0.1, 0.3):
            assert conformal_risk_threshold(loss.astype(float), grid, alpha=alpha).threshold == \
                conformal_threshold(score, correct, alpha=alpha).threshold


def test_conformal_risk_threshold_monotonises_the_loss():
    # item loss rises again below the chosen grid point: the monotonised loss is the supremum above it
    loss = np.array([[0.0, 0.9, 0.0, 0.0]] * 9)
    r = conformal_risk_threshold(loss, [0.1, 0.2, 0.3, np.inf], alpha=0.2)
    assert r.threshold == 0.3            # 0.1 has loss 0 but its supremum above is 0.9


def test_conformal_risk_threshold_against_theory():
    # sample until a noisy score reaches the threshold, at most 4 draws: the loss is P(returned answer wrong)
    from dint.analyses import answer_risk

    rng = np.random.default_rng(5)
    m, k = 600, 4
    p = rng.dirichlet(np.ones(k), size=m)
    correct = np.zeros((m, k), bool)
    correct[np.arange(m), rng.integers(k, size=m)] = True
    score = np.clip(0.35 * correct + rng.uniform(size=(m, k)) * 0.8, 0, 1)
    res = answer_risk.splits(p, score, correct, [1, 4], alpha=0.1, n_splits=300, seed=1)
    err = res[res.measure == "error"].set_index("budget").estimate
    assert (err <= 0.1 + 0.005).all() and (err >= 0.1 - 0.03).all()
    # a per-draw threshold applied at B = 4 returns wrong answers far more often than alpha
    thr = conformal_threshold(score.ravel(), correct.ravel(), alpha=0.1).threshold
    per_draw = answer_risk.loss_curves(p, score, correct, [thr, np.inf], 4)["wrong"][:, 0].mean()
    assert per_draw > 0.15
