"""dint.analyses.lora_sweep (notebook 05): LoRA against full SFT at matched training loss, on synthetic sweeps whose
interpolated outcomes are known, and (slow) the sweep itself on the micro world."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

from dint import stats
from dint.analyses import lora_sweep as ls
from dint.stats import proportions

matplotlib.use("Agg")

N = 40   # facts per split
# losses along each grid of learning rates: full SFT's minimum 1.0 at lr 3, LoRA's 1.4 at lr 20, then worse
LOSSES = {"sft": {1.0: 2.0, 2.0: 1.5, 3.0: 1.0, 4.0: 1.2}, "sft_lora": {10.0: 1.8, 20.0: 1.4, 30.0: 1.6}}


def _run(intervention, lr, loss, *, p_post, c_post_train, rng):
    """A run's rows: N train facts (QA) then N held-out facts (statement)."""
    noise = rng.normal(0, 0.02, N)
    base_c = np.arange(N) % 4 == 0
    train = pd.DataFrame({"fact": np.arange(N), "form": "qa", "split": "train", "p_true_base": 0.2,
                          "p_true_post": np.clip(0.2 + c_post_train * 0.5 + noise, 0, 1),
                          "correct_base": base_c, "correct_post": np.asarray(c_post_train, bool), "kl": 0.1})
    held = pd.DataFrame({"fact": np.arange(N, 2 * N), "form": "statement", "split": "heldout", "p_true_base": 0.6,
                         "p_true_post": np.clip(p_post + noise, 0, 1), "correct_base": True,
                         "correct_post": p_post + noise > 0.5, "kl": np.abs(0.6 - p_post) + 0.05 + np.abs(noise)})
    run = {"intervention": intervention, "multiple": lr, "lr": lr, "loss": loss, "loss_first": 3.0, "steps": 12,
           "train_flops": 1e9, "trainable_params": 100, "wall_time": 1.0}
    return pd.concat([train, held], ignore_index=True).assign(**run)


def sweep_table(losses=LOSSES, seed=0):
    """A sweep in which each run's held-out P(true) falls linearly with its fit (2.0 - loss) / 1.0, by 0.3 per unit
    for full SFT and 0.2 for LoRA, and its train-fact accuracy rises with the fit."""
    rng = np.random.default_rng(seed)
    frames = []
    for intervention, grid in losses.items():
        slope = 0.3 if intervention == "sft" else 0.2
        for lr, loss in grid.items():
            fit = 2.0 - loss
            c = np.arange(N) < round(N * min(1.0, 0.25 + 0.5 * fit))
            frames.append(_run(intervention, lr, loss, p_post=0.6 - slope * fit, c_post_train=c, rng=rng))
    return pd.concat(frames, ignore_index=True)


def _mean(table, intervention, lr, where, column):
    f, s = where
    t = table[(table.intervention == intervention) & (table.lr == lr) & (table.form == f) & (table.split == s)]
    return t.sort_values("fact")[column].to_numpy(float)


def test_sweep_config_iv_and_rates():
    from dint.pipeline.config import load_profile

    with pytest.raises(ValueError, match="SweepConfig.sft_lora"):
        ls.SweepConfig(sft_lora=(1.0,))
    with pytest.raises(ValueError, match="SweepConfig.sft="):
        ls.SweepConfig(sft=(1.0, -3.0))
    cfg = ls.SweepConfig(sft=(3, 1))
    assert cfg.sft == (1.0, 3.0)
    P = load_profile("tiny")
    lr = P.interventions.config("sft").lr
    rates = cfg.rates(P)
    assert [x for _, x in rates["sft"]] == pytest.approx([lr, 3 * lr])
    assert [x for _, x in rates["sft_lora"]] == pytest.approx([m * lr for m in ls.SweepConfig().sft_lora])


def test_runs_against_theory():
    t = sweep_table()
    r = ls.runs(t, n_resamples=99, n_permutations=99)
    assert list(r.columns[-len(stats.ROW):]) == list(stats.ROW)
    assert len(r) == 5 * sum(len(g) for g in LOSSES.values())
    row = r[(r.intervention == "sft") & (r.lr == 2.0)].set_index("measure")
    forget = _mean(t, "sft", 2.0, ls.FORGETTING, "p_true_base") - _mean(t, "sft", 2.0, ls.FORGETTING, "p_true_post")
    assert row.loc["forgetting", "estimate"] == pytest.approx(forget.mean())
    learn = _mean(t, "sft", 2.0, ls.LEARNING, "correct_post") - _mean(t, "sft", 2.0, ls.LEARNING, "correct_base")
    assert row.loc["learning", "estimate"] == pytest.approx(learn.mean())
    best = r[r.best & (r.measure == "learning")].set_index("intervention").lr
    assert best.to_dict() == {"sft": 3.0, "sft_lora": 20.0}


