"""Validity of dint's tests and intervals, checked by simulation.

Each check draws data with the structure the paper's comparisons have — paired binary outcomes
with heterogeneous item difficulty, items clustered by fact, skewed per-item statistics, run
estimates of world seeds x training seeds, error labels clustered by fact (κ, error compositions), the
2^4 factorial of stacks (the GEE joint test), two models' confidences on shared items (paired ECE
differences, AUROC), softmax labels (the temperature), curves over checkpoints and per-fact trends
along the SFT grid — under a null (type-I error at alpha = 0.05), under an
alternative (power at a stated effect) and with a known parameter (coverage at 0.95). Each uses
its own seeded generator, so the table is the same on every run. ``dint validate`` prints the
table and writes it where the paper includes it.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import agreement, calibration, divergence, selective, stats
from ..stats import fits, proportions
from . import simulations as sim

ALPHA = 0.05
LEVEL = 0.95


@dataclass(frozen=True)
class Check:
    """One simulated property of one method."""

    method: str
    kind: str            # "type-I error", "power" or "coverage"
    setting: str         # the data-generating process, in words
    target: float        # alpha for type-I error, the confidence level for coverage, nan for power
    draw: object         # draw(rng) -> bool: rejected (type-I, power) or covered (coverage)


def _covers(res, truth):
    ci = res.confidence_interval
    return ci.low <= truth <= ci.high


def checks(*, n_resamples: int = 999) -> list[Check]:
    """The simulation checks, one per (method, property)."""
    true_mean_lognormal_diff = 0.0
    skew_mean = np.exp(0.5)  # mean of a log-normal(0, 1)

    def mcnemar(method, shift):
        def draw(rng):
            before, after, _ = sim.paired_binary(rng, shift=shift)
            return proportions.mcnemar(before, after, method=method).pvalue < ALPHA
        return draw

    def mcnemar_cover(rng):
        before, after, truth = sim.paired_binary(rng, shift=0.4)
        return _covers(proportions.mcnemar(before, after), truth)

    def permutation(shift):
        def draw(rng):
            x, y = sim.skewed_pairs(rng, shift=shift)
            return stats.paired_permutation_test(x, y, n_resamples=n_resamples, rng=rng).pvalue < ALPHA
        return draw

    def permutation_cover(rng):
        x, y = sim.skewed_pairs(rng)
        return _covers(stats.paired_permutation_test(x, y, n_resamples=n_resamples, rng=rng), true_mean_lognormal_diff)

    def paired_boot(rng):
        x, y = sim.skewed_pairs(rng, shift=1.0)
        return _covers(stats.paired_bootstrap(x, y, n_resamples=n_resamples, rng=rng), -1.0)

    def paired_boot_gains(rng):
        y, x = sim.skewed_gains(rng)
        return _covers(stats.paired_bootstrap(y, x, n_resamples=n_resamples, rng=rng), 0.3)

    def gee_interaction(rng):
        table = fits.logit_gee("correct ~ post * frequent", sim.gee_panel(rng), groups="fact")
        return table.set_index("term").loc["post:frequent", "pvalue"] < ALPHA

    miscalibrated = lambda c: c ** 1.6   # overconfident: P(correct) < confidence
    ece_l1, ece_l2 = sim.ece_population(miscalibrated)

    def ece_cover(debiased, truth):
        def draw(rng):
            conf = rng.beta(4.0, 1.5, 500)
            correct = rng.random(500) < miscalibrated(conf)
            return _covers(calibration.ece(conf, correct, debiased=debiased, n_resamples=n_resamples, rng=rng), truth)
        return draw

    def cluster_boot(rng):
        v, c = sim.clustered(rng)
        return _covers(stats.cluster_bootstrap(v, c, n_resamples=n_resamples, rng=rng), 0.0)

    def few_clusters(g, binary):
        def draw(rng):
            v, c, truth = sim.unequal_clusters(rng, g, binary)
            return _covers(stats.cluster_bootstrap(v, c, n_resamples=n_resamples, rng=rng), truth)
        return draw

    def diff_props_null(rng):
        k1, k2 = rng.binomial(150, 0.3), rng.binomial(150, 0.3)
        return proportions.diff_proportions(k1, 150, k2, 150).pvalue < ALPHA

    def diff_props_cover(rng):
        k1, k2 = rng.binomial(150, 0.3), rng.binomial(120, 0.45)
        return _covers(proportions.diff_proportions(k1, 150, k2, 120), 0.3 - 0.45)

    def wilson(rng):
        return _covers(stats.proportion(int(rng.binomial(80, 0.12)), 80), 0.12)

    def pearson_null(rng):
        return stats.pearson(rng.normal(size=40), rng.normal(size=40)).pvalue < ALPHA

    def pearson_cover(rng):
        z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 60)
        return _covers(stats.pearson(z[:, 0], z[:, 1]), 0.6)

    def boot_mean(rng):
        return _covers(stats.bootstrap_mean(rng.lognormal(0, 1, 60), n_resamples=n_resamples, rng=rng), skew_mean)

    def mc_kl_cover(rng):
        p = np.array([0.5, 0.3, 0.15, 0.05])
        q = np.array([0.25, 0.25, 0.25, 0.25])
        y = rng.choice(4, 200, p=p)
        res = divergence.mc_kl(np.log(p[y]), np.log(q[y]))
        return _covers(res, float(np.sum(p * np.log(p / q))))

    def ratio_cover(rng):
        # per-fact KL-like values: skewed, positive, the held-out mean 0.9 of the train mean
        held, train = rng.gamma(1.3, 0.9 / 1.3, 150), rng.gamma(1.3, 1.0 / 1.3, 150)
        return _covers(stats.ratio_of_means(held, train, n_resamples=n_resamples, rng=rng), 0.9)

    def share_null(rng):
        # 100 answers of 1-4 tokens; each answer's share of unshifted tokens ~ Beta(2, 2) (mean 0.5)
        sizes = rng.integers(1, 5, 100)
        p = rng.beta(2.0, 2.0, 100)
        y = rng.random(sizes.sum()) < np.repeat(p, sizes)
        return stats.share_test(y, np.repeat(np.arange(100), sizes), value=0.5).pvalue < ALPHA

    def conformal(rng):
        score = rng.random(1000)
        correct = rng.random(1000) < score
        thr = selective.conformal_threshold(score[:500], correct[:500], alpha=0.1).threshold
        err = selective.selective_error(thr, score[500:], correct[500:])["error_joint"]
        return err  # a realised rate, averaged (not a rejection)

    def pooled_cover(rng):
        y, worlds = sim.two_level(rng, mu=0.3)
        return _covers(stats.pool(y, worlds), 0.3)

    def pooled_null(rng):
        y, worlds = sim.two_level(rng, mu=0.3)
        return stats.pool(y, worlds, null=0.3).pvalue < ALPHA

    def slope_data(rng, n, slope):
        # probabilities on [0, 1]: a mean linear in x, Beta noise whose variance changes with x (notebook 08's support)
        x = rng.random(n)
        m = 0.35 + slope * x
        return x, rng.beta(2 * m, 2 * (1 - m))

    def slope_cover(rng):
        return _covers(fits.slope(*slope_data(rng, 300, 0.3)), 0.3)

    def slope_null(rng):
        return fits.slope(*slope_data(rng, 40, 0.0)).pvalue < ALPHA

    def bimodal(rng, n, shift):
        # per-item differences of probabilities: most near 0, some near +-0.6 (a fact learnt or lost)
        return np.where(rng.random(n) < 0.3, rng.choice([-0.6, 0.6], n, p=[0.3, 0.7]), 0.0) + rng.normal(0, 0.05, n) + shift

    def welch_cover(rng):
        return _covers(stats.intervals.welch(bimodal(rng, 40, 0.1), bimodal(rng, 45, 0.0)), 0.1)

    def welch_null(rng):
        return stats.intervals.welch(bimodal(rng, 40, 0.0), 0.5 * bimodal(rng, 30, 0.0) + 0.5 * 0.6 * 0.4 * 0.3
                                     ).pvalue < ALPHA

    def stratified_cover(rng):
        n1, n2 = np.array([120, 60, 30, 10]), np.array([80, 20, 10, 3])
        p2 = np.array([0.3, 0.4, 0.5, 0.6])
        k1, k2 = rng.binomial(n1, p2 + 0.05), rng.binomial(n2, p2)
        return _covers(proportions.stratified_difference(k1, n1, k2, n2), 0.05)


    def kappa_null(rng):
        predicted, known, facts = sim.labelled_errors(rng, 0.0)
        return agreement.cluster_kappa(predicted, known, facts, n_resamples=n_resamples, rng=rng).pvalue < ALPHA

    def kappa_cover(rng):
        predicted, known, facts = sim.labelled_errors(rng, 0.5)
        return _covers(agreement.cluster_kappa(predicted, known, facts, n_resamples=n_resamples, rng=rng),
                       sim.kappa_population(0.5))

    def composition_null(rng):
        from .composition import composition_test
        a, b, facts = sim.two_models_errors(rng)
        return composition_test(a, b, facts, n_resamples=1, n_permutations=n_resamples, rng=rng).pvalue < ALPHA

    def gee_joint(rng):
        return fits.logit_gee_joint("correct ~ " + " * ".join(sim.STEPS), sim.factorial(rng, g=160), groups="fact",
                                    terms=lambda t: ":" in t).pvalue < ALPHA

    def rl_curve(rng):
        d = rng.uniform(0.2, 3.0, 20)
        y = fits.gao_rl(d, 0.3, 0.15) + rng.normal(0.0, 0.02, 20)
        fitted = fits.fit_curve(fits.gao_rl, d, y, p0=[0.1, 0.1])
        return _covers(fitted["alpha"], 0.3) and _covers(fitted["beta"], 0.15)

    def bon_curve(rng):
        n = np.arange(1, 17)
        d = np.sqrt(np.log(n) - (n - 1) / n)                 # sqrt of best-of-n's KL bound
        y = fits.gao_bon(d, 0.2, 0.05) + rng.normal(0.0, 0.005, len(n))
        return _covers(fits.fit_curve(fits.gao_bon, d, y, p0=[0.1, 0.01])["beta"], 0.05)

    def temperature_null(rng):
        from .reliability import temperature
        return temperature(*sim.softmax_labels(rng, 1.0)).pvalue < ALPHA

    def temperature_cover(rng):
        from .reliability import temperature
        return _covers(temperature(*sim.softmax_labels(rng, 1.5)), 1.5)

    calibrated_less = lambda c: c ** 1.3   # a second model, less overconfident than `miscalibrated`
    ece10 = {f: sim.ece_population(f, n_bins=10) for f in (miscalibrated, calibrated_less)}

    def ece_difference(debiased, null):
        from .reliability import ece_difference as diff
        other = miscalibrated if null else calibrated_less
        truth = 0.0 if null else ece10[miscalibrated][int(debiased)] - ece10[other][int(debiased)]

        def draw(rng):
            r = diff(*sim.paired_confidence(rng, miscalibrated, other), n_bins=10, debiased=debiased,
                     n_resamples=n_resamples, rng=rng)
            return r.pvalue < ALPHA if null else _covers(r, truth)
        return draw

    def auroc_null(rng):
        from .reliability import auroc
        correct = rng.random(500) < 0.3
        return auroc(rng.normal(0.0, 1.0, 500), correct).pvalue < ALPHA

    def auroc_cover(rng):
        from scipy.stats import norm
        from .reliability import auroc
        correct = rng.random(500) < 0.3
        return _covers(auroc(rng.normal(0.0, 1.0, 500) + correct, correct), float(norm.cdf(1 / np.sqrt(2))))

    def trend(slope):
        from .flops import trend as fact_trend

        def draw(rng):
            r = fact_trend(sim.fact_trends(rng, slope), x="log_flops", y="p_true", n_resamples=n_resamples,
                           n_permutations=n_resamples, rng=int(rng.integers(2 ** 32)))
            return r.pvalue < ALPHA if slope == 0 else _covers(r, slope)
        return draw

    paired = "paired binary, 200 items, item difficulty ~ N(0, 1.5) logit"
    runs = "5 worlds x 2 training runs, var_world 1, var_train 0.5"
    return [
        Check("mcnemar (exact)", "type-I error", paired, ALPHA, mcnemar("exact", 0.0)),
        Check("mcnemar (mid-p)", "type-I error", paired, ALPHA, mcnemar("mid-p", 0.0)),
        Check("mcnemar (mid-p)", "power", paired + ", shift +0.4 logit", float("nan"), mcnemar("mid-p", 0.4)),
        Check("mcnemar Newcombe interval", "coverage", paired + ", shift +0.4 logit", LEVEL, mcnemar_cover),
        Check("paired permutation test", "type-I error", "paired log-normal, n = 50", ALPHA, permutation(0.0)),
        Check("paired permutation test", "power", "paired log-normal, n = 50, shift +1", float("nan"), permutation(1.0)),
        Check("paired permutation t-interval", "coverage", "paired log-normal, n = 50", LEVEL, permutation_cover),
        Check("paired bootstrap (hull)", "coverage", "paired log-normal, n = 50, mean difference -1", LEVEL, paired_boot),
        Check("paired bootstrap (hull)", "coverage", "n = 50, 30% of items gain Exp(1)", LEVEL, paired_boot_gains),
        Check("cluster bootstrap (hull)", "coverage", "30 clusters x 5 items, ICC 0.5", LEVEL, cluster_boot),
        Check("cluster bootstrap (hull)", "coverage", "12 clusters of 1-14 rows, ICC 0.5", LEVEL,
              few_clusters(12, False)),
        Check("cluster bootstrap (hull)", "coverage", "12 clusters of 1-14 rows, 0/1, cluster mean ~ Beta(1, 3)", LEVEL,
              few_clusters(12, True)),
        Check("cluster bootstrap (hull)", "coverage", "8 clusters of 1-14 rows, ICC 0.5", LEVEL,
              few_clusters(8, False)),
        Check("difference of proportions z-test", "type-I error", "150 vs 150, p = 0.3", ALPHA, diff_props_null),
        Check("Newcombe interval (independent)", "coverage", "150 at 0.3 vs 120 at 0.45", LEVEL, diff_props_cover),
        Check("Wilson interval", "coverage", "n = 80, p = 0.12", LEVEL, wilson),
        Check("Pearson test", "type-I error", "independent normals, n = 40", ALPHA, pearson_null),
        Check("Pearson Fisher-z interval", "coverage", "bivariate normal, rho 0.6, n = 60", LEVEL, pearson_cover),
        Check("bootstrap mean (hull)", "coverage", "log-normal, n = 60", LEVEL, boot_mean),
        Check("GEE interaction (bias-reduced sandwich)", "type-I error",
              "80 facts x 3 prompts x 2 models, fact effect sd 1 logit", ALPHA, gee_interaction),
        Check("ECE percentile bootstrap", "coverage", "n = 500, conf ~ Beta(4, 1.5), P(correct) = conf^1.6",
              LEVEL, ece_cover(False, ece_l1)),
        Check("debiased l2 CE bootstrap (squared scale)", "coverage", "n = 500, conf ~ Beta(4, 1.5), P(correct) = conf^1.6",
              LEVEL, ece_cover(True, ece_l2)),
        Check("Monte-Carlo KL t-interval", "coverage", "4 outcomes, 200 samples", LEVEL, mc_kl_cover),
        Check("ratio of means, percentile bootstrap", "coverage", "two gamma(1.3) samples of 150, ratio 0.9", LEVEL,
              ratio_cover),
        Check("share Wald test, clustered SE", "type-I error", "100 clusters of 1-4 rows, cluster share ~ Beta(2, 2)",
              ALPHA, share_null),
        Check("conformal abstention", "realised joint error", "score ~ U, P(correct) = score, 500/500", 0.1, conformal),
        Check("pooled runs, t-interval on world means", "coverage", runs, LEVEL, pooled_cover),
        Check("pooled runs, t-test on world means", "type-I error", runs, ALPHA, pooled_null),
        Check("OLS slope, HC3 interval", "coverage", "n = 300, y ~ Beta with mean 0.35 + 0.3x", LEVEL, slope_cover),
        Check("OLS slope, HC3 t-test", "type-I error", "n = 40, y ~ Beta(0.7, 1.3), x ~ U(0, 1)", ALPHA, slope_null),
        Check("Welch interval", "coverage", "40 vs 45, per-item changes: 70% near 0, 30% at +-0.6", LEVEL, welch_cover),
        Check("Welch t-test", "type-I error", "40 vs 30, equal means, variances 4 : 1", ALPHA, welch_null),
        Check("stratified difference (CMH weights), Wald", "coverage", "4 strata, 10-120 vs 3-80, difference 0.05",
              LEVEL, stratified_cover),
        Check("Cohen's kappa, cluster bootstrap Wald test", "type-I error",
              "100 facts of 1-4 errors, 4 causes, labels independent of causes, half shared within a fact", ALPHA,
              kappa_null),
        Check("Cohen's kappa, cluster expanded percentile interval", "coverage",
              "100 facts of 1-4 errors, 4 causes, cause named with probability 0.5", LEVEL, kappa_cover),
        Check("error-composition permutation test (TV)", "type-I error",
              "2 models, 100 facts of 1-3 items, classes exchangeable within a fact", ALPHA, composition_null),
        Check("GEE joint Wald test, Hotelling F(df, G - df)", "type-I error",
              "2^4 stacks x 160 facts, additive log-odds, fact effect sd 1: 11 interactions", ALPHA, gee_joint),
        Check("Gao RL curve fit, t intervals (alpha and beta)", "coverage",
              "20 checkpoints, d ~ U(0.2, 3), normal noise sd 0.02", LEVEL, rl_curve),
        Check("Gao best-of-n curve fit, t interval (beta)", "coverage",
              "n = 1-16 at d = sqrt(log n - (n-1)/n), normal noise sd 0.005", LEVEL, bon_curve),
        Check("temperature, likelihood-ratio test of T = 1", "type-I error",
              "500 items, 8 candidates, logits ~ N(0, 4), labels from the softmax", ALPHA, temperature_null),
        Check("temperature, profile-likelihood interval", "coverage",
              "500 items, 8 candidates, labels from the softmax at T = 1.5", LEVEL, temperature_cover),
        Check("paired ECE difference (l1), iterated-bootstrap Wald test", "type-I error",
              "500 shared items, 10 bins, both models P(correct) = conf^1.6", ALPHA, ece_difference(False, True)),
        Check("paired ECE difference (l1), iterated-bootstrap Wald interval", "coverage",
              "500 shared items, 10 bins, conf^1.6 vs conf^1.3", LEVEL, ece_difference(False, False)),
        Check("paired debiased l2 CE difference, iterated-bootstrap Wald test", "type-I error",
              "500 shared items, 10 bins, both models P(correct) = conf^1.6", ALPHA, ece_difference(True, True)),
        Check("paired debiased l2 CE difference, iterated-bootstrap Wald interval", "coverage",
              "500 shared items, 10 bins, conf^1.6 vs conf^1.3", LEVEL, ece_difference(True, False)),
        Check("AUROC, Mann-Whitney test of 0.5", "type-I error", "500 items, 30% correct, score independent",
              ALPHA, auroc_null),
        Check("AUROC, DeLong interval", "coverage", "500 items, 30% correct, binormal shift 1 (AUROC 0.76)", LEVEL,
              auroc_cover),
        Check("per-fact trend, sign-flip test of the mean slope", "type-I error",
              "60 facts x 9 SFT budgets, per-fact slopes ~ N(0, 0.03), Beta noise", ALPHA, trend(0.0)),
        Check("per-fact trend, hull interval of the mean slope", "coverage",
              "60 facts x 9 SFT budgets, per-fact slopes ~ N(0.02, 0.03), Beta noise", LEVEL, trend(0.02)),
    ]


def _one_thread():
    """Linear algebra on one thread: the checks run side by side in worker processes, and each worker's
    BLAS on every core made the GEE checks five times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # an optional speed-up, not a requirement
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _run_check(i, replications, n_resamples, seed):
    c = checks(n_resamples=n_resamples)[i]
    rng = np.random.default_rng([seed, i])
    t = time.perf_counter()
    with _one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # convergence and domain warnings of single replications
        values = np.array([float(c.draw(rng)) for _ in range(replications)])
    return {"method": c.method, "kind": c.kind, "setting": c.setting, "target": c.target,
            "estimate": float(values.mean()), "mc_se": float(values.std(ddof=1) / np.sqrt(replications)),
            "replications": replications, "seconds": time.perf_counter() - t}


