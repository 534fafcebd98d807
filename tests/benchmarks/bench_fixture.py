#!/usr/bin/env python3
"""Figures of ``composer up`` fixtures, printed as a table (asserts nothing about time).

    python3 tests/benchmarks/bench_fixture.py [--runs 5] [--clusters local,netns]

For examples/kvstore on each backend, median of ``--runs``:

- ``composer up`` from the command's start to its return (the cluster ready, the
  fixture directory written), against ``composer run``'s setup on the same project:
  from the command's start to its "setup complete" event (the baseline: the same
  cluster and services, brought up for one timeline);
- ``control kill`` then ``control start`` of one replica (its service killed, restarted
  and ready again), as a shell test calls them: the round trip in milliseconds;
- ``composer down`` to the fixture's removal.

Not collected by pytest; netns needs root.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_local import fmt, log, median, table

REPO = Path(__file__).resolve().parents[2]


def composer(*args: str) -> list[str]:
    return [sys.executable, "-m", "composer.cli", *args]


def run_setup(project: Path, cluster: str) -> float:
    """Seconds from ``composer run``'s start to its "setup complete" event."""
    started = time.perf_counter()
    process = subprocess.Popen(composer("run", str(project), "--cluster", cluster, "--seed", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seconds = None
    for line in process.stdout:
        if "setup complete" in line:
            seconds = time.perf_counter() - started
            break
    process.terminate()
    process.communicate()
    if seconds is None:
        raise SystemExit(f"composer run on {cluster} never completed setup")
    return seconds


def fixture_once(project: Path, cluster: str, scratch: Path) -> tuple[float, float, float]:
    """Return (up s, kill+start ms, down s)."""
    fixture = scratch / f"fixture-{cluster}"
    started = time.perf_counter()
    subprocess.run(composer("up", str(project), "--cluster", cluster, "--fixture", str(fixture)),
                   check=True, stdout=subprocess.DEVNULL)
    up = time.perf_counter() - started
    control = fixture / "kv-2" / "control"
    started = time.perf_counter()
    subprocess.run([str(control), "kill"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(control), "start"], check=True, stdout=subprocess.DEVNULL)
    bounce = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    subprocess.run(composer("down", str(fixture)), check=True, stdout=subprocess.DEVNULL)
    return up, bounce, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clusters", default="local,netns")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fixture-") as scratch:
        project = Path(scratch) / "kvstore"
        shutil.copytree(REPO / "examples" / "kvstore", project,
                        ignore=shutil.ignore_patterns(".composer"))
        for cluster in args.clusters.split(","):
            ups, bounces, downs, setups = [], [], [], []
            for run in range(args.runs):
                setups.append(run_setup(project, cluster))
                up, bounce, down = fixture_once(project, cluster, Path(scratch))
                ups.append(up)
                bounces.append(bounce)
                downs.append(down)
                log(f"{cluster} run {run + 1}: run's setup {setups[-1]:.2f}s, up {up:.2f}s, "
                    f"kill+start {bounce:.0f}ms, down {down:.2f}s")
            rows.append([cluster, fmt(median(setups), 2), fmt(median(ups), 2),
                         fmt(median(ups) / median(setups), 2), fmt(median(bounces), 0),
                         fmt(median(downs), 2)])
    print(table(f"composer up on examples/kvstore (median of {args.runs})",
                ["backend", "run's setup s (baseline)", "up s", "ratio", "kill+start ms",
                 "down s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