def test_matched_loss_interpolates_against_theory():
    t = sweep_table()
    m = ls.matched(t, on="loss", n_resamples=99, n_permutations=99).set_index("measure")
    # the lowest loss both reach is LoRA's 1.4; full SFT's branch (losses 2.0, 1.5, 1.0) brackets it between
    # lr 2 (1.5) and lr 3 (1.0) with weight (1.4 - 1.5) / (1.0 - 1.5) = 0.2 on lr 3
    assert m["target"].iloc[0] == pytest.approx(1.4) and m["reached"].all()
    full = 0.8 * _mean(t, "sft", 2.0, ls.FORGETTING, "p_true_post") + 0.2 * _mean(t, "sft", 3.0, ls.FORGETTING,
                                                                                 "p_true_post")
    lora = _mean(t, "sft_lora", 20.0, ls.FORGETTING, "p_true_post")
    # LoRA's forgetting minus full SFT's: the base cancels
    assert m.loc["forgetting", "estimate"] == pytest.approx((full - lora).mean())
    # by construction LoRA moves 0.2 per unit of fit against full SFT's 0.3, at fit 0.6: it forgets 0.06 less
    assert m.loc["forgetting", "estimate"] == pytest.approx(-0.06, abs=0.02)
    assert m.loc["forgetting", "ci_high"] < 0 and m.loc["forgetting", "pvalue"] < 0.05
    assert m.loc["forgetting", "n"] == N
    assert "0.80 x lr 2 + 0.20 x lr 3" in m["mixed"].iloc[0] and "sft_lora: 1.00 x lr 20" in m["mixed"].iloc[0]
    learn = (_mean(t, "sft_lora", 20.0, ls.LEARNING, "correct_post")
             - 0.8 * _mean(t, "sft", 2.0, ls.LEARNING, "correct_post") - 0.2 * _mean(t, "sft", 3.0, ls.LEARNING,
                                                                                   "correct_post"))
    assert m.loc["learning", "estimate"] == pytest.approx(learn.mean())


def test_matched_on_learning_finds_the_most_learning_both_reach():
    t = sweep_table()
    m = ls.matched(t, on="learning", n_resamples=99, n_permutations=99)
    learn = t[(t.form == "qa")].assign(g=lambda d: d.correct_post.astype(float) - d.correct_base.astype(float))
    gain = learn.groupby(["intervention", "lr"]).g.mean()
    # the branches (up to each lowest loss): full SFT lr 1-3, LoRA lr 10-20; the target is the smaller maximum
    assert m["target"].iloc[0] == pytest.approx(min(gain["sft"].loc[[1.0, 2.0, 3.0]].max(),
                                                    gain["sft_lora"].loc[[10.0, 20.0]].max()))
    assert m["reached"].all() and m.set_index("measure").loc["learning", "estimate"] == pytest.approx(0.0, abs=1e-12)


def test_matched_is_not_estimable_when_the_grids_do_not_overlap():
    losses = {"sft": {1.0: 2.0, 2.0: 1.8}, "sft_lora": {10.0: 1.0, 20.0: 0.9}}
    m = ls.matched(sweep_table(losses), on="loss", n_resamples=99, n_permutations=99)
    assert not m["reached"].any() and m["estimate"].isna().all()
    assert m["reason"].str.contains("SFT-LoRA's sweep does not reach loss 1.8").all()
    c = ls.compare_methods(sweep_table(losses), n_resamples=99, n_permutations=99)
    n = ls.numbers(c)
    assert n["lora_matched_reached"] == 0 and np.isnan(n["lora_matched_forgetting"].statistic)


def test_matched_iv():
    with pytest.raises(ValueError, match="on='kl'"):
        ls.matched(sweep_table(), on="kl")
    with pytest.raises(ValueError, match="no runs of \\['sft_lora'\\]"):
        ls.matched(sweep_table({"sft": LOSSES["sft"]}))
    with pytest.raises(ValueError, match="lacks"):
        ls.runs(sweep_table().drop(columns="loss"))


def test_best_compares_each_at_its_lowest_loss():
    t = sweep_table()
    b = ls.best(t, n_resamples=99, n_permutations=99).set_index("measure")
    assert (b.lr_sft == 3.0).all() and (b.lr_sft_lora == 20.0).all()
    full, lora = _mean(t, "sft", 3.0, ls.LEARNING, "correct_post"), _mean(t, "sft_lora", 20.0, ls.LEARNING,
                                                                         "correct_post")
    want = proportions.mcnemar(full, lora)   # after - before: LoRA minus full
    assert b.loc["learning", "estimate"] == pytest.approx(want.statistic) == pytest.approx((lora - full).mean())
    assert b.loc["learning", "pvalue"] == pytest.approx(want.pvalue)
    f_full, f_lora = (_mean(t, m, lr, ls.FORGETTING, "p_true_post") for m, lr in (("sft", 3.0), ("sft_lora", 20.0)))
    assert b.loc["forgetting", "estimate"] == pytest.approx((f_full - f_lora).mean())


