"""Tests for dint.analyses.flops: answer matrices, per-item outcomes, points with intervals, frontiers and paired tests."""
import numpy as np
import pandas as pd
import pytest

from dint import stats
from dint.analyses import flops
from dint.stats import proportions


# ------------------------------------------------------------------------------ (b) answer matrices
def _scores():
    """A score table of two facts (3 and 2 candidates) in one form, plus a row of another form."""
    rows = [(7, "qa", 0, "red", 0.5, 0.1, False), (7, "qa", 1, "blue", 0.3, 0.1, True),
            (7, "qa", 2, "green", 0.2, 0.1, False), (2, "qa", 0, "cat", 0.6, 0.0, True),
            (2, "qa", 1, "dog", 0.4, 0.0, False), (2, "statement", 0, "cat", 1.0, 0.5, True)]
    return pd.DataFrame(rows, columns=["fact", "form", "candidate", "answer", "p_set", "mass_outside", "is_true"])


def test_answer_matrix_adds_the_outside_mass():
    a = flops.answer_matrix(_scores(), [7, 2])
    np.testing.assert_array_equal(a.fact, [2, 7])                                       # sorted by fact
    np.testing.assert_allclose(a.p, [[0.6, 0.4, 0.0, 0.0], [0.45, 0.27, 0.18, 0.1]])
    np.testing.assert_allclose(a.p.sum(1), 1.0)
    assert a.correct.tolist() == [[True, False, False, False], [False, True, False, False]]
    assert a.candidates == [("cat", "dog"), ("red", "blue", "green")]
    np.testing.assert_allclose(flops.p_true(a), [0.6, 0.3])                         # inside the candidate set
    correct, tokens = flops.greedy(a, np.arange(8).reshape(2, 4))
    assert correct.tolist() == [True, False] and tokens.tolist() == [0, 4]


def test_answer_matrix_iv():
    with pytest.raises(ValueError, match="score_world table"):
        flops.answer_matrix(_scores().drop(columns="mass_outside"), [7])
    with pytest.raises(ValueError, match=r"no 'qa' rows for facts \[9\]"):
        flops.answer_matrix(_scores(), [7, 9])
    with pytest.raises(ValueError, match="shape of answers.p"):
        flops.greedy(flops.answer_matrix(_scores(), [7]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"\(m, k\) array"):
        flops.with_outside(np.zeros(3), 0.0)


def test_draw_tokens_counts_prompt_answer_and_eos(micro_model):
    _, tok, _ = micro_model
    t = flops.draw_tokens(tok, ["Q : a b A :", "Q : c A :"], [("x y", "z"), ("w",)])
    assert t.tolist() == [[6 + 2 + 1, 6 + 1 + 1, 9], [5 + 1 + 1, 0, 7]]                # padded 0; outside = longest
    with pytest.raises(ValueError, match="pass them paired"):
        flops.draw_tokens(tok, ["a"], [("x",), ("y",)])


def test_sample_index_follows_p():
    p = np.tile([[0.1, 0.0, 0.6, 0.3]], (20000, 1))
    idx = flops.sample_index(p, rng=0)
    np.testing.assert_allclose(np.bincount(idx, minlength=4) / len(idx), [0.1, 0.0, 0.6, 0.3], atol=0.01)
    np.testing.assert_array_equal(idx, flops.sample_index(p, rng=0))
    with pytest.raises(ValueError, match="positive sum per row"):
        flops.sample_index(np.zeros((2, 3)), rng=0)


# ------------------------------------------------------------------------------ points and frontiers
def test_outcomes_and_summarize():
    a = flops.outcomes("fam", "greedy", [1, 2, 3, 4], [1, 0, 1, 1], cost=10.0, train_flops=100.0)
    b = flops.outcomes("fam", "verified", [1, 2, 3, 4], [0.5, 0.2, 0.9, 0.4], p_abstain=[0.5, 0.0, 0.1, 0.2],
                           cost=[1.0, 2.0, 3.0, 4.0], train_flops=50.0).assign(budget=4)
    s = flops.accuracy_cost(pd.concat([a, b]), n_resamples=500).set_index("point")
    wilson = stats.proportion(3, 4)
    assert s.loc["greedy", "estimate"] == 0.75
    assert (s.loc["greedy", "ci_low"], s.loc["greedy", "ci_high"]) == pytest.approx(
        (wilson.confidence_interval.low, wilson.confidence_interval.high))
    assert list(s.columns[:8]) == ["family", *stats.ROW]                                  # tidy: labels, then ROW
    assert s.loc["greedy", "method"] == wilson.method and np.isnan(s.loc["greedy", "pvalue"])
    assert s.loc["greedy", "n"] == 4
    assert s.loc["greedy", "total_flops"] == 140.0 and s.loc["verified", "total_flops"] == 60.0
    assert s.loc["verified", "estimate"] == pytest.approx(0.5)
    assert s.loc["verified", "coverage"] == pytest.approx(0.8)
    assert s.loc["verified", "selective_accuracy"] == pytest.approx(2.0 / 3.2)
    assert 0 <= s.loc["verified", "ci_low"] < 0.5 < s.loc["verified", "ci_high"] <= 1
    assert s.loc["verified", "budget"] == 4 and np.isnan(s.loc["greedy", "budget"])
    with pytest.raises(ValueError, match="p_correct must be finite"):
        flops.outcomes("f", "p", [1, 2], [0.5, 1.5], cost=1.0, train_flops=0.0)
    with pytest.raises(ValueError, match="train_flops"):
        flops.outcomes("f", "p", [1, 2], [0.5, 0.5], cost=1.0, train_flops=-1.0)
    with pytest.raises(ValueError, match="lacks columns"):
        flops.accuracy_cost(a.drop(columns="cost"))


def test_pareto_against_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 8, 60).astype(float), rng.integers(0, 8, 60).astype(float)
    dominated = [any((x[j] <= x[i]) and (y[j] >= y[i]) and (x[j] < x[i] or y[j] > y[i]) for j in range(60))
                 for i in range(60)]
    keep = flops.pareto(x, y)
    # among exact duplicates on the frontier one is kept; otherwise the frontier is the undominated set
    assert set(zip(x[keep], y[keep])) == set(zip(x[~np.array(dominated)], y[~np.array(dominated)]))
    assert len(set(zip(x[keep], y[keep]))) == keep.sum()
    assert flops.pareto([1, 2, 3], [0.1, 0.3, 0.2]).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="same length"):
        flops.pareto([1, 2], [1])


