"""Retrieval-augmented generation as routing: a document store, two retrievers and a trained reader.

RAG does not install facts in a model; it changes what the model is conditioned on. The store
holds one statement per fact (optionally stale: a wrong value, for contested facts the popular
misconception), a retriever routes each question to a few documents, and a reader — the base
model fine-tuned to answer from context — turns the routed text into an answer. Where the store
is right, accuracy rises on facts the model never learnt; where it is stale, the answer follows
the stale document. Both are the same intervention: a shift of the conditioning, not of truth.

The reader is taught to *read*, not to know: every demonstration is labelled with the value that
its context states, and a share of demonstrations carry a counterfactual context (the fact's
document rewritten to state a random other value), so that the label disagrees with whatever the
model memorised and only copying from the context lowers the loss (Longpre et al., 2021, "Entity-
Based Knowledge Conflicts in Question Answering", EMNLP). Training uses the train facts only;
the effect is measured on held-out facts.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ..models import n_params
from ..scoring import ScoringConfig, score
from ..world import World
from .record import InterventionRecord, config_dict, stopwatch, train_flops
from .retrieval import RETRIEVERS, DocumentStore, StoreConfig, build_store, check_k, make_retriever
from .session import quiet, session
from ..stats.checks import check_int

# -- routing ----------------------------------------------------------------------------------------

def question(prompt: str) -> str:
    """The retrieval query of a prompt: a QA prompt's question, or a statement prompt as it is."""
    p = prompt.strip()
    if p.startswith("Q :") and p.endswith("A :"):
        return p[3:-3].strip()
    return p


def rag_prompts(prompts_df: pd.DataFrame, store: DocumentStore, retriever, *, k: int = 1) -> pd.DataFrame:
    """Prompts with their retrieved documents prepended: ``"<doc> ... <doc> Q : <question> A :"``.

    Documents come best first; the format uses only the world's words, so the word-level model can
    read it. Retrieval sees only the question text; the ``fact`` column only labels the result.

    Parameters
    ----------
    prompts_df : DataFrame with ``fact`` and ``prompt`` (e.g. ``world.prompts("qa")``); other
        columns (``candidates``, ``target``, ...) are kept.
    store : DocumentStore
    retriever : a retriever over ``store`` (e.g. ``BM25Retriever(store)``) or a name in ``RETRIEVERS``.
    k : documents per prompt.

    Returns
    -------
    DataFrame: ``prompts_df``'s columns with ``prompt`` replaced by the context-augmented prompt,
    plus ``question`` (the original prompt), ``docs`` (tuple of ids, best first), ``context``,
    ``hit`` (a document about the fact was retrieved), ``has_true`` / ``has_stale`` (the context
    holds a true / a stale statement of the fact) and ``context_value`` (the value that the
    best-ranked document about the fact states, "" when none was retrieved).
    """
    missing = {"fact", "prompt"} - set(getattr(prompts_df, "columns", ()))
    if missing:
        raise ValueError(f"prompts_df lacks columns {sorted(missing)}: pass world.prompts(form)")
    if not isinstance(store, DocumentStore):
        raise TypeError(f"store must be a DocumentStore, got {type(store).__name__}")
    retriever = make_retriever(retriever, store)
    k = check_k(k, store)
    out = prompts_df.reset_index(drop=True).copy()
    ids = retriever.retrieve([question(p) for p in out["prompt"]], k) if len(out) else []
    T = store.table
    doc_fact, is_true, value, text = (T[c].to_numpy() for c in ("fact", "is_true", "value", "text"))
    cols = {c: [] for c in ("docs", "context", "hit", "has_true", "has_stale", "context_value")}
    for fact, docs in zip(out["fact"], ids):
        about = [d for d in docs if doc_fact[d] == fact]
        cols["docs"].append(tuple(int(d) for d in docs))
        cols["context"].append(" ".join(text[d] for d in docs))
        cols["hit"].append(bool(about))
        cols["has_true"].append(any(is_true[d] for d in about))
        cols["has_stale"].append(any(not is_true[d] for d in about))
        cols["context_value"].append(value[about[0]] if about else "")
    out["question"] = out["prompt"]
    for c, v in cols.items():
        out[c] = v
    out["prompt"] = [f"{c} {q}" for c, q in zip(out["context"], out["question"])]
    return out


