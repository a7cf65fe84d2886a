"""The analysis of notebook 01 (every post-training method is a shift of the output distribution).

In the notebook's order:

- `load`: the world, the base model, its answer distributions and every intervention (trained once, then
  loaded) with its answer distributions; `records` tabulates the interventions' training records.
- `best_of_n`: the SFT model's QA answer distributions reweighted exactly to the best of n draws by the
  proxy reward, added to the interventions' scores.
- `shifts`: per item the shift of each intervention from the base (`dint.compare.shift`), and per form
  and split the paired estimates with intervals, Holm-adjusted across interventions (`summary`);
  `heldout_qa` picks the held-out QA rows the paper quotes.
- `by_type`: the same estimates per fact type, QA form.
- `locality`: where a shift falls, in the statement form (which no intervention trains): the mean KL from
  the base on held-out facts over the mean KL on train facts.
- `token_shift`: URIAL's token-shift classes of each trained model's answer tokens (forced continuations,
  the stop and text after the answer apart), where each answer stops, its positions per item, and the
  full-vocabulary KL.
- `numbers`: the numbers the paper quotes, named for ``numbers.json``; `figure`: the notebook's figure.

Every table with estimates has the columns `dint.stats.ROW` after its label columns.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import compare, models, plot, stats
from .. import tokens as token_level
from ..interventions import bestofn, data, plan
from ..pipeline import artifacts
from . import experiments

__all__ = ["Inputs", "Shifts", "Tokens", "load", "records", "best_of_n", "shifts", "heldout_qa", "by_type", "locality",
           "token_shift", "numbers", "figure"]

# the measures of `dint.compare.summarize` quoted per intervention
MEASURES = ("kl", "tv", "d_entropy", "accuracy_base", "accuracy_post", "d_accuracy")
# the training record's fields shown per intervention
RECORD_FIELDS = ("method", "steps", "tokens", "train_flops", "inference_flops", "trainable_params", "loss_first",
                 "loss_last", "wall_time")


@dataclass(frozen=True)
class Inputs:
    """What notebook 01 loads: the world, the base model and its scores, each intervention and its scores."""

    world: object               # `dint.world.World` (or `dint.realworld.RealWorld`)
    base: object                # the base model
    tokenizer: object           # the tokenizer the base and every intervention share
    base_scores: pd.DataFrame   # the base model's exact answer distributions (`artifacts.base_scores`)
    trained: dict               # {name: (model, tokenizer, record)} (`artifacts.intervention`)
    scores: dict                # {name: score table} (`artifacts.intervention_scores`)


@dataclass(frozen=True)
class Shifts:
    """Per item and per group, the shift of each intervention from the base."""

    items: dict                 # {name: `dint.compare.shift` table}
    summary: pd.DataFrame       # ``intervention, form, split, measure``, `dint.stats.ROW`, transitions, ``pvalue_holm``


def load(P, interventions) -> Inputs:
    """The world, the base model and every intervention named, with the profile's own methods, and their exact
    answer distributions.

    Parameters
    ----------
    P : `dint.pipeline.config.Profile`
    interventions : names of answer-producing interventions (`dint.interventions.plan.names` but ``"reward"``); the
        profile's own methods (``interventions.custom``) are added (`dint.interventions.plan.with_custom`)

    Returns
    -------
    Inputs (the interventions trained on first use, then loaded)
    """
    known = plan.names(P.interventions)
    bad = sorted(set(interventions) - set(known) | ({"reward"} & set(interventions)))
    if bad:
        raise ValueError(f"interventions={list(interventions)!r}: {bad} are not answer-producing interventions; "
                         f"choose from {[n for n in known if n != 'reward']}")
    interventions = plan.with_custom(P.interventions, interventions)
    base, tokenizer, _ = artifacts.base_model(P)
    return Inputs(world=artifacts.world(P), base=base, tokenizer=tokenizer, base_scores=artifacts.base_scores(P),
                  trained={name: artifacts.intervention(P, name) for name in interventions},
                  scores={name: artifacts.intervention_scores(P, name) for name in interventions})


def records(trained: dict) -> pd.DataFrame:
    """The interventions' training records, one row each.

    Returns
    -------
    DataFrame ``intervention`` and `RECORD_FIELDS`, plus the FLOPs each record states against the rules
    6·N·tokens (``train_flops_rule``) and 2·N·tokens (``inference_flops_rule``): 1 where they agree, NaN
    where no tokens were counted.
    """
    rows = []
    for name, (_, _, r) in trained.items():
        rows.append({"intervention": name, **{f: getattr(r, f) for f in RECORD_FIELDS},
                     "train_flops_rule": r.train_flops / (6 * r.n_params * r.tokens) if r.tokens else np.nan,
                     "inference_flops_rule": (r.inference_flops / (2 * r.n_params * r.inference_tokens)
                                              if r.inference_tokens else np.nan)})
    return pd.DataFrame(rows)


def best_of_n(P, scores: dict, *, bon_n: int) -> dict:
    """The interventions' scores with best-of-``bon_n`` on the SFT model by the proxy reward added.

    Parameters
    ----------
    P : `dint.pipeline.config.Profile` (the cached SFT scores and proxy rewards)
    scores : {name: score table} of the interventions
    bon_n : draws per answer; 0 leaves best-of-n out

    Returns
    -------
    {name: score table}: ``scores`` and, unless ``bon_n`` is 0, ``"sft+bon<bon_n>"``: the SFT model's QA
    answer distribution reweighted exactly to the best of ``bon_n`` draws (`dint.interventions.bestofn.exact`),
    the QA form only (the reward model judges answers to questions).
    """
    if not isinstance(bon_n, (int, np.integer)) or isinstance(bon_n, bool) or bon_n < 0:
        raise ValueError(f"bon_n={bon_n!r}: give a non-negative integer (0 leaves best-of-n out)")
    if not bon_n:
        return dict(scores)
    sft_scores = scores["sft"] if "sft" in scores else artifacts.intervention_scores(P, "sft")
    # the proxy reward model's score of every candidate (a cached artifact, scored once for every notebook)
    _, logp, _, proxy = experiments.candidate_rewards(experiments.reward_table(P, form="qa"), sft_scores, form="qa")
    q = bestofn.exact(np.exp(logp) / np.exp(logp).sum(1, keepdims=True), proxy, bon_n)
    s = sft_scores[sft_scores.form == "qa"].sort_values(["fact", "candidate"]).copy()
    s["p_set"] = q[s.groupby("fact", sort=True).ngroup().to_numpy(), s["candidate"].to_numpy()]
    return {**scores, f"sft+bon{bon_n}": s}


def _tidy(summary: pd.DataFrame, labels: list) -> pd.DataFrame:
    """A `dint.compare.summarize` table with the result convention: labels, then `dint.stats.ROW`."""
    t = summary.rename(columns={"test": "method"})
    t["reason"] = t["reason"].fillna("") if "reason" in t.columns else ""
    first = [*labels, "measure", *stats.ROW]
    return t[first + [c for c in t.columns if c not in first]]


def shifts(base_scores: pd.DataFrame, scores: dict, facts: pd.DataFrame, *, n_resamples: int = 2000,
           rng=0) -> Shifts:
    """Per item the shift of each intervention from the base, and its paired summaries per form and split.

    Parameters
    ----------
    base_scores : the base model's score table
    scores : {name: score table} of the interventions (each compared on the forms it has)
    facts : the world's facts table (``split``, ``type``)
    n_resamples, rng : of the bootstrap intervals and permutation tests

    Returns
    -------
    Shifts: ``items`` per intervention (`dint.compare.shift`); ``summary`` per intervention, form, split and
    measure (`dint.compare.summarize`), with ``pvalue_holm``: Holm's adjustment across interventions within
    each (measure, form, split).
    """
    items = {name: compare.shift(base_scores[base_scores.form.isin(s.form.unique())], s, facts)
             for name, s in scores.items()}
    summary = pd.concat([compare.summarize(it, by=["form", "split"], n_resamples=n_resamples, rng=rng)
                         .assign(intervention=name) for name, it in items.items()], ignore_index=True)
    summary = stats.holm(_tidy(summary, ["intervention", "form", "split"]), family=["measure", "form", "split"])
    return Shifts(items=items, summary=summary)


def heldout_qa(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `shifts` summary on held-out facts in the QA form: what the paper quotes."""
    return summary[(summary.form == "qa") & (summary.split == "heldout")]


