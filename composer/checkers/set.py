"""The set checker, Jepsen's set-full: clients ``add`` elements and ``read`` the whole set.

Per element, from the reads that began after its add was acknowledged: *lost* when the
last of them misses it, *stale* when one missed it but a later one saw it (a read older
than the add it followed), *never read* when no read began after the add completed.
A read holding an element nobody tried to add is *unexpected*. Valid without lost or
unexpected elements; stale ones are reported (a linearizable set has none: use the
linearizable checker with the set model for that).
"""

from __future__ import annotations

from typing import Any

from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History

__all__ = ["check"]

_SHOWN = 20


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the check is linear)."""
    attempted = {op.value for op in history.operations if op.f == "add"}
    added = {}  # element -> when its add was acknowledged
    for op in history.operations:
        if op.f == "add" and op.type == "ok":
            added[op.value] = min(op.ret, added.get(op.value, op.ret))
    reads = sorted((op for op in history.operations if op.f == "read" and op.type == "ok"),
                   key=lambda op: op.call)
    unexpected: set[Any] = set()
    lost, stale, never = [], [], []
    contents = [(read, set(read.output) if isinstance(read.output, tuple) else set())
                for read in reads]
    for _, seen in contents:
        unexpected |= seen - attempted
    for element, acked in added.items():
        after = [seen for read, seen in contents if read.call > acked]
        if not after:
            never.append(element)
        elif element not in after[-1]:
            lost.append(element)
        elif any(element not in seen for seen in after):
            stale.append(element)
    details = {"attempted": len(attempted), "acknowledged": len(added), "reads": len(reads),
               "lost": _some(lost), "unexpected": _some(unexpected), "stale": _some(stale),
               "never_read": len(never)}
    if lost or unexpected:
        parts = []
        if lost:
            parts.append(f"{len(lost)} acknowledged element(s) lost (missing from the last "
                         f"read after their add), e.g. {_some(lost)[:5]}")
        if unexpected:
            parts.append(f"{len(unexpected)} element(s) read that nobody added, e.g. "
                         f"{_some(unexpected)[:5]}")
        return Verdict(INVALID, "; ".join(parts), details)
    note = f"; {len(stale)} read stale before showing up" if stale else ""
    return Verdict(VALID, f"{len(added)} acknowledged element(s) all present in the later "
                          f"reads{note}; {len(never)} never read", details)


def _some(elements) -> list:
    return sorted(elements, key=repr)[:_SHOWN]
