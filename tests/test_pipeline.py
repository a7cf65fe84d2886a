"""The pipeline (Snakefile): each rule's code inputs come from the code, a profile plans only its own
stacks, a job's output goes to its log, and a changed module reruns what runs it."""
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import dint
from dint.pipeline import codegraph, notebooks, paths


def _env():
    """The environment of a Snakemake run: its jobs' `python` is the one running the tests, as under `make`."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _dry_run(cwd, *config, extra=(), results=None):
    """A dry run's output; with ``results``, of a pipeline whose results and figures go there (a fresh
    folder plans every job, whatever other tests have built)."""
    env = _env()
    if results is not None:
        env.update(DINT_RESULTS=str(Path(results) / "results"), DINT_FIGURES=str(Path(results) / "figures"))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", *extra, "--config", *config],
                       cwd=cwd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def _jobs(text):
    """(rule, inputs, outputs) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \S+:)", text):
        m = re.match(r"(?:local)?rule (\S+):", block.strip())
        if not m:
            continue
        field = {k: [x.strip() for x in v.split(",")] for k, v in re.findall(r"^\s+(input|output|log): (.*)$", block, re.M)}
        jobs.append((m.group(1), field.get("input", []), field.get("output", []), field.get("log", [])))
    return jobs


def test_imports_resolves_relative_absolute_and_attribute_imports():
    src = "import dint\nfrom dint import stats, plot\nfrom dint.interventions import plan\nx = dint.pipeline.config.load_profile\n"
    assert {"dint", "dint.stats", "dint.plot", "dint.interventions", "dint.interventions.plan",
            "dint.pipeline.config"} <= codegraph.imports(src)
    rel = codegraph.imports("from . import record\nfrom ..lazy import LazyModule\n", here="dint.interventions.sft")
    assert rel == {"dint", "dint.interventions", "dint.interventions.record", "dint.lazy"}
    rel = codegraph.imports("from .. import models\nfrom ..stats import Result\n", here="dint.pipeline.artifacts")
    assert {"dint.models", "dint.stats"} <= rel and "dint.stats.Result" not in rel
    pkg = codegraph.imports("from .proportions import mcnemar\n", here="dint.stats", is_package=True)
    assert "dint.stats.proportions" in pkg
    inside = codegraph.imports("def f():\n    from ..interventions import rag\n", here="dint.analyses.stacks")
    assert "dint.interventions.rag" in inside   # a function-level import runs when the function does
    assert codegraph.imports("import numpy as np\nfrom scipy import stats\n") == set()


def test_closure_iv():
    with pytest.raises(ValueError, match="not a module of dint"):
        codegraph.closure("dint.nosuch")
    with pytest.raises(ValueError, match="does not exist"):
        codegraph.closure("notebooks/99_nothing.ipynb")


def test_closure_covers_every_dint_name_a_module_holds():
    """Static closure ⊇ what importing a module binds: each dint module or object a module's namespace
    holds after import comes from a file in its closure (checked on every module of the package)."""
    names = sorted(m.name for m in pkgutil.walk_packages(dint.__path__, prefix="dint.") if m.name != "dint.__main__")
    assert len(names) > 40
    missing = []
    for name in names:
        mod = importlib.import_module(name)
        closure = set(codegraph.closure(name))
        for attr, value in vars(mod).items():
            source = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if not isinstance(source, str) or source.split(".")[0] != "dint" or source.startswith(name + "."):
                continue
            f = codegraph.module_file(source)
            if f is not None and str(f.relative_to(paths.root())) not in closure:
                missing.append((name, attr, source))
    assert not missing


def test_notebook_closure_holds_what_the_notebook_calls():
    c = codegraph.closure("notebooks/05_compound_failure.ipynb")
    assert "dint/divergence.py" in c and "dint/analyses/stacks.py" in c and "notebooks/05_compound_failure.ipynb" in c
    assert "dint/plot/__init__.py" in c and "dint/__init__.py" in c
    assert "dint/taxonomy.py" not in c   # notebook 05 classifies no errors