def by_type(items: dict, *, n_resamples: int = 2000, rng=0) -> pd.DataFrame:
    """The paired summaries of each intervention's QA items per fact type.

    Returns
    -------
    DataFrame ``intervention, type, measure``, `dint.stats.ROW` and the transitions (`dint.compare.summarize`).
    """
    t = pd.concat([compare.summarize(it[it.form == "qa"], by="type", n_resamples=n_resamples, rng=rng)
                   .assign(intervention=name) for name, it in items.items()], ignore_index=True)
    return _tidy(t, ["intervention", "type"])


def locality(items: dict, *, form: str = "statement", n_resamples: int = 2000, n_permutations: int = 9999,
             rng=0) -> pd.DataFrame:
    """Where each intervention's shift falls: its mean KL from the base on held-out facts over its mean KL on
    the train facts it was trained on, in one prompt form.

    An installed fact is a local change, so held-out facts would barely move (a ratio near 0); a shift of
    the whole distribution moves them as much as the trained ones (a ratio near 1). In the statement form,
    which no intervention trains and the base knows, the format plays no part.

    Parameters
    ----------
    items : {name: `dint.compare.shift` table} (`Shifts.items`); interventions without ``form`` are left out
    form : the prompt form compared
    n_resamples : of the percentile bootstrap of the ratio (train and held-out facts resampled apart)
    n_permutations : sign flips of the test that the held-out mean KL exceeds 0
    rng : int seed or numpy Generator

    Returns
    -------
    Tidy DataFrame ``intervention, form, measure`` (``locality``) and `dint.stats.ROW` (``n``: held-out facts),
    then ``kl_train`` and ``kl_heldout``, the two means.

    Notes
    -----
    The interval is `dint.stats.ratio_of_means` (a two-sample percentile bootstrap); the p-value is the one-sided sign-flip test (`dint.stats.paired_permutation_test`) of the held-out
    per-fact KL against 0, which any movement of held-out facts passes: the verdict turns on the ratio's size.
    """
    if not isinstance(form, str):
        raise ValueError(f"form={form!r}: give a prompt form, e.g. 'statement'")
    rows = []
    for name, it in items.items():
        f = it[it.form == form]
        train, held = f.loc[f.split == "train", "kl"].to_numpy(float), f.loc[f.split == "heldout", "kl"].to_numpy(float)
        if len(train) < 2 or len(held) < 2:
            continue
        ratio = stats.ratio_of_means(held, train, n_resamples=n_resamples, rng=rng)
        test = stats.paired_permutation_test(held, np.zeros_like(held), alternative="greater",
                                             n_resamples=n_permutations, rng=rng)
        result = replace(ratio, pvalue=test.pvalue, reason=test.reason,
                         method="ratio of mean KL from the base, held-out over train facts, percentile bootstrap "
                                "with the splits resampled apart; sign-flip test of the held-out mean KL > 0")
        rows.append({**result.row(intervention=name, form=form, measure="locality"),
                     "kl_train": float(train.mean()), "kl_heldout": float(held.mean())})
    return pd.DataFrame(rows, columns=["intervention", "form", "measure", *stats.ROW, "kl_train", "kl_heldout"])


