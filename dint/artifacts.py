"""Shared artifacts of a run — the world, the base model, its score tables — built once, then loaded.

The Snakefile's rules and the notebooks call the same functions: a notebook opened on its own
builds what is missing, and one run under the pipeline finds it built. Each artifact lives in a
folder with a ``manifest.json`` naming the configuration it was made from; a folder whose
manifest does not match is rebuilt. Folders are written under a temporary name and renamed when
complete, so nothing half-written looks finished.

Artifacts of a profile as its config file defines it live under ``results/<profile>/``; a profile
changed by overrides (a notebook's parameters) gets its own ``results/<profile>/variants/<hash>/``.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pandas as pd

from . import models, paths
from . import world as world_mod
from .config import Profile
from .scoring import score

FORMAT = 1  # bump when an artifact's layout changes


def root(profile: Profile) -> Path:
    """Folder of a profile's shared artifacts."""
    base = paths.results(profile.name)
    return base if profile.is_default() else base / "variants" / profile.digest()


def _manifest(profile: Profile, kind: str, sections: tuple[str, ...]) -> dict:
    d = profile.asdict()
    return {"kind": kind, "format": FORMAT, "seed": profile.seed, **{s: d[s] for s in sections}}


def _valid(folder: Path, manifest: dict) -> bool:
    m = folder / "manifest.json"
    if not m.exists():
        return False
    return json.loads(m.read_text()) == json.loads(json.dumps(manifest))


def _build(folder: Path, manifest: dict, write) -> None:
    """Run ``write(tmp_folder)`` and move the result into place with its manifest."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        extra = write(tmp) or {}
        (tmp / "manifest.json").write_text(json.dumps({**manifest, **extra}, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def world_dir(profile: Profile) -> Path:
    return root(profile) / "world"


def base_dir(profile: Profile) -> Path:
    return root(profile) / "models" / "base"


def scores_dir(profile: Profile) -> Path:
    return root(profile) / "scores" / "base"


def world(profile: Profile, *, rebuild: bool = False) -> world_mod.World:
    """The profile's reference world (built on first use)."""
    folder, manifest = world_dir(profile), _manifest(profile, "world", ("world",))
    if rebuild or not _valid(folder, manifest):
        w = world_mod.build(profile.world, seed=profile.seed)
        _build(folder, manifest, w.save)
    return world_mod.World.load(folder)


def base_model(profile: Profile, *, rebuild: bool = False, progress: bool = True):
    """The profile's base model and tokenizer, pretrained on its world's corpus on first use.

    Returns
    -------
    model, tokenizer, record (dict: the pretraining record)
    """
    folder, manifest = base_dir(profile), _manifest(profile, "base", ("world", "base"))
    if rebuild or not _valid(folder, manifest):
        w = world(profile)
        tok = models.word_tokenizer(w.vocabulary())
        model, record = models.pretrain(list(w.corpus), tok, profile.base, seed=profile.seed,
                                        progress=progress)

        def write(tmp):
            models.save(model, tok, tmp)
            (tmp / "record.json").write_text(json.dumps(record.__dict__, indent=1))

        _build(folder, manifest, write)
    model, tok = models.load(folder)
    return model, tok, json.loads((folder / "record.json").read_text())


def score_world(model, tokenizer, w: world_mod.World, profile: Profile, *, progress: bool = False) -> pd.DataFrame:
    """Exact answer distributions of ``model`` on every fact of ``w``, in both prompt forms.

    Returns the scorer's tidy table with ``fact``, ``form``, ``target`` and ``correct_answer``
    (whether the row's answer is the fact's true value) added.
    """
    tables = []
    for form in world_mod.FORMS:
        P = w.prompts(form)
        df = score(model, tokenizer, P["prompt"], [[" " + c for c in cs] for cs in P["candidates"]],
                   config=profile.scoring, progress=progress)
        df["answer"] = df["answer"].str[1:]
        df.insert(0, "form", form)
        df.insert(0, "fact", P["fact"].to_numpy()[df["item"].to_numpy()])
        df["is_true"] = df["answer"].to_numpy() == P["target"].to_numpy()[df["item"].to_numpy()]
        tables.append(df.drop(columns="item"))
    return pd.concat(tables, ignore_index=True)


def base_scores(profile: Profile, *, rebuild: bool = False) -> pd.DataFrame:
    """The base model's exact answer distributions on every fact, both forms (scored on first use)."""
    folder = scores_dir(profile)
    manifest = _manifest(profile, "scores", ("world", "base", "scoring"))
    if rebuild or not _valid(folder, manifest):
        w = world(profile)
        model, tok, _ = base_model(profile)
        table = score_world(model, tok, w, profile)
        _build(folder, manifest, lambda tmp: table.to_parquet(tmp / "scores.parquet", index=False))
    return pd.read_parquet(folder / "scores.parquet")
