"""The paper's LaTeX from the claims registry and its verdicts: the claims and sanity tables, the counts of
verdicts in words, the primary claims by outcome, and each entry's sentence, verdict and estimate as macros
(``results/<profile>/paper/claims.tex``, written by ``dint paper``).

`tex` gives the whole file; `escape`, `estimate_tex`, `held_tex` and `id_tex` are the pieces other tables of
the paper use (the format control's).
"""
from __future__ import annotations

import math

import pandas as pd

from .claims import NOT_APPLICABLE, VERDICTS, Registry, sentence

__all__ = ["escape", "estimate_tex", "grouping_tex", "held_tex", "id_tex", "tex"]

_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               # the registry's symbols, in math mode (the paper's fonts have no Greek or math glyphs in text)
               "α": r"$\alpha$", "β": r"$\beta$", "κ": r"$\kappa$", "±": r"$\pm$", "−": r"$-$", "×": r"$\times$",
               "·": r"$\cdot$", "≈": r"$\approx$", "≤": r"$\leq$", "≥": r"$\geq$", "√": r"$\surd$",
               "→": r"$\to$", "‖": r"$\|$"}


def escape(text: str) -> str:
    """``text`` with the characters LaTeX treats as special escaped, and the registry's symbols (Greek letters,
    ±, ≈, −, ...) in math mode; any other character outside ASCII is left for LaTeX (test_claims checks that the
    registry has none)."""
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in text)


def _decimals(lo, hi) -> int | None:
    """Decimals that give two significant digits of an interval's half-width (0 to 4), None without a width."""
    half = (hi - lo) / 2 if all(isinstance(x, (int, float)) and math.isfinite(x) for x in (lo, hi)) else 0.0
    return None if not half > 0 else int(min(4, max(0, 1 - math.floor(math.log10(half)))))


def estimate_tex(r, *, inline: bool = False) -> str:
    """The judged estimate [interval] (the claims table breaks the line before the interval; ``inline`` does not),
    to the precision the interval gives: two significant digits of its half-width (-0.004 [-0.014, 0.007], not
    -0.00377 [-0.0143, 0.0067]); three significant digits where there is no interval."""
    places = _decimals(r["ci_low"], r["ci_high"])

    def f(x):
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "n/a"
        text = f"{x:.{places}f}" if places is not None else f"{x:.3g}"
        return ("0" if places is None else f"{0:.{places}f}") if float(text) == 0 else text.replace("-", "$-$")
    if isinstance(r["ci_low"], float) and not math.isnan(r["ci_low"]):
        sep = " " if inline else r"\newline "
        return rf"{f(r['estimate'])}{sep}[{f(r['ci_low'])}, {f(r['ci_high'])}]"
    return f(r["estimate"])


def id_tex(claim_id: str) -> str:
    """A claim's id in typewriter type, breakable after each hyphen."""
    return r"\texttt{" + r"-\allowbreak{}".join(escape(w) for w in claim_id.split("-")) + "}"


# the columns of the claims and sanity tables: the id, two texts, the estimate and the verdict
_COLUMNS = (r"@{}>{\raggedright\arraybackslash}p{0.15\textwidth}>{\raggedright\arraybackslash}p{0.29\textwidth}"
            r">{\raggedright\arraybackslash}p{0.29\textwidth}>{\raggedright\arraybackslash}p{0.11\textwidth}"
            r">{\raggedright\arraybackslash}p{0.08\textwidth}@{}")


def held_tex(r, runs: int, *, inline: bool = False) -> str:
    """``held k of K`` under a verdict judged on pooled runs (a table with ``held``), else nothing."""
    h = r.get("held", float("nan"))
    if h is None or h != h:
        return ""
    return f", held in {h:.0f} of {runs} runs" if inline else rf"\newline held in {h:.0f} of {runs}"


