#!/usr/bin/env python3
"""Timelines per minute: today's searches against the default search of an older tree.

    python3 tests/benchmarks/bench_throughput.py [--rev REV] [--seeds N] [--seconds S]
        [--examples kvstore,pbstore,ledger,lease,leader]

For each example and seed, three explorations run at once for S seconds with the
example's bug switched off (nothing stops or shrinks them): ``--generator guided`` and
``--generator random`` of this tree, and the default generator of ``REV`` (default
e2deb7a, the tree issue 12 was filed against: Hypothesis drawing timelines), checked out
into a temporary git worktree and run with the same Python. Printed: the median
timelines per minute of each, and guided's as a share of REV's and of random's. The
three share the machine equally, so compare the ratios. Everything (worktree, example
copies) lives under one temporary directory, removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import EXAMPLES, REPO, copy_example, log, table  # noqa: E402

ARMS = ("then", "guided", "random")


def rate(example, project: Path, arm: str, seed: int, seconds: float, then: Path) -> float:
    """Timelines per minute of one exploration with the example's bug off."""
    env = {**os.environ, example.bug_env: "0"}
    argv = [sys.executable, "-m", "composer.cli", "explore", str(project), "--json",
            "--quiet", "--cluster", example.cluster, "--duration", f"{seconds:g}s",
            "--reruns", "0", "--shrink-budget", "0.01s", "--seed", str(seed)]
    if arm == "then":  # the old tree first on the path: it imports as composer
        env["PYTHONPATH"] = os.pathsep.join([str(then), env.get("PYTHONPATH", "")])
    else:
        argv += ["--generator", arm]
    done = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=seconds + 600, cwd=project)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{example.name} {arm} seed {seed}: exit {done.returncode}\n"
                           f"{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    return 60 * summary["timelines"] / summary["elapsed_seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="e2deb7a", help="the older tree (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--examples", default="kvstore,pbstore,ledger,lease,leader")
    args = parser.parse_args(argv)
    unknown = [n for n in args.examples.split(",") if n not in EXAMPLES]
    if unknown:
        parser.error(f"unknown example(s) {unknown}; known: {', '.join(EXAMPLES)}")
    tmp = Path(tempfile.mkdtemp(prefix="composer-bench-throughput-"))
    then = tmp / "then"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(then), args.rev], check=True)
        rows = []
        for name in args.examples.split(","):
            example = EXAMPLES[name]
            rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for seed in range(1, args.seeds + 1):
                log(f"{name}: seed {seed}/{args.seeds}, {args.seconds:g}s each")
                projects = {arm: copy_example(name, tmp, f"{arm}-{seed}") for arm in ARMS}
                with ThreadPoolExecutor(max_workers=len(ARMS)) as pool:
                    futures = {arm: pool.submit(rate, example, projects[arm], arm, seed,
                                                args.seconds, then) for arm in ARMS}
                    for arm, future in futures.items():
                        rates[arm].append(future.result())
                for project in projects.values():
                    shutil.rmtree(project, ignore_errors=True)
                log(f"{name} seed {seed}: " + ", ".join(
                    f"{arm} {rates[arm][-1]:.1f}" for arm in ARMS))
            median = {arm: statistics.median(rates[arm]) for arm in ARMS}
            rows.append([name] + [f"{median[arm]:.1f}" for arm in ARMS]
                        + [f"{median['guided'] / median['then']:.0%}",
                           f"{median['guided'] / median['random']:.0%}"])
        print(table(f"Timelines per minute, median of {args.seeds} seeds, {args.seconds:g}s "
                    f"each, bugs off, three at once ('then' = the default search at "
                    f"{args.rev})", ["example", "then", "guided", "random",
                                     "guided/then", "guided/random"], rows))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(then)],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
