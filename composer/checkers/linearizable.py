"""Linearizability: can every operation be given one instant between its invocation and
its completion so that, in that order, the model explains every output?

The search is Wing & Gong's as Lowe refined it (WGL, as Porcupine runs it; Lowe's other
algorithm, just-in-time linearization, was 1.5-3x slower here on every generated history):
invocations and completions are one list in time order; the search linearizes the next
call whose operation the model accepts from the current state, lifts it out of the list
and starts over from the head, and backtracks when it meets the completion of an
operation it has not linearized yet. (linearized set, state) pairs already explored are
memoised, so each is searched once. Histories are P-compositional: each key is checked
on its own, in parallel processes when the history is large.

An ``info`` operation may take effect at any instant after its invocation, or never: its
completion is at infinity and the search ends once every other operation is linearized.
``fail`` operations did not happen and are left out, as are ``info`` reads (no effect).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Sequence
from typing import Any

from composer.checkers.models import INCONSISTENT, Model, prune, model as model_named
from composer.checkers.verdict import INVALID, UNKNOWN, VALID, Verdict
from composer.history import History, Operation

__all__ = ["check", "check_key"]

#: Histories with at least this many operations over two keys or more are checked in
#: parallel processes, one key at a time each.
PARALLEL_FROM = 2000
#: Operations of the prefix shown before the one that cannot follow it.
_SHOWN_PREFIX = 6
_INFINITY = float("inf")


def check(history: History, model: str, time_limit: float = 60.0,
          jobs: int | None = None) -> Verdict:
    """Judge ``history`` against ``model`` (a name in ``checkers.models.MODELS``) within
    ``time_limit`` seconds: invalid if any key's operations are not linearizable, unknown
    if a key's search ran out of time, else valid."""
    spec = model_named(model)
    unknown_f = sorted({op.f for op in history.operations if op.f not in spec.functions})
    if unknown_f:
        return Verdict(UNKNOWN, f"the {model} model knows {', '.join(spec.functions)}, "
                                f"not {', '.join(unknown_f)}", {"model": model})
    by_key: dict[Any, list[Operation]] = {}
    for op in history.operations:
        by_key.setdefault(op.key, []).append(op)
    deadline = time.monotonic() + time_limit
    results = _per_key(by_key, model, deadline, jobs)
    counted = len(history.operations)
    bad = [v for v in results if v.outcome == INVALID]
    if bad:
        return min(bad, key=lambda v: v.details["blocked"]["ret"])
    unsure = [v for v in results if v.outcome == UNKNOWN]
    if unsure:
        return Verdict(UNKNOWN, f"{unsure[0].explanation} ({len(unsure)} of {len(by_key)} "
                                "keys unsettled)", {"model": model, "operations": counted})
    return Verdict(VALID, f"{counted} operations on {len(by_key)} key(s) are linearizable "
                          f"as a {model}", {"model": model, "operations": counted})


def _per_key(by_key: dict[Any, list[Operation]], model: str, deadline: float,
             jobs: int | None) -> list[Verdict]:
    total = sum(map(len, by_key.values()))
    workers = min(jobs or os.cpu_count() or 1, len(by_key))
    if workers < 2 or total < PARALLEL_FROM:
        return [check_key(key, ops, model, deadline) for key, ops in by_key.items()]
    # spawn, not fork: the runner calls this from a process with threads
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(check_key, key, ops, model, deadline)
                   for key, ops in by_key.items()]
        return [f.result() for f in futures]


def check_key(key: Any, ops: Sequence[Operation], model: str, deadline: float) -> Verdict:
    """Judge the operations of one key (a module-level function: it runs in workers)."""
    spec = model_named(model)
    ops = [op for op in ops
           if op.type == "ok" or (op.type == "info" and op.f not in spec.reads)]
    return _Search(prune(spec, ops), spec, deadline).run(key)


