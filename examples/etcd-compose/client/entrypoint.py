#!/usr/bin/env python3
"""The client container's entrypoint: wait for the etcd cluster, say setup is complete,
then sleep until stopped.

Every member must answer ``/health`` with true (a quorum read: the cluster has a leader)
within WAIT seconds, else this exits 1 and says why: the run cannot start. Then
``setup_complete`` tells composer (or Antithesis) to start the test commands, which run
in this container next to this process. SIGTERM or SIGINT ends the sleep with exit 0.
"""

from __future__ import annotations

import signal
import sys
import time

import etcdclient as etcd
from antithesis.lifecycle import setup_complete

WAIT = 60.0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    endpoints = etcd.endpoints()
    print(f"client: waiting up to {WAIT:g}s for {', '.join(endpoints)}", flush=True)
    sick, took = etcd.wait_healthy(WAIT)
    if sick:
        print(f"client: etcd members not healthy after {took:.0f}s: {', '.join(sick)}",
              file=sys.stderr, flush=True)
        return 1
    ok, seen, _ = etcd.wait_converged(10.0)
    setup_complete({"endpoints": endpoints, "converged": ok, "status": seen,
                    "waited": round(took, 1)})
    print(f"client: etcd healthy after {took:.1f}s ({seen}); setup complete", flush=True)
    while True:  # the test commands run beside this process
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
