"""A fast version of the validity study (the full one is `dint validate`, 2000 replications)."""
import numpy as np
import pytest

from dint.analyses import validity


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