def test_rl_points_scale_flops_by_step():
    sweep = pd.DataFrame({"beta": [0.1] * 3, "step": [0, 10, 20], "gold_exact": [0.5, 0.25, 0.0],
                          "train_flops": [100.0] * 3})
    pts = flops.rl_points(sweep, start_flops=1000.0, rollout_ratio=0.5, n_eval=32, inference_flops=7.0)
    np.testing.assert_allclose(pts.train_flops, [1000.0, 1075.0, 1150.0])
    np.testing.assert_allclose(pts.total_flops, pts.train_flops + 7.0)
    assert pts.estimate.tolist() == [0.5, 0.25, 0.0] and (pts.method == flops.RL_METHOD).all() and (pts.n == 32).all()
    w = stats.proportion(16, 32)
    assert (pts.ci_low[0], pts.ci_high[0]) == pytest.approx((w.confidence_interval.low, w.confidence_interval.high))
    assert pts.ci_low[2] == 0.0 and pts.ci_high[2] > 0.05
    with pytest.raises(ValueError, match="rl_sweep"):
        flops.rl_points(sweep.drop(columns="gold_exact"), start_flops=0, rollout_ratio=0, n_eval=1,
                            inference_flops=0)


# ------------------------------------------------------------------------------ tests
def test_paired_difference_binary_is_mcnemar():
    rng = np.random.default_rng(1)
    x, y = (rng.random(80) < 0.6).astype(float), (rng.random(80) < 0.4).astype(float)
    r, m = flops.paired_difference(x, y), proportions.mcnemar(y, x)
    assert r.statistic == pytest.approx(x.mean() - y.mean()) and r.pvalue == m.pvalue
    assert r.confidence_interval == m.confidence_interval


