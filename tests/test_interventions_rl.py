"""Proxy reward model, gold reward, KL-penalised RL (TRL RLOO) and best-of-n."""
import itertools
import json
import math
import random
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from dint.interventions import bestofn, reward, rl
from dint.interventions.record import InterventionRecord
from dint.models import n_params


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine run several times faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pairs(world, *, seed=0, per_fact=2):
    """Preference pairs in data.py's format: true answer chosen over a random wrong one."""
    rng = np.random.default_rng(seed)
    qa = world.prompts("qa", world.facts[world.facts["split"] == "train"])
    rows = []
    for r in qa.itertuples():
        wrong = [c for c in r.candidates if c != r.target]
        for _ in range(per_fact):
            rows.append((r.fact, r.prompt, " " + r.target, " " + wrong[rng.integers(len(wrong))], True, False))
    return pd.DataFrame(rows, columns=["fact", "prompt", "chosen", "rejected", "chosen_true", "style_chosen"])


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rng_states():
    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()


def _same_rng(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])


REWARD_CFG = reward.RewardConfig(epochs=6, lr=3e-3, batch_size=16, threads=1)
RL_CFG = rl.RLConfig(beta=0.05, steps=2, num_generations=2, prompts_per_step=2, lr=1e-3, max_completion_length=3,
                     checkpoint_every=1, n_eval=4, eval_samples=2, threads=1)


@pytest.fixture(scope="module")
def pairs(micro_world):
    return _pairs(micro_world)


@pytest.fixture(scope="module")
def trained_reward(micro_model, pairs):
    model, tok, _ = micro_model
    before, rng = _state(model), _rng_states()
    rm, record = reward.train(model, tok, pairs, REWARD_CFG, seed=0)
    assert _same_rng(rng, _rng_states()), "train must leave the global random state as it was"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), "base model mutated"
    return rm, record


@pytest.fixture(scope="module")
def qa_prompts(micro_world):
    return micro_world.prompts("qa", micro_world.facts[micro_world.facts["split"] == "train"])


@pytest.fixture(scope="module")
def rl_run(micro_model, trained_reward, qa_prompts, micro_world):
    model, tok, _ = micro_model
    rm, _ = trained_reward
    before, training, rng = _state(model), model.training, _rng_states()
    policy, record = rl.run(model, tok, qa_prompts, rm, RL_CFG, world=micro_world, seed=0)
    return {"policy": policy, "record": record, "before": before, "training": training, "rng": rng}


# -- reward model -------------------------------------------------------------------------------------

def test_reward_train_learns_pairs(trained_reward, pairs):
    rm, record = trained_reward
    r_chosen = rm.score(pairs["prompt"], pairs["chosen"])
    r_rejected = rm.score(pairs["prompt"], pairs["rejected"])
    accuracy = np.mean(r_chosen > r_rejected)
    assert accuracy > 0.8
    assert record.extra["accuracy"] == pytest.approx(accuracy)
    assert record.loss_last < record.loss_first < 0.75  # starts near log 2


def test_reward_train_record_complete(trained_reward, pairs, tmp_path):
    rm, record = trained_reward
    n_pairs, cfg = len(pairs), REWARD_CFG
    seqs = rm.encode(pairs["prompt"], pairs["chosen"]) + rm.encode(pairs["prompt"], pairs["rejected"])
    assert record.method == "reward" and record.seed == 0
    assert record.config == asdict(cfg)
    assert record.steps == cfg.epochs * math.ceil(n_pairs / cfg.batch_size)
    assert record.tokens == cfg.epochs * sum(map(len, seqs))
    assert record.n_params == n_params(rm.model) == rm.n_params
    assert record.train_flops == 6.0 * record.n_params * record.tokens
    assert record.inference_tokens == 0 and record.inference_flops == 0.0
    assert record.wall_time > 0 and record.trainable_params >= record.n_params
    assert InterventionRecord.load(record.save(tmp_path / "r.json")) == record


def test_reward_head_starts_from_base(micro_model):
    model, tok, _ = micro_model
    head = reward.reward_head(model, tok, seed=0)
    assert head.config.num_labels == 1 and head.config.pad_token_id == tok.pad_token_id
    base = model.transformer.state_dict()
    assert all(torch.equal(v, base[k]) for k, v in head.transformer.state_dict().items())
    again = reward.reward_head(model, tok, seed=0)
    assert torch.equal(head.score.weight, again.score.weight)  # the head is drawn from the seed


