"""Benchmarks that print their figure: dint's exact scorer against its peers, in one run on one machine.

``scoring``: the same (context, continuation) requests — the world's QA prompts with every
candidate answer — scored by dint's prefix-sharing scorer and by lm-evaluation-harness's
``HFLM.loglikelihood``; then exact scoring against Monte-Carlo sampling that reaches a standard
error of 0.01 on P(true value) for every question.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from . import artifacts
from .config import load_profile
from ..sampling import SamplingConfig, sample
from ..scoring import loglikelihood


def _timed(fn, repeats):
    """Best wall time of ``repeats`` calls (after one warm-up call) and the last result."""
    fn()
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def scoring(profile: str = "tiny", *, questions: int = 200, min_candidates: int = 20, repeats: int = 3,
            lm_eval_batch_size: int = 64, target_se: float = 0.01, seed: int = 0) -> dict:
    """Time dint's scorer against lm-eval's and against sampling; print the figures.

    Parameters
    ----------
    profile : the profile whose world and base model are used (built if missing)
    questions : QA questions to score (each with its full candidate set)
    min_candidates : only questions with at least this many candidates
    repeats : timed repetitions per scorer (best time is reported)
    lm_eval_batch_size : lm-eval's batch size
    target_se : the standard error on P(true value) that sampling must reach per question
    """
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError as e:
        raise ModuleNotFoundError("the scoring benchmark compares against lm-evaluation-harness; install it "
                                  "with `pip install -e '.[dev]'`") from e
    if questions < 1 or min_candidates < 1 or repeats < 1 or not 0 < target_se < 0.5:
        raise ValueError("need questions >= 1, min_candidates >= 1, repeats >= 1 and 0 < target_se < 0.5")
    P = load_profile(profile)
    world = artifacts.world(P)
    model, tok, _ = artifacts.base_model(P)
    prompts = world.prompts("qa")
    prompts = prompts[prompts["candidates"].map(len) >= min_candidates]
    if len(prompts) < questions:
        raise ValueError(f"profile {profile!r} has {len(prompts)} questions with >= {min_candidates} candidates; "
                         f"lower questions= or use a larger profile")
    rng = np.random.default_rng(seed)
    prompts = prompts.iloc[np.sort(rng.choice(len(prompts), questions, replace=False))]
    requests = [(p, " " + c) for p, cs in zip(prompts["prompt"], prompts["candidates"]) for c in cs]
    n_cand = prompts["candidates"].map(len)
    print(f"torch threads: {torch.get_num_threads()}; ", end="")
    print(f"requests: {len(requests)} ({questions} questions x {n_cand.min()}-{n_cand.max()} candidates, "
          f"mean {n_cand.mean():.1f}), profile {profile}")

    t_dint, ours = _timed(lambda: loglikelihood(model, tok, requests, config=P.scoring), repeats)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=lm_eval_batch_size, device=str(model.device))
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i) for i, r in enumerate(requests)]
    t_lm, theirs = _timed(lambda: lm.loglikelihood(instances, disable_tqdm=True), repeats)
    theirs = np.array([x[0] for x in theirs])
    d = float(np.abs(ours - theirs).max())

    # Exact P(true value) per question against sampling to a standard error of target_se.
    offsets = np.concatenate([[0], np.cumsum(n_cand.to_numpy())])
    targets = prompts["target"].to_numpy()
    p_true = np.empty(questions)
    for q, (cands, target) in enumerate(zip(prompts["candidates"], targets)):
        p_true[q] = math.exp(ours[offsets[q] + list(cands).index(target)])
    # A sampler does not know p in advance: n = 1 / (4 se^2) guarantees the standard error for any p.
    # (With p known, p(1-p)/se^2 would do; that oracle count is reported alongside.)
    needed = np.full(questions, math.ceil(0.25 / target_se ** 2))
    oracle = int(np.maximum(1, np.ceil(p_true * (1 - p_true) / target_se ** 2)).sum())
    max_tokens = max(len(tok(" " + c, add_special_tokens=False)["input_ids"]) for cs in prompts["candidates"] for c in cs)
    cfg = SamplingConfig(n=int(needed[0]), max_new_tokens=max_tokens + 1, seed=seed, batch_size=8192, stop=(".",))
    t = time.perf_counter()
    df = sample(model, tok, list(prompts["prompt"]), cfg)
    t_sample = time.perf_counter() - t
    answer = df["text"].str.replace(r"\s*\.$", "", regex=True).str.strip()
    correct = answer.to_numpy() == targets[df["item"].to_numpy()]
    hits = np.bincount(df["item"].to_numpy(), weights=correct, minlength=questions) / needed
    se = np.sqrt(np.maximum(p_true * (1 - p_true), 1e-12) / needed)
    agree = float(np.mean(np.abs(hits - p_true) <= 3 * se + 1.0 / needed))
    # exact cost for these questions: the same requests dint scored above
    result = {"requests": len(requests), "dint_rps": len(requests) / t_dint, "lm_eval_rps": len(requests) / t_lm,
              "ratio": t_lm / t_dint, "max_abs_dlogp": d, "samples": int(needed.sum()),
              "sampling_seconds": t_sample, "exact_seconds": t_dint, "exact_vs_sampling": t_sample / t_dint,
              "mc_agreement_3se": agree, "oracle_samples": oracle, "torch_threads": torch.get_num_threads()}
    print(f"sampling: {result['samples']} samples ({needed[0]} per question: se <= {target_se} for any p) in "
          f"{t_sample:.1f} s; MC estimates within 3 SE of exact: {agree:.1%}; with p known in advance "
          f"{oracle} samples would do (oracle ratio {t_sample * oracle / result['samples'] / t_dint:.1f}, "
          f"assuming time proportional to samples)")
    print(f"scoring: dint {result['dint_rps']:.0f} req/s, lm-eval {result['lm_eval_rps']:.0f} req/s, "
          f"ratio {result['ratio']:.2f}, max |dlogp| {d:.2e}")
    print(f"exact-vs-sampling: ratio {result['exact_vs_sampling']:.0f}")
    return result
