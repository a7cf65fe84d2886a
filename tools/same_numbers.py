"""Are two runs' numbers identical? Every ``numbers.json`` and ``macros.tex`` of two results folders.

A change to the code that should not change any number (a refactoring) is checked by running the
pipeline of one profile before and after it on the same machine and comparing what the paper quotes:

    make reproduce                                   # at the commit before
    python tools/same_numbers.py save results/tiny /tmp/before
    make clean-results reproduce                     # at the commit after
    python tools/same_numbers.py compare /tmp/before results/tiny

``save`` copies the numbers (``<notebook>/numbers.json`` and ``macros.tex``) of a results folder to
another folder; ``compare`` prints every number that differs, is missing or is new, and exits with 1
when anything differs, 0 when both folders hold the same numbers exactly (floats compared bit for
bit; NaN equals NaN; the comment lines of ``macros.tex`` are not compared).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

FILES = ("*/numbers.json", "macros.tex")


def numbers_files(folder: Path) -> list[Path]:
    """The numbers files of a results folder, relative to it."""
    return sorted(p.relative_to(folder) for pattern in FILES for p in folder.glob(pattern))


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def differences(before: Path, after: Path) -> list[str]:
    """One line per number that differs between two results folders (empty when identical)."""
    out = []
    a_files, b_files = set(numbers_files(before)), set(numbers_files(after))
    if not a_files:
        out.append(f"{before}: no numbers files (expected {', '.join(FILES)})")
    out += [f"{f}: only in {before}" for f in sorted(a_files - b_files)]
    out += [f"{f}: only in {after}" for f in sorted(b_files - a_files)]
    for f in sorted(a_files & b_files):
        if f.suffix == ".json":
            a = dict(_flatten(json.loads((before / f).read_text())))
            b = dict(_flatten(json.loads((after / f).read_text())))
            out += [f"{f}: {k} only in {before}" for k in sorted(a.keys() - b.keys())]
            out += [f"{f}: {k} only in {after}" for k in sorted(b.keys() - a.keys())]
            out += [f"{f}: {k}: {a[k]!r} -> {b[k]!r}" for k in sorted(a.keys() & b.keys()) if not _same(a[k], b[k])]
        else:
            # a macro file's comments name the code that wrote it, not a number
            a_lines = [x for x in (before / f).read_text().splitlines() if not x.startswith("%")]
            b_lines = [x for x in (after / f).read_text().splitlines() if not x.startswith("%")]
            out += [f"{f}: - {line}" for line in a_lines if line not in set(b_lines)]
            out += [f"{f}: + {line}" for line in b_lines if line not in set(a_lines)]
    return out


def save(folder: Path, to: Path) -> int:
    files = numbers_files(folder)
    if not files:
        print(f"error: folder: {folder} holds no numbers files; run the pipeline first (make reproduce)")
        return 2
    for f in files:
        (to / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / f, to / f)
    print(f"saved {len(files)} numbers files of {folder} to {to}")
    return 0


def compare(before: Path, after: Path) -> int:
    diff = differences(before, after)
    for line in diff:
        print(line)
    n = len(numbers_files(after))
    if diff:
        print(f"same numbers: no, {len(diff)} differences")
        return 1
    count = sum(1 for f in numbers_files(after) if f.suffix == ".json"
                for _ in _flatten(json.loads((after / f).read_text())))
    print(f"same numbers: yes, {n} files, {count} values in numbers.json and every macro identical")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="copy a results folder's numbers files")
    s.add_argument("folder", type=Path)
    s.add_argument("to", type=Path)
    c = sub.add_parser("compare", help="compare two folders' numbers files")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    for name in ("folder", "before", "after"):
        if getattr(args, name, None) is not None and not getattr(args, name).is_dir():
            print(f"error: {name}: {getattr(args, name)} is not a folder")
            return 2
    if args.command == "save":
        return save(args.folder, args.to)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
