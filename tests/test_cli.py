import subprocess
import sys

import pytest

from dint.pipeline import paths
from dint.cli import main


def test_cli_help_on_every_subcommand(capsys):
    for sub in ([], ["build"], ["run"], ["bench"], ["macros"], ["validate"], ["paper"], ["reproduce"], ["card"],
                ["profiles"], ["format-control"]):
        with pytest.raises(SystemExit) as e:
            main([*sub, "--help"])
        assert e.value.code == 0
        assert "usage: dint" in capsys.readouterr().out


def test_cli_bad_profile_fails_before_work(capsys):
    assert main(["build", "world", "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'nope'" in err and "smoke" in err


def test_cli_profiles(capsys):
    assert main(["profiles"]) == 0
    assert {"smoke", "tiny"} <= set(capsys.readouterr().out.split())


def test_cli_build_world(capsys):
    assert main(["build", "world", "--profile", "smoke"]) == 0
    assert (paths.results("smoke") / "world" / "manifest.json").exists()


def test_snakemake_bad_profile_fails_before_work(tmp_path):
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "profile=nope"],
                       cwd=paths.root(), capture_output=True, text=True)
    assert r.returncode != 0
    assert "error: unknown profile 'nope'" in r.stderr and "Traceback" not in r.stdout + r.stderr


