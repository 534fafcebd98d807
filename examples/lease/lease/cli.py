"""The command line: one entry point for the three services."""

from __future__ import annotations

import argparse
import os

from .common import log, serve
from .lock import LockService
from .store import Store
from .worker import Worker


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve one of the three roles until killed."""
    parser = argparse.ArgumentParser(
        prog="lease", description="A lock service, a store and workers (see README.md).")
    parser.add_argument("role", choices=("lock", "store", "worker"))
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--data", required=True, metavar="DIR", help="kept across restarts")
    parser.add_argument("--name", help="worker: its name, the lease owner")
    parser.add_argument("--lock", metavar="HOST:PORT", help="worker: the lock service")
    parser.add_argument("--store", metavar="HOST:PORT", help="worker: the store")
    args = parser.parse_args(argv)
    if args.role == "worker" and not (args.name and args.lock and args.store):
        parser.error("a worker needs --name, --lock and --store")
    bug = os.environ.get("LEASE_BUG", "1") != "0"
    os.makedirs(args.data, exist_ok=True)
    if args.role == "worker":
        log(f"worker {args.name}: planted bug {'on' if bug else 'off'}")
        service: LockService | Store | Worker = Worker(args.name, args.lock, args.store,
                                                       args.data, bug)
    else:
        service = LockService(args.data) if args.role == "lock" else Store(args.data)
    serve(args.listen, service.routes(), args.role)
