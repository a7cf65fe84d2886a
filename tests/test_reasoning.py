"""Two-hop reasoning: direct, sampled chains, majority vote and the store-verified chain."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from dint.analyses import reasoning as R
from dint.interventions import data, sft
from dint.interventions.rag import StoreConfig, build_store
from dint.models import BaseModelConfig, gpt2, n_params, word_tokenizer
from dint.scoring import score
from dint.world import RELATIONS, WorldConfig, build


@pytest.fixture(scope="module")
def tiny(micro_world):
    """A random one-layer GPT-2 over the world's vocabulary: N and token counts for oracle runs."""
    tok = word_tokenizer(micro_world.vocabulary())
    return gpt2(BaseModelConfig(n_layer=1, n_head=1, n_embd=8), tok, seed=0), tok


@pytest.fixture(scope="module")
def stores(micro_world):
    return {s: build_store(micro_world, StoreConfig(stale_share=s), seed=0) for s in (0.0, 1.0)}


def _truth(world) -> dict[str, str]:
    """True answer of every step prompt and every composed prompt."""
    out = {R.step_prompt(f.relation, f.entity): f.value for f in world.facts.itertuples()}
    for t in world.twohop.itertuples():
        out[R.composed_question(t.relation, t.via, t.entity)] = t.value
    return out


def oracle(world):
    """A scorer that puts all its mass on the true answer."""
    truth = _truth(world)
    return lambda prompts, candidates: [np.array([c == truth[p] for c in cs], float)
                                        for p, cs in zip(prompts, candidates)]


def uniform(prompts, candidates):
    return [np.ones(len(cs)) for cs in candidates]


def _stated(store) -> dict:
    """(entity, relation) -> the value the store states (one document per fact)."""
    t = store.table
    return dict(zip(zip(t["entity"], t["relation"]), t["value"]))


def _words(text: str) -> int:
    return len(text.split())


# -- questions ----------------------------------------------------------------------------------

def test_twohop_items(micro_world):
    items = R.twohop_items(micro_world)
    assert list(items.columns) == ["item", "entity", "via", "bridge", "relation", "value", "fact1", "fact2", "prompt"]
    assert len(items) == len(micro_world.twohop) == 16 * 4
    assert items["item"].tolist() == list(range(len(items)))
    vocabulary = set(micro_world.vocabulary())
    for it in items.itertuples():
        assert set(it.prompt.split()) <= vocabulary
        assert it.prompt == "Q : " + RELATIONS[it.relation].question.format(e=f"the mentor of {it.entity}") + " A :"
    first = items.iloc[1]
    assert first["prompt"] == f"Q : what is the favorite color of the mentor of {first['entity']} ? A :"
    facts = micro_world.facts.set_index("fact")
    assert (facts.loc[items["fact1"], "entity"].to_numpy() == items["entity"].to_numpy()).all()
    assert (facts.loc[items["fact2"], "value"].to_numpy() == items["value"].to_numpy()).all()
    assert R.step_prompt("mentor", "x") == "Q : who is the mentor of x ? A :"

    train = micro_world.facts[micro_world.facts["split"] == "train"]
    kept = R.twohop_items(micro_world, train)
    assert 0 < len(kept) < len(items)
    assert kept["fact1"].isin(train["fact"]).all() and kept["fact2"].isin(train["fact"]).all()


def test_twohop_items_iv(micro_world):
    no_mentor = build(WorldConfig(n_entities=6, relations=("color", "pet")), seed=0)
    with pytest.raises(ValueError, match="two-hop"):
        R.twohop_items(no_mentor)
    stranger = micro_world.twohop.copy()
    stranger.loc[0, "entity"] = "nobodyknown"
    with pytest.raises(ValueError, match=r"world: .*nobodyknown.*vocabulary"):
        R.twohop_items(dataclasses.replace(micro_world, twohop=stranger))
    with pytest.raises(ValueError, match="facts"):
        R.twohop_items(micro_world, micro_world.facts.head(0))
    with pytest.raises(ValueError, match="facts"):
        R.twohop_items(micro_world, [1, 2])
    with pytest.raises(TypeError, match="world"):
        R.twohop_items("world")


