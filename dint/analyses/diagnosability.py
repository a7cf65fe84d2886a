"""The analysis of notebook 03 (diagnosability): the truth framing loses what an error's cause is.

In notebook order:

`load`          the world, the base's and the answering interventions' scores (the parameters checked).
`deploy_rag`    the RAG reader also on a store with stale documents (``rag_stale``), and what every RAG
                policy put in its contexts; `stale_contexts` counts the stale documents.
`diagnose`      every held-out item of every model classified (`dint.taxonomy.diagnose`): the items, the
                errors, the base per prompt form and the classes per model (`Diagnosis`).
`agreement`     Cohen's κ of the classes with the known causes, pooled and per model, with and without the
                rare-fact errors, and per prompt form (tidy tables, `Agreement`); `ambiguous` the classes of
                the rare-fact errors.
`world`         the same errors against the causes the world alone gives (`dint.causes`): `taught` the facts each
                model's training data teaches a wrong value, `world_agreement` the taxonomy with thresholds
                cross-fitted on halves of the held-out facts beside the one-line rule "regression if the base was
                right, else selection", with the paired difference of their κ (`WorldAgreement`).
`compositions`  what accuracy-only accounting can tell apart, the class shares per model (and form), and
                every pair of models compared (`dint.analyses.composition`); `shares_table` the shares as a
                model × class table.
`pass_at_k`     exact pass@k per model and per error class, beside a uniform guess, and the excess over it.
`tests`         every test of the notebook, Holm-adjusted together; `similar` the pairs of similar accuracy.
`numbers`       the numbers the paper quotes (`quoted`: a few as a table); `figure` the notebook's figure.

Every table with intervals has the columns `dint.stats.ROW` after its labels.
"""
from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import causes, plot, stats, taxonomy
from ..agreement import accuracy_only, cluster_kappa_difference
from ..agreement import agreement as cohen_agreement
from ..interventions import data, plan, rag, retrieval
from ..interventions.record import InterventionRecord
from ..models import torch_threads
from ..pipeline import artifacts
from ..pipeline.config import Profile
from ..stats.checks import check_int
from . import composition

__all__ = ["Inputs", "Deployment", "Diagnosis", "Agreement", "WorldAgreement", "Compositions", "PassAtK", "answering",
           "load", "deploy_rag", "stale_contexts", "diagnose", "agreement", "ambiguous", "taught", "world_agreement",
           "compositions", "shares_table", "pass_at_k", "tests", "similar", "numbers", "quoted", "figure"]

# the methods the paper's numbers name (their intervals and tests are those of the tables)
SHARE_METHOD = "share of errors, cluster percentile bootstrap by fact"
PAIR_METHODS = {"d_accuracy": "paired accuracy difference, cluster bootstrap by fact",
                "tv": "TV of error compositions, paired cluster permutation test, Holm"}
PASS_METHOD = "exact pass@k, cluster bootstrap by fact"
EXCESS_METHOD = "pass@k minus uniform guess, Wald test with cluster bootstrap SE, Holm"
# the rows of `world_agreement`'s table: (reference, label) -> the name among the numbers
WORLD_NUMBERS = {("world, merged", "taxonomy, fitted", "all errors"): "kappa_world_crossfit",
                 ("world, merged", "taxonomy, fitted", "without rare"): "kappa_world_crossfit_norare",
                 ("world, merged", "taxonomy, defaults", "all errors"): "kappa_world_default",
                 ("world, merged", "one-line rule", "all errors"): "kappa_world_oneline",
                 ("world", "taxonomy, fitted", "all errors"): "kappa_world_full_taxonomy",
                 ("world", "one-line rule", "all errors"): "kappa_world_full_oneline",
                 ("world", "taxonomy − one-line", "all errors"): "kappa_world_vs_oneline",
                 ("circular", "one-line rule", "all errors"): "kappa_oneline_pooled_all"}


@dataclass(frozen=True)
class Inputs:
    """The world, the base's scores, each model's scores (by name) and the held-out facts."""

    world: object               # dint.world.World
    base_scores: pd.DataFrame
    scores: dict                # {name: score_world table}
    heldout: pd.DataFrame


def answering() -> list[str]:
    """The interventions that answer questions (all of `dint.interventions.plan` but the reward model, the sham and
    the format-only control)."""
    return [n for n in plan.NAMES if n not in ("reward", "sft_sham", "sft_format")]


