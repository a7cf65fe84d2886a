"""The real profile's reference snapshot (snapshots/real/): the real paper builds from it alone, its derived files
agree with its numbers and the registry, and a fresh run's verdicts are compared with its own."""
import json
import shutil

import pandas as pd
import pytest

from dint import snapshot

REAL = snapshot.folder("real")
# the tests of the snapshot itself run once `dint snapshot write --profile real` has put it in the repository
needs_snapshot = pytest.mark.skipif(not (REAL / "manifest.json").exists(),
                                    reason="snapshots/real/ is not written yet: make reproduce PROFILE=real, then "
                                           "dint snapshot write --profile real")


def _fake_run(tmp_path, monkeypatch, profile="real"):
    """A run of ``profile`` made of the real snapshot's own files (numbers, PNG figures, validity table)."""
    results, figures = tmp_path / "results", tmp_path / "figures"
    monkeypatch.setenv("DINT_RESULTS", str(results))
    monkeypatch.setenv("DINT_FIGURES", str(figures))
    for f in REAL.glob("*/numbers.json"):
        (results / profile / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, results / profile / f.parent.name / f.name)
    shutil.copytree(REAL / "figures", figures / profile)
    shutil.copytree(REAL / "validity", results / profile / "validity")
    return results / profile


@needs_snapshot
def test_the_snapshot_holds_what_the_real_paper_needs():
    manifest = json.loads((REAL / "manifest.json").read_text())
    assert manifest["profile"] == "real" and len(manifest["commit"]) == 40
    for nb in manifest["notebooks"]:
        assert (REAL / nb / "numbers.json").exists()
    assert {f"{nb}.png" for nb in manifest["notebooks"] if nb[:2].isdigit()} <= set(manifest["figures"])
    assert sorted(p.name for p in (REAL / "figures").glob("*.png")) == sorted(manifest["figures"])
    assert (REAL / "validity" / "validity.tex").exists()
    # small files: numbers and print-size PNGs, no model
    assert sum(p.stat().st_size for p in REAL.rglob("*") if p.is_file()) < 8e6


@needs_snapshot
def test_the_snapshots_derived_files_are_up_to_date():
    # the macros and verdicts the snapshot keeps are those its numbers give under the current registry and macro
    # format; a change of either is followed by `dint snapshot refresh --profile real`
    assert snapshot.stale("real") == [], "run `dint snapshot refresh --profile real`"
    kept = pd.read_csv(REAL / "verdicts.csv")
    assert set(kept.verdict) <= {"supported", "contradicted", "inconclusive", "passed", "failed", "not applicable"}


@needs_snapshot
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed")
def test_the_real_paper_builds_from_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))   # nothing of a run: the snapshot alone
    monkeypatch.setenv("DINT_FIGURES", str(tmp_path / "figures"))
    pdf = snapshot.paper("real")
    assert pdf == tmp_path / "results" / "real" / "paper-snapshot" / "dint.pdf" and pdf.stat().st_size > 100_000
    log = (pdf.parent / "dint.log").read_text(errors="replace")
    assert "Warning: Citation" not in log   # (paper.build fails on undefined references and macros)
    for png in (REAL / "figures").glob("*.png"):   # every figure is the snapshot's
        assert png.name in log


@needs_snapshot
def test_write_and_compare(tmp_path, monkeypatch):
    run = _fake_run(tmp_path, monkeypatch)
    monkeypatch.setattr(snapshot, "folder", lambda profile: tmp_path / "snapshots" / profile)
    with pytest.raises(FileNotFoundError, match="dint snapshot write --profile real"):
        snapshot.verdicts("real")
    out = snapshot.write("real")
    assert (out / "macros.tex").read_text() == (REAL / "macros.tex").read_text()
    assert pd.read_csv(out / "verdicts.csv").equals(pd.read_csv(REAL / "verdicts.csv"))
    table = snapshot.compare("real")
    assert table.same.all() and len(table) == (snapshot.verdicts("real").verdict != "not applicable").sum()
    # a fresh run whose numbers turn one verdict: the comparison names it; digits alone do not count
    claim = pd.read_csv(out / "verdicts.csv").query("kind == 'claim' and verdict == 'supported'").iloc[0]
    from dint import claims
    entry = claims.load().by_id(claim.id)
    path = run / entry.notebook / "numbers.json"
    data = json.loads(path.read_text())
    key = entry.number.split("/", 1)[1]
    data["numbers"][key] = {**data["numbers"][key], "estimate": 0.0, "ci_low": -1e-3, "ci_high": 1e-3, "pvalue": 0.9}
    path.write_text(json.dumps(data))
    table = snapshot.compare("real").set_index("id")
    assert not table.loc[claim.id, "same"] and table.drop(index=claim.id).same.all()


def test_write_iv(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DINT_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setattr(snapshot, "folder", lambda profile: tmp_path / "snapshots" / profile)
    with pytest.raises(FileNotFoundError, match="make reproduce PROFILE=real"):
        snapshot.write("real")
    assert not (tmp_path / "snapshots").exists()   # nothing half-written
