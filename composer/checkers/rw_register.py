"""The rw-register checker, after Elle's rw-register: transactions of register writes and
reads (``["w", key, value]``, ``["r", key, value-or-null]``; the completion fills in what
was read), written values unique per key.

A read names its writer exactly (*wr* edges). A key's version order is known in part:
the initial version (null) comes before every written one, and a transaction that read
(or wrote) one version and then wrote another on the same key put the second right
after the first (Elle's inference, without the realtime and process orders). From what
is known: *ww* edges between the writers of consecutive versions, and *rw* edges from a
reader of a version to the writer of a version right after it (every writer of the key,
for a reader of the initial version). Anomalies as Adya names them: G1a (a read of a
failed transaction's write), G1b (a read of a write its transaction overwrote), and the
cycles G0, G1c, G-single, G2. Any of them: invalid (not serializable), the cycle shown.
"""

from __future__ import annotations

import collections
from typing import Any

from composer.checkers.cycles import Graph, cycles
from composer.checkers.verdict import INVALID, VALID, Verdict
from composer.history import History, Operation

__all__ = ["check"]

_SHOWN = 10


def _steps(op: Operation, completed: bool) -> list[tuple[str, Any, Any]]:
    source = op.output if completed and op.output is not None else op.value
    return [s for s in (source if isinstance(source, tuple) else ())
            if isinstance(s, tuple) and len(s) == 3 and s[0] in ("w", "r")]


def check(history: History, time_limit: float = 60.0) -> Verdict:
    """Judge ``history`` (``time_limit`` unused: the graph is linear in its size)."""
    txns = [op for op in history.operations if op.f == "txn"]
    writer: dict[tuple[Any, Any], Operation] = {}
    failed: dict[tuple[Any, Any], Operation] = {}
    final: dict[tuple[int, Any], Any] = {}  # (transaction, key) -> its last write
    for op in txns:
        for kind, key, value in _steps(op, False):
            if kind == "w":
                (failed if op.type == "fail" else writer)[(key, value)] = op
                final[(op.index, key)] = value
    anomalies: dict[str, list[str]] = collections.defaultdict(list)
    follows: dict[Any, set[tuple[Any, Any]]] = collections.defaultdict(set)  # key -> (v, v')
    reads = []  # (reader, key, value read)
    for op in txns:
        if op.type == "fail":
            continue
        last: dict[Any, Any] = {}  # key -> the version this transaction last saw or wrote
        for kind, key, value in _steps(op, op.type == "ok"):
            if kind == "w":
                if key in last:
                    follows[key].add((last[key], value))
                last[key] = value
                continue
            if op.type != "ok":
                continue  # what an unfinished transaction read is unknown
            if key in last and last[key] == value and (key, value) in writer \
                    and writer[(key, value)].index == op.index:
                continue  # it read its own write
            last[key] = value
            reads.append((op, key, value))
            if (key, value) in failed:
                anomalies["G1a"].append(f"{op.describe()} read {value!r}, written by the failed "
                                        f"{failed[(key, value)].describe()}")
            source = writer.get((key, value))
            if source is not None and source.index != op.index \
                    and final.get((source.index, key)) != value:
                anomalies["G1b"].append(f"{op.describe()} read {value!r}, which "
                                        f"{source.describe()} overwrote")
    graph = _graph(writer, follows, reads)
    for name, cycle in cycles(graph, txns):
        anomalies[name].append(cycle)
    details = {"transactions": len(txns),
               "anomalies": {k: v[:_SHOWN] for k, v in anomalies.items()}}
    if anomalies:
        worst = next(n for n in ("G0", "G1a", "G1b", "G1c", "G-single", "G2") if n in anomalies)
        return Verdict(INVALID, f"{', '.join(f'{k} ({len(v)})' for k, v in anomalies.items())}"
                                f"; e.g. {worst}: {anomalies[worst][0]}", details)
    return Verdict(VALID, f"{len(txns)} transaction(s): no G0, G1a, G1b, G1c, G-single or G2 "
                          "in what the reads reveal", details)


def _graph(writer: dict, follows: dict, reads: list) -> Graph:
    graph: Graph = collections.defaultdict(dict)
    writers_of: dict[Any, list[Operation]] = collections.defaultdict(list)
    for (key, _), op in writer.items():
        writers_of[key].append(op)

    def edge(a: Operation | None, b: Operation | None, kind: str) -> None:
        if a is not None and b is not None and a.index != b.index:
            graph[a.index].setdefault(b.index, kind)

    after: dict[tuple[Any, Any], list[Any]] = collections.defaultdict(list)
    for key, pairs in follows.items():
        for before, then in pairs:
            edge(writer.get((key, before)), writer.get((key, then)), "ww")
            after[(key, before)].append(then)
    for op, key, value in reads:
        edge(writer.get((key, value)), op, "wr")
        successors = ([w for w in writers_of[key]] if value is None else
                      [writer.get((key, v)) for v in after.get((key, value), ())])
        for successor in successors:
            edge(op, successor, "rw")
    return graph
