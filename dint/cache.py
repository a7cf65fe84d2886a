"""Content-addressed cache helpers: model fingerprints, keys, file digests and atomic writes.

Cache files are named by a digest of everything that determines their
contents (model weights, inputs, config), so a stale entry is never reused:
changing any input changes the file name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable

from .lazy import LazyModule

torch = LazyModule("torch")   # imported on first use (dint.lazy)

_DIGEST_SIZE = 16  # bytes -> 32 hex characters
# Config fields that differ between otherwise identical models (where they were
# loaded from, which library version wrote them); they must not change the key.
_VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "_commit_hash")
# File digests memoised by the file's identity and stat (`file_digest`); only files last changed this long
# before they were hashed: a later write within the file system's timestamp resolution (2 s on FAT, a
# clock tick elsewhere) could leave size and times unchanged.
_FILE_DIGESTS: dict[tuple, str] = {}
_SETTLED_NS = 2_000_000_000


def _hasher() -> "hashlib._Hash":
    return hashlib.blake2b(digest_size=_DIGEST_SIZE)


def _tensor_state(model) -> tuple:
    """Cheap identity of the model's tensors: storage pointer and in-place version counter."""
    try:
        return tuple(
            (name, t.data_ptr(), t._version)
            for name, t in (*model.named_parameters(), *model.named_buffers())
        )
    except RuntimeError:  # inference tensors have no version counter: never memoise
        return ()


def fingerprint(model, *, refresh: bool = False) -> str:
    """Stable hex digest of a ``transformers`` model's config and all its tensors.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Any ``torch.nn.Module`` with a ``config`` (``to_json_string``) works.
    refresh : bool
        Recompute even if a memoised digest exists. The digest is memoised on
        the model (attribute ``_dint_fingerprint``) together with each tensor's
        storage pointer and torch version counter, so ordinary in-place updates
        (``p.add_(...)``, optimiser steps, ``p.data = ...``) are detected. Edits
        that bypass torch (e.g. writing through ``p.numpy()``) are not: call
        ``fingerprint(model, refresh=True)`` after those.

    Returns
    -------
    str
        32 hex characters (blake2b, 16 bytes).
    """
    state = _tensor_state(model)
    memo = getattr(model, "_dint_fingerprint", None)
    if not refresh and state and memo is not None and memo[0] == state:
        return memo[1]

    h = _hasher()
    config = getattr(model, "config", None)
    if config is not None:
        cfg = json.loads(config.to_json_string())
        for k in _VOLATILE_CONFIG_KEYS:
            cfg.pop(k, None)
        h.update(json.dumps(cfg, sort_keys=True).encode())
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        # dtype and shape go in too: equal bytes may mean different tensors.
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # Viewing as bytes handles dtypes numpy lacks (bfloat16, float8).
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest = h.hexdigest()
    if state:
        object.__setattr__(model, "_dint_fingerprint", (state, digest))
    return digest


def fingerprint_tokenizer(tokenizer) -> str:
    """Hex digest of a tokenizer's vocabulary, special tokens and (fast) pipeline.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase

    Returns
    -------
    str
        32 hex characters.
    """
    # memoised per tokenizer object: serialising a large vocabulary takes about 0.6 s (Gemma's 262k
    # tokens) and scoring keys its in-memory memo on it at every call; a token added since changes the
    # length or the special tokens, which recomputes it
    state = (type(tokenizer).__name__, len(tokenizer), tuple(tokenizer.all_special_tokens))
    try:
        known = _TOKENIZERS.get(tokenizer)
    except TypeError:          # not weak-referenceable: no memo
        known = None
    if known is not None and known[0] == state:
        return known[1]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # The fast backend's JSON covers vocab, normaliser, pre-tokeniser and decoder.
    body = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    digest = key(type(tokenizer).__name__, body, tokenizer.all_special_tokens)
    try:
        _TOKENIZERS[tokenizer] = (state, digest)
    except TypeError:
        pass
    return digest


_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def key(*parts: Any) -> str:
    """Hex digest of a JSON-serialisable description, for cache file names.

    Parameters
    ----------
    *parts
        JSON-serialisable values (dicts are key-sorted, tuples become lists).

    Returns
    -------
    str
        32 hex characters (blake2b, 16 bytes).
    """
    h = _hasher()
    h.update(json.dumps(list(parts), sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """Hex SHA256 of a file's bytes, memoised within the process while the file is unchanged.

    Parameters
    ----------
    path : str or PathLike
        A regular file.

    Returns
    -------
    str
        64 hex characters.

    Notes
    -----
    The memo is keyed by device, inode, size, modification and change time (nanoseconds), so a
    rewritten, truncated or replaced file is hashed again, and a folder renamed after its files were
    hashed keeps their digests. A file changed within the last two seconds is hashed on every call.
    """
    st = os.stat(path)
    memo_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _FILE_DIGESTS.get(memo_key)
    if hit is not None:
        return hit
    started = time.time_ns()
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if started - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
        _FILE_DIGESTS[memo_key] = digest
    return digest


def atomic_write(path: str | os.PathLike, write_fn: Callable[[Path], Any]) -> Path:
    """Write ``path`` via a temporary sibling file and ``os.replace``.

    A crash mid-write leaves at most a hidden ``.tmp`` file, never a truncated
    file under the final name that a later run would take as a cache hit.

    Parameters
    ----------
    path : str or PathLike
        Final destination; parent directories are created.
    write_fn : callable
        Called once with the temporary path (same directory, so the rename is
        atomic on POSIX); must write the complete file there.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique name, created by write_fn itself so the file gets normal permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def json_ready(value):
    """``value`` as JSON can hold it: dicts (keys as str), lists, objects with ``asdict()`` (a `dint.stats.Result`)
    and numpy scalars as plain values, NaN and infinities as null (JSON has no NaN)."""
    if hasattr(value, "asdict"):
        return json_ready(value.asdict())
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item"):   # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
