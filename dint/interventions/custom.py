"""Your own intervention: a post-training method in your own module, named in a profile, run beside the built-in ones.

A profile names it under ``interventions.custom``, as ``"<module>:<function>"``, alone or with the method's
settings (its ``config``)::

    interventions:
      custom:
        kto: examples.kto:run                                        # default settings
        kto_strong: {function: "examples.kto:run", config: {beta: 0.5}}

The pipeline trains each one once from the profile's base model and scores it on every fact (a cached artifact,
as ``sft`` or ``dpo``: ``dint build intervention kto``), and notebooks 01-07 show it beside the built-in methods.

The contract
------------
The function is called as ``function(model, tokenizer, data, config, *, seed, threads, progress)``:

model : the profile's base model, a `transformers` causal LM; a copy that is the method's own
tokenizer : its tokenizer (pad and eos tokens set), a copy too; the returned model is scored with it
data : `Data`, what the world gives a method to train on, all of it from the train facts: the SFT demonstrations
    (true answers), the biased labelers' preference pairs (the profile's ``interventions.labeler``), the labelers'
    config and the world itself, to build other data from (e.g. unpaired feedback for KTO)
config : the method's ``config`` from the profile. When the function annotates this parameter with a dataclass
    (``config: KTOConfig``), it gets that dataclass, built when the profile loads (each name and type checked as
    the built-in methods' sections are, then the dataclass's own checks); otherwise the mapping as written
seed : the run's training seed, the method's only source of randomness (Python's, NumPy's and torch's generators
    are seeded with it for the call, and the caller's states restored after)
threads : the torch threads the method runs on (the profile's ``interventions.threads``, set for the call)
progress : whether to show a progress bar

It returns ``(model, record)``: a `transformers` causal LM (a ``PreTrainedModel`` with an LM head and the
tokenizer's vocabulary; LoRA adapters merged, ``merge_and_unload()``) and an `InterventionRecord` whose
``train_flops`` count the forward and backward passes that trained it (6·N·tokens,
`dint.interventions.record.train_flops`) and ``inference_flops`` the forward passes that only scored (2·N·tokens,
`dint.interventions.record.inference_flops`: a frozen reference model's, a sampler's), which notebook 06 charges
to it. ``record.extra["taught_wrong"]`` may list the train facts whose training data made a wrong value the
target (`dint.causes.taught_wrong`): notebook 03 then knows the cause of the errors the method's data taught.
`examples/kto.py` is a worked example (KTO with TRL's ``KTOTrainer``).

Where the module is found
-------------------------
By name, as Python imports it; when a profile loads, the project folder (the one holding ``config/``) is also
searched, after the installed packages, so that ``examples.kto`` is ``examples/kto.py`` of a fresh clone. Put a
module of your own beside it, or install it as a package. The artifact records the SHA256 of the function's
source file, so a changed file retrains the method (the pipeline also reruns its job).

Checked before any work: the name (lowercase letters, digits and underscores, starting with a letter; not a
built-in intervention or another name the pipeline uses, `RESERVED`), the function's import, its signature and
its config; a problem is one ``ValueError`` naming ``interventions.custom.<name>`` and the fix. What the function
returns is checked as it returns, before anything is saved.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import inspect
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from .record import InterventionRecord

__all__ = ["RESERVED", "SIGNATURE", "Data", "Method", "data", "methods", "run", "search"]

SIGNATURE = "function(model, tokenizer, data, config, *, seed, threads, progress) -> (model, InterventionRecord)"
# the names the pipeline gives its own models and folders: the built-in interventions, the stacks' steps, the base,
# and the artifacts named beside the interventions (`dint.pipeline.artifacts.intervention_manifest`)
RESERVED = ("sft", "sft_lora", "sft_sham", "sft_format", "dpo", "dpo_lora", "reward", "rlhf", "rag", "rl", "base",
            "rag_stale", "stack", "stacks", "rl_sweep", "aligned", "training_curve", "lora_sweep", "installation",
            "custom")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FUNCTION = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class Data:
    """What the world gives a method to train on: the train facts only, built with the run's training seed."""

    world: object                # `dint.world.World` (or `dint.realworld.RealWorld`): facts, prompts(form, facts), values
    facts: pd.DataFrame          # the train facts (rows of ``world.facts``), the only facts a method may train on
    demos: pd.DataFrame          # `data.sft_demos`: ``fact, relation, prompt, completion`` (the true answer, QA form)
    pairs: pd.DataFrame          # `data.preference_pairs`: ``fact, prompt, chosen, rejected, chosen_true, style_chosen``
    labeler: object              # `data.LabelerConfig`, the profile's labelers (``interventions.labeler``)


