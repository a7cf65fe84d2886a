"""Shared artifacts of a run — the world, the base model, its score tables — built once, then loaded.

The Snakefile's rules and the notebooks call the same functions: a notebook opened on its own
builds what is missing, and one run under the pipeline finds it built. Each artifact lives in a
folder with a ``manifest.json`` (the pipeline's rules name it as their output) holding

- the configuration the artifact was made from (the profile's sections and seed, the layout `FORMAT`),
- ``inputs``: the content digest of each artifact it was built from (the world for the base model,
  the base model for an intervention, a stack's prefix, the reward model for RL, ...),
- ``files``: the SHA256 and size of every file the folder holds, and ``digest``, the folder's content
  digest (`digest`).

`cached` is the one way an artifact is found or built: it checks the manifest against the current
configuration and inputs and every file against its hash, and rebuilds the artifact when anything
differs, with an `ArtifactWarning` naming the file that did not match. An upstream artifact rebuilt
with other content so invalidates what was built from it; rebuilt with the same content, it does not.
Each artifact has an ``ensure_*`` function that returns its folder, valid (what a dependant names as
an input), and a function that loads it (`world`, `base_model`, `intervention`, the score tables).
Folders are written under a temporary name and renamed when complete, so nothing half-written looks
finished.

Artifacts of a profile as its config file defines it live under ``results/<profile>/``. A run at other
seeds (a replication's run, `dint.pipeline.config.replication`) lives in ``results/<profile>/runs/w<w>-t<t>/``;
the world, the base model and its scores depend on the world seed only and are shared by the runs of a
world (`world_root`): in ``results/<profile>/`` for the profile's own world seed, else in
``results/<profile>/runs/w<w>/``. A profile changed by overrides (a notebook's parameters) gets its own
``results/<profile>/variants/<hash>/`` for everything.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from .. import cache, models, realworld
from . import paths
from .. import world as world_mod
from .config import Profile, load_profile
from ..scoring import score

FORMAT = 2  # bump when an artifact's layout changes (2: file hashes and input digests in the manifest)
MANIFEST = "manifest.json"
# Build records hold wall-clock times, which differ between two builds of the same content: they are
# verified like every file but left out of the content digest that dependants record.
RECORDS = frozenset({"record.json"})
_BUILT = ("inputs", "files", "digest")   # manifest keys written by `cached`, not by its caller


class ArtifactWarning(UserWarning):
    """A cached artifact did not match its manifest, or an artifact it was built from changed: it is rebuilt."""


def _below(base: Path, profile: Profile) -> Path:
    if profile.is_default():
        return base
    if profile.same_sections():
        return base / "runs" / profile.run
    return base / "variants" / profile.digest()


def root(profile: Profile) -> Path:
    """Folder of a run's artifacts and results: ``results/<profile>/`` at the profile's own seeds,
    ``results/<profile>/runs/w<w>-t<t>/`` at other seeds, ``results/<profile>/variants/<hash>/`` with overrides."""
    return _below(paths.results(profile.name), profile)


def figures_root(profile: Profile) -> Path:
    """Folder of a run's figures: ``figures/<profile>/``, or the run's or variant's own folder below it, as `root`."""
    return _below(paths.figures(profile.name), profile)


def world_root(profile: Profile) -> Path:
    """Folder of what a run's world seed alone fixes (the world, the base model, its scores), shared by the runs
    of one world: ``results/<profile>/`` for the profile's own world seed, ``results/<profile>/runs/w<w>/`` for
    another; a variant keeps its own (`root`)."""
    if not profile.same_sections():
        return root(profile)
    own = load_profile(profile.name)
    base = paths.results(profile.name)
    return base if profile.seed == own.seed else base / "runs" / f"w{profile.seed}"


def _manifest(profile: Profile, kind: str, sections: tuple[str, ...], *, trained: bool = True) -> dict:
    """What an artifact depends on besides its inputs: its kind, the seeds (the training seed for what is
    trained from the base model, ``trained``) and the profile's sections it reads."""
    d = profile.asdict()
    seeds = {"seed": profile.seed, **({"train_seed": profile.train_seed} if trained else {})}
    return {"kind": kind, **seeds, **{s: d[s] for s in sections}}


