"""Tests for dint.sampling and dint.cache on a tiny random GPT-2 with a word-level tokenizer."""

import copy

import pandas as pd
import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

from dint import cache
from dint.sampling import COLUMNS, SamplingConfig, sample

WORDS = ["the", "a", "cat", "dog", "bird", "sat", "ran", "on", "under", "mat", "tree", "big", "red", "and"]
SPECIAL = ["<unk>", "<pad>", "<eos>"]
PROMPTS = ["the cat sat on", "a dog", "the big red bird ran under"]  # lengths 4, 2, 6 -> three buckets


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices gain nothing from threads; on a busy machine thread wake-ups cost ms per op."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tokenizer():
    vocab = {w: i for i, w in enumerate(SPECIAL + ["."] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # no decoder: decode joins tokens with spaces
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>",
        clean_up_tokenization_spaces=False)


@pytest.fixture(scope="module")
def model(tokenizer):
    cfg = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                  bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = transformers.GPT2LMHeadModel(cfg)
        with torch.no_grad():  # sharpen the random logits a little so samples are not near-uniform
            m.lm_head.weight.mul_(3.0)
    return m.eval()


def ids_of(tokenizer, prompt):
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def next_logits(model, ids):
    """Raw next-token logits after ``ids``, by a plain forward pass without cache."""
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1]


def test_table_shape_and_row_order(model, tokenizer):
    df = sample(model, tokenizer, PROMPTS, SamplingConfig(n=3, max_new_tokens=5, batch_size=4), progress=True)
    assert list(df.columns) == COLUMNS
    assert list(zip(df["item"], df["sample"])) == [(i, s) for i in range(3) for s in range(3)]
    assert list(df["prompt"]) == [p for p in PROMPTS for _ in range(3)]
    for row in df.itertuples():
        assert 1 <= len(row.tokens) <= 5 and len(row.logp) == len(row.tokens) == len(row.logp_sample)
        assert row.text == tokenizer.decode(row.tokens, skip_special_tokens=True)
        assert row.seq_logp == pytest.approx(sum(row.logp))


def test_same_seed_identical_different_seed_differs(model, tokenizer):
    cfg = SamplingConfig(n=4, max_new_tokens=8, temperature=1.3, top_p=0.95, seed=7)
    a = sample(model, tokenizer, PROMPTS, cfg)
    pd.testing.assert_frame_equal(a, sample(model, tokenizer, PROMPTS, cfg))
    b = sample(model, tokenizer, PROMPTS, SamplingConfig(n=4, max_new_tokens=8, temperature=1.3, top_p=0.95, seed=8))
    assert list(a["text"]) != list(b["text"])


def test_rows_independent_of_batching_and_other_prompts(model, tokenizer):
    cfg = SamplingConfig(n=5, max_new_tokens=6, seed=3)
    full = sample(model, tokenizer, PROMPTS, cfg)
    small = sample(model, tokenizer, PROMPTS, SamplingConfig(n=5, max_new_tokens=6, seed=3, batch_size=2))
    assert list(full["tokens"]) == list(small["tokens"])
    # Streams are keyed by (seed, item, sample): dropping a later prompt leaves earlier rows alone.
    fewer = sample(model, tokenizer, PROMPTS[:2], cfg)
    assert list(fewer["tokens"]) == list(full[full["item"] < 2]["tokens"])


