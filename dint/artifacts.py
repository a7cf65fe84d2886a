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

from . import models, paths, realworld
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


def world(profile: Profile, *, rebuild: bool = False):
    """The profile's reference: the synthetic `world_mod.World`, or for a real profile the
    `realworld.RealWorld` of real facts (built on first use)."""
    folder, manifest = world_dir(profile), _manifest(profile, "world", ("world",))
    kind = realworld.RealWorld if profile.real else world_mod.World
    if rebuild or not _valid(folder, manifest):
        w = (realworld.build if profile.real else world_mod.build)(profile.world, seed=profile.seed)
        _build(folder, manifest, w.save)
    return kind.load(folder)


def base_model(profile: Profile, *, rebuild: bool = False, progress: bool = True):
    """The profile's base model and tokenizer: pretrained on its world's corpus on first use, or for
    a real profile the pretrained model its ``base`` section names (`models.pretrained`), checked,
    loaded from local files and cached as a Hugging Face directory.

    Returns
    -------
    model, tokenizer, record (dict: the pretraining record, or the pretrained model's source)
    """
    sections = ("base",) if profile.real else ("world", "base")
    folder, manifest = base_dir(profile), _manifest(profile, "base", sections)
    if rebuild or not _valid(folder, manifest):
        if profile.real:
            model, tok, record = models.pretrained(profile.base)
        else:
            w = world(profile)
            tok = models.word_tokenizer(w.vocabulary())
            model, record = models.pretrain(list(w.corpus), tok, profile.base, seed=profile.seed,
                                            progress=progress)
            record = record.__dict__

        def write(tmp):
            models.save(model, tok, tmp)
            (tmp / "record.json").write_text(json.dumps(record, indent=1))

        _build(folder, manifest, write)
    model, tok = models.load(folder, device=_device(profile))
    return model, tok, json.loads((folder / "record.json").read_text())


def _device(profile: Profile) -> str:
    """Where the profile's models run: a real profile's ``base.device``, else the CPU."""
    return profile.base.resolved_device() if profile.real else "cpu"


def _threads(profile: Profile):
    """Score with the profile's fixed torch thread count (``interventions.threads``), so that a
    score table is the same whether the pipeline or a notebook on its own computes it."""
    return models.torch_threads(profile.interventions.threads)


def score_world(model, tokenizer, w: world_mod.World, profile: Profile, *, route=None,
                progress: bool = False) -> pd.DataFrame:
    """Exact answer distributions of ``model`` on every fact of ``w``, in both prompt forms.

    ``route`` (optional) maps a prompts table to the prompts the model actually sees (e.g. a RAG
    policy's context-augmented prompts); answers and candidates stay the same.

    Returns the scorer's tidy table with ``fact``, ``form``, ``target`` and ``is_true``
    (whether the row's answer is the fact's true value) added.
    """
    tables = []
    for form in world_mod.FORMS:
        P = w.prompts(form)
        if route is not None:
            P = route(P)
        df = score(model, tokenizer, P["prompt"], [[" " + c for c in cs] for cs in P["candidates"]],
                   config=profile.scoring, progress=progress)
        df["answer"] = df["answer"].str[1:]
        df.insert(0, "form", form)
        df.insert(0, "fact", P["fact"].to_numpy()[df["item"].to_numpy()])
        df["is_true"] = df["answer"].to_numpy() == P["target"].to_numpy()[df["item"].to_numpy()]
        tables.append(df.drop(columns="item"))
    return pd.concat(tables, ignore_index=True)


def intervention_dir(profile: Profile, name: str) -> Path:
    return root(profile) / "models" / name


def _intervention_manifest(profile: Profile, name: str, *, grids: tuple[str, ...] = ()) -> dict:
    """Manifest of a trained artifact: the world, the base and the interventions section without the
    experiment grids (`plan.EXPERIMENT_FIELDS`) other than ``grids``, so that widening a sweep does not
    retrain every model."""
    from .interventions.plan import EXPERIMENT_FIELDS

    unknown = sorted(set(grids) - set(EXPERIMENT_FIELDS))
    if unknown:
        raise ValueError(f"grids={unknown!r}: choose among {EXPERIMENT_FIELDS}")
    m = _manifest(profile, "intervention", ("world", "base", "interventions"))
    m["interventions"] = {k: v for k, v in m["interventions"].items() if k not in EXPERIMENT_FIELDS or k in grids}
    return {**m, "name": name}