def load(profile: Profile, names, *, k_max: int = 64) -> Inputs:
    """The cached scores of the base and of the interventions ``names``, with the profile's own methods.

    Parameters
    ----------
    names : answering interventions (`answering`, or the profile's own methods); the profile's own methods
        (``interventions.custom``) are added (`dint.interventions.plan.with_custom`)
    k_max : the largest k of pass@k, checked here (>= 8: pass@k is quoted at k = 1, 8 and k_max)
    """
    known = answering() + list(profile.interventions.custom_names)
    bad = sorted(set(names) - set(known))
    if bad or not names:
        raise ValueError(f"interventions: {bad or 'empty'}; choose answering interventions from {known}")
    names = plan.with_custom(profile.interventions, names)
    if not (isinstance(k_max, int) and k_max >= 8):
        raise ValueError(f"k_max={k_max!r}: must be an int >= 8 (pass@k is quoted at k = 1, 8 and k_max)")
    world = artifacts.world(profile)
    scores = {name: artifacts.intervention_scores(profile, name) for name in names}
    return Inputs(world, artifacts.base_scores(profile), scores, world.facts[world.facts.split == "heldout"])


@dataclass(frozen=True)
class Deployment:
    """``scores``: every model's scores (with ``rag_stale`` where deployed); ``routing``: per RAG policy, what
    its contexts held on the held-out prompts of both forms (empty without RAG); ``stores``: per RAG policy, its
    document store."""

    scores: dict
    routing: dict
    stores: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.scores)


def deploy_rag(profile: Profile, inputs: Inputs, *, stale_share: float = 0.3, seed: int = 0) -> Deployment:
    """The profile's RAG reader and retriever, and the same on a store with a share ``stale_share`` of stale
    documents (scored on the held-out facts as ``rag_stale``; 0: left out). Without ``rag``, the scores as loaded."""
    if not 0 <= stale_share <= 1:
        raise ValueError(f"stale_share={stale_share!r}: give a share in [0, 1] (0: leave the stale store out)")
    scores, routing = dict(inputs.scores), {}
    policies = {}
    if "rag" in scores:
        world = inputs.world
        policy, tokenizer, _ = artifacts.intervention(profile, "rag")
        policies = {"rag": policy}
        if stale_share:
            stale_store = retrieval.build_store(world, retrieval.StoreConfig(stale_share=stale_share), seed=seed)
            policies["rag_stale"] = policy.with_store(stale_store)
            with torch_threads(profile.interventions.threads):   # the profile's threads: same numbers anywhere
                scores["rag_stale"] = artifacts.score_world(policy.model, tokenizer,
                                                            dataclasses.replace(world, facts=inputs.heldout), profile,
                                                            route=policies["rag_stale"].prompts)
        routing = {name: pd.concat([p.prompts(world.prompts(form, inputs.heldout)) for form in ("qa", "statement")],
                                   ignore_index=True) for name, p in policies.items()}
    return Deployment(scores, routing, {name: p.store for name, p in policies.items()})


def stale_contexts(deployment: Deployment) -> pd.DataFrame:
    """Per RAG policy: ``stale documents in context`` and ``items`` (held-out prompts)."""
    return pd.DataFrame([{"policy": name, "stale documents in context": int(r.has_stale.sum()), "items": len(r)}
                         for name, r in deployment.routing.items()], columns=["policy", "stale documents in context",
                                                                              "items"]).set_index("policy")


@dataclass(frozen=True)
class Diagnosis:
    """``items``: `dint.taxonomy.diagnose`'s table (every model, held-out items); ``errors``: its errors;
    ``base_by_form``: the base's accuracy, mean mass on the truth and base rate per form; ``overview``: per
    model its accuracy, errors and errors per class; ``models``: the models, in order."""

    items: pd.DataFrame
    errors: pd.DataFrame
    base_by_form: pd.DataFrame
    overview: pd.DataFrame
    models: list


