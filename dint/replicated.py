"""The claims registry judged on replicated runs: each registered number pooled across world seeds ×
training seeds, the verdicts taken on the pooled estimates, and how often each run alone would have agreed.

A run's own interval covers item sampling only; two runs that differ in their world or training seed differ
by more. `pooled_results` pools each number the registry judges across the runs with a two-level random-effects
model (`dint.stats.pooling.pool`: runs nested in worlds; the interval and the test are Student-t on the world
means, the variance components by the method of moments), and `judge` runs `dint.claims.judge` on the pooled
numbers: Holm across the claims as for one run, each claim's test against its own registered ``no_effect``.
``held`` counts the runs whose own verdict (`dint.claims.judge` on that run alone) is the registered prediction:
``supported`` for a claim, ``passed`` for a sanity check.

`agreement` measures what pooling buys for the estimates the paper quotes: how often a run's estimate falls
inside another run's 95% interval, and, leaving one world out, inside the pooled interval and the prediction
interval of the other worlds' runs.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from . import claims
from .pipeline import macros
from .stats import pooling

__all__ = ["agreement", "judge", "numbers", "paper_numbers", "paper_text", "pooled_results", "quoted", "verdicts"]


def numbers(registry: claims.Registry) -> dict[tuple[str, str], float]:
    """(notebook, key) of every number the registry judges -> the value its test is against (a claim's
    ``no_effect``; 0 for a sanity check's numbers and bounds, which are judged by their estimate or interval)."""
    out: dict[tuple[str, str], float] = {}
    for c in registry.claims:
        key = (c.notebook, c.number.split("/")[1])
        if c.kind == "sanity":
            out.setdefault(key, 0.0)
            if isinstance(c.rule.get("value"), str):
                out.setdefault((c.notebook, c.rule["value"]), 0.0)
        else:
            out[key] = float(c.rule["null"])
    return out


def pooled_results(registry: claims.Registry, runs: pd.DataFrame, *, level: float = 0.95) -> tuple[dict, pd.DataFrame]:
    """Every number the registry judges, pooled across the runs.

    Parameters
    ----------
    registry : `dint.claims.load`'s registry
    runs : `dint.analyses.replication.collect`'s table (one row per run and number)
    level : of the pooled intervals

    Returns
    -------
    (results, components): ``{notebook: {key: {estimate, ci_low, ci_high, pvalue, n, method, reason}}}`` in the
    form `dint.claims.judge` reads, and a table ``notebook, key, var_world, var_train, n_worlds, n_runs``
    """
    results: dict[str, dict] = {}
    rows = []
    for (nb, key), null in numbers(registry).items():
        sub = runs[(runs["notebook"] == nb) & (runs["key"] == key)]
        if sub.empty:
            continue
        p = pooling.pool(sub["estimate"].to_numpy(float), sub["world_seed"].to_numpy(), null=null, level=level)
        results.setdefault(nb, {})[key] = p.asdict()
        rows.append({"notebook": nb, "key": key, "var_world": p.var_world, "var_train": p.var_train,
                     "n_worlds": p.n_worlds, "n_runs": p.n_runs})
    return results, pd.DataFrame(rows, columns=["notebook", "key", "var_world", "var_train", "n_worlds", "n_runs"])


def _results(runs: pd.DataFrame) -> dict:
    """One run's rows as `dint.claims.judge` reads them: ``{notebook: {key: {estimate, ci_low, ci_high, pvalue}}}``."""
    results: dict[str, dict] = {}
    for r in runs.itertuples(index=False):
        results.setdefault(r.notebook, {})[r.key] = {"estimate": r.estimate, "ci_low": r.ci_low,
                                                     "ci_high": r.ci_high, "pvalue": r.pvalue}
    return results


def _per_run(registry: claims.Registry, runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """`dint.claims.judge` on each run alone: one row per run and registry entry (``run, id, verdict``)."""
    out = []
    for run, sub in runs.groupby("run", sort=False):
        t = claims.judge(registry, _results(sub), reference=reference)
        out.append(t[["id", "verdict"]].assign(run=run))
    return pd.concat(out, ignore_index=True)


def judge(registry: claims.Registry, runs: pd.DataFrame, *, reference: str = "world") -> pd.DataFrame:
    """Verdicts of every registry entry on the pooled runs.

    Returns
    -------
    `dint.claims.judge`'s table on the pooled numbers (one run: on its own numbers), with ``var_world``,
    ``var_train`` (the variance components of the entry's number), ``held`` (runs whose own verdict is
    ``supported``, or ``passed`` for a sanity check) and ``runs`` (K)
    """
    if runs["run"].nunique() == 1:   # one run: its own verdicts, nothing to pool
        components = pd.DataFrame(columns=["notebook", "key", "var_world", "var_train"])
        table = claims.judge(registry, _results(runs), reference=reference)
    else:
        results, components = pooled_results(registry, runs)
        table = claims.judge(registry, results, reference=reference)
    keys = pd.DataFrame({"id": [c.id for c in registry.claims],
                         "notebook": [c.notebook for c in registry.claims],
                         "key": [c.number.split("/")[1] for c in registry.claims]})
    table = table.merge(keys.merge(components, on=["notebook", "key"], how="left")[
        ["id", "var_world", "var_train"]], on="id", how="left")
    per_run = _per_run(registry, runs, reference)
    kinds = dict(zip(table["id"], table["kind"]))
    per_run["held"] = [v == ("passed" if kinds[i] == "sanity" else "supported")
                       for i, v in zip(per_run["id"], per_run["verdict"])]
    held = per_run.groupby("id")["held"].sum()
    table["held"] = [int(held.get(i, 0)) if v != claims.NOT_APPLICABLE else np.nan
                     for i, v in zip(table["id"], table["verdict"])]
    table["runs"] = runs["run"].nunique()
    return table


def quoted(runs: pd.DataFrame, text: str) -> pd.DataFrame:
    """The (notebook, key) pairs of ``runs`` whose macro (`dint.pipeline.macros`) the paper's ``text`` uses, as a
    command (``\\MechanismSftKl``) or by name in the paper's number commands (``\\est{MechanismSftKl}``)."""
    used = set(re.findall(r"\\([A-Za-z]+)", text)) | set(re.findall(r"\\(?:est|estp|num|pval)\{([A-Za-z]+)\}", text))
    pairs = runs[["notebook", "key"]].drop_duplicates()
    stems = [macros.name(re.sub(r"^\d+_", "", nb)) + macros.name(key) for nb, key in pairs.itertuples(index=False)]
    keep = [any(s + suffix in used for suffix in ("", "Low", "High", "P")) for s in stems]
    return pairs[keep].reset_index(drop=True)


def agreement(runs: pd.DataFrame, numbers: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """How often a run's estimate falls inside an interval from other runs, over the given numbers.

    Three intervals, each judged on runs it was not computed from:

    - ``one run's interval``: run i's own interval and run j's estimate, over ordered pairs i != j;
    - ``pooled interval, one world left out``: the pooled interval of the other worlds' runs and each run of
      the world left out (needs three worlds or more);
    - ``prediction interval, one world left out``: `dint.stats.pooling.prediction_interval` of the other
      worlds' runs, for a new run, and each run of the world left out.

    Parameters
    ----------
    runs : `dint.analyses.replication.collect`'s table
    numbers : the (notebook, key) pairs to judge, e.g. `quoted`

    Returns
    -------
    DataFrame ``interval, inside, n, share, numbers``: the count of estimates inside, of comparisons, their
    share, and how many numbers took part
    """
    sel = runs.merge(numbers, on=["notebook", "key"])
    counts = {"one run's interval": [0, 0, 0], "pooled interval, one world left out": [0, 0, 0],
              "prediction interval, one world left out": [0, 0, 0]}
    for _, sub in sel.groupby(["notebook", "key"], sort=False):
        sub = sub[np.isfinite(sub["estimate"])]
        share, n_pairs = pooling.agreement(sub["estimate"].to_numpy(float), sub["ci_low"].to_numpy(float),
                                           sub["ci_high"].to_numpy(float))
        if n_pairs:
            c = counts["one run's interval"]
            c[0] += share * n_pairs
            c[1] += n_pairs
            c[2] += 1
        worlds = sub["world_seed"].unique()
        if len(worlds) < 3:
            continue
        inside = {"pooled interval, one world left out": 0, "prediction interval, one world left out": 0}
        n = 0
        for w in worlds:
            rest, out = sub[sub["world_seed"] != w], sub[sub["world_seed"] == w]
            p = pooling.pool(rest["estimate"].to_numpy(float), rest["world_seed"].to_numpy(), level=level)
            pi = pooling.prediction_interval(p, level=level)
            lo, hi = p.confidence_interval.low, p.confidence_interval.high
            if not (math.isfinite(lo) and math.isfinite(pi.low)):
                continue
            est = out["estimate"].to_numpy(float)
            inside["pooled interval, one world left out"] += int(((est >= lo) & (est <= hi)).sum())
            inside["prediction interval, one world left out"] += int(((est >= pi.low) & (est <= pi.high)).sum())
            n += len(est)
        for k, v in inside.items():
            if n:
                counts[k][0] += v
                counts[k][1] += n
                counts[k][2] += 1
    rows = [{"interval": k, "inside": int(round(c[0])), "n": c[1], "share": c[0] / c[1] if c[1] else np.nan,
             "numbers": c[2]} for k, c in counts.items()]
    return pd.DataFrame(rows)


def paper_numbers(runs: pd.DataFrame, agreement_table: pd.DataFrame, *, level: float = 0.95) -> dict:
    """The replication's numbers the paper quotes (``results/<profile>/replication/numbers.json``, so the macros
    ``\\ReplicationRuns``, ...): its design and `agreement`'s shares.

    Returns
    -------
    dict: ``runs``, ``worlds``, ``train_seeds``; for each interval of `agreement` (``one_run``, ``pooled``,
    ``prediction``) its ``_share`` of estimates inside and ``_n`` comparisons; ``quoted_numbers``; the intervals'
    ``level_percent``; ``sampling_only_share``, the share of pairs in which one run's interval would hold the
    other's estimate if runs differed by item sampling alone (independent, one standard error:
    ``2 Φ(z / √2) − 1``, 0.834 at 95%)
    """
    from scipy import stats as sps

    a = agreement_table.set_index("interval")
    z = float(sps.norm.ppf((1 + level) / 2))
    out = {"runs": int(runs["run"].nunique()), "worlds": int(runs["world_seed"].nunique()),
           "train_seeds": int(runs["train_seed"].nunique()),
           "quoted_numbers": int(a.loc["one run's interval", "numbers"]), "level_percent": round(100 * level),
           # the share if runs differed by item sampling alone: two independent estimates with one standard error
           "sampling_only_share": float(2 * sps.norm.cdf(z / np.sqrt(2)) - 1)}
    for name, row in (("one_run", "one run's interval"), ("pooled", "pooled interval, one world left out"),
                      ("prediction", "prediction interval, one world left out")):
        share = a.loc[row, "share"]
        out[f"{name}_share"] = None if pd.isna(share) else float(share)
        out[f"{name}_n"] = int(a.loc[row, "n"])
    return out


def verdicts(profile: str, *, seed: int | None = None, train_seed: int | None = None,
             registry: claims.Registry | None = None, runs: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """The registry's verdicts on a profile: on its replication's pooled runs when its file has a replication
    of more than one run, else on its one run (`dint.claims.verdicts`); with ``seed`` or ``train_seed``, on the
    one run at those seeds. ``runs``: the replication's numbers when the caller has collected them already
    (`dint.analyses.replication.collect`), so that they are read once.

    Returns
    -------
    (table, runs): `judge`'s table (or `dint.claims.verdicts`'s) and the number of runs it was judged on

    Raises
    ------
    FileNotFoundError naming the runs that have no numbers yet and the command that makes them
    """
    from .analyses import replication
    from .pipeline.config import load_profile, replication as runs_of

    registry = registry or claims.load()
    if seed is not None or train_seed is not None or len(runs_of(profile)) == 1:
        return claims.verdicts(profile, seed=seed, train_seed=train_seed, registry=registry), 1
    P = load_profile(profile)
    runs = replication.collect(profile) if runs is None else runs
    return judge(registry, runs, reference="real" if P.real else "world"), runs["run"].nunique()


def paper_text(P) -> str:
    """The paper's body for a profile's reference (``paper/world.tex`` or ``paper/real.tex``)."""
    from .pipeline import paths

    return (paths.root() / "paper" / ("real.tex" if P.real else "world.tex")).read_text()
