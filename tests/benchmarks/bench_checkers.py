#!/usr/bin/env python3
"""Figures of the linearizability checker, printed as a table (asserts nothing on time).

    python3 tests/benchmarks/bench_checkers.py [--histories N] [--sizes 1000,10000,100000]
                                               [--processes 5,20,50] [--time-limit 60]

Histories are generated as Jepsen's independent cas-register workload makes them: P client
processes in groups of five, each group on its own key and moving to a fresh key every
thousand operations (jepsen.independent's concurrent generator), each process running
operations back to back (reads 40%, writes 30%, compare-and-sets 30% of values 0-4, a
tenth of a millisecond to 2 ms each), each taking effect at an instant inside its interval
against a real register, 1% of them crashing (info). ``--single-key`` puts every process
on one key instead: with 20 concurrent operations over five values the search space
explodes (as it does for every Wing & Gong checker) and the verdict is unknown. For each size and process count: median and worst
check time over N histories (default 3), the memory peak (max RSS of the checking
process), and the verdicts: every generated history is linearizable, so anything but
valid or unknown is a wrong verdict; the same history with one read changed to a value
never written must be invalid or unknown. Each check runs in its own process.

Anchor: Porcupine (Go) checks each of its 100 Jepsen etcd histories (single-key
cas-register, 5 processes, a few hundred to a thousand operations) in milliseconds to
about a second; the target is within 10x of that on the same sizes. Porcupine cannot be
built here (its source is not reachable), so the anchor is its published figure.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import random
import resource
import statistics
import time

from bench_local import log, table

from composer.checkers import append, linearizable
from composer.history import History, Operation


def _intervals(rng: random.Random, n: int, processes: int) -> list[tuple[int, ...]]:
    """(instant it takes effect, index, process, invocation, completion) of ``n``
    operations, processes running back to back, in the order they take effect."""
    free = [0] * processes
    planned = []
    for index in range(n):
        p = rng.randrange(processes)
        call = free[p] + rng.randint(0, 200_000)
        ret = call + rng.randint(100_000, 2_000_000)
        free[p] = ret
        planned.append((rng.randint(call, ret), index, p, call, ret))
    return sorted(planned)


def generate(n: int, processes: int, seed: int, single_key: bool = False) -> History:
    rng = random.Random(seed)
    state: dict[int, int | None] = collections.defaultdict(lambda: None)
    ops = []
    for point, index, p, call, ret in _intervals(rng, n, processes):
        key = 0 if single_key else (p // 5) * n + index // 1000
        roll, value = rng.random(), rng.randrange(5)
        kind = "info" if rng.random() < 0.01 else "ok"
        if roll < 0.4:
            f, out = "read", state[key]
        elif roll < 0.7:
            f, out = "write", None
            state[key] = value
        else:
            old = rng.choice([state[key], rng.randrange(5)])
            f, out, value = "cas", None, (old, value)
            if state[key] != old:
                kind = "fail"
            else:
                state[key] = value[1]
        ops.append(Operation(index, p, kind, f, key, value,
                             out if kind == "ok" else None, call,
                             None if kind == "info" else ret))
    ops.sort(key=lambda o: o.index)
    return History(ops)


def generate_append(n: int, processes: int, seed: int) -> History:
    """``n`` list-append transactions (one to four micro-operations over 100 keys, half
    appends of unique values, half reads), each applied at an instant in its interval:
    serializable, so the only right verdict is valid. A key takes at most 256 appends,
    then a fresh one replaces it (Elle's max-writes-per-key)."""
    rng = random.Random(seed)
    lists: dict[str, list[int]] = collections.defaultdict(list)
    generation = [0] * 100
    ops = []
    for point, index, p, call, ret in _intervals(rng, n, processes):
        steps, done = [], []
        for i in range(rng.randint(1, 4)):
            slot = rng.randrange(100)
            key = f"k{slot}.{generation[slot]}"
            if rng.random() < 0.5:
                if len(lists[key]) == 255:
                    generation[slot] += 1
                value = index * 10 + i
                lists[key].append(value)
                steps.append(("append", key, value))
                done.append(("append", key, value))
            else:
                steps.append(("r", key, None))
                done.append(("r", key, tuple(lists[key])))
        ops.append(Operation(index, p, "ok", "txn", None, tuple(steps), tuple(done), call, ret))
    ops.sort(key=lambda o: o.index)
    return History(ops)


def _check_append(history: History) -> tuple[str, float, float]:
    start = time.perf_counter()
    outcome = append.check(history).outcome
    return (outcome, time.perf_counter() - start,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def broken(history: History, seed: int) -> History:
    """The same history with one read returning a value never written."""
    rng = random.Random(seed)
    reads = [i for i, op in enumerate(history.operations) if op.f == "read" and op.type == "ok"]
    ops = list(history.operations)
    i = rng.choice(reads)
    old = ops[i]
    ops[i] = Operation(old.index, old.process, "ok", "read", old.key, None, 99, old.call, old.ret)
    return History(ops)


def _check(args) -> tuple[str, float, float]:
    history, limit = args
    start = time.perf_counter()
    outcome = linearizable.check(history, "cas-register", time_limit=limit, jobs=1).outcome
    seconds = time.perf_counter() - start
    return outcome, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(history: History, limit: float) -> tuple[str, float, float]:
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_check, ((history, limit),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--processes", default="5,20,50")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--single-key", action="store_true",
                        help="every process on one key (a stress case)")
    args = parser.parse_args()
    rows = []
    for n in map(int, args.sizes.split(",")):
        for processes in map(int, args.processes.split(",")):
            times, peaks, outcomes, wrong = [], [], [], 0
            for seed in range(args.histories):
                history = generate(n, processes, seed, args.single_key)
                outcome, seconds, peak = measure(history, args.time_limit)
                times.append(seconds)
                peaks.append(peak)
                outcomes.append(outcome)
                wrong += outcome == "invalid"
                bad, _, _ = measure(broken(history, seed), args.time_limit)
                wrong += bad == "valid"
                log(f"{n} ops, {processes} processes, seed {seed}: {outcome} in {seconds:.3f}s, "
                    f"broken copy {bad}, peak {peak:.0f} MB")
            rows.append([f"{n:,}", str(processes), f"{statistics.median(times) * 1000:,.1f}",
                         f"{max(times) * 1000:,.1f}", f"{max(peaks):,.0f}",
                         f"{outcomes.count('valid')}/{len(outcomes)}",
                         f"{outcomes.count('unknown')}", str(wrong),
                         "ms .. ~1 s" if n <= 1000 and processes <= 5 else "-"])
    append_rows = []
    for n in (10_000, 100_000):
        times, peaks, outcomes = [], [], []
        for seed in range(args.histories):
            history = generate_append(n, 20, seed)
            with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
                outcome, seconds, peak = pool.apply(_check_append, (history,))
            times.append(seconds)
            peaks.append(peak)
            outcomes.append(outcome)
            log(f"append: {n} transactions, seed {seed}: {outcome} in {seconds:.2f}s")
        append_rows.append([f"{n:,}", f"{n / statistics.median(times):,.0f}",
                            f"{statistics.median(times):.2f}", f"{max(peaks):,.0f}",
                            f"{outcomes.count('valid')}/{len(outcomes)}", "100,000 .. 160,000"])
    shape = "one key" if args.single_key else "five processes per key"
    print(table(f"Linearizability check (cas-register, {shape}, {args.histories} histories "
                f"each, time limit {args.time_limit:g}s)",
                ["operations", "processes", "median ms", "worst ms", "peak MB", "valid",
                 "unknown", "wrong verdicts", "Porcupine (published)"], rows))
    print()
    print(table(f"Append checker (Elle-style, 20 processes, 100 keys, {args.histories} "
                "histories each)", ["transactions", "txn/s", "median s", "peak MB", "valid",
                                    "Elle (published, JVM)"], append_rows))


if __name__ == "__main__":
    main()