# -- the reader: RAG-SFT --------------------------------------------------------------------------

@dataclass(frozen=True)
class RAGSFTConfig:
    """Fine-tuning the base model to answer from retrieved context (TRL ``SFTTrainer``)."""

    k: int = 1                          # documents retrieved per question
    repeats: int = 8                    # demonstrations per train fact, each with its own counterfactual draw
    counterfactual_share: float = 0.75  # share of demonstrations whose context states a random other value
    epochs: int = 10                    # passes over the demonstrations
    batch_size: int = 16                # demonstrations per optimiser step
    lr: float = 3e-3                    # peak AdamW learning rate
    warmup: float = 0.05                # share of steps spent warming up (linear)
    scheduler: str = "cosine"           # transformers learning-rate schedule after warm-up
    weight_decay: float = 0.0           # AdamW decoupled weight decay
    threads: int = 0                    # torch threads while training (0: leave torch's default)

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"RAGSFTConfig.{name}={getattr(self, name)!r}: {why}")

        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("k", "repeats", "epochs", "batch_size", "threads"):
                least = 0 if f.name == "threads" else 1
                check_int(f"{type(self).__name__}.{f.name}", v, least)
            elif f.name == "scheduler":
                if v not in ("cosine", "linear", "constant_with_warmup"):
                    bad(f.name, "choose 'cosine', 'linear' or 'constant_with_warmup'")
            elif not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                bad(f.name, "must be a finite number")
        if not 0.0 <= self.counterfactual_share <= 1.0:
            bad("counterfactual_share", "must lie in [0, 1]")
        if not self.lr > 0:
            bad("lr", "must be positive")
        if not 0.0 <= self.warmup < 1.0:
            bad("warmup", "must lie in [0, 1)")
        if self.weight_decay < 0:
            bad("weight_decay", "must be >= 0")


def demonstrations(world: World, store: DocumentStore, retriever, config: RAGSFTConfig = RAGSFTConfig(), *,
                   seed: int = 0) -> pd.DataFrame:
    """RAG-SFT data: (retrieved context + QA prompt, answer) for the train facts.

    Each demonstration is labelled with what its context says: the value of the best-ranked
    document about the fact, or the true value when retrieval missed the fact. A share
    ``counterfactual_share`` of demonstrations is counterfactual: the fact's documents in the
    context (or, on a miss, the lowest-ranked document) are rewritten to state a value drawn
    uniformly from the relation's other values, and the label is that value.

    Returns
    -------
    DataFrame with ``fact``, ``prompt``, ``completion`` (the label with a leading space),
    ``counterfactual`` (bool) and ``hit`` (retrieval found the fact before any rewrite).
    """
    rng = np.random.default_rng(seed)
    facts = world.facts[world.facts["split"] == "train"]
    if facts.empty:
        raise ValueError("world has no train facts to build RAG-SFT demonstrations from")
    routed = rag_prompts(world.prompts("qa", facts), store, retriever, k=config.k)
    T = store.table
    rows = []
    for _ in range(config.repeats):
        for f, r in zip(facts.itertuples(), routed.itertuples()):
            docs = list(r.docs)
            texts = [T.at[d, "text"] for d in docs]
            label = r.context_value or f.value
            cf = bool(rng.random() < config.counterfactual_share)
            if cf:
                others = [v for v in world.values[f.relation] if v not in (f.value, f.entity)]
                label = others[rng.integers(len(others))]
                rel = world.relation(f.relation)
                about = [i for i, d in enumerate(docs) if T.at[d, "fact"] == f.fact]
                for i in about or [len(docs) - 1]:
                    t = T.at[docs[i], "template"] if about else 0
                    texts[i] = rel.templates[t].format(e=f.entity, v=label)
            rows.append((f.fact, f"{' '.join(texts)} {r.question}", f" {label}", cf, r.hit))
    return pd.DataFrame(rows, columns=["fact", "prompt", "completion", "counterfactual", "hit"])


