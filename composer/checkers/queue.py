"""The queue checker, Jepsen's total-queue: clients ``enqueue`` values and ``dequeue``
them (the last clients drain the queue). Every acknowledged enqueue must be dequeued
(else *lost*), nothing dequeued twice (*duplicated*) and nothing dequeued that was
never enqueued (*unexpected*). Order is not judged: the linearizable checker with the
queue model does that.
"""

from __future__ import annotations

import collections

from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History

__all__ = ["check"]

_SHOWN = 20


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the check is linear)."""
    attempted = collections.Counter(op.value for op in history.operations
                                    if op.f == "enqueue" and op.type != "fail")
    acknowledged = collections.Counter(op.value for op in history.operations
                                       if op.f == "enqueue" and op.type == "ok")
    dequeued = collections.Counter(op.output for op in history.operations
                                   if op.f == "dequeue" and op.type == "ok"
                                   and op.output is not None)
    lost = sorted((acknowledged - dequeued).elements(), key=repr)
    unexpected = sorted((dequeued - attempted).elements(), key=repr)
    duplicated = sorted(v for v, n in dequeued.items() if n > attempted.get(v, 0) > 0)
    details = {"enqueued": sum(acknowledged.values()), "dequeued": sum(dequeued.values()),
               "lost": lost[:_SHOWN], "unexpected": unexpected[:_SHOWN],
               "duplicated": duplicated[:_SHOWN]}
    problems = [f"{len(found)} {what}, e.g. {found[:5]}" for what, found in (
        ("acknowledged value(s) never dequeued", lost), ("value(s) dequeued but never "
         "enqueued", unexpected), ("value(s) dequeued more often than enqueued", duplicated))
        if found]
    if problems:
        return Verdict(INVALID, "; ".join(problems), details)
    return Verdict(VALID, f"{details['enqueued']} acknowledged value(s) each dequeued once",
                   details)
