import json

import pytest

from dint.pipeline import macros


def test_name_against_theory():
    assert macros.name("base_model", "corr_frequent") == "BaseModelCorrFrequent"
    assert macros.name("kl_2hop") == "KlTwohop"
    assert macros.name("a-b c") == "ABC"


def test_fmt_against_theory():
    assert macros.fmt(0.7912) == "0.79"
    assert macros.fmt(1000) == "1{,}000"
    assert macros.fmt(None) == "n/a" and macros.fmt(float("nan")) == "n/a"
    assert macros.fmt(0.0004) == r"4.0\times 10^{-4}"
    assert macros.fmt(0.0) == "0.00"


def test_write(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path))
    nb = tmp_path / "smoke" / "00_base_model"
    nb.mkdir(parents=True)
    numbers = {"corr_frequent": {"estimate": 0.79, "ci_low": 0.71, "ci_high": 0.85, "n": 124,
                                 "method": "Pearson", "pvalue": 1e-30},
               "n_facts": 1000, "label": "text is skipped"}
    (nb / "numbers.json").write_text(json.dumps({"notebook": "00_base_model", "numbers": numbers}))
    text = macros.write("smoke").read_text()
    assert r"\newcommand{\BaseModelCorrFrequent}{0.79}" in text
    assert r"\newcommand{\BaseModelCorrFrequentLow}{0.71}" in text
    assert r"\newcommand{\BaseModelCorrFrequentP}{< 0.001}" in text
    assert r"\newcommand{\BaseModelCorrFrequentN}{124}" in text
    assert r"\newcommand{\BaseModelNFacts}{1{,}000}" in text
    assert "label" not in text.lower().replace("\\", "")


def test_write_iv(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run the pipeline"):
        macros.write("smoke")
