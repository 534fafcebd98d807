"""The bank checker, Jepsen's: clients ``transfer`` ``{"from", "to", "amount"}`` between
accounts and ``read`` every balance (``{account: balance}``). Every read must show the
same total (the first read's, unless the history starts with a ``total`` in a read's
``value``) and no negative balance: money is neither made nor lost.
"""

from __future__ import annotations

from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History

__all__ = ["check"]


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the check is linear)."""
    reads = sorted((op for op in history.operations if op.f == "read" and op.type == "ok"),
                   key=lambda op: op.call)
    total = None
    wrong, negative = [], []
    for read in reads:
        balances = dict(read.output) if isinstance(read.output, tuple) else None
        if balances is None or not all(isinstance(v, (int, float)) for v in balances.values()):
            wrong.append({"read": read.describe(), "why": "not a map of balances"})
            continue
        found = sum(balances.values())
        expected = read.value if isinstance(read.value, (int, float)) else total
        total = found if expected is None else expected
        if found != total:
            wrong.append({"read": read.describe(), "total": found, "expected": total})
        below = {k: v for k, v in balances.items() if v < 0}
        if below:
            negative.append({"read": read.describe(), "accounts": sorted(below)})
    details = {"reads": len(reads), "total": total, "wrong_totals": wrong[:20],
               "negative": negative[:20]}
    if wrong or negative:
        parts = []
        if wrong:
            first = wrong[0]
            parts.append(f"{len(wrong)} read(s) with a wrong total, e.g. {first['read']}"
                         + (f" totals {first['total']}, not {first['expected']}"
                            if "total" in first else f": {first['why']}"))
        if negative:
            parts.append(f"{len(negative)} read(s) with a negative balance, e.g. "
                         f"{negative[0]['read']}")
        return Verdict(INVALID, "; ".join(parts), details)
    return Verdict(VALID, f"{len(reads)} read(s), every one totalling {total} with no "
                          "negative balance", details)