def test_snakemake_dry_run_smoke():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "profile=smoke"],
                       cwd=paths.root(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "notebook_00" in r.stdout + r.stderr


def test_cli_build_intervention_needs_a_name(capsys):
    assert main(["build", "intervention", "--profile", "smoke"]) == 2
    assert "needs one NAME, one of sft" in capsys.readouterr().err
    assert main(["build", "intervention", "sft", "dpo", "--profile", "smoke"]) == 2
    assert "needs one NAME" in capsys.readouterr().err
    assert main(["build", "world", "sft", "--profile", "smoke"]) == 2
    assert "takes no NAME (got sft)" in capsys.readouterr().err


def test_cli_build_stacks_checks_every_name_first(capsys, monkeypatch):
    from dint.analyses import stacks

    monkeypatch.setattr(stacks, "stack", lambda *a, **k: pytest.fail("trained before checking every name"))
    assert main(["build", "stack", "sft+dpo", "sft+ppo", "--profile", "smoke"]) == 2
    assert "ppo" in capsys.readouterr().err


def test_cli_card_and_reproduce_fail_clearly(capsys, tmp_path):
    assert main(["card", str(tmp_path), "--profile", "smoke"]) == 2
    assert "has no config.json" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")    # a config and no weights: the weights are named
    assert main(["card", str(tmp_path), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.safetensors" in err and "save_pretrained" in err
    assert main(["reproduce", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_cli_card_of_a_model_directory(capsys):
    from dint.pipeline import artifacts
    from dint.pipeline.config import load_profile

    P = load_profile("smoke")
    artifacts.base_model(P)
    assert main(["card", str(artifacts.base_dir(P)), "--profile", "smoke", "--name", "base-again"]) == 0
    import json

    assert "card, calibration and verification ->" in capsys.readouterr().out
    data = json.loads((paths.results("smoke") / "card_base_again" / "numbers.json").read_text())
    n = data["numbers"]
    assert data["notebook"] == "card_base_again"
    assert n["card_kl_from_base"]["estimate"] == pytest.approx(0.0, abs=1e-9)   # the base against itself
    acc = n["card_accuracy"]
    assert 0 <= acc["ci_low"] <= acc["estimate"] <= acc["ci_high"] <= 1
    b = n["brier"]   # Murphy: reliability - resolution + uncertainty, up to the within-bin term
    assert 0 <= n["brier_reliability"] and 0 <= n["brier_uncertainty"] <= 0.25 and 0 <= b <= 1
    assert n["verify_alpha"] == 0.05 and n["verify_n_splits"] == 200
    assert 0 <= n["verify_mean_error"]["estimate"] <= 1 and 0 <= n["verify_coverage"]["estimate"] <= 1
    assert main(["card", str(artifacts.base_dir(P)), "--profile", "smoke", "--name", "bad name"]) == 2
    assert "--name='bad name'" in capsys.readouterr().err


# ---------------------------------------------------------------- bad parameters fail before any work
@pytest.fixture
def no_work(monkeypatch, tmp_path):
    """Results go to an empty folder, and starting a notebook's kernel fails the test."""
    import papermill

    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DINT_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a kernel started"))
    yield tmp_path
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()


def _fails_cleanly(capsys, argv, *want):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for w in want:
        assert w in err, err
    return err


@pytest.mark.parametrize("argv, want", [
    (["-p", "seed=abc"], ["seed='abc': must be an integer", "declares seed = 0"]),
    (["-p", "nosuch=1"], ["no parameter(s) ['nosuch']", "valid: ['model_params', 'profile', 'seed', 'train_seed', 'world_params']"]),
    (["-p", "seed=-1"], ["seed=-1: must be a non-negative integer"]),
    (["-p", "seed=1.5"], ["seed=1.5: must be an integer"]),
    (["-p", "world_params={n_entities: ten}"], ["world.n_entities='ten': must be an integer"]),
    (["-p", "world_params={n_entities: 2}"], ["WorldConfig.n_entities=2: need at least 4"]),
    (["-p", "model_params=5"], ["model_params=5: must be a mapping"]),
    (["-p", "profile=tiny"], ["profile='tiny' differs from the run's profile 'smoke'", "--profile"]),
    (["-p", "seed"], ["-p 'seed': give NAME=VALUE"]),
    (["-p", "seed=[1,"], ["the value is not YAML"]),
    (["--seed", "abc"], ["argument --seed: must be an integer >= 0, got 'abc'"]),
])
def test_cli_run_bad_parameter_fails_before_work(capsys, no_work, argv, want):
    _fails_cleanly(capsys, ["run", "00_base_model", "--profile", "smoke", *argv], *want)


def test_cli_run_checks_types_from_the_parameters_cell(capsys, no_work):
    argv = ["run", "01_mechanism", "--profile", "smoke"]
    _fails_cleanly(capsys, [*argv, "-p", "bon_n=1.5"], "bon_n=1.5: must be an integer")
    _fails_cleanly(capsys, [*argv, "-p", "interventions=sft"], "interventions='sft': must be a list of strings")
    _fails_cleanly(capsys, [*argv, "-p", "n_resamples=true"], "n_resamples=True: must be an integer")
    _fails_cleanly(capsys, ["run", "06_resources", "--profile", "smoke", "-p", "alpha=high"],
                   "alpha='high': must be a number")
    _fails_cleanly(capsys, ["run", "99_nothing", "--profile", "smoke"], "unknown notebook '99_nothing'")


def test_cli_run_good_parameters_reach_the_kernel(capsys, monkeypatch, tmp_path):
    """Valid parameters pass the checks, and Papermill gets them with the profile's own."""
    import papermill

    calls = []
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, out, parameters, **k: calls.append(parameters))
    assert main(["run", "06_resources", "--profile", "smoke", "-p", "alpha=1", "-p", "budgets=[1, 2]"]) == 0
    assert calls == [{"profile": "smoke", "seed": 0, "train_seed": 0, "n_resamples": 200, "alpha": 1, "budgets": [1, 2]}]


def test_every_profile_sets_only_declared_notebook_parameters():
    from dint.pipeline import notebooks
    from dint.pipeline.config import profile_notebooks, profiles

    for name in profiles():
        for nb, values in profile_notebooks(name).items():
            assert nb in notebooks.NOTEBOOKS, (name, nb)
            notebooks.check_parameters(nb, values, where=f"config/{name}.yaml")


def _profile(tmp_path, monkeypatch, name, text):
    """A checkout whose config/ holds one profile, with this checkout's notebooks."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / f"{name}.yaml").write_text(text)
    if not (tmp_path / "notebooks").exists():
        (tmp_path / "notebooks").symlink_to(paths.notebooks())
    monkeypatch.setenv("DINT_ROOT", str(tmp_path))


@pytest.mark.parametrize("text, want", [
    ('world:\n  n_entities: "ten"\n', "config/bad.yaml: world.n_entities='ten': must be an integer"),
    ("world:\n  n_entities: [10\n", "config/bad.yaml: line 3: expected ',' or ']'"),
    ("notebooks:\n  00_base_model: {nosuch: 1}\n", "config/bad.yaml notebooks.00_base_model: notebook 00_base_model "
                                                    "has no parameter(s) ['nosuch']"),
    ("notebooks:\n  00_base_model: {seed: abc}\n", "seed='abc': must be an integer"),
    ("notebooks:\n  00_base_modle: {seed: 1}\n", "unknown notebook(s) ['00_base_modle']"),
])
def test_cli_bad_profile_file_fails_before_work(capsys, no_work, monkeypatch, text, want):
    _profile(no_work, monkeypatch, "bad", text)
    _fails_cleanly(capsys, ["run", "00_base_model", "--profile", "bad"], want)
    if not text.startswith("notebooks"):
        _fails_cleanly(capsys, ["build", "world", "--profile", "bad"], want)


@pytest.mark.parametrize("argv, want", [
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["card", "smollm", "--alpha", "2"], "argument --alpha: must be a number in (0, 1)"),
    (["reproduce", "--cores", "0"], "argument --cores: must be an integer >= 1, got '0'"),
    (["validate", "--replications", "ten"], "argument --replications: must be an integer >= 1"),
    (["bench", "scoring", "--questions", "-5"], "argument --questions: must be an integer >= 1"),
    (["build", "world", "--profile", "smoke", "--seed", "-2"], "argument --seed: must be an integer >= 0"),
    (["paper", "--profile", "nope"], "unknown profile 'nope'"),
    (["macros", "--profile", "nope"], "unknown profile 'nope'"),
])
def test_cli_bad_arguments_fail_cleanly(capsys, no_work, argv, want):
    _fails_cleanly(capsys, argv, want)


def test_cli_timings_tabulates_the_benchmark_files(capsys):
    from dint.pipeline import artifacts, config

    folder = artifacts.root(config.load_profile("smoke", seed=7)) / "timings"
    folder.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (folder / "world.tsv").write_text(header + "30.0\t0:00:30\t512.5\t900\t400\t450\t0\t0\t90\t27\n")
    (folder / "stacks_sft.tsv").write_text(header + "150.0\t0:02:30\t1024.0\t2000\t800\t900\t0\t0\t95\t140\n")
    assert main(["timings", "--profile", "smoke", "--seed", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["stacks_sft", "2.5"] and out[2].split()[:2] == ["world", "0.5"]
    assert out[-1] == "2 jobs, 3.0 job-minutes"
    assert main(["timings", "--profile", "smoke", "--seed", "8"]) == 2
    assert "no timings under" in capsys.readouterr().err


def test_reproduce_makes_the_format_controls_replication_first(monkeypatch):
    import subprocess
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    assert main(["reproduce", "--profile", "tiny"]) == 0
    assert [c[1] for c in ran] == ["results/tiny-qa/replication/claims.parquet", "--cores"]
    assert ran[0][-1] == "profile=tiny-qa" and ran[1][-1] == "profile=tiny"
    ran.clear()
    assert main(["reproduce", "--profile", "smoke"]) == 0   # no control: the profile alone
    assert len(ran) == 1 and ran[0][-1] == "profile=smoke"
