"""lm-evaluation-harness runs compared as distributions over their choices, model against model on the same documents.

``lm_eval ... --output_path OUT --log_samples`` writes ``OUT/<model>/results_<date>.json`` and, per task,
``samples_<task>_<date>.jsonl``: one JSON line per document with ``doc_id``, ``doc``, ``target``, ``arguments``
(``gen_args_<i>``: ``arg_0`` the context, ``arg_1`` the continuation of choice i), ``filtered_resps`` (per choice
``[loglikelihood, is_greedy]``, both written as *strings*), ``doc_hash``, ``prompt_hash`` and the document's
metrics (``acc``, ``acc_norm``). For a multiple-choice task, a model's *choice distribution* on a document is the
softmax of its choices' summed log-likelihoods (the choices as lm-eval scored them; its ``acc`` is that
distribution's argmax), or, with ``normalise="chars"``, of the log-likelihoods per character of each choice, whose
argmax is lm-eval's ``acc_norm`` (a ranking made a distribution, not the model's probability).

`read` takes a run (a folder or one samples file) and `check_paired` lines runs up by task and ``doc_id``, with
equal ``doc_hash`` and choices, before anything is computed. `cards` describes each model on each task; `pairs`
compares two models on the same documents (McNemar with Newcombe's interval, the mean per-document KL, the
paired ECE difference), every test of the table one Holm family; `report` writes the tables, the figure and
``numbers.json``. Rows are labels then `dint.stats.ROW`.
"""
from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import log_softmax

from . import calibration, divergence, stats
from .cache import atomic_write, json_ready
from .stats import proportions
from .stats.checks import check_choice, check_int, check_level

__all__ = ["LmEvalConfig", "Report", "Run", "cards", "check_paired", "distributions", "figure", "numbers", "pairs",
           "read", "read_samples", "report", "samples_files"]

NORMALISE = ("none", "chars")
MEASURES = ("accuracy", "entropy", "top_mass", "p_gold", "ece", "brier")   # a card's, per task and model
PAIRED = ("d_accuracy", "kl", "d_ece")                                       # a pair's, per task
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SAMPLES = re.compile(r"samples_(.+)_(\d{4}-\d{2}-\d{2}T[\d.-]+)\.jsonl")   # lm-eval's name: task, then the date
_WHERE = ("pass the folder given to lm_eval's --output_path (or its model subfolder), or one of its "
          "samples_<task>_<date>.jsonl files")


@dataclass(frozen=True)
class LmEvalConfig:
    """How lm-eval runs are described and compared."""

    normalise: str = "none"         # "none": softmax of summed log-likelihoods; "chars": per character (acc_norm's)
    n_bins: int = 10                # equal-width bins of the ECE and of its paired difference
    confidence_level: float = 0.95  # of every interval
    n_resamples: int = 2000         # bootstrap resamples of every interval and of the ECE difference's test
    rng: int = 0                    # seed of the bootstrap

    def __post_init__(self):
        check_choice("normalise", self.normalise, NORMALISE)
        check_int("n_bins", self.n_bins, 1)
        check_level(self.confidence_level)
        check_int("n_resamples", self.n_resamples, 2)
        check_int("rng", self.rng, 0)


@dataclass(frozen=True)
class Report:
    """What `report` wrote: the `cards` and `pairs` tables and ``{file name: path}``."""

    cards: pd.DataFrame
    pairs: pd.DataFrame
    files: dict


@dataclass(frozen=True)
class Run:
    """One model's lm-eval output: its samples files by task, its documents and every choice's log-likelihood.

    ``docs``: one row per (``task``, ``doc_id``) with ``doc_hash``, ``prompt_hash``, ``target`` and lm-eval's
    ``acc`` and ``acc_norm`` (NaN where not logged); ``choices``: one row per (``task``, ``doc_id``, ``choice``) with
    ``context``, ``continuation``, ``loglikelihood``, ``is_greedy``, ``gold`` (a right choice) and ``chars`` (the
    choice's length without lm-eval's target delimiter, acc_norm's divisor). Both sorted by task and doc_id.
    """

    name: str
    path: Path
    model: str               # lm-eval's model_name (results file), "" without one
    files: dict               # task -> the samples file read
    docs: pd.DataFrame
    choices: pd.DataFrame


