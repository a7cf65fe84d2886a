"""The data-generating processes of the validity study (`dint.analyses.validity`).

Each draws, from a seeded generator, data with the structure one of the paper's comparisons has: paired binary
outcomes with heterogeneous item difficulty, skewed per-item statistics, a logistic panel clustered by fact,
clustered and two-level estimates (world seeds x training seeds), error labels clustered by fact with known
causes (κ, error compositions), the 2^4 factorial of stacks (the GEE joint test), softmax labels at a known
temperature, two models' confidences on shared items (paired ECE differences, AUROC) and per-fact trends along
the SFT grid. The arguments set the null or the effect; the validity study states which it uses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


__all__ = ["CAUSES", "CAUSE_P", "GRID", "STEPS", "clustered", "ece_population", "fact_trends", "factorial", "gee_panel", "kappa_population", "labelled_errors", "paired_binary", "paired_confidence", "skewed_gains", "skewed_pairs", "softmax_labels", "two_level", "two_models_errors", "unequal_clusters"]


def paired_binary(rng, n=200, shift=0.0):
    """Paired correctness of two models on n items of heterogeneous difficulty (logit scale)."""
    a = rng.normal(0.0, 1.5, n)
    p0, p1 = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-(a + shift)))
    return rng.random(n) < p0, rng.random(n) < p1, float(np.mean(p1 - p0))


def skewed_pairs(rng, n=50, shift=0.0):
    """Paired skewed statistics (log-normal noise, exchangeable within a pair under the null)."""
    base = rng.lognormal(0.0, 1.0, n)
    return base + rng.lognormal(0, 1, n), base + rng.lognormal(0, 1, n) + shift


def skewed_gains(rng, n=50, rate=0.3):
    """Paired statistics where post-training moves a minority of items a lot (zero-inflated,
    exponential gains): skewed differences with mean ``rate``."""
    x = rng.normal(0.0, 1.0, n)
    return x + rng.exponential(1.0, n) * (rng.random(n) < rate), x


def gee_panel(rng, g=80, m=3):
    """Binary correctness of a base and a post-trained model on m prompts of each of g facts,
    frequent or rare, with a random fact effect (logit sd 1) and no model x frequency interaction."""
    import pandas as pd
    fact = np.repeat(np.arange(g), 2 * m)
    frequent = np.repeat(rng.random(g) < 0.5, 2 * m).astype(int)
    post = np.tile(np.r_[np.zeros(m), np.ones(m)], g)
    eta = -0.3 + np.repeat(rng.normal(0.0, 1.0, g), 2 * m) + 0.8 * frequent + 0.5 * post
    correct = (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"correct": correct, "post": post, "frequent": frequent, "fact": fact})


def ece_population(f, a=4.0, b=1.5, n_bins=15):
    """Population l1 and l2 calibration error over equal-width bins, for confidence ~ Beta(a, b)
    and P(correct | confidence c) = f(c)."""
    from scipy import integrate
    from scipy.stats import beta
    l1 = l2 = 0.0
    for lo, hi in zip(np.linspace(0, 1, n_bins + 1)[:-1], np.linspace(0, 1, n_bins + 1)[1:]):
        mass = beta.cdf(hi, a, b) - beta.cdf(lo, a, b)
        conf = integrate.quad(lambda c: c * beta.pdf(c, a, b), lo, hi)[0] / mass
        acc = integrate.quad(lambda c: f(c) * beta.pdf(c, a, b), lo, hi)[0] / mass
        l1 += mass * abs(conf - acc)
        l2 += mass * (conf - acc) ** 2
    return l1, float(np.sqrt(l2))


def clustered(rng, g=30, m=5, icc=0.5):
    """Values of g clusters (facts) of m items each, with intra-cluster correlation icc."""
    return (np.repeat(rng.normal(0, np.sqrt(icc), g), m) + rng.normal(0, np.sqrt(1 - icc), g * m),
            np.repeat(np.arange(g), m))


def unequal_clusters(rng, g=12, binary=False):
    """Values of g clusters of 1-14 rows each (e.g. the tokens of g generations): normal with
    intra-cluster correlation 0.5 and mean 0, or 0/1 with a cluster accuracy ~ Beta(1, 3) (mean 0.25).
    Returns the values, the cluster labels and the true mean."""
    labels = np.repeat(np.arange(g), rng.integers(1, 15, g))
    if binary:
        return (rng.random(len(labels)) < rng.beta(1.0, 3.0, g)[labels]).astype(float), labels, 0.25
    return (rng.normal(0, np.sqrt(0.5), g)[labels] + rng.normal(0, np.sqrt(0.5), len(labels)), labels, 0.0)


def two_level(rng, w=5, t=2, var_world=1.0, var_train=0.5, mu=0.0):
    """One estimate per run of w worlds x t training seeds nested in them: mu + world effect ~ N(0, var_world)
    + training-run effect ~ N(0, var_train). Returns the estimates and each run's world."""
    worlds = np.repeat(np.arange(w), t)
    return (mu + rng.normal(0, np.sqrt(var_world), w)[worlds] + rng.normal(0, np.sqrt(var_train), w * t), worlds)


