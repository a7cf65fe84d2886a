import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dint import calibration, plot, selective, stats


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


def test_intervals_labels_what_is_not_estimable():
    nan = stats.Result(float("nan"), stats.ConfidenceInterval(float("nan"), float("nan")), 10, "GEE",
                       reason="aliased with sft")
    fig = plot.intervals({"a": stats.proportion(3, 10), "sft:dpo": nan}, reference=0.0)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a", "sft:dpo (not estimable)"]


def test_reliability_plots_what_it_is_given(tmp_path):
    conf, correct = _data()
    d = calibration.reliability_diagram(conf, correct, n_bins=10)
    d = d.rename(columns={"accuracy": "estimate", "accuracy_low": "ci_low", "accuracy_high": "ci_high"})
    fig = plot.reliability_diagram(d, label="model")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), d["estimate"])
    paths = plot.save(fig, tmp_path / "rel")
    assert all(p.stat().st_size > 1000 for p in paths)


def test_additive_plots_the_tidy_estimates_against_the_prediction():
    import pandas as pd

    t = pd.DataFrame({"stack": ["base", "sft", "sft+dpo"], "n_steps": [0, 1, 2], "estimate": [0.2, 0.5, 0.4],
                      "ci_low": [0.1, 0.4, 0.3], "ci_high": [0.3, 0.6, 0.5], "additive_logit": [0.2, 0.5, 0.7]})
    fig = plot.additive(t, x="additive_logit")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[1].get_offsets(), t[["additive_logit", "estimate"]].to_numpy())
    assert ax.get_ylabel() == "accuracy, measured" and [a.get_text() for a in ax.texts] == list(t["stack"])


def test_risk_coverage_plot_on_given_axes():
    import matplotlib.pyplot as plt

    conf, correct = _data()
    r = selective.risk_coverage(conf, correct)
    fig, ax = plt.subplots()
    assert plot.risk_coverage(r, ax=ax, label="base") is fig
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "AURC" and legend.get_texts()[0].get_text() == f"base: {r.aurc:.2f}"


def _summary():
    import pandas as pd
    rows = []
    for name in ("sft", "dpo"):
        for split in ("train", "heldout"):
            rows.append({"intervention": name, "split": split, "measure": "kl", "estimate": 1.0, "ci_low": 0.8,
                         "ci_high": 1.2, "n": 100})
            rows.append({"intervention": name, "split": split, "measure": "d_accuracy", "estimate": 0.2,
                         "ci_low": 0.1, "ci_high": 0.3, "n": 100, "right_wrong": 5, "wrong_right": 25})
    return pd.DataFrame(rows)


def test_shift_plots():
    import pandas as pd
    s = _summary()
    fig = plot.shift_measure(s, "kl")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["sft", "dpo"]
    fig = plot.transitions(s[s.split == "heldout"])
    bars = fig.axes[0].patches
    np.testing.assert_allclose(sorted(b.get_width() for b in bars), [-0.05, -0.05, 0.25, 0.25])
    shares = pd.DataFrame([{"model": "sft", "measure": c, "estimate": v, "ci_low": v, "ci_high": v}
                           for c, v in (("unshifted", 0.5), ("marginal", 0.2), ("shifted", 0.3), ("kl", 4.0))])
    fig = plot.token_shift(shares)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "sft" and len(labels) == 1 + len(plot.URIAL_SHARES)
    sft = [b for b in fig.axes[0].patches if b.get_y() + b.get_height() / 2 == 0]   # the kl row is no class
    np.testing.assert_allclose([b.get_width() for b in sft], [0.5, 0.2, 0.3])