# ------------------------------------------------------------------------------ cache or build
def hash_files(folder: str | Path) -> dict:
    """SHA256 and size of every file in an artifact folder, its manifest excepted.

    Parameters
    ----------
    folder : the artifact's folder

    Returns
    -------
    dict relative path (``/``-separated) -> ``{"sha256": hex digest, "size": bytes}``, sorted by path
    """
    folder = Path(folder)
    out = {}
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if rel != MANIFEST and f.is_file():
            out[rel] = {"sha256": cache.file_digest(f), "size": f.stat().st_size}
    return out


def _content_digest(files: dict) -> str:
    """SHA256 of the files' paths and digests, build records (`RECORDS`) excepted."""
    body = {rel: f["sha256"] for rel, f in files.items() if Path(rel).name not in RECORDS}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when it has none or it is not a JSON object."""
    try:
        m = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def verify(folder: str | Path) -> list[str]:
    """Check an artifact's files against its manifest.

    Parameters
    ----------
    folder : the artifact's folder

    Returns
    -------
    list of str: one line per problem (a file missing, of another size, with another SHA256, or not in
    the manifest; a manifest that is absent, unreadable or of an earlier layout); empty when intact.
    """
    folder = Path(folder)
    m = _read_manifest(folder)
    if m is None:
        return [f"{MANIFEST} is missing or not a JSON object"]
    files = m.get("files")
    if m.get("format") != FORMAT or not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
        return [f"{MANIFEST} has layout format {m.get('format')!r}, this version writes {FORMAT}"]
    present = {f.relative_to(folder).as_posix(): f for f in folder.rglob("*") if f.is_file()}
    present.pop(MANIFEST, None)
    problems = [f"{rel} is not in the manifest" for rel in sorted(set(present) - set(files))]
    sized = []
    for rel, want in files.items():
        if rel not in present:
            problems.append(f"{rel} is missing")
        elif (size := present[rel].stat().st_size) != want.get("size"):
            problems.append(f"{rel} has {size} bytes, the manifest says {want.get('size')} (truncated or overwritten)")
        else:
            sized.append(rel)
    if problems:   # hash only when every file is where it should be, at its size
        return problems
    for rel in sized:
        try:
            if cache.file_digest(present[rel]) != files[rel].get("sha256"):
                problems.append(f"{rel} does not match its SHA256 in the manifest (modified)")
        except OSError as e:
            problems.append(f"{rel} cannot be read ({e.strerror})")
    if not problems and m.get("digest") != _content_digest(files):
        problems.append(f"the digest in {MANIFEST} does not match its file list")
    return problems


def digest(folder: str | Path) -> str:
    """Content digest of a built artifact: a SHA256 over its files' paths and SHA256s, build records
    (`RECORDS`) excepted, so that two builds of the same content share it.

    Parameters
    ----------
    folder : the folder of a built artifact, as `cached` (or an ``ensure_*`` function) returns it

    Returns
    -------
    str: 64 hex characters, read from the artifact's manifest (which `cached` has verified)
    """
    m = _read_manifest(Path(folder))
    if m is None or m.get("format") != FORMAT or not isinstance(m.get("digest"), str):
        raise ValueError(f"folder={str(folder)!r} is not an artifact built by this version (no {MANIFEST} of "
                         f"format {FORMAT}): pass the folder that artifacts.cached returned")
    return m["digest"]


def _expected(manifest: Mapping, inputs: Mapping[str, str | Path] | None) -> dict:
    """The manifest's configuration part as JSON reads it back, with the layout format and input digests."""
    if not isinstance(manifest, Mapping):
        raise ValueError(f"manifest={manifest!r}: pass a dict describing the artifact's configuration")
    reserved = sorted(set(manifest) & {"format", *_BUILT})
    if reserved:
        raise ValueError(f"manifest has the key(s) {reserved}, which cached writes itself: rename them")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise ValueError(f"inputs={inputs!r}: pass a dict name -> folder of a built artifact")
    deps = {str(k): digest(v) for k, v in (inputs or {}).items()}
    return json.loads(json.dumps({**manifest, "format": FORMAT, "inputs": deps}))


