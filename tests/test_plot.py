import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from dint import calibration, plot, stats  # noqa: E402


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    return conf, rng.random(n) < conf ** 2


def test_intervals_draws_every_result():
    res = {"a": stats.proportion(3, 10), "b": stats.bootstrap_mean(np.arange(20.0))}
    fig = plot.intervals(res, reference=0.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    line = ax.lines[0]
    np.testing.assert_allclose(sorted(line.get_xdata()), sorted([0.3, 9.5]))


def test_reliability_plots_what_it_is_given(tmp_path):
    conf, correct = _data()
    d = calibration.reliability_diagram(conf, correct, n_bins=10)
    fig = plot.reliability(d, label="model")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), d["accuracy"])
    paths = plot.save(fig, tmp_path / "rel")
    assert all(p.stat().st_size > 1000 for p in paths)


def test_risk_coverage_plot_on_given_axes():
    import matplotlib.pyplot as plt

    conf, correct = _data()
    r = calibration.risk_coverage(conf, correct)
    fig, ax = plt.subplots()
    assert plot.risk_coverage(r, ax=ax, label="base") is fig
    assert "AURC" in ax.get_legend().get_texts()[0].get_text()