def test_by_mentions_draws_the_tidy_rows():
    import pandas as pd

    rows = [{"mention_bin": b, "measure": m, "estimate": e, "ci_low": e - 0.1, "ci_high": e + 0.1, "n": n}
            for b, n, acc, ent in (("0", 5, 0.1, 0.9), ("1", 7, 0.4, 0.6), ("2-3", 1, 0.8, 0.2))
            for m, e in (("accuracy", acc), ("entropy_norm", ent))]
    fig = plot.by_mentions(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n5", "1\n7", "2-3\n1"]
    accuracy, entropy = (c.lines[0].get_ydata() for c in ax.containers)     # one errorbar per measure
    np.testing.assert_allclose(accuracy, [0.1, 0.4, 0.8])
    np.testing.assert_allclose(entropy, [0.9, 0.6, 0.2])


def test_reward_and_bon_plots():
    import pandas as pd
    wide = pd.DataFrame({"d": [0.5, 0.0, 1.0, 0.0, 0.4], "proxy": [0.2, 0, 0.4, 0, 0.1], "gold": [-0.1, 0, -0.2, 0, 0.0],
                         "beta": [0.1, 0.1, 0.1, 1.0, 1.0]})
    t = wide.melt(id_vars=["d", "beta"], var_name="measure", value_name="estimate")     # tidy: measure, estimate
    fig = plot.reward_vs_kl(t, hue="beta", fits={"fit": (lambda d: d, "k")})
    lines = fig.axes[0].lines
    assert len(lines) == 5
    np.testing.assert_allclose(lines[0].get_xdata(), [0.0, 0.5, 1.0])            # beta 0.1, proxy, sorted by d
    np.testing.assert_allclose(lines[0].get_ydata(), [0, 0.2, 0.4])
    np.testing.assert_allclose(lines[1].get_ydata(), [0, -0.1, -0.2])            # then its gold
    # one measure drawn by hue: each value in its own colour and legend entry, no entry for the measure not drawn
    gold = pd.DataFrame({"d": [0.0, 0.5] * 3, "measure": "gold", "estimate": [0, -0.1] * 3, "share": [0.25] * 2 + [1.0] * 2
                         + [0.0625] * 2})
    fig = plot.reward_vs_kl(gold, hue="share")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["share 0.0625", "share 0.25", "share 1"]
    assert len({line.get_color() for line in fig.axes[0].lines}) == 3
    curve = pd.DataFrame({"best_of": [1, 2, 4] * 2, "kl_bound": [0, 0.193, 0.636] * 2,
                          "measure": ["kl"] * 3 + ["gold"] * 3, "estimate": [0, 0.19, 0.6, 0, 0.1, 0.2],
                          "ci_low": [0, 0.18, 0.55, 0, 0, 0], "ci_high": [0, 0.2, 0.65, 0, 0.3, 0.3]})
    fig = plot.bon_kl(curve)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0, 0.193, 0.636])
    np.testing.assert_allclose(np.asarray(fig.axes[0].lines[1].get_ydata(), float), [0, 0.19, 0.6])      # the kl rows only
    base = pd.DataFrame({"model": ["base", "base", "sft", "sft"] * 2, "split": ["train", "heldout"] * 4,
                         "measure": ["accuracy"] * 4 + ["format_mass"] * 4, "estimate": [0.1, 0.1, 0.5, 0.4] + [0.9] * 4,
                         "ci_low": [0.05] * 8, "ci_high": [0.6] * 8})
    fig = plot.baselines(base)
    assert len(fig.axes[0].patches) == 4
    assert sorted(round(b.get_height(), 2) for b in fig.axes[0].patches) == [0.1, 0.1, 0.4, 0.5]
    cost = pd.DataFrame({"store": ["clean"] * 3, "strategy": ["direct", "verified", "verified"],
                         "measure": ["accuracy", "accuracy", "vs_direct"], "estimate": [0.1, 0.3, 0.2],
                         "ci_low": [0.05, 0.2, 0.1], "ci_high": [0.2, 0.4, 0.3], "tokens_per_question": [300, 2000, 2000]})
    fig = plot.accuracy_cost(cost)
    assert fig.axes[0].get_xscale() == "log"
    # one entry per strategy (its marker) and per store (its colour), the accuracy rows only
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["direct", "verified", "store: clean"]
    assert len(fig.axes[0].lines) == 2 * 3   # two points, each an errorbar (marker, two caps)