@pytest.fixture(scope="module")
def smoke_plan(tmp_path_factory):
    return _jobs(_dry_run(paths.root(), "profile=smoke", results=tmp_path_factory.mktemp("plan")))


def test_every_notebook_rule_takes_its_code_closure_as_input(smoke_plan):
    rules = {r: set(i) for r, i, _, _ in smoke_plan}
    for nb in notebooks.NOTEBOOKS:
        inputs = rules[f"notebook_{nb[:2]}"]
        assert set(codegraph.closure(f"notebooks/{nb}.ipynb")) <= inputs, nb


def test_every_job_writes_a_log(smoke_plan):
    jobs = [(r, log) for r, _, _, log in smoke_plan if r != "all"]
    assert len(jobs) > 20
    assert all(len(log) == 1 and "/logs/" in log[0] for _, log in jobs)
    assert len({log[0] for _, log in jobs}) == len(jobs)   # one log per job


def _rel(path):
    """A planned path from its ``results/`` or ``figures/`` folder on (the tests send them to a temporary folder)."""
    return re.sub(r"^.*?(?=(results|figures)/)", "", path)


def test_the_replication_plans_each_other_run_once(smoke_plan):
    """smoke's replication is 2 worlds × 1 training seed: its own run (the rules above) and run w1-t0, whose world
    is pretrained in a job of its own, trained in one job and whose notebooks run in one; then the pooling."""
    rules = [r for r, _, _, _ in smoke_plan]
    assert {r: rules.count(r) for r in ("run_world", "run_train", "run_installation", "run_notebooks", "replication")} == {
        "run_world": 1, "run_train": 1, "run_installation": 1, "run_notebooks": 1, "replication": 1}
    outputs = {r: [_rel(o) for o in outs] for r, _, outs, _ in smoke_plan}
    assert outputs["run_world"] == ["results/smoke/runs/w1/scores/base/manifest.json"]
    assert outputs["run_train"] == ["results/smoke/runs/w1-t0/run.json"]
    # notebook 08's grid is a job of its own, after the run's training and before its notebooks
    assert outputs["run_installation"] == ["results/smoke/runs/w1-t0/installation/manifest.json"]
    assert len(outputs["run_notebooks"]) == len(notebooks.NOTEBOOKS)
    assert set(outputs["replication"]) == {"results/smoke/replication/claims.parquet",
                                           "results/smoke/replication/numbers.json"}
    inputs = {r: [_rel(i) for i in ins] for r, ins, _, _ in smoke_plan}
    assert "results/smoke/runs/w1/scores/base/manifest.json" in inputs["run_train"]
    assert "results/smoke/runs/w1-t0/run.json" in inputs["run_installation"]
    assert "results/smoke/runs/w1-t0/installation/manifest.json" in inputs["run_notebooks"]
    assert {f"results/smoke/{nb}/numbers.json" for nb in notebooks.NOTEBOOKS} <= set(inputs["replication"])
    assert "results/smoke/replication/numbers.json" in inputs["macros"]


def test_one_run_at_other_seeds_is_one_run_with_its_world_apart(tmp_path):
    jobs = _jobs(_dry_run(paths.root(), "profile=smoke", "seed=1", "train_seed=2", results=tmp_path))
    rules = {r for r, _, _, _ in jobs}
    assert not rules & {"run_world", "run_train", "run_notebooks"}
    outputs = {_rel(o) for _, _, outs, _ in jobs for o in outs}
    assert "results/smoke/runs/w1-t2/replication/numbers.json" in outputs   # the one run, judged on its own
    assert "results/smoke/runs/w1/world/manifest.json" in outputs
    assert "results/smoke/runs/w1-t2/models/sft/manifest.json" in outputs
    assert "results/smoke/runs/w1-t2/00_base_model/numbers.json" in outputs


