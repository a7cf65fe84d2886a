"""Which of dint's source files a piece of code runs: the import closure, by static analysis.

The pipeline reruns a job when a file it depends on changes, so each rule's code inputs must be
every module its command can execute, not a hand-kept list that drifts. `closure` reads the
``import`` statements of the entry points (modules, or a notebook's code cells) and of every dint
module they reach, at module level and inside functions (a function-level import runs when the
function is called), without importing anything: Snakemake computes it when it builds the DAG.
``import dint`` alone reaches only the package's ``__init__``; ``dint.stats`` used as an attribute
counts as importing ``dint.stats`` (the package loads its submodules on first use).
"""
from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path

from . import paths

__all__ = ["absolute", "closure", "imports", "module_file", "notebook_source"]

PACKAGE = "dint"


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def module_file(module: str) -> Path | None:
    """The source file of dotted ``module`` inside dint (``dint.stats`` -> dint/stats.py, a package
    -> its ``__init__.py``), or None when it is not part of dint."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = _package_dir().joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(file: Path) -> str:
    rel = file.resolve().relative_to(_package_dir().parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute(level: int, module: str | None, here: str, is_package: bool) -> str:
    """The absolute name of a relative import ``from <level dots><module> import ...`` in ``here``."""
    if level == 0:
        return module or ""
    base = here.split(".")
    base = base if is_package else base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _dint_attributes(tree: ast.AST, aliases: set[str]) -> set[str]:
    """``dint.x.y`` read as attributes of a name bound to the package (``import dint``): each
    prefix is a candidate module (``dint.x``, ``dint.x.y``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            cur = node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                chain.reverse()
                for i in range(1, len(chain) + 1):
                    found.add(".".join([PACKAGE, *chain[:i]]))
    return found


def imports(source: str, *, here: str = "__main__", is_package: bool = False) -> set[str]:
    """The dint modules that ``source`` imports (absolute dotted names that exist as files).

    Parameters
    ----------
    source : Python source code
    here : the dotted name of the module the source is (for relative imports)
    is_package : whether ``here`` is a package's ``__init__``
    """
    tree = ast.parse(source)
    found, aliases = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == PACKAGE:
                    parts = a.name.split(".")
                    found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                    if a.asname is None or a.asname == PACKAGE:
                        aliases.add(PACKAGE)
                    elif "." not in a.name:
                        aliases.add(a.asname)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node.level, node.module, here, is_package)
            if base.split(".")[0] != PACKAGE:
                continue
            parts = base.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            for a in node.names:
                found.add(f"{base}.{a.name}")   # a submodule, or a name inside base (dropped below)
    found |= _dint_attributes(tree, aliases)
    return {m for m in found if module_file(m) is not None}


def notebook_source(path: str | Path) -> str:
    """The code cells of a notebook, joined (IPython magics and shell lines dropped)."""
    nb = json.loads(Path(path).read_text())
    lines = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = "".join(cell.get("source", ""))
            lines += [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


@lru_cache(maxsize=None)
def _module_imports(file: Path) -> frozenset[str]:
    name = _module_name(file)
    return frozenset(imports(file.read_text(), here=name, is_package=file.name == "__init__.py"))


def closure(*entries: str | Path) -> list[str]:
    """Every dint source file that the entries can run, as paths relative to the project root.

    Parameters
    ----------
    entries : a dint module's dotted name (``"dint.analyses.stacks"``), a ``.py`` file (inside dint or not: a file
        outside brings the dint modules it imports) or a ``.ipynb`` notebook

    Returns
    -------
    Sorted relative paths (``dint/analyses/stacks.py``, ...), the entries' own files included. A module
    brings its package's ``__init__`` files (importing ``dint.plot.world`` runs ``dint/plot/__init__.py``).
    """
    todo: list[Path] = []
    seen: set[Path] = set()
    extra: set[Path] = set()
    for e in entries:
        e = str(e)
        if e.endswith(".ipynb"):
            p = Path(e) if Path(e).is_absolute() else paths.root() / e
            if not p.is_file():
                raise ValueError(f"entries: notebook {e!r} does not exist")
            extra.add(p.resolve())
            todo += [module_file(m) for m in imports(notebook_source(p))]
        elif e.endswith(".py"):
            p = Path(e) if Path(e).is_absolute() else paths.root() / e
            if not p.is_file():
                raise ValueError(f"entries: file {e!r} does not exist")
            todo.append(p.resolve())
        else:
            f = module_file(e)
            if f is None:
                raise ValueError(f"entries: {e!r} is not a module of dint (e.g. 'dint.analyses.stacks')")
            todo.append(f)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        name = _module_name(f) if f.is_relative_to(_package_dir()) else None
        if name:
            parts = name.split(".")
            todo += [module_file(".".join(parts[:i])) for i in range(1, len(parts))]   # parent packages
            todo += [module_file(m) for m in _module_imports(f)]
        else:   # an entry outside dint (a profile's own method, examples/kto.py): the dint modules it imports
            todo += [module_file(m) for m in imports(f.read_text())]
    root = paths.root().resolve()
    out = {str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in seen | extra}
    return sorted(out)