def test_taxonomy_plots():
    import pandas as pd
    shares = pd.DataFrame({"intervention": ["sft"] * 3 + ["rag"] * 3, "class": ["selection", "absent_support", "routing"] * 2,
                           "count": [10, 20, 0, 5, 5, 12]})
    fig = plot.error_composition(shares)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sft", "rag"]
    widths = sorted(round(p.get_width()) for p in ax.patches)
    assert widths == sorted([10, 20, 0, 5, 5, 12])
    assert {t.get_text() for t in ax.texts} == {"10", "20", "12"}          # counts >= 8 written in
    # on long bars a segment under 7% of the longest bar stays unwritten, however many errors it holds
    long = shares.assign(count=[500, 30, 60, 400, 20, 9])
    texts = {t.get_text() for t in plot.error_composition(long).axes[0].texts}
    assert texts == {"500", "60", "400"}
    cm = pd.DataFrame([[5, 1], [2, 7]], index=pd.Index(["selection", "absent_support"], name="known"),
                      columns=pd.Index(["selection", "absent_support"], name="predicted"))
    fig = plot.confusion(cm)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "2", "5", "7"]
    assert fig.axes[0].get_ylabel() == "known cause"
    empty = pd.concat([cm, pd.DataFrame([[0, 0]], index=["unclassified"], columns=cm.columns)])
    assert [t.get_text() for t in plot.confusion(empty).axes[0].get_yticklabels()] == ["selection", "absent support"]
    table = pd.DataFrame({"label": ["sft", "sft", "rag", "rag"], "subset": ["all", "no rare"] * 2,
                          "estimate": [0.2, 0.4, 0.1, 0.3], "ci_low": [0.1, 0.3, 0.0, 0.2], "ci_high": [0.3, 0.5, 0.2, 0.4]})
    fig = plot.forest(table, hue="subset")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["sft", "rag"]
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    curve = pd.DataFrame({"m": ["a"] * 3 + ["b"] * 3, "k": [1, 2, 4] * 2, "measure": "pass",
                          "estimate": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7],
                          "ci_low": [0.05, 0.15, 0.25, 0.4, 0.5, 0.6], "ci_high": [0.15, 0.25, 0.35, 0.6, 0.7, 0.8]})
    fig = plot.pass_curves(pd.concat([curve, curve.assign(measure="excess")]), hue="m",
                           reference=curve.assign(estimate=curve["estimate"] / 2))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) == 4
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.05, 0.1, 0.15])
    fig = plot.pass_curves(curve, hue="m", colors={"a": "0.3"})
    assert fig.axes[0].lines[1].get_color() == plot.PALETTE[0]            # the palette goes to the others


def test_frontiers_draws_each_family_frontier():
    import pandas as pd

    points = pd.DataFrame({"family": ["a", "a", "a", "b"], "point": ["1", "2", "3", "x"],
                           "estimate": [0.2, 0.5, 0.4, 0.7], "ci_low": [0.1, 0.4, 0.3, 0.6],
                           "ci_high": [0.3, 0.6, 0.5, 0.8], "total_flops": [1e9, 1e10, 1e11, 1e12],
                           "frontier": [True, True, False, True]})
    fig = plot.frontiers(points, reference=0.05, reference_label="base rate")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    steps = [ln for ln in ax.lines if ln.get_label().startswith(("a (", "b ("))]
    assert [ln.get_label() for ln in steps] == ["a (3)", "b (1)"]
    np.testing.assert_allclose(steps[0].get_xdata(), [1e9, 1e10])             # the frontier only, cheapest first
    np.testing.assert_allclose(steps[0].get_ydata(), [0.2, 0.5])
    assert any(ln.get_label() == "base rate" for ln in ax.lines)


def test_model_intervals_draws_each_series():
    import pandas as pd

    table = pd.DataFrame({"model": ["a", "b", "a", "b"], "measure": ["x", "x", "y", "y"],
                          "estimate": [0.1, 0.2, 0.3, 0.4], "ci_low": [0.0, 0.1, np.nan, 0.3],
                          "ci_high": [0.2, 0.3, np.nan, 0.5]})
    fig = plot.model_intervals(table, labels={"x": "first"}, references={"zero": 0.0}, log=False)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    filled = [ln for ln in ax.lines if ln.get_label() in ("first", "y")]
    np.testing.assert_allclose(sorted(np.concatenate([ln.get_xdata() for ln in filled])), [0.1, 0.2, 0.4])
    assert ax.lines[-1].get_xdata()[0] == 0.0   # the reference line


def test_real_fact_plots():
    import pandas as pd

    t = pd.DataFrame({"entity": ["A", "B", "C"], "relation": ["capital", "capital", "currency"],
                      "type": ["contested", "contested", "rare"], "p_true": [0.2, 0.7, 0.5],
                      "p_misconception": [0.6, 0.1, np.nan], "entropy_norm": [0.5, 0.4, 0.3]})
    fig = plot.misconception_scatter(t)
    pts = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(pts, [[0.2, 0.6], [0.7, 0.1]])      # contested facts only
    fig = plot.type_distribution(t, by="relation")
    assert [x.get_text() for x in fig.axes[0].get_xticklabels()] == ["capital", "currency"]


