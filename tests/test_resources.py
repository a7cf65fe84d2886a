"""Tests for dint.analyses.resources (notebook 06) and dint.analyses.sft_grid (its training-curve artifact)."""
import json

import numpy as np
import pandas as pd
import pytest

from dint.analyses import flops, resources, sft_grid
from dint import stats
from dint.pipeline.config import load_profile


# ------------------------------------------------------------------------------ (a) training
def _demos(n=40):
    return pd.DataFrame({"fact": np.arange(n), "prompt": [f"q{i}" for i in range(n)],
                         "completion": [f" a{i}" for i in range(n)]})


def test_demo_subset_nested_sized_and_ordered():
    demos = _demos(40)
    subsets = {s: sft_grid.demo_subset(demos, s, seed=3) for s in (0.25, 0.5, 1.0)}
    assert [len(subsets[s]) for s in (0.25, 0.5, 1.0)] == [10, 20, 40]
    assert set(subsets[0.25].fact) < set(subsets[0.5].fact) < set(subsets[1.0].fact)   # nested
    assert subsets[0.5].fact.is_monotonic_increasing                                      # original order
    assert subsets[0.5].equals(sft_grid.demo_subset(demos, 0.5, seed=3))                 # seeded
    assert not subsets[0.5].equals(sft_grid.demo_subset(demos, 0.5, seed=4))
    assert len(sft_grid.demo_subset(demos, 0.001)) == 1                                  # never empty


def test_demo_subset_iv():
    for share in (0, 1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match="share="):
            sft_grid.demo_subset(_demos(), share)
    with pytest.raises(ValueError, match="demos must be a non-empty DataFrame"):
        sft_grid.demo_subset(_demos().iloc[:0], 0.5)


def test_train_grid_on_micro_world(micro_world, micro_model):
    model, tok, _ = micro_model
    P = load_profile("smoke")
    grid = sft_grid.train_grid(micro_world, model, tok, P, epochs=(2, 1), shares=(1.0, 0.5))
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
        sft_grid.train_grid(micro_world, model, tok, P, epochs=(0,), shares=(1.0,))
    with pytest.raises(ValueError, match="shares="):
        sft_grid.train_grid(micro_world, model, tok, P, epochs=(1,), shares=())


def test_training_curve_cached_on_smoke():
    P = load_profile("smoke", interventions={"sft_epochs": (1,), "sft_data": (0.5,)})
    curve = sft_grid.training_curve(P)
    manifest = sft_grid.artifacts.root(P) / "training_curve" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = sft_grid.training_curve(P)
    assert manifest.stat().st_mtime_ns == stamp and again.equals(curve)                  # loaded, not retrained
    assert set(curve[["epochs", "data_share"]].itertuples(index=False)) == {(1, 0.5)}
    assert {"fact", "type", "p_true", "correct", "train_flops", "steps", "tokens", "gen_tokens"} <= set(curve.columns)
    assert json.loads(manifest.read_text())["interventions"]["sft_epochs"] == [1]
    other = load_profile("smoke", interventions={"sft_epochs": (2,), "sft_data": (0.5,)})
    assert set(sft_grid.training_curve(other).epochs) == {2}                           # a new grid is rebuilt


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


# ------------------------------------------------------------------------------ the notebook's tables and numbers
def _parts():
    """Outcomes of two training points, an RLHF point and two budgets of exact verification on 4 facts."""
    facts = [1, 2, 3, 4]
    base = flops.outcomes(resources.SFT, "base", facts, [0, 0, 1, 0], cost=1.0, train_flops=0.0).assign(epochs=0)
    sft = flops.outcomes(resources.SFT, "1 ep, 100% data", facts, [1, 0, 1, 0], cost=1.0,
                         train_flops=100.0).assign(epochs=1)
    rlhf = flops.outcomes("RLHF", "rlhf", facts, [0, 0, 0, 0], cost=1.0, train_flops=1000.0)
    exact = pd.concat([flops.outcomes("verify: exact", f"B={b}", facts, [0.3 * b] * 4, cost=10.0 * b,
                                      train_flops=100.0).assign(budget=b) for b in (1, 2)])
    return [pd.concat([base, sft, rlhf]), exact]


def _rl():
    sweep = pd.DataFrame({"beta": [0.1, 0.1], "step": [0, 10], "gold_exact": [0.5, 0.75], "train_flops": [50.0] * 2})
    return flops.rl_points(sweep, start_flops=100.0, rollout_ratio=0.0, n_eval=8, inference_flops=4.0,
                           family=resources.RL_FAMILY)