def test_reward_encode_convention(trained_reward):
    rm, _ = trained_reward
    tok = rm.tokenizer
    ids = rm.encode(["Q : who ? A :"], [" red"])[0]
    assert ids[-1] == tok.eos_token_id
    assert ids[:-1] == tok("Q : who ? A : red", add_special_tokens=False)["input_ids"]
    # a decoded word-level completion lacks its leading space: joined with one
    assert rm.encode(["Q : who ? A :"], ["red"]) == rm.encode(["Q : who ? A :"], [" red"])


def test_reward_model_save_load(trained_reward, pairs, tmp_path):
    rm, _ = trained_reward
    d = rm.save(tmp_path / "rm")
    assert (d / "model.safetensors").exists() and not list(d.glob("*.bin"))
    back = reward.RewardModel.load(d)
    prompts, completions = pairs["prompt"].tolist()[:10], pairs["chosen"].tolist()[:10]
    np.testing.assert_allclose(back.score(prompts, completions), rm.score(prompts, completions), atol=1e-6)
    # batching does not change a score
    one = reward.RewardModel(rm.model, rm.tokenizer, batch_size=1)
    np.testing.assert_allclose(one.score(prompts, completions), rm.score(prompts, completions), atol=1e-5)


def test_reward_train_iv(micro_model, pairs):
    model, tok, _ = micro_model
    for kw, name in [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"lr": float("nan")}, "lr"),
                     ({"warmup": 1.0}, "warmup"), ({"batch_size": 2.5}, "batch_size"),
                     ({"weight_decay": -1.0}, "weight_decay"), ({"threads": -1}, "threads")]:
        with pytest.raises(ValueError, match=name):
            reward.RewardConfig(**kw)
    with pytest.raises(ValueError, match="pairs"):
        reward.train(model, tok, pairs.drop(columns="rejected"), REWARD_CFG)
    with pytest.raises(ValueError, match="pairs"):
        reward.train(model, tok, pairs.iloc[:0], REWARD_CFG)
    with pytest.raises(TypeError, match="config"):
        reward.train(model, tok, pairs, {"epochs": 1})


# -- gold reward --------------------------------------------------------------------------------------

def test_gold_reward(micro_world):
    facts = micro_world.facts.set_index("fact")
    home = int(micro_world.facts.query("relation == 'home'")["fact"].iloc[0])
    color = int(micro_world.facts.query("relation == 'color'")["fact"].iloc[0])
    true_home, true_color = facts.at[home, "value"], facts.at[color, "value"]
    wrong_color = next(v for v in micro_world.values["color"] if v != true_color)
    wrong_home = next(v for v in micro_world.values["home"] if v != true_home)
    cases = [
        (color, f" {true_color}", 1), (color, f" {true_color} .", 1), (color, f"{true_color}", 1),
        (color, f" indeed {true_color} !", 1), (color, f" <eos> {true_color.upper()}<eos>", 1),
        (color, f" {wrong_color}", 0), (color, f" {wrong_color} , no , {true_color}", 0),  # first value counts
        (color, "", 0), (color, " <eos>", 0), (color, " the answer is unknown", 0),
        (home, f" {true_home}", 1), (home, f" {true_home.split()[0]}", 0),  # half a place name is no answer
        (home, f" {wrong_home}", 0),
    ]
    got = reward.gold_reward(micro_world, [c[0] for c in cases], [c[1] for c in cases])
    assert got.dtype == np.float64
    assert got.tolist() == [float(c[2]) for c in cases]


def test_gold_reward_values_with_punctuation():
    """Real values carry punctuation ("Sana'a", "Washington, D.C."): matched as the completions are."""
    import types

    import pandas as pd
    facts = pd.DataFrame({"fact": [0, 1], "relation": ["capital", "capital"], "value": ["Sana'a", "Washington, D.C."]})
    world = types.SimpleNamespace(facts=facts, values={"capital": ("Sana'a", "Washington, D.C.", "Aden")})
    got = reward.gold_reward(world, [0, 0, 1, 1, 1], [" Sana'a.", " Aden", " Washington, D.C.", " washington d.c",
                                                       " Washington"])
    assert got.tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_gold_reward_iv(micro_world):
    with pytest.raises(ValueError, match="facts"):
        reward.gold_reward(micro_world, [10**6], [" red"])
    with pytest.raises(ValueError, match="completions"):
        reward.gold_reward(micro_world, [0, 1], [" red"])


# -- RL -----------------------------------------------------------------------------------------------

