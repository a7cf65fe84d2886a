"""Exact answer distributions: teacher-forced log-likelihood of every candidate answer.

For a prompt with K candidate continuations, a naive scorer runs K forward passes over
prompt + candidate. Here each prompt is computed once and shared by its candidates: the prompt
and all candidates are packed into one sequence, and a tree-shaped attention mask lets every
candidate token see the prompt and the earlier tokens of its own candidate only, with position
ids restarting after the prompt for each candidate. The logits are those of K separate passes;
the compute is one pass over prompt + sum of candidate lengths. Logits are projected onto the
vocabulary only where a candidate token is predicted.

Tokenisation at the prompt/answer boundary follows lm-evaluation-harness (trailing spaces of the
context move to the continuation; the continuation's tokens are those of ``encode(context +
continuation)`` after ``len(encode(context))``; an empty context is the tokenizer's BOS, else EOS,
token, with the continuation encoded without special tokens), so that the numbers equal
`HFLM.loglikelihood`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import cache, console
from .lazy import LazyModule, inference_mode

torch = LazyModule("torch")   # imported on first use (dint.lazy)


@dataclass(frozen=True)
class ScoringConfig:
    """How requests are batched."""

    batch_tokens: int = 8192         # packed tokens (rows × longest row) per forward pass
    max_row_tokens: int = 1024       # longest packed row; a prompt with more candidates is split
    add_special_tokens: bool | None = None  # None: the tokenizer's default (a BOS for Gemma), as lm-eval

    def __post_init__(self):
        if self.batch_tokens < 1:
            raise ValueError(f"ScoringConfig.batch_tokens={self.batch_tokens}: must be >= 1")
        if self.max_row_tokens < 2:
            raise ValueError(f"ScoringConfig.max_row_tokens={self.max_row_tokens}: must be >= 2")


def encode_pair(tokenizer, context: str, continuation: str, *,
                add_special_tokens: bool | None = None) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as lm-evaluation-harness splits them."""
    return _encode(tokenizer, [(context, continuation)], add_special_tokens)[0]


def _splits_at_whitespace(tokenizer, kw) -> bool:
    """True when no token can span whitespace and nothing is appended after the text: a word-level
    or whitespace-pre-tokenised vocabulary with no normaliser, whose post-processor adds at most a
    prefix. Then a continuation that starts with whitespace has the same ids alone as inside
    ``context + continuation``, and is tokenised once rather than once per request."""
    b = getattr(tokenizer, "backend_tokenizer", None)
    if b is None or b.normalizer is not None or type(b.pre_tokenizer).__name__ not in ("WhitespaceSplit", "Whitespace"):
        return False
    plain = b.encode("a b", add_special_tokens=False).ids
    full = b.encode("a b", add_special_tokens=kw.get("add_special_tokens", True)).ids
    return full[len(full) - len(plain):] == plain


def _encode(tokenizer, requests, add_special_tokens):
    """[(context ids, continuation ids)] for (context, continuation) pairs, batch-tokenised."""
    kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
    pairs = []
    for context, continuation in requests:
        n_spaces = len(context) - len(context.rstrip())   # trailing spaces belong to the answer
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        pairs.append((context, continuation))
    contexts = sorted({c for c, _ in pairs if c})
    ctx_ids = dict(zip(contexts, _batch_ids(tokenizer, contexts, kw))) if contexts else {}
    alone = _splits_at_whitespace(tokenizer, kw)
    split = [bool(c) and alone and a[:1].isspace() for c, a in pairs]
    conts = sorted({a for (c, a), s in zip(pairs, split) if s})
    cont_ids = dict(zip(conts, _batch_ids(tokenizer, conts, {"add_special_tokens": False}))) if conts else {}
    whole_at = [i for i, s in enumerate(split) if not s]
    wholes = dict(zip(whole_at, _batch_ids(tokenizer, [pairs[i][0] + pairs[i][1] for i in whole_at], kw)))
    out = []
    for i, (context, continuation) in enumerate(pairs):
        if context == "":
            out.append(_empty_context(tokenizer, continuation))
        elif split[i]:
            out.append((list(ctx_ids[context]), list(cont_ids[continuation])))
        else:
            ctx = ctx_ids[context]
            out.append((list(ctx), list(wholes[i][len(ctx):])))
    return out


