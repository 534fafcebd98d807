"""The examples' drivers talk HTTP to nodes that faults kill or cut off mid-answer: an
error answer cut short is a node that did not answer (the driver retries or moves on),
never a driver crash, which composer would rightly report as a failing property
("Commands finish with zero exit code") of an example that has no such bug."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: example -> its driver helper module
HELPERS = {"kvstore": "helper_kv", "pbstore": "helper_pb", "lease": "helper_lease",
           "ledger": "helper_ledger", "leader": "helper_leader"}
CUT_SHORT = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100\r\n\r\n{\"ok\": fa")


@pytest.fixture
def dying_node():
    """A node that starts an error answer and dies before its body is complete."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(CUT_SHORT)

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def load(example: str, module: str):
    path = REPO / "examples" / example / "drivers" / "main" / f"{module}.py"
    sys.path.insert(0, str(REPO))  # the drivers' `import composer_sdk as sdk`, as composer provides it
    try:
        spec = importlib.util.spec_from_file_location(f"{example}_{module}", path)
        helper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(helper)
    finally:
        sys.path.remove(str(REPO))
    return helper


@pytest.mark.parametrize("example", sorted(HELPERS))
def test_an_error_answer_cut_short_is_no_driver_crash(example, dying_node, monkeypatch):
    helper = load(example, HELPERS[example])
    monkeypatch.setenv("COMPOSER_HOSTS_LEDGER", dying_node)
    args = ("GET", "/status") if example == "ledger" else (dying_node, "GET", "/status")
    try:
        status, answer = helper.request(*args)
    except helper.Unavailable:
        return
    assert status == 503 and isinstance(answer, dict)


def test_pbstore_setup_write_is_retried_when_a_busy_machine_times_replication_out(tmp_path):
    """The setup's write failing once (a backup slow to answer on a loaded machine) is
    not the planted bug; it made `first_check_ready` exit 1 under load and stop benchmark
    explorations with "The primary acknowledges a write at setup"."""
    import http.server
    import json
    import os
    import subprocess

    puts = []

    class Node(http.server.BaseHTTPRequestHandler):
        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.answer(200, {"node": me, "epoch": 1, "primary": me, "role": "primary",
                              "ready": True, "eligible": False, "seq": len(puts), "bug": True})

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            puts.append(self.path)
            if len(puts) == 1:
                self.answer(503, {"ok": False, "error": "replication timed out"})
            else:
                self.answer(200, {"ok": True, "seq": 1, "epoch": 1, "degraded": False})

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Node)
    me = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        drivers = REPO / "examples" / "pbstore" / "drivers" / "main"
        env = {**os.environ, "COMPOSER_HOSTS_PB": me, "COMPOSER_DATA": str(tmp_path),
               "ANTITHESIS_SDK_LOCAL_OUTPUT": str(tmp_path / "sdk.jsonl"),
               "PYTHONPATH": f"{REPO}:{drivers}"}
        done = subprocess.run([sys.executable, str(drivers / "first_check_ready")], env=env,
                              capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert len(puts) == 2
