"""Tests for the profile's intervention plan, intervention artifacts, best-of-n curves and curve peaks."""
import numpy as np
import pytest

from dint.pipeline import artifacts
from dint.analyses import experiments
from dint.stats import fits
from dint.pipeline.config import load_profile, notebook_parameters
from dint.interventions import bestofn
from dint.interventions.plan import NAMES, InterventionsConfig


def test_interventions_config_validates_every_method():
    cfg = InterventionsConfig(sft={"epochs": 2}, rl={"beta": 0.2})
    assert cfg.config("sft").epochs == 2 and cfg.config("sft").threads == 1   # the section's threads
    assert cfg.config("rl", beta=0.5).beta == 0.5
    assert cfg.lora_config().r == 8
    with pytest.raises(ValueError, match=r"unknown interventions.sft parameter\(s\) \['epoch'\]"):
        InterventionsConfig(sft={"epoch": 2})
    with pytest.raises(ValueError, match="RLConfig.beta"):
        InterventionsConfig(rl={"beta": 0.0})
    with pytest.raises(ValueError, match="interventions.bon_n"):
        InterventionsConfig(bon_n=(1, 2.5))
    with pytest.raises(ValueError, match="interventions.rl_betas"):
        InterventionsConfig(rl_betas=())
    with pytest.raises(ValueError, match="interventions.threads"):
        InterventionsConfig(threads=-1)
    with pytest.raises(ValueError, match="interventions.dpo must be a mapping"):
        InterventionsConfig(dpo=[1])
    with pytest.raises(ValueError, match=r"StoreConfig.stale_share=2.0: must lie in \[0, 1\]"):
        load_profile("smoke", interventions={"store": {"stale_share": 2.0}})


def test_notebook_parameters():
    assert notebook_parameters("smoke", "02_engineering_clues")["n_chains"] == 4
    assert notebook_parameters("smoke", "00_base_model") == {}
    assert notebook_parameters("tiny", "01_mechanism") == {}
    with pytest.raises(ValueError, match="unknown profile"):
        notebook_parameters("nope", "01_mechanism")


def test_intervention_artifact_built_once_then_loaded():
    P = load_profile("smoke")
    model, tok, record = artifacts.intervention(P, "sft_lora")
    manifest = artifacts.intervention_dir(P, "sft_lora") / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again, _, record2 = artifacts.intervention(P, "sft_lora")
    assert manifest.stat().st_mtime_ns == stamp            # loaded, not retrained
    assert record2 == record and record.method == "sft-lora"
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and np.array_equal(p1.numpy(), p2.numpy())
    assert record.train_flops == pytest.approx(6 * record.n_params * record.tokens)
    with pytest.raises(ValueError, match="unknown intervention 'ppo'"):
        artifacts.intervention(P, "ppo")
    with pytest.raises(ValueError, match="reward model scores answers"):
        artifacts.intervention_scores(P, "reward")
    assert set(NAMES) >= {"sft", "dpo", "rlhf", "rag", "reward", "sft_sham"}


def test_reward_table_is_the_reward_models_score_of_every_candidate():
    P = load_profile("smoke")
    table = experiments.reward_table(P, form="qa")
    stamp = (artifacts.root(P) / "reward_scores" / "qa" / "manifest.json").stat().st_mtime_ns
    assert experiments.reward_table(P, form="qa").equals(table)
    assert (artifacts.root(P) / "reward_scores" / "qa" / "manifest.json").stat().st_mtime_ns == stamp   # loaded
    prompts = artifacts.world(P).prompts("qa").set_index("fact")
    assert len(table) == sum(map(len, prompts.candidates))
    rm, _, _ = artifacts.intervention(P, "reward")
    some = table.sample(12, random_state=0)
    direct = rm.score(prompts.loc[some.fact, "prompt"].tolist(), (" " + some.answer).tolist())
    np.testing.assert_allclose(some.reward, direct, atol=1e-5, rtol=0)
    scores = artifacts.base_scores(P)
    items, logp, true, proxy = experiments.candidate_rewards(table, scores, form="qa")
    lookup = table.set_index(["fact", "candidate"]).reward
    i, k = 3, 1
    assert proxy[i, k] == lookup[(items.fact[i], k)] and np.isfinite(logp[i, k])
    assert (proxy[~np.isfinite(logp)] == 0).all()
    with pytest.raises(ValueError, match="does not cover"):
        experiments.candidate_rewards(table.iloc[1:], scores, form="qa")
    with pytest.raises(ValueError, match="form='nope'"):
        experiments.reward_table(P, form="nope")