def run(*, replications: int = 2000, n_resamples: int = 999, seed: int = 0, jobs: int | None = None,
        progress: bool = True) -> pd.DataFrame:
    """Run every check ``replications`` times; returns the validity table.

    Columns: method, kind, setting, target, estimate, mc_se (Monte-Carlo standard error),
    replications, seconds. Each check has its own generator (seeded by ``seed`` and its
    position), so the table is the same for any number of ``jobs`` (worker processes; default
    one per CPU).
    """
    if replications < 10:
        raise ValueError(f"replications={replications}: need at least 10")
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: need at least 1")
    n = len(checks(n_resamples=n_resamples))
    args = [(i, replications, n_resamples, seed) for i in range(n)]
    if jobs == 1:
        rows = [_run_check(*a) for a in tqdm(args, desc="validate", disable=not progress)]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_run_check, *a) for a in args]
            rows = [f.result() for f in tqdm(futures, desc="validate", disable=not progress)]
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> str:
    """The study's last line: the worst type-I error and the worst coverage."""
    t1 = table[table["kind"] == "type-I error"]["estimate"]
    cov = table[table["kind"] == "coverage"]["estimate"]
    worst_t1 = t1.iloc[int(np.argmax(np.abs(t1.to_numpy() - ALPHA)))]
    worst_cov = cov.iloc[int(np.argmax(np.abs(cov.to_numpy() - LEVEL)))]
    return f"validity: worst type-I error {worst_t1:.3f} at alpha 0.05, worst coverage {worst_cov:.3f} at 0.95"


def write(table: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Write the table as parquet and as a LaTeX tabular for the paper's appendix.

    The tabular gives each entry's estimate with its Monte-Carlo standard error and the number of
    replications it comes from."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / "validity.parquet", index=False)
    tex = table[["method", "kind", "setting", "target", "estimate", "mc_se", "replications"]].rename(
        columns={"mc_se": "Monte-Carlo s.e."}).to_latex(index=False, float_format="%.3f", escape=True)
    (folder / "validity.tex").write_text(tex)
    return [folder / "validity.parquet", folder / "validity.tex"]