def diagnose(inputs: Inputs, deployment: Deployment) -> Diagnosis:
    """Every held-out item of every model classified from the distributions, with its known cause."""
    names = deployment.models
    items = taxonomy.diagnose(inputs.world, inputs.base_scores, deployment.scores, routing=deployment.routing,
                              split="heldout")
    errors = items[items.error]
    base_by_form = items[items.intervention == names[0]].groupby("form").agg(
        base_accuracy=("correct_base", "mean"), base_p_true=("p_true_base", "mean"), base_rate=("base_rate", "mean"))
    overview = pd.crosstab(items.intervention, items["class"]).reindex(
        index=names, columns=[c for c in taxonomy.CLASSES if c in set(errors["class"])])
    overview.insert(0, "accuracy", 1 - items.groupby("intervention").error.mean().reindex(names))
    overview.insert(1, "errors", errors.groupby("intervention").size().reindex(names).fillna(0).astype(int))
    return Diagnosis(items, errors, base_by_form, overview, names)


@dataclass(frozen=True)
class Agreement:
    """``kappas``: per (label: "pooled" or a model, subset: "all errors" or "without rare") Cohen's κ
    (cluster bootstrap by fact), then `dint.stats.ROW` and ``observed`` (the observed agreement);
    ``by_form``: per (intervention, form) κ with its asymptotic interval (statsmodels); ``pooled``: the
    pooled `dint.agreement.AgreementResult` (its ``confusion`` and ``per_class``)."""

    kappas: pd.DataFrame
    by_form: pd.DataFrame
    pooled: object


def agreement(errors: pd.DataFrame, *, n_resamples: int = 2000, seed: int = 0) -> Agreement:
    """Cohen's κ between each error's class and its known cause (`dint.agreement.agreement`)."""
    check_int("n_resamples", n_resamples, 1)
    found, rows = {}, []
    for label, e in [("pooled", errors), *errors.groupby("intervention", sort=False)]:
        for subset, g in (("all errors", e), ("without rare", e[~e.ambiguous])):
            if len(g):
                r = cohen_agreement(g["class"], g["cause"], clusters=g["fact"], n_resamples=n_resamples, rng=seed)
                found[label, subset] = r
                rows.append({**r.row(label=label, subset=subset), "observed": r.observed})
    by_form = [cohen_agreement(g["class"], g["cause"]).row(intervention=name, form=form)
               for (name, form), g in errors.groupby(["intervention", "form"], sort=False)]
    return Agreement(pd.DataFrame(rows), pd.DataFrame(by_form), found["pooled", "all errors"])


def ambiguous(diagnosis: Diagnosis) -> pd.DataFrame:
    """The rare-fact (ambiguous) errors per model and class."""
    e = diagnosis.errors[diagnosis.errors.ambiguous]
    return pd.crosstab(e.intervention, e["class"]).reindex(diagnosis.models)


def taught(profile: Profile, inputs: Inputs, deployment: Deployment) -> dict:
    """Per model, the facts its training data sets a wrong value for (`dint.causes.taught_wrong`): SFT's
    demonstrations, DPO's preference pairs, both for RLHF (its SFT start and its reward model's pairs), RAG-SFT's
    demonstrations for the RAG reader (on either store), and for a method of the profile's own what its record
    says (``extra["taught_wrong"]``, `dint.interventions.custom`; none when it says nothing). Empty where the world
    has no corpus to count (real facts).
    """
    world = inputs.world
    if not isinstance(getattr(world, "counts", None), pd.DataFrame):
        return {}
    cfg, seed = profile.interventions, profile.train_seed
    found = {"sft": causes.taught_wrong(world, data.sft_demos(world)),
             "dpo": causes.taught_wrong(world, data.preference_pairs(world, cfg.config("labeler"),
                                                                     facts=plan.train_facts(world), seed=seed))}
    found["rlhf"] = found["sft"] | found["dpo"]
    if deployment.stores:   # the reader is trained on a clean store (`dint.interventions.rag.run`)
        clean = retrieval.build_store(world, dataclasses.replace(cfg.config("store"), stale_share=0.0), seed=seed)
        demos = rag.demonstrations(world, clean, retrieval.make_retriever("bm25", clean), cfg.config("rag"), seed=seed)
        found["rag"] = found["rag_stale"] = causes.taught_wrong(world, demos)
    for name in (n for n in deployment.models if n in cfg.custom):
        record = InterventionRecord.load(artifacts.ensure_intervention(profile, name) / "record.json")
        found[name] = set(record.extra.get("taught_wrong", []))
    same = {"sft_lora": "sft", "dpo_lora": "dpo"}
    return {name: found[same.get(name, name)] for name in deployment.models if same.get(name, name) in found}


