#!/usr/bin/env python3
"""Whole projects on agents: what the agent costs a timeline, and what sending a project
costs, first and cached.

    python3 tests/benchmarks/bench_agent_projects.py [--seconds S] [--seeds N] [--mib M]

As root. Four agents, each in a network namespace of its own and seeing an empty private
tmpfs where the project is (``tests.agent.support.Hosts``: machines that share no files
with composer). Timelines per minute: kvstore with its bug off (``KVSTORE_BUG=0``, so
no failure cuts the search short), ``--generator random``, on ``agents`` and on
``netns`` one after the other per seed; the ratio is the agents' overhead. Project sync:
a project of M MiB of random files (incompressible: the worst case) given to one agent
by ``Mirror.attach``, first (packed, sent, unpacked) and again unchanged (the digest
matches: nothing sent); median of three. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import log, table  # noqa: E402
from composer import clusters  # noqa: E402
from composer_agent.certs import Authority  # noqa: E402
from tests.agent.support import Hosts, start_agent, write_agents_file  # noqa: E402


def agents_on_hosts(count: int, work: Path, hidden: Path) -> tuple[Hosts, list, Path]:
    ca = Authority.create(work / "ca")
    client = ca.issue(work / "client", "client", server=False)
    hosts = Hosts.create(count)
    started = []
    for index, host in enumerate(hosts.hosts):
        server = ca.issue(work / f"server-{index}", "server", server=True, hosts=[host.address])
        started.append(start_agent(host, server, work / f"agent-{index}.stderr",
                                   root=hidden / f"root-{index}", hide=hidden))
    return hosts, started, write_agents_file(work / "agents.toml", client, started)


def timelines_per_minute(project: Path, backend: str, seconds: int, seed: int,
                         agents: Path | None) -> float:
    shutil.rmtree(project / ".composer", ignore_errors=True)
    extra = ["--agents", str(agents)] if agents else []
    subprocess.run([sys.executable, "-m", "composer.cli", "explore", str(project), "--cluster",
                    backend, *extra, "--duration", f"{seconds}s", "--seed", str(seed),
                    "--generator", "random", "--quiet"], capture_output=True, cwd=REPO,
                   env={**os.environ, "KVSTORE_BUG": "0"}, timeout=seconds * 4 + 120)
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    summary = json.loads((run / "summary.json").read_text())
    return summary["timelines"] * 60 / summary["elapsed_seconds"]


def sync_seconds(agents: Path, work: Path, mib: int) -> tuple[float, float]:
    from composer.clusters.agent_mirror import Mirror

    project = work / "far" / "big-project"
    project.mkdir(parents=True, exist_ok=True)
    for index in range(mib):
        (project / f"blob-{index:03d}.bin").write_bytes(os.urandom(1 << 20))

    async def attach_twice() -> tuple[float, float]:
        cluster = clusters.create("agents", work / "far" / "run", agents=agents)
        try:
            [node] = await cluster.new_nodes(["n"])  # attaches once, as a run does
            times = []
            for _ in range(2):
                mirror = Mirror(work / "far" / "run", [project])
                began = time.monotonic()
                await mirror.attach([node])
                times.append(time.monotonic() - began)
            return times[0], times[1]
        finally:
            await cluster.cleanup()

    shutil.rmtree(project / ".composer", ignore_errors=True)
    return asyncio.run(attach_twice())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--mib", type=int, default=50)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, mount namespaces)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    hidden = work / "far"
    hidden.mkdir()
    hosts, started, agents = agents_on_hosts(4, work, hidden)
    try:
        project = hidden / "kvstore"
        shutil.copytree(REPO / "examples" / "kvstore", project,
                        ignore=shutil.ignore_patterns(".composer", "__pycache__"))
        rows = []
        for seed in range(1, args.seeds + 1):
            log(f"seed {seed}: kvstore on agents, then on netns, {args.seconds}s each")
            on_agents = timelines_per_minute(project, "agents", args.seconds, seed, agents)
            on_netns = timelines_per_minute(project, "netns", args.seconds, seed, None)
            rows.append((on_agents, on_netns))
        agents_rate = statistics.median(r[0] for r in rows)
        netns_rate = statistics.median(r[1] for r in rows)
        print(table(f"kvstore timelines per minute (bug off, random, {args.seconds}s, median "
                    f"of {args.seeds})", ["backend", "timelines/min", "ratio to netns"],
                    [["netns", f"{netns_rate:.1f}", "1.00"],
                     ["agents (4 namespaces, no shared files)", f"{agents_rate:.1f}",
                      f"{agents_rate / netns_rate:.2f}"]]))
        firsts, cached = [], []
        for _ in range(3):
            log(f"project sync: {args.mib} MiB to one agent")
            first, again = sync_seconds(agents, work, args.mib)
            firsts.append(first)
            cached.append(again)
        print(table(f"Sending a {args.mib} MiB project to an agent (median of 3)",
                    ["", "seconds"], [["first", f"{statistics.median(firsts):.2f}"],
                                      ["unchanged (cached)", f"{statistics.median(cached):.2f}"]]))
        return 0
    finally:
        for agent in started:
            agent.stop()
        hosts.delete()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
