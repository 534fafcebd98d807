"""What a timeline needs beyond processes and networks, on agents that share no files
with composer: clock faults (the offset file is written on the node's own machine, and
the agent puts the service under libfaketime there, with its machine's paths) and line
coverage (the tracing site is copied there, and its lines come back)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap

from pathlib import Path

import pytest

from composer import config, services, templates
from composer.clusters.agents import load_agents_file
from composer_agent.client import AgentClient, AgentError
from composer_agent.tls import Credentials
from composer.runner import run_timeline
from composer.timeline import Fault, Start, Timeline
from tests.conftest import Project, need
from tests.e2e.test_coverage import POKE, SERVICE
from tests.e2e.test_runner import CLOCK_PROBE, CLOCK_SERVICE, _stdout


def test_a_clock_fault_on_agents_moves_that_nodes_clock_until_its_heal(remote_agents_file,
                                                                        tmp_path):
    need("local", "clock")  # the agents run on this machine
    hidden = tmp_path / "far"
    agents = remote_agents_file(3, hidden)  # db-1, db-2, client-1
    project = Project(hidden / "project")
    project.root.mkdir()
    project.command("serial_driver_clock", CLOCK_PROBE)
    project.command("eventually_clock", CLOCK_PROBE)
    project.config(CLOCK_SERVICE)
    loaded = dataclasses.replace(config.load(project.root), backend_options=(("agents", agents),))
    template = templates.discover(loaded.templates_dir)["main"]
    timeline = Timeline("main", length=3.0, seed=1, eventually="eventually_clock", events=(
        Fault(0.0, "clock", ("db-2",), 4.0, amount=-3600),
        Fault(0.1, "clock", ("db-2",), 3.0, amount=30),
        Start(1.0, "serial_driver_clock", "client-1", 2),
    ))
    out = project.root / "out"  # the agents do not see it: the offsets must be sent
    result = asyncio.run(run_timeline(timeline, loaded, template, "agents", out))
    run = json.loads((out / "run.json").read_text())
    assert result.setup_ok, run
    assert _stdout(run, "serial_driver_clock") == ["0 -3570"]
    assert _stdout(run, "eventually_clock") == ["0 0"]
    assert asyncio.run(_seen_by_agents(agents, out)) == [], "the timeline stays on the agents"


async def _seen_by_agents(agents: Path, directory: Path) -> list[str]:
    """The files under ``directory`` as the agents see it (each its own machine)."""
    listed = load_agents_file(agents)
    found = []
    for url in listed.urls:
        async with AgentClient(url, Credentials(listed.ca, listed.cert, listed.key)) as client:
            try:
                found += [f["path"] for f in (await client.tree(str(directory)))["files"]]
            except AgentError:  # no such directory there
                pass
    return found


def test_line_coverage_of_a_service_on_an_agent_comes_back(remote_agents_file, tmp_path):
    hidden = tmp_path / "far"
    site = Path(services.__file__).parent / "linecover_site"  # not on their machines
    agents = remote_agents_file(2, hidden, also_hide=(site,))  # svc-1 and the client
    project = Project(hidden / "project")
    project.root.mkdir()
    (project.root / "svc.py").write_text(textwrap.dedent(SERVICE))
    project.command("serial_driver_rare", POKE)
    project.config("""
        [services.svc]
        command = "python3 svc.py {host}"
        ready = { tcp = 7000 }
        coverage = true
    """)
    out = project.root / "out"
    assert _drive(project, agents, "serial_driver_rare", out).setup_ok
    traced = "".join(p.read_text() for p in (out / "coverage").glob("svc-1-*.lines"))
    source = textwrap.dedent(SERVICE).splitlines()
    ran = {source[int(line.rsplit(":", 1)[1]) - 1].strip() for line in traced.split()
           if line.startswith("svc.py:")}
    assert 'return "the rare branch ran"' in ran, traced


def test_the_official_antithesis_sdk_goes_with_composers_to_agents(remote_agents_file,
                                                                   tmp_path):
    """Drivers written for Antithesis import its SDK; an agent's machine gets the copy
    installed here, as it gets composer's own."""
    pytest.importorskip("antithesis")
    hidden = tmp_path / "far"
    agents = remote_agents_file(1, hidden)
    project = Project(hidden / "project")
    project.root.mkdir()
    project.command("serial_driver_sdk", "import antithesis.assertions; print('imported')")
    project.config("""
        [services.client]
        drivers = true
    """)
    out = project.root / "out"
    _drive(project, agents, "serial_driver_sdk", out)
    run = json.loads((out / "run.json").read_text())
    assert _stdout(run, "serial_driver_sdk")[0].endswith("imported"), run["invocations"]


def _drive(project: Project, agents: Path, command: str, out: Path):
    """Run a one-second timeline of ``command`` on client-1, on the agents."""
    loaded = dataclasses.replace(config.load(project.root), backend_options=(("agents", agents),))
    template = templates.discover(loaded.templates_dir)["main"]
    timeline = Timeline("main", length=1.0, seed=1, events=(Start(0.1, command, "client-1", 1),))
    return asyncio.run(run_timeline(timeline, loaded, template, "agents", out))
