"""What each workload asks of the system: seeded random operations, and the check that
judges their history. One function per workload; each returns the next request
(``{"f": ..., "key": ..., "value": ...}``) from a ``random.Random`` and its own state.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Workload", "WORKLOADS"]


@dataclasses.dataclass(frozen=True)
class Workload:
    """A workload: its operations, and the ``[[template.NAME.checks]]`` table judging them."""

    name: str
    describe: str
    #: (rng, client number, operation number) -> request
    next_request: Callable[[random.Random, int, int], dict[str, Any]]
    checker: str
    model: str | None = None
    #: the property its check is reported as; "" for the checker's default name
    check_name: str = ""


def _register(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    """Reads, writes of values unique to this operation, and compare-and-sets from a
    recently written value to a new one: unique values let the checker tell every
    write apart, which keeps its search small."""
    key = f"r{rng.randrange(3)}"
    roll = rng.random()
    if roll < 0.5:
        return {"f": "read", "key": key}
    if roll < 0.8:
        return {"f": "write", "key": key, "value": client * 10_000 + n}
    recent = client * 10_000 + max(0, n - rng.randint(1, 3))
    return {"f": "cas", "key": key, "value": [recent, client * 10_000 + n]}


def _set(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    if n % 5 == 4:
        return {"f": "read", "key": "set"}
    return {"f": "add", "key": "set", "value": client * 1_000_000 + n}


def _counter(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {"f": "read", "key": "counter"}
    return {"f": "add", "key": "counter", "value": rng.randint(1, 5)}


def _bank(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {"f": "read", "key": "bank"}
    source, target = rng.sample(range(5), 2)
    return {"f": "transfer", "key": "bank",
            "value": {"from": source, "to": target, "amount": rng.randint(1, 5)}}


def _queue(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"f": "enqueue", "key": "queue", "value": client * 1_000_000 + n}
    return {"f": "dequeue", "key": "queue"}


def _append(rng: random.Random, client: int, n: int) -> dict[str, Any]:
    """A transaction of one to four appends (of values unique to it) and reads (null:
    the adapter answers with the list it read) over five keys; the adapter answers the
    same micro-operations with the reads filled in."""
    steps = []
    for i in range(rng.randint(1, 4)):
        key = f"l{rng.randrange(5)}"
        if rng.random() < 0.5:
            steps.append(["append", key, client * 10_000 + n * 10 + i])
        else:
            steps.append(["r", key, None])
    return {"f": "txn", "key": None, "value": steps}


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("register", "reads, writes and compare-and-sets of three registers",
             _register, "linearizable", "cas-register", "Register operations are linearizable"),
    Workload("set", "adds of unique elements and reads of the whole set", _set, "set"),
    Workload("counter", "increments and reads of one counter", _counter, "counter"),
    Workload("bank", "transfers between five accounts and reads of every balance", _bank,
             "bank"),
    Workload("queue", "enqueues of unique values and dequeues", _queue, "queue"),
    Workload("append", "transactions of appends to and reads of five lists", _append,
             "append"),
)}
