#!/usr/bin/env python3
"""Scale-out: timelines per minute with --jobs 1, 2, 4, and through a local Ray cluster.

    python3 tests/benchmarks/bench_jobs.py [--runs N] [--seconds S] [--jobs 1,2,4]
        [--no-ray]

For kvstore (local backend) and pbstore (netns), with their bugs off and the uniform
generator (so every arm draws timelines of the same lengths), ``composer explore`` runs
S seconds per arm, one arm at a time, N times: timelines per minute (median) and its
ratio to --jobs 1, the machine's CPU use meanwhile (cores busy, from /proc/stat: the
services and drivers count, wherever they run), and the wall clock per timeline. Then
kvstore through a Ray cluster of a head and a worker node on this machine (one CPU
each, so two timelines at once) against --jobs 2 in threads: Ray's overhead per
timeline in ms. Last, a scaling model from the measured figures (see the README).
Everything lives under one temporary directory, removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import EXAMPLES, copy_example, log, table  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class Arm:
    example: str
    cluster: str
    jobs: int
    ray: str | None = None

    @property
    def label(self) -> str:
        where = f"ray ({self.jobs} CPUs)" if self.ray else f"--jobs {self.jobs}"
        return f"{self.example} ({self.cluster}), {where}"


@dataclass(frozen=True)
class Measure:
    per_minute: float
    #: cores busy on the whole machine, on average
    cores: float
    #: wall clock per timeline and job, seconds (elapsed x jobs / timelines)
    per_timeline: float
    #: seconds of the search's own work per timeline (drawing and learning)
    search: float


def _busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def measure(arm: Arm, project: Path, seconds: float, seed: int) -> Measure:
    example = EXAMPLES[arm.example]
    argv = [sys.executable, "-m", "composer.cli", "explore", str(project), "--json",
            "--quiet", "--cluster", arm.cluster, "--duration", f"{seconds:g}s",
            "--generator", "random", "--reruns", "0", "--shrink-budget", "0.01s",
            "--seed", str(seed)]
    argv += ["--ray", arm.ray] if arm.ray else ["--jobs", str(arm.jobs)]
    busy, total = _busy()
    done = subprocess.run(argv, env={**ENV, example.bug_env: "0"}, capture_output=True,
                          text=True, timeout=seconds + 600, cwd=project)
    busy2, total2 = _busy()
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{arm.label}: exit {done.returncode}\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    timelines, elapsed = summary["timelines"], summary["elapsed_seconds"]
    cores = (busy2 - busy) / (total2 - total) * os.cpu_count()
    return Measure(60 * timelines / elapsed, cores, elapsed * arm.jobs / timelines,
                   summary["search"]["seconds"] / timelines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ray() -> str:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    for extra in (["--head", f"--port={port}", "--include-dashboard=false"],
                  [f"--address={address}"]):
        subprocess.run([RAY, "start", *extra, "--num-cpus=1", "--disable-usage-stats",
                        "--node-ip-address=127.0.0.1"],
                       env=ENV, check=True, capture_output=True, timeout=120)
    return address


def stop_ray() -> None:
    subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--jobs", default="1,2,4")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(j) for j in args.jobs.split(",")]
    arms = [Arm(name, cluster, jobs) for name, cluster in (("kvstore", "local"),
                                                          ("pbstore", "netns"))
            for jobs in counts]
    tmp = Path(tempfile.mkdtemp(prefix="composer-bench-jobs-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[Arm, list[Measure]] = {}
    ray_address = None
    try:
        if not args.no_ray:
            ray_address = start_ray()
            arms.append(Arm("kvstore", "local", 2, ray_address))
        for run in range(1, args.runs + 1):
            for arm in arms:
                log(f"run {run}/{args.runs}: {arm.label}, {args.seconds:g}s")
                project = copy_example(arm.example, tmp, f"{arm.jobs}-{run}")
                results.setdefault(arm, []).append(measure(arm, project, args.seconds, run))
                shutil.rmtree(project, ignore_errors=True)
                m = results[arm][-1]
                log(f"  {m.per_minute:.1f}/min, {m.cores:.2f} cores, "
                    f"{m.per_timeline:.2f}s per timeline")
    finally:
        if ray_address:
            stop_ray()
        shutil.rmtree(tmp, ignore_errors=True)
    median = {arm: Measure(*(statistics.median(getattr(m, f) for m in ms)
                             for f in ("per_minute", "cores", "per_timeline", "search")))
              for arm, ms in results.items()}
    rows = []
    for arm, m in median.items():
        base = median[Arm(arm.example, arm.cluster, 1)] if 1 in counts else m
        rows.append([arm.label, f"{m.per_minute:.1f}", f"{m.per_minute / base.per_minute:.2f}x",
                     f"{m.cores:.2f}", f"{m.per_timeline:.2f}"])
    print(table(f"Timelines per minute, median of {args.runs} runs of {args.seconds:g}s "
                "(bugs off, uniform draws, one arm at a time)",
                ["arm", "timelines/min", "vs --jobs 1", "cores busy", "s per timeline"], rows))
    threads = median.get(Arm("kvstore", "local", 2))
    ray_arm = next((a for a in median if a.ray), None)
    overhead = None
    if threads and ray_arm:
        overhead = median[ray_arm].per_timeline - threads.per_timeline
        print(f"\nRay's overhead per timeline (kvstore, 2 at once, Ray against threads): "
              f"{overhead * 1000:.0f} ms")
    one = median.get(Arm("kvstore", "local", 1))
    if one:
        print(model(one, max(0.0, overhead or 0.0)))
    return 0


def model(one: Measure, ray_overhead: float) -> str:
    """Timelines per hour for W workers, each running one kvstore timeline at a time on
    its own cores: W / (timeline + Ray's overhead), capped by what one composer can feed
    (1 / the search's own seconds per timeline, which stays on the head)."""
    per_timeline = one.per_timeline + ray_overhead
    cap = 3600 / one.search if one.search > 0 else float("inf")
    rows = [[str(w), f"{w * 3600 / per_timeline:,.0f}", f"{min(w * 3600 / per_timeline, cap):,.0f}"]
            for w in (8, 64, 512)]
    return "\n" + table(
        f"Scaling model (kvstore: {one.per_timeline:.2f}s per timeline and {one.cores:.2f} "
        f"cores at --jobs 1, Ray {ray_overhead * 1000:.0f} ms, search "
        f"{one.search * 1000:.1f} ms per timeline on the head)",
        ["workers", "timelines/hour (workers only)", "capped by one head"], rows)


if __name__ == "__main__":
    sys.exit(main())
