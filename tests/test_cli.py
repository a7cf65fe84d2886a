import subprocess
import sys

import pytest

from dint import paths
from dint.cli import main


def test_cli_help_on_every_subcommand(capsys):
    for sub in ([], ["build"], ["run"], ["bench"], ["macros"], ["validate"], ["paper"], ["reproduce"], ["card"],
                ["profiles"]):
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
    assert "unknown profile 'nope'" in r.stdout + r.stderr


def test_snakemake_dry_run_smoke():
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "profile=smoke"],
                       cwd=paths.root(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "notebook_00" in r.stdout + r.stderr


def test_cli_build_intervention_needs_a_name(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "intervention", "--profile", "smoke"])
    assert e.value.code == 2
    assert "needs one NAME, one of sft" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "intervention", "sft", "dpo", "--profile", "smoke"])
    assert "needs one NAME" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "world", "sft", "--profile", "smoke"])
    assert "takes no NAME (got sft)" in capsys.readouterr().err


def test_cli_build_stacks_checks_every_name_first(capsys, monkeypatch):
    from dint import stacks

    monkeypatch.setattr(stacks, "stack", lambda *a, **k: pytest.fail("trained before checking every name"))
    assert main(["build", "stack", "sft+dpo", "sft+ppo", "--profile", "smoke"]) == 2
    assert "ppo" in capsys.readouterr().err


def test_cli_card_and_reproduce_fail_clearly(capsys, tmp_path):
    assert main(["card", str(tmp_path), "--profile", "smoke"]) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert main(["reproduce", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_cli_card_of_a_model_directory(capsys):
    from dint import artifacts
    from dint.config import load_profile

    P = load_profile("smoke")
    artifacts.base_model(P)
    assert main(["card", str(artifacts.base_dir(P)), "--profile", "smoke", "--name", "base-again"]) == 0
    import json

    assert "card, calibration and verification ->" in capsys.readouterr().out
    data = json.loads((paths.results("smoke") / "card_base_again" / "numbers.json").read_text())
    n = data["numbers"]
    assert data["notebook"] == "card_base_again"
    assert n["card_kl_from_base"]["statistic"] == pytest.approx(0.0, abs=1e-9)   # the base against itself
    acc = n["card_accuracy"]
    assert 0 <= acc["ci_low"] <= acc["statistic"] <= acc["ci_high"] <= 1
    b = n["brier"]   # Murphy: reliability - resolution + uncertainty, up to the within-bin term
    assert 0 <= n["brier_reliability"] and 0 <= n["brier_uncertainty"] <= 0.25 and 0 <= b <= 1
    assert n["verify_alpha"] == 0.05 and n["verify_n_splits"] == 200
    assert 0 <= n["verify_mean_error"]["statistic"] <= 1 and 0 <= n["verify_coverage"]["statistic"] <= 1
    assert main(["card", str(artifacts.base_dir(P)), "--profile", "smoke", "--name", "bad name"]) == 2
    assert "--name='bad name'" in capsys.readouterr().err