def test_real_profile_plans_exactly_its_stacks(tmp_path):
    from dint.pipeline import config
    from dint.analyses import stacks

    P = config.load_profile("real")
    jobs = _jobs(_dry_run(paths.root(), "profile=real", results=tmp_path))
    trained = {o.split("/stacks/")[1].split("/")[0] for _, _, outs, _ in jobs for o in outs
               if "/stacks/" in o and "/scores/" not in o}
    wanted = {stacks.name(s) for s in stacks.plan(P) + stacks.orders(P)
              if s and s not in stacks.ALIASES}
    assert trained == wanted == {"sft+dpo", "dpo+sft"}


def test_snakemake_bad_seed_fails_before_work():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "profile=smoke", "seed=x"],
                       cwd=paths.root(), capture_output=True, text=True)
    assert r.returncode != 0
    assert "error: --config seed='x'" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture()
def checkout(tmp_path, monkeypatch):
    """A copy of the project's code, notebooks and config, whose results stay inside it."""
    root = tmp_path / "checkout"
    for part in ("dint", "notebooks", "config", "paper"):
        shutil.copytree(paths.root() / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.root() / "Snakefile", root / "Snakefile")
    monkeypatch.delenv("DINT_RESULTS", raising=False)
    monkeypatch.delenv("DINT_FIGURES", raising=False)
    monkeypatch.setenv("DINT_ROOT", str(root))
    return root


def test_a_changed_module_replans_the_notebooks_that_run_it(checkout):
    """With every output in place, appending a line to dint/divergence.py replans notebook 05 (which calls
    divergence.kl), and a change to dint/taxonomy.py replans notebook 03 but not notebook 05."""
    plan = _jobs(_dry_run(checkout, "profile=smoke"))
    future = time.time() + 60
    for _, _, outs, _ in plan:
        for o in outs:
            p = checkout / o
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
            os.utime(p, (future, future))
    assert "Nothing to be done" in _dry_run(checkout, "profile=smoke")
    later = future + 60
    for module, planned, unplanned in (("divergence", {"notebook_05", "notebook_01"}, set()),
                                       ("taxonomy", {"notebook_03"}, {"notebook_05", "notebook_00"})):
        f = checkout / "dint" / f"{module}.py"
        f.write_text(f.read_text() + "\n# changed\n")
        os.utime(f, (later, later))
        rules = {r for r, _, _, _ in _jobs(_dry_run(checkout, "profile=smoke"))}
        assert planned <= rules and not (unplanned & rules), (module, rules)
        f.write_text(f.read_text().removesuffix("\n# changed\n"))
        os.utime(f, (future - 30, future - 30))


def test_a_failing_job_prints_its_log_and_last_lines(checkout):
    """A job's output goes to its log; when it fails, the console names the log and shows its last lines."""
    world = checkout / "dint" / "world.py"
    world.write_text(world.read_text().replace("def build(", "def build(*_, **__):\n    raise RuntimeError('broken world')\n\n\ndef _unused(", 1))
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "results/smoke/world/manifest.json",
                        "--config", "profile=smoke"], cwd=checkout, capture_output=True, text=True,
                       env=_env())
    assert r.returncode != 0
    log = checkout / "results" / "smoke" / "logs" / "world.log"
    assert "broken world" in log.read_text()
    assert "its log, results/smoke/logs/world.log, ends:" in r.stderr and "broken world" in r.stderr


def test_a_job_keeps_its_output_in_its_log(checkout):
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "results/smoke/world/manifest.json",
                        "--config", "profile=smoke"], cwd=checkout, capture_output=True, text=True,
                       env=_env())
    assert r.returncode == 0, r.stderr
    assert "statements ->" in (checkout / "results" / "smoke" / "logs" / "world.log").read_text()
    assert "statements ->" not in r.stdout + r.stderr
