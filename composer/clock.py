"""Clock faults: service processes run under libfaketime, reading their offset from a file.

Imports only the standard library. Only the wall clock moves (``CLOCK_REALTIME``, as an
NTP step would); monotonic clocks, and so timeouts and sleeps, are left alone. The
offset file is read on every clock call, so a jump takes effect at once. Programs that
do not read the time through libc (static or Go binaries) do not see the offset.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

__all__ = ["LIBFAKETIME", "MISSING", "environment", "set_offset"]

#: Why clock faults are missing when libfaketime is not installed.
MISSING = "needs libfaketime (apt-get install faketime)"


def _find() -> str | None:
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


#: The libfaketime library of this host, or None.
LIBFAKETIME = _find()


def environment(offset_file: Path) -> dict[str, str]:
    """Return the variables that put a process under the offset in ``offset_file``."""
    assert LIBFAKETIME is not None
    return {
        "LD_PRELOAD": LIBFAKETIME,
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