# ------------------------------------------------------------------------------ reading
def samples_files(path, *, tasks=None) -> dict[str, Path]:
    """The samples file of each task of a run: ``{task: path}``, the latest of a task's files where a folder holds
    several (lm-eval names them by the run's date).

    Parameters
    ----------
    path : a folder lm-eval wrote (``--output_path``, or its ``<model>`` subfolder) or a ``samples_*.jsonl`` file
    tasks : the tasks to keep (None: every task of the folder); each must be there
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"RUN {str(p)!r} does not exist: {_WHERE}")
    if p.is_file():
        m = _SAMPLES.fullmatch(p.name)
        if not m:
            raise ValueError(f"RUN {str(p)!r} is not a samples file (samples_<task>_<date>.jsonl): {_WHERE}")
        found = {m.group(1): [p]}
    else:
        files = sorted(p.glob("samples_*.jsonl"))
        if not files:
            below = sorted({f.parent for f in p.glob("*/samples_*.jsonl")})
            if len(below) == 1:
                return samples_files(below[0], tasks=tasks)
            if below:
                raise ValueError(f"RUN {str(p)!r} holds the samples of {len(below)} models "
                                 f"({', '.join(b.name for b in below)}): pass one model's folder, e.g. {below[0]}")
            results = sorted(p.glob("results_*.json")) + sorted(p.glob("*/results_*.json"))
            why = (f"it has lm-eval's results ({results[0].name}) but no per-document samples" if results
                   else "it holds no samples_<task>_<date>.jsonl")
            raise FileNotFoundError(f"RUN {str(p)!r}: {why}; lm_eval writes them only with --log_samples: rerun "
                                    f"`lm_eval ... --output_path {p} --log_samples`")
        found = {}
        for f in files:
            m = _SAMPLES.fullmatch(f.name)
            if m:
                found.setdefault(m.group(1), []).append(f)
    if tasks is not None:
        missing = [t for t in tasks if t not in found]
        if missing:
            raise ValueError(f"--tasks: RUN {str(p)!r} has no samples of {missing}; it has {sorted(found)}")
        found = {t: found[t] for t in tasks}
    for t, fs in found.items():
        if len(fs) > 1:   # the folder was written by several lm_eval runs
            print(f"note: RUN {p} has {len(fs)} samples files of task {t}; reading the latest, {sorted(fs)[-1].name}")
    return {t: sorted(fs)[-1] for t, fs in sorted(found.items())}   # ISO dates sort as text


def _results_file(samples: Path) -> dict:
    """The results file lm-eval wrote beside a samples file (same date), or {} where there is none."""
    date = samples.stem.rsplit("_", 1)[-1]
    f = samples.with_name(f"results_{date}.json")
    if not f.exists():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def _gold(target: str, texts: list[str], acc, logl: np.ndarray, where: str) -> list[int]:
    """The right choices of a document from lm-eval's ``target`` (written as text): an index, a list of indices
    or a choice's text. A target that reads both as an index and as a choice (``"2"`` among choices "1", "2",
    "3") is resolved by lm-eval's logged ``acc``, which only one reading reproduces."""
    readings = []
    t = target.strip()
    if t.startswith("[") and t.endswith("]"):   # several right choices: indices or texts
        try:
            value = ast.literal_eval(t)
        except (SyntaxError, ValueError):
            value = None
        if isinstance(value, list):
            readings.append([v if isinstance(v, int) else texts.index(v) if v in texts else -1 for v in value])
    if t.isdigit():
        readings.append([int(t)])
    if target in texts:
        readings.append([texts.index(target)])
    readings = [r for r in readings if r and all(0 <= i < len(texts) for i in r)]
    if not readings:
        raise ValueError(f"{where}: its target {target!r} is neither a choice's index (0..{len(texts) - 1}) nor a "
                         "choice's text: lm-eval's own acc has no right choice here; fix the task's doc_to_target")
    pred = int(np.argmax(logl))
    if acc is not None and not (isinstance(acc, float) and math.isnan(acc)):
        agree = [r for r in readings if float(pred in r) == float(acc)]
        if not agree:
            raise ValueError(f"{where}: no reading of its target {target!r} gives lm-eval's acc={acc} from the logged "
                             "log-likelihoods; the task's metric is not argmax == target (a custom process_results), "
                             "which dint lm-eval cannot read: leave the task out with --tasks")
        return agree[0]
    return readings[0]