def _empty_context(tokenizer, continuation):
    """(context ids, continuation ids) for an empty context, as lm-evaluation-harness's
    ``LM.loglikelihood``: the continuation is encoded without special tokens and conditioned on the
    prefix token (BOS, else EOS); a continuation that already starts with that token is split after
    it. Encoding it with the tokenizer's BOS would score P(BOS | BOS) as part of the answer."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        raise ValueError("a request has an empty context, which is conditioned on the tokenizer's BOS (or EOS) "
                         "token, but the tokenizer has neither: give every request a non-empty context, or set "
                         "tokenizer.bos_token")
    cont = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if cont[:1] == [prefix]:
        return cont[:1], cont[1:]
    return [prefix], cont


def _batch_ids(tokenizer, texts, kw):
    """Token ids of many texts; straight through the Rust tokenizer when there is one (same ids)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer(texts, **kw)["input_ids"]
    add = kw.get("add_special_tokens", True)
    return [e.ids for e in backend.encode_batch(texts, add_special_tokens=add)]


def _rows(tokenizer, requests, add_special_tokens, max_row_tokens):
    """Packed rows: [[(context ids, [(request index, cont ids)])]], several blocks per row.

    A block holds a context once plus, per candidate, the tokens that are fed as inputs (all but
    the last); a context with more candidates than fit in ``max_row_tokens`` spans several blocks.
    Short blocks share a row (with a block-diagonal mask), so little is spent on padding.
    """
    by_context: dict[tuple, list] = {}
    for i, (ctx, cont) in enumerate(_encode(tokenizer, requests, add_special_tokens)):
        if not cont:
            raise ValueError(f"requests[{i}]: continuation {requests[i][1]!r} encodes to no tokens")
        by_context.setdefault(tuple(ctx), []).append((i, cont))
    blocks = []
    for ctx, conts in by_context.items():
        block, length = [], len(ctx)
        for i, cont in conts:
            if block and length + len(cont) - 1 > max_row_tokens:
                blocks.append((list(ctx), block))
                block, length = [], len(ctx)
            block.append((i, cont))
            length += len(cont) - 1
        blocks.append((list(ctx), block))
    blocks.sort(key=_width, reverse=True)
    rows, widths = [], []
    for block in blocks:           # first fit, longest blocks first
        w = _width(block)
        for r, used in enumerate(widths):
            if used + w <= max_row_tokens:
                rows[r].append(block)
                widths[r] += w
                break
        else:
            rows.append([block])
            widths.append(w)
    return rows


# The packed rows of the last few request sets: a process that scores several models on the same
# prompts and candidates with the same tokenizer (a family of stacks, a grid of SFT runs) packs them once.
_PACKED: OrderedDict = OrderedDict()
_PACKED_SIZE = 4


def _packed_rows(tokenizer, requests, add_special_tokens, max_row_tokens):
    """`_rows`, memoised on the requests and the tokenizer's full definition (vocabulary, merges,
    pre- and post-processing, special tokens), so that a memo never serves another tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:                   # a slow tokenizer: no definition to key on
        return _rows(tokenizer, requests, add_special_tokens, max_row_tokens)
    key = (cache.fingerprint_tokenizer(tokenizer), add_special_tokens, max_row_tokens, tuple(map(tuple, requests)))
    if key in _PACKED:
        _PACKED.move_to_end(key)
    else:
        _PACKED[key] = _rows(tokenizer, requests, add_special_tokens, max_row_tokens)
        while len(_PACKED) > _PACKED_SIZE:
            _PACKED.popitem(last=False)
    return list(_PACKED[key])             # the caller reorders the rows, never a row itself


def _width(block):
    """Upper bound on a block's packed length (context plus non-final candidate tokens)."""
    return len(block[0]) + sum(len(c) - 1 for _, c in block[1])