@dataclass(frozen=True)
class Tokens:
    """What `token_shift` measures per trained model."""

    shares: pd.DataFrame        # ``model, measure`` and `dint.stats.ROW` (see `token_shift`)
    positions: pd.DataFrame     # ``model, answer_positions, n_items, share``: items by their answer tokens


def token_shift(inputs: Inputs, *, n_items: int = 100, max_new_tokens: int = 4, n_resamples: int = 2000, rng=0,
                threads: int = 0) -> Tokens:
    """URIAL's token-shift classes of each trained model's answer tokens on held-out QA prompts, with the
    full-vocabulary KL, where each answer stops, and how many positions each answer has.

    Each trained model decodes greedily (RAG on its context-augmented prompts) and the base ranks each
    token (`dint.tokens.token_shift`, with the fact's candidate values and the labelers' closing
    marker `dint.interventions.data.STYLE_MARKER`): the answer tokens are those of the answer value; a
    forced continuation of it (the second word of the only two-word value that begins so), the stop (eos)
    and text after the answer are counted apart.

    Parameters
    ----------
    inputs : as `load` returns it
    n_items : held-out QA prompts, drawn with ``rng`` (all of them if there are fewer)
    max_new_tokens : longest output
    n_resamples, rng : of the cluster bootstrap over items (``rng`` also draws the prompts)
    threads : torch threads (0: torch's default)

    Returns
    -------
    Tokens. ``shares``: per model, with its interval —
    ``answer_unshifted``, ``answer_marginal``, ``answer_shifted``: the classes of the unforced answer tokens
    (the claim's share; ``n`` the tokens; cluster bootstrap by item, and for ``answer_unshifted`` the p-value
    of a Wald test that it is one half, `dint.stats.share_test`, standard errors clustered by item);
    ``answer_unshifted_with_forced``: the same share with forced continuations counted; ``forced_share``:
    the share of answer tokens that are forced; ``stop``: the share of items whose output stops right after
    the answer, the closing marker allowed between (Wilson); ``answer_positions`` and ``after_positions``:
    the mean answer tokens and tokens after the answer per item (bootstrap over items); ``unshifted``,
    ``marginal``, ``shifted``: the classes of every decoded position, eos and text after the answer
    included (URIAL's count over whole outputs); ``kl``: the mean per-position KL (``n`` the items).
    ``positions``: per model the items by their number of answer tokens.
    """
    if not isinstance(n_items, (int, np.integer)) or isinstance(n_items, bool) or n_items < 1:
        raise ValueError(f"n_items={n_items!r}: give a positive number of held-out prompts")
    world = inputs.world
    heldout = world.prompts("qa", world.facts[world.facts.split == "heldout"])
    heldout = heldout.sample(n=min(n_items, len(heldout)), random_state=rng).sort_values("fact")
    rows, positions = [], []
    for name, (model, _, _) in inputs.trained.items():
        rag = name == "rag"
        frame = model.prompts(heldout) if rag else heldout
        with models.torch_threads(threads):
            res = token_level.token_shift(model.model if rag else model, inputs.base, inputs.tokenizer,
                                         list(frame["prompt"]),
                                         answers=[[" " + c for c in cs] for cs in frame["candidates"]],
                                         closings=(data.STYLE_MARKER,), max_new_tokens=max_new_tokens,
                                         n_resamples=n_resamples, rng=rng)
        rows += _token_rows(name, res, n_resamples=n_resamples, rng=rng)
        counts = res.items["answer_positions"].value_counts().sort_index()
        positions += [{"model": name, "answer_positions": int(k), "n_items": int(v), "share": v / res.n_items}
                      for k, v in counts.items()]
    return Tokens(shares=pd.DataFrame(rows, columns=["model", "measure", *stats.ROW]),
                  positions=pd.DataFrame(positions, columns=["model", "answer_positions", "n_items", "share"]))


