"""Per-process assertion and guidance bookkeeping (private).

Owns: the first-pass/first-fail dedupe per assertion id, the location a call
site reports (as antithesis 0.4.0 computes it), and the most extreme numeric
guidance gap per guidance id. Imports the standard library only.
"""

from __future__ import annotations

import math
import os
import threading
from types import FrameType
from typing import Any


class Entry:
    """What this process has emitted for one assertion id."""

    __slots__ = ("filename", "classname", "passes", "fails")

    def __init__(self, filename: str, classname: str) -> None:
        self.filename = filename
        self.classname = classname
        self.passes = 0
        self.fails = 0


_lock = threading.Lock()
_entries: dict[str, Entry] = {}
_marks: dict[str, tuple[bool, float | None]] = {}  # guidance id -> (maximize, best gap)


def peek_seen(assert_id: str, condition: bool) -> bool:
    """Cheap pre-check: this id already emitted a hit with this outcome, so count and skip."""
    entry = _entries.get(assert_id)
    if entry is None or (entry.passes if condition else entry.fails) == 0:
        return False
    with _lock:
        if condition:
            entry.passes += 1
        else:
            entry.fails += 1
    return True


def record_hit(assert_id: str, location: dict[str, Any], hit: bool, condition: bool) -> bool:
    """Pin ``location`` to the id's first file/class; return whether to emit this hit.

    A hit is emitted only if it is the first pass or the first fail for the id;
    a catalog declaration (``hit`` false) is always emitted.
    """
    with _lock:
        entry = _entries.get(assert_id)
        if entry is None:
            entry = _entries[assert_id] = Entry(
                str(location.get("file", "")), str(location.get("class", ""))
            )
        location["file"] = entry.filename
        location["class"] = entry.classname
        if not hit:
            return True
        if condition:
            entry.passes += 1
            return entry.passes == 1
        entry.fails += 1
        return entry.fails == 1


def location_of(frame: FrameType | None) -> dict[str, Any]:
    """The call site of a public SDK function, shaped as antithesis 0.4.0 reports it."""
    if frame is None:
        return {"file": "", "function": "", "class": "", "begin_line": 0, "begin_column": 0}
    try:
        classname = type(frame.f_locals["self"]).__name__
    except Exception:
        classname = ""
    return {
        "file": frame.f_code.co_filename,
        "function": frame.f_code.co_name,
        "class": classname,
        "begin_line": frame.f_lineno,
        "begin_column": 0,
    }


def numeric_gap(left: Any, right: Any) -> float | None:
    """``left - right`` as floats; None if they do not convert or are not finite."""
    try:
        lf, rf = float(left), float(right)
    except Exception:
        return None
    if not (math.isfinite(lf) and math.isfinite(rf)):
        return None
    return lf - rf


def improves(guidance_id: str, maximize: bool, gap: float) -> bool:
    """Whether ``gap`` is the most extreme yet for this id (direction fixed on first use)."""
    with _lock:
        fixed, best = _marks.get(guidance_id, (maximize, None))
        if best is not None and not (gap > best if fixed else gap < best):
            return False
        _marks[guidance_id] = (fixed, gap)
        return True


def _reset() -> None:
    """Forget everything this process emitted (tests, and a forked child)."""
    global _lock
    _lock = threading.Lock()
    _entries.clear()
    _marks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset)
