"""The counter checker, Jepsen's: clients ``add`` non-negative amounts and ``read`` the
total. Each read must lie between the sum of the adds acknowledged before it began and
the sum of the adds attempted (not failed) before it ended.
"""

from __future__ import annotations

import bisect
import itertools

from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History

__all__ = ["check"]


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the check is n log n)."""
    adds = [op for op in history.operations if op.f == "add" and op.type != "fail"]
    bad_amount = [op for op in adds if not isinstance(op.value, (int, float)) or op.value < 0]
    if bad_amount:
        return Verdict(INVALID, f"the counter checker needs non-negative amounts; "
                                f"{bad_amount[0].describe()}", {})
    done = sorted((op.ret, op.value) for op in adds if op.type == "ok")
    done_at = [t for t, _ in done]
    done_sum = [0, *itertools.accumulate(v for _, v in done)]
    begun = sorted((op.call, op.value) for op in adds)
    begun_at = [t for t, _ in begun]
    begun_sum = [0, *itertools.accumulate(v for _, v in begun)]
    reads = [op for op in history.operations if op.f == "read" and op.type == "ok"]
    wrong = []
    for read in reads:
        low = done_sum[bisect.bisect_left(done_at, read.call)]
        high = begun_sum[bisect.bisect_right(begun_at, read.ret)]
        if not isinstance(read.output, (int, float)) or not low <= read.output <= high:
            wrong.append({"read": read.describe(), "value": read.output, "low": low,
                          "high": high})
    details = {"reads": len(reads), "adds": len(adds), "wrong": wrong[:20]}
    if wrong:
        first = wrong[0]
        return Verdict(INVALID, f"{len(wrong)} read(s) outside what the adds allow, e.g. "
                                f"{first['read']} when it had to be between {first['low']} "
                                f"and {first['high']}", details)
    return Verdict(VALID, f"{len(reads)} read(s) within the bounds of {len(adds)} add(s)",
                   details)
