#!/usr/bin/env python3
"""Talk to a kvstore node from a shell test; run on the fixture's client node:

    "$FIX/client-1/control" exec python3 kv.py put kv-1 KEY VALUE    # exit 0: acknowledged
    "$FIX/client-1/control" exec python3 kv.py get kv-2 KEY [VALUE]  # exit 0: has it (that value)

Exit 1: not acknowledged, or not there; 3: the node did not answer. Node names are
looked up in ``$COMPOSER_HOSTS_KV``, which every process composer starts has.
"""

import json
import os
import sys
import urllib.error
import urllib.request


def address(node: str) -> str:
    hosts = os.environ["COMPOSER_HOSTS_KV"].split(",")
    return f"{hosts[int(node.rsplit('-', 1)[1]) - 1]}:7000"


def call(node: str, method: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{address(node)}/kv/{key}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError as error:
        print(f"{node} did not answer: {error}", file=sys.stderr)
        sys.exit(3)


def main(action: str, node: str, key: str, value: str | None = None) -> int:
    if action == "put":
        status, answer = call(node, "PUT", key, {"value": value})
        print(json.dumps(answer))
        return 0 if status == 200 else 1
    status, answer = call(node, "GET", key)
    print(answer.get("value") or "")
    return 0 if status == 200 and (value is None or answer.get("value") == value) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
