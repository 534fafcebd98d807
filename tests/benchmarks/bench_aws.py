#!/usr/bin/env python3
"""Figures of the AWS layer against moto in server mode, printed as a table (asserts
nothing about time).

    python3 tests/benchmarks/bench_aws.py [--runs 3] [--sizes 5,20,100]

For each cluster size: the RunInstances calls of one launch (the design says 1, all or
nothing), every AWS call of it (finding the bootstrap's subnet, group and profile, the
launch, waiting for ``running``), and the wall time of composer's side of
``composer.aws.launch`` and ``terminate``, median of ``--runs``: the HTTP round trips
and moto's own work (it runs in this process), with boto3's clients already made. moto
says ``running`` at once, so this is what composer adds, not how long EC2 takes to boot
(tens of seconds). Each launch starts from a freshly reset moto with a new bootstrap
(not timed). Needs boto3
and moto[server] (``pip install 'composer-dst[test]'``); nothing reaches AWS: the
credentials are fake and AWS_ENDPOINT_URL points at moto on 127.0.0.1. Not collected
by pytest.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import urllib.request
from collections import Counter

from bench_local import fmt, log, median, table

REGION = "eu-west-1"
SCRIPT = "#!/bin/sh\necho agent\n"


def start_moto() -> tuple[object, str]:
    """Start moto on a free port; point boto3 at it with fake credentials."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                      AWS_EC2_METADATA_DISABLED="true", AWS_ENDPOINT_URL=url)
    return server, url


def reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", data=b"",
                                                  method="POST")).close()


def one_launch(url: str, size: int) -> tuple[float, float, Counter]:
    """Return (launch s, terminate s, calls of the launch) of one ``size``-node run."""
    from composer import aws

    reset(url)
    settings = aws.load({"region": REGION, "ami": "ami-12345678", "max_instances": size})
    aws.bootstrap(settings, lambda _: None)
    conn = aws.connect(settings)  # a fresh connection: its clients see the hook
    calls: Counter = Counter()
    conn.session.events.register(
        "before-call.*.*", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[-1]]))
    conn.ec2, conn.iam  # make the clients (loading boto3's models) before timing
    started = time.perf_counter()
    launched = aws.launch(settings, f"bench-{size}", size, SCRIPT, aws=conn)
    launch = time.perf_counter() - started
    assert len(launched) == size
    counted = Counter(calls)
    started = time.perf_counter()
    aws.terminate(settings, f"bench-{size}", aws=conn, poll=0.05)
    return launch, time.perf_counter() - started, counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="launches per size (median)")
    parser.add_argument("--sizes", default="5,20,100", help="cluster sizes, comma-separated")
    args = parser.parse_args(argv)
    server, url = start_moto()
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            launches, terminates, counts = [], [], []
            for run in range(args.runs):
                launch, terminate, calls = one_launch(url, size)
                launches.append(launch)
                terminates.append(terminate)
                counts.append(calls)
                log(f"{size} nodes, run {run + 1}: launch {launch:.3f}s, terminate "
                    f"{terminate:.3f}s, calls {dict(calls)}")
            runs = {c["RunInstances"] for c in counts}
            total = {sum(c.values()) for c in counts}
            rows.append([str(size), "/".join(map(str, sorted(runs))),
                         "/".join(map(str, sorted(total))), fmt(median(launches), 3),
                         fmt(1000 * median(launches) / size, 1), fmt(median(terminates), 3)])
    finally:
        server.stop()
    print(table(f"composer.aws.launch against moto (median of {args.runs}; composer's side "
                "and moto's work, no boot time)",
                ["nodes", "RunInstances calls", "AWS calls", "launch s", "ms per node",
                 "terminate s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