def test_config_iv():
    for field, bad in (("n_chains", 0), ("n_chains", True), ("n_chains", 2.0), ("max_questions", -1),
                       ("seed", -1), ("threads", -1)):
        with pytest.raises(ValueError, match=f"ReasoningConfig.{field}"):
            R.ReasoningConfig(**{field: bad})
    assert dataclasses.asdict(R.ReasoningConfig()) == {"n_chains": 8, "max_questions": 0, "seed": 0, "threads": 1}


def test_answer_iv(micro_world, tiny, stores):
    model, tok = tiny
    items = R.twohop_items(micro_world).head(3)
    with pytest.raises(ValueError, match="items"):
        R.answer_direct(model, tok, micro_world, items.drop(columns="prompt"), scorer=uniform)
    with pytest.raises(ValueError, match="items"):
        R.answer_direct(model, tok, micro_world, items.head(0), scorer=uniform)
    with pytest.raises(ValueError, match="store"):
        R.answer_chains(model, tok, micro_world, items, object(), scorer=uniform)
    with pytest.raises(ValueError, match="scorer"):
        R.answer_direct(model, tok, micro_world, items, scorer=lambda p, c: [np.ones(2) for _ in p])
    with pytest.raises(ValueError, match="scorer"):
        R.answer_direct(model, tok, micro_world, items, scorer=lambda p, c: [-np.ones(len(x)) for x in c])
    with pytest.raises(ValueError, match="scorer returned"):
        R.answer_chains(model, tok, micro_world, items, stores[0.0], scorer=lambda p, c: [])
    with pytest.raises(TypeError, match="config"):
        R.answer_chains(model, tok, micro_world, items, stores[0.0], {"n_chains": 2}, scorer=uniform)
    with pytest.raises(ValueError, match="answers"):
        R.by_method(pd.DataFrame({"item": [0]}))


# -- the verifier and the chains, with oracle scorers -------------------------------------------

def test_oracle_verified_chain_is_right_on_a_clean_store(micro_world, tiny, stores):
    model, tok = tiny
    answers, summary = R.evaluate(model, tok, micro_world, stores[0.0], R.ReasoningConfig(n_chains=4),
                                  scorer=oracle(micro_world))
    assert len(answers) == 4 * 64 and list(dict.fromkeys(summary["strategy"])) == list(R.METHODS)
    assert list(summary.columns) == R.SUMMARY_COLUMNS
    assert summary["measure"].tolist() == ["accuracy", "selective_accuracy"] + ["accuracy", "selective_accuracy",
                                                                                "vs_direct"] * 3
    assert answers["correct"].all() and answers["answered"].all()
    assert (answers["p_correct"].fillna(1.0) == 1.0).all()
    ver = answers[answers["method"] == "verified"]
    assert (ver["chains"] == 1).all() and (ver["via_answer"] == ver["bridge"]).all()
    s = summary.set_index(["strategy", "measure"])
    acc = s.xs("accuracy", level="measure")
    assert (acc["estimate"] == 1).all() and (acc["coverage"] == 1).all()
    assert (s.xs("selective_accuracy", level="measure")["estimate"] == 1).all()
    assert acc.loc["verified", "ci_low"] < 1 == acc.loc["verified", "ci_high"] and (acc["n"] == 64).all()
    assert acc.loc["verified", "method"] == "proportion, Wilson interval"
    # direct and verified never disagree: the difference is 0, and McNemar's test has no information
    vs = s.loc[("verified", "vs_direct")]
    assert vs["estimate"] == 0 and np.isnan(vs["pvalue"]) and vs["reason"]


def test_verified_chain_follows_a_stale_store(micro_world, tiny, stores):
    model, tok = tiny
    stale = stores[1.0]
    assert not stale.table["is_true"].any()
    # an oracle proposes only true claims, which an all-stale store rejects: it abstains everywhere
    answers, _ = R.evaluate(model, tok, micro_world, stale, R.ReasoningConfig(n_chains=8), scorer=oracle(micro_world))
    ver = answers[answers["method"] == "verified"]
    assert not ver["answered"].any() and (ver["answer"] == "").all() and (ver["chains"] == 8).all()
    assert (ver["p_correct"] == 0).all()
    # a model that proposes everything gets through only along the store's stale claims
    answers, _ = R.evaluate(model, tok, micro_world, stale, R.ReasoningConfig(n_chains=3000), scorer=uniform)
    ver = answers[answers["method"] == "verified"].set_index("item")
    said = _stated(stale)
    got = ver[ver["answered"]]
    assert len(got) >= 60
    assert (got["via_answer"] == [said[e, "mentor"] for e in got["entity"]]).all()
    assert (got["answer"] == [said[said[e, "mentor"], r] for e, r in zip(got["entity"], got["relation"])]).all()
    assert not (got["via_answer"] == got["bridge"]).any()