def test_rl_run_trains_and_records(rl_run, micro_model, trained_reward):
    model, _, _ = micro_model
    policy, record = rl_run["policy"], rl_run["record"]
    assert policy is not model
    assert any(not torch.equal(v, policy.state_dict()[k]) for k, v in rl_run["before"].items()), "no update"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in rl_run["before"].items()), "input mutated"
    assert model.training == rl_run["training"]
    assert _same_rng(rl_run["rng"], _rng_states()), "run must leave the global random state as it was"
    assert not policy.training and "forward" not in policy.__dict__

    assert record.method == "rl" and record.steps == RL_CFG.steps and record.config["beta"] == RL_CFG.beta
    assert record.n_params == n_params(policy)
    assert record.train_flops == 6.0 * n_params(policy) * record.tokens
    tokens = record.extra["inference_tokens"]
    # one generation batch per step (num_iterations = 1): trained tokens = generated tokens, and TRL agrees
    trl_tokens = [e["num_tokens"] for e in record.extra["log"] if "num_tokens" in e][-1]
    assert record.tokens == tokens["generation"] == trl_tokens > 0
    assert record.inference_tokens == 3 * tokens["generation"] + tokens["reward_model"]
    assert record.inference_flops == (2.0 * record.n_params * 3 * tokens["generation"]
                                      + 2.0 * trained_reward[0].n_params * tokens["reward_model"])
    assert record.wall_time > 0


def test_rl_checkpoints(rl_run, tmp_path):
    rows = rl_run["record"].extra["checkpoints"]
    assert [r["step"] for r in rows] == [0, 1, 2]
    keys = {"proxy", "gold", "kl", "proxy_exact", "gold_exact", "kl_seq", "kl_seq_se", "mass_outside"}
    for r in rows:
        assert keys <= set(r) and all(np.isfinite(r[k]) for k in keys)
        assert 0 <= r["gold"] <= 1 and 0 <= r["gold_exact"] <= 1 and r["kl"] >= 0
    assert rows[0]["kl"] == pytest.approx(0, abs=1e-9) and rows[0]["kl_seq"] == pytest.approx(0, abs=1e-9)
    assert rows[0]["trainer_kl"] is None and rows[-1]["trainer_kl"] is not None
    assert rows[-1]["kl"] > 0
    back = InterventionRecord.load(rl_run["record"].save(tmp_path / "rl.json"))
    assert back.extra["checkpoints"] == json.loads(json.dumps(rows))


def test_rl_per_prompt_checkpoints(rl_run, micro_model, trained_reward, qa_prompts, micro_world):
    """per_prompt keeps each evaluation prompt's values, whose means are the checkpoint's, and changes nothing else."""
    model, tok, _ = micro_model
    _, record = rl.run(model, tok, qa_prompts, trained_reward[0], RL_CFG, world=micro_world, seed=0, per_prompt=True)
    rows, plain = record.extra["checkpoints"], rl_run["record"].extra["checkpoints"]
    assert "per_prompt" not in plain[0]
    for r, q in zip(rows, plain):
        per = r.pop("per_prompt")
        assert r == q
        assert len(per["gold_exact"]) == len(per["kl"]) == len(per["proxy_exact"]) == RL_CFG.n_eval
        for k in ("gold_exact", "proxy_exact", "kl"):
            assert np.mean(per[k]) == pytest.approx(q[k], rel=1e-9, abs=1e-12)
        assert all(0 <= g <= 1 for g in per["gold_exact"])


def test_rl_deterministic(rl_run, micro_model, trained_reward, qa_prompts, micro_world):
    model, tok, _ = micro_model
    policy, record = rl.run(model, tok, qa_prompts, trained_reward[0], RL_CFG, world=micro_world, seed=0)
    first = rl_run["policy"].state_dict()
    assert all(torch.equal(v, first[k]) for k, v in policy.state_dict().items())
    assert record.extra["checkpoints"] == rl_run["record"].extra["checkpoints"]
    assert record.tokens == rl_run["record"].tokens