def _check_fits(model, tokenizer, texts, k: int) -> None:
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id is not None and any(tokenizer.unk_token_id in row for row in ids):
        raise ValueError("a RAG prompt has words outside the tokenizer's vocabulary; build the tokenizer "
                         "from the world's vocabulary()")
    longest = max(map(len, ids)) + 1                                     # + eos
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if limit is not None and longest > limit:
        raise ValueError(f"k={k}: a context-augmented demonstration has {longest} tokens > the model's "
                         f"{limit} positions; retrieve fewer documents")


def train_reader(model, tokenizer, world: World, store: DocumentStore, retriever,
                 config: RAGSFTConfig = RAGSFTConfig(), *, seed: int = 0,
                 progress: bool = False) -> tuple[object, InterventionRecord]:
    """RAG-SFT: fine-tune a copy of ``model`` to answer QA prompts from retrieved context.

    TRL's ``SFTTrainer`` on prompt-completion data with completion-only loss; ``model`` is deep-
    copied and never changed, and the global random generators are left as they were.

    Parameters
    ----------
    model : a `transformers` causal LM (the base model)
    tokenizer : its tokenizer
    world : World, whose train facts give the demonstrations
    store : DocumentStore the demonstrations are retrieved from
    retriever : a retriever over ``store`` or a name in ``RETRIEVERS``
    config : RAGSFTConfig
    seed : int, the only source of randomness (counterfactual draws, initial order, batches).
    progress : show TRL's progress bar.

    Returns
    -------
    reader : the fine-tuned copy, in eval mode
    record : InterventionRecord, method "rag-sft"; ``extra`` holds the demonstration counts and
        the retrieval cost (``retrieval``: retriever, k, docs, queries, flops).
    """
    if not isinstance(config, RAGSFTConfig):
        raise TypeError(f"config must be a RAGSFTConfig, got {type(config).__name__}")
    import datasets
    from trl import SFTConfig, SFTTrainer

    retriever = make_retriever(retriever, store)
    before = dict(retriever.cost)
    with stopwatch() as elapsed:
        demos = demonstrations(world, store, retriever, config, seed=seed)
        _check_fits(model, tokenizer, demos["prompt"] + demos["completion"], config.k)
        reader = copy.deepcopy(model)
        reader.train()
        steps_per_epoch = math.ceil(len(demos) / config.batch_size)
        with tempfile.TemporaryDirectory() as out, session(progress, config.threads):
            args = SFTConfig(
                output_dir=out, report_to="none", save_strategy="no", seed=seed, data_seed=seed,
                num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
                learning_rate=config.lr, lr_scheduler_type=config.scheduler, warmup_steps=config.warmup,
                weight_decay=config.weight_decay, logging_steps=steps_per_epoch, disable_tqdm=not progress,
                bf16=False, fp16=False, activation_checkpointing=False, use_cpu=reader.device.type == "cpu",
                completion_only_loss=True, max_length=None, packing=False, dataloader_num_workers=0)
            data = datasets.Dataset.from_dict({"prompt": demos["prompt"].tolist(),
                                               "completion": demos["completion"].tolist()})
            trainer = SFTTrainer(model=reader, args=args, train_dataset=data, processing_class=tokenizer)
            quiet(trainer)
            trainer.train()
            tokens = config.epochs * sum(map(len, trainer.train_dataset["input_ids"]))
            steps = trainer.state.global_step
            losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        reader = trainer.accelerator.unwrap_model(trainer.model).eval()
        vars(reader).pop("forward", None)           # TRL patches a fused-LM-head forward onto the instance
        reader.config.use_cache = model.config.use_cache                 # the trainer turns the cache off
    record = InterventionRecord(
        method="rag-sft", config=config_dict(config), seed=seed, steps=int(steps), tokens=int(tokens),
        train_flops=train_flops(reader, tokens), inference_tokens=0, inference_flops=0.0,
        wall_time=elapsed(), n_params=n_params(reader),
        trainable_params=sum(p.numel() for p in reader.parameters() if p.requires_grad),
        loss_first=float(losses[0]) if losses else float("nan"),
        loss_last=float(losses[-1]) if losses else float("nan"),
        extra={"demonstrations": len(demos), "counterfactual": int(demos["counterfactual"].sum()),
               "train_hit_rate": float(demos.drop_duplicates("fact")["hit"].mean()),
               "store": {"docs": len(store), "stale_share": store.config.stale_share,
                         "fingerprint": store.fingerprint},
               "retrieval": _retrieval_cost(retriever, before, config.k)})
    return reader, record


