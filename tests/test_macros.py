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


def test_pvalue_bound_at_the_floor():
    # a Monte-Carlo p-value at its floor is printed as a bound; elsewhere as a number
    assert macros.pvalue(0.0142, 0.0142) == "< 0.015"
    assert macros.pvalue(0.014, 0.014) == "< 0.015"            # strictly above the floor
    assert macros.pvalue(0.0142) == "0.014" and macros.pvalue(0.0142, float("nan")) == "0.014"
    assert macros.pvalue(0.3, 0.002) == "0.300"                  # not at its floor
    assert macros.pvalue(2e-4, 2e-4) == "< 0.001" and macros.pvalue(None) == "n/a"


def test_write_pvalue_bound(tmp_path, monkeypatch):
    from dint.stats import ConfidenceInterval, Result
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path))
    nb = tmp_path / "smoke" / "03_diagnosability"
    nb.mkdir(parents=True)
    floored = Result(0.2, ConfidenceInterval(0.1, 0.3), 90, "TV, permutation test", 0.0142, pvalue_floor=0.0142)
    plain = Result(0.2, ConfidenceInterval(0.1, 0.3), 90, "TV, permutation test", 0.0142)
    numbers = {"tv": floored.asdict(), "tv_plain": plain.asdict()}
    (nb / "numbers.json").write_text(json.dumps({"notebook": "03_diagnosability", "numbers": numbers}))
    text = macros.write("smoke").read_text()
    assert r"\newcommand{\DiagnosabilityTvP}{< 0.015}" in text
    assert r"\newcommand{\DiagnosabilityTvPlainP}{= 0.014}" in text   # the paper prints $p = 0.014$


def test_p_relation_and_small_numbers():
    # "p = 0.014", a bound "p < 0.015" at a Monte-Carlo floor, no relation where no test was made
    assert macros.p_relation(0.0142) == "= 0.014" and macros.p_relation(0.0142, 0.0142) == "< 0.015"
    assert macros.p_relation(2e-5) == "< 0.001" and macros.p_relation(float("nan")) == r"\text{ n/a}"
    # a number below 0.01 gets a third decimal rather than a power of ten, which would claim a precision
    # that two significant digits of a small effect do not have; below 0.001 the power of ten stays
    assert macros.fmt(0.0097) == "0.010" and macros.fmt(-0.0042) == "-0.004" and macros.fmt(0.0014) == "0.001"
    assert macros.fmt(0.00049) == r"4.9\times 10^{-4}"
