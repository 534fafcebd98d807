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
    sys.path.insert(0, str(REPO))  # the drivers' `import sdk`, as composer provides it
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
