"""``composer-sync``: the sync service from a shell driver.

    composer-sync signal-entry STATE            # prints this entry's number (1..N)
    composer-sync barrier STATE N               # returns once N have entered STATE
    composer-sync signal-and-wait STATE N       # both; prints the number
    composer-sync publish TOPIC JSON            # prints the message's position
    composer-sync subscribe TOPIC --count N     # prints N messages, one JSON per line

Every wait takes ``--timeout SECONDS`` (default 60). Exit 0 done, 1 timed out or refused
by the service (the reason on stderr), 2 usage. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys

from .sync import DEFAULT_TIMEOUT, SyncClient, SyncError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer-sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="give up after this long (default: %(default)g)")
    # --timeout before or after the verb: the verbs' copy leaves the default to the top
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                       help="give up after this long")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("signal-entry", help="enter a state; print how many have",
                     parents=[after]).add_argument("state")
    for name in ("barrier", "signal-and-wait"):
        verb = verbs.add_parser(name, parents=[after], help="wait until N have entered a state"
                                + (" (after entering it)" if name != "barrier" else ""))
        verb.add_argument("state")
        verb.add_argument("target", type=int, metavar="N")
    publish = verbs.add_parser("publish", help="append a JSON message to a topic",
                               parents=[after])
    publish.add_argument("topic")
    publish.add_argument("payload", metavar="JSON")
    subscribe = verbs.add_parser("subscribe", help="print a topic's messages from the first",
                                 parents=[after])
    subscribe.add_argument("topic")
    subscribe.add_argument("--count", type=int, required=True, metavar="N")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verb == "publish":
        try:
            payload = json.loads(args.payload)
        except ValueError as exc:
            print(f"composer-sync: the message is not JSON ({exc}): {args.payload!r}",
                  file=sys.stderr)
            return 2
    try:
        with SyncClient() as client:
            if args.verb == "signal-entry":
                print(client.signal_entry(args.state, args.timeout))
            elif args.verb == "barrier":
                client.barrier(args.state, args.target, args.timeout)
            elif args.verb == "signal-and-wait":
                print(client.signal_and_wait(args.state, args.target, args.timeout))
            elif args.verb == "publish":
                print(client.publish(args.topic, payload, args.timeout))
            else:
                for message in client.subscribe(args.topic, args.count, args.timeout):
                    print(json.dumps(message), flush=True)
    except (SyncError, TimeoutError) as exc:
        print(f"composer-sync: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
