"""The paper takes every result from generated macros: each macro it uses exists, and no number is typed."""
import re

import pytest

from dint.pipeline import macros, notebooks, paper, paths

SOURCE = paths.root() / "paper" / "main.tex"
BODIES = {"world": paths.root() / "paper" / "world.tex", "real": paths.root() / "paper" / "real.tex"}
RELATED = paths.root() / "paper" / "related.tex"   # input by both bodies
# a number standing alone in the prose (not part of a name such as GPT-4 or Llama-2-7b)
NUMBER = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)?(?:\\?%)?(?![\w\-])")


def _prose(tex: str) -> str:
    """The text a reader sees as prose: comments, the preamble, published numbers, citations,
    labels, references, options and integer-only math removed."""
    body = tex.split("\\begin{document}", 1)[1] if "\\begin{document}" in tex else tex
    body = re.sub(r"(?<!\\)%.*", "", body)
    body = re.sub(r"\\published\{[^}]*\}", "", body)
    body = re.sub(r"\\(?:cite[tp]?|ref|label|input|includegraphics|bibliography\w*|fig)\{[^}]*\}", "", body)
    body = re.sub(r"\[[^\]]*\]", "", body)
    return re.sub(r"\$[^$]*\$", lambda m: m.group() if re.search(r"\d\.\d", m.group()) else "", body)


@pytest.mark.parametrize("source", [SOURCE, *BODIES.values(), RELATED], ids=lambda p: p.name)
def test_no_result_number_is_typed_into_the_prose(source):
    found = NUMBER.findall(_prose(source.read_text()))
    assert not found, f"numbers typed into paper/{source.name} (use a generated macro or \\published{{}}): {found}"


def test_main_inputs_the_body_of_the_profiles_reference(tmp_path, monkeypatch):
    (tmp_path / "results" / "real").mkdir(parents=True)
    (tmp_path / "results" / "tiny").mkdir(parents=True)
    for p in ("real", "tiny"):
        (tmp_path / "results" / p / "macros.tex").write_text("")
        (tmp_path / "results" / p / "paper").mkdir()
        (tmp_path / "results" / p / "paper" / "claims.tex").write_text("")
    monkeypatch.setattr(paths, "results", lambda name: tmp_path / "results" / name)
    assert "\\dintrealtrue" in paper.setup("real").read_text()
    assert "\\dintrealtrue" not in paper.setup("tiny").read_text()
    assert "\\ifdintreal\\input{real}\\else\\input{world}\\fi" in SOURCE.read_text()


def test_the_number_check_catches_typed_numbers():
    tex = "\\begin{document} KL was 2.29 nats, 16 stacks, GPT-4 and \\published{0.074}; $\\log n-(n-1)/n$."
    assert NUMBER.findall(_prose(tex)) == ["2.29", "16"]


def test_every_macro_the_paper_uses_is_generated_on_smoke():
    used = paper.macros_used(SOURCE.read_text() + BODIES["world"].read_text() + RELATED.read_text())
    assert len(used) > 20
    for name in notebooks.NOTEBOOKS:   # the notebooks' numbers (run here if this test runs alone)
        if not (paths.results("smoke") / name / "numbers.json").exists():
            notebooks.run(name, profile="smoke", output=paths.results("smoke") / "notebooks" / f"{name}.ipynb",
                          progress=False)
    # the replication's numbers, as `dint replication` writes them (here from the one run: their names)
    from dint import replicated
    from dint.analyses import replication
    from dint.pipeline import report
    from dint.pipeline.config import load_profile

    P = load_profile("smoke")
    runs = replication.read_run(P)
    agreement = replicated.agreement(runs, replicated.quoted(runs, BODIES["world"].read_text()))
    report.Outputs("replication", P).numbers(replicated.paper_numbers(runs, agreement))
    generated = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", macros.write("smoke").read_text()))
    missing = sorted(used - generated - {"Huge", "LaTeX"})
    assert not missing, f"paper/main.tex uses macros no notebook generates: {missing}"


def test_setup_needs_the_macros(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path))   # a profile whose pipeline has not run
    with pytest.raises(FileNotFoundError, match="run `dint macros --profile smoke`"):
        paper.setup("smoke")
    with pytest.raises(FileNotFoundError, match="run `dint macros --profile smoke --seed 3`"):
        paper.setup("smoke", seed=3)
    with pytest.raises(ValueError, match="unknown profile 'nothing'"):
        paper.setup("nothing")


def test_setup_needs_the_claims_verdicts(tmp_path, monkeypatch):
    monkeypatch.setenv("DINT_RESULTS", str(tmp_path))
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "macros.tex").write_text("")
    with pytest.raises(FileNotFoundError, match="run `dint paper --profile smoke`, which judges the claims registry"):
        paper.setup("smoke")