class _Search:
    """One key's search over a doubly linked list of call and return entries."""

    def __init__(self, ops: list[Operation], spec: Model, deadline: float) -> None:
        self.ops, self.spec, self.deadline = ops, spec, deadline
        entries = sorted([(op.call, 0, i) for i, op in enumerate(ops)]
                         + [(_INFINITY if op.ret is None else op.ret, 1, i)
                            for i, op in enumerate(ops)])
        size = len(entries)
        # node 0 is the head, size + 1 the tail; node k (1..size) is entries[k - 1]
        self.next = list(range(1, size + 2)) + [size + 1]
        self.prev = [0] + list(range(size + 1))
        self.is_call = [False] + [kind == 0 for _, kind, _ in entries] + [False]
        self.op_of = [0] + [i for _, _, i in entries] + [0]
        self.return_node = [0] * (size + 2)
        where = {}
        for node in range(1, size + 1):
            i = self.op_of[node]
            if self.is_call[node]:
                where[i] = node
            else:
                self.return_node[where[i]] = node
        self.tail = size + 1
        #: the longest linearization met, the state after it, and the op it blocked on
        self.best: tuple[list[int], Any, int] | None = None

    def _lift(self, node: int) -> None:
        for n in (node, self.return_node[node]):
            self.next[self.prev[n]] = self.next[n]
            self.prev[self.next[n]] = self.prev[n]

    def _unlift(self, node: int) -> None:
        for n in (self.return_node[node], node):
            self.next[self.prev[n]] = n
            self.prev[self.next[n]] = n

    def run(self, key: Any) -> Verdict:
        ops, step, nxt = self.ops, self.spec.step, self.next
        remaining = sum(op.ret is not None for op in ops)
        state = self.spec.initial
        linearized = 0
        seen: set[tuple[int, Any]] = set()
        stack: list[tuple[int, Any]] = []
        node = nxt[0]
        steps = 0
        while remaining:
            steps += 1
            if not steps & 0xFFF and time.monotonic() > self.deadline:
                return Verdict(UNKNOWN, f"the time limit ran out on key {key!r} after "
                                        f"{steps} search steps", {"key": key})
            i = self.op_of[node]
            if self.is_call[node]:
                after = step(state, ops[i])
                if after is not INCONSISTENT:
                    bit = 1 << i
                    memo = (linearized | bit, after)
                    if memo not in seen:
                        seen.add(memo)
                        stack.append((node, state))
                        state, linearized = after, linearized | bit
                        remaining -= ops[i].ret is not None
                        self._lift(node)
                        node = nxt[0]
                        continue
                node = nxt[node]
                continue
            if self.best is None or len(stack) > len(self.best[0]):
                self.best = ([self.op_of[n] for n, _ in stack], state, i)
            if not stack:
                return self._invalid(key)
            node, state = stack.pop()
            j = self.op_of[node]
            linearized &= ~(1 << j)
            remaining += ops[j].ret is not None
            self._unlift(node)
            node = nxt[node]
        return Verdict(VALID, f"key {key!r}: {len(ops)} operations linearizable")

    def _invalid(self, key: Any) -> Verdict:
        assert self.best is not None
        order, state, blocked = self.best
        op = self.ops[blocked]
        prefix = [self.ops[i] for i in order]
        start = min([op.call] + [p.call for p in prefix[-_SHOWN_PREFIX:]])
        window = [o for o in self.ops if o.call <= op.ret and (o.ret is None or o.ret >= start)]
        show = self.spec.show
        explanation = (
            f"key {key!r}: after {len(order)} operations linearized in the longest order "
            f"found (ending in state {show(state)}), {op.describe()} cannot take effect "
            f"anywhere between its invocation and its completion")
        return Verdict(INVALID, explanation, {
            "key": key, "model": self.spec.name, "state": show(state),
            "blocked": _shown(op), "prefix": [_shown(p) for p in prefix[-_SHOWN_PREFIX:]],
            "prefix_length": len(order), "window": [_shown(o) for o in window],
        })


def _shown(op: Operation) -> dict[str, Any]:
    return {**op.to_json(), "text": op.describe()}
