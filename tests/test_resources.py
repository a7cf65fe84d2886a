"""Tests for dint.analyses.resources: the training-curve artifact, answer matrices, points, frontiers and paired tests."""
import json

import numpy as np
import pandas as pd
import pytest

from dint.stats import proportions
from dint.analyses import resources
from dint import stats
from dint.pipeline.config import load_profile


# ------------------------------------------------------------------------------ (a) training
def _demos(n=40):
    return pd.DataFrame({"fact": np.arange(n), "prompt": [f"q{i}" for i in range(n)],
                         "completion": [f" a{i}" for i in range(n)]})


def test_demo_subset_nested_sized_and_ordered():
    demos = _demos(40)
    subsets = {s: resources.demo_subset(demos, s, seed=3) for s in (0.25, 0.5, 1.0)}
    assert [len(subsets[s]) for s in (0.25, 0.5, 1.0)] == [10, 20, 40]
    assert set(subsets[0.25].fact) < set(subsets[0.5].fact) < set(subsets[1.0].fact)   # nested
    assert subsets[0.5].fact.is_monotonic_increasing                                      # original order
    assert subsets[0.5].equals(resources.demo_subset(demos, 0.5, seed=3))                 # seeded
    assert not subsets[0.5].equals(resources.demo_subset(demos, 0.5, seed=4))
    assert len(resources.demo_subset(demos, 0.001)) == 1                                  # never empty


def test_demo_subset_iv():
    for share in (0, 1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match="share="):
            resources.demo_subset(_demos(), share)
    with pytest.raises(ValueError, match="demos must be a non-empty DataFrame"):
        resources.demo_subset(_demos().iloc[:0], 0.5)


def test_train_grid_on_micro_world(micro_world, micro_model):
    model, tok, _ = micro_model
    P = load_profile("smoke")
    grid = resources.train_grid(micro_world, model, tok, P, epochs=(2, 1), shares=(1.0, 0.5))
    heldout = micro_world.facts[micro_world.facts.split == "heldout"]
    runs = grid.groupby(["epochs", "data_share"]).first()
    assert list(runs.index) == [(1, 0.5), (1, 1.0), (2, 0.5), (2, 1.0)]                 # sorted, de-duplicated
    assert grid.groupby(["epochs", "data_share"]).size().eq(len(heldout)).all()
    assert set(grid.fact) == set(heldout.fact)
    n_train = (micro_world.facts.split == "train").sum()
    assert runs.loc[(1, 1.0), "demos"] == n_train and runs.loc[(1, 0.5), "demos"] == round(n_train / 2)
    np.testing.assert_allclose(runs.train_flops, 6 * runs.n_params * runs.tokens)        # the 6·N·D rule
    assert runs.loc[(2, 1.0), "tokens"] == 2 * runs.loc[(1, 1.0), "tokens"]              # tokens scale with epochs
    assert grid.p_true.between(0, 1).all() and grid.mass_outside.between(0, 1).all()
    assert (grid.gen_tokens >= 3).all() and set(grid.type) <= {"frequent", "rare", "unseen", "contested"}
    with pytest.raises(ValueError, match="epochs="):
        resources.train_grid(micro_world, model, tok, P, epochs=(0,), shares=(1.0,))
    with pytest.raises(ValueError, match="shares="):
        resources.train_grid(micro_world, model, tok, P, epochs=(1,), shares=())


def test_training_curve_cached_on_smoke():
    P = load_profile("smoke", interventions={"sft_epochs": (1,), "sft_data": (0.5,)})
    curve = resources.training_curve(P)
    manifest = resources.artifacts.root(P) / "training_curve" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = resources.training_curve(P)
    assert manifest.stat().st_mtime_ns == stamp and again.equals(curve)                  # loaded, not retrained
    assert set(curve[["epochs", "data_share"]].itertuples(index=False)) == {(1, 0.5)}
    assert {"fact", "type", "p_true", "correct", "train_flops", "steps", "tokens", "gen_tokens"} <= set(curve.columns)
    assert json.loads(manifest.read_text())["interventions"]["sft_epochs"] == [1]
    other = load_profile("smoke", interventions={"sft_epochs": (2,), "sft_data": (0.5,)})
    assert set(resources.training_curve(other).epochs) == {2}                           # a new grid is rebuilt


def test_interventions_config_grid_fields():
    from dint.interventions.plan import InterventionsConfig

    cfg = InterventionsConfig()
    assert cfg.sft_epochs == (1, 2, 3, 6, 12) and cfg.sft_data == (0.25, 0.5, 1.0)
    for bad in ((), (0,), (1.5,), (True,)):
        with pytest.raises(ValueError, match="interventions.sft_epochs"):
            InterventionsConfig(sft_epochs=bad)
    for bad in ((), (0.0,), (1.5,), (True,)):
        with pytest.raises(ValueError, match="interventions.sft_data"):
            InterventionsConfig(sft_data=bad)