def data(world, labeler, *, seed: int = 0) -> Data:
    """The `Data` of a world for its train facts: demonstrations and the labelers' pairs (seeded by ``seed``)."""
    from . import data as world_data

    facts = world.facts[world.facts["split"] == "train"]
    return Data(world=world, facts=facts, demos=world_data.sft_demos(world, facts=facts),
                pairs=world_data.preference_pairs(world, labeler, facts=facts, seed=seed), labeler=labeler)


@dataclass(frozen=True)
class Method:
    """One method of a profile's ``interventions.custom``: its ``name``, its ``function`` (``"module:function"``)
    and its ``config`` (the settings as the profile writes them)."""

    name: str
    function: str
    config: dict

    @property
    def where(self) -> str:
        return f"interventions.custom.{self.name}"

    def load(self) -> Callable:
        """The function, imported (a ``ValueError`` naming the method when it cannot be)."""
        module_name, attr = self.function.split(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as e:   # a missing module, or one that fails as it imports: the user's to mend
            raise ValueError(f"{self.where}: cannot import module {module_name!r} ({type(e).__name__}: {e}); put it "
                             "in the project folder (the one holding config/, e.g. examples/kto.py for "
                             "'examples.kto') or install it") from None
        fn = getattr(module, attr, None)
        if not callable(fn):
            found = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
            raise ValueError(f"{self.where}: module {module_name!r} has no function {attr!r}; its functions: {found}")
        return fn

    def config_class(self) -> type | None:
        """The dataclass the function annotates its config with, or None (it takes the mapping); the function's
        signature checked against `SIGNATURE`."""
        fn = self.load()
        try:
            sig = inspect.signature(fn)
            sig.bind(None, None, None, None, seed=0, threads=0, progress=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.where}: {self.function} cannot be called as {SIGNATURE} ({e}); define it as "
                             "def run(model, tokenizer, data, config, *, seed, threads, progress)") from None
        positional = [p for p in sig.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) < 4 or positional[3].annotation is inspect.Parameter.empty:
            return None
        hint = positional[3].annotation
        if isinstance(hint, str):   # postponed annotations: resolved in the function's module
            try:
                hint = eval(hint, getattr(fn, "__globals__", {}))
            except Exception as e:
                raise ValueError(f"{self.where}: the annotation {positional[3].annotation!r} of {self.function}'s "
                                 f"config cannot be resolved ({type(e).__name__}: {e}); annotate it with a dataclass "
                                 "of the module, or leave it out to get the mapping") from None
        return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None

    def settings(self):
        """What the function gets as ``config``: its config dataclass built from `config` (the dataclass's own
        checks run), or the mapping itself."""
        cls = self.config_class()
        if cls is None:
            return dict(self.config)
        valid = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(self.config) - valid)
        if unknown:
            raise ValueError(f"unknown {self.where}.config parameter(s) {unknown}; valid: {sorted(valid)}")
        try:
            return cls(**self.config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.where}.config: {e}") from None

    def source(self) -> Path | None:
        """The source file of the function's module (None where it has none)."""
        module = sys.modules.get(self.function.split(":")[0])
        if module is None:
            self.load()
            module = sys.modules[self.function.split(":")[0]]
        f = getattr(module, "__file__", None)
        return Path(f).resolve() if f else None

    def digest(self) -> str | None:
        """SHA256 of `source`, what an artifact of the method records (None where there is no file)."""
        f = self.source()
        return hashlib.sha256(f.read_bytes()).hexdigest() if f is not None and f.is_file() else None