def test_verified_chain_against_theory(micro_world, tiny, stores):
    """Uniform proposals on a clean store: every answer is right, and the share answered matches
    the exact law 1 - (1 - 1/(K1·K2))^n."""
    model, tok = tiny
    n = 200
    answers, chains = R.answer_chains(model, tok, micro_world, R.twohop_items(micro_world), stores[0.0],
                                      R.ReasoningConfig(n_chains=n), scorer=uniform)
    ver = answers[answers["method"] == "verified"]
    assert ver.loc[ver["answered"], "correct"].all()
    k1 = len(micro_world.values["mentor"])
    law = np.array([1 - (1 - 1 / (k1 * len(micro_world.values[r]))) ** n for r in ver["relation"]])
    np.testing.assert_allclose(ver["p_correct"], law)
    se = np.sqrt((law * (1 - law)).sum())
    assert abs(ver["answered"].sum() - law.sum()) < 4 * se
    # chains: the verdicts are the store's, and the verified answer is the first fully verified chain
    said = _stated(stores[0.0])
    items = R.twohop_items(micro_world).set_index("item")
    c = chains.join(items[["entity", "relation"]], on="item")
    assert (c["verified1"] == [said[e, "mentor"] == b for e, b in zip(c["entity"], c["bridge"])]).all()
    assert (c["verified2"] == [said[b, r] == a for b, r, a in zip(c["bridge"], c["relation"], c["answer"])]).all()
    ok = c[c["verified1"] & c["verified2"]].groupby("item")["chain"].min()
    v = ver.set_index("item")
    assert (v.loc[ok.index, "chains"] == ok + 1).all()
    assert (v.drop(ok.index)["chains"] == n).all() and not v.drop(ok.index)["answered"].any()


def test_majority_vote(micro_world, tiny, stores):
    model, tok = tiny
    answers, chains = R.answer_chains(model, tok, micro_world, R.twohop_items(micro_world).head(5), stores[0.0],
                                      R.ReasoningConfig(n_chains=25), scorer=uniform)
    maj = answers[answers["method"] == "majority"].set_index("item")
    for item, g in chains.groupby("item"):
        counts = g["answer"].value_counts()
        top = set(counts[counts == counts.max()].index)
        assert maj.loc[item, "answer"] == next(a for a in g["answer"] if a in top)   # ties: drawn first
        assert maj.loc[item, "chains"] == 25


# -- exact sampling -------------------------------------------------------------------------------

def test_chain_sampling_is_exact(micro_world, micro_model, stores):
    """Step frequencies of many chains match the model's exact p_set within binomial tolerance."""
    model, tok, _ = micro_model
    items = R.twohop_items(micro_world).iloc[[0, 5, 10, 15]]
    n = 4000
    threads = torch.get_num_threads()
    answers, chains = R.answer_chains(model, tok, micro_world, items, stores[0.0], R.ReasoningConfig(n_chains=n, seed=7))
    assert torch.get_num_threads() == threads
    entities = micro_world.values["mentor"]
    p1 = score(model, tok, [R.step_prompt("mentor", e) for e in items["entity"]],
               [[" " + c for c in entities]] * len(items))["p_set"].to_numpy().reshape(len(items), -1)
    for row, it in enumerate(items.itertuples()):
        g = chains[chains["item"] == it.item]
        freq = g["bridge"].value_counts().reindex(entities, fill_value=0).to_numpy() / n
        tol = 4.5 * np.sqrt(p1[row] * (1 - p1[row]) / n) + 1e-12
        assert (np.abs(freq - p1[row]) <= tol).all()
        # step 2, given the most drawn bridge
        b = g["bridge"].value_counts().index[0]
        sub = g[g["bridge"] == b]
        values = micro_world.values[it.relation]
        p2 = score(model, tok, [R.step_prompt(it.relation, b)], [[" " + v for v in values]])["p_set"].to_numpy()
        freq2 = sub["answer"].value_counts().reindex(values, fill_value=0).to_numpy() / len(sub)
        assert (np.abs(freq2 - p2) <= 4.5 * np.sqrt(p2 * (1 - p2) / len(sub)) + 1e-12).all()
    # exact chain accuracy of the first item: Σ_b p1(b)·p2(value | b) over every bridge
    it = items.iloc[0]
    values = micro_world.values[it["relation"]]
    P2 = score(model, tok, [R.step_prompt(it["relation"], b) for b in entities],
               [[" " + v for v in values]] * len(entities))["p_set"].to_numpy().reshape(len(entities), -1)
    got = answers.set_index(["item", "method"]).loc[(it["item"], "chain"), "p_correct"]
    np.testing.assert_allclose(got, p1[0] @ P2[:, values.index(it["value"])], rtol=1e-6)  # packing: float noise
    # seeded: the same chains again, and a smaller budget draws a prefix of them
    _, again = R.answer_chains(model, tok, micro_world, items, stores[0.0], R.ReasoningConfig(n_chains=10, seed=7))
    pd.testing.assert_frame_equal(again, chains[chains["chain"] < 10].reset_index(drop=True))
    _, other = R.answer_chains(model, tok, micro_world, items, stores[0.0], R.ReasoningConfig(n_chains=10, seed=8))
    assert not other.equals(again)


