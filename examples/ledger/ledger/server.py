"""ledger's HTTP interface and command line.

Every answer is JSON:

- ``GET /health`` -> ``{"node", "seq", "entries", "snapshot_upto", "snapshotting", "bug"}``
- ``GET /entries`` -> ``{"seq", "entries": [{"seq", "id", "payload"}, ...]}``
- ``POST /append`` with ``{"id": "...", "payload": "..."}`` -> ``{"ok", "seq"}``, sent
  only once the entry is in the write-ahead log
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .store import Ledger, log


class LedgerServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the node's ledger."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], ledger: Ledger, me: str) -> None:
        super().__init__(address, Handler)
        self.ledger = ledger
        self.me = me

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (closed connection) is routine: one line, no trace."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log(f"{client_address[0]} hung up before the answer: {error}")
        else:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Routes the three endpoints above to the ledger."""

    server: LedgerServer

    def do_GET(self) -> None:
        ledger = self.server.ledger
        if self.path == "/health":
            self._send(200, {"node": self.server.me, **ledger.health()})
        elif self.path == "/entries":
            entries = ledger.all()
            self._send(200, {"seq": entries[-1]["seq"] if entries else 0, "entries": entries})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/append":
            self._send(404, {"error": f"no route {self.path}"})
            return
        try:
            body = self._body()
            id, payload = str(body["id"]), str(body["payload"])
        except (ValueError, KeyError, TypeError) as error:
            self._send(400, {"error": f"want {{'id', 'payload'}}: {error!r}"})
            return
        entry = self.server.ledger.append(id, payload)
        self._send(200, {"ok": True, "seq": entry["seq"]})

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
        prog="ledger", description="A tiny append-only ledger (see README.md).")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--data", required=True, metavar="DIR", help="kept across restarts")
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.data, exist_ok=True)
    bug = os.environ.get("LEDGER_BUG", "1") != "0"
    ledger = Ledger(args.data, bug)
    server = LedgerServer((host, int(port)), ledger, args.listen)

    def graceful_stop(signum: int, frame: Any) -> None:
        """SIGTERM is a clean shutdown: a snapshot being written is finished first."""
        ledger.close()
        log(f"{args.listen} stopping on SIGTERM")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, graceful_stop)
    log(f"{args.listen} serving {ledger.seq} entries, planted bug {'on' if bug else 'off'}")
    server.serve_forever()
