"""Where things live: one place, so code and notebooks run from any directory.

The project root is ``$DINT_ROOT`` when set, else the checkout this package sits in (the folder
holding ``config/`` and the Snakefile), else the current directory. Outputs go to
``results/<profile>/`` and ``figures/<profile>/`` under the root, or under ``$DINT_RESULTS`` and
``$DINT_FIGURES`` when set (the test suite sends them to a temporary folder).
"""
from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    if "DINT_ROOT" in os.environ:
        return Path(os.environ["DINT_ROOT"]).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "config").is_dir():
        return here
    return Path.cwd()


def config_dir() -> Path:
    return root() / "config"


def notebooks() -> Path:
    return root() / "notebooks"


def results(profile: str) -> Path:
    base = Path(os.environ["DINT_RESULTS"]) if "DINT_RESULTS" in os.environ else root() / "results"
    return base / profile


def figures(profile: str) -> Path:
    base = Path(os.environ["DINT_FIGURES"]) if "DINT_FIGURES" in os.environ else root() / "figures"
    return base / profile