def read_samples(path, *, task: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One task's documents and choices from lm-eval's samples file (the tables of `Run`).

    Parameters
    ----------
    path : a ``samples_<task>_<date>.jsonl`` file of ``lm_eval --log_samples``
    task : its task's name (default: from the file name)

    Raises
    ------
    ValueError naming the file, the document and the fix: a generation task (``generate_until``), a task of one
    continuation per document (``loglikelihood``: no choices to compare), a line that is not JSON, a document
    logged twice, a target that is no choice.
    """
    path = Path(path)
    m = _SAMPLES.fullmatch(path.name)
    task = task or (m.group(1) if m else path.stem)
    config = _results_file(path).get("configs", {}).get(task, {})
    kind = config.get("output_type")
    if kind not in (None, "multiple_choice"):
        raise ValueError(f"task {task!r} ({path}) is a {kind} task: dint lm-eval compares multiple-choice "
                         "(loglikelihood) tasks; leave it out with --tasks")
    delimiter = config.get("target_delimiter", " ")
    docs, rows, seen = [], [], set()
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                s = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {line_no} is not JSON ({e.msg}): a truncated or edited file; rerun "
                                 "lm_eval with --log_samples") from None
            where = f"task {task!r} ({path.name}), doc_id {s.get('doc_id')}"
            args = [a for _, a in sorted(s.get("arguments", {}).items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]))]
            if any(isinstance(a.get("arg_1"), dict) for a in args):
                raise ValueError(f"{where} is a generation (generate_until) sample: dint lm-eval compares "
                                 "multiple-choice (loglikelihood) tasks; leave this task out with --tasks")
            if "acc_mutual_info" in s.get("metrics", []) and len(args) % 2 == 0:
                args = args[:len(args) // 2]   # the unconditional log-likelihoods lm-eval appends for mutual info
            resps = s.get("filtered_resps", [])[:len(args)]
            if len(args) < 2 or len(resps) != len(args):
                raise ValueError(f"{where} has {len(args)} continuation(s): a loglikelihood task of one continuation "
                                 "per document has no choices to compare; dint lm-eval reads multiple-choice tasks")
            if s["doc_id"] in seen:
                raise ValueError(f"{where} is logged twice in one file: lm-eval appends to a samples file of the same "
                                 "date, or the task has several filters; rerun into an empty --output_path")
            seen.add(s["doc_id"])
            try:
                logl = np.array([float(r[0]) for r in resps])
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"{where}: its filtered_resps are not [loglikelihood, is_greedy] per choice (a filter "
                                 "that rewrites them?); dint lm-eval reads multiple-choice tasks' log-likelihoods; "
                                 "leave this task out with --tasks") from None
            texts = [a["arg_1"][len(delimiter):] if a["arg_1"].startswith(delimiter) else a["arg_1"] for a in args]
            acc = s.get("acc")
            gold = _gold(str(s.get("target", "")), texts, acc, logl, where)
            docs.append({"task": task, "doc_id": int(s["doc_id"]), "doc_hash": s.get("doc_hash", ""),
                         "prompt_hash": s.get("prompt_hash", ""), "target": str(s.get("target", "")),
                         "acc": float("nan") if acc is None else float(acc),
                         "acc_norm": float(s.get("acc_norm", float("nan")))})
            rows += [{"task": task, "doc_id": int(s["doc_id"]), "choice": i, "context": a["arg_0"],
                      "continuation": a["arg_1"], "loglikelihood": float(logl[i]),
                      "is_greedy": str(r[1]) == "True", "gold": i in gold, "chars": len(texts[i])}
                     for i, (a, r) in enumerate(zip(args, resps))]
    if not docs:
        raise ValueError(f"{path} holds no documents: rerun lm_eval with --log_samples")
    return (pd.DataFrame(docs).sort_values("doc_id", ignore_index=True),
            pd.DataFrame(rows).sort_values(["doc_id", "choice"], ignore_index=True))


def _default_name(path: Path, files: dict) -> tuple[str, str]:
    """(name, lm-eval's model name): the model's name without its folders, e.g. pythia-160m."""
    model = ""
    for f in files.values():
        model = _results_file(f).get("model_name", "") or model
    base = model.rstrip("/").rsplit("/", 1)[-1] if model else next(iter(files.values())).parent.name.rsplit("__", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-") or path.name, model


def read(path, *, name: str | None = None, tasks=None) -> Run:
    """A run of lm-eval (`samples_files`) read: every task's documents and choices (`read_samples`).

    Parameters
    ----------
    path : a folder lm-eval wrote or one samples file
    name : the model's name in tables (default: lm-eval's model name without its folders); letters, digits,
        ``.``, ``-`` and ``_``
    tasks : the tasks to read (default: all of the run's)
    """
    files = samples_files(path, tasks=tasks)
    default, model = _default_name(Path(path), files)
    name = default if name is None else name
    if not _NAME.fullmatch(name):
        raise ValueError(f"--names: {name!r} must be letters, digits, '.', '-' and '_' (it names rows and keys)")
    read_ = [read_samples(f, task=t) for t, f in files.items()]
    return Run(name, Path(path), model, files, pd.concat([d for d, _ in read_], ignore_index=True),
               pd.concat([c for _, c in read_], ignore_index=True))


def check_paired(runs: list[Run]) -> list[str]:
    """The tasks the runs share, once each has the same documents (``doc_id`` and ``doc_hash``) and the same
    choices; otherwise a ``ValueError`` naming the run, the task, the documents and the fix."""
    if not runs:
        raise ValueError("RUN: give at least one lm-eval run")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"--names: the runs' names {names} repeat; give each run its own, e.g. --names A,B")
    first = runs[0]
    tasks = sorted(first.files)
    for r in runs[1:]:
        if sorted(r.files) != tasks:
            raise ValueError(f"RUN {r.name} has tasks {sorted(r.files)} but {first.name} has {tasks}: compare the "
                             "tasks both ran with --tasks " + ",".join(sorted(set(tasks) & set(r.files))))
        for t in tasks:
            a, b = (x.docs[x.docs.task == t].set_index("doc_id") for x in (first, r))
            if not a.index.equals(b.index):
                only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
                raise ValueError(f"task {t!r}: {first.name} has {len(a)} documents and {r.name} {len(b)} "
                                 f"({len(only_a)} only in {first.name}, e.g. doc_id {list(only_a[:3])}; {len(only_b)} "
                                 f"only in {r.name}, e.g. {list(only_b[:3])}): run both with the same --limit / "
                                 "--samples, so that the comparison is paired")
            differ = a.index[a.doc_hash.to_numpy() != b.doc_hash.to_numpy()]
            if len(differ):
                raise ValueError(f"task {t!r}: {len(differ)} documents (doc_id {list(differ[:3])}) have another "
                                 f"doc_hash in {r.name} than in {first.name}: the runs read different data (another "
                                 "dataset version or task config); rerun both on the same task")
            ca, cb = (x.choices[x.choices.task == t] for x in (first, r))
            if len(ca) != len(cb) or (ca.continuation.to_numpy() != cb.continuation.to_numpy()).any():
                raise ValueError(f"task {t!r}: the choices of some documents differ between {first.name} and {r.name}: "
                                 "the runs scored different answers; rerun both with the same task config")
    return tasks


# ------------------------------------------------------------------------------ distributions
def distributions(run: Run, task: str, *, normalise: str = "none") -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Each document's choice distribution as a padded array.

    Parameters
    ----------
    run, task : a `Run` and one of its tasks
    normalise : ``"none"`` (softmax of the choices' summed log-likelihoods) or ``"chars"`` (of the
        log-likelihoods per character of each choice, whose argmax is lm-eval's acc_norm)

    Returns
    -------
    docs : the task's rows of ``run.docs`` (sorted by doc_id), m rows
    logp : (m, k_max) log-probabilities over each document's choices, ``-inf`` where a document has fewer
    gold : (m, k_max) bool, the right choices
    """
    check_choice("normalise", normalise, NORMALISE)
    c = run.choices[run.choices.task == task]
    if c.empty:
        raise ValueError(f"task={task!r}: run {run.name} has no such task; it has {sorted(run.files)}")
    docs = run.docs[run.docs.task == task].reset_index(drop=True)
    row = np.searchsorted(docs.doc_id.to_numpy(), c.doc_id.to_numpy())
    score = np.full((len(docs), int(c.choice.max()) + 1), -np.inf)
    gold = np.zeros(score.shape, bool)
    ll = c.loglikelihood.to_numpy(float)
    score[row, c.choice] = ll / np.maximum(c.chars.to_numpy(float), 1.0) if normalise == "chars" else ll
    gold[row, c.choice] = c.gold.to_numpy(bool)
    return docs, log_softmax(score, axis=1), gold


def _outcomes(logp, gold):
    """Per document: the top choice's probability, whether it is right (lm-eval's argmax: the first of ties)."""
    top = logp.argmax(axis=1)
    return np.exp(logp.max(axis=1)), gold[np.arange(len(logp)), top]


def _mean(x, config: LmEvalConfig) -> stats.Result:
    if len(x) < 2:
        return stats.Result.not_estimable("a mean's interval needs two documents", n=len(x))
    return stats.bootstrap_mean(np.asarray(x, float), confidence_level=config.confidence_level,
                                n_resamples=config.n_resamples, rng=config.rng)


def cards(runs: list[Run], config: LmEvalConfig = LmEvalConfig()) -> pd.DataFrame:
    """The distribution card of every run on every task it has.

    Returns
    -------
    Tidy DataFrame ``task, model, measure`` then `dint.stats.ROW`, one row per `MEASURES`: ``accuracy`` (the
    distribution's top choice is right, Wilson interval: lm-eval's acc, or acc_norm with ``normalise="chars"``),
    ``entropy`` (mean, nats), ``top_mass`` (mean probability of the top choice), ``p_gold`` (mean probability of
    the right choices), ``ece`` (the top choice's probability against its correctness, `dint.calibration.ece`),
    ``brier`` (mean squared error of that probability); means with bootstrap intervals (`dint.stats.bootstrap_mean`).
    """
    rows = []
    for run in runs:
        for task in sorted(run.files):
            _, logp, gold = distributions(run, task, normalise=config.normalise)
            conf, correct = _outcomes(logp, gold)
            n, label = len(logp), {"task": task, "model": run.name}
            p_gold = np.exp(np.where(gold, logp, -np.inf)).sum(axis=1)
            ece = (calibration.ece(conf, correct, n_bins=config.n_bins, confidence_level=config.confidence_level,
                                   n_resamples=config.n_resamples, rng=config.rng) if n >= 2 else
                   stats.Result.not_estimable("the ECE needs two documents", n=n))
            found = {"accuracy": stats.proportion(int(correct.sum()), n, confidence_level=config.confidence_level),
                     "entropy": _mean(divergence.entropy(logp), config), "top_mass": _mean(conf, config),
                     "p_gold": _mean(p_gold, config), "ece": ece, "brier": _mean((conf - correct) ** 2, config)}
            rows += [found[m].row(**label, measure=m) for m in MEASURES]
    return pd.DataFrame(rows)


def pairs(runs: list[Run], config: LmEvalConfig = LmEvalConfig()) -> pd.DataFrame:
    """Every pair of runs compared on each task's documents, each later run against each earlier one.

    Returns
    -------
    Tidy DataFrame ``task, model, reference, measure`` then `dint.stats.ROW`, ``b`` and ``c`` (McNemar's discordant
    counts: right with the reference only, with the model only), ``prompts_differ`` (see Notes), ``pvalue_holm``
    (Holm across every test of the table: all tasks, pairs and tested measures) and ``pvalue_bh``
    (Benjamini-Hochberg, the same family). Measures
    (`PAIRED`): ``d_accuracy`` = accuracy(model) - accuracy(reference), Newcombe's paired interval and McNemar's exact
    test (`dint.stats.proportions.mcnemar`); ``kl`` = mean over documents of KL(model || reference) between the
    choice distributions, bootstrap interval, no test (it is never below 0); ``d_ece`` = ECE(model) - ECE(reference),
    the paired bootstrap interval and test (`dint.calibration.ece_difference`).

    Notes
    -----
    McNemar (1947); Newcombe (1998), Stat Med 17:2635; Holm (1979); Benjamini & Hochberg (1995). The comparison is
    paired by document: lm-eval's ``scripts/model_comparator.py`` tests two runs' accuracies with an unpaired z-test
    (lm-eval issue #3831), which drops the covariance of outcomes on shared documents and so overstates the standard
    error of the difference. The runs' prompts may differ (another ``--num_fewshot`` or chat template) while the
    documents and choices agree: ``prompts_differ`` counts the documents whose ``prompt_hash`` differs, and the
    comparison then includes that difference.
    """
    tasks = check_paired(runs)
    rows = []
    for task in tasks:
        dist = {r.name: distributions(r, task, normalise=config.normalise)[1:] for r in runs}
        for j, run in enumerate(runs):
            for ref in runs[:j]:
                (lp, gold), (lq, _) = dist[run.name], dist[ref.name]
                conf, correct = _outcomes(lp, gold)
                conf_ref, correct_ref = _outcomes(lq, gold)
                label = {"task": task, "model": run.name, "reference": ref.name}
                hashes = [r.docs.loc[r.docs.task == task, "prompt_hash"].to_numpy() for r in (run, ref)]
                differ = {"prompts_differ": int(np.sum(hashes[0] != hashes[1]))}
                m = proportions.mcnemar(correct_ref, correct, confidence_level=config.confidence_level)
                rows.append({**m.row(**label, measure="d_accuracy"), "b": m.b, "c": m.c, **differ})
                rows.append({**_mean(divergence.kl(lp, lq), config).row(**label, measure="kl"), **differ})
                d = (calibration.ece_difference(conf, correct, conf_ref, correct_ref, n_bins=config.n_bins,
                                                confidence_level=config.confidence_level,
                                                n_resamples=config.n_resamples, rng=config.rng) if len(lp) >= 2 else
                     stats.Result.not_estimable("the ECE needs two documents", n=len(lp)))
                rows.append({**d.row(**label, measure="d_ece"), **differ})
    columns = ["task", "model", "reference", "measure", *stats.ROW, "b", "c", "prompts_differ"]
    table = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    table = stats.holm(table) if len(table) else table.assign(pvalue_holm=pd.Series(dtype=float))
    table["pvalue_bh"] = stats.adjust(table["pvalue"].to_numpy(float), method="fdr_bh", nan_policy="omit")
    return table


# ------------------------------------------------------------------------------ what a comparison leaves behind
def numbers(card_table: pd.DataFrame, pair_table: pd.DataFrame) -> dict:
    """The named results of `cards` and `pairs` for ``numbers.json``: ``<task>_<model>_<measure>`` and
    ``<task>_<model>_vs_<reference>_<measure>``, a test's p-value Holm-adjusted (`dint.stats.results`)."""
    out = stats.results(card_table, "{task}_{model}_{measure}")
    if len(pair_table):
        tested = pair_table["pvalue"].notna()
        family = f"; p-value Holm-adjusted across the {int(tested.sum())} tests of the comparison"
        table = pair_table.assign(method=pair_table["method"].where(~tested, pair_table["method"] + family))
        out.update(stats.results(table, "{task}_{model}_vs_{reference}_{measure}", pvalue="pvalue_holm"))
    return out


def figure(card_table: pd.DataFrame, pair_table: pd.DataFrame):
    """The comparison's figure (`dint.plot.lm_eval`): accuracy per task and model, and each pair's accuracy
    difference, KL and ECE difference per task."""
    from . import plot

    return plot.lm_eval(card_table, pair_table)


def report(runs: list[Run], out, config: LmEvalConfig = LmEvalConfig()) -> Report:
    """Compare lm-eval runs and write what a notebook would: the tables, the figure and ``numbers.json``.

    Parameters
    ----------
    runs : `Run` objects (`read`); their tasks and documents are checked first (`check_paired`)
    out : the folder written: ``cards.csv`` / ``.parquet`` (`cards`), ``pairs.csv`` / ``.parquet`` (`pairs`),
        ``lm_eval.pdf`` / ``.png`` (`figure`) and ``numbers.json`` (`numbers`, with the runs' files and
        ``asdict(config)``)
    config : `LmEvalConfig`

    Returns
    -------
    `Report`: the two tables and the files written.
    """
    from . import plot

    check_paired(runs)   # before anything is computed
    out = Path(out)
    card_table, pair_table = cards(runs, config), pairs(runs, config)
    paths = {}
    for name, table in (("cards", card_table), ("pairs", pair_table)):
        paths[f"{name}.parquet"] = atomic_write(out / f"{name}.parquet",
                                                lambda p, t=table: t.to_parquet(p, index=False))
        paths[f"{name}.csv"] = atomic_write(out / f"{name}.csv", lambda p, t=table: t.to_csv(p, index=False))
    pdf, png = plot.save(figure(card_table, pair_table), out / "lm_eval")
    paths.update({"lm_eval.pdf": pdf, "lm_eval.png": png})
    payload = {"notebook": "lm_eval", "config": asdict(config),
               "runs": {r.name: {"path": str(r.path), "model": r.model,
                                 "files": {t: str(f) for t, f in r.files.items()}} for r in runs},
               "numbers": {k: v.asdict() for k, v in numbers(card_table, pair_table).items()}}
    paths["numbers.json"] = atomic_write(out / "numbers.json",
                                         lambda p: Path(p).write_text(json.dumps(json_ready(payload), indent=1)))
    return Report(card_table, pair_table, paths)