def _ids_tex(ids) -> str:
    """Claim ids in typewriter type, joined in words ("a, b and c"); "none" for no ids."""
    ids = [id_tex(i) for i in ids]
    return "none" if not ids else ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def _itemize(claims_, registry: Registry, table: pd.DataFrame) -> str:
    """A compact list of the claims' sentences, each with its id; empty for no claims."""
    items = "".join(rf"\item {escape(sentence(registry, table, c.id))} ({id_tex(c.id)})" for c in claims_)
    return rf"\begin{{itemize}}\setlength{{\itemsep}}{{0pt}}\setlength{{\parskip}}{{0pt}}{items}\end{{itemize}}" if items else ""


def grouping_tex(registry: Registry, table: pd.DataFrame) -> list[str]:
    """The verdicts grouped for the abstract and the introduction, each group in registry order, over the
    entries that apply to the profile's reference. Every rule states the distributional framing's prediction,
    so a verdict says whether that prediction held, not that the installation framing's did: a claim can fail
    the other way from both (e.g. a rise far larger than the one predicted).

    ``\\claimleaning``: how many claims and replications had the distributional prediction hold, fail, or not
    settled; ``\\claimsagainst``: the registry's sentence of every claim and replication whose distributional
    prediction failed (contradicted), with its id, as a list (or "It failed for none."); ``\\claimsheld`` and ``\\claimsunsettled``: the ids of those
    it held for and of those not settled; ``\\primaryheld``, ``\\primaryagainst``, ``\\primaryunsettled``: the
    sentences of the primary claims in each group, after the group's label ("Held:", "Failed:", "Not settled:";
    empty for none); ``\\sanityfailed``: the ids of failed sanity checks."""
    t = table.set_index("id")
    shown = [c for c in registry.claims if t.loc[c.id, "verdict"] != NOT_APPLICABLE]
    main = [c for c in shown if c.kind != "sanity"]
    group = {v: [c for c in main if t.loc[c.id, "verdict"] == v] for v in VERDICTS}

    def sentences(claims_, label=""):
        text = " ".join(escape(sentence(registry, table, c.id)) for c in claims_)
        return rf"\emph{{{label}:}} {text}" if label and text else text

    held, against, unsettled = (len(group[v]) for v in VERDICTS)
    leaning = (f"the distributional framing's prediction held for {held} of the {len(main)} claims and replications, "
               f"failed for {against} and was not settled for {unsettled}")
    failed = [c.id for c in shown if c.kind == "sanity" and t.loc[c.id, "verdict"] == "failed"]
    primary = {v: [c for c in group[v] if c.primary] for v in VERDICTS}
    return [rf"\newcommand{{\claimleaning}}{{{leaning}}}",
            rf"\newcommand{{\claimsagainst}}{{{_itemize(group['contradicted'], registry, table) or 'It failed for none.'}}}",
            rf"\newcommand{{\claimsheld}}{{{_ids_tex(c.id for c in group['supported'])}}}",
            rf"\newcommand{{\claimsunsettled}}{{{_ids_tex(c.id for c in group['inconclusive'])}}}",
            rf"\newcommand{{\primaryheld}}{{{sentences(primary['supported'], 'Held')}}}",
            rf"\newcommand{{\primaryagainst}}{{{sentences(primary['contradicted'], 'Failed')}}}",
            rf"\newcommand{{\primaryunsettled}}{{{sentences(primary['inconclusive'], 'Not settled')}}}",
            rf"\newcommand{{\sanityfailed}}{{{_ids_tex(failed)}}}"]


