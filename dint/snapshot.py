"""A reference snapshot of a profile's results, kept in the repository: ``snapshots/<profile>/``.

The real profile takes over an hour on a CPU. Its snapshot holds what the paper needs and nothing a model
needs: every notebook's ``numbers.json``, the macros made from them (``macros.tex``), the PNG figures, the
validity table and the verdicts (``verdicts.csv``), with ``manifest.json`` naming the commit and date of the run.
A reader can check every real claim without rerunning it; `paper` builds the profile's paper from the snapshot
alone, and `compare` sets a fresh run's verdicts beside the snapshot's: verdicts, not digits, since training is
not bit-identical across processors.

    dint snapshot write --profile real     # after `make reproduce PROFILE=real`: refresh the snapshot
    dint snapshot paper --profile real     # results/real/paper-snapshot/dint.pdf from the snapshot
    dint snapshot compare --profile real   # a fresh run's verdicts against the snapshot's
    dint snapshot refresh --profile real   # its macros and verdicts again, after a change of the registry
"""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from . import claims
from .pipeline import paths

__all__ = ["compare", "folder", "paper", "refresh", "stale", "verdicts", "write"]

_COLUMNS = ["id", "kind", "verdict", "estimate", "ci_low", "ci_high", "pvalue_holm", "reason"]


def folder(profile: str) -> Path:
    """The snapshot of ``profile``: ``snapshots/<profile>/`` in the repository."""
    return paths.root() / "snapshots" / profile


def _existing(profile: str) -> Path:
    out = folder(profile)
    if not (out / "manifest.json").exists():
        made = sorted(p.name for p in folder(profile).parent.glob("*/manifest.json"))
        raise FileNotFoundError(f"profile={profile!r} has no snapshot in {out.parent} (snapshots: "
                                f"{', '.join(made) or 'none'}); make one with `dint snapshot write "
                                f"--profile {profile}` after its pipeline run")
    return out


def _commit() -> tuple[str, bool]:
    """The repository's commit and whether its tracked files are unchanged from it."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=paths.root(), capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""
    return git("rev-parse", "HEAD") or "unknown", git("status", "--porcelain", "--untracked-files=no") == ""


def write(profile: str) -> Path:
    """Copy a profile's results into its snapshot (replacing the old one): each ``<notebook>/numbers.json``,
    ``macros.tex`` made again from them, the PNG figures, ``validity/validity.tex``, the verdicts and a manifest.

    Raises
    ------
    FileNotFoundError naming what the run has not made yet, before anything is replaced
    """
    from .pipeline import artifacts
    from .pipeline.config import load_profile

    P = load_profile(profile)
    results, figures = artifacts.root(P), artifacts.figures_root(P)
    numbers = sorted(results.glob("*/numbers.json"))
    pngs = sorted(figures.glob("*.png"))
    validity = results / "validity" / "validity.tex"
    missing = [what for what, ok in (("numbers.json", numbers), ("PNG figures", pngs), ("validity table",
                                                                                          validity.exists())) if not ok]
    if missing:
        raise FileNotFoundError(f"the {profile} run has no {', '.join(missing)} under {results} and {figures}: run "
                                f"`make reproduce PROFILE={profile}` first")
    table = claims.judge_profile(profile, claims.numbers(results))   # judged before the old snapshot is touched
    out = folder(profile)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for f in numbers:
        (staging / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, staging / f.parent.name / f.name)
    (staging / "figures").mkdir()
    for f in pngs:
        shutil.copy2(f, staging / "figures" / f.name)
    (staging / "validity").mkdir()
    shutil.copy2(validity, staging / "validity" / validity.name)
    commit, clean = _commit()
    manifest = {"profile": profile, "commit": commit, "tree_clean": clean,
                "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "notebooks": [f.parent.name for f in numbers], "figures": [f.name for f in pngs]}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _derive(profile, staging, table)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)   # the new snapshot appears whole, or the old one stays
    return out


def _derive(profile: str, snap: Path, table: pd.DataFrame) -> None:
    """What a snapshot derives from its own numbers: ``macros.tex``, ``verdicts.csv`` and the manifest's summary."""
    from .pipeline import macros

    macros.write(profile, snap / "macros.tex", folder=snap)
    table[_COLUMNS].to_csv(snap / "verdicts.csv", index=False, float_format="%.6g")
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["summary"] = claims.summary(table)
    (snap / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def refresh(profile: str) -> Path:
    """Derive the snapshot's macros and verdicts again from its numbers, after a change of the macros' format or
    of the registry (no rerun: the numbers, figures and validity table stay)."""
    snap = _existing(profile)
    _derive(profile, snap, verdicts(profile))
    return snap


def stale(profile: str) -> list[str]:
    """The derived files of the snapshot that its numbers, the registry and the macros' format no longer give
    (`refresh` makes them again)."""
    import tempfile

    snap, out = _existing(profile), []
    with tempfile.TemporaryDirectory() as tmp:
        from .pipeline import macros
        if macros.write(profile, Path(tmp) / "macros.tex", folder=snap).read_text() != (snap / "macros.tex").read_text():
            out.append("macros.tex")
    kept = pd.read_csv(snap / "verdicts.csv")
    now = verdicts(profile)
    if list(kept["id"]) != list(now["id"]) or list(kept["verdict"]) != list(now["verdict"]):
        out.append("verdicts.csv")
    return out


def verdicts(profile: str) -> pd.DataFrame:
    """The registry's verdicts on the snapshot's numbers (`dint.claims.judge`)."""
    return claims.judge_profile(profile, claims.numbers(_existing(profile)))


def compare(profile: str) -> pd.DataFrame:
    """A fresh run's verdicts (``results/<profile>``, pooled where the profile is replicated) beside the
    snapshot's, one row per entry that applies: ``id``, ``kind``, ``snapshot``, ``fresh``, ``same`` and both
    estimates. Digits are expected to differ across processors; a verdict is what must agree."""
    from . import replicated

    old = verdicts(profile).set_index("id")
    new = replicated.verdicts(profile)[0].set_index("id")
    ids = [i for i in old.index if old.loc[i, "verdict"] != claims.NOT_APPLICABLE or i in new.index and
           new.loc[i, "verdict"] != claims.NOT_APPLICABLE]
    return pd.DataFrame({"id": ids, "kind": old.loc[ids, "kind"].to_numpy(),
                         "snapshot": old.loc[ids, "verdict"].to_numpy(),
                         "fresh": new.reindex(ids)["verdict"].fillna("missing").to_numpy(),
                         "estimate_snapshot": old.loc[ids, "estimate"].to_numpy(),
                         "estimate_fresh": new.reindex(ids)["estimate"].to_numpy()}).assign(
        same=lambda t: t.snapshot == t.fresh)


def paper(profile: str) -> Path:
    """Build the profile's paper from its snapshot alone: ``results/<profile>/paper-snapshot/dint.pdf``."""
    from . import claims_tex, format_control, replicated
    from .pipeline import artifacts, paper as build
    from .pipeline.config import load_profile

    snap, registry, P = _existing(profile), claims.load(), load_profile(profile)
    table = verdicts(profile)
    problems = claims.check_text(replicated.paper_text(P), registry, table)
    if problems:
        raise ValueError(f"{'real' if P.real else 'world'}.tex contradicts the snapshot's verdicts: " + "; ".join(problems))
    out = artifacts.root(P) / "paper-snapshot" / "claims.tex"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(claims_tex.tex(registry, table) + format_control.tex(profile, registry=registry))
    return build.build(profile, snapshot=snap)