def test_panels_rows_of_at_most_three_at_the_page_width():
    fig, axes = plot.panels(5)
    assert len(axes) == 5 and fig.get_figwidth() == plot.PAGE_WIDTH
    assert sum(ax.get_visible() for ax in fig.axes) == 5 and len(fig.axes) == 6     # 3 + 2, one cell hidden
    fig, axes = plot.panels(4)
    assert len(fig.axes) == 4                                                        # balanced: 2 x 2
    with pytest.raises(ValueError, match="ncols"):
        plot.panels(4, ncols=4)
    with pytest.raises(ValueError, match="n \\(the number of panels\\)=0"):
        plot.panels(0)


def test_save_refuses_a_figure_that_would_not_read_in_print(tmp_path):
    import matplotlib.pyplot as plt

    wide, ax = plt.subplots(1, 5, figsize=(21, 3.8))
    small, ax2 = plt.subplots(figsize=(4, 3))
    ax2.set_title("tiny", fontsize=5)
    cut, axes = plot.panels(3)
    axes[2].set_xlabel("a label far too long for the last panel of a row at this width " * 2)
    for fig, what in ((wide, "21.0 in wide"), (small, "'tiny' at 5.0 pt"), (cut, "runs off the figure")):
        with pytest.raises(ValueError, match="would not read at print size"):
            plot.save(fig, tmp_path / "f")
        assert any(what in p for p in plot.print_problems(fig))
    assert not list(tmp_path.iterdir())                      # nothing written
    fine, axes = plot.panels(3)
    axes[0].plot([0, 1], [0, 1])
    assert plot.print_problems(fine) == [] and len(plot.save(fine, tmp_path / "ok")) == 2


def test_legend_wraps_its_labels_and_goes_above_on_request():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for k in range(5):
        ax.plot([0, 1], [k, k], label=f"a rather long series label number {k}")
    inside = plot.legend(ax)
    assert inside.get_texts()[0].get_text() == "a rather long series\nlabel number 0"
    above = plot.legend(ax, above=True)
    assert above._loc == 4 and above._ncols == 1   # lower right of the anchor above the panel; long labels: one column
    fig2, ax2 = plt.subplots()
    for k in range(5):
        ax2.plot([0, 1], [k, k], label=f"s{k}")
    assert plot.legend(ax2, above=True)._ncols == 2   # five short entries: two columns
    fig3, ax3 = plt.subplots()
    assert plot.legend(ax3) is None                    # nothing labelled: no legend


def test_card_scatter_takes_the_tidy_cards():
    import pandas as pd

    rows = [stats.Result(v, stats.ConfidenceInterval(v - 0.1, v + 0.1), 10, "m").row(model=model, measure=measure)
            for model, kl, acc in (("base", 0.0, 0.2), ("sft", 1.5, 0.6)) for measure, v in (("kl", kl), ("acc", acc))]
    fig = plot.card_scatter(pd.DataFrame(rows), "kl", "acc")
    ax = fig.axes[0]
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [0.0, 1.5])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), [0.2, 0.6])
    assert [t.get_text() for t in ax.texts] == ["base", "sft"]


def test_verification_draws_one_measure_of_the_tidy_table():
    import pandas as pd

    rows = [stats.Result(v, stats.ConfidenceInterval(v - 0.01, v + 0.01), 10, "m").row(model=model, system=system,
                                                                                        measure=measure)
            for model in ("a", "b") for system in ("x", "y")
            for measure, v in (("error", 0.03 if system == "x" else 0.04), ("coverage", 0.5))]
    fig = plot.verification(pd.DataFrame(rows), "error", reference=0.05)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [0.03, 0.03])                # system x, both models


def test_label_points_leaves_out_labels_that_would_overlap():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 3))
    xs, ys = [0.0, 0.001, 0.002, 0.003, 0.004, 1.0], [0.0, 0.001, 0.002, 0.003, 0.004, 1.0]
    ax.scatter(xs, ys)
    left_out = plot.label_points(ax, xs, ys, ["a long label", "b long label", "c long label", "d long label",
                                              "e long label", "far"])
    placed = [t.get_text() for t in ax.texts]
    # at most four places around (nearly) one point, fewer where a place would leave the axes: the rest there
    # are left out, the far one placed (below and left of it, inside the axes)
    assert 1 <= len(placed) - 1 <= 4 and placed[-1] == "far"
    assert sorted(placed + left_out) == sorted(["a long label", "b long label", "c long label", "d long label",
                                                "e long label", "far"])
    assert "e long label" in left_out
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    plt.close(fig)
