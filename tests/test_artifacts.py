import json

import pytest

from dint import artifacts, paths
from dint.config import load_profile


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


def test_failed_build_leaves_nothing(tmp_path):
    folder = tmp_path / "thing"

    def write(tmp):
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        artifacts._build(folder, {"kind": "x"}, write)
    assert not folder.exists() and not list(tmp_path.iterdir())


def test_base_scores_cover_every_fact_and_form():
    P = load_profile("smoke")
    w = artifacts.world(P)
    s = artifacts.base_scores(P)
    assert set(s["form"]) == {"statement", "qa"}
    n_rows = sum(len(w.values[r]) for r in w.facts["relation"])
    assert len(s) == 2 * n_rows
    assert (s.groupby(["form", "fact"])["is_true"].sum() == 1).all()