@dataclass(frozen=True)
class WorldAgreement:
    """The taxonomy against the causes the world alone gives, on the held-out errors.

    ``errors``: the errors with ``world_cause``, ``rare``, ``fold`` (the half of their fact), ``class_crossfit``
    (the class under thresholds fitted on the other half) and ``class_oneline`` (the one-line rule);
    ``fitted``: `dint.causes.CrossFit.fitted`; ``kappas``: ``reference`` ("world, merged": regression and selection
    merged; "world"; "circular": `dint.taxonomy.known_cause`), ``label``, ``subset``, then `dint.stats.ROW` and
    ``name`` (its name among the numbers); ``counts``: errors per world cause; ``reason``: why there is nothing
    (no corpus to count), empty otherwise."""

    errors: pd.DataFrame
    fitted: pd.DataFrame
    kappas: pd.DataFrame
    counts: pd.Series
    reason: str = ""

    def results(self) -> dict:
        """The rows of ``kappas`` as named `dint.stats.Result`."""
        return stats.results(self.kappas, "{name}")


def world_agreement(inputs: Inputs, diagnosis: Diagnosis, deployment: Deployment, taught: dict, *,
                    grid: dict = causes.GRID, n_resamples: int = 2000, seed: int = 0) -> WorldAgreement:
    """The held-out errors' causes from the world alone (`dint.causes.world_cause`: the corpus's statements, the RAG
    stores' documents, the training data in ``taught``); the taxonomy's classes with thresholds cross-fitted on
    halves of the held-out facts (`dint.causes.crossfit`, the halves seeded by ``seed``) and the one-line rule, each
    with Cohen's κ (cluster bootstrap by fact), and the paired difference of their κ on the same resamples."""
    check_int("n_resamples", n_resamples, 1)
    columns = ["reference", "label", "subset", *stats.ROW, "name"]
    if not isinstance(getattr(inputs.world, "counts", None), pd.DataFrame):
        return WorldAgreement(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=columns),
                              pd.Series(dtype=int), "the world has no corpus to count (real facts): no world-only causes")
    e = diagnosis.errors.reset_index(drop=True)
    e = pd.concat([e, causes.world_cause(inputs.world, e, stores=deployment.stores, taught=taught)
                  .drop(columns=["n_true", "n_wrong_max"])], axis=1)
    fold = causes.folds(inputs.heldout, seed=seed)
    fitted = causes.crossfit(e, e["world_cause"].to_numpy(), fold, grid=grid)
    e["fold"] = fold.reindex(e["fact"].to_numpy()).to_numpy()
    e["class_crossfit"], e["class_oneline"] = fitted.classes, causes.one_line(e)
    merged, world = causes.at_world_resolution, e["world_cause"].to_numpy()
    boot = dict(n_resamples=n_resamples, rng=seed)
    rows = []

    def add(key, predicted, known, keep=slice(None)):
        facts = e["fact"].to_numpy()[keep]
        r = (cohen_agreement(np.asarray(predicted)[keep], np.asarray(known)[keep], clusters=facts, **boot)
             if len(facts) else stats.Result.not_estimable("no errors in this subset", method="Cohen's kappa"))
        rows.append({**r.row(reference=key[0], label=key[1], subset=key[2]), "name": WORLD_NUMBERS[key]})

    norare = ~e["rare"].to_numpy(bool)
    add(("world, merged", "taxonomy, fitted", "all errors"), merged(e["class_crossfit"]), merged(world))
    add(("world, merged", "taxonomy, fitted", "without rare"), merged(e["class_crossfit"]), merged(world), norare)
    add(("world, merged", "taxonomy, defaults", "all errors"), merged(e["class"]), merged(world))
    add(("world, merged", "one-line rule", "all errors"), merged(e["class_oneline"]), merged(world))
    add(("world", "taxonomy, fitted", "all errors"), e["class_crossfit"], world)
    add(("world", "one-line rule", "all errors"), e["class_oneline"], world)
    d = (cluster_kappa_difference(e["class_crossfit"], e["class_oneline"], world, e["fact"], **boot)
         if e["fact"].nunique() > 1 else
         stats.Result.not_estimable("fewer than two facts with errors", n=len(e),
                                    method="paired difference of Cohen's kappa"))
    key = ("world", "taxonomy − one-line", "all errors")
    rows.append({**d.row(reference=key[0], label=key[1], subset=key[2]), "name": WORLD_NUMBERS[key]})
    add(("circular", "one-line rule", "all errors"), e["class_oneline"], e["cause"])
    counts = e["world_cause"].value_counts().reindex(causes.WORLD_CLASSES, fill_value=0)
    return WorldAgreement(e, fitted.fitted, pd.DataFrame(rows, columns=columns), counts)