def _stale(folder: Path, expected: dict) -> tuple[str, bool] | None:
    """Why ``folder`` cannot be used as built (and whether that deserves a warning), or None when it can."""
    stored = _read_manifest(folder)
    if stored is None:
        if (folder / MANIFEST).exists():
            return f"its {MANIFEST} cannot be read", True
        return "not built", False
    if stored.get("format") != FORMAT:
        return "built by an earlier layout", False
    config = {k: v for k, v in stored.items() if k not in _BUILT}
    if config != {k: v for k, v in expected.items() if k != "inputs"}:
        return "built with another configuration", False
    was, now = stored.get("inputs") or {}, expected["inputs"]
    changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    if changed:
        return f"the artifact(s) it was built from changed: {', '.join(changed)}", True
    problems = verify(folder)
    if problems:
        return "; ".join(problems), True
    return None


def _build(folder: Path, manifest: dict, write: Callable[[Path], object]) -> None:
    """Run ``write(tmp_folder)``, hash what it wrote, and move it into place with its manifest."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        write(tmp)
        files = hash_files(tmp)   # after the files are complete
        full = {**manifest, "files": files, "digest": _content_digest(files)}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def cached(folder: str | Path, manifest: Mapping, build: Callable[[Path], object], *,
           inputs: Mapping[str, str | Path] | None = None, rebuild: bool = False) -> Path:
    """An artifact's folder, built by ``build`` unless a valid one is there.

    The folder is valid when its manifest records ``manifest``, the current layout `FORMAT` and the
    content `digest` of every folder in ``inputs``, and every file it holds matches its SHA256 and size
    in the manifest (no file missing, none added). Otherwise it is rebuilt: with an `ArtifactWarning`
    naming the folder and the file that did not match, or the input that changed (silently when it was
    never built or was built with another configuration).

    Parameters
    ----------
    folder : where the artifact lives
    manifest : JSON-serialisable dict of everything its content depends on besides its inputs (the
        profile's sections, seed, kind); the keys ``format``, ``inputs``, ``files`` and ``digest`` are
        written by `cached`
    build : called as ``build(tmp)`` with an empty temporary folder; writes the artifact's files there.
        The folder is hashed and renamed into place only when ``build`` returns, so a failed build leaves
        nothing behind
    inputs : name -> folder of each artifact this one is built from, already built (the folders that
        `cached` or an ``ensure_*`` function returned): a rebuilt input with other content invalidates it
    rebuild : build even if a valid artifact exists

    Returns
    -------
    pathlib.Path: ``folder``, valid
    """
    folder = Path(folder)
    expected = _expected(manifest, inputs)
    if not rebuild:
        why = _stale(folder, expected)
        if why is None:
            return folder
        reason, warn = why
        if warn:
            warnings.warn(f"artifact {folder}: {reason}; rebuilding it", ArtifactWarning, stacklevel=2)
    _build(folder, expected, build)
    return folder


def cached_table(folder: str | Path, manifest: Mapping, compute: Callable[[], pd.DataFrame], *, file: str,
                 inputs: Mapping[str, str | Path] | None = None, rebuild: bool = False) -> pd.DataFrame:
    """A table artifact: `cached` with a build that writes ``compute()`` as one parquet file.

    Parameters
    ----------
    folder, manifest, inputs, rebuild : as in `cached`
    compute : called with no arguments when the artifact must be built; returns the table
    file : the parquet file's name in ``folder`` (e.g. ``"scores.parquet"``)

    Returns
    -------
    DataFrame: the table read back from ``folder / file``
    """
    if not isinstance(file, str) or not file.endswith(".parquet") or "/" in file:
        raise ValueError(f"file={file!r}: give a file name ending in .parquet, e.g. 'scores.parquet'")
    folder = cached(folder, manifest, lambda tmp: compute().to_parquet(tmp / file, index=False),
                    inputs=inputs, rebuild=rebuild)
    return pd.read_parquet(folder / file)


# ------------------------------------------------------------------------------ world and base model
def world_dir(profile: Profile) -> Path:
    return world_root(profile) / "world"


def base_dir(profile: Profile) -> Path:
    return world_root(profile) / "models" / "base"


def scores_dir(profile: Profile) -> Path:
    return world_root(profile) / "scores" / "base"


def ensure_world(profile: Profile, *, rebuild: bool = False) -> Path:
    """The folder of the profile's world, built (or rebuilt) unless valid (`cached`)."""
    def build(tmp):
        w = (realworld.build if profile.real else world_mod.build)(profile.world, seed=profile.seed)
        w.save(tmp)

    return cached(world_dir(profile), _manifest(profile, "world", ("world",), trained=False), build, rebuild=rebuild)


def world(profile: Profile, *, rebuild: bool = False):
    """The profile's reference: the synthetic `world_mod.World`, or for a real profile the
    `realworld.RealWorld` of real facts (built on first use)."""
    kind = realworld.RealWorld if profile.real else world_mod.World
    return kind.load(ensure_world(profile, rebuild=rebuild))


def ensure_base(profile: Profile, *, rebuild: bool = False, progress: bool = True) -> Path:
    """The folder of the profile's base model, built (or rebuilt) unless valid (`cached`).

    A synthetic profile's base is pretrained on its world's corpus (an input: a world rebuilt with other
    content retrains it); a real profile's is converted from the pretrained model its ``base`` section
    names, outside ``results/``: `models.pretrained` checks a GGUF file by SHA256 and raises, naming the
    file and how to restore it, when it is missing or altered.
    """
    sections = ("base",) if profile.real else ("world", "base")
    inputs = {} if profile.real else {"world": ensure_world(profile)}

    def build(tmp):
        if profile.real:
            model, tok, record = models.pretrained(profile.base)
        else:
            w = world(profile)
            tok = models.word_tokenizer(w.vocabulary())
            model, record = models.pretrain(list(w.corpus), tok, profile.base, seed=profile.seed,
                                            progress=progress)
            record = record.__dict__
        models.save(model, tok, tmp)
        (tmp / "record.json").write_text(json.dumps(record, indent=1))

    return cached(base_dir(profile), _manifest(profile, "base", sections, trained=False), build, inputs=inputs, rebuild=rebuild)


def base_model(profile: Profile, *, rebuild: bool = False, progress: bool = True):
    """The profile's base model and tokenizer: pretrained on its world's corpus on first use, or for
    a real profile the pretrained model its ``base`` section names (`models.pretrained`), checked,
    loaded from local files and cached as a Hugging Face directory.

    Returns
    -------
    model, tokenizer, record (dict: the pretraining record, or the pretrained model's source)
    """
    folder = ensure_base(profile, rebuild=rebuild, progress=progress)
    model, tok = models.load(folder, device=_device(profile))
    return model, tok, json.loads((folder / "record.json").read_text())


def _device(profile: Profile) -> str:
    """Where the profile's models run: a real profile's ``base.device``, else the CPU."""
    return profile.base.resolved_device() if profile.real else "cpu"


def threads(profile: Profile):
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


def intervention_manifest(profile: Profile, name: str, *, grids: tuple[str, ...] = ()) -> dict:
    """Manifest of a trained artifact: the world, the base and the interventions section without the
    experiment grids (`plan.EXPERIMENT_FIELDS`) other than ``grids``, so that widening a sweep does not
    retrain every model, and without the profile's own methods (``interventions.custom``), so that adding one
    retrains nothing else; the artifact of an own method records its entry and its source file's SHA256
    (``custom``), so that a changed function retrains it."""
    from ..interventions.plan import EXPERIMENT_FIELDS

    unknown = sorted(set(grids) - set(EXPERIMENT_FIELDS))
    if unknown:
        raise ValueError(f"grids={unknown!r}: choose among {EXPERIMENT_FIELDS}")
    m = _manifest(profile, "intervention", ("world", "base", "interventions"))
    m["interventions"] = {k: v for k, v in m["interventions"].items()
                          if (k not in EXPERIMENT_FIELDS or k in grids) and k != "custom"}
    if name in profile.interventions.custom:
        m["custom"] = {**profile.interventions.custom[name], "source_sha256": profile.interventions.method(name).digest()}
    return {**m, "name": name}


def load_intervention(profile: Profile, name: str, folder: Path):
    from ..interventions import rag, retrieval, reward
    from ..interventions.record import InterventionRecord

    record = InterventionRecord.load(folder / "record.json")
    if name == "reward":
        rm = reward.RewardModel.load(folder, batch_size=profile.interventions.config("reward").score_batch_size)
        return rm, rm.tokenizer, record
    model, tok = models.load(folder, device=_device(profile))
    if name == "rag":
        cfg = profile.interventions
        store = retrieval.build_store(world(profile), cfg.config("store"), seed=profile.train_seed)
        policy = rag.RAGPolicy(model, tok, store, retrieval.make_retriever("bm25", store), k=cfg.config("rag").k)
        return policy, tok, record
    return model, tok, record


def ensure_intervention(profile: Profile, name: str, *, rebuild: bool = False, progress: bool = False) -> Path:
    """The folder of an intervention of the profile's plan, trained (or retrained) unless valid (`cached`).

    Its inputs are the world and the base model, and for ``"rlhf"`` the SFT model it starts from and the
    reward model it optimises. ``name`` may be one of the profile's own methods (``interventions.custom``), trained
    from the base model by its function (`dint.interventions.custom`).
    """
    from ..interventions import plan, rag

    if name not in plan.names(profile.interventions):
        raise ValueError(f"unknown intervention {name!r}; choose one of {plan.names(profile.interventions)}")
    inputs = {"world": ensure_world(profile), "base": ensure_base(profile, progress=progress)}
    if name == "rlhf":
        inputs["sft"] = ensure_intervention(profile, "sft", progress=progress)
        inputs["reward"] = ensure_intervention(profile, "reward", progress=progress)

    def build(tmp):
        w = world(profile)
        base, tok, _ = base_model(profile, progress=progress)
        cfg = profile.interventions
        if name == "rlhf":
            start, _, _ = intervention(profile, "sft", progress=progress)
            rm, _, _ = intervention(profile, "reward", progress=progress)
            model, record = plan.rlhf(cfg, w, start, tok, rm, seed=profile.train_seed, progress=progress)
        elif name == "rag":
            policy, record = rag.run(base, tok, w, cfg.config("rag"), store_config=cfg.config("store"),
                                     retriever="bm25", seed=profile.train_seed, progress=progress)
            model = policy.model
        else:
            model, record = plan.build(name, cfg, w, base, tok, seed=profile.train_seed, progress=progress)
        if name == "reward":
            model.save(tmp)
        else:
            models.save(model, tok, tmp)
        record.save(tmp / "record.json")

    return cached(intervention_dir(profile, name), intervention_manifest(profile, name), build, inputs=inputs,
                  rebuild=rebuild)


def intervention(profile: Profile, name: str, *, rebuild: bool = False, progress: bool = False):
    """An intervention of the profile's plan (`dint.interventions.plan.names`: the built-in ones and the profile's
    own methods), trained on first use.

    Returns
    -------
    model, tokenizer, record — the model is a `RewardModel` for ``"reward"`` and a `RAGPolicy`
    for ``"rag"``; record is the `InterventionRecord`.
    """
    folder = ensure_intervention(profile, name, rebuild=rebuild, progress=progress)
    return load_intervention(profile, name, folder)


def intervention_scores(profile: Profile, name: str, *, rebuild: bool = False) -> pd.DataFrame:
    """Exact answer distributions of a trained intervention on every fact, both forms (as `base_scores`)."""
    if name == "reward":
        raise ValueError("the reward model scores answers, it does not answer: choose another intervention")
    manifest = {**intervention_manifest(profile, name), "kind": "scores", "scoring": profile.asdict()["scoring"]}

    def compute():
        w = world(profile)
        model, tok, _ = intervention(profile, name)
        with threads(profile):
            if name == "rag":
                return score_world(model.model, tok, w, profile, route=model.prompts)
            return score_world(model, tok, w, profile)

    model_folder = ensure_intervention(profile, name)   # an unknown name fails here, before any work
    inputs = {"world": ensure_world(profile), "model": model_folder}
    return cached_table(root(profile) / "scores" / name, manifest, compute, file="scores.parquet", inputs=inputs,
                        rebuild=rebuild)


def base_scores(profile: Profile, *, rebuild: bool = False) -> pd.DataFrame:
    """The base model's exact answer distributions on every fact, both forms (scored on first use)."""
    def compute():
        w = world(profile)
        model, tok, _ = base_model(profile)
        with threads(profile):
            return score_world(model, tok, w, profile)

    inputs = {"world": ensure_world(profile), "base": ensure_base(profile)}
    return cached_table(scores_dir(profile), _manifest(profile, "scores", ("world", "base", "scoring"), trained=False), compute,
                        file="scores.parquet", inputs=inputs, rebuild=rebuild)
