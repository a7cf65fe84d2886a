"""Every claim notebook runs under the smoke profile, through Papermill, without an error output."""
import json
import re
from pathlib import Path

import nbformat
import pytest

from dint import plot
from dint.pipeline import artifacts, notebooks, paths
from dint.pipeline.config import load_profile

NOTEBOOKS = sorted(p.stem for p in paths.notebooks().glob("*.ipynb"))


def test_every_notebook_is_in_the_pipeline():
    assert NOTEBOOKS == sorted(notebooks.NOTEBOOKS)
    snakefile = (paths.root() / "Snakefile").read_text()
    for name in NOTEBOOKS:
        assert f"\"{name}\"" in snakefile   # its rule: the code closure and data inputs (tests/test_pipeline.py)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_committed_without_outputs(name):
    nb = nbformat.read(notebooks.path(name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "profile" in params[0].source and "seed" in params[0].source
    assert nb.cells[0].cell_type == "markdown" and "Claim" in nb.cells[0].source


def _errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_under_smoke(name, tmp_path):
    out = notebooks.run(name, profile="smoke", output=tmp_path / f"{name}.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    assert not _errors(nb)
    numbers = paths.results("smoke") / name / "numbers.json"
    data = json.loads(numbers.read_text())
    assert data["notebook"] == name and data["numbers"]
    for ext in ("pdf", "png"):
        fig = paths.figures("smoke") / f"{name}.{ext}"
        assert fig.stat().st_size > 1000
    # printed at its own size: no wider than the paper's text (plot.save also refused text under 7 pt
    # and text running off the figure before it wrote the file)
    box = re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", (paths.figures("smoke") / f"{name}.pdf").read_bytes())
    width, height = float(box[1]) / 72, float(box[2]) / 72
    assert width <= plot.PAGE_WIDTH + 0.05 and height <= 9, (width, height)


def test_notebook_00_reproducible(tmp_path, monkeypatch):
    """Two runs with the same seed, from nothing, give identical numbers."""
    runs = []
    for i in range(2):
        monkeypatch.setenv("DINT_RESULTS", str(tmp_path / f"r{i}"))
        monkeypatch.setenv("DINT_FIGURES", str(tmp_path / f"f{i}"))
        notebooks.run("00_base_model", profile="smoke", output=tmp_path / f"00-{i}.ipynb", progress=False)
        runs.append(json.loads(Path(tmp_path / f"r{i}" / "smoke" / "00_base_model" / "numbers.json").read_text()))
    assert runs[0] == runs[1]


def test_execute_in_one_process_gives_papermills_numbers(tmp_path):
    """`notebooks.execute` (a replication's runs: every notebook in one process) writes the numbers a Papermill
    run of the same notebook writes, bit for bit."""
    notebooks.run("00_base_model", profile="smoke", train_seed=3, output=tmp_path / "00.ipynb", progress=False)
    P = load_profile("smoke", train_seed=3)
    path = artifacts.root(P) / "00_base_model" / "numbers.json"
    by_papermill = json.loads(path.read_text())
    path.unlink()
    assert notebooks.execute(["00_base_model"], profile="smoke", train_seed=3) == [path]
    assert json.loads(path.read_text()) == by_papermill
    assert by_papermill["profile"]["train_seed"] == 3 and "runs" in path.parts
    # without figures (a replication's run): the same numbers, and no figure file written
    figures = sorted(artifacts.figures_root(P).glob("00_base_model*"))
    assert figures
    for f in figures + [path]:
        f.unlink()
    assert notebooks.execute(["00_base_model"], profile="smoke", train_seed=3, figures=False) == [path]
    assert json.loads(path.read_text()) == by_papermill
    assert not list(artifacts.figures_root(P).glob("00_base_model*"))


def test_run_iv():
    with pytest.raises(ValueError, match="unknown notebook"):
        notebooks.run("99_nothing", profile="smoke")
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        notebooks.run("00_base_model", profile="nope")