# ------------------------------------------------------------------------------ (b) answer matrices
def _scores():
    """A score table of two facts (3 and 2 candidates) in one form, plus a row of another form."""
    rows = [(7, "qa", 0, "red", 0.5, 0.1, False), (7, "qa", 1, "blue", 0.3, 0.1, True),
            (7, "qa", 2, "green", 0.2, 0.1, False), (2, "qa", 0, "cat", 0.6, 0.0, True),
            (2, "qa", 1, "dog", 0.4, 0.0, False), (2, "statement", 0, "cat", 1.0, 0.5, True)]
    return pd.DataFrame(rows, columns=["fact", "form", "candidate", "answer", "p_set", "mass_outside", "is_true"])


def test_answer_matrix_adds_the_outside_mass():
    a = resources.answer_matrix(_scores(), [7, 2])
    np.testing.assert_array_equal(a.fact, [2, 7])                                       # sorted by fact
    np.testing.assert_allclose(a.p, [[0.6, 0.4, 0.0, 0.0], [0.45, 0.27, 0.18, 0.1]])
    np.testing.assert_allclose(a.p.sum(1), 1.0)
    assert a.correct.tolist() == [[True, False, False, False], [False, True, False, False]]
    assert a.candidates == [("cat", "dog"), ("red", "blue", "green")]
    np.testing.assert_allclose(resources.p_true(a), [0.6, 0.3])                         # inside the candidate set
    correct, tokens = resources.greedy(a, np.arange(8).reshape(2, 4))
    assert correct.tolist() == [True, False] and tokens.tolist() == [0, 4]


def test_answer_matrix_iv():
    with pytest.raises(ValueError, match="score_world table"):
        resources.answer_matrix(_scores().drop(columns="mass_outside"), [7])
    with pytest.raises(ValueError, match=r"no 'qa' rows for facts \[9\]"):
        resources.answer_matrix(_scores(), [7, 9])
    with pytest.raises(ValueError, match="shape of answers.p"):
        resources.greedy(resources.answer_matrix(_scores(), [7]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"\(m, k\) array"):
        resources.with_outside(np.zeros(3), 0.0)


def test_draw_tokens_counts_prompt_answer_and_eos(micro_model):
    _, tok, _ = micro_model
    t = resources.draw_tokens(tok, ["Q : a b A :", "Q : c A :"], [("x y", "z"), ("w",)])
    assert t.tolist() == [[6 + 2 + 1, 6 + 1 + 1, 9], [5 + 1 + 1, 0, 7]]                # padded 0; outside = longest
    with pytest.raises(ValueError, match="pass them paired"):
        resources.draw_tokens(tok, ["a"], [("x",), ("y",)])


def test_sample_index_follows_p():
    p = np.tile([[0.1, 0.0, 0.6, 0.3]], (20000, 1))
    idx = resources.sample_index(p, rng=0)
    np.testing.assert_allclose(np.bincount(idx, minlength=4) / len(idx), [0.1, 0.0, 0.6, 0.3], atol=0.01)
    np.testing.assert_array_equal(idx, resources.sample_index(p, rng=0))
    with pytest.raises(ValueError, match="positive sum per row"):
        resources.sample_index(np.zeros((2, 3)), rng=0)


# ------------------------------------------------------------------------------ points and frontiers
def test_outcomes_and_summarize():
    a = resources.outcomes("fam", "greedy", [1, 2, 3, 4], [1, 0, 1, 1], cost=10.0, train_flops=100.0)
    b = resources.outcomes("fam", "verified", [1, 2, 3, 4], [0.5, 0.2, 0.9, 0.4], p_abstain=[0.5, 0.0, 0.1, 0.2],
                           cost=[1.0, 2.0, 3.0, 4.0], train_flops=50.0).assign(budget=4)
    s = resources.accuracy_cost(pd.concat([a, b]), n_resamples=500).set_index("point")
    wilson = stats.proportion(3, 4)
    assert s.loc["greedy", "accuracy"] == 0.75
    assert (s.loc["greedy", "ci_low"], s.loc["greedy", "ci_high"]) == pytest.approx(
        (wilson.confidence_interval.low, wilson.confidence_interval.high))
    assert s.loc["greedy", "total_flops"] == 140.0 and s.loc["verified", "total_flops"] == 60.0
    assert s.loc["verified", "accuracy"] == pytest.approx(0.5)
    assert s.loc["verified", "coverage"] == pytest.approx(0.8)
    assert s.loc["verified", "selective_accuracy"] == pytest.approx(2.0 / 3.2)
    assert 0 <= s.loc["verified", "ci_low"] < 0.5 < s.loc["verified", "ci_high"] <= 1
    assert s.loc["verified", "budget"] == 4 and np.isnan(s.loc["greedy", "budget"])
    with pytest.raises(ValueError, match="p_correct must be finite"):
        resources.outcomes("f", "p", [1, 2], [0.5, 1.5], cost=1.0, train_flops=0.0)
    with pytest.raises(ValueError, match="train_flops"):
        resources.outcomes("f", "p", [1, 2], [0.5, 0.5], cost=1.0, train_flops=-1.0)
    with pytest.raises(ValueError, match="lacks columns"):
        resources.accuracy_cost(a.drop(columns="cost"))


def test_pareto_against_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 8, 60).astype(float), rng.integers(0, 8, 60).astype(float)
    dominated = [any((x[j] <= x[i]) and (y[j] >= y[i]) and (x[j] < x[i] or y[j] > y[i]) for j in range(60))
                 for i in range(60)]
    keep = resources.pareto(x, y)
    # among exact duplicates on the frontier one is kept; otherwise the frontier is the undominated set
    assert set(zip(x[keep], y[keep])) == set(zip(x[~np.array(dominated)], y[~np.array(dominated)]))
    assert len(set(zip(x[keep], y[keep]))) == keep.sum()
    assert resources.pareto([1, 2, 3], [0.1, 0.3, 0.2]).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="same length"):
        resources.pareto([1, 2], [1])


