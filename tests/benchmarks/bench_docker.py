#!/usr/bin/env python3
"""Figures of the ``docker`` backend, printed as tables (asserts nothing about time).
Needs root, a Docker engine and the node image (``bash docker/setup-engine &&
bash docker/build-node``).

    python3 tests/benchmarks/bench_docker.py [--quick] [--only 123]

1. container node start to ready (``new_nodes`` of one node until a command runs in
   it), median ms, against ``docker run -d`` of the same image from the CLI followed by
   ``docker exec true``.
2. 10 nodes started concurrently (one ``new_nodes``) against one after another.
3. timelines per minute during ``explore`` of examples/etcd (a real 3-node etcd),
   ``docker`` against ``netns`` (same duration, timeline length, seed and fault kinds;
   shrinking off). Needs ``etcd`` on the host for ``netns``.

Medians of several runs; ratios against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_local import fmt, log, median, run_figures, table

from composer import clusters, config, templates
from composer.clusters.base import ProcessSpec
from composer.clusters.docker import IMAGE
from composer.explore import explore
from composer.progress import Progress

REPO = Path(__file__).resolve().parents[2]
ETCD = REPO / "examples" / "etcd"


async def _ready(cluster, names: list[str], tmp: Path, together: bool) -> None:
    nodes = (await cluster.new_nodes(names) if together else
             [n for name in names for n in await cluster.new_nodes([name])])
    for node in nodes:  # ready: a command runs inside
        spec = ProcessSpec(("true",), None, Path("/"), tmp / "out", tmp / "err")
        await (await node.start(spec)).wait()


def start_nodes(tmp: Path, count: int, together: bool) -> float:
    """Return ms from nothing to ``count`` nodes that each ran a command."""
    async def main() -> float:
        cluster = clusters.create("docker", tmp)
        try:
            started = time.perf_counter()
            await _ready(cluster, [f"n-{i}" for i in range(count)], tmp, together)
            return (time.perf_counter() - started) * 1000
        finally:
            await cluster.cleanup()
    return asyncio.run(main())


def docker_cli() -> float:
    started = time.perf_counter()
    name = f"composer-bench-{time.monotonic_ns()}"
    subprocess.run(["docker", "run", "-d", "--init", "--name", name, "--label",
                    "composer.bench=1", IMAGE, "sleep", "infinity"], check=True,
                   capture_output=True)
    subprocess.run(["docker", "exec", name, "true"], check=True)
    elapsed = (time.perf_counter() - started) * 1000
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return elapsed


def figure_start(tmp: Path, quick: bool) -> str:
    runs = 3 if quick else 9
    log(f"figure 1: {runs} x one node, composer and docker run")
    ours = [start_nodes(tmp, 1, True) for _ in range(runs)]
    cli = [docker_cli() for _ in range(runs)]
    return table(f"1. container node start to ready, ms (median of {runs})",
                 ["path", "ms", "ratio"],
                 [["docker run -d + docker exec true (baseline)", fmt(median(cli)), "1.00x"],
                  ["composer docker node", fmt(median(ours)),
                   f"{median(ours) / median(cli):.2f}x"]])


def figure_parallel(tmp: Path, quick: bool) -> str:
    runs = 2 if quick else 5
    log(f"figure 2: {runs} x 10 nodes, one after another and together")
    alone = [start_nodes(tmp, 10, False) for _ in range(runs)]
    together = [start_nodes(tmp, 10, True) for _ in range(runs)]
    return table(f"2. 10 container nodes to ready, ms (median of {runs})",
                 ["how", "ms", "ratio"],
                 [["one after another (baseline)", fmt(median(alone)), "1.00x"],
                  ["concurrently", fmt(median(together)),
                   f"{median(together) / median(alone):.2f}x"]])


def explore_rate(tmp: Path, backend: str, duration: float, faults: frozenset[str]
                 ) -> tuple[int, float, int]:
    """Explore a copy of examples/etcd on ``backend`` for ``duration`` s (seed 1, no
    shrinking or re-runs, only ``faults``); return (timelines, seconds, findings)."""
    from composer.cli import _capabilities

    target = tmp / f"etcd-{backend}"  # explore writes .composer/ into the project
    shutil.copytree(ETCD, target, ignore=shutil.ignore_patterns(".composer", "__pycache__"))
    project = config.load(target)
    caps = _capabilities(project, backend).restricted(tuple(faults))
    run_dir = tmp / f"etcd-rate-{backend}"
    log(f"figure 3: explore etcd on {backend} for {duration:g}s (timelines up to "
        f"{project.explore.timeline:g}s, faults {','.join(sorted(caps.faults))}, "
        "shrinking off)")
    result = explore(project, templates.discover(project.templates_dir), backend, caps,
                     run_dir, duration=duration, seed=1, reruns=0, shrink_budget=0.0,
                     progress=Progress(duration, quiet=True))
    if result.stopped_early:
        raise KeyboardInterrupt
    # result.timelines, not the directories under run_dir/timelines: explore keeps only
    # the last KEEP_PASSING passing ones
    for finding in result.findings.values():
        log(f"figure 3: {backend}: finding {finding.property!r}")
    return result.timelines, result.elapsed, len(result.findings)


def figure_etcd_rate(tmp: Path, quick: bool) -> str:
    duration = 45.0 if quick else 120.0
    # the same fault kinds on both, so one seed draws from the same choices
    faults = clusters.capabilities("netns") & clusters.capabilities("docker")
    measured = {b: explore_rate(tmp, b, duration, faults) for b in ("netns", "docker")}
    rate = {b: n / (s / 60) if s else float("nan") for b, (n, s, _) in measured.items()}
    rows = [[b + (" (baseline)" if b == "netns" else ""), str(n), fmt(s), fmt(rate[b]),
             str(found), f"{rate[b] / rate['netns']:.2f}x"]
            for b, (n, s, found) in measured.items()]
    timeline = config.load(tmp / "etcd-netns").explore.timeline
    return table(f"3. timelines per minute, explore examples/etcd (3 etcd nodes), "
                 f"{duration:g}s each, timelines up to {timeline:g}s, seed 1, shrinking off, "
                 f"faults {','.join(sorted(faults))}",
                 ["backend", "timelines", "seconds", "timelines/min", "findings",
                  "ratio docker/netns"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter explorations")
    parser.add_argument("--only", default="123", help="figures to run (default: all)")
    args = parser.parse_args(argv)
    figures = {"1": figure_start, "2": figure_parallel, "3": figure_etcd_rate}
    bound = {n: functools.partial(f, quick=args.quick) for n, f in figures.items()}
    return run_figures("docker", bound, args.only, args.quick)


if __name__ == "__main__":
    sys.exit(main())
