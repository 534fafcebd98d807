#!/usr/bin/env python3
"""Figures of the ``netns`` backend and the network faults, printed as tables (asserts
nothing about time). Needs root.

    python3 tests/benchmarks/bench_netns.py [--quick] [--only 123]

1. node create + destroy, ms per node, netns against local (1 node); cluster up and
   down time of 3 and 20 nodes. Target: under 50 ms per netns node.
2. partition apply and heal latency (``shape_network`` until the rules are in force),
   3 and 20 nodes, netns against local.
3. timelines per minute during ``explore`` of examples/pbstore (5 s timelines), netns
   against local.

Medians of several runs; ratios against the baseline of the same run (these machines
are shared and noisy). Everything is written under one temporary directory, removed at
the end, also on Ctrl-C. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import sys
import time
from pathlib import Path

from bench_local import fmt, log, median, run_figures, table

from composer import clusters, config, templates
from composer.explore import explore
from composer.faults import Network, network_of
from composer.progress import Progress
from composer.timeline import Fault

REPO = Path(__file__).resolve().parents[2]
PBSTORE = REPO / "examples" / "pbstore"
NODE_TARGET_MS = 50.0


def names(count: int) -> list[str]:
    return [f"n-{i}" for i in range(1, count + 1)]


async def up_and_down(backend: str, directory: Path, count: int) -> tuple[float, float]:
    """Return (ms to create the cluster and its nodes, ms to destroy it)."""
    started = time.perf_counter()
    cluster = clusters.create(backend, directory)
    await cluster.new_nodes(names(count))
    up = time.perf_counter()
    await cluster.cleanup()
    return (up - started) * 1000, (time.perf_counter() - up) * 1000


def figure_nodes(tmp: Path, quick: bool) -> str:
    runs = 5 if quick else 11
    rows = []
    per_node = {}
    for count in (1, 3, 20):
        for backend in ("local", "netns"):
            times = [asyncio.run(up_and_down(backend, tmp / f"nodes-{backend}-{count}-{i}", count))
                     for i in range(runs)]
            up, down = median([t[0] for t in times]), median([t[1] for t in times])
            per_node[backend, count] = (up + down) / count
            rows.append([f"{backend}, {count} node(s)", fmt(up), fmt(down),
                         fmt(per_node[backend, count]), ""])
            log(f"figure 1: {backend} {count} nodes: up {up:.1f} ms, down {down:.1f} ms")
        rows[-1][4] = (f"{per_node['netns', count] / per_node['local', count]:.1f}x local; "
                       f"{per_node['netns', count] / NODE_TARGET_MS:.2f}x target")
    return table(f"1. node create + destroy, median of {runs} (target: netns under "
                 f"{NODE_TARGET_MS:g} ms per node)",
                 ["cluster", "up ms", "down ms", "ms per node", "netns vs local / target"], rows)


async def shape_latency(backend: str, directory: Path, count: int, runs: int
                        ) -> tuple[float, float]:
    cluster = clusters.create(backend, directory)
    try:
        nodes = names(count)
        await cluster.new_nodes(nodes)
        cut = network_of([Fault(0, "partition", tuple(nodes[: count // 2]), 1, shape="halves")],
                         nodes)
        applies, heals = [], []
        for _ in range(runs):
            started = time.perf_counter()
            await cluster.shape_network(cut)
            middle = time.perf_counter()
            await cluster.shape_network(Network())
            applies.append((middle - started) * 1000)
            heals.append((time.perf_counter() - middle) * 1000)
        return median(applies), median(heals)
    finally:
        await cluster.cleanup()


def figure_partition(tmp: Path, quick: bool) -> str:
    runs = 7 if quick else 21
    rows = []
    for count in (3, 20):
        measured = {}
        for backend in ("local", "netns"):
            measured[backend] = asyncio.run(
                shape_latency(backend, tmp / f"shape-{backend}-{count}", count, runs))
            rows.append([f"{backend}, {count} nodes (halves)", fmt(measured[backend][0]),
                         fmt(measured[backend][1]), ""])
        rows[-1][3] = f"{measured['netns'][0] / measured['local'][0]:.1f}x local"
        log(f"figure 2: {count} nodes: {measured}")
    return table(f"2. partition apply and heal latency, median of {runs}",
                 ["cluster", "apply ms", "heal ms", "netns vs local"], rows)


def figure_rate(tmp: Path, quick: bool) -> str:
    duration = 30.0 if quick else 90.0
    rates = {}
    rows = []
    for backend in ("local", "netns"):
        target = tmp / f"pbstore-{backend}"
        shutil.copytree(PBSTORE, target, ignore=shutil.ignore_patterns(".composer", "__pycache__"))
        project = config.load(target)
        found = templates.discover(project.templates_dir)
        from composer.cli import _capabilities

        log(f"figure 3: explore pbstore on {backend} for {duration:g}s (shrinking off)")
        result = explore(project, found, backend, _capabilities(project, backend),
                         tmp / f"rate-{backend}", duration=duration, seed=1, reruns=0,
                         shrink_budget=0.0, progress=Progress(duration, quiet=True))
        if result.stopped_early:
            raise KeyboardInterrupt
        rates[backend] = result.timelines / (result.elapsed / 60)
        rows.append([backend + (" (baseline)" if backend == "local" else ""), fmt(rates[backend]),
                     f"{rates[backend] / rates.get('local', rates[backend]):.2f}x",
                     f"{result.timelines} timelines in {result.elapsed:.1f}s, "
                     f"{len(result.findings)} finding(s)"])
    return table("3. timelines per minute, explore examples/pbstore, timelines up to 5s",
                 ["backend", "timelines/min", "vs local", "note"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter explorations")
    parser.add_argument("--only", default="123", help="figures to run, e.g. 12 (default: all)")
    args = parser.parse_args(argv)
    figures = {"1": figure_nodes, "2": figure_partition, "3": figure_rate}
    bound = {n: functools.partial(f, quick=args.quick) for n, f in figures.items()}
    return run_figures("netns", bound, args.only, args.quick)


if __name__ == "__main__":
    sys.exit(main())
