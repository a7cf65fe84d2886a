"""RAG: the document store, BM25 and MiniLM retrieval, routing, and the RAG-SFT reader."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from dint.interventions import rag, retrieval
from dint.interventions.record import InterventionRecord
from dint.scoring import score

# fast settings for the micro model: 640 demonstrations, 480 optimiser steps, one thread
READER = rag.RAGSFTConfig(k=1, repeats=16, counterfactual_share=0.75, epochs=12, batch_size=16, lr=5e-3,
                          threads=1)


def _argmax_answers(model, tok, P):
    """The most probable candidate per row of P (exact scoring over its candidate set)."""
    s = score(model, tok, P["prompt"], [[" " + c for c in cs] for cs in P["candidates"]])
    best = s.loc[s.groupby("item")["p_set"].idxmax()].sort_values("item")
    return best["answer"].str[1:].to_numpy()


def _heldout(world):
    return world.prompts("qa", world.facts[world.facts["split"] == "heldout"])


@pytest.fixture(scope="module")
def stores(micro_world):
    return {"clean": retrieval.build_store(micro_world, retrieval.StoreConfig()),
            "stale": retrieval.build_store(micro_world, retrieval.StoreConfig(stale_share=1.0))}


@pytest.fixture(scope="module")
def reader(micro_world, micro_model, stores):
    model, tok, _ = micro_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    trained, record = rag.train_reader(model, tok, micro_world, stores["clean"], "bm25", READER, seed=0)
    rng_after = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    return trained, record, before, rng_before, rng_after


# -- configs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    ({"stale_share": -0.1}, "stale_share"), ({"stale_share": 1.5}, "stale_share"),
    ({"docs_per_fact": 0}, "docs_per_fact"), ({"docs_per_fact": 9}, "docs_per_fact"),
    ({"misconception": 1}, "misconception")])
def test_store_config_iv(kwargs, name):
    with pytest.raises(ValueError, match=name):
        retrieval.StoreConfig(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"k": 0}, "k"), ({"repeats": 0}, "repeats"), ({"counterfactual_share": 1.5}, "counterfactual_share"),
    ({"lr": 0.0}, "lr"), ({"warmup": 1.0}, "warmup"), ({"scheduler": "step"}, "scheduler"),
    ({"epochs": 2.5}, "epochs"), ({"threads": -1}, "threads"), ({"weight_decay": -1.0}, "weight_decay")])
def test_rag_sft_config_iv(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rag.RAGSFTConfig(**kwargs)


# -- the store --------------------------------------------------------------------------------------

def test_build_store(micro_world):
    w = micro_world
    store = retrieval.build_store(w, retrieval.StoreConfig(stale_share=0.3, docs_per_fact=2), seed=1)
    T = store.table
    assert list(T.columns) == ["doc", "fact", "entity", "relation", "template", "value", "is_true", "text"]
    assert len(store) == 2 * len(w.facts) and (T["doc"].to_numpy() == np.arange(len(T))).all()
    assert (~T["is_true"]).sum() == round(0.3 * len(T))
    truth = w.facts.set_index("fact")
    assert (T["is_true"] == (T["value"] == truth.loc[T["fact"], "value"].to_numpy())).all()
    stale = T[~T["is_true"]].join(truth[["type", "misconception"]], on="fact")
    contested = stale[stale["type"] == "contested"]
    assert (contested["value"] == contested["misconception"]).all()
    assert (T.groupby("fact")["template"].apply(list) == pd.Series([[0, 1]] * len(w.facts))).all()
    # only the world's words, and the canonical statement for template 0
    vocab = set(w.vocabulary())
    assert all(set(t.split()) <= vocab for t in store.texts)
    first = T[T["template"] == 0]
    assert first["text"].iloc[0] == w.relation(first["relation"].iloc[0]).statement(first["entity"].iloc[0],
                                                                                   first["value"].iloc[0])
    # deterministic, and nested in the stale share (paired stores)
    again = retrieval.build_store(w, retrieval.StoreConfig(stale_share=0.3, docs_per_fact=2), seed=1)
    assert again.fingerprint == store.fingerprint
    more = retrieval.build_store(w, retrieval.StoreConfig(stale_share=0.6, docs_per_fact=2), seed=1).table
    assert (more["is_true"] <= T["is_true"]).all() and (~more["is_true"]).sum() == round(0.6 * len(T))
    assert (more.loc[~T["is_true"], "value"] == T.loc[~T["is_true"], "value"]).all()
    assert retrieval.build_store(w, retrieval.StoreConfig(), seed=1).table["is_true"].all()
    with pytest.raises(TypeError, match="config"):
        retrieval.build_store(w, {"stale_share": 0.1})


# -- retrieval --------------------------------------------------------------------------------------

def test_bm25_against_rank_bm25(stores):
    retriever = retrieval.BM25Retriever(stores["clean"])
    queries = ["who is the mentor of x ?", stores["clean"].texts[3], "what pet does it keep ? the pet"]
    ours = retriever.scores(queries)
    theirs = np.array([retriever.bm25.get_scores(retrieval.analyze(q)) for q in queries])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_bm25_retrieves_own_document(micro_world, stores):
    store = stores["clean"]
    retriever = retrieval.BM25Retriever(store)
    P = micro_world.prompts("qa")
    top = np.array([d[0] for d in retriever.retrieve([rag.question(p) for p in P["prompt"]], k=1)])
    hit = store.table["fact"].to_numpy()[top] == P["fact"].to_numpy()
    by_relation = pd.Series(hit).groupby(micro_world.facts["relation"].to_numpy()).mean()
    # questions that share words with the statement find it; "where does X live ?" shares only the
    # name with "the home of X is ..." — BM25's vocabulary mismatch, left visible on purpose
    assert hit.mean() >= 0.75
    assert (by_relation.drop("home") == 1.0).all()
    S = micro_world.prompts("statement")
    top = [d[0] for d in retriever.retrieve(S["prompt"], k=1)]
    assert (store.table["fact"].to_numpy()[top] == S["fact"].to_numpy()).mean() >= 0.95
    assert retriever.retrieve(P["prompt"][:5], k=3) == retriever.retrieve(P["prompt"][:5], k=3)
    assert all(len(d) == 3 for d in retriever.retrieve(P["prompt"][:5], k=3))
    assert retriever.cost["queries"] == len(P) + len(S) + 15
    with pytest.raises(ValueError, match="k="):
        retriever.retrieve(["x"], k=0)


@pytest.mark.slow
def test_embedding_retriever_offline(micro_world, stores, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = stores["clean"]
    retriever = retrieval.EmbeddingRetriever(store)
    P = micro_world.prompts("qa")
    queries = [rag.question(p) for p in P["prompt"]]
    ids = retriever.retrieve(queries, k=2)
    hit = store.table["fact"].to_numpy()[[d[0] for d in ids]] == P["fact"].to_numpy()
    home = (micro_world.facts["relation"] == "home").to_numpy()
    # semantic matching finds "the home of X" for "where does X live ?", which BM25 cannot
    assert hit.mean() >= 0.85 and hit[home].mean() >= 0.5
    assert retriever.retrieve(queries, k=2) == ids
    assert retriever.cost["index_flops"] > 0 and retriever.cost["flops"] > 0
    again = retrieval.EmbeddingRetriever(store)                   # embeddings cached per store
    assert again._docs is retriever._docs and again.encoder is retriever.encoder
    routed = rag.rag_prompts(P, store, retriever, k=1)
    assert routed["hit"].mean() == hit.mean()


def test_missing_package_named():
    with pytest.raises(ModuleNotFoundError, match="'no-such-package'.*pip install no-such-package"):
        retrieval._require("no_such_module_dint", "no-such-package", "install it with `pip install no-such-package`")


# -- routing ----------------------------------------------------------------------------------------

def test_rag_prompts(micro_world, micro_model, stores):
    _, tok, _ = micro_model
    H = _heldout(micro_world)
    clean, stale = stores["clean"], stores["stale"]
    R = rag.rag_prompts(H, clean, retrieval.BM25Retriever(clean), k=1)
    assert {"question", "docs", "context", "hit", "has_true", "has_stale", "context_value",
            "candidates", "target"} <= set(R.columns)
    row = R.iloc[0]
    assert row["prompt"] == f"{clean.texts[row['docs'][0]]} {H['prompt'].iloc[0]}"
    assert row["question"] == H["prompt"].iloc[0]
    assert (R["has_true"] == R["hit"]).all() and not R["has_stale"].any()
    assert (R.loc[R["hit"], "context_value"] == R.loc[R["hit"], "target"]).all()
    ids = tok(R["prompt"].tolist())["input_ids"]
    assert not any(tok.unk_token_id in row for row in ids)       # only the world's words
    S = rag.rag_prompts(H, stale, "bm25", k=2)
    assert (S["has_stale"] == S["hit"]).all() and not S["has_true"].any()
    assert (S.loc[S["hit"], "context_value"] != S.loc[S["hit"], "target"]).all()
    assert all(len(d) == 2 for d in S["docs"])
    with pytest.raises(ValueError, match="another store"):
        rag.rag_prompts(H, stale, retrieval.BM25Retriever(clean))
    with pytest.raises(ValueError, match="k="):
        rag.rag_prompts(H, clean, "bm25", k=0)
    with pytest.raises(ValueError, match="prompts_df"):
        rag.rag_prompts(H.drop(columns="fact"), clean, "bm25")
    with pytest.raises(ValueError, match="retriever"):
        rag.rag_prompts(H, clean, "tfidf")


def test_demonstrations(micro_world, stores):
    cfg = rag.RAGSFTConfig(repeats=4, counterfactual_share=0.5)
    D = rag.demonstrations(micro_world, stores["clean"], "bm25", cfg, seed=2)
    train = micro_world.facts[micro_world.facts["split"] == "train"]
    assert len(D) == 4 * len(train) and set(D["fact"]) == set(train["fact"])
    assert 0.3 < D["counterfactual"].mean() < 0.7
    truth = micro_world.facts.set_index("fact")["value"]
    label = D["completion"].str[1:]
    # labels follow the context: counterfactual labels disagree with the truth and appear in the context
    assert (label[D["counterfactual"]] != truth[D.loc[D["counterfactual"], "fact"]].to_numpy()).all()
    assert all(f" {v} ." in p for v, p in zip(label[D["counterfactual"]], D.loc[D["counterfactual"], "prompt"]))
    assert (label[~D["counterfactual"]] == truth[D.loc[~D["counterfactual"], "fact"]].to_numpy()).all()
    pd.testing.assert_frame_equal(D, rag.demonstrations(micro_world, stores["clean"], "bm25", cfg, seed=2))


# -- the reader -------------------------------------------------------------------------------------

def test_train_reader_record(reader, micro_model):
    trained, record, before, rng_before, rng_after = reader
    model, tok, _ = micro_model
    assert isinstance(record, InterventionRecord) and record.method == "rag-sft"
    assert record.steps == 12 * 40 and record.seed == 0 and record.config["k"] == 1
    assert record.tokens > 0 and record.train_flops == 6.0 * record.n_params * record.tokens
    assert record.wall_time > 0 and record.trainable_params > record.n_params
    assert record.loss_last < record.loss_first
    ex = record.extra
    assert ex["demonstrations"] == 640 and 0 < ex["counterfactual"] < 640
    assert ex["retrieval"]["retriever"] == "bm25" and ex["retrieval"]["queries"] == 40
    assert ex["retrieval"]["flops"] > 0 and ex["store"]["docs"] == 80
    # the input model is unchanged, the reader is a different object, global RNG states kept
    assert trained is not model and "forward" not in vars(trained) and not trained.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not all(torch.equal(v, trained.state_dict()[k]) for k, v in before.items())
    assert torch.equal(rng_before[0], rng_after[0]) and (rng_before[1] == rng_after[1]).all()
    with pytest.raises(TypeError, match="config"):
        rag.train_reader(model, tok, None, None, "bm25", {"k": 1})


def test_reader_routes_answers(reader, micro_world, micro_model, stores):
    """Held-out facts: context raises accuracy; a stale store makes the answers follow it."""
    trained, *_ = reader
    base, tok, _ = micro_model
    H = _heldout(micro_world)
    target = H["target"].to_numpy()
    acc_base = (_argmax_answers(base, tok, H) == target).mean()
    acc_noctx = (_argmax_answers(trained, tok, H) == target).mean()
    C = rag.rag_prompts(H, stores["clean"], "bm25")
    acc_clean = (_argmax_answers(trained, tok, C) == target).mean()
    S = rag.rag_prompts(H, stores["stale"], "bm25")
    ans = _argmax_answers(trained, tok, S)
    follow = (ans == S["context_value"].to_numpy())[S["hit"].to_numpy()].mean()
    acc_stale = (ans == target).mean()
    assert acc_clean >= acc_noctx + 0.4 and acc_clean >= acc_base + 0.4
    assert acc_clean >= 0.8 * C["hit"].mean()                     # nearly every retrieved fact is read
    assert follow >= 0.8 and acc_stale <= acc_noctx + 0.05


def test_policy_and_run(reader, micro_world, micro_model, stores):
    trained, *_ = reader
    base, tok, _ = micro_model
    H = _heldout(micro_world)
    policy = rag.RAGPolicy(trained, tok, stores["clean"], retrieval.BM25Retriever(stores["clean"]), k=1)
    table = policy.score(H)
    assert len(table) == H["candidates"].map(len).sum()
    best = table.loc[table.groupby("item")["p_set"].idxmax()].sort_values("item")["answer"].str[1:]
    np.testing.assert_array_equal(best.to_numpy(), _argmax_answers(trained, tok, policy.prompts(H)))
    stale = policy.with_store(stores["stale"])
    assert stale.retriever.store is stores["stale"] and stale.prompts(H)["has_stale"].any()
    # run without reader training: the base model reads the context as it is; nothing is trained
    pol, record = rag.run(base, tok, micro_world, rag.RAGSFTConfig(k=2),
                          store_config=retrieval.StoreConfig(stale_share=0.5), train=False, seed=0)
    assert pol.model is base and pol.k == 2 and record.method == "rag" and record.train_flops == 0
    assert record.extra["deployed_store"]["stale_share"] == 0.5 and record.extra["retriever"] == "bm25"
    assert (~pol.store.table["is_true"]).mean() == 0.5
    with pytest.raises(ValueError, match="retriever"):
        rag.run(base, tok, micro_world, retriever="tfidf")


def test_run_trains_on_clean_store_deterministically(micro_world, micro_model):
    base, tok, _ = micro_model
    cfg = rag.RAGSFTConfig(repeats=1, epochs=1, threads=1)
    runs = [rag.run(base, tok, micro_world, cfg, store_config=retrieval.StoreConfig(stale_share=0.5), seed=4)
            for _ in range(2)]
    (p1, r1), (p2, r2) = runs
    assert r1.method == "rag-sft" and r1.steps == 3 and r1.extra["store"]["stale_share"] == 0.0
    assert r1.extra["deployed_store"]["stale_share"] == 0.5 and p1.retriever.store is p1.store
    assert p1.model is not base and r1.tokens == r2.tokens and r1.loss_last == r2.loss_last
    for k, v in p1.model.state_dict().items():
        assert torch.equal(v, p2.model.state_dict()[k]), k


def test_counterfactual_contexts_teach_reading(reader, micro_world, micro_model, stores):
    """Without counterfactual contexts the reader memorises the train facts and ignores the context."""
    trained, *_ = reader
    base, tok, _ = micro_model
    memoriser, _ = rag.train_reader(base, tok, micro_world, stores["clean"], "bm25",
                                    dataclasses.replace(READER, counterfactual_share=0.0), seed=0)
    H = _heldout(micro_world)
    C = rag.rag_prompts(H, stores["clean"], "bm25")
    acc = {name: (_argmax_answers(m, tok, C) == H["target"].to_numpy()).mean()
           for name, m in (("reader", trained), ("memoriser", memoriser))}
    T = micro_world.prompts("qa", micro_world.facts[micro_world.facts["split"] == "train"])
    recall = (_argmax_answers(memoriser, tok, T) == T["target"].to_numpy()).mean()   # no context
    assert acc["memoriser"] <= acc["reader"] - 0.4 and recall >= 0.25
