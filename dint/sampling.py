"""Seeded, batched sampling from a Hugging Face causal LM, with per-token log-probabilities.

Every (prompt, sample) row draws its randomness from its own stream, seeded
from ``(config.seed, item, sample)``, so a row's sample does not depend on
``batch_size`` or on which other prompts are in the call (up to float
differences between batched forward passes), and reruns are bit-identical.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from dint import cache, console
from dint.lazy import LazyModule

torch = LazyModule("torch")                # imported on first use (dint.lazy)
transformers = LazyModule("transformers")

COLUMNS = ["item", "sample", "prompt", "text", "tokens", "logp", "logp_sample", "seq_logp", "finished"]
_CACHE_FORMAT = "samples-v1"  # bump when the table's meaning changes, to orphan old files


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample; part of the cache key, so every field changes the result."""

    n: int = 1  # samples per prompt
    temperature: float = 1.0  # divides the logits before softmax; 1.0 = the model's own distribution
    top_p: float = 1.0  # nucleus sampling: keep the smallest set of tokens with this much mass; 1.0 = off
    max_new_tokens: int = 16  # generated tokens per sample, at most
    seed: int = 0  # base seed; each (item, sample) row gets its own stream derived from it
    batch_size: int = 256  # max sequences (rows) per forward pass; bounds memory
    stop: tuple[str, ...] = ()  # a sample ends after a token whose decoded text (stripped) is one of these

    def __post_init__(self):
        checks = [
            ("n", self.n >= 1, "ask for at least 1 sample per prompt"),
            ("temperature", self.temperature > 0, "use a positive temperature (for greedy, use a tiny top_p)"),
            ("top_p", 0 < self.top_p <= 1, "use 0 < top_p <= 1 (1.0 disables nucleus truncation)"),
            ("max_new_tokens", self.max_new_tokens >= 1, "generate at least 1 token"),
            ("batch_size", self.batch_size >= 1, "use a batch size of at least 1"),
        ]
        for field, ok, fix in checks:
            if not ok:
                raise ValueError(f"SamplingConfig.{field}={getattr(self, field)!r} is invalid: {fix}.")
        # A bare string would be read as a tuple of its characters.
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"SamplingConfig.stop={self.stop!r} is invalid: pass a tuple of non-empty strings, e.g. ('.',).")
        object.__setattr__(self, "stop", tuple(self.stop))  # lists would make the config unhashable


