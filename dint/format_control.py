"""The format control: a profile's verdicts beside those of a control profile whose base saw the QA format in
pretraining.

A world's corpus states facts, never QA pairs, unless ``world.qa_share`` is set; so on a profile without it a
result in the QA form can be the learning of the format rather than a change in what the model holds. The
registry's ``format_control`` (`dint.claims.FormatControl`) names, per profile, its control profile (the same
world with QA pairs of other entities in pretraining: the evaluated facts and split are the profile's at each
seed, only the base differs) and the notebooks whose claims are judged on both.

`compare` sets each of those claims' pooled verdicts on the two profiles side by side, and the difference of its
number between them run by run (control minus profile at the same world and training seeds), pooled as the
claims are (`dint.stats.pooling.pool`: Student-t on the world means). `tex` writes the paper's table and sentence;
`control_of` names a profile's control; `collect` reads the two profiles' runs once for `compare` and `check`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import claims, claims_tex, replicated
from .stats import pooling

__all__ = ["CHECK", "COLUMNS", "check", "collect", "compare", "control_of", "tex"]

# what shows the control does what it is for: the base's accuracy on held-out QA prompts (notebook 04)
CHECK = ("04_trust_reliability", "base_accuracy")

# `compare`'s table: the claim, its verdict and pooled estimate on each profile, whether it kept its verdict, and
# the pooled difference of its number (control minus profile) as `dint.stats.ROW`
COLUMNS = ["id", "kind", "notebook", "verdict", "estimate_profile", "ci_low_profile", "ci_high_profile",
           "verdict_control", "estimate_control", "ci_low_control", "ci_high_control", "held_control", "kept",
           "estimate", "ci_low", "ci_high", "pvalue", "n", "method", "reason"]


def control_of(profile: str, registry: claims.Registry | None = None) -> str | None:
    """The control profile the registry names for ``profile``, or None."""
    registry = registry or claims.load()
    fc = registry.format_control
    return fc.profiles.get(profile) if fc else None


def _control(profile, registry):
    """The control of ``profile``; a ValueError naming the profiles that have one when there is none."""
    control = control_of(profile, registry)
    if control is None:
        named = sorted(registry.format_control.profiles) if registry.format_control else []
        raise ValueError(f"profile={profile!r}: the claims registry names no format control for it "
                         f"(format_control.profiles names {named})")
    return control


def collect(profile: str, *, registry: claims.Registry | None = None) -> dict:
    """The replication's numbers of ``profile`` and of its control, read once: ``{profile name: runs}``
    (`dint.analyses.replication.collect`), for `compare` and `check`. Raises as `compare`."""
    from .analyses import replication

    registry = registry or claims.load()
    return {name: replication.collect(name) for name in (profile, _control(profile, registry))}


def compare(profile: str, *, registry: claims.Registry | None = None, notebooks=None,
            level: float = 0.95, runs: dict | None = None) -> pd.DataFrame:
    """The claims of the format control's notebooks on ``profile`` and on its control, each on its pooled runs.

    Parameters
    ----------
    profile : a profile the registry's ``format_control`` names
    registry : `dint.claims.load`'s registry (default: ``paper/claims.yaml``)
    notebooks : the notebooks whose claims are compared (default: the registered ones, ``format_control.notebooks``;
        others are outside the registered comparison)
    level : of the difference's interval
    runs : `collect`'s numbers of the two profiles, when the caller has read them already

    Returns
    -------
    DataFrame `COLUMNS`, one row per claim or replication of those notebooks applicable to both: ``kept`` says
    whether the control's verdict is the profile's; the difference's ``n`` is the number of runs paired;
    ``attrs["runs_control"]`` the control's runs.

    Raises
    ------
    ValueError if the registry names no control for ``profile``, or the two replications share no run;
    FileNotFoundError naming the runs that have no numbers yet and the command that makes them
    """
    registry = registry or claims.load()
    control = _control(profile, registry)
    runs = collect(profile, registry=registry) if runs is None else runs
    (mine, _), (theirs, k) = (replicated.verdicts(profile, registry=registry, runs=runs[profile]),
                              replicated.verdicts(control, registry=registry, runs=runs[control]))
    runs = runs[profile].merge(runs[control], on=["world_seed", "train_seed", "notebook", "key"],
                               suffixes=("", "_control"))
    if runs.empty:
        raise ValueError(f"profiles {profile!r} and {control!r} share no run (world seed x training seed): give "
                         "their replications the same seeds in config/<profile>.yaml")
    mine, theirs = mine.set_index("id"), theirs.set_index("id")
    notebooks = registry.format_control.notebooks if notebooks is None else tuple(notebooks)
    rows = []
    for c in registry.claims:
        if c.kind == "sanity" or c.notebook not in notebooks:
            continue
        a, b = mine.loc[c.id], theirs.loc[c.id]
        if claims.NOT_APPLICABLE in (a["verdict"], b["verdict"]):
            continue
        key = c.number.split("/")[1]
        sub = runs[(runs.notebook == c.notebook) & (runs.key == key)]
        diff = (sub["estimate_control"] - sub["estimate"]).to_numpy(float)
        ok = np.isfinite(diff)
        if ok.sum() >= 2 and sub.loc[ok, "world_seed"].nunique() >= 2:
            p = pooling.pool(diff[ok], sub.loc[ok, "world_seed"].to_numpy(), level=level).asdict()
        else:
            p = {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "pvalue": np.nan,
                 "n": int(ok.sum()), "method": "",
                 "reason": "fewer than two worlds have the number on both profiles"}
        rows.append({"id": c.id, "kind": c.kind, "notebook": c.notebook, "verdict": a["verdict"], "held_control": b["held"],
                     "estimate_profile": a["estimate"], "ci_low_profile": a["ci_low"], "ci_high_profile": a["ci_high"],
                     "verdict_control": b["verdict"], "estimate_control": b["estimate"], "ci_low_control": b["ci_low"],
                     "ci_high_control": b["ci_high"], "kept": a["verdict"] == b["verdict"],
                     **{k: p.get(k) for k in ("estimate", "ci_low", "ci_high", "pvalue", "n", "method", "reason")}})
    out = pd.DataFrame(rows, columns=COLUMNS)
    out.attrs["runs_control"] = k   # the control's runs, for "held in k of K"
    return out


def check(profile: str, *, registry: claims.Registry | None = None, level: float = 0.95,
          runs: dict | None = None) -> dict:
    """`CHECK` pooled across the runs of ``profile`` and of its control: ``{profile name: pooled dict}``
    (`dint.stats.pooling.Pooled.asdict`); ``runs`` as `compare`'s. Raises as `compare`."""
    runs = collect(profile, registry=registry) if runs is None else runs
    out = {}
    for name, r in runs.items():
        sub = r[(r.notebook == CHECK[0]) & (r.key == CHECK[1])]
        out[name] = pooling.pool(sub["estimate"].to_numpy(float), sub["world_seed"].to_numpy(), level=level).asdict()
    return out