def search(folder: str | Path) -> None:
    """Let modules in ``folder`` (the project folder) be imported by name, after the installed packages."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.append(folder)


def methods(section: Mapping, *, settings: bool = True) -> dict[str, Method]:
    """The methods of a profile's ``interventions.custom``, each checked: its name, its function (imported, its
    signature) and its config (`Method.settings`).

    Parameters
    ----------
    section : name -> ``"module:function"`` or ``{"function": "module:function", "config": {...}}``
    settings : build each method's config (False: leave it to the caller, who checks its types first)

    Returns
    -------
    {name: Method}, in the section's order

    Raises
    ------
    ValueError naming ``interventions.custom.<name>`` and the fix.
    """
    if not isinstance(section, Mapping):
        raise ValueError(f"interventions.custom={section!r}: give a mapping of name -> 'module:function', e.g. "
                         "{kto: 'examples.kto:run'}")
    out = {}
    for name, spec in section.items():
        where = f"interventions.custom.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{where}: a method's name is lowercase letters, digits and underscores, starting with a "
                             "letter, e.g. kto")
        if name in RESERVED:
            raise ValueError(f"{where}: {name!r} is a name the pipeline uses (a built-in intervention or one of "
                             f"{list(RESERVED)}); give your method another name, e.g. my_{name}")
        if isinstance(spec, str):
            spec = {"function": spec}
        if not isinstance(spec, Mapping) or set(spec) - {"function", "config"} or "function" not in spec:
            raise ValueError(f"{where}={spec!r}: give 'module:function', or a mapping with 'function' and, optionally, "
                             "'config' (the method's settings), e.g. {function: 'examples.kto:run', config: {beta: 0.1}}")
        function, config = spec["function"], spec.get("config") or {}
        if not isinstance(function, str) or not _FUNCTION.fullmatch(function):
            raise ValueError(f"{where}: function={function!r}: write the module and the function as "
                             "'module:function', e.g. 'examples.kto:run'")
        if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
            raise ValueError(f"{where}.config={config!r}: must be a mapping of setting -> value")
        method = Method(name, function, dict(config))
        method.config_class()   # imports the function and checks its signature
        if settings:
            method.settings()
        out[name] = method
    return out


def run(method: Method, model, tokenizer, data: Data, *, seed: int = 0, threads: int = 0, progress: bool = False):
    """Train ``model`` with ``method``: its function called on private copies of model and tokenizer, seeded,
    with the torch threads set, the process restored afterwards; what it returns checked.

    Parameters
    ----------
    method : a `Method` (`methods`)
    model, tokenizer : the base model (a `transformers` causal LM) and its tokenizer; neither is changed
    data : `data` of the world
    seed, threads, progress : passed on (see the module's docstring)

    Returns
    -------
    (model in eval mode, InterventionRecord)

    Raises
    ------
    ValueError when the function returns anything but a causal LM with the tokenizer's vocabulary and a
    JSON-able `InterventionRecord` with finite, non-negative counts.
    """
    import random

    import torch

    from .session import session

    fn, settings = method.load(), method.settings()
    with session(progress, threads):
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)
        torch.manual_seed(seed)
        out = fn(copy.deepcopy(model), copy.deepcopy(tokenizer), data, settings, seed=seed, threads=threads,
                 progress=progress)
    trained, record = _returned(method, out, tokenizer)
    return trained.eval(), record


def _returned(method: Method, out, tokenizer):
    """``out`` as (model, record), or a ``ValueError`` saying what the function must return."""
    import transformers

    where = f"{method.where} ({method.function})"
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(f"{where} returned {type(out).__name__}: return (model, record), a causal LM and an "
                         "InterventionRecord")
    model, record = out
    if type(model).__module__.split(".")[0] == "peft":
        raise ValueError(f"{where} returned a PEFT model: merge its adapters (model.merge_and_unload()) and return "
                         "the plain causal LM")
    if not isinstance(model, transformers.PreTrainedModel) or model.get_output_embeddings() is None:
        raise ValueError(f"{where} returned a {type(model).__name__} as its model: return a transformers causal LM "
                         "(a PreTrainedModel with an LM head, e.g. the trainer's model)")
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(f"{where} returned a model with {model.get_input_embeddings().num_embeddings} token "
                         f"embeddings for a tokenizer of {len(tokenizer)}: keep the base model's vocabulary")
    if not isinstance(record, InterventionRecord):
        raise ValueError(f"{where} returned a {type(record).__name__} as its record: return a "
                         "dint.interventions.record.InterventionRecord (with its train_flops and inference_flops)")
    for f in ("steps", "tokens", "train_flops", "inference_tokens", "inference_flops", "wall_time", "n_params",
              "trainable_params"):
        v = getattr(record, f)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: record.{f}={v!r}: must be a finite number >= 0 (see "
                             "dint.interventions.record.train_flops and inference_flops)")
    taught = record.extra.get("taught_wrong", []) if isinstance(record.extra, dict) else None
    if not isinstance(record.extra, dict) or not isinstance(taught, (list, tuple)):
        raise ValueError(f"{where}: record.extra must be a dict, and its 'taught_wrong' a list of fact ids")
    try:
        json.dumps(record.asdict(), allow_nan=True, default=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: the record cannot be saved as JSON ({e}): keep numbers, strings, lists and "
                         "dicts in its config and extra") from None
    return model, record
