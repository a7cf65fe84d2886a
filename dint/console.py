"""What a long job shows a person: everything it prints goes to its log file; the console gets its
progress bars and, if it fails, the error.

A pipeline job (``dint --log FILE build ...``) runs inside `logged`: the process's standard output
and error, down to the file descriptors (so C extensions, warnings and the training libraries'
per-step dictionaries and bars follow), go to the log, and `stream` is the console. dint's own
progress bars are drawn on `stream`; outside a logged job it is ``sys.stderr``.
"""
from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["logged", "stream"]

_console: io.TextIOBase | None = None


def stream():
    """Where dint's progress bars go: the console of a logged job, else ``sys.stderr``."""
    return _console if _console is not None else sys.stderr


@contextmanager
def logged(path: str | os.PathLike):
    """Send this process's output (file descriptors 1 and 2, and ``sys.stdout``/``sys.stderr``) to
    ``path``, a new file; `stream` is the console meanwhile. Restored on exit."""
    global _console
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    old = sys.stdout, sys.stderr, _console
    console = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(path, "w", buffering=1, encoding="utf-8", errors="replace") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        _console = console
        try:
            yield console
        finally:
            sys.stdout, sys.stderr, _console = old
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()