def _trie(row):
    """Prefix tree of a row's candidates, without their last tokens (never an input).

    Returns node tokens, node parents (-1: the context), node depths, and per candidate token
    its (request, predicting node or -1 for the context's last token, target id).
    """
    index: dict[tuple, int] = {}
    tokens, parent, depth, preds = [], [], [], []
    for i, cont in row:
        prev = -1
        for j, t in enumerate(cont):
            preds.append((i, prev, t))
            if j == len(cont) - 1:
                break
            key = tuple(cont[: j + 1])
            if key not in index:
                index[key] = len(tokens)
                tokens.append(t)
                parent.append(prev)
                depth.append(j)
            prev = index[key]
    return tokens, parent, depth, preds


def _pack(batch, pad_id):
    """Tensors for one batch of rows; a row is a sequence of blocks, each a context followed by
    its candidates' prefix tree.

    Returns input_ids (B, T), position_ids (B, T), a boolean attention mask (B, 1, T, T) in which
    a context token sees its block's earlier context and a tree node sees its block's context and
    its own ancestors, and the prediction table: per candidate token, its batch row, the position
    whose logits predict it, its id and its request index.
    """
    laid = [[(ctx, _trie(block)) for ctx, block in row] for row in batch]
    width = max(sum(len(ctx) + len(t[0]) for ctx, t in row) for row in laid)
    B = len(batch)
    ids = np.full((B, width), pad_id, dtype=np.int64)
    pos = np.zeros((B, width), dtype=np.int64)
    mask = np.zeros((B, width, width), dtype=bool)
    pred_row, pred_pos, target, request = [], [], [], []
    for b, row in enumerate(laid):
        s = 0                                     # where the block starts in the row
        for ctx, (tokens, parent, depth, preds) in row:
            L, N = len(ctx), len(tokens)
            ids[b, s:s + L], ids[b, s + L:s + L + N] = ctx, tokens
            pos[b, s:s + L], pos[b, s + L:s + L + N] = np.arange(L), L + np.asarray(depth, dtype=np.int64)
            mask[b, s:s + L + N, s:s + L] = np.tril(np.ones((L + N, L), dtype=bool))
            n0 = s + L                            # first tree node
            for k, par in enumerate(parent):      # parents precede children: copy, then add self
                if par >= 0:
                    mask[b, n0 + k, n0:n0 + N] = mask[b, n0 + par, n0:n0 + N]
                mask[b, n0 + k, n0 + k] = True
            for i, node, t in preds:
                pred_row.append(b)
                pred_pos.append(s + L - 1 if node < 0 else n0 + node)
                target.append(t)
                request.append(i)
            s += L + N
    mask |= np.eye(width, dtype=bool)     # pad positions attend to themselves: no all-masked rows
    table = tuple(torch.tensor(x) for x in (pred_row, pred_pos, target, request))
    return torch.from_numpy(ids), torch.from_numpy(pos), torch.from_numpy(mask)[:, None], table