def test_cache_hit_identical_and_skips_model(model, tokenizer, tmp_path, monkeypatch):
    cfg = SamplingConfig(n=2, max_new_tokens=6, stop=(".",))
    fresh = sample(model, tokenizer, PROMPTS, cfg, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("samples-*.parquet"))) == 1
    assert not list(tmp_path.glob(".*"))  # no temp file left behind

    def boom(*args, **kwargs):
        raise AssertionError("model called on a cache hit")

    monkeypatch.setattr(model, "forward", boom)
    cached = sample(model, tokenizer, PROMPTS, cfg, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(fresh, cached)
    assert type(cached["tokens"][0]) is list and type(cached["tokens"][0][0]) is int
    with pytest.raises(AssertionError, match="cache hit"):  # a different config is a miss
        sample(model, tokenizer, PROMPTS, SamplingConfig(n=2, max_new_tokens=6, seed=1), cache_dir=tmp_path)


def test_seq_logp_is_teacher_forced_raw_logprob(model, tokenizer):
    # Non-trivial temperature/top-p: logp must still be the raw model probability.
    df = sample(model, tokenizer, PROMPTS, SamplingConfig(n=3, max_new_tokens=7, temperature=0.7, top_p=0.8))
    for row in df.itertuples():
        prompt = ids_of(tokenizer, row.prompt)
        with torch.no_grad():
            logits = model(torch.tensor([prompt + row.tokens])).logits[0]
        lp = logits.log_softmax(-1)[len(prompt) - 1:-1].gather(1, torch.tensor(row.tokens)[:, None])
        assert row.seq_logp == pytest.approx(lp.sum().item(), abs=1e-5)
        assert row.logp == pytest.approx(lp.squeeze(1).tolist(), abs=1e-5)


def test_logp_sample_equals_logp_without_warping(model, tokenizer):
    df = sample(model, tokenizer, PROMPTS, SamplingConfig(n=3, max_new_tokens=6))
    assert all(a == b for a, b in zip(df["logp"], df["logp_sample"]))


def test_tiny_top_p_is_greedy(model, tokenizer):
    df = sample(model, tokenizer, PROMPTS, SamplingConfig(n=2, max_new_tokens=6, top_p=1e-9, seed=5))
    for row in df.itertuples():
        ids, greedy = ids_of(tokenizer, row.prompt), []
        while len(greedy) < 6 and tokenizer.eos_token_id not in greedy:
            greedy.append(int(next_logits(model, ids + greedy).argmax()))
        assert row.tokens == greedy
        assert row.logp_sample == [0.0] * len(greedy)  # all mass on one token


def test_stop_strings_end_samples(model, tokenizer):
    stop_ids = {tokenizer.convert_tokens_to_ids("."), tokenizer.eos_token_id}
    df = sample(model, tokenizer, PROMPTS, SamplingConfig(n=20, max_new_tokens=12, stop=(".",), seed=1))
    assert df["finished"].any() and not df["finished"].all()
    for row in df.itertuples():
        hits = [i for i, t in enumerate(row.tokens) if t in stop_ids]
        if row.finished:
            assert hits == [len(row.tokens) - 1]  # stop token kept, nothing after it
        else:
            assert hits == [] and len(row.tokens) == 12
    # Without the stop string only eos ends a sample, so "." may appear mid-sample.
    free = sample(model, tokenizer, PROMPTS, SamplingConfig(n=20, max_new_tokens=12, seed=1))
    for stopped, full in zip(df["tokens"], free["tokens"]):  # same streams: same prefix
        assert full[:len(stopped)] == stopped


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.6, 0.7)])
def test_first_token_frequencies_match_distribution(model, tokenizer, temperature, top_p):
    n, prompt = 4000, "the cat"
    df = sample(model, tokenizer, [prompt], SamplingConfig(n=n, max_new_tokens=1, temperature=temperature,
                                                          top_p=top_p, seed=11, batch_size=1000))
    logits = next_logits(model, ids_of(tokenizer, prompt)) / temperature
    probs = logits.softmax(-1)
    order = probs.argsort(descending=True)
    keep = (probs[order].cumsum(0) - probs[order]) < top_p  # nucleus: tokens needed to reach top_p
    target = torch.zeros_like(probs)
    target[order[keep]] = probs[order[keep]]
    target /= target.sum()
    counts = torch.bincount(torch.tensor([t[0] for t in df["tokens"]]), minlength=len(probs)).double()
    assert (counts / n - target).abs().max() < 0.03
    assert counts[target == 0].sum() == 0  # nothing outside the nucleus
    assert target.max() < 0.9  # the check is not vacuous


@pytest.mark.parametrize("field,value", [("n", 0), ("temperature", 0.0), ("top_p", 0.0), ("top_p", 1.5),
                                         ("max_new_tokens", 0), ("batch_size", 0), ("stop", ".")])
def test_config_validation_names_field(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**{field: value})


@pytest.mark.parametrize("prompts", [[], "the cat", ["the", 3], None, ["the cat", ""]])
def test_prompt_validation(model, tokenizer, prompts):
    with pytest.raises(ValueError, match="prompts"):
        sample(model, tokenizer, prompts)


def test_fingerprint_tracks_parameters(model):
    m = copy.deepcopy(model)
    fp = cache.fingerprint(m)
    assert fp == cache.fingerprint(m) == cache.fingerprint(m, refresh=True) == cache.fingerprint(model)
    assert len(fp) == 32 and int(fp, 16) >= 0
    w = m.transformer.h[0].mlp.c_fc.weight
    with torch.no_grad():
        w[0, 0] += 1.0  # in-place edit: detected without refresh
    changed = cache.fingerprint(m)
    assert changed != fp and changed == cache.fingerprint(m, refresh=True)
    with torch.no_grad():
        w.copy_(model.transformer.h[0].mlp.c_fc.weight)
    assert cache.fingerprint(m) == fp
    assert cache.fingerprint(copy.deepcopy(model).to(torch.bfloat16)) != fp  # bf16 hashes, and dtype counts


def test_key_and_atomic_write(tmp_path):
    assert cache.key({"a": 1, "b": [1, 2]}) == cache.key({"b": [1, 2], "a": 1})
    assert cache.key(1, 2) != cache.key(2, 1)
    target = tmp_path / "sub" / "out.txt"

    def half_written(tmp):
        tmp.write_text("partial")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        cache.atomic_write(target, half_written)
    assert not target.exists() and list(target.parent.iterdir()) == []
    cache.atomic_write(target, lambda tmp: tmp.write_text("done"))
    assert target.read_text() == "done" and list(target.parent.iterdir()) == [target]