def _retrieval_cost(retriever, before: dict, k: int) -> dict:
    return {"retriever": retriever.name, "k": k, "docs": len(retriever.store),
            "queries": retriever.cost["queries"] - before["queries"],
            "flops": retriever.cost["flops"] - before["flops"], "index_flops": retriever.cost["index_flops"]}


# -- the policy -----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RAGPolicy:
    """A reader with its store and retriever: scorers see it through its context-augmented prompts."""

    model: object
    tokenizer: object
    store: DocumentStore
    retriever: object
    k: int = 1

    def prompts(self, prompts_df: pd.DataFrame) -> pd.DataFrame:
        """``prompts_df`` routed through the store (see :func:`rag_prompts`)."""
        return rag_prompts(prompts_df, self.store, self.retriever, k=self.k)

    def with_store(self, store: DocumentStore) -> RAGPolicy:
        """The same reader and retriever kind over another store (e.g. a stale one)."""
        return replace(self, store=store, retriever=self.retriever.for_store(store))

    def score(self, prompts_df: pd.DataFrame, *, config: ScoringConfig | None = None,
              progress: bool = False) -> pd.DataFrame:
        """Exact answer distributions over each prompt's candidates (answers with a leading space).

        Returns :func:`dint.scoring.score`'s table; ``item`` indexes the rows of ``prompts_df``.
        """
        routed = self.prompts(prompts_df)
        _check_fits(self.model, self.tokenizer,
                    [f"{p} {max(cs, key=lambda c: len(c.split()))}" for p, cs in zip(routed["prompt"], routed["candidates"])],
                    self.k)
        return score(self.model, self.tokenizer, routed["prompt"],
                     [[" " + c for c in cs] for cs in routed["candidates"]], config=config or ScoringConfig(),
                     progress=progress)


def run(model, tokenizer, world: World, config: RAGSFTConfig = RAGSFTConfig(), *,
        store_config: StoreConfig | None = None, retriever="bm25", train: bool = True, seed: int = 0,
        progress: bool = False) -> tuple[RAGPolicy, InterventionRecord]:
    """RAG end to end: build the store, train the reader on a clean store, deploy on the configured one.

    The reader is trained on a clean store (``stale_share`` 0) with the same documents per fact,
    as a curated training set would be; staleness is a condition of deployment.

    Parameters
    ----------
    model, tokenizer : the base model
    world : World
    config : RAGSFTConfig
    store_config : StoreConfig of the deployed store (default: clean)
    retriever : a name in ``RETRIEVERS`` ("bm25", "minilm")
    train : False: no reader training, the base model reads the context as it is (method "rag")
    seed : int, the only source of randomness (store and training)

    Returns
    -------
    policy : RAGPolicy
    record : InterventionRecord
    """
    store_config = StoreConfig() if store_config is None else store_config
    if retriever not in RETRIEVERS:
        raise ValueError(f"retriever={retriever!r}: choose one of {sorted(RETRIEVERS)}")
    store = build_store(world, store_config, seed=seed)
    clean = store if store_config.stale_share == 0 else build_store(
        world, replace(store_config, stale_share=0.0), seed=seed)
    ret = make_retriever(retriever, clean)
    if train:
        reader, record = train_reader(model, tokenizer, world, clean, ret, config, seed=seed, progress=progress)
    else:
        with stopwatch() as elapsed:
            reader = model
        record = InterventionRecord(method="rag", config=config_dict(config), seed=seed, steps=0, tokens=0,
                                    train_flops=0.0, inference_tokens=0, inference_flops=0.0,
                                    wall_time=elapsed(), n_params=n_params(model), trainable_params=0)
    deployed = {"docs": len(store), "fingerprint": store.fingerprint, **config_dict(store_config)}
    record = replace(record, extra={**record.extra, "retriever": ret.name, "deployed_store": deployed})
    return RAGPolicy(reader, tokenizer, store, ret if store is clean else ret.for_store(store), config.k), record
