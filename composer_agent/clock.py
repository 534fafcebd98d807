"""Clock faults: service processes run under libfaketime, reading their offset from a file.

Imports only the standard library. It lives with the agent because it acts on the
node a process runs on: the host backends call it for their nodes, the agent for its
machine (the exec request's ``clock``). Only the wall clock moves (``CLOCK_REALTIME``, as an NTP step would); monotonic clocks,
and so timeouts and sleeps, are left alone. The offset file is read on every clock call,
so a jump takes effect at once. Programs that do not read the time through libc (static
or Go binaries) do not see the offset.

libfaketime 0.9.10 (Debian 12) breaks absolute monotonic sleeps when told to leave the
monotonic clock alone, so a small library built from ``clock_fix.c`` is preloaded in
front of it; it is compiled once per host into the user's cache directory.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["LIBFAKETIME", "missing", "environment", "set_offset"]

_FIX_SOURCE = Path(__file__).with_name("clock_fix.c")


def _find() -> str | None:
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


#: The libfaketime library of this host, or None.
LIBFAKETIME = _find()


@functools.cache
def missing() -> str | None:
    """Return why clock faults cannot run on this host, or None when they can."""
    if LIBFAKETIME is None:
        return "needs libfaketime (apt-get install faketime)"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "needs a C compiler to build composer's libfaketime fix (apt-get install gcc)"
    try:
        _build_fix(compiler)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or error
        return f"building {_FIX_SOURCE.name} with {compiler} failed: {str(detail).strip()}"
    return None


def _fix_library() -> Path:
    source = _FIX_SOURCE.read_bytes()  # the name carries the hash: an edit means a rebuild
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "composer"
    return cache / f"clock_fix-{hashlib.sha256(source).hexdigest()[:16]}.so"


def _build_fix(compiler: str) -> None:
    library = _fix_library()
    if library.exists():
        return
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        built = Path(scratch) / library.name
        subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(built), str(_FIX_SOURCE),
                        "-ldl"], check=True, capture_output=True, text=True)
        os.replace(built, library)  # concurrent runs never load a half-written library


def environment(offset_file: Path) -> dict[str, str]:
    """Return the variables that put a process under the offset in ``offset_file``."""
    assert missing() is None
    return {
        "LD_PRELOAD": f"{_fix_library()}:{LIBFAKETIME}",
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def set_offset(offset_file: Path, seconds: float) -> None:
    """Move the wall clock of the processes reading ``offset_file`` by ``seconds``."""
    offset_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = offset_file.with_name(offset_file.name + ".new")
    temporary.write_text(f"{seconds:+g}\n")
    os.replace(temporary, offset_file)  # readers never see a half-written offset
