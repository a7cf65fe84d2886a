"""Run the claim notebooks with Papermill, as the pipeline and the test suite do."""
from __future__ import annotations

import ast
import contextlib
import json
from pathlib import Path

from . import paths
from .config import SECTIONS, check_type, load_profile, notebook_parameters, profile_notebooks

NOTEBOOKS = ("00_base_model", "01_mechanism", "02_engineering_clues", "03_diagnosability", "04_trust_reliability",
             "05_compound_failure", "06_resources", "07_verification", "08_installation")
# the notebooks whose observables exist on the synthetic world only: 08 needs a budget grid of every method, the
# corpus's support for each fact and the mentor relation's reverse and two-hop questions
WORLD_ONLY = ("08_installation",)


def for_profile(name: str) -> tuple[str, ...]:
    """The notebooks profile ``name`` runs: every one of `NOTEBOOKS`, less `WORLD_ONLY` on a real profile."""
    real = load_profile(name).real
    return tuple(nb for nb in NOTEBOOKS if not (real and nb in WORLD_ONLY))


def path(name: str) -> Path:
    """The committed notebook ``notebooks/<name>.ipynb``; ValueError naming the available ones."""
    p = paths.notebooks() / f"{name}.ipynb"
    if not isinstance(name, str) or not p.exists():
        available = sorted(q.stem for q in paths.notebooks().glob("*.ipynb"))
        raise ValueError(f"unknown notebook {name!r}; available: {available}")
    return p


def _cells(name: str) -> list[dict]:
    return [c for c in json.loads(path(name).read_text())["cells"] if c.get("cell_type") == "code"]


def parameters(name: str) -> dict:
    """The parameters a notebook declares: name -> default, from its cell tagged ``parameters``.

    Parameters
    ----------
    name : notebook name, e.g. ``00_base_model``

    Returns
    -------
    dict of name -> default value (a Python literal, e.g. ``seed = 0`` gives ``{"seed": 0}``)
    """
    tagged = [c for c in _cells(name) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"notebooks/{name}.ipynb has {len(tagged)} cells tagged 'parameters'; tag exactly one")
    out = {}
    for node in ast.parse("".join(tagged[0]["source"])).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(
            node, "target", None)
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            out[target.id] = ast.literal_eval(node.value)
    return out


def _type_of(default):
    """The type a parameter declared with ``default`` takes: ``seed = 0`` an int, ``alpha = 0.1`` a
    number, ``interventions = ["sft"]`` a list of strings."""
    if isinstance(default, (list, tuple)):
        kinds = {type(x) for x in default}
        return list[kinds.pop()] if len(kinds) == 1 else list
    if isinstance(default, dict):
        return dict
    return object if default is None else type(default)


def check_parameters(name: str, values: dict, *, where: str = "parameters") -> None:
    """Check notebook parameters against the notebook's parameters cell: every name declared there,
    every value of its default's type (an int for ``seed = 0``; a number, int or float, for
    ``alpha = 0.1``; a list of strings for ``interventions = ["sft"]``).

    Parameters
    ----------
    name : notebook name
    values : parameter -> value
    where : where the values come from, for messages (``config/smoke.yaml notebooks.01_mechanism``)

    Raises
    ------
    ValueError naming the unknown parameter with the valid ones, or the value of the wrong type.
    """
    declared = parameters(name)
    if not isinstance(values, dict):
        raise ValueError(f"{where}: give a mapping of parameter -> value, got {values!r}")
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ValueError(f"{where}: notebook {name} has no parameter(s) {unknown}; valid: {sorted(declared)}")
    for k, v in values.items():
        try:
            check_type(k, v, _type_of(declared[k]))
        except ValueError as e:
            raise ValueError(f"{where}: {e} (notebooks/{name}.ipynb declares {k} = {declared[k]!r})") from None


def _profile_arguments(name: str) -> dict:
    """keyword -> parameter for the notebook's ``load_profile`` calls whose arguments are its own
    parameters (``seed=seed``, ``world=world_params``), so that the launcher checks them as the
    notebook will use them."""
    declared, out = parameters(name), {}
    for cell in _cells(name):
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:   # IPython magics: not a load_profile call
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and "load_profile" in (getattr(node.func, "id", None),
                                                                       getattr(node.func, "attr", None))):
                continue
            for kw in node.keywords:
                if kw.arg in ("seed", "train_seed", *SECTIONS) and isinstance(kw.value, ast.Name) and kw.value.id in declared:
                    out[kw.arg] = kw.value.id
    return out