@dataclass(frozen=True)
class Compositions:
    """``accuracy_only``: κ of accuracy-only accounting (`dint.agreement.accuracy_only`); ``shares`` and
    ``shares_by_form``: `dint.analyses.composition.class_shares` per model (and form); ``pairs``:
    `dint.analyses.composition.compare_compositions` of every pair of models."""

    accuracy_only: object
    shares: pd.DataFrame
    shares_by_form: pd.DataFrame
    pairs: pd.DataFrame


def compositions(diagnosis: Diagnosis, *, margin: float = 0.05, n_resamples: int = 2000, n_permutations: int = 9999,
                 seed: int = 0) -> Compositions:
    """What accuracy-only accounting tells apart, the class shares, and every pair of models compared."""
    items = diagnosis.items
    return Compositions(
        accuracy_only(diagnosis.errors),
        composition.class_shares(items, by="intervention", n_resamples=n_resamples, rng=seed),
        composition.class_shares(items, by=["intervention", "form"], n_resamples=n_resamples, rng=seed),
        composition.compare_compositions(items, margin=margin, n_resamples=n_resamples, n_permutations=n_permutations,
                                         rng=seed))


def shares_table(compositions: Compositions, models: list) -> pd.DataFrame:
    """The class shares as a model × class table."""
    return compositions.shares.pivot(index="intervention", columns="class", values="estimate").reindex(
        index=models, columns=list(taxonomy.CLASSES))


@dataclass(frozen=True)
class PassAtK:
    """`dint.analyses.composition.pass_curve` tables: ``curves`` per model and the base (k = 1..k_max);
    ``by_class`` of the errors per class; ``guess`` a uniform guess over the candidate set per class;
    ``excess`` the excess of each class over the guess at k = 1, 8 and k_max (rows of measure "excess")."""

    curves: pd.DataFrame
    by_class: pd.DataFrame
    guess: pd.DataFrame
    excess: pd.DataFrame
    k_max: int

    def quoted(self) -> pd.DataFrame:
        """pass@k per model at k = 1, 8 and k_max (a model × k table)."""
        c = self.curves[self.curves.k.isin([1, 8, self.k_max])]
        return c.pivot(index="intervention", columns="k", values="estimate").reindex(list(dict.fromkeys(c.intervention)))

    def by_class_with_guess(self) -> pd.DataFrame:
        """``by_class`` with the guess's pass@k as ``pass_guess``."""
        return self.by_class.merge(self.guess[["class", "k", "estimate"]].rename(columns={"estimate": "pass_guess"}),
                                   on=["class", "k"])


def pass_at_k(diagnosis: Diagnosis, *, k_max: int = 64, n_resamples: int = 2000, seed: int = 0) -> PassAtK:
    """Exact pass@k (k = 1..k_max) per model and for the base on the same items, and of the errors per class
    beside a uniform guess, with the excess over the guess tested at k = 1, 8 and k_max."""
    check_int("k_max", k_max, 8)
    items, errors = diagnosis.items, diagnosis.errors
    ks = np.arange(1, k_max + 1)
    base_items = items[items.intervention == diagnosis.models[0]].assign(intervention="base",
                                                                          p_true_post=lambda d: d.p_true_base)
    curves = composition.pass_curve(pd.concat([base_items, items]), ks, by="intervention", n_resamples=n_resamples,
                                    rng=seed)
    by_class = composition.pass_curve(errors, ks, by="class", n_resamples=n_resamples, rng=seed)
    guess = composition.pass_curve(errors, ks, by="class", column="base_rate", n_resamples=n_resamples, rng=seed)
    excess = composition.pass_curve(errors, sorted({1, 8, k_max}), by="class", reference="base_rate",
                                    n_resamples=n_resamples, rng=seed)
    return PassAtK(curves, by_class, guess, excess[excess.measure == "excess"].reset_index(drop=True), k_max)