def test_rl_points_scale_flops_by_step():
    sweep = pd.DataFrame({"beta": [0.1] * 3, "step": [0, 10, 20], "gold_exact": [0.5, 0.25, 0.0],
                          "train_flops": [100.0] * 3})
    pts = resources.rl_points(sweep, start_flops=1000.0, rollout_ratio=0.5, n_eval=32, inference_flops=7.0)
    np.testing.assert_allclose(pts.train_flops, [1000.0, 1075.0, 1150.0])
    np.testing.assert_allclose(pts.total_flops, pts.train_flops + 7.0)
    w = stats.proportion(16, 32)
    assert (pts.ci_low[0], pts.ci_high[0]) == pytest.approx((w.confidence_interval.low, w.confidence_interval.high))
    assert pts.ci_low[2] == 0.0 and pts.ci_high[2] > 0.05
    with pytest.raises(ValueError, match="rl_sweep"):
        resources.rl_points(sweep.drop(columns="gold_exact"), start_flops=0, rollout_ratio=0, n_eval=1,
                            inference_flops=0)


# ------------------------------------------------------------------------------ tests
def test_paired_difference_binary_is_mcnemar():
    rng = np.random.default_rng(1)
    x, y = (rng.random(80) < 0.6).astype(float), (rng.random(80) < 0.4).astype(float)
    r, m = resources.paired_difference(x, y), proportions.mcnemar(y, x)
    assert r.statistic == pytest.approx(x.mean() - y.mean()) and r.pvalue == m.pvalue
    assert r.confidence_interval == m.confidence_interval


def test_paired_difference_continuous():
    rng = np.random.default_rng(2)
    y = rng.random(60)
    r = resources.paired_difference(np.clip(y + 0.2, 0, 1), y, n_resamples=999, rng=0)
    assert r.statistic == pytest.approx(np.mean(np.clip(y + 0.2, 0, 1) - y))
    assert r.confidence_interval.low > 0 and r.pvalue <= 2 / 1000 + 1e-12
    null = resources.paired_difference(y, rng.permutation(y), n_resamples=999, rng=0)
    assert null.confidence_interval.low < 0 < null.confidence_interval.high
    assert r.pvalue > 0                                                                   # never 0
    with pytest.raises(ValueError, match="paired by item"):
        resources.paired_difference([0.5], [0.2])


def test_trend_recovers_the_slope():
    rng = np.random.default_rng(3)
    x = np.tile(np.arange(5.0), 40)
    cluster = np.repeat(np.arange(40), 5)
    y = rng.normal(size=40)[cluster] + 0.3 * x + rng.normal(0, 0.1, 200)
    r = resources.trend(pd.DataFrame({"fact": cluster, "x": x, "y": y}), x="x", y="y", n_resamples=999)
    assert r.n == 40 and r.statistic == pytest.approx(0.3, abs=0.02)
    assert r.confidence_interval.low < 0.3 < r.confidence_interval.high and r.pvalue < 0.01
    flat = resources.trend(pd.DataFrame({"fact": cluster, "x": x, "y": rng.normal(size=200)}), x="x", y="y",
                           n_resamples=999)
    assert flat.confidence_interval.low < 0 < flat.confidence_interval.high
    with pytest.raises(ValueError, match="no column 'z'"):
        resources.trend(pd.DataFrame({"fact": cluster, "x": x, "y": y}), x="z", y="y")
    with pytest.raises(ValueError, match="at least 2 clusters"):
        resources.trend(pd.DataFrame({"fact": [1, 1], "x": [0.0, 1.0], "y": [0.0, 1.0]}), x="x", y="y")
