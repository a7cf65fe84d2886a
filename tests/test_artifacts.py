import json
import re
import warnings

import pytest

from dint.pipeline import artifacts, paths
from dint import models
from dint.pipeline.artifacts import ArtifactWarning
from dint.pipeline.config import load_profile


def test_world_built_once_then_loaded():
    P = load_profile("smoke")
    w = artifacts.world(P)
    manifest = artifacts.world_dir(P) / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    w2 = artifacts.world(P)
    assert manifest.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert w2.corpus == w.corpus and w2.facts.equals(w.facts)
    assert artifacts.world_dir(P) == paths.results("smoke") / "world"


def test_overrides_get_their_own_folder():
    P = load_profile("smoke")
    Q = load_profile("smoke", world={"n_entities": 10})
    assert artifacts.root(P) == paths.results("smoke")
    assert artifacts.root(Q) == paths.results("smoke") / "variants" / Q.digest()
    assert artifacts.figures_root(P) == paths.figures("smoke")
    assert artifacts.figures_root(Q) == paths.figures("smoke") / "variants" / Q.digest()
    w = artifacts.world(Q)
    assert len(w.entities) == 10
    assert json.loads((artifacts.world_dir(Q) / "manifest.json").read_text())["world"]["n_entities"] == 10


def test_stale_manifest_rebuilds():
    P = load_profile("smoke", seed=7)
    artifacts.world(P)
    m = artifacts.world_dir(P) / "manifest.json"
    data = json.loads(m.read_text())
    data["seed"] = 999
    m.write_text(json.dumps(data))
    artifacts.world(P)
    assert json.loads(m.read_text())["seed"] == 7


def test_base_scores_cover_every_fact_and_form():
    P = load_profile("smoke")
    w = artifacts.world(P)
    s = artifacts.base_scores(P)
    assert set(s["form"]) == {"statement", "qa"}
    n_rows = sum(len(w.values[r]) for r in w.facts["relation"])
    assert len(s) == 2 * n_rows
    assert (s.groupby(["form", "fact"])["is_true"].sum() == 1).all()


# ------------------------------------------------------------------------------ cached on small folders
def _writer(files: dict, log: list | None = None):
    """A build that writes ``files`` (name -> text) and notes each call in ``log``."""
    def build(tmp):
        if log is not None:
            log.append(tmp.name)
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
    return build


def test_manifest_records_every_file_hash_and_size(tmp_path):
    import hashlib

    folder = artifacts.cached(tmp_path / "a", {"kind": "x"}, _writer({"data.txt": "abc", "sub/more.txt": "de"}))
    m = json.loads((folder / "manifest.json").read_text())
    assert m["format"] == artifacts.FORMAT and m["kind"] == "x" and m["inputs"] == {}
    assert m["files"] == {"data.txt": {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3},
                          "sub/more.txt": {"sha256": hashlib.sha256(b"de").hexdigest(), "size": 2}}
    assert artifacts.digest(folder) == m["digest"] and artifacts.verify(folder) == []


@pytest.mark.parametrize("damage, says", [
    (lambda f: (f / "data.txt").write_text("ab"), r"data.txt has 2 bytes, the manifest says 3"),
    (lambda f: (f / "data.txt").write_text("abd"), r"data.txt does not match its SHA256"),
    (lambda f: (f / "data.txt").unlink(), r"data.txt is missing"),
    (lambda f: (f / "extra.bin").write_bytes(b"\0"), r"extra.bin is not in the manifest"),
    (lambda f: (f / "manifest.json").write_text("{not json"), r"manifest.json cannot be read"),
])
def test_damaged_folder_is_rebuilt_with_a_warning_naming_the_file(tmp_path, damage, says):
    log = []
    build = _writer({"data.txt": "abc"}, log)
    folder = artifacts.cached(tmp_path / "a", {"kind": "x"}, build)
    damage(folder)
    with pytest.warns(ArtifactWarning, match=says) as caught:
        artifacts.cached(folder, {"kind": "x"}, build)
    assert str(folder) in str(caught[0].message)       # names the artifact too
    assert len(log) == 2 and (folder / "data.txt").read_text() == "abc" and artifacts.verify(folder) == []


