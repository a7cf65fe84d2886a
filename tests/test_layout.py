"""The package's architecture: layers whose imports only go down, no import circle, no private name
used outside the module that defines it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dint
from dint.pipeline import codegraph

PACKAGE = Path(dint.__file__).resolve().parent
# the layers, bottom first: a module imports from its own layer or the ones below it
LAYERS = {"stats": 0, "toolkit": 1, "pipeline": 2, "analyses": 3, "claims": 4, "cli": 5}
# modules every layer may use: lazy imports of heavy libraries and the package's own __init__
BASE = {"dint", "dint.lazy"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("stats", "pipeline", "analyses"):
        return parts[1]
    if module in ("dint.cli", "dint.__main__"):
        return "cli"
    if module in ("dint.claims", "dint.claims_tex", "dint.replicated", "dint.format_control", "dint.snapshot"):
        # the registry judged on a pipeline's results (its runs pooled; a profile beside its format control; its LaTeX)
        return "claims"
    return "toolkit"


def _imports(module: str) -> set[str]:
    f = MODULES[module]
    found = codegraph.imports(f.read_text(), here=module, is_package=f.name == "__init__.py")
    # importing a submodule runs its parent packages' __init__; that edge is not an import of the module
    return {m for m in found if m != module and not module.startswith(m + ".")}


GRAPH = {m: _imports(m) for m in MODULES}


def test_layers_import_only_downwards():
    up = [f"{m} ({layer(m)}) imports {i} ({layer(i)})" for m, imps in GRAPH.items() for i in sorted(imps)
          if i not in BASE and LAYERS[layer(i)] > LAYERS[layer(m)]]
    assert not up, "\n".join(up)


def test_statistics_import_nothing_else_of_dint():
    outside = [f"{m} imports {i}" for m, imps in GRAPH.items() if layer(m) == "stats"
               for i in sorted(imps) if layer(i) != "stats" and i not in BASE]
    assert not outside, "\n".join(outside)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for i in sorted(graph.get(m, ())):
            if state.get(i) == 1:
                return stack[stack.index(i):] + [i]
            if state.get(i) is None:
                found = visit(i)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None:
            found = visit(m)
            if found:
                return found
    return None


def test_cycle_finder_against_a_known_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle():
    # a package's __init__ that re-exports its submodules is not a circle with them: its submodules'
    # imports of it are dropped above, and its own imports of them go down
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


def _private_uses(module: str, source: str | None = None, is_pkg: bool | None = None) -> list[str]:
    """``from X import _name`` and ``X._name`` where X is another dint module."""
    f = MODULES.get(module)
    tree = ast.parse(source if source is not None else f.read_text())
    is_pkg = f.name == "__init__.py" if is_pkg is None else is_pkg
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = codegraph.absolute(node.level, node.module, module, is_pkg) if node.level else node.module or ""
            if base.split(".")[0] != "dint":
                continue
            for a in node.names:
                if f"{base}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{base}.{a.name}"
                elif a.name.startswith("_") and base != module:
                    found.append(f"{module}: from {base} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES:
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "dint"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and aliases[node.value.id] != module):
            found.append(f"{module}: {aliases[node.value.id]}.{node.attr}")
    return found


def test_private_use_finder():
    src = ("from ..pipeline import artifacts\nfrom ..stats.resampling import _seed, cluster_draws\n"
           "import dint.models as m\nx = artifacts._threads() + artifacts.root(p) + m._load()\n_own = 1\n")
    found = _private_uses("dint.analyses.stacks", src, False)
    assert sorted(found) == ["dint.analyses.stacks: dint.models._load", "dint.analyses.stacks: dint.pipeline.artifacts._threads",
                             "dint.analyses.stacks: from dint.stats.resampling import _seed"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_used_across_modules(module):
    assert not _private_uses(module), "\n".join(_private_uses(module))
