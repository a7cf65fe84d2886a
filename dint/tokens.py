"""The token-level shift of a post-trained model against its base (URIAL, Lin et al. 2023).

For each token a post-trained model decodes, the base's rank of that token under the same prefix (URIAL's
classes: ``unshifted``, rank 1; ``marginal``, rank 2-3; ``shifted``, beyond) and the full-vocabulary KL
(`token_shift_positions`). Each token also has a role (`answer_roles`): a token of the answer value whose choice
the candidates leave open, a forced continuation of a multi-word value, the labelers' closing, the stop, or text
after the answer, so that the shares (`shift_shares`) are of the answer's tokens and the rest is reported
apart. `token_shift` decodes and measures a whole prompt set. Distributions are natural log-probabilities, as in
`dint.divergence`.
"""
from dataclasses import dataclass, replace

import numpy as np

from .divergence import as_logprob, kl
from .stats.checks import check_int
from .stats.result import ConfidenceInterval

__all__ = ["ANSWER_ROLES", "SHIFT_CLASSES", "TokenShiftResult", "answer_roles", "shift_shares", "share_of_positions",
           "token_shift", "token_shift_positions"]

SHIFT_CLASSES = ("unshifted", "marginal", "shifted")
# what each decoded token is: a token of the answer value whose choice the candidates leave open, a forced
# continuation of the value, a closing marker right after it, the stop (eos), or anything else after the answer
ANSWER_ROLES = ("answer", "forced", "closing", "stop", "after")


def token_shift_positions(post_logp, base_logp, tokens):
    """URIAL's token classes and the full-vocabulary KL at each position of a decoded answer.

    Parameters
    ----------
    post_logp, base_logp : (T, V) arrays
        Next-token log-probabilities of the post-trained and the base model at the T positions
        of the post-trained model's output, each given the same prefix.
    tokens : (T,) int array
        The tokens the post-trained model emitted (its greedy choices).

    Returns
    -------
    dict of (T,) arrays: ``base_rank`` (1 + the number of tokens the base ranks strictly higher),
    ``shift`` ("unshifted": rank 1, "marginal": rank 2-3, "shifted": rank > 3), ``kl``
    (KL(post || base) over the whole vocabulary, not truncated to the top k), ``base_logp_token``
    and ``post_logp_token``.

    Notes
    -----
    Lin et al. (2023), "The unlocking spell on base LLMs" (URIAL), arXiv:2312.01552, §2.
    """
    post = as_logprob(post_logp, "post_logp")
    base = as_logprob(base_logp, "base_logp")
    tokens = np.asarray(tokens)
    if post.ndim != 2 or post.shape != base.shape:
        raise ValueError(f"post_logp and base_logp must be (T, V) arrays of one shape, got {post.shape} "
                         f"and {base.shape}")
    if tokens.shape != (post.shape[0],) or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be {post.shape[0]} integer token ids, one per position")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= post.shape[1]):
        raise ValueError(f"tokens must lie in [0, {post.shape[1]}) (the vocabulary)")
    rows = np.arange(len(tokens))
    b_tok = base[rows, tokens]
    rank = 1 + (base > b_tok[:, None]).sum(axis=1)
    shift = np.where(rank == 1, "unshifted", np.where(rank <= 3, "marginal", "shifted"))
    return {"base_rank": rank, "shift": shift, "kl": kl(post, base, axis=-1),
            "base_logp_token": b_tok, "post_logp_token": post[rows, tokens]}


def answer_roles(tokens, candidates=None, *, eos=None, closings=(), first_word: int = 1):
    """The role of each token of a decoded output: which tokens are the answer, and where it stops.

    The answer value is the longest candidate whose tokens begin the output; if none does, the output's
    first word (``first_word`` tokens). A token of the value is *forced* when every candidate that agrees
    with the value's tokens before it continues with that same token (the second word of the only
    two-word value that begins so): the candidates, not the model, chose it. After the value, one of
    ``closings`` may follow (e.g. a closing full stop); the first ``eos`` is the stop; every other token
    is *after* the answer.

    Parameters
    ----------
    tokens : (T,) int token ids of the output
    candidates : sequences of token ids, the candidate answer values as continuations of the prompt;
        None: no value to match, every token before the stop is an answer token (none forced)
    eos : the stop token's id (None: the output has no stop)
    closings : sequences of token ids that may close an answer before its stop
    first_word : tokens of the output's first word, the answer when no candidate begins the output

    Returns
    -------
    roles : (T,) array of `ANSWER_ROLES`
    matched : bool, a candidate begins the output
    """
    tokens = [int(t) for t in np.asarray(tokens).reshape(-1)]
    check_int("first_word", first_word, 0)
    end = tokens.index(eos) if eos is not None and eos in tokens else len(tokens)
    body = tuple(tokens[:end])
    roles = np.array(["after"] * len(tokens), dtype=object)
    if end < len(tokens):
        roles[end] = "stop"
    if candidates is None:
        roles[:end] = "answer"
        return roles.astype(str), False
    cands = [tuple(int(t) for t in c) for c in candidates if len(c)]
    hits = [c for c in cands if body[:len(c)] == c]
    span = max(map(len, hits)) if hits else min(first_word, end)
    roles[:span] = "answer"
    if hits:
        for j in range(span):
            following = {c[j] if len(c) > j else None for c in cands if c[:j] == body[:j]}
            if following == {body[j]}:
                roles[j] = "forced"
    for closing in sorted((tuple(int(t) for t in c) for c in closings), key=len, reverse=True):
        if span and closing and body[span:span + len(closing)] == closing:
            roles[span:span + len(closing)] = "closing"
            break
    return roles.astype(str), bool(hits)


