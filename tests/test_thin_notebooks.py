"""Thin notebooks: a cell calls a function of its notebook's analysis module; the analysis lives in the package.

A notebook ``NN_<name>.ipynb`` imports ``dint.analyses.<name>`` and calls it. It defines no function, holds
no loop, comprehension or branch (what repeats or branches is an analysis, and belongs in the module,
where it is tested), binds each name in one cell only and never assigns into an object (rerunning any
cell in any order computes the same thing), and has at most `MAX_LINES` lines of code.
"""
import ast
import importlib

import nbformat
import pytest

from dint.pipeline import notebooks, paths

NOTEBOOKS = sorted(p.stem for p in paths.notebooks().glob("*.ipynb"))
MAX_LINES = 60

FORBIDDEN = {ast.FunctionDef: "a function definition", ast.AsyncFunctionDef: "a function definition",
             ast.Lambda: "a lambda", ast.ClassDef: "a class definition", ast.For: "a for loop",
             ast.While: "a while loop", ast.ListComp: "a comprehension", ast.DictComp: "a comprehension",
             ast.SetComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.If: "a branch",
             ast.IfExp: "a branch", ast.AugAssign: "an in-place update", ast.Global: "a global statement"}


def _cells(name):
    nb = nbformat.read(notebooks.path(name), as_version=4)
    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            src = "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            out.append((i, src, ast.parse(src)))
    return out


def _bound(tree):
    """The names a cell binds (assignments, imports, walrus), and the targets it assigns into."""
    names, into = set(), []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.NamedExpr):
            targets = [node.target]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.With):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.add(n.id)
                elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
                    into.append(ast.unparse(n))
    return names, into


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_calls_its_analysis_module(name):
    module = f"dint.analyses.{name.split('_', 1)[1]}"
    importlib.import_module(module)   # the module exists
    imported = set()
    for _, _, tree in _cells(name):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "dint.analyses":
                imported |= {f"dint.analyses.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
    assert module in imported, f"{name} does not import its analysis module {module}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_thin(name):
    problems, lines, seen = [], 0, {}
    for cell, src, tree in _cells(name):
        lines += sum(1 for line in src.splitlines() if line.strip() and not line.lstrip().startswith("#"))
        for node in ast.walk(tree):
            if type(node) in FORBIDDEN:
                problems.append(f"cell {cell}, line {node.lineno}: {FORBIDDEN[type(node)]}")
        names, into = _bound(tree)
        problems += [f"cell {cell}: assigns into {t} (build it in the analysis module)" for t in into]
        for n in sorted(names):
            if n in seen and seen[n] != cell:
                problems.append(f"cell {cell}: rebinds {n!r}, bound in cell {seen[n]}")
            seen.setdefault(n, cell)
    if lines > MAX_LINES:
        problems.append(f"{lines} lines of code (at most {MAX_LINES})")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_rules_catch_what_they_name(tmp_path):
    tree = ast.parse("def f(x):\n    return x\nfor i in range(3):\n    t[i] = [j for j in range(i)]\n")
    kinds = {FORBIDDEN[type(n)] for n in ast.walk(tree) if type(n) in FORBIDDEN}
    assert kinds == {"a function definition", "a for loop", "a comprehension"}
    names, into = _bound(ast.parse("a = 1\nb, c = f()\nd.x = 2\nimport numpy as np\nfrom dint import stats\n"))
    assert names == {"a", "b", "c", "np", "stats"} and into == ["d.x"]
