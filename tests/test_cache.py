"""dint.cache.file_digest: SHA256 of a file, memoised while the file is unchanged."""
import hashlib
import os

import pytest

from dint import cache


@pytest.fixture
def hashes(monkeypatch):
    """Count the files actually read and hashed."""
    calls = []
    real = hashlib.file_digest

    def counting(f, name):
        calls.append(f.name)
        return real(f, name)

    monkeypatch.setattr(cache.hashlib, "file_digest", counting)
    return calls


def test_file_digest_is_the_files_sha256(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"\x00\x01" * 1000)
    assert cache.file_digest(p) == hashlib.sha256(b"\x00\x01" * 1000).hexdigest()
    assert cache.file_digest(str(p)) == cache.file_digest(p)


def test_settled_file_is_hashed_once(tmp_path, monkeypatch, hashes):
    monkeypatch.setattr(cache, "_SETTLED_NS", -1)   # as if the file had been written long ago
    (tmp_path / "tmp").mkdir()
    p = tmp_path / "tmp" / "f.bin"
    p.write_bytes(b"abc")
    first = cache.file_digest(p)
    assert cache.file_digest(p) == first and len(hashes) == 1
    (tmp_path / "tmp").rename(tmp_path / "done")     # a folder renamed into place keeps its digests
    assert cache.file_digest(tmp_path / "done" / "f.bin") == first and len(hashes) == 1


def test_rewritten_file_is_hashed_again_even_with_its_old_size_and_mtime(tmp_path, monkeypatch, hashes):
    monkeypatch.setattr(cache, "_SETTLED_NS", -1)
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    first = cache.file_digest(p)
    st = os.stat(p)
    p.write_bytes(b"abd")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before: the change time still moves
    assert cache.file_digest(p) == hashlib.sha256(b"abd").hexdigest() != first
    assert len(hashes) == 2


def test_fresh_file_is_not_memoised(tmp_path, hashes):
    # written just now: a rewrite within the file system's timestamp resolution could keep its stat
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    cache.file_digest(p)
    cache.file_digest(p)
    assert len(hashes) == 2


def test_file_digest_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        cache.file_digest(tmp_path / "nothing")
