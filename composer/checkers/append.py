"""The append checker, after Elle (Kingsbury & Alvaro): transactions of list appends and
reads, judged by the cycles in their dependency graph.

A transaction is an operation ``f = "txn"`` whose value is a list of micro-operations,
``["append", key, value]`` and ``["r", key, list-or-null]`` (the completion carries the
lists read). Appended values are unique per key, so every read list is a prefix of the
key's version order, and the longest read of a key gives that order (two reads that
are not prefixes of one another: *incompatible order*). From the order, between
committed transactions: *ww* (T1 appended the element right before T2's), *wr* (T2 read
a list ending with T1's element) and *rw* (T1 read a list that T2's element extends
next). Anomalies, as Adya names them: *G1a* a read saw an element of a failed
transaction; *G1b* a read saw a transaction's element but not its later append to the
same key; *G0* a cycle of ww edges; *G1c* a cycle of ww and wr edges; *G-single* a cycle
with exactly one rw edge; *G2* a cycle with more. Any of them: invalid (not
serializable), with the cycle shown. Info transactions count as committed when a read
saw one of their elements.
"""

from __future__ import annotations

import collections
from typing import Any

from composer.checkers.cycles import cycles
from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History, Operation

__all__ = ["check"]

_SHOWN = 10


def _micro(op: Operation, use_output: bool) -> list[tuple[str, Any, Any]]:
    source = op.output if use_output and op.output is not None else op.value
    steps = []
    for step in source if isinstance(source, tuple) else ():
        if isinstance(step, tuple) and len(step) == 3 and step[0] in ("append", "r"):
            steps.append(step)
    return steps


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the graph is linear in its size)."""
    txns = [op for op in history.operations if op.f == "txn"]
    writer: dict[tuple[Any, Any], Operation] = {}  # (key, element) -> its transaction
    failed: dict[tuple[Any, Any], Operation] = {}
    failed_in: dict[Any, set] = collections.defaultdict(set)  # key -> failed elements
    last_append: dict[tuple[int, Any], Any] = {}  # (txn, key) -> its last element
    for op in txns:
        for kind, key, value in _micro(op, False):
            if kind == "append":
                (failed if op.type == "fail" else writer)[(key, value)] = op
                if op.type == "fail":
                    failed_in[key].add(value)
                last_append[(op.index, key)] = value
    anomalies: dict[str, list[str]] = collections.defaultdict(list)
    order: dict[Any, tuple] = {}
    reads = []  # (transaction, key, list read)
    for op in txns:
        if op.type != "ok":
            continue
        for kind, key, value in _micro(op, True):
            if kind != "r" or value is None:
                continue
            seen = tuple(value) if isinstance(value, tuple) else ()
            reads.append((op, key, seen))
            longest = order.get(key, ())
            if seen[:len(longest)] == longest[:len(seen)]:
                order[key] = max(longest, seen, key=len)
            else:
                anomalies["incompatible order"].append(
                    f"key {key!r}: {op.describe()} read {list(seen)}, another {list(longest)}")
            if len(set(seen)) != len(seen):
                anomalies["duplicate elements"].append(f"{op.describe()} read {list(seen)}")
            if key in failed_in and not failed_in[key].isdisjoint(seen):
                for element in failed_in[key].intersection(seen):
                    anomalies["G1a"].append(f"{op.describe()} saw {element!r}, appended by "
                                            f"the failed {failed[(key, element)].describe()}")
            if seen:
                source = writer.get((key, seen[-1]))
                if source is not None and source.index != op.index and \
                        last_append.get((source.index, key)) != seen[-1]:
                    anomalies["G1b"].append(f"{op.describe()} saw {seen[-1]!r}, an "
                                            f"intermediate append of {source.describe()}")
    graph = _graph(order, reads, writer)
    for name, cycle in cycles(graph, txns):
        anomalies[name].append(cycle)
    details = {"transactions": len(txns), "keys": len(order),
               "anomalies": {k: v[:_SHOWN] for k, v in anomalies.items()}}
    if anomalies:
        worst = next(name for name in ("G0", "G1a", "G1b", "G1c", "G-single", "G2",
                                       "incompatible order", "duplicate elements")
                     if name in anomalies)
        return Verdict(INVALID, f"{', '.join(f'{k} ({len(v)})' for k, v in anomalies.items())}"
                                f"; e.g. {worst}: {anomalies[worst][0]}", details)
    return Verdict(VALID, f"{len(txns)} transaction(s) on {len(order)} key(s): no G0, G1a, "
                          "G1b, G1c, G-single or G2", details)


def _graph(order: dict[Any, tuple], reads: list, writer: dict) -> dict[int, dict[int, str]]:
    """Edges between transaction indexes, each with its kind (ww, wr, rw)."""
    graph: dict[int, dict[int, str]] = collections.defaultdict(dict)

    def edge(a: Operation | None, b: Operation | None, kind: str) -> None:
        if a is not None and b is not None and a.index != b.index:
            graph[a.index].setdefault(b.index, kind)  # a ww or wr edge wins over rw

    for key, elements in order.items():
        for before, after in zip(elements, elements[1:]):
            edge(writer.get((key, before)), writer.get((key, after)), "ww")
    for op, key, seen in reads:
        elements = order.get(key, ())
        if seen:
            edge(writer.get((key, seen[-1])), op, "wr")
        if len(seen) < len(elements):
            edge(op, writer.get((key, elements[len(seen)])), "rw")
    return graph