def test_numbers_hold_the_registered_keys():
    c = ls.compare_methods(sweep_table(), n_resamples=99, n_permutations=99)
    n = ls.numbers(c)
    registered = {"lora_matched_forgetting", "lora_best_learning", "lora_matched_reached"}
    reported = {"lora_matched_loss", "lora_matched_learning", "lora_matched_kl", "lora_matched_forgetting_accuracy",
                "lora_learning_matched_forgetting", "lora_best_forgetting", "sft_best_lr", "sft_lora_best_lr",
                "sft_best_forgetting", "sft_lora_best_forgetting", "sft_best_learning", "sft_lora_best_learning"}
    assert registered | reported <= set(n)
    assert n["lora_matched_reached"] == 1 and n["lora_matched_loss"] == pytest.approx(1.4)
    assert n["sft_best_lr"] == 3.0 and n["sft_lora_best_lr"] == 20.0
    m = c.matched.set_index(["on", "measure"])
    assert n["lora_matched_forgetting"].statistic == m.loc[("loss", "forgetting"), "estimate"]
    assert n["lora_learning_matched_forgetting"].statistic == m.loc[("learning", "forgetting"), "estimate"]
    assert isinstance(n["lora_best_learning"], stats.Result) and "McNemar" in n["lora_best_learning"].method
    assert set(c.table["comparison"]) == {"matched loss", "matched learning", "best learning rate"}


def test_not_swept_has_no_numbers_and_draws_its_reason():
    import matplotlib.pyplot as plt

    c = ls.not_swept("a real profile is not swept")
    assert ls.numbers(c) == {}
    fig, axes = plt.subplots(1, 3)
    ls.draw(c, axes)
    assert any(t.get_text() == "not swept" for t in axes[0].texts)
    with pytest.raises(ValueError, match="pass three"):
        ls.draw(c, axes[:2])
    plt.close(fig)


def test_draw_plots_every_run_and_marks_the_matched_loss():
    import matplotlib.pyplot as plt

    c = ls.compare_methods(sweep_table(), n_resamples=99, n_permutations=99)
    fig, axes = plt.subplots(1, 3)
    ls.draw(c, axes)
    assert [len(line.get_xdata()) for line in axes[0].lines] == [len(LOSSES["sft"]), len(LOSSES["sft_lora"])]
    assert any(np.allclose(line.get_xdata(), 1.4) for line in axes[2].lines)   # the matched loss
    plt.close(fig)


@pytest.mark.slow
def test_train_sweep_on_the_micro_world(micro_world, micro_model):
    """Each run trains the profile's SFT at its own rate (the same seed gives the same run as `sft.run`), and its rows
    are the train facts in the QA form and the held-out facts in the statement form, scored against the base."""
    from dint.interventions import data, sft
    from dint.pipeline import artifacts
    from dint.pipeline.config import load_profile

    model, tok, _ = micro_model
    P = load_profile("smoke")
    base_scores = artifacts.score_world(model, tok, micro_world, P)
    cfg = ls.SweepConfig(sft=(0.1, 1.0), sft_lora=(1.0, 10.0))
    t = ls.train_sweep(micro_world, model, tok, base_scores, P, config=cfg)
    facts = micro_world.facts
    n_train, n_held = int((facts.split == "train").sum()), int((facts.split == "heldout").sum())
    runs = t[ls._RUN].drop_duplicates()
    assert len(runs) == 4 and len(t) == 4 * (n_train + n_held)
    assert set(map(tuple, t[["form", "split"]].drop_duplicates().to_numpy())) == {ls.LEARNING, ls.FORGETTING}
    lr = P.interventions.config("sft").lr
    _, record = sft.run(model, tok, data.sft_demos(micro_world), P.interventions.config("sft", lr=lr),
                        seed=P.train_seed)
    one = runs[(runs.intervention == "sft") & (runs.multiple == 1.0)]
    assert one["loss"].iloc[0] == pytest.approx(record.loss_last) and one["lr"].iloc[0] == pytest.approx(lr)
    # the base's columns are the base's scores, whatever the run
    held = t[t.split == "heldout"]
    assert held.groupby("fact").p_true_base.nunique().max() == 1
    # a run that trained moved the distribution, on prompts it never trained too
    assert (held.groupby(["intervention", "lr"]).kl.mean() > 0).all()


def test_sweep_iv_before_any_work():
    with pytest.raises(TypeError, match="SweepConfig"):
        ls.sweep(None, config=(0.1, 1.0))
    with pytest.raises(TypeError, match="SweepConfig"):
        ls.train_sweep(None, None, None, None, None, config={"sft": (1.0, 2.0)})