def test_valid_folder_is_not_rebuilt_and_rebuild_forces_it(tmp_path):
    log = []
    build = _writer({"data.txt": "abc"}, log)
    folder = artifacts.cached(tmp_path / "a", {"kind": "x"}, build)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArtifactWarning)
        artifacts.cached(folder, {"kind": "x"}, build)
        assert len(log) == 1
        artifacts.cached(folder, {"kind": "x"}, build, rebuild=True)
        assert len(log) == 2
        artifacts.cached(folder, {"kind": "y"}, build)   # another configuration: rebuilt without a warning
        assert len(log) == 3


def test_old_layout_manifest_is_rebuilt(tmp_path):
    log = []
    build = _writer({"data.txt": "abc"}, log)
    folder = artifacts.cached(tmp_path / "a", {"kind": "x"}, build)
    # the manifest of format 1: the configuration only, no file hashes
    (folder / "manifest.json").write_text(json.dumps({"kind": "x", "format": 1}))
    assert artifacts.verify(folder) and "format 1" in artifacts.verify(folder)[0]
    artifacts.cached(folder, {"kind": "x"}, build)
    assert len(log) == 2 and json.loads((folder / "manifest.json").read_text())["format"] == artifacts.FORMAT


def test_rebuilt_input_invalidates_its_dependants_only_if_its_content_changed(tmp_path):
    up_text = {"data.txt": "v1"}
    up = artifacts.cached(tmp_path / "up", {"kind": "up"}, _writer(up_text))
    log = []
    down = _writer({"out.txt": "made from up"}, log)
    artifacts.cached(tmp_path / "down", {"kind": "down"}, down, inputs={"up": up})
    assert json.loads((tmp_path / "down" / "manifest.json").read_text())["inputs"] == {"up": artifacts.digest(up)}

    # the same content again: the dependant stays valid
    artifacts.cached(up, {"kind": "up"}, _writer(up_text), rebuild=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArtifactWarning)
        artifacts.cached(tmp_path / "down", {"kind": "down"}, down, inputs={"up": up})
    assert len(log) == 1

    # a build record differs between two builds of the same content: it does not count
    artifacts.cached(up, {"kind": "up"}, _writer({**up_text, "record.json": '{"wall_time": 2.5}'}), rebuild=True)
    before = artifacts.digest(up)
    artifacts.cached(up, {"kind": "up"}, _writer({**up_text, "record.json": '{"wall_time": 9.1}'}), rebuild=True)
    assert artifacts.digest(up) == before

    # other content: the dependant is rebuilt, and the warning names the input
    artifacts.cached(up, {"kind": "up"}, _writer({"data.txt": "v2"}), rebuild=True)
    with pytest.warns(ArtifactWarning, match="built from changed: up"):
        artifacts.cached(tmp_path / "down", {"kind": "down"}, down, inputs={"up": up})
    assert len(log) == 2


def test_failed_build_leaves_nothing(tmp_path):
    folder = tmp_path / "thing"

    def write(tmp):
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        artifacts.cached(folder, {"kind": "x"}, write)
    assert not folder.exists() and not list(tmp_path.iterdir())


def test_cached_table_writes_and_reads_one_parquet(tmp_path):
    import pandas as pd

    table, calls = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), []

    def compute():
        calls.append(1)
        return table

    t1 = artifacts.cached_table(tmp_path / "t", {"kind": "t"}, compute, file="t.parquet")
    t2 = artifacts.cached_table(tmp_path / "t", {"kind": "t"}, compute, file="t.parquet")
    assert t1.equals(table) and t2.equals(table) and len(calls) == 1
    assert set(json.loads((tmp_path / "t" / "manifest.json").read_text())["files"]) == {"t.parquet"}


