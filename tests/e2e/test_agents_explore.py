"""explore on the agents backend, with agents that share no files with composer (each
sees an empty private tmpfs where the project and its runs are): the project reaches
them, what their processes write comes back, and kvstore's planted bug is found, shrunk
and saved as on netns. Nothing of the run stays on the agents but the project's copy,
kept for the next run (sent again only when its content changes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from composer_agent.client import AgentClient
from composer_agent.tls import Credentials
from composer.clusters.agents import load_agents_file
from tests.quality.test_kvstore import PROPERTY, composer, copy_example, summary

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _left_on(agents: Path) -> list[str]:
    """What the agents' roots hold (their files, as each agent sees them)."""
    listed = load_agents_file(agents)
    found = []
    for url in listed.urls:
        async with AgentClient(url, Credentials(listed.ca, listed.cert, listed.key)) as client:
            root = (await client.heartbeat())["root"]
            found += [f"{url}: {f['path']}" for f in (await client.tree(root))["files"]]
    return found


def test_explore_on_agents_sharing_no_files_finds_kvstores_bug(remote_agents_file, tmp_path):
    hidden = tmp_path / "far"
    agents = remote_agents_file(4, hidden)  # kv-1..3 and the client
    project = copy_example(EXAMPLES / "kvstore", hidden)  # composer sees it; they do not
    result = composer(project, "explore", "--cluster", "agents", "--agents", str(agents),
                      "--duration", "5m", "--seed", "1", "--stop-on-failure",
                      "--reruns", "1", "--shrink-budget", "30s", "--quiet")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-3000:]
    findings = {f["property"]: f for f in summary(project)["findings"]}
    assert PROPERTY in findings, (sorted(findings), result.stdout[-3000:])
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    timeline = Path(findings[PROPERTY]["logs"]) if findings[PROPERTY].get("logs") else (
        sorted((run / "timelines").iterdir())[0])
    assert list((timeline / "sdk").glob("*.jsonl")), "the SDK output came back"
    left = asyncio.run(_left_on(agents))
    nodes = [f for f in left if f.split(": ", 1)[1].startswith("composer-")]
    assert not nodes, nodes  # no node directory stays (the project's copy and SDK may)
    assert json.loads((run / "summary.json").read_text())["backend"] == "agents"


def test_explore_on_agent_hosts_finds_pbstores_partition_bug(agent_hosts_file, tmp_path):
    """pbstore's bug needs a partition: each agent here is a namespace of its own (its
    own firewall), as machines are, and the agents apply the partitions."""
    hidden = tmp_path / "far"
    agents = agent_hosts_file(4, hidden)
    project = copy_example(EXAMPLES / "pbstore", hidden)
    result = composer(project, "explore", "--cluster", "agents", "--agents", str(agents),
                      "--duration", "5m", "--seed", "1", "--stop-on-failure",
                      "--faults", "partition,kill", "--reruns", "1", "--shrink-budget", "30s",
                      "--quiet")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-3000:]
    failing = [f["property"] for f in summary(project)["findings"]]
    assert failing, result.stdout[-3000:]
    kinds = summary(project)["utilization"]["faults"]
    assert kinds.get("partition"), kinds