def _token_rows(name: str, res, *, n_resamples: int, rng) -> list:
    """The `Tokens.shares` rows of one model's `dint.tokens.TokenShiftResult`."""
    table, items = res.table, res.items
    rows = []
    for prefix, roles in (("answer_", ("answer",)), ("", None)):
        counted = table if roles is None else table[table.role.isin(roles)]
        shares = token_level.shift_shares(table, roles, n_resamples=n_resamples, rng=rng)
        # is the unshifted share one half? (URIAL's large models: about 0.78)
        if counted["item"].nunique() > 1:
            half = stats.share_test(counted["shift"] == "unshifted", counted["item"], value=0.5)
            shares["unshifted"] = replace(shares["unshifted"], pvalue=half.pvalue,
                                          reason=half.reason or shares["unshifted"].reason,
                                          method="cluster bootstrap by item; Wald test of one half, standard errors "
                                                 "clustered by item")
        rows += [r.row(model=name, measure=prefix + c) for c, r in shares.items()]
    with_forced = token_level.shift_shares(table, ("answer", "forced"), n_resamples=n_resamples, rng=rng)
    rows.append(with_forced["unshifted"].row(model=name, measure="answer_unshifted_with_forced"))
    answer = table[table.role.isin(("answer", "forced"))]
    rows.append(_share(answer, answer["role"] == "forced", n_resamples, rng).row(model=name, measure="forced_share"))
    rows.append(stats.proportion(int(items["stops_after_answer"].sum()), len(items)).row(model=name, measure="stop"))
    for m in ("answer_positions", "after_positions"):
        rows.append(replace(stats.cluster_bootstrap(items[m].to_numpy(float), items["item"].to_numpy(),
                                                    n_resamples=n_resamples, rng=rng),
                            method="mean per item, bootstrap over items").row(model=name, measure=m))
    rows.append(res.kl.row(model=name, measure="kl"))
    return rows


def _share(rows: pd.DataFrame, indicator: pd.Series, n_resamples: int, rng):
    """The share of ``rows`` where ``indicator`` holds, with its cluster-bootstrap interval by item."""
    if rows["item"].nunique() < 2:
        return stats.Result.not_estimable("fewer than two items with an answer token", n=len(rows))
    return token_level.share_of_positions(stats.cluster_bootstrap(indicator.to_numpy(float), rows["item"].to_numpy(),
                                                                 n_resamples=n_resamples, rng=rng), n=len(rows))