def test_cached_iv(tmp_path):
    build = _writer({"data.txt": "abc"})
    with pytest.raises(ValueError, match="manifest has the key"):
        artifacts.cached(tmp_path / "a", {"kind": "x", "files": {}}, build)
    with pytest.raises(ValueError, match="manifest="):
        artifacts.cached(tmp_path / "a", ["kind"], build)
    with pytest.raises(ValueError, match="inputs="):
        artifacts.cached(tmp_path / "a", {"kind": "x"}, build, inputs=[tmp_path])
    with pytest.raises(ValueError, match="not an artifact built by this version"):
        artifacts.cached(tmp_path / "a", {"kind": "x"}, build, inputs={"up": tmp_path / "nothing"})
    with pytest.raises(ValueError, match="file="):
        artifacts.cached_table(tmp_path / "t", {"kind": "t"}, lambda: None, file="t.csv")
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------------------------ the profile's artifacts
@pytest.fixture
def own_results(tmp_path, monkeypatch):
    """A results root of the test's own, so that damaging an artifact touches no other test's."""
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def test_corrupt_world_corpus_rebuilds_the_world(own_results):
    P = load_profile("smoke")
    w = artifacts.world(P)
    before = artifacts.digest(artifacts.world_dir(P))
    (artifacts.world_dir(P) / "corpus.txt").write_text("one line of text\n")
    with pytest.warns(ArtifactWarning, match=r"world: corpus.txt has \d+ bytes"):
        again = artifacts.world(P)
    assert len(again.corpus) == len(w.corpus) > 1 and again.corpus == w.corpus
    assert artifacts.digest(artifacts.world_dir(P)) == before and artifacts.verify(artifacts.world_dir(P)) == []


def test_base_model_truncated_weights_rebuild_and_records_its_world(own_results):
    P = load_profile("smoke", base={"epochs": 1})
    artifacts.base_model(P, progress=False)
    folder = artifacts.base_dir(P)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["inputs"] == {"world": artifacts.digest(artifacts.world_dir(P))}
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    with pytest.warns(ArtifactWarning, match="model.safetensors has"):
        model, tok, record = artifacts.base_model(P, progress=False)
    assert weights.stat().st_size == size and artifacts.verify(folder) == []
    assert models.n_params(model) == record["n_params"]   # the weights load whole


def test_base_model_retrains_when_its_world_changed(own_results):
    P = load_profile("smoke", base={"epochs": 1})
    artifacts.base_model(P, progress=False)
    m = artifacts.base_dir(P) / "manifest.json"
    data = json.loads(m.read_text())
    data["inputs"]["world"] = "0" * 64        # as if it had been trained on a world of other content
    m.write_text(json.dumps(data))
    with pytest.warns(ArtifactWarning, match="base: the artifact.s. it was built from changed: world"):
        artifacts.base_model(P, progress=False)
    assert json.loads(m.read_text())["inputs"]["world"] == artifacts.digest(artifacts.world_dir(P))


def test_real_base_that_cannot_be_rebuilt_names_its_source(own_results, tmp_path, monkeypatch):
    """A real profile's base comes from a pretrained file outside results/: when the cached copy is damaged
    and the file does not match its SHA256, the error names the file and the fix."""
    import shutil

    (tmp_path / "config").mkdir()
    shutil.copy(paths.config_dir() / "real.yaml", tmp_path / "config" / "real.yaml")
    source = tmp_path / "weights.gguf"
    source.write_bytes(b"not the model")
    (tmp_path / "config" / "fake.yaml").write_text(
        f"reference: real\nbase: {{model: {source}, sha256: '{'a' * 64}', device: cpu}}\n")
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))
    P = load_profile("fake")
    # a cached copy as a build would leave it, then damaged
    folder = artifacts.cached(artifacts.base_dir(P), artifacts._manifest(P, "base", ("base",), trained=False),
                              _writer({"model.safetensors": "weights", "record.json": "{}"}))
    (folder / "model.safetensors").write_text("weight")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=rf"{re.escape(str(source))}.*SHA256.*(reinstall|fix)"):
            artifacts.base_model(P, progress=False)
    assert [w for w in caught if w.category is ArtifactWarning and "model.safetensors" in str(w.message)]
