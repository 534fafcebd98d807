#!/usr/bin/env python3
"""The load generator of examples/kvstore-services: one writer, then a read-back.

    python3 loadgen.py --primary HOST:PORT --seconds 4 --warmup 1

Writes fresh keys to the primary, one after another, for ``--seconds``; a refused or
timed-out write is counted as failed and retried with the next key 20 ms later. Prints
``warm`` once it has been writing for ``--warmup`` seconds (the service is alive then,
so a test has throughput from before whatever it does next), and at the end one JSON
line: ``{"acked", "failed", "read_back", "acks"}`` where ``read_back`` counts the
acknowledged writes the primary still holds and ``acks`` are the acknowledgements'
wall-clock times. Standard library only: it runs on any node with a python3.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.error
import urllib.request


class Unavailable(Exception):
    """The primary did not answer: refused, reset or timed out (it is being bounced)."""


def call(primary: str, method: str, path: str, body: object = None,
         timeout: float = 1.0) -> tuple[int, object]:
    """Send one JSON request; return (status, answer) or raise ``Unavailable``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{primary}{path}", data=data, method=method,
                                     headers={"X-Writer": "loadgen"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise Unavailable(f"{method} {path}: {error}") from error


def read_all(primary: str, patience: float) -> dict[str, str]:
    """The primary's whole map, retried for ``patience`` seconds while it restarts."""
    deadline = time.monotonic() + patience
    while True:
        try:
            status, answer = call(primary, "GET", "/dump", timeout=5.0)
            if status == 200 and isinstance(answer, dict):
                return answer["data"]
        except Unavailable:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"loadgen: the primary {primary} did not answer /dump for "
                             f"{patience}s after the writes; is kv up?")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--primary", required=True, metavar="HOST:PORT")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long to write")
    parser.add_argument("--warmup", type=float, default=1.0, help="when to print 'warm'")
    args = parser.parse_args()
    acked: dict[str, str] = {}
    acks: list[float] = []
    failed = 0
    warm = False
    started = time.monotonic()
    number = 0
    while time.monotonic() - started < args.seconds:
        number += 1
        key, value = f"load-{number}", f"value-{number}"
        try:
            status, answer = call(args.primary, "PUT", f"/kv/{key}", {"value": value})
        except Unavailable:
            status, answer = 0, None
        if status == 200 and isinstance(answer, dict) and answer.get("ok"):
            acked[key] = value
            acks.append(round(time.time(), 4))
        else:
            failed += 1
            time.sleep(0.02)
        if not warm and time.monotonic() - started >= args.warmup:
            print("warm", flush=True)
            warm = True
    stored = read_all(args.primary, patience=30.0)
    read_back = sum(stored.get(key) == value for key, value in acked.items())
    print(json.dumps({"acked": len(acked), "failed": failed, "read_back": read_back,
                      "acks": acks}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