def test_draw_never_picks_zero_mass():
    p = np.array([[0.0, 0.5, 0.0, 0.5, 0.0]] * 5)
    u = np.array([0.0, 0.25, 0.5, 0.75, np.nextafter(1.0, 0.0)])
    assert R._draw(p, u).tolist() == [1, 1, 3, 3, 3]


# -- cost ------------------------------------------------------------------------------------------

def test_cost_is_2_n_tokens(micro_world, tiny, stores):
    """Tokens of prompt + answer per scored candidate (one word one token here), FLOPs = 2·N·tokens."""
    model, tok = tiny
    items = R.twohop_items(micro_world)
    answers, summary = R.evaluate(model, tok, micro_world, stores[0.0], R.ReasoningConfig(n_chains=5),
                                  scorer=oracle(micro_world))
    N = n_params(model)

    def cost(prompt, candidates):
        return sum(_words(prompt) + _words(c) for c in candidates)

    a = answers.set_index(["item", "method"])
    for it in items.itertuples():
        V = micro_world.values[it.relation]
        direct = cost(it.prompt, V)
        chain = cost(R.step_prompt("mentor", it.entity), micro_world.values["mentor"]) \
            + cost(R.step_prompt(it.relation, it.bridge), V)
        assert a.loc[(it.item, "direct"), "tokens"] == direct
        for m in ("chain", "majority", "verified"):                  # the oracle draws one bridge
            assert a.loc[(it.item, m), "tokens"] == chain
    np.testing.assert_allclose(answers["flops"], 2.0 * N * answers["tokens"])
    s = summary[summary["measure"] == "accuracy"].set_index("strategy")
    tokens = answers.groupby("method")["tokens"].sum()
    assert (s["tokens"] == tokens.reindex(s.index)).all()
    np.testing.assert_allclose(s["flops"], 2.0 * N * s["tokens"])
    np.testing.assert_allclose(s["flops_per_question"], s["flops"] / len(items))


def test_verifier_prunes_step_two(micro_world, tiny, stores):
    """A chain whose step 1 fails verification never runs step 2: on a stale store the oracle's
    verified chains cost only their step-1 prompt."""
    model, tok = tiny
    items = R.twohop_items(micro_world)
    answers, _ = R.answer_chains(model, tok, micro_world, items, stores[1.0], R.ReasoningConfig(n_chains=3),
                                 scorer=oracle(micro_world))
    ver = answers[answers["method"] == "verified"]
    k1 = len(micro_world.values["mentor"])
    expect = [k1 * (_words(R.step_prompt("mentor", e)) + 1) for e in ver["entity"]]
    assert ver["tokens"].tolist() == expect


# -- end to end ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qa_model(micro_world, micro_model):
    model, tok, _ = micro_model
    qa, _ = sft.run(model, tok, data.sft_demos(micro_world), sft.SFTConfig(epochs=3, lr=1e-2, batch_size=4, threads=1),
                    seed=0)
    return qa, tok


