#!/usr/bin/env python3
"""The aws backend's own cost, from launch to ready agents, printed as a table (asserts
nothing about time).

    python3 tests/benchmarks/bench_aws_boot.py [--runs 3] [--nodes 4]

moto in server mode is EC2 and S3 and network namespaces play the instances, running
the user data composer wrote (``tests/e2e/ec2.py``), so this measures everything but
EC2's own boot (tens of seconds): building and uploading the agent wheel, the launch,
minting and publishing the run's certificates, the boot script (fetching and unpacking
the wheel, polling for the certificates, starting the agent) and the first heartbeats;
then terminating. The baseline is the same number of agents started directly
(``python -m composer_agent serve`` in namespaces, as ``--cluster agents`` users run
them): the ratio is what the aws backend adds. Root; not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_local import fmt, log, median, table  # noqa: E402
from tests.agent.support import Namespace, start_agent  # noqa: E402
from tests.e2e.ec2 import Instances, Vpc  # noqa: E402


def fleet_once(vpc: Vpc, nodes: int, scratch: Path) -> tuple[float, float]:
    """Return (launch to ready s, close s) of one fleet of ``nodes``."""
    from composer import aws
    from composer.aws.fleet import Fleet

    reset(vpc)
    aws.bootstrap(aws.load(), say=lambda _: None)
    played = Instances(vpc, scratch)
    try:
        started = time.perf_counter()
        fleet = Fleet(aws.load({"max_instances": nodes}), nodes, say=lambda _: None, poll=0.2)
        with fleet:
            ready = time.perf_counter() - started
            started = time.perf_counter()
        return ready, time.perf_counter() - started
    finally:
        played.close()


def direct_once(nodes: int, scratch: Path) -> float:
    """Return the seconds until ``nodes`` agents started directly answer."""
    from composer_agent.certs import Authority

    namespace = Namespace.create()
    try:
        authority = Authority.create(scratch / "ca")
        addresses = [namespace.address] + [namespace.add_address() for _ in range(nodes - 1)]
        started = time.perf_counter()
        server = authority.issue(scratch / "ca", "server", server=True, hosts=addresses)
        agents = [start_agent(namespace, server, scratch / f"agent-{a}.stderr", address=a)
                  for a in addresses]  # each returns once it listens
        seconds = time.perf_counter() - started
        for agent in agents:
            agent.stop()
        return seconds
    finally:
        namespace.delete()


def reset(vpc: Vpc) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{vpc.moto_url}/moto-api/reset", data=b"",
                                                  method="POST")).close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4)
    args = parser.parse_args(argv)
    fleets, closes, directs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-aws-boot-") as scratch, Vpc.running() as vpc:
        os.environ.update({k: v for k, v in vpc.environment().items()
                           if k.startswith(("AWS_", "COMPOSER_AWS_"))})
        for run in range(args.runs):
            ready, close = fleet_once(vpc, args.nodes, Path(scratch) / f"fleet-{run}")
            direct = direct_once(args.nodes, Path(scratch) / f"direct-{run}")
            log(f"run {run + 1}: fleet ready {ready:.2f}s, closed {close:.2f}s; "
                f"direct agents {direct:.2f}s")
            fleets.append(ready)
            closes.append(close)
            directs.append(direct)
    print(table(f"{args.nodes} agents from nothing to answering (median of {args.runs}; no "
                "EC2 boot time)",
                ["how", "ready s", "ratio", "terminate s"],
                [["agents started directly (baseline)", fmt(median(directs), 2), "1.00", "-"],
                 ["aws fleet: wheel, launch, user data, certificates, heartbeat",
                  fmt(median(fleets), 2), fmt(median(fleets) / median(directs), 2),
                  fmt(median(closes), 2)]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