def tex(registry: Registry, table: pd.DataFrame, *, runs: int = 1) -> str:
    """LaTeX for the paper: ``\\claimstable{<caption>}`` (claims and replications: the two predictions, estimate
    [interval], verdict; on pooled runs, the runs whose own verdict it is), ``\\sanitytable{<caption>}`` (sanity
    checks: passed or failed), both long tables that break across pages with their header repeated,
    ``\\claimtally`` (the counts of verdicts, in words), and for each entry
    ``\\claimsentence{<id>}``, the registry's sentence for the verdict it got, ``\\claimverdict{<id>}``, the verdict,
    and ``\\claimestimate{<id>}``, the judged estimate with its interval (and on pooled runs, the runs that hold it)."""
    t = table.set_index("id")
    lines = ["% generated by dint.claims_tex.tex from paper/claims.yaml and the profile's numbers; do not edit",
             r"\makeatletter"]
    for c in registry.claims:
        outcome = t.loc[c.id, "verdict"]
        lines.append(rf"\@namedef{{claimsentence@{c.id}}}{{{escape(sentence(registry, table, c.id))}}}")
        lines.append(rf"\@namedef{{claimverdict@{c.id}}}{{{outcome}}}")
        lines.append(rf"\@namedef{{claimestimate@{c.id}}}{{{estimate_tex(t.loc[c.id], inline=True)}{held_tex(t.loc[c.id], runs, inline=True)}}}")
    shown = t[t["verdict"] != NOT_APPLICABLE]
    main, sanity = shown[shown["kind"] != "sanity"], shown[shown["kind"] == "sanity"]
    count = main["verdict"].value_counts()
    tally = (f"of {len(main)} registered claims and replications, {count.get('supported', 0)} are supported, "
             f"{count.get('contradicted', 0)} contradicted and {count.get('inconclusive', 0)} inconclusive "
             f"({runs} run{'s' if runs != 1 else ''}); {int((sanity['verdict'] == 'passed').sum())} of {len(sanity)} "
             "sanity checks pass")
    lines += [r"\makeatother", rf"\newcommand{{\claimtally}}{{{tally}}}", *grouping_tex(registry, table),
              r"\newcommand{\claimsentence}[1]{\csname claimsentence@#1\endcsname}",
              r"\newcommand{\claimverdict}[1]{\csname claimverdict@#1\endcsname}",
              r"\newcommand{\claimestimate}[1]{\csname claimestimate@#1\endcsname}"]
    rows = []
    for c in registry.claims:
        if c.kind == "sanity" or t.loc[c.id, "verdict"] == NOT_APPLICABLE:
            continue
        r = t.loc[c.id]
        rows.append(rf"{id_tex(c.id)}{' (replication)' if c.kind == 'replication' else ''} & "
                    rf"{escape(c.predictions['installation'])} & {escape(c.predictions['distributional'])} & "
                    rf"{estimate_tex(r)} & \textbf{{{r['verdict']}}}{held_tex(r, runs)} \\")
    header = (r"claim & truth installation predicts & distributional intervention predicts & "
              + ("pooled estimate [95\\% CI]" if runs > 1 else r"estimate [95\% CI]")
              + rf" & verdict ({runs} run{'s' if runs != 1 else ''})")
    lines += _long_table("claimstable", header, rows)
    rows = []
    for c in registry.claims:
        if c.kind != "sanity" or t.loc[c.id, "verdict"] == NOT_APPLICABLE:
            continue
        r = t.loc[c.id]
        rows.append(rf"{id_tex(c.id)} & {escape(c.observable)} & {escape(c.refutation)} & {estimate_tex(r)} & "
                    rf"{r['verdict']}{held_tex(r, runs)} \\")
    lines += _long_table("sanitytable", r"check & observable & why it cannot fail & estimate & result", rows)
    return "\n".join(lines) + "\n"


def _long_table(name: str, header: str, rows: list[str]) -> list[str]:
    """``\\<name>{<caption>}``: a ``longtable`` in the paper's text that breaks across pages, its caption (which may
    hold the ``\\label``) on the first page and the header repeated on every page."""
    return [rf"\newcommand{{\{name}}}[1]{{\begingroup\footnotesize\setlength{{\LTcapwidth}}{{\textwidth}}"
            r"\setlength{\tabcolsep}{4pt}"
            rf"\begin{{longtable}}{{{_COLUMNS}}}\caption{{#1}}\\ \toprule {header} \\ \midrule\endfirsthead",
            rf"\toprule {header} \\ \midrule\endhead \bottomrule\endfoot", *rows, r"\end{longtable}\endgroup}"]
