"""Tests for dint.analyses.answer_risk: the learned verifier's risk per returned answer."""
import numpy as np
import pytest

from dint.analyses import answer_risk, selection


def _items(m=40, k=4, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=m)
    correct = np.zeros((m, k), bool)
    correct[np.arange(m), rng.integers(k, size=m)] = True
    score = np.clip(0.3 * correct + 0.8 * rng.uniform(size=(m, k)), 0, 1)
    return p, score, correct


def test_loss_curves_against_sample_until_verified():
    p, score, correct = _items()
    thr = answer_risk.grid(score, size=16)
    for b in (1, 3, 8):
        curves = answer_risk.loss_curves(p, score, correct, thr, b)
        for j in (0, 5, len(thr) - 1):
            exact = selection.sample_until_verified(p, score >= thr[j], b, correct=correct)
            np.testing.assert_allclose(curves["wrong"][:, j], exact.p_wrong, atol=1e-12)
            np.testing.assert_allclose(curves["right"][:, j], exact.p_correct, atol=1e-12)
            np.testing.assert_allclose(curves["answered"][:, j], 1 - exact.p_abstain, atol=1e-12)
    assert (curves["wrong"][:, -1] == 0).all()          # +inf answers nothing


def test_grid_ends_with_inf_and_is_increasing():
    g = answer_risk.grid(np.array([[0.2, 0.2, np.nan], [0.9, 0.1, 0.5]]), size=8)
    assert g[-1] == np.inf and (np.diff(g) > 0).all() and g[0] == 0.1
    with pytest.raises(ValueError, match="size="):
        answer_risk.grid([0.1], size=1)


def test_cross_fit_fits_each_item_without_it():
    p, score, correct = _items(m=40)
    fitted = answer_risk.cross_fit(p, score, correct, [1, 4], alpha=0.2, seed=3)
    assert len(fitted) == 2 * 40 and set(fitted.budget) == {1, 4}
    one = fitted[fitted.budget == 4].set_index("item")
    item = 0
    flipped = correct.copy()
    flipped[item] = ~flipped[item]                 # its own label changes nothing in its own threshold
    again = answer_risk.cross_fit(p, score, flipped, [4], alpha=0.2, seed=3).set_index("item")
    assert again.threshold[item] == one.threshold[item]
    same_fold = one.index[(one.fold == one.fold[item])]
    assert (again.threshold[same_fold] == one.threshold[same_fold]).all()
    with pytest.raises(ValueError, match="p, score and correct"):
        answer_risk.cross_fit(p[:, :2], score, correct, [1], alpha=0.1)


def test_splits_holds_alpha_and_says_so():
    p, score, correct = _items(m=400, seed=2)
    res = answer_risk.splits(p, score, correct, [1, 8], alpha=0.1, n_splits=100, seed=0)
    err = res[res.measure == "error"]
    assert list(err.budget) == [1, 8] and err.within.all()
    assert (err.ci_low <= err.estimate).all() and (err.estimate <= err.ci_high).all()
    assert set(res.measure) == {"error", "coverage", "accuracy"} and (res.n == 100).all()
    with pytest.raises(ValueError, match="share="):
        answer_risk.splits(p, score, correct, [1], alpha=0.1, share=1.0)