# causes of an error (the world's known cause) and the classifier's labels, for Cohen's kappa
CAUSES = np.array(["absent support", "selection", "imitative", "routing"], dtype=object)
CAUSE_P = np.array([0.4, 0.3, 0.2, 0.1])


def kappa_population(right, guess=np.full(4, 0.25)):
    """Cohen's kappa of a classifier that names the known cause with probability ``right`` and otherwise
    guesses a cause with probabilities ``guess``, causes with probabilities `CAUSE_P`."""
    p = CAUSE_P[:, None] * (right * np.eye(4) + (1 - right) * guess[None, :])
    po, pe = np.trace(p), p.sum(axis=1) @ p.sum(axis=0)
    return float((po - pe) / (1 - pe))


def labelled_errors(rng, right, g=100):
    """Errors of g facts (1-4 each: forms and models) with a known cause per fact and a predicted class:
    the classifier names the cause with probability ``right``, else guesses uniformly; half the errors
    share their fact's draw (errors of one fact are labelled alike), half draw their own."""
    facts = np.repeat(np.arange(g), rng.integers(1, 5, g))
    n = len(facts)
    known = rng.choice(4, g, p=CAUSE_P)[facts]
    shared = rng.random(n) < 0.5
    hit = np.where(shared, (rng.random(g) < right)[facts], rng.random(n) < right)
    guess = np.where(shared, rng.integers(0, 4, g)[facts], rng.integers(0, 4, n))
    return CAUSES[np.where(hit, known, guess)], CAUSES[known], facts


def two_models_errors(rng, g=100):
    """The error classes of two models on the same items (1-3 per fact), exchangeable within a fact: each
    fact has its own error rate ~ Beta(2, 3) and class probabilities ~ Dirichlet(2, 2, 2, 2); None where
    the model is right."""
    facts = np.repeat(np.arange(g), rng.integers(1, 4, g))
    rate = rng.beta(2.0, 3.0, g)[facts]
    cum = np.cumsum(rng.dirichlet(np.full(4, 2.0), g), axis=1)[facts]

    def model():
        cls = np.minimum((rng.random(len(facts))[:, None] > cum).sum(axis=1), 3)
        return np.where(rng.random(len(facts)) < rate, CAUSES[cls], None)
    return model(), model(), facts


STEPS = ("sft", "dpo", "rl", "rag")


def factorial(rng, g=80, effects=(1.0, 0.3, 0.2, 0.6)):
    """Correctness of g facts under each of the 16 stacks of `STEPS` (one row per fact and stack): additive
    on the log-odds scale (no interaction), a random fact effect of sd 1 logit."""
    design = np.array([[(s >> j) & 1 for j in range(4)] for s in range(16)])
    x = np.tile(design, (g, 1))
    fact = np.repeat(np.arange(g), 16)
    eta = -0.8 + rng.normal(0.0, 1.0, g)[fact] + x @ np.asarray(effects)
    correct = (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"correct": correct, **{s: x[:, j] for j, s in enumerate(STEPS)}, "fact": fact})


def softmax_labels(rng, temperature, n=500, k=8):
    """Log-probabilities of k candidates for n items (logits ~ N(0, 2^2)) and true candidates drawn from the
    softmax at ``temperature``: the fitted temperature estimates it."""
    z = rng.normal(0.0, 2.0, (n, k))
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(z / temperature)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return logp, np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), k - 1)


def paired_confidence(rng, f_a, f_b, n=500, rho=0.7):
    """Two models' confidence and correctness on the same n items: confidences ~ Beta(4, 1.5) each, paired
    by a Gaussian copula (correlation ``rho``), correctness from one uniform per item (paired too) with
    P(correct | c) = f_a(c) and f_b(c)."""
    from scipy.stats import beta, norm
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], n)
    ca, cb = beta.ppf(norm.cdf(z[:, 0]), 4.0, 1.5), beta.ppf(norm.cdf(z[:, 1]), 4.0, 1.5)
    u = rng.random(n)
    return ca, u < f_a(ca), cb, u < f_b(cb)


GRID = np.log10(np.outer([1, 2, 4], [0.25, 0.5, 1.0]).ravel() * 1e12)   # SFT epochs x data shares: training FLOPs


def fact_trends(rng, slope, g=60):
    """P(true) of g facts along the SFT grid (`GRID`, log10 FLOPs): per fact a level ~ 0.1 + 0.6 Beta(2, 2)
    and a slope ~ N(``slope``, 0.03) per decade, Beta noise (precision 8) around the line."""
    x = np.tile(GRID - GRID.mean(), g)
    level, s = 0.1 + 0.6 * rng.beta(2.0, 2.0, g), slope + rng.normal(0.0, 0.03, g)
    m = np.clip(np.repeat(level, len(GRID)) + np.repeat(s, len(GRID)) * x, 0.02, 0.98)
    return pd.DataFrame({"fact": np.repeat(np.arange(g), len(GRID)), "log_flops": x + GRID.mean(),
                         "p_true": rng.beta(8 * m, 8 * (1 - m))})
