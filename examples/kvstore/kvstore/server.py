"""kvstore's HTTP interface and command line.

Every answer is JSON:

- ``GET /health`` -> ``{"node", "role", "seq", "keys", "bug"}``
- ``GET /kv/<key>`` -> ``{"key", "value"}`` (404 with ``"value": null`` when absent)
- ``PUT /kv/<key>`` with ``{"value": "..."}`` -> primary only (409 elsewhere); an
  optional ``X-Writer`` header names the writer (else each connection is its own).
  The answer says how the write was committed: ``{"ok", "seq", "mode": "sync"|"group",
  "concurrent", "replicas", "of"}`` (``replicas`` of ``of`` had it before the answer)
- ``GET /dump`` -> ``{"seq", "data"}``: the whole map, for convergence checks
- ``POST /replicate`` with ``{"entries": [...]}`` -> replicas only; 409 on a gap
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from .store import Store, log


class KVServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the node's store."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store) -> None:
        super().__init__(address, Handler)
        self.store = store

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that gave up waiting (closed connection) is routine: one line, no trace."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log(f"{client_address[0]} hung up before the answer: {error}")
        else:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Routes the few endpoints above to the store."""

    server: KVServer

    def do_GET(self) -> None:
        store = self.server.store
        if self.path == "/health":
            self._send(200, {"node": store.me, "role": "primary" if store.is_primary else "replica",
                             "seq": store.seq, "keys": len(store.dump()), "bug": store.bug})
        elif self.path == "/dump":
            self._send(200, {"seq": store.seq, "data": store.dump()})
        elif self.path.startswith("/kv/"):
            key = unquote(self.path[len("/kv/"):])
            value = store.get(key)
            self._send(404 if value is None else 200, {"key": key, "value": value})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_PUT(self) -> None:
        store = self.server.store
        if not self.path.startswith("/kv/"):
            self._send(404, {"error": f"no route {self.path}"})
        elif not store.is_primary:
            self._send(409, {"error": "not the primary", "primary": store.primary})
        else:
            key = unquote(self.path[len("/kv/"):])
            host, port = self.client_address[:2]
            writer = self.headers.get("X-Writer") or f"{host}:{port}"
            self._send(200, store.put(key, str(self._body()["value"]), writer))

    def do_POST(self) -> None:
        store = self.server.store
        if self.path != "/replicate":
            self._send(404, {"error": f"no route {self.path}"})
        elif store.is_primary:
            self._send(409, {"error": "the primary does not take replication", "seq": store.seq})
        else:
            answer = store.apply(self._body()["entries"])
            self._send(200 if answer["ok"] else 409, answer)

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: one line per request would drown the interesting ones."""


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the data directory and serve until killed."""
    parser = argparse.ArgumentParser(
        prog="kvstore", description="A tiny primary/replica key-value store (see README.md).")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--peers", required=True, metavar="HOST[:PORT],...",
                        help="all nodes in order, the first is the primary "
                        "(port defaults to --listen's)")
    parser.add_argument("--data", required=True, metavar="DIR", help="kept across restarts")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    peers = [p if ":" in p else f"{p}:{port}" for p in args.peers.split(",") if p]
    me = f"{host}:{port}"
    if me not in peers:
        parser.error(f"--listen {me} is not one of --peers {','.join(peers)}")
    os.makedirs(args.data, exist_ok=True)
    bug = os.environ.get("KVSTORE_BUG", "1") != "0"
    store = Store(me, peers, args.data, bug)
    server = KVServer((host, int(port)), store)

    def graceful_stop(signum: int, frame: Any) -> None:
        """SIGTERM is a clean shutdown: group-committed writes are flushed first."""
        store.close()
        log(f"{me} stopping on SIGTERM")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, graceful_stop)
    role = "primary" if store.is_primary else "replica"
    log(f"{me} serving as {role} with {store.seq} entries, planted bug {'on' if bug else 'off'}")
    server.serve_forever()