def shift_shares(table, roles=("answer",), *, confidence_level: float = 0.95, n_resamples: int = 2000,
                 rng=0) -> dict:
    """Per class of `SHIFT_CLASSES`, the share of the positions with one of ``roles``, with a
    cluster-bootstrap interval by item (`dint.stats.cluster_bootstrap`).

    Parameters
    ----------
    table : `TokenShiftResult.table` (``item``, ``role``, ``shift``)
    roles : the roles of `ANSWER_ROLES` counted (default: the unforced answer tokens); None: every position

    Returns
    -------
    {class: `dint.stats.Result`} (``n`` the positions counted); NaN with its reason where none is.
    """
    from . import stats

    bad = [] if roles is None else sorted(set(roles) - set(ANSWER_ROLES))
    if bad:
        raise ValueError(f"roles={roles!r}: {bad} are not roles; choose from {ANSWER_ROLES}")
    rows = table if roles is None else table[table["role"].isin(roles)]
    if rows.empty:
        return {c: stats.Result.not_estimable(f"no position with role {list(roles)}", n=0) for c in SHIFT_CLASSES}
    clusters = rows["item"].to_numpy()
    if len(set(clusters)) < 2:   # one item: a share, but no cluster to resample
        nan = ConfidenceInterval(float("nan"), float("nan"))
        return {c: stats.Result(float((rows["shift"] == c).mean()), nan, len(rows), "share of positions",
                                reason="one item: no interval") for c in SHIFT_CLASSES}
    return {c: share_of_positions(stats.cluster_bootstrap((rows["shift"] == c).to_numpy(float), clusters,
                                                          confidence_level=confidence_level, n_resamples=n_resamples,
                                                          rng=rng), n=len(rows))
            for c in SHIFT_CLASSES}


def share_of_positions(result, *, n: int):
    """A cluster-bootstrap share of positions: ``n`` the positions, its interval kept within [0, 1] (the
    studentized bound of `dint.stats.cluster_bootstrap` may pass 0 or 1 where a share is near them)."""
    ci = result.confidence_interval
    return replace(result, n=int(n), method="cluster bootstrap by item",
                   confidence_interval=ConfidenceInterval(max(0.0, ci.low), min(1.0, ci.high)))


@dataclass(frozen=True)
class TokenShiftResult:
    """Token-level shift of a post-trained model from its base; see :func:`token_shift`.

    ``table``: one row per decoded position (``item``, ``position``, ``token``, ``text``, ``role``,
    ``base_rank``, ``shift``, ``kl``, ...); ``items``: one row per prompt (``item``, ``answer_positions``,
    ``forced_positions``, ``closing_positions``, ``after_positions``, ``matched``, ``stopped``,
    ``stops_after_answer``, ``no_answer``); ``shares``: per class the share of the unforced answer tokens with a
    cluster-bootstrap interval (items resampled); ``kl``: the mean per-position KL over every position with
    its cluster-bootstrap interval.
    """

    table: "object"
    items: "object"
    shares: dict
    kl: object
    n_items: int
    n_positions: int


def _first_word(tokenizer, gen) -> int:
    """Tokens of the output's first word: the longest prefix whose decoded text holds no inner space."""
    n = 0
    for k in range(1, len(gen) + 1):
        if gen[k - 1] == tokenizer.eos_token_id or any(ch.isspace() for ch in tokenizer.decode(gen[:k]).strip()):
            break
        n = k
    return n