def _parameters(name: str, profile: str, seed: int | None, train_seed: int | None, parameters: dict | None):
    """The checked parameters of a notebook's run and the profile it loads (see `run`)."""
    P = load_profile(profile, seed=seed, train_seed=train_seed)   # a bad profile or seed fails here
    path(name)
    available = sorted(q.stem for q in paths.notebooks().glob("*.ipynb"))
    unknown = sorted(set(profile_notebooks(profile)) - set(available))
    if unknown:
        raise ValueError(f"config/{profile}.yaml notebooks: unknown notebook(s) {unknown}; available: {available}")
    section, given = notebook_parameters(profile, name), parameters or {}
    for where, values in ((f"config/{profile}.yaml notebooks.{name}", section), ("notebook parameters", given)):
        check_parameters(name, values, where=where)
        if values.get("profile", profile) != profile:
            raise ValueError(f"{where}: profile={values['profile']!r} differs from the run's profile {profile!r}: "
                             "choose the profile with --profile (profile=), not as a parameter")
    params = {"profile": profile, "seed": P.seed, "train_seed": P.train_seed, **section, **given}
    # the notebook's own load_profile call, with its overrides (seed, world_params, ...), made here first
    try:
        ran = load_profile(profile, **{kw: params[p] for kw, p in _profile_arguments(name).items() if p in params})
    except ValueError as e:
        raise ValueError(f"parameters of {name}: {e}") from None
    return params, ran


def run(name: str, *, profile: str = "tiny", seed: int | None = None, train_seed: int | None = None,
        parameters: dict | None = None, output: str | Path | None = None, progress: bool = True) -> Path:
    """Execute a notebook with Papermill; the executed copy goes to ``results/<profile>/notebooks/`` (a run
    at other seeds or with overrides: to that run's folder, `dint.pipeline.artifacts.root`).

    Parameters come from, in increasing precedence: the notebook's parameters cell, the profile's
    ``notebooks`` section (`dint.pipeline.config.notebook_parameters`), and ``parameters``. The profile, the
    seed and every parameter's name and type are checked before a kernel starts, or a folder is
    made (``profile`` is this function's argument, not a parameter).

    Papermill raises on the first cell that errors; the half-executed copy is then renamed
    ``*.failed.ipynb`` so that nothing incomplete sits under the final name.

    Returns
    -------
    the path of the executed notebook
    """
    src = path(name)
    params, ran = _parameters(name, profile, seed, train_seed, parameters)
    import papermill as pm

    from . import artifacts
    from .. import console

    out = Path(output) if output else artifacts.root(ran) / "notebooks" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(paths.notebooks()),
                            kernel_name="python3", progress_bar={"file": console.stream()} if progress else False,
                            log_output=False)
    except Exception:
        if out.exists():
            out.replace(out.with_suffix(".failed.ipynb"))
        raise
    return out


def execute(names, *, profile: str = "tiny", seed: int | None = None, train_seed: int | None = None,
            figures: bool = True) -> list[Path]:
    """Execute notebooks' code in this process, one after another, each in a namespace of its own: what a
    replication's runs use (`dint.pipeline.replication`), which need each notebook's ``numbers.json`` and
    tables but neither a kernel per notebook nor an executed copy.

    The parameters are `run`'s (the notebook's parameters cell, then the profile's ``notebooks`` section, the
    seeds); they are set right after the parameters cell, where Papermill injects them. Figures go to the run's
    folder (`dint.pipeline.artifacts.figures_root`); with ``figures=False`` none is written (the notebooks' own
    code still draws them: only their files are skipped). A notebook that fails raises, and its ``numbers.json``
    is not written (a notebook writes it in its last cell).

    Returns
    -------
    the paths of the ``numbers.json`` written, in the order of ``names``
    """
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import report

    checked = [(name, *_parameters(name, profile, seed, train_seed, None)) for name in names]   # all, before any runs
    out = []
    cwd = os.getcwd()
    with contextlib.nullcontext() if figures else report.no_figures():
        try:
            os.chdir(paths.notebooks())
            for name, params, ran in checked:
                namespace = {"__name__": "__main__", "display": lambda *args, **kwargs: None}
                for cell in _cells(name):
                    exec(compile("".join(cell["source"]), f"{name}.ipynb", "exec"), namespace)
                    if "parameters" in cell.get("metadata", {}).get("tags", []):
                        namespace.update(params)
                plt.close("all")
                out.append(report.Outputs(name, ran).folder / "numbers.json")
        finally:
            os.chdir(cwd)
    return out