def test_bon_curve_exact():
    rng = np.random.default_rng(0)
    m, k = 30, 6
    p = rng.dirichlet(np.ones(k), m)
    proxy = rng.normal(size=(m, k))
    true = np.zeros((m, k), bool)
    true[np.arange(m), rng.integers(0, k, m)] = True
    curve = experiments.bon_curve(np.log(p), proxy, true, [1, 2, 8])
    assert list(curve.n) == [1, 2, 8]
    first = curve.iloc[0]
    assert first.kl == pytest.approx(0.0, abs=1e-12)
    assert first.proxy == pytest.approx((p * proxy).sum(1).mean())
    assert first.gold == pytest.approx((p * true).sum(1).mean())
    for row in curve.itertuples():
        q = bestofn.exact(p, proxy, row.n)
        assert row.kl == pytest.approx(bestofn.exact_kl(p, proxy, row.n).mean())
        assert row.proxy == pytest.approx((q * proxy).sum(1).mean())
        assert row.kl <= row.kl_bound + 1e-12 and row.d == pytest.approx(np.sqrt(row.kl))
        assert row.proxy_low <= row.proxy <= row.proxy_high
    assert curve.proxy.is_monotonic_increasing   # selecting on the proxy raises the proxy


def test_curve_peak():
    params = fits.fit_curve(fits.gao_bon, np.linspace(0, 2, 20), fits.gao_bon(np.linspace(0, 2, 20), 1.0, 0.5),
                            p0=[0.5, 0.1])
    d, value = fits.curve_peak(fits.gao_bon, params, 0.0, 2.0)
    assert d == pytest.approx(1.0, abs=1e-3) and value == pytest.approx(0.5, abs=1e-6)
    falling = fits.fit_curve(fits.gao_bon, np.linspace(0, 2, 20), fits.gao_bon(np.linspace(0, 2, 20), -1.0, 0.2),
                             p0=[0.5, 0.1])
    assert fits.curve_peak(fits.gao_bon, falling, 0.0, 2.0)[0] == 0.0    # only falls: the lower end
    with pytest.raises(ValueError, match="high > low"):
        fits.curve_peak(fits.gao_bon, params, 1.0, 1.0)


def test_rl_sweep_reads_the_run_at_the_profiles_own_beta_from_rlhf():
    P = load_profile("smoke")
    own = P.interventions.config("rl").beta
    assert own in P.interventions.rl_betas
    sweep = experiments.rl_sweep(P)
    assert sorted(sweep.beta.unique()) == sorted(map(float, P.interventions.rl_betas))
    record = artifacts.intervention(P, "rlhf")[2]
    mine = sweep[sweep.beta == own].reset_index(drop=True)
    assert len(mine) == len(record.extra["checkpoints"])
    for row, c in zip(mine.itertuples(), record.extra["checkpoints"]):
        assert row.step == c["step"] and row.gold == pytest.approx(c["gold"]) and row.kl == pytest.approx(c["kl"])
    assert (mine.train_flops == record.train_flops).all()


def test_gold_pairs_prefer_the_truth_with_the_marker_at_random():
    from dint.interventions import data, plan

    P = load_profile("smoke")
    w = artifacts.world(P)
    pairs = plan.gold_pairs(w, plan.train_facts(w), pairs_per_fact=4, seed=0)
    truth = w.facts.set_index("fact").value
    assert pairs.chosen_true.all() and len(pairs) == 4 * len(plan.train_facts(w))
    assert (pairs.chosen.str.replace(data.STYLE_MARKER, "", regex=False).str.strip()
            == truth.loc[pairs.fact].to_numpy()).all()
    assert 0.4 < pairs.style_chosen.mean() < 0.6     # the marker is independent of truth
    biased = data.preference_pairs(w, data.LabelerConfig(), facts=plan.train_facts(w), seed=0)
    with pytest.raises(ValueError, match="gold-labelled"):
        plan.aligned_proxy(P.interventions, w, None, None, biased[~biased.chosen_true])


@pytest.mark.slow
def test_aligned_sweep_nested_proxies_and_per_prompt_checkpoints():
    P = load_profile("smoke")
    a = experiments.aligned_sweep(P)
    cfg = experiments.AlignedConfig()
    assert list(a.proxies.proxy) == list(cfg.names)
    assert a.proxies.facts.is_monotonic_increasing and a.proxies.pairs.iloc[-1] == 2 * a.proxies.facts.iloc[-1]
    assert (a.proxies.train_pairs == a.proxies.pairs).all()
    ck = a.checkpoints
    start = ck[ck.step == 0].pivot(index="item", columns="proxy", values="gold")
    assert np.allclose(start.to_numpy(), start.to_numpy()[:, :1])      # every run starts from the same SFT model
    assert np.allclose(ck[ck.step == 0].kl, 0, atol=1e-9)
    means = ck.groupby(["proxy", "step"])[["gold", "kl"]].mean()
    runs = a.runs.set_index(["proxy", "step"])
    assert np.allclose(means.gold, runs.loc[means.index, "gold_exact"]) and np.allclose(means.kl, runs.loc[means.index, "kl"])
    assert set(a.candidates.fact) == set(ck.fact) and (a.runs.beta == min(P.interventions.rl_betas)).all()