def tests(agreement: Agreement, compositions: Compositions, pass_at_k: PassAtK) -> pd.DataFrame:
    """Every test of the notebook in one table, Holm-adjusted together (`dint.stats.holm`).

    Returns
    -------
    DataFrame: ``family`` (kappa, kappa by form, composition, pass excess over guess), ``test`` (what is
    tested), ``name`` (its name among the numbers), then `dint.stats.ROW` and ``pvalue_holm``.
    """
    k, f = agreement.kappas, agreement.by_form
    pairs = compositions.pairs[compositions.pairs.measure == "tv"]
    excess = pass_at_k.excess
    sub = k.subset.map({"all errors": "all", "without rare": "norare"})
    table = pd.concat([
        k.assign(family="kappa", test=k.label + " / " + k.subset, name="kappa_" + k.label + "_" + sub),
        f.assign(family="kappa by form", test=f.intervention + " / " + f.form,
                 name="kappa_" + f.intervention + "_" + f.form),
        pairs.assign(family="composition", test=pairs.a + " vs " + pairs.b,
                     name="composition_" + pairs.a + "_vs_" + pairs.b),
        excess.assign(family="pass excess over guess", test=excess["class"] + " / k=" + excess.k.astype(str),
                      name="pass" + excess.k.astype(str) + "_excess_" + excess["class"]),
    ], ignore_index=True)[["family", "test", "name", *stats.ROW]]
    return stats.holm(table)


def similar(compositions: Compositions, tests: pd.DataFrame) -> pd.DataFrame:
    """The pairs of similar accuracy (TOST within the margin): their accuracy difference with its TOST
    interval, and the TV distance of their error compositions with its interval and Holm-adjusted p-value."""
    p = compositions.pairs
    pairs = p[p.similar_accuracy & p.measure.isin(["d_accuracy_tost", "tv"])]
    holm = tests[tests.family == "composition"].set_index("name").pvalue_holm
    names = ("composition_" + pairs.a + "_vs_" + pairs.b).where(pairs.measure == "tv")
    return pairs.assign(pvalue_holm=holm.reindex(names).to_numpy().astype(float))


def numbers(*, inputs: Inputs, diagnosis: Diagnosis, agreement: Agreement, compositions: Compositions,
            pass_at_k: PassAtK, tests: pd.DataFrame, similar: pd.DataFrame, stale_share: float,
            world: WorldAgreement | None = None) -> dict:
    """The numbers the paper quotes, named as its macros read them.

    Returns
    -------
    dict of `dint.stats.Result` and plain numbers: ``n_heldout_facts``, ``n_items_per_model``, ``stale_share``;
    ``kappa_<label>_all``/``_norare`` and ``kappa_<model>_<form>`` (Holm); ``accuracy_only_*``;
    ``pooled_<class>_precision``/``_recall``; ``share_<model>_<class>``; ``errors_<model>``;
    ``composition_<a>_vs_<b>`` (Holm) and ``d_accuracy_<a>_vs_<b>``; ``similar_pairs``(``_differing``);
    ``pass<k>_<model>`` at k = 1, 8 and k_max; ``pass<k>_excess_<class>`` (Holm); with ``world`` (where the world
    has a corpus), the names of `WORLD_NUMBERS` (not in the notebook's Holm family) and ``n_world_<cause>``, the
    errors per world-only cause.
    """
    models, errors = diagnosis.models, diagnosis.errors
    out = {"n_heldout_facts": len(inputs.heldout), "n_items_per_model": len(diagnosis.items) // len(models),
           "stale_share": float(stale_share)}
    kappas = tests[tests.family.isin(["kappa", "kappa by form"])]
    out.update(stats.results(kappas.assign(method=kappas.method + ", Holm"), "{name}", pvalue="pvalue_holm"))
    out["accuracy_only_kappa"] = float(compositions.accuracy_only.statistic)
    out["accuracy_only_observed"] = float(compositions.accuracy_only.observed)
    for c, r in agreement.pooled.per_class.iterrows():
        out[f"pooled_{c}_precision"], out[f"pooled_{c}_recall"] = float(r.precision), float(r.recall)
    out.update(stats.results(compositions.shares, "share_{intervention}_{class}", method=SHARE_METHOD))
    out.update({f"errors_{name}": int((errors.intervention == name).sum()) for name in models})
    pairs = compositions.pairs
    holm = tests[tests.family == "composition"].set_index("name").pvalue_holm
    for r in pairs[pairs.measure == "tv"].itertuples():   # in the paper's order: composition, then accuracy
        key = f"{r.a}_vs_{r.b}"
        out[f"composition_{key}"] = stats.Result.from_row(r, pvalue=float(holm[f"composition_{key}"]),
                                                          method=PAIR_METHODS["tv"])
        d = pairs[(pairs.a == r.a) & (pairs.b == r.b) & (pairs.measure == "d_accuracy")].iloc[0]
        out[f"d_accuracy_{key}"] = stats.Result.from_row(d, method=PAIR_METHODS["d_accuracy"])
    shown = similar[similar.measure == "tv"]
    out["similar_pairs"] = len(shown)
    out["similar_pairs_differing"] = int((shown.pvalue_holm < 0.05).sum())
    curves = pass_at_k.curves
    out.update(stats.results(curves[curves.k.isin([1, 8, pass_at_k.k_max])], "pass{k}_{intervention}",
                             method=PASS_METHOD))
    excess = tests[tests.family == "pass excess over guess"]
    out.update(stats.results(excess, "{name}", pvalue="pvalue_holm", method=EXCESS_METHOD))
    if world is not None and not world.reason:
        out.update(world.results())
        out.update({f"n_world_{c}": int(n) for c, n in world.counts.items()})
    return out


