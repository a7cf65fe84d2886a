"""Run the claim notebooks with Papermill, as the pipeline and the test suite do."""
from __future__ import annotations

from pathlib import Path

from . import paths
from .config import load_profile, notebook_parameters

NOTEBOOKS = ("00_base_model", "01_mechanism", "02_engineering_clues", "03_diagnosability", "04_trust_reliability",
             "05_compound_failure", "06_resources", "07_verification")


def path(name: str) -> Path:
    p = paths.notebooks() / f"{name}.ipynb"
    if not p.exists():
        available = sorted(q.stem for q in paths.notebooks().glob("*.ipynb"))
        raise ValueError(f"unknown notebook {name!r}; available: {available}")
    return p


def run(name: str, *, profile: str = "tiny", seed: int | None = None, parameters: dict | None = None,
        output: str | Path | None = None, progress: bool = True) -> Path:
    """Execute a notebook with Papermill; the executed copy goes to ``results/<profile>/notebooks/``.

    Parameters come from, in increasing precedence: the notebook's parameters cell, the profile's
    ``notebooks`` section (`dint.config.notebook_parameters`), and ``parameters``.

    Papermill raises on the first cell that errors; the half-executed copy is then renamed
    ``*.failed.ipynb`` so that nothing incomplete sits under the final name.
    """
    import papermill as pm

    P = load_profile(profile, seed=seed)   # a bad profile, seed or parameter fails here, before a kernel starts
    params = {"profile": profile, "seed": P.seed, **notebook_parameters(profile, name), **(parameters or {})}
    src = path(name)
    out = Path(output) if output else paths.results(profile) / "notebooks" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(paths.notebooks()),
                            kernel_name="python3", progress_bar=progress, log_output=False)
    except Exception:
        if out.exists():
            out.replace(out.with_suffix(".failed.ipynb"))
        raise
    return out