def test_paired_difference_continuous():
    rng = np.random.default_rng(2)
    y = rng.random(60)
    r = flops.paired_difference(np.clip(y + 0.2, 0, 1), y, n_resamples=999, rng=0)
    assert r.statistic == pytest.approx(np.mean(np.clip(y + 0.2, 0, 1) - y))
    assert r.confidence_interval.low > 0 and r.pvalue <= 2 / 1000 + 1e-12
    null = flops.paired_difference(y, rng.permutation(y), n_resamples=999, rng=0)
    assert null.confidence_interval.low < 0 < null.confidence_interval.high
    assert r.pvalue > 0                                                                   # never 0
    with pytest.raises(ValueError, match="paired by item"):
        flops.paired_difference([0.5], [0.2])


def test_trend_recovers_the_slope():
    rng = np.random.default_rng(3)
    x = np.tile(np.arange(5.0), 40)
    cluster = np.repeat(np.arange(40), 5)
    y = rng.normal(size=40)[cluster] + 0.3 * x + rng.normal(0, 0.1, 200)
    r = flops.trend(pd.DataFrame({"fact": cluster, "x": x, "y": y}), x="x", y="y", n_resamples=999)
    assert r.n == 40 and r.statistic == pytest.approx(0.3, abs=0.02)
    assert r.confidence_interval.low < 0.3 < r.confidence_interval.high and r.pvalue < 0.01
    flat = flops.trend(pd.DataFrame({"fact": cluster, "x": x, "y": rng.normal(size=200)}), x="x", y="y",
                           n_resamples=999)
    assert flat.confidence_interval.low < 0 < flat.confidence_interval.high
    with pytest.raises(ValueError, match="no column 'z'"):
        flops.trend(pd.DataFrame({"fact": cluster, "x": x, "y": y}), x="z", y="y")
    with pytest.raises(ValueError, match="at least 2 clusters"):
        flops.trend(pd.DataFrame({"fact": [1, 1], "x": [0.0, 1.0], "y": [0.0, 1.0]}), x="x", y="y")


# ------------------------------------------------------------------------------ one cost footing
def test_per_query_amortises():
    np.testing.assert_allclose(flops.per_query([100.0, 0.0], [1.0, 2.0], 50), [3.0, 2.0])
    with pytest.raises(ValueError, match="queries="):
        flops.per_query(1.0, 1.0, 0)


def test_reading_flops_counts_tokens():
    tok = lambda texts, add_special_tokens=False: {"input_ids": [t.split() for t in texts]}   # noqa: E731
    assert flops.reading_flops(tok, ["a b c", "d"], 10) == 2 * 10 * 4
    assert flops.reading_flops(tok, [], 10) == 0.0
    with pytest.raises(ValueError, match="n_params="):
        flops.reading_flops(tok, ["a"], 0)


def test_frontier_mixture_interpolates_in_log_flops():
    cost = np.array([1.0, 100.0, 10.0, 50.0])        # point 3 is dominated (costs more than 2, less accurate)
    acc = np.array([0.2, 0.8, 0.4, 0.3])
    assert flops.frontier_mixture(cost, acc, 10.0) == (2, 1, 0.0)                # on a Pareto point
    lo, hi, w = flops.frontier_mixture(cost, acc, 10 ** 1.5)                   # halfway between 10 and 100
    assert (lo, hi) == (2, 1) and w == pytest.approx(0.5)
    lo, hi, w = flops.frontier_mixture(cost, acc, np.sqrt(10.0))                # halfway between 1 and 10
    assert (lo, hi) == (0, 2) and w == pytest.approx(0.5)
    assert flops.frontier_mixture(cost, acc, 1e6) == (1, 1, 0.0)               # flat beyond the most accurate
    lo, hi, w = flops.frontier_mixture(cost, acc, 0.5)                          # below every point
    assert lo == -1 and np.isnan(w)
    # resamples: one row each, the frontier refitted per row
    lo, hi, w = flops.frontier_mixture(cost, np.array([acc, [0.2, 0.8, 0.1, 0.3]]), 10 ** 1.5)
    assert list(lo) == [2, 0] and list(hi) == [1, 3]   # point 2 falls off the second's frontier
    with pytest.raises(ValueError, match="cost must be"):
        flops.frontier_mixture([0.0, 1.0], [0.1, 0.2], 1.0)