def _load_intervention(profile: Profile, name: str, folder: Path):
    from .interventions import rag, retrieval, reward
    from .interventions.record import InterventionRecord

    record = InterventionRecord.load(folder / "record.json")
    if name == "reward":
        rm = reward.RewardModel.load(folder, batch_size=profile.interventions.config("reward").score_batch_size)
        return rm, rm.tokenizer, record
    model, tok = models.load(folder, device=_device(profile))
    if name == "rag":
        cfg = profile.interventions
        store = retrieval.build_store(world(profile), cfg.config("store"), seed=profile.seed)
        policy = rag.RAGPolicy(model, tok, store, retrieval.make_retriever("bm25", store), k=cfg.config("rag").k)
        return policy, tok, record
    return model, tok, record


def intervention(profile: Profile, name: str, *, rebuild: bool = False, progress: bool = False):
    """An intervention of the profile's plan (`dint.interventions.plan.NAMES`), trained on first use.

    Returns
    -------
    model, tokenizer, record — the model is a `RewardModel` for ``"reward"`` and a `RAGPolicy`
    for ``"rag"``; record is the `InterventionRecord`.
    """
    from .interventions import plan, rag

    if name not in plan.NAMES:
        raise ValueError(f"unknown intervention {name!r}; choose one of {plan.NAMES}")
    folder, manifest = intervention_dir(profile, name), _intervention_manifest(profile, name)
    if rebuild or not _valid(folder, manifest):
        w = world(profile)
        base, tok, _ = base_model(profile, progress=progress)
        cfg = profile.interventions
        if name == "rlhf":
            start, _, _ = intervention(profile, "sft", progress=progress)
            rm, _, _ = intervention(profile, "reward", progress=progress)
            model, record = plan.rlhf(cfg, w, start, tok, rm, seed=profile.seed, progress=progress)
        elif name == "rag":
            policy, record = rag.run(base, tok, w, cfg.config("rag"), store_config=cfg.config("store"),
                                     retriever="bm25", seed=profile.seed, progress=progress)
            model = policy.model
        else:
            model, record = plan.build(name, cfg, w, base, tok, seed=profile.seed, progress=progress)

        def write(tmp):
            if name == "reward":
                model.save(tmp)
            else:
                models.save(model, tok, tmp)
            record.save(tmp / "record.json")

        _build(folder, manifest, write)
    return _load_intervention(profile, name, folder)


def intervention_scores(profile: Profile, name: str, *, rebuild: bool = False) -> pd.DataFrame:
    """Exact answer distributions of a trained intervention on every fact, both forms (as `base_scores`)."""
    if name == "reward":
        raise ValueError("the reward model scores answers, it does not answer: choose another intervention")
    folder = root(profile) / "scores" / name
    manifest = {**_intervention_manifest(profile, name), "kind": "scores", "scoring": profile.asdict()["scoring"]}
    if rebuild or not _valid(folder, manifest):
        w = world(profile)
        model, tok, _ = intervention(profile, name)
        with _threads(profile):
            if name == "rag":
                table = score_world(model.model, tok, w, profile, route=model.prompts)
            else:
                table = score_world(model, tok, w, profile)
        _build(folder, manifest, lambda tmp: table.to_parquet(tmp / "scores.parquet", index=False))
    return pd.read_parquet(folder / "scores.parquet")


def base_scores(profile: Profile, *, rebuild: bool = False) -> pd.DataFrame:
    """The base model's exact answer distributions on every fact, both forms (scored on first use)."""
    folder = scores_dir(profile)
    manifest = _manifest(profile, "scores", ("world", "base", "scoring"))
    if rebuild or not _valid(folder, manifest):
        w = world(profile)
        model, tok, _ = base_model(profile)
        with _threads(profile):
            table = score_world(model, tok, w, profile)
        _build(folder, manifest, lambda tmp: table.to_parquet(tmp / "scores.parquet", index=False))
    return pd.read_parquet(folder / "scores.parquet")