def sample(model, tokenizer, prompts, config: SamplingConfig = SamplingConfig(), *,
           cache_dir=None, progress: bool = False, add_special_tokens: bool = False) -> pd.DataFrame:
    """Draw ``config.n`` seeded samples per prompt and record each token's log-probabilities.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Causal LM on any device; put in eval mode for the call (training mode restored after).
    tokenizer : transformers.PreTrainedTokenizerBase
        Tokenises prompts and decodes continuations; its eos token ends a sample.
    prompts : list[str], length P
        Prompt texts; the continuation is sampled right after the prompt's last token.
    config : SamplingConfig
    cache_dir : str or PathLike, optional
        If given, the table is stored as ``samples-<key>.parquet`` there and reused when the
        model weights, tokenizer, prompts, config and ``add_special_tokens`` are all unchanged.
    progress : bool
        Show a tqdm bar over the P * n rows.
    add_special_tokens : bool
        Passed to the tokenizer (e.g. True for models that need a BOS token, such as Gemma).

    Returns
    -------
    pandas.DataFrame, P * n rows ordered by (item, sample), with columns
        item (int): index of the prompt in ``prompts``;
        sample (int): 0 .. n-1;
        prompt (str): the prompt text;
        text (str): decoded continuation without the prompt (special tokens skipped);
        tokens (list[int]): generated token ids, including the stop/eos token if one was emitted;
        logp (list[float]): natural-log probability of each token under the model's raw
            distribution (temperature 1, no top-p), as needed for sequence-level KL;
        logp_sample (list[float]): log-probability of each token under the distribution
            actually sampled from (after temperature and top-p);
        seq_logp (float): sum of ``logp``;
        finished (bool): True if a stop string or eos ended the sample, False if it hit max_new_tokens.
    """
    if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompts must be a non-empty list of str, e.g. ['The capital of France is'].")
    prompts = list(prompts)
    path = None
    if cache_dir is not None:
        k = cache.key(_CACHE_FORMAT, cache.fingerprint(model), cache.fingerprint_tokenizer(tokenizer),
                      prompts, asdict(config), add_special_tokens)
        path = Path(cache_dir) / f"samples-{k}.parquet"
        if path.exists():
            return _tidy(pd.read_parquet(path))

    ids = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    if empty := [i for i, x in enumerate(ids) if not x]:
        raise ValueError(f"prompts {empty} tokenise to no tokens; give non-empty prompts or add_special_tokens=True.")
    # Equal-length prompts share a batch, so no padding or attention mask is needed.
    buckets = defaultdict(list)
    for item, x in enumerate(ids):
        buckets[len(x)].append(item)
    chunks = []
    for length in sorted(buckets):
        rows = [(item, s) for item in buckets[length] for s in range(config.n)]
        chunks += [rows[i:i + config.batch_size] for i in range(0, len(rows), config.batch_size)]

    warp = transformers.LogitsProcessorList()  # skipped at 1.0 so that logp_sample == logp exactly
    if config.temperature != 1.0:
        warp.append(transformers.TemperatureLogitsWarper(float(config.temperature)))
    if config.top_p != 1.0:
        warp.append(transformers.TopPLogitsWarper(float(config.top_p)))
    stops = _StopTokens(tokenizer, config.stop)

    records = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), tqdm(total=len(prompts) * config.n, disable=not progress,
                                          desc="sampling", unit="seq", file=console.stream()) as bar:
            for rows in chunks:
                records += _generate(model, ids, rows, config, warp, stops)
                bar.update(len(rows))
    finally:
        model.train(was_training)

    for r in records:
        r["prompt"] = prompts[r["item"]]
        r["text"] = tokenizer.decode(r["tokens"], skip_special_tokens=True)
    df = _tidy(pd.DataFrame(records))
    if path is not None:
        cache.atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    return df


class _StopTokens:
    """Which token ids end a sample (decoding each id at most once), and the id to pad with."""

    def __init__(self, tokenizer, stop):
        self.tokenizer, self.stop = tokenizer, set(stop)
        eos = tokenizer.eos_token_id
        self.memo = {} if eos is None else {eos: True}
        # Fed to finished rows (their outputs are ignored); any valid id would do.
        self.pad = next((t for t in (tokenizer.pad_token_id, eos) if t is not None), 0)

    def __call__(self, token: int) -> bool:
        if token not in self.memo:  # lazy: decoding a 256k vocabulary up front is slow
            text = self.tokenizer.decode([token])
            # Exact match too, so that whitespace stops such as "\n" work.
            self.memo[token] = bool(self.stop) and (text in self.stop or text.strip() in self.stop)
        return self.memo[token]