def test_frontiers_marks_each_family():
    found = resources.frontiers(_parts(), _rl(), n_resamples=200, seed=0)
    pts = found.points.set_index("point")
    assert len(found.outcomes) == 5 * 4
    assert list(found.points.columns[:9]) == ["family", "point", *stats.ROW]
    assert pts.loc["base", "estimate"] == 0.25 and pts.loc["1 ep, 100% data", "estimate"] == 0.5
    # within each family: the cheapest point and every point more accurate than all cheaper ones
    assert pts.frontier.to_dict() == {"base": True, "1 ep, 100% data": True, "rlhf": True, "B=1": True, "B=2": True,
                                      "beta 0.1, step 0": True, "beta 0.1, step 10": True}
    assert pts.loc["B=2", "estimate"] == pytest.approx(0.6) and pts.loc["B=2", "total_flops"] == 100.0 + 80.0


def test_numbers_names_what_the_paper_quotes():
    found = resources.frontiers(_parts(), _rl(), n_resamples=200, seed=0)
    table = stats.holm(pd.DataFrame([
        stats.Result(0.3, stats.ConfidenceInterval(0.1, 0.5), 4, "m0", 0.01).row(test="exact_vs_training", description="d"),
        stats.Result(0.1, stats.ConfidenceInterval(-0.1, 0.3), 4, "m", 0.03).row(test="seen_trend", description="e")]))
    tests = resources.Tests(table=table, matched=pd.DataFrame([{"key": "exact", "point": "B=2", "flops": 180.0,
                                                                "training_point": "1 ep, 100% data",
                                                                "training_flops": 104.0}]))
    ceiling = resources.Ceiling(points=found.points, base_rate=0.25, n=4)
    conformal = pd.DataFrame({"p_wrong": [0.1, 0.2]}, index=pd.Index([1, 2], name="budget"))
    calibration = pd.DataFrame({"item": [0, 1, 0, 1], "budget": [1, 1, 2, 2], "fold": [0, 1, 0, 1],
                                "threshold": [0.4, 0.45, 0.5, 0.55]})
    risk = pd.DataFrame([stats.Result(e, stats.ConfidenceInterval(e - 0.01, e + 0.01), 50, "m").row(
        budget=b, measure="error") | {"within": e <= 0.1} for b, e in ((1, 0.08), (2, 0.12))])
    verified = resources.Verified(outcomes=found.outcomes, selections={}, calibration=calibration,
                                  conformal=conformal, risk=risk, build_flops=7.0)
    n = resources.numbers(tests, found.points, ceiling, verified, _rl(), budgets=[1, 2], alpha=0.1)
    assert n["test_seen_trend"].pvalue == pytest.approx(0.03)                             # Holm over the 2 tests
    assert n["test_exact_vs_training"].pvalue == pytest.approx(0.02)
    assert n["test_seen_trend"].method == "m; Holm across the notebook's 2 tests"
    assert n["matched_exact_point"] == "B=2" and n["matched_exact_flops_ratio"] == pytest.approx(104 / 180)
    assert n["acc_sft_epochs_data_1_ep_100_data"].statistic == 0.5
    assert n["acc_verify_exact_b_2"].method == "accuracy, Wilson (0/1 outcomes) or bootstrap hull interval"
    assert n["flops_verify_exact_b_1"] == 100.0 + 40.0
    assert "acc_rl_checkpoints_β_sweep_beta_0_1_step_0" not in n and not any("rl_checkpoints" in k for k in n)
    assert n["best_training_point"] == "1 ep, 100% data" and n["best_training_accuracy"].statistic == 0.5
    assert n["exact_beats_training_budget"] == 2 and n["exact_beats_training_flops_ratio"] == pytest.approx(180 / 104)
    assert n["unseen_base_rate"] == 0.25 and n["unseen_n"] == 4 and n["conformal_joint_error_B2"] == 0.2
    assert n["rl_checkpoint_best"].statistic == 0.75 and n["rl_checkpoint_best"].n == 8
    assert n["conformal_threshold"] == 0.5                                  # the largest budget, first fold
    assert n["conformal_answer_mean_within"] == 1 and n["conformal_budgets"] == 2
    assert n["conformal_answer_error_B2"].statistic == 0.12 and n["conformal_answer_worst_mean_error"] == 0.12
    assert "parity_verify_vs_training" not in n                              # no parity comparison given
    shown = resources.headline(n)
    assert "acc_verify_exact_b_1" not in shown.index and shown.loc["unseen_n", "value"] == 4
    assert shown.loc["test_seen_trend", "estimate"] == 0.1


def test_record_flops_one_row_per_record():
    rec = type("R", (), {"train_flops": 6.0, "inference_flops": 2.0, "steps": 3})
    t = resources.record_flops({"sft": rec, "rag": rec})
    assert t.index.tolist() == ["sft", "rag"] and t.loc["rag", "train FLOPs"] == 6.0 and t.loc["sft", "steps"] == 3
