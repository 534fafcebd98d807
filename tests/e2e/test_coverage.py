"""Opt-in line coverage: a Python service with ``coverage = true`` reports the lines of
the project it ran, and a timeline that took a new branch is kept for it."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = pytest.mark.slow

SERVICE = """
    import os, socket, sys, time

    def rare_branch():
        return "the rare branch ran"

    def main():
        server = socket.create_server((sys.argv[1], 7000))
        while True:
            connection, _ = server.accept()
            data = connection.recv(100)
            if data.startswith(b"rare"):
                answer = rare_branch()
            else:
                answer = "common"
            connection.sendall(answer.encode())
            connection.close()

    main()
"""

POKE = """
    import os, socket, sys
    host = os.environ["COMPOSER_HOSTS_SVC"]
    with socket.create_connection((host, 7000), timeout=5) as s:
        s.sendall(sys.argv[0].rsplit("_", 1)[-1].encode())
        print(s.recv(100))
"""


def explore_and_keep(project, service: str, duration: str) -> list[dict]:
    """Write ``service`` as svc.py beside a common and a rare poke of it, explore with
    seed 2 for ``duration`` and return the corpus entries kept."""
    (project.root / "svc.py").write_text(textwrap.dedent(service))
    project.command("serial_driver_common", POKE)
    project.command("anytime_rare", POKE)
    result = project.composer("explore", "--duration", duration, "--seed", "2", "--quiet")
    assert result.code == 0, result.output
    corpus = project.last_run() / "corpus"
    return [json.loads(p.read_text()) for p in sorted(corpus.glob("*.json"))]


def test_a_traced_service_reports_its_lines_and_new_branches_are_kept(project):
    project.config("""
        [project]
        name = "covered"

        [services.svc]
        command = "python3 svc.py {host}"
        ready = { tcp = 7000 }
        coverage = true

        [explore]
        timeline = "2s"
        faults = []
    """)
    kept = explore_and_keep(project, SERVICE, "25s")
    lines = {f for entry in kept for f in entry["new"] if f.startswith("line svc.py:")}
    source = textwrap.dedent(SERVICE).splitlines()
    ran = {source[int(f.rsplit(":", 1)[1]) - 1].strip() for f in lines}
    assert "answer = \"common\"" in ran and "return \"the rare branch ran\"" in ran, ran
    assert not any("site-packages" in f or "/usr/lib" in f for entry in kept
                   for f in entry["new"]), "only the project's own files are traced"
    rare = next(e for e in kept if any("the rare branch" in source[int(f.rsplit(":", 1)[1]) - 1]
                                       for f in e["new"] if f.startswith("line svc.py:")))
    timeline = rare["timeline"]
    assert any(e.get("command") == "anytime_rare" for e in timeline["events"]), timeline


@pytest.mark.parametrize("key", ["coverage", "log_states"])
def test_coverage_and_log_states_need_a_command(project, key):
    project.config(f"""
        [project]
        name = "covered"

        [services.svc]
        {key} = true
    """)
    project.command("serial_driver_x", "pass")
    result = project.composer("validate")
    assert result.code == 2
    assert f"services.svc.{key} = true but services.svc.command is not set" in result.output