def _generate(model, ids, rows, config, warp, stops) -> list[dict]:
    """Sample one chunk of rows whose prompts all have the same length, with the KV cache."""
    device, steps, pad = model.device, config.max_new_tokens, stops.pad
    seq = torch.tensor([ids[item] for item, _ in rows], device=device)  # (B, L)
    u = torch.stack([_uniforms(config.seed, item, s, steps) for item, s in rows])  # (B, T), CPU
    B = len(rows)
    tokens = torch.full((B, steps), pad, dtype=torch.long, device=device)
    logp = torch.zeros(B, steps, device=device)
    logp_sample = torch.zeros(B, steps, device=device)
    length = torch.zeros(B, dtype=torch.long)  # tokens generated per row (incl. stop token)
    alive = torch.ones(B, dtype=torch.bool)

    cache_arg, extra = _forward_kwargs(model)
    out = model(input_ids=seq, use_cache=True, **extra)
    for t in range(steps):
        logits = out.logits[:, -1, :].float()  # (B, V)
        scores = warp(seq, logits)
        nxt = _draw(scores.softmax(-1), u[:, t].to(device))  # (B,)
        nxt = torch.where(alive.to(device), nxt, torch.full_like(nxt, pad))  # finished rows: pad, ignored
        tokens[:, t] = nxt
        logp[:, t] = logits.log_softmax(-1).gather(1, nxt[:, None]).squeeze(1)
        logp_sample[:, t] = scores.log_softmax(-1).gather(1, nxt[:, None]).squeeze(1)
        length += alive
        alive &= ~torch.tensor([stops(x) for x in nxt.tolist()])
        if t == steps - 1 or not alive.any():
            break
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        out = model(input_ids=nxt[:, None], use_cache=True, **{cache_arg: out[cache_arg]})

    tokens, logp, logp_sample = tokens.cpu().tolist(), logp.cpu().double(), logp_sample.cpu().tolist()
    records = []
    for b, (item, s) in enumerate(rows):
        n = int(length[b])
        records.append(dict(item=item, sample=s, tokens=tokens[b][:n], logp=logp[b, :n].tolist(),
                            logp_sample=logp_sample[b][:n], seq_logp=float(logp[b, :n].sum()),
                            finished=not bool(alive[b])))
    return records


def _forward_kwargs(model) -> tuple[str, dict]:
    """Name of the KV-cache argument/output, and extra prefill kwargs the model accepts."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # unwrap peft
    params = inspect.signature(base.forward).parameters
    # Newer transformers 5.x renamed `past_key_values` to `cache` (old name deprecated).
    cache_arg = "cache" if "cache" in params else "past_key_values"
    # Prefill only needs the last position's logits; avoids a (B, L, vocab) tensor.
    return cache_arg, ({"logits_to_keep": 1} if "logits_to_keep" in params else {})


def _uniforms(seed: int, item: int, sample: int, steps: int) -> torch.Tensor:
    """One U[0,1) draw per step from the row's own stream; CPU, so identical on any device."""
    g = torch.Generator().manual_seed(int(cache.key("row", seed, item, sample)[:16], 16))
    return torch.rand(steps, generator=g, dtype=torch.float64)


def _draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: token i with probability probs[i] / sum(probs), one uniform per row.

    Used instead of torch.multinomial because a single generator per batch would tie each row's
    sample to its batch-mates; here each row consumes only its own uniform.
    probs (B, V) >= 0, u (B,) in [0, 1); returns (B,) token ids.
    """
    cdf = probs.to(torch.float32 if probs.device.type == "mps" else torch.float64).cumsum(-1)  # mps lacks f64
    target = (u.to(cdf.dtype) * cdf[:, -1])[:, None]
    # From the last positive-probability token on, cdf := inf, so rounding in u * total can never
    # select a token that has zero probability (e.g. removed by top-p).
    last = probs.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(-1)
    cdf.masked_fill_(torch.arange(probs.shape[-1], device=probs.device) >= last[:, None], float("inf"))
    return torch.searchsorted(cdf, target, right=True).squeeze(1)


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Fix row order, columns and dtypes, so fresh and cached (parquet) tables compare equal."""
    df = df.sort_values(["item", "sample"], kind="stable").reset_index(drop=True)[COLUMNS]
    for col in ("tokens", "logp", "logp_sample"):  # parquet returns numpy arrays; restore lists
        df[col] = [list(x.tolist() if hasattr(x, "tolist") else x) for x in df[col]]
    return df.astype({"item": "int64", "sample": "int64", "seq_logp": "float64", "finished": "bool"})
