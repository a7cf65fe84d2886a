"""The paper takes every result from generated macros: each macro it uses exists, and no number is typed."""
import re

import pytest

from dint import macros, notebooks, paper, paths

SOURCE = paths.root() / "paper" / "main.tex"
# a number standing alone in the prose (not part of a name such as GPT-4 or Llama-2-7b)
NUMBER = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)?(?:\\?%)?(?![\w\-])")


def _prose(tex: str) -> str:
    """The text a reader sees as prose: comments, the preamble, published numbers, citations,
    labels, references, options and integer-only math removed."""
    body = tex.split("\\begin{document}", 1)[1]
    body = re.sub(r"(?<!\\)%.*", "", body)
    body = re.sub(r"\\published\{[^}]*\}", "", body)
    body = re.sub(r"\\(?:cite[tp]?|ref|label|input|includegraphics|bibliography\w*|fig)\{[^}]*\}", "", body)
    body = re.sub(r"\[[^\]]*\]", "", body)
    return re.sub(r"\$[^$]*\$", lambda m: m.group() if re.search(r"\d\.\d", m.group()) else "", body)


def test_no_result_number_is_typed_into_the_prose():
    found = NUMBER.findall(_prose(SOURCE.read_text()))
    assert not found, f"numbers typed into paper/main.tex (use a generated macro or \\published{{}}): {found}"


def test_the_number_check_catches_typed_numbers():
    tex = "\\begin{document} KL was 2.29 nats, 16 stacks, GPT-4 and \\published{0.074}; $\\log n-(n-1)/n$."
    assert NUMBER.findall(_prose(tex)) == ["2.29", "16"]


def test_every_macro_the_paper_uses_is_generated_on_smoke():
    used = paper.macros_used(SOURCE.read_text())
    assert len(used) > 20
    for name in notebooks.NOTEBOOKS:   # the notebooks' numbers (run here if this test runs alone)
        if not (paths.results("smoke") / name / "numbers.json").exists():
            notebooks.run(name, profile="smoke", output=paths.results("smoke") / "notebooks" / f"{name}.ipynb",
                          progress=False)
    generated = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", macros.write("smoke").read_text()))
    missing = sorted(used - generated - {"Huge", "LaTeX"})
    assert not missing, f"paper/main.tex uses macros no notebook generates: {missing}"


def test_setup_needs_the_macros():
    with pytest.raises(FileNotFoundError, match="dint macros --profile nothing"):
        paper.setup("nothing")