# the token-shift measures over every decoded position, named ``<model>_token_<measure>`` in the numbers
WHOLE_OUTPUT = ("unshifted", "marginal", "shifted", "kl")
# the models whose stop `dpo_stop_min` checks
DPO_MODELS = ("dpo", "dpo_lora")


def numbers(summary: pd.DataFrame, tokens: pd.DataFrame, records: pd.DataFrame, local: pd.DataFrame) -> dict:
    """The numbers notebook 01 quotes, named for ``numbers.json``.

    Parameters
    ----------
    summary : the `shifts` summary (its held-out QA rows are quoted)
    tokens : the `token_shift` shares (`Tokens.shares`)
    records : the `records` table
    local : the `locality` table

    Returns
    -------
    {name: `dint.stats.Result` or plain value}: per intervention (``+`` written ``_``) the `MEASURES` with
    the Holm-adjusted p-value (``<name>_<measure>``) and the transition counts (``<name>_right_wrong``,
    ``<name>_wrong_right``); per trained model the token-shift measures of its answers (``<model>_answer_unshifted``
    — the share the claim ``urial-unshifted-tokens`` judges —, ``_answer_marginal``, ``_answer_shifted``,
    ``_answer_unshifted_with_forced``, ``_forced_share``, ``_stop``, ``_answer_positions``, ``_after_positions``)
    and over every decoded position (``<model>_token_<measure>`` for `WHOLE_OUTPUT`); ``dpo_stop_min``, the
    smaller stop share of `DPO_MODELS` (those measured); whether every KL interval excludes 0, the number of
    held-out QA items, and the largest deviation of a record's training FLOPs from 6·N·tokens; per
    intervention its ``<name>_<form>_locality``.
    """
    qa = heldout_qa(summary)
    qa = qa[qa.measure.isin(MEASURES)].assign(key=qa.intervention.str.replace("+", "_", regex=False))
    out = stats.results(qa, "{key}_{measure}", pvalue="pvalue_holm")
    for r in qa[qa.measure == "d_accuracy"].itertuples():
        out[f"{r.key}_right_wrong"] = int(r.right_wrong)
        out[f"{r.key}_wrong_right"] = int(r.wrong_right)
    whole = tokens.measure.isin(WHOLE_OUTPUT)
    out.update(stats.results(tokens[whole], "{model}_token_{measure}"))
    out.update(stats.results(tokens[~whole], "{model}_{measure}"))
    stops = tokens[(tokens.measure == "stop") & tokens.model.isin(DPO_MODELS)]
    if len(stops):
        low = stops.loc[stops.estimate.idxmin()]
        out["dpo_stop_min"] = stats.Result.from_row(low, method=f"{low.method}; the smaller of "
                                                    f"{', '.join(stops.model)} ({low.model})")
    out["all_shift_kl_excludes_zero"] = bool((qa[qa.measure == "kl"].ci_low > 0).all())
    out["n_heldout_qa"] = int(qa.n.iloc[0])
    out.update(stats.results(local.assign(key=local.intervention.str.replace("+", "_", regex=False)),
                             "{key}_{form}_{measure}"))
    out["flops_rule_max_deviation"] = float(np.nanmax(np.abs(records[["train_flops_rule"]].to_numpy() - 1)))
    return out


def figure(summary: pd.DataFrame, tokens: pd.DataFrame):
    """The notebook's figure, five panels: (a) KL(post ‖ base), QA form, by split; (b) the accuracy change
    with its paired interval; (c) per-item transitions on held-out facts; (d) the token-shift classes of the
    answer tokens beside URIAL's published shares; (e) positions per item, answer and after it, with the
    share of outputs that stop after the answer.

    Parameters
    ----------
    summary : the `shifts` summary
    tokens : the `token_shift` shares (`Tokens.shares`)
    """
    fig, axes = plot.panels(5)
    qa = summary[summary.form == "qa"]
    plot.shift_measure(qa, "kl", ax=axes[0], xlabel="KL(post ‖ base), nats", reference=None)
    plot.shift_measure(qa, "d_accuracy", ax=axes[1], xlabel="accuracy change (post − base)")
    plot.transitions(heldout_qa(summary), ax=axes[2])
    plot.token_shift(tokens, ax=axes[3], prefix="answer_")
    plot.answer_positions(tokens, ax=axes[4])
    for ax, letter in zip(axes, "abcde"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