def test_evaluate_end_to_end(micro_world, qa_model, stores):
    model, tok = qa_model
    threads = torch.get_num_threads()
    config = R.ReasoningConfig(n_chains=64, seed=0)
    answers, summary = R.evaluate(model, tok, micro_world, stores[0.0], config)
    assert torch.get_num_threads() == threads
    assert len(answers) == 4 * 64 and list(answers.columns) == R.ANSWER_COLUMNS
    assert all(tuple(g) == R.METHODS for _, g in answers.groupby("item")["method"])
    s = summary[summary["measure"] == "accuracy"].set_index("strategy")
    assert (s["n"] == 64).all()
    assert ((s["ci_low"] <= s["estimate"]) & (s["estimate"] <= s["ci_high"])).all()
    # on a clean store, every verified answer is right, and verification beats asking directly
    selective = summary[summary["measure"] == "selective_accuracy"].set_index("strategy")
    assert selective.loc["verified", "estimate"] == 1.0
    assert selective.loc["verified", "n"] == s.loc["verified", "answered"]
    assert s.loc["verified", "estimate"] >= s.loc["direct", "estimate"]
    assert s.loc["verified", "estimate"] == s.loc["verified", "coverage"]
    assert s.loc[["direct", "chain", "majority"], "coverage"].eq(1).all()
    vs = summary[summary["measure"] == "vs_direct"].set_index("strategy")
    assert np.isfinite(vs.loc["verified", ["estimate", "ci_low", "ci_high", "pvalue"]].astype(float)).all()
    assert vs.loc["verified", "estimate"] == s.loc["verified", "estimate"] - s.loc["direct", "estimate"]
    assert "direct" not in vs.index
    # the exact expectations agree with the realised accuracies in law
    for m in ("direct", "verified"):
        assert np.isfinite(s.loc[m, "expected_accuracy"])
    assert abs(s.loc["verified", "estimate"] - s.loc["verified", "expected_accuracy"]) < 0.2
    # deterministic, and a seeded subset of questions
    again, _ = R.evaluate(model, tok, micro_world, stores[0.0], config)
    pd.testing.assert_frame_equal(answers, again)
    sub, sub_summary = R.evaluate(model, tok, micro_world, stores[0.0], dataclasses.replace(config, max_questions=10))
    assert sub["item"].nunique() == 10 and (sub_summary[sub_summary["measure"] == "accuracy"]["n"] == 10).all()
    full = answers.set_index(["item", "method"])
    pd.testing.assert_frame_equal(sub.set_index(["item", "method"]), full.loc[sub.set_index(["item", "method"]).index])


def test_by_method_tidy_rows_against_scipy():
    """by_method's rows on a hand-made table: Wilson intervals, McNemar's exact p, and NaN with a reason where
    the verified chain answered nothing."""
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint
    rows = []
    for item, right in enumerate([1, 1, 0, 0, 0, 1, 0, 0]):
        rows.append((item, "direct", "e", "b", "color", "red", "red" if right else "blue", "", True, bool(right), 0.5,
                     0, 10, 20.0))
        rows.append((item, "verified", "e", "b", "color", "red", "", "", False, False, float("nan"), 3, 30, 60.0))
    s = R.by_method(pd.DataFrame(rows, columns=R.ANSWER_COLUMNS)).set_index(["strategy", "measure"])
    assert list(s.index) == [("direct", "accuracy"), ("direct", "selective_accuracy"), ("verified", "accuracy"),
                             ("verified", "selective_accuracy"), ("verified", "vs_direct")]
    direct = s.loc[("direct", "accuracy")]
    assert (direct["estimate"], direct["n"]) == (3 / 8, 8)
    assert (direct["ci_low"], direct["ci_high"]) == pytest.approx(proportion_confint(3, 8, method="wilson"))
    assert s.loc[("direct", "accuracy"), "tokens_per_question"] == 10 and s.loc[("verified", "accuracy"), "tokens"] == 240
    nothing = s.loc[("verified", "selective_accuracy")]
    assert np.isnan(nothing["estimate"]) and nothing["n"] == 0 and nothing["reason"] == "no question answered"
    vs = s.loc[("verified", "vs_direct")]
    assert vs["estimate"] == -3 / 8 and vs["n"] == 8
    assert vs["pvalue"] == pytest.approx(binomtest(0, 3).pvalue)      # 3 discordant pairs, all one way
    assert s.loc[("verified", "accuracy"), "coverage"] == 0 and s.loc[("verified", "vs_direct"), "abstention"] == 1
