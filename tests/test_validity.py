"""A fast version of the validity study (the full one is `dint validate`, 2000 replications)."""
import numpy as np
import pandas as pd
import pytest

from dint.analyses import simulations, validity


@pytest.fixture(scope="module")
def table():
    return validity.run(replications=40, n_resamples=199, jobs=1, progress=False)


def test_validate_fast_version(table):
    assert len(table) == len(validity.checks())
    assert set(table["kind"]) >= {"type-I error", "coverage", "power"}
    t1 = table[table["kind"] == "type-I error"]["estimate"]
    cov = table[table["kind"] == "coverage"]["estimate"]
    # 40 replications: only gross failures are detectable here; `dint validate` measures the rest
    assert (t1 <= 0.2).all() and (cov >= 0.75).all()
    assert np.isfinite(table["mc_se"]).all()


def test_validate_deterministic(table):
    again = validity.run(replications=40, n_resamples=199, jobs=2, progress=False)  # in worker processes
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))


def test_validate_summary_line(table):
    line = validity.summary(table)
    assert line.startswith("validity: worst type-I error ") and line.endswith(" at 0.95")


def test_validate_write(table, tmp_path):
    pq, tex = validity.write(table, tmp_path)
    text = tex.read_text()
    assert pq.exists() and "\\begin{tabular}" in text
    # every entry states its Monte-Carlo standard error (and the replications behind it)
    header = next(line for line in text.splitlines() if line.startswith("method"))
    assert "Monte-Carlo s.e." in header and "replications" in header
    rows = [line for line in text.splitlines() if line.endswith("\\\\") and not line.startswith("method")]
    assert len(rows) == len(table)
    for row, se in zip(rows, table["mc_se"]):
        assert row.split("&")[-2].strip() == f"{se:.3f}"


def test_validate_few_clusters():
    # the cluster bootstrap's default is checked where the percentile interval failed (12 clusters)
    few = [c for c in validity.checks() if c.method == "cluster bootstrap (hull)"]
    assert {"12 clusters of 1-14 rows, ICC 0.5", "8 clusters of 1-14 rows, ICC 0.5"} <= {c.setting for c in few}
    assert all(c.kind == "coverage" and c.target == validity.LEVEL for c in few)


def test_validate_iv():
    with pytest.raises(ValueError, match="replications"):
        validity.run(replications=1)
    with pytest.raises(ValueError, match="jobs"):
        validity.run(replications=10, jobs=0)


def test_validate_covers_the_papers_tests():
    # every test the paper uses has a simulated type-I error or coverage (issue 23, item 8)
    methods = {(c.method, c.kind) for c in validity.checks()}
    for name, kind in [("Cohen's kappa, cluster bootstrap Wald test", "type-I error"),
                       ("Cohen's kappa, cluster expanded percentile interval", "coverage"),
                       ("error-composition permutation test (TV)", "type-I error"),
                       ("GEE joint Wald test, Hotelling F(df, G - df)", "type-I error"),
                       ("Gao RL curve fit, t intervals (alpha and beta)", "coverage"),
                       ("Gao best-of-n curve fit, t interval (beta)", "coverage"),
                       ("temperature, likelihood-ratio test of T = 1", "type-I error"),
                       ("temperature, profile-likelihood interval", "coverage"),
                       ("paired ECE difference (l1), iterated-bootstrap Wald test", "type-I error"),
                       ("paired ECE difference (l1), iterated-bootstrap Wald interval", "coverage"),
                       ("paired debiased l2 CE difference, iterated-bootstrap Wald test", "type-I error"),
                       ("paired debiased l2 CE difference, iterated-bootstrap Wald interval", "coverage"),
                       ("AUROC, Mann-Whitney test of 0.5", "type-I error"),
                       ("AUROC, DeLong interval", "coverage"),
                       ("per-fact trend, sign-flip test of the mean slope", "type-I error"),
                       ("per-fact trend, hull interval of the mean slope", "coverage")]:
        assert (name, kind) in methods


def test_validate_truths_against_large_samples():
    # the known parameters the coverage checks use, against one very large sample of their process
    from statsmodels.stats.inter_rater import cohens_kappa
    rng = np.random.default_rng(0)
    predicted, known, _ = simulations.labelled_errors(rng, 0.5, g=200_000)
    table = pd.crosstab(known, predicted).to_numpy()
    assert cohens_kappa(table).kappa == pytest.approx(simulations.kappa_population(0.5), abs=0.005)
    assert simulations.kappa_population(0.0) == pytest.approx(0.0, abs=1e-12)
    from dint import calibration
    f = lambda c: c ** 1.6
    ca, ya, cb, yb = simulations.paired_confidence(rng, f, f, n=400_000)
    l1, l2 = simulations.ece_population(f, n_bins=10)
    assert calibration.ece(ca, ya, n_bins=10, n_resamples=0).statistic == pytest.approx(l1, abs=0.003)
    assert calibration.ece(cb, yb, n_bins=10, n_resamples=0).statistic == pytest.approx(l1, abs=0.003)
    assert np.corrcoef(ca, cb)[0, 1] > 0.5                       # paired by item
    logp, labels = simulations.softmax_labels(rng, 1.5, n=20_000)
    assert calibration.fit_temperature(logp, labels).temperature == pytest.approx(1.5, rel=0.03)