def token_shift(post_model, base_model, tokenizer, prompts, *, answers=None, closings=(), max_new_tokens: int = 8,
                confidence_level: float = 0.95, n_resamples: int = 2000, rng=0) -> TokenShiftResult:
    """URIAL's token-shift analysis on answer tokens, with full-vocabulary KL and intervals.

    The post-trained model decodes greedily from each prompt (encoded as `dint.scoring.encode_pair` encodes a
    context, the tokenizer's BOS included where it adds one); both models are then run teacher-forced on
    prompt + output, and each output token is ranked under the base model's next-token distribution at that
    position (:func:`token_shift_positions`) and given its role (:func:`answer_roles`): the tokens of the
    answer value, forced continuations of it, a closing marker, the stop (eos) and text after the answer are
    told apart, so that the shares are of answer tokens and the stop is counted per item.

    Parameters
    ----------
    post_model, base_model : causal LMs sharing ``tokenizer``
    prompts : sequence of str
    answers : per prompt the candidate answer values (str continuations, leading space included, e.g.
        ``" kessa vale"``); None: every token before the stop is an answer token
    closings : str continuations that may close an answer before its stop (e.g. ``" ."``)
    max_new_tokens : longest output; decoding also stops at the tokenizer's eos
    confidence_level, n_resamples, rng : for the cluster bootstrap over items

    Returns
    -------
    TokenShiftResult
    """
    import pandas as pd
    import torch

    from . import scoring, stats

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt")
    if answers is not None:
        answers = [list(a) for a in answers]
        if len(answers) != len(prompts):
            raise ValueError(f"answers has {len(answers)} entries for {len(prompts)} prompts: give one list of "
                             "candidate values per prompt (or None)")
    check_int("max_new_tokens", max_new_tokens, 1)
    if post_model.config.vocab_size != base_model.config.vocab_size:
        raise ValueError(f"post_model has {post_model.config.vocab_size} tokens, base_model "
                         f"{base_model.config.vocab_size}: they must share one vocabulary (the tokenizer's)")
    eos = tokenizer.eos_token_id
    rows, items = [], []
    with torch.no_grad():
        for item, prompt in enumerate(prompts):
            prompt_ids, _ = scoring.encode_pair(tokenizer, prompt, " ")
            cands = None if answers is None else [scoring.encode_pair(tokenizer, prompt, a)[1] for a in answers[item]]
            close = [scoring.encode_pair(tokenizer, prompt, c)[1] for c in closings]
            ids = torch.tensor([prompt_ids])
            out = post_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=max_new_tokens, eos_token_id=eos,
                                      pad_token_id=tokenizer.pad_token_id)
            gen = out[0, ids.shape[1]:]
            if eos is not None and (gen == eos).any():
                gen = gen[: int((gen == eos).nonzero()[0, 0]) + 1]
            full = torch.cat([ids[0], gen])[None, :]
            start = ids.shape[1] - 1
            post = torch.log_softmax(post_model(full).logits[0, start:-1].double(), -1).numpy()
            base = torch.log_softmax(base_model(full).logits[0, start:-1].double(), -1).numpy()
            pos = token_shift_positions(post, base, gen.numpy())
            roles, matched = answer_roles(gen.numpy(), cands, eos=eos, closings=close,
                                          first_word=_first_word(tokenizer, gen.tolist()))
            for t in range(len(gen)):
                rows.append({"item": item, "position": t, "token": int(gen[t]),
                             "text": tokenizer.convert_ids_to_tokens(int(gen[t])), "role": roles[t],
                             **{k: v[t] for k, v in pos.items()}})
            count = {r: int((roles == r).sum()) for r in ANSWER_ROLES}
            n_answer = count["answer"] + count["forced"]
            stopped = bool(count["stop"])
            items.append({"item": item, "answer_positions": n_answer, "forced_positions": count["forced"],
                          "closing_positions": count["closing"], "after_positions": count["after"],
                          "matched": matched, "stopped": stopped,
                          "stops_after_answer": stopped and n_answer > 0 and count["after"] == 0,
                          "no_answer": n_answer == 0})
    table, items = pd.DataFrame(rows), pd.DataFrame(items)
    if table.empty:
        raise ValueError("the post-trained model produced no tokens for any prompt")
    shares = shift_shares(table, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    mean_kl = stats.cluster_bootstrap(table["kl"].to_numpy(float), table["item"].to_numpy(),
                                      confidence_level=confidence_level, n_resamples=n_resamples, rng=rng)
    return TokenShiftResult(table=table, items=items, shares=shares, kl=mean_kl, n_items=len(prompts),
                            n_positions=len(table))
