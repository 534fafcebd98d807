"""Line coverage of a Python service, for composer's guided search (stdlib only).

composer puts this directory first on ``PYTHONPATH`` of a service with
``coverage = true``, so Python loads this file at start-up. When
``COMPOSER_COVERAGE_FILE`` and ``COMPOSER_COVERAGE_ROOT`` are set it traces the lines
executed in files under the root (the project: never the standard library or
site-packages, so the cost stays with the service's own code) and appends each line the
first time it runs, as ``relative/path.py:LINE``, to the file: every quarter second
from a daemon thread (a process killed with SIGKILL loses at most that much) and at
exit. Then it runs the next ``sitecustomize`` on the path, if there is one.
"""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import os
import sys
import threading
import time

_FLUSH_SECONDS = 0.25


def _start(out: str, root: str) -> None:
    root = os.path.realpath(root) + os.sep
    seen: set[tuple[str, int]] = set()
    new: list[tuple[str, int]] = []
    wanted: dict[str, bool] = {}

    def local(frame, event, arg):
        if event == "line":
            key = (frame.f_code.co_filename, frame.f_lineno)
            if key not in seen:
                seen.add(key)
                new.append(key)
        return local

    def calls(frame, event, arg):
        name = frame.f_code.co_filename
        ok = wanted.get(name)
        if ok is None:
            path = os.path.realpath(name)
            ok = wanted[name] = path.startswith(root) and "site-packages" not in path
        return local if ok else None

    def flush() -> None:
        lines = new[:]
        if not lines:
            return
        del new[:len(lines)]
        text = "".join(f"{os.path.relpath(f, root)}:{n}\n" for f, n in lines)
        try:
            with open(out, "a") as fh:
                fh.write(text)
        except OSError:
            pass

    def keep_flushing() -> None:
        while True:
            time.sleep(_FLUSH_SECONDS)
            flush()

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    threading.Thread(target=keep_flushing, name="composer-coverage", daemon=True).start()
    atexit.register(flush)
    sys.settrace(calls)
    threading.settrace(calls)


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows, as Python would have."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("COMPOSER_COVERAGE_FILE") and os.environ.get("COMPOSER_COVERAGE_ROOT"):
    _start(os.environ["COMPOSER_COVERAGE_FILE"], os.environ["COMPOSER_COVERAGE_ROOT"])
_chain()
