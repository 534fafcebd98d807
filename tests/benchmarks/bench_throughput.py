#!/usr/bin/env python3
"""Timelines per minute: today's searches against the default search of an older tree.

    python3 tests/benchmarks/bench_throughput.py [--rev REV] [--seeds N] [--seconds S]
        [--examples kvstore,pbstore,ledger,lease,leader]

For each example and seed, three explorations run at once for S seconds with the
example's bug switched off (nothing stops or shrinks them): ``--generator guided`` and
``--generator random`` of this tree, and the default generator of ``REV`` (default
e2deb7a, the tree issue 12 was filed against: Hypothesis drawing timelines), checked out
into a temporary git worktree and run with the same Python. Printed: the median
timelines per minute of each, and guided's as a share of REV's and of random's; then,
because timelines per minute depend as much on how long the timelines a search chooses
are as on composer, the mean planned driver phase and the overhead per timeline (wall
clock beyond the driver phases: setup, first_ commands, heal, checks, teardown, the
search itself), read the same way on every tree from the timelines' directories (every
passing timeline is kept for that). The three share the machine equally, so compare the
ratios. Everything (worktree, example
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import EXAMPLES, REPO, copy_example, log, table  # noqa: E402

ARMS = ("then", "guided", "random")


#: runs composer's command line keeping every passing timeline's directory (both trees
#: have ``KEEP_PASSING``), so that every timeline's planned length can be read back
KEEP_ALL = ("import sys, composer.explore as e; e.KEEP_PASSING = 10 ** 6; "
            "from composer.cli import main; sys.exit(main(sys.argv[1:]))")


@dataclass(frozen=True)
class Rate:
    per_minute: float
    #: mean planned driver phase, seconds
    length: float
    #: wall clock per timeline beyond its driver phase, seconds
    overhead: float


def rate(example, project: Path, arm: str, seed: int, seconds: float, then: Path) -> Rate:
    """Timelines per minute of one exploration with the example's bug off."""
    env = {**os.environ, example.bug_env: "0"}
    argv = [sys.executable, "-c", KEEP_ALL, "explore", str(project), "--json",
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
    timelines, elapsed = summary["timelines"], summary["elapsed_seconds"]
    lengths = [json.loads(path.read_text())["length"]
               for path in (project / ".composer" / "runs").glob("*/timelines/*/timeline.json")]
    if len(lengths) != timelines:
        raise RuntimeError(f"{example.name} {arm} seed {seed}: {len(lengths)} timeline "
                           f"directories for {timelines} timelines")
    return Rate(60 * timelines / elapsed, statistics.mean(lengths),
                (elapsed - sum(lengths)) / timelines)


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
        rows: list[list[str]] = []
        lengths: list[list[str]] = []
        overheads: list[list[str]] = []
        for name in args.examples.split(","):
            example = EXAMPLES[name]
            rates: dict[str, list[Rate]] = {arm: [] for arm in ARMS}
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
                    f"{arm} {r.per_minute:.1f}/min ({r.length:.2f}s + {r.overhead:.2f}s)"
                    for arm, r in ((arm, rates[arm][-1]) for arm in ARMS)))
            for field, unit, row in (("per_minute", "", rows), ("length", "s", lengths),
                                     ("overhead", "s", overheads)):
                median = {arm: statistics.median(getattr(r, field) for r in rates[arm])
                          for arm in ARMS}
                row.append([name] + [f"{median[arm]:.2f}{unit}" for arm in ARMS]
                           + [f"{median['guided'] / median['then']:.0%}",
                              f"{median['guided'] / median['random']:.0%}"])
        head = ["example", "then", "guided", "random", "guided/then", "guided/random"]
        what = (f"median of {args.seeds} seeds, {args.seconds:g}s each, bugs off, three at "
                f"once ('then' = the default search at {args.rev})")
        print(table(f"Timelines per minute, {what}", head, rows))
        print(table("Mean planned driver phase per timeline (the search's choice), seconds",
                    head, lengths))
        print(table("Overhead per timeline (wall clock beyond the driver phase), seconds",
                    head, overheads))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(then)],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