def quoted(numbers: dict, *, prefixes=("kappa_pooled", "kappa_world", "kappa_oneline", "accuracy_only",
                                       "similar")) -> pd.DataFrame:
    """The numbers whose names start with ``prefixes``, as a table: ``estimate, ci_low, ci_high, pvalue``."""
    rows = []
    for name, v in numbers.items():
        if name.startswith(tuple(prefixes)):
            r = v if isinstance(v, stats.Result) else stats.Result(float(v), stats.ConfidenceInterval(np.nan, np.nan),
                                                                   0, "")
            rows.append({"name": name, **{k: r.row()[k] for k in ("estimate", "ci_low", "ci_high", "pvalue")}})
    return pd.DataFrame(rows).set_index("name")


def figure(*, compositions: Compositions, agreement: Agreement, pass_at_k: PassAtK, world: WorldAgreement | None = None):
    """The notebook's figure: (a) errors per model by class, (b) the pooled confusion matrix, (c) κ per model
    and pooled, (d) pass@k per model and the base, (e) pass@k of the errors by class with a uniform guess, and
    with ``world`` (f) κ with the world-only causes: the taxonomy (cross-fitted, default thresholds) and the
    one-line rule, with the paired difference, beside the one-line rule's κ with the circular causes."""
    fig, axes = plot.panels(5 if world is None else 6, ncols=2, row_height=2.6)
    plot.error_composition(compositions.shares, ax=axes[0])
    plot.confusion(agreement.pooled.confusion, ax=axes[1])
    plot.forest(agreement.kappas, hue="subset", ax=axes[2], xlabel="κ, class vs cause")
    plot.pass_curves(pass_at_k.curves, hue="intervention", ax=axes[3], colors={"base": "0.3"})
    plot.pass_curves(pass_at_k.by_class, hue="class", ax=axes[4], reference=pass_at_k.guess, colors=plot.CLASS_COLORS)
    if world is not None and len(world.kappas):
        k = world.kappas[world.kappas.subset == "all errors"]
        short = {"taxonomy, fitted": "fitted", "taxonomy, defaults": "defaults", "one-line rule": "one-line",
                 "taxonomy − one-line": "difference"}
        plot.forest(k.assign(label=k.label.map(short)), y="label", hue="reference", ax=axes[5], xlabel="κ, by cause")
    elif world is not None:
        axes[5].text(0.5, 0.5, textwrap.fill(world.reason, 48), ha="center", va="center", fontsize=7)
        axes[5].set_axis_off()
    for ax, letter in zip(axes, "abcdef"):
        ax.set_title(f"({letter})", loc="left", fontsize=9)
    return fig