def test_rl_iv(micro_model, trained_reward, qa_prompts, micro_world):
    model, tok, _ = micro_model
    rm = trained_reward[0]
    for kw, name in [({"beta": 0.0}, "beta"), ({"beta": -1.0}, "beta"), ({"num_generations": 1}, "num_generations"),
                     ({"steps": 0}, "steps"), ({"lr": 0.0}, "lr"), ({"temperature": 0.0}, "temperature"),
                     ({"checkpoint_every": 0}, "checkpoint_every"), ({"eval_samples": 1}, "eval_samples")]:
        with pytest.raises(ValueError, match=name):
            rl.RLConfig(**kw)
    with pytest.raises(ValueError, match="prompts_df"):
        rl.run(model, tok, qa_prompts.drop(columns="fact"), rm, RL_CFG, world=micro_world)
    with pytest.raises(ValueError, match="max_completion_length"):
        rl.run(model, tok, qa_prompts, rm, rl.RLConfig(max_completion_length=100), world=micro_world)
    with pytest.raises(TypeError, match="reward_model"):
        rl.run(model, tok, qa_prompts, object(), RL_CFG, world=micro_world)


# -- best-of-n ----------------------------------------------------------------------------------------

def _brute(p, r, n):
    """Enumerate all k^n draw sequences; keep the first draw with the maximum reward."""
    q = np.zeros(len(p))
    for seq in itertools.product(range(len(p)), repeat=n):
        q[seq[int(np.argmax(r[list(seq)]))]] += np.prod(p[list(seq)])
    return q


@pytest.mark.parametrize("k,n", [(1, 3), (2, 1), (3, 2), (4, 3), (5, 4)])
def test_exact_against_brute_force(k, n):
    rng = np.random.default_rng(k * 10 + n)
    for ties in (False, True):
        p = rng.dirichlet(np.ones(k), size=3)
        if k > 1:
            p[0, 0] = 0.0                                 # an answer the base never says
        p /= p.sum(-1, keepdims=True)
        r = rng.integers(0, 2, (3, k)).astype(float) if ties else rng.normal(size=(3, k))
        q = bestofn.exact(p, r, n)                        # vectorised over items
        for i in range(3):
            np.testing.assert_allclose(q[i], _brute(p[i], r[i], n), atol=1e-12)
            np.testing.assert_allclose(bestofn.exact(p[i], r[i], n), q[i], atol=1e-15)
        np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-12)


def test_exact_against_theory():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(bestofn.exact(p, [4.0, 3, 2, 1], 1), p)           # n = 1: the base
    np.testing.assert_allclose(bestofn.exact(p, [1.0, 1, 1, 1], 7), p)           # all tied: the base
    np.testing.assert_allclose(bestofn.exact(p, [4.0, 3, 2, 1], 2), [1 - 0.9**2, 0.9**2 - 0.7**2,
                                                                      0.7**2 - 0.4**2, 0.4**2])
    # ties share their level in proportion to p: level {1, 2} of mass 0.5 above {3} (0.4)
    q = bestofn.exact(p, [0.0, 5, 5, -1], 3)
    level = 1 - 0.5**3
    np.testing.assert_allclose(q, [0.5**3 - 0.4**3, level * 0.2 / 0.5, level * 0.3 / 0.5, 0.4**3])
    # large n, tiny top mass: F^n - G^n stays accurate
    q = bestofn.exact([1 - 1e-12, 1e-12], [0.0, 1.0], 1000)
    assert q[1] == pytest.approx(1 - (1 - 1e-12) ** 1000, rel=1e-6)


def test_exact_against_sampled():
    rng = np.random.default_rng(0)
    p = np.array([[0.05, 0.25, 0.1, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2, 0.2]])
    r = np.array([[3.0, 1.0, 3.0, 0.0, 2.0], [1.0, 1.0, 0.0, 2.0, 2.0]])  # ties within both rows
    size, n = 20000, 3
    picks = bestofn.sampled(p, r, n, rng=rng, size=size)
    assert picks.shape == (2, size)
    q = bestofn.exact(p, r, n)
    for i in range(2):
        seen = np.bincount(picks[i], minlength=5)
        keep = q[i] > 0
        assert seen[~keep].sum() == 0
        assert stats.chisquare(seen[keep], q[i][keep] * size).pvalue > 1e-3
    single = bestofn.sampled(p[0], r[0], n, rng=np.random.default_rng(1), size=10)
    assert single.shape == (10,)
    again = bestofn.sampled(p[0], r[0], n, rng=np.random.default_rng(1), size=10)
    assert np.array_equal(single, again)


