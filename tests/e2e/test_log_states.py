"""Opt-in log states: with ``log_states = true`` what a service logs, its numbers and
addresses masked, is behaviour, and a timeline that made it log something new is kept."""

from __future__ import annotations

import pytest

from tests.e2e.test_coverage import explore_and_keep

pytestmark = pytest.mark.slow

SERVICE = """
    import socket, sys

    server = socket.create_server((sys.argv[1], 7000))
    served = 0
    while True:
        connection, peer = server.accept()
        served += 1
        data = connection.recv(100)
        if data.startswith(b"rare"):
            print(f"request {served} from {peer[0]}:{peer[1]} took the rare branch "
                  f"for '{data.decode()}'", file=sys.stderr, flush=True)
        else:
            print(f"request {served} from {peer[0]}:{peer[1]} served", flush=True)
        connection.sendall(b"ok")
        connection.close()
"""


@pytest.mark.parametrize("logged", [True, False])
def test_what_a_service_logs_is_behaviour_when_asked(project, logged):
    project.config(f"""
        [project]
        name = "logged"

        [services.svc]
        command = "python3 svc.py {{host}}"
        ready = {{ tcp = 7000 }}
        log_states = {'true' if logged else 'false'}

        [explore]
        timeline = "2s"
        faults = []
    """)
    kept = explore_and_keep(project, SERVICE, "15s")
    states = {f for entry in kept for f in entry["new"] if f.startswith("log ")}
    if not logged:
        assert not states
        return
    assert "log request <n> from <addr> served" in states, states
    rare = "log request <n> from <addr> took the rare branch for <str>"
    assert rare in states, states
    (entry,) = [e for e in kept if rare in e["new"]]
    assert any(e.get("command") == "anytime_rare" for e in entry["timeline"]["events"])

