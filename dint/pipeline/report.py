"""What a notebook leaves behind: numbers (JSON), tables (parquet) and figures (PDF + PNG).

Numbers are written with their test, effect size and interval, flattened so the paper's macros
can be generated from them; each write is atomic, so a failed run leaves no complete-looking file.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import artifacts
from .. import plot
from ..cache import atomic_write, json_ready
from .config import Profile


_FIGURES = [True]   # whether `Outputs.figure` writes figures (`no_figures` turns it off)


@contextmanager
def no_figures():
    """Within the block, `Outputs.figure` writes no figure (a replication's run: its numbers and tables are
    pooled, its figures are the main run's to show)."""
    _FIGURES.append(False)
    try:
        yield
    finally:
        _FIGURES.pop()


@dataclass(frozen=True)
class Outputs:
    """Output locations of one notebook run: ``results/<profile>/<name>/`` and ``figures/<profile>/``."""

    name: str
    profile: Profile

    @property
    def folder(self) -> Path:
        return artifacts.root(self.profile) / self.name

    @property
    def figures(self) -> Path:
        return artifacts.figures_root(self.profile)

    def figure(self, fig, suffix: str = "") -> list[Path]:
        """Save ``fig`` as ``figures/<profile>/<name><suffix>.pdf`` and ``.png`` (nothing within `no_figures`)."""
        if not _FIGURES[-1]:
            return []
        return plot.save(fig, self.figures / f"{self.name}{suffix}")

    def table(self, name: str, df: pd.DataFrame) -> Path:
        path = self.folder / f"{name}.parquet"
        atomic_write(path, lambda p: df.to_parquet(p, index=False))
        return path

    def numbers(self, numbers: dict) -> Path:
        """Write ``numbers.json``: every quoted number with its interval, test and method."""
        payload = {"notebook": self.name, "profile": self.profile.asdict(), "numbers": json_ready(numbers)}
        path = self.folder / "numbers.json"
        atomic_write(path, lambda p: Path(p).write_text(json.dumps(payload, indent=1)))
        return path


def timings(profile: Profile) -> pd.DataFrame:
    """The pipeline's jobs of a profile with their wall time, from Snakemake's benchmark files
    (``results/<profile>/timings/<job>.tsv``, and a replication's ``runs/<run>/timings/<job>.tsv``, named
    ``<run>/<job>``), longest first.

    Returns
    -------
    DataFrame ``job, minutes, max_rss_mb`` (one row per job of the last run that made its file).
    """
    root = artifacts.root(profile)
    folder = root / "timings"
    files = sorted(folder.glob("*.tsv")) + sorted((root / "runs").glob("*/timings/*.tsv"))
    if not files:
        raise FileNotFoundError(f"no timings under {folder}: run the pipeline (make reproduce) first")
    rows = []
    for f in files:
        t = pd.read_csv(f, sep="\t")
        job = f.stem if f.parent == folder else f"{f.parent.parent.name}/{f.stem}"
        rows.append({"job": job, "minutes": float(t["s"].iloc[-1]) / 60,
                     "max_rss_mb": float(pd.to_numeric(t["max_rss"], errors="coerce").iloc[-1])})
    return pd.DataFrame(rows).sort_values("minutes", ascending=False, ignore_index=True)