def _interval(est, lo, hi) -> str:
    return claims_tex.estimate_tex({"estimate": est, "ci_low": lo, "ci_high": hi}, inline=True)


def tex(profile: str, *, registry: claims.Registry | None = None) -> str:
    """LaTeX for the paper: ``\\ifdintcontrol`` (true when the comparison was made), ``\\formatcontrolprofile``
    (the control's name), ``\\formatcontroltally`` (how many claims kept their verdict, in words),
    ``\\formatcontroltable`` (`compare` as a table), ``\\formatcontrolchanged`` (the claims whose verdict
    changes, in words), ``\\formatcontrolsupport`` (the claims supported on one profile only, in words); for every claim and replication, the registered notebooks' and
    the others', ``\\controlverdict{<id>}``, ``\\controlestimate{<id>}`` (the control's pooled estimate [interval],
    held in k of K runs) and ``\\controldifference{<id>}`` (the paired difference [interval]); and ``\\formatcheckprofile`` /
    ``\\formatcheckcontrol`` (`check` on each, pooled estimate [interval]); when the registry names no
    control for ``profile`` or the control's runs are missing, ``\\ifdintcontrol`` is false and
    ``\\formatcontroltally`` says why and how to make them."""
    registry = registry or claims.load()
    control = control_of(profile, registry)
    head = ["% generated by dint.format_control.tex from paper/claims.yaml and two profiles' runs; do not edit",
            r"\newif\ifdintcontrol", rf"\newcommand{{\formatcontrolprofile}}{{{control or 'none'}}}"]
    if control is None:
        return "\n".join(head + [r"\newcommand{\formatcontroltally}{the claims registry names no format control "
                                 rf"for the {claims_tex.escape(profile)} profile}}", r"\newcommand{\formatcontroltable}{}"]) + "\n"
    try:
        runs = collect(profile, registry=registry)
    except FileNotFoundError:
        return "\n".join(head + [rf"\newcommand{{\formatcontroltally}}{{the control profile {claims_tex.escape(control)} has "
                                 rf"not been run (\texttt{{make replicate PROFILE={claims_tex.escape(control)}}})}}",
                                 r"\newcommand{\formatcontroltable}{}"]) + "\n"
    every = compare(profile, registry=registry, notebooks=sorted({c.notebook for c in registry.claims}), runs=runs)
    table = every[every.notebook.isin(registry.format_control.notebooks)]
    base = {k: claims_tex.estimate_tex(v, inline=True) for k, v in check(profile, registry=registry, runs=runs).items()}
    runs = every.attrs["runs_control"]
    kept = int(table["kept"].sum())
    moved = table[(table["ci_low"] > 0) | (table["ci_high"] < 0)]
    nbs = [n.split("_")[0] for n in registry.format_control.notebooks]
    nbs = ", ".join(nbs[:-1]) + f" and {nbs[-1]}" if len(nbs) > 1 else nbs[0]
    tally = (f"{kept} of the {len(table)} claims and replications of notebooks {nbs} keep their verdict on "
             f"{claims_tex.escape(control)}, and for {len(moved)} of them the interval of the difference in the number "
             "(the control minus this profile, paired by run) excludes 0")
    changed = [rf"{claims_tex.id_tex(r.id)} ({r.verdict} here, {r.verdict_control} on the control)"
               for r in table.itertuples() if not r.kept]
    changed = ("no claim changes its verdict" if not changed else
               "the claims that change their verdict are " + "; ".join(changed))

    def ids(rows):
        names = [claims_tex.id_tex(i) for i in rows.id]
        return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    lost = table[(table.verdict == "supported") & (table.verdict_control != "supported")]
    gained = table[(table.verdict != "supported") & (table.verdict_control == "supported")]
    support = ("every claim supported here is supported on the control" if lost.empty else
               f"of the claims supported here, {ids(lost)} {'is' if len(lost) == 1 else 'are'} not supported on the "
               "control") + ("" if gained.empty else f", and {ids(gained)} {'is' if len(gained) == 1 else 'are'} "
                                                     "supported only there")
    lines = head + [r"\dintcontroltrue", rf"\newcommand{{\formatcontroltally}}{{{tally}}}",
                    rf"\newcommand{{\formatcontrolchanged}}{{{changed}}}",
                    rf"\newcommand{{\formatcontrolsupport}}{{{support}}}",
                    rf"\newcommand{{\formatcheckprofile}}{{{base[profile]}}}",
                    rf"\newcommand{{\formatcheckcontrol}}{{{base[control]}}}", r"\makeatletter"]
    for r in every.itertuples():   # every claim, for the text; the table and the tally: the registered notebooks
        control_row = {"estimate": r.estimate_control, "ci_low": r.ci_low_control, "ci_high": r.ci_high_control,
                       "held": r.held_control}
        lines += [rf"\@namedef{{controlverdict@{r.id}}}{{{r.verdict_control}}}",
                  rf"\@namedef{{controlestimate@{r.id}}}{{{claims_tex.estimate_tex(control_row, inline=True)}"
                  rf"{claims_tex.held_tex(control_row, runs, inline=True)}}}",
                  rf"\@namedef{{controldifference@{r.id}}}{{{_interval(r.estimate, r.ci_low, r.ci_high)}}}"]
    lines += [r"\makeatother", r"\newcommand{\controlverdict}[1]{\csname controlverdict@#1\endcsname}",
              r"\newcommand{\controlestimate}[1]{\csname controlestimate@#1\endcsname}",
              r"\newcommand{\controldifference}[1]{\csname controldifference@#1\endcsname}"]
    rows = [rf"{claims_tex.id_tex(r.id)} & {_interval(r.estimate_profile, r.ci_low_profile, r.ci_high_profile)} & "
            rf"{r.verdict} & {_interval(r.estimate_control, r.ci_low_control, r.ci_high_control)} & "
            rf"{r.verdict_control} & {_interval(r.estimate, r.ci_low, r.ci_high)} \\" for r in table.itertuples()]
    cols = (r"@{}>{\raggedright\arraybackslash}p{0.24\textwidth}llll"
            r">{\raggedright\arraybackslash}p{0.17\textwidth}@{}")
    lines += [rf"\newcommand{{\formatcontroltable}}{{{{\footnotesize\begin{{tabular}}{{{cols}}}\toprule",
              rf"claim & \multicolumn{{2}}{{l}}{{{claims_tex.escape(profile)}: pooled estimate, verdict}} & "
              rf"\multicolumn{{2}}{{l}}{{{claims_tex.escape(control)}: pooled estimate, verdict}} & difference [95\% CI] \\",
              r"\midrule", *rows, r"\bottomrule\end{tabular}}}"]
    return "\n".join(lines) + "\n"