@inference_mode
def loglikelihood(model, tokenizer, requests, *, config: ScoringConfig = ScoringConfig(),
                  progress: bool = False) -> np.ndarray:
    """Log-probability of each continuation given its context, prompts computed once.

    Parameters
    ----------
    model : a `transformers` causal LM (any device)
    tokenizer : its tokenizer
    requests : sequence of (context, continuation) string pairs; requests that share a context
        share its forward pass. An empty context (or one of whitespace only, whose spaces move to
        the continuation) conditions on the tokenizer's BOS token, or its EOS token when it has no
        BOS, as lm-evaluation-harness does.

    Returns
    -------
    logp : (n_requests,) float64 array, natural log of P(continuation | context), as
        lm-evaluation-harness's ``HFLM.loglikelihood`` defines it.
    """
    requests = list(requests)
    if not requests:
        raise ValueError("requests is empty: pass (context, continuation) pairs")
    for i, r in enumerate(requests):
        if len(r) != 2 or not all(isinstance(s, str) for s in r):
            raise ValueError(f"requests[{i}] must be a (context, continuation) pair of strings")
    rows = _packed_rows(tokenizer, requests, config.add_special_tokens, config.max_row_tokens)
    rows.sort(key=lambda row: sum(map(_width, row)))  # similar lengths batch together
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    out = np.zeros(len(requests))
    device = model.device
    bar = tqdm(total=len(requests), desc="score", disable=not progress, mininterval=1.0,
               file=console.stream())
    start = 0
    while start < len(rows):
        end = start + 1
        while end < len(rows):
            if (end + 1 - start) * sum(map(_width, rows[end])) > config.batch_tokens:
                break
            end += 1
        batch = rows[start:end]
        ids, pos, mask, (prow, ppos, target, request) = _pack(batch, pad)
        keep = torch.zeros(ids.shape, dtype=torch.bool)
        keep[prow, ppos] = True
        logits = model(input_ids=ids.to(device), position_ids=pos.to(device), attention_mask=mask.to(device),
                       logits_to_keep=keep.to(device), use_cache=False).logits
        logits = logits.reshape(-1, logits.shape[-1])                     # (n_kept, V), row-major order
        flat = (keep.flatten().cumsum(0) - 1).reshape(keep.shape)         # position -> index into kept
        logp = torch.log_softmax(logits.float(), dim=-1)
        tok_logp = logp[flat[prow, ppos].to(device), target.to(device)].double().cpu()
        np.add.at(out, request.numpy(), tok_logp.numpy())
        bar.update(sum(len(block[1]) for row in batch for block in row))
        start = end
    bar.close()
    model.train(was_training)
    return out


def score(model, tokenizer, prompts, candidates, *, config: ScoringConfig = ScoringConfig(),
          progress: bool = False) -> pd.DataFrame:
    """Exact answer distribution over each prompt's candidate set.

    Parameters
    ----------
    prompts : sequence of n prompt strings
    candidates : sequence of n sequences of candidate answers (strings, scored as the prompt's
        continuation; include the leading space, or let the prompt end without one and the answer
        start with one — e.g. prompt ``"the home of X is"``, answer ``" kessa vale"``).

    Returns
    -------
    Tidy DataFrame, one row per (item, candidate): ``item``, ``candidate`` (index in the set),
    ``answer``, ``logp`` (log P(answer | prompt)), ``p`` (its probability), ``p_set`` (renormalised
    over the candidate set) and ``mass_outside`` (1 − Σ p over the item's set; exact when no
    candidate's tokens are a prefix of another's).
    """
    prompts = list(prompts)
    candidates = [list(c) for c in candidates]
    if len(prompts) != len(candidates):
        raise ValueError(f"prompts has {len(prompts)} items but candidates has {len(candidates)}; "
                         "give one candidate list per prompt")
    for i, c in enumerate(candidates):
        if not c:
            raise ValueError(f"candidates[{i}] is empty: every prompt needs at least one candidate")
    item = np.repeat(np.arange(len(prompts)), [len(c) for c in candidates])
    cand = np.concatenate([np.arange(len(c)) for c in candidates])
    answers = [a for c in candidates for a in c]
    requests = [(prompts[i], a) for i, a in zip(item, answers)]
    logp = loglikelihood(model, tokenizer, requests, config=config, progress=progress)
    df = pd.DataFrame({"item": item, "candidate": cand, "answer": answers, "logp": logp})
    df["p"] = np.exp(df["logp"])
    lse = df.groupby("item")["logp"].transform(lambda x: np.logaddexp.reduce(x.to_numpy()))
    df["p_set"] = np.exp(df["logp"] - lse)
    df["mass_outside"] = (1.0 - df.groupby("item")["p"].transform("sum")).clip(lower=0.0)
    return df