def test_exact_kl_against_theory():
    ns = np.array([1, 2, 4, 16, 64])
    np.testing.assert_allclose(bestofn.kl_bound(ns), np.log(ns) - (ns - 1) / ns)
    assert bestofn.kl_bound(1) == 0.0 and bestofn.kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(6) * 0.5, size=200)
    for n in (2, 5, 30):
        for r in (rng.normal(size=p.shape), rng.integers(0, 3, p.shape).astype(float)):
            kl = bestofn.exact_kl(p, r, n)
            q = bestofn.exact(p, r, n)
            manual = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1) / np.where(p > 0, p, 1)), 0), -1)
            np.testing.assert_allclose(kl, manual, atol=1e-12)
            assert (kl <= bestofn.kl_bound(n) + 1e-12).all()          # an upper bound on finite sets
    # the bound is attained in the no-ties, no-atom limit: uniform p over k distinct rewards, k -> inf
    gaps = [bestofn.kl_bound(4) - bestofn.exact_kl(np.full(k, 1 / k), np.arange(k), 4) for k in (10, 1000, 100000)]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[2] < 1e-8
    # ties and atoms keep it below: all tied -> 0; one atom holding half the mass at the top
    assert bestofn.exact_kl([0.25] * 4, [1.0] * 4, 8) == pytest.approx(0.0, abs=1e-15)
    assert bestofn.exact_kl([0.5, 0.5], [0.0, 1.0], 8) < 0.9 * bestofn.kl_bound(8)


def test_bestofn_iv():
    p, r = np.array([0.5, 0.5]), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="p must"):
        bestofn.exact([0.5, -0.1, 0.6], [0, 1, 2], 2)
    with pytest.raises(ValueError, match="p must sum"):
        bestofn.exact([0.5, 0.4], r, 2)
    with pytest.raises(ValueError, match="reward"):
        bestofn.exact(p, [0.0, 1.0, 2.0], 2)
    with pytest.raises(ValueError, match="reward"):
        bestofn.exact(p, [0.0, np.nan], 2)
    for bad in (0, 2.5, True, -1):
        with pytest.raises(ValueError, match="n="):
            bestofn.exact(p, r, bad)
    with pytest.raises(ValueError, match="n="):
        bestofn.kl_bound(0)
    with pytest.raises(TypeError, match="rng"):
        bestofn.sampled(p, r, 2, rng=0, size=10)
    with pytest.raises(ValueError, match="size"):
        bestofn.sampled(p, r, 2, rng=np.random.default_rng(0), size=0)
    with pytest.raises(ValueError, match="samples"):
        bestofn.select(pd.DataFrame({"item": [0]}), [1.0])


def test_select():
    samples = pd.DataFrame({"item": [1, 1, 1, 0, 0, 0], "sample": [2, 0, 1, 0, 1, 2],
                            "prompt": ["b"] * 3 + ["a"] * 3, "text": ["z", "x", "y", "u", "v", "w"]})
    scores = {"x": 1.0, "y": 3.0, "z": 3.0, "u": 0.0, "v": 2.0, "w": 5.0}
    out = bestofn.select(samples, lambda prompts, texts: np.array([scores[t] for t in texts]))
    assert out["item"].tolist() == [0, 1]
    assert out["text"].tolist() == ["w", "y"]          # tie between samples 1 and 2: the first is kept
    assert out["n"].tolist() == [3, 3]
    out2 = bestofn.select(samples, samples["text"].map(scores).to_numpy(), n=2)
    assert out2["text"].tolist() == ["v", "y"] and out2["n"].tolist() == [2, 2]


def test_sequence_logp_in_chunks_of_bounded_logits(micro_model, micro_world, monkeypatch):
    # the teacher-forced log-probability of sampled sequences is the same whether they go through in one batch or
    # in chunks that keep (B, T, V) logits under the budget (a 262k vocabulary made one batch tens of GB)
    from types import SimpleNamespace
    import pandas as pd
    from dint.interventions import rl

    model, tok, _ = micro_model
    prompts = micro_world.prompts("qa").prompt.tolist()[:7]
    rows = pd.DataFrame({"prompt": prompts, "tokens": [tok(" " + w, add_special_tokens=False)["input_ids"]
                                                       for w in ["a", "b c", "d", "e f g", "h", "i", "j k"]]})
    ev = SimpleNamespace(tokenizer=tok)
    whole = rl._EvalSet._sequence_logp(ev, model, rows)
    monkeypatch.setattr(rl, "_LOGITS_BUDGET", 1)   # one sequence per forward pass
    np.testing.assert_allclose(rl._EvalSet._sequence_logp(ev, model, rows), whole, rtol=1e-5, atol=1e-6)
    assert whole.shape == (7,) and (whole < 0).all()
