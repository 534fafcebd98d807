"""The sync service in real runs: every node of a netns cluster reaches it on the
bridge's own address, 50 of them meet at one barrier, a partition between nodes leaves
their sync connections alone, and a timeline never sees another's states or topics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from composer import clusters
from composer.clusters.base import ProcessSpec
from composer.faults import Network, network_of
from composer.timeline import Fault
from composer.timeline_sync import TimelineSync
from tests.conftest import need
from tests.quality.test_kvstore import composer

pytestmark = pytest.mark.slow

#: each peer notes when it arrived and when the barrier let it go; the last to have
#: written its times says setup is complete
BARRIER_PEER = """\
import json, os, time
import composer_sdk as sdk
from composer_sdk import sync
n = int(os.environ["TEST_INSTANCE_COUNT"])
arrived = time.time()
sync.signal_entry("arrived", timeout=120)
sync.barrier("arrived", n, timeout=120)
released = time.time()
with open(os.path.join(os.environ["COMPOSER_DATA"], "times.json"), "w") as out:
    json.dump({"arrived": arrived, "released": released}, out)
if sync.signal_entry("written", timeout=120) == n:
    sdk.setup_complete()
time.sleep(3600)
"""


def _project(tmp_path: Path, peers: int, peer_code: str, driver: str,
             extra: str = "") -> Path:
    project = tmp_path / "syncproject"
    (project / "drivers" / "main").mkdir(parents=True)
    (project / "peer.py").write_text(peer_code)
    (project / "composer.toml").write_text(
        f'[project]\nname = "syncproject"\n\n[services.peer]\nreplicas = {peers}\n'
        'command = "python3 peer.py"\n\n[services.client]\nreplicas = 1\ndrivers = true\n\n'
        '[explore]\ntimeline = "1s"\nfaults = []\n' + extra)
    script = project / "drivers" / "main" / "parallel_driver_check"
    script.write_text(driver)
    script.chmod(0o755)
    return project


def _timelines(project: Path) -> list[Path]:
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    return sorted((run / "timelines").iterdir())


def test_fifty_netns_nodes_meet_at_one_barrier_within_a_second_of_the_last(tmp_path):
    need("netns")
    project = _project(tmp_path, 50, BARRIER_PEER, "#!/bin/sh\ntrue\n",
                       '\n[setup]\nsdk = true\ntimeout = "120s"\n')
    result = composer(project, "run", "--cluster", "netns")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    timeline = _timelines(project)[0]
    times = [json.loads((timeline / "nodes" / f"peer-{i}" / "data" / "times.json").read_text())
             for i in range(1, 51)]
    last_arrival = max(t["arrived"] for t in times)
    assert all(t["released"] >= last_arrival for t in times)
    assert max(t["released"] for t in times) - last_arrival < 1.0, times


def test_a_partition_between_nodes_leaves_their_sync_connections_alone(tmp_path):
    need("netns", "partition")

    async def main() -> None:
        cluster = clusters.create("netns", tmp_path)
        sync = TimelineSync(cluster, "plan", "case", {"a": "peer", "b": "peer"})
        try:
            nodes = {n.name: n for n in await cluster.new_nodes(["a", "b"])}
            await sync.start()
            env = sync.environment(["a", "b"])

            async def run(node: str, *args: str) -> tuple[int, str]:
                spec = ProcessSpec(
                    argv=(sys.executable, "-m", "composer_sdk.sync_cli", "--timeout", "60",
                          *args), env={**os.environ, **env[node]}, cwd=tmp_path,
                    stdout=tmp_path / f"{node}-{args[0]}.out",
                    stderr=tmp_path / f"{node}-{args[0]}.err")
                code = await (await nodes[node].start(spec)).wait()
                return code, spec.stdout.read_text() + spec.stderr.read_text()

            waiting = asyncio.ensure_future(run("a", "signal-and-wait", "both", "2"))
            await asyncio.sleep(0.5)  # a is connected and waiting
            await cluster.shape_network(network_of(
                [Fault(0, "partition", ("a",), 1, shape="isolate")], ["a", "b"]))
            probe = ProcessSpec(argv=("ping", "-c", "2", "-W", "1", nodes["b"].address),
                                env=dict(os.environ), cwd=tmp_path,
                                stdout=tmp_path / "ping.out", stderr=tmp_path / "ping.err")
            assert await (await nodes["a"].start(probe)).wait() != 0  # the partition holds
            assert await run("b", "signal-entry", "both") == (0, "2\n")
            code, output = await asyncio.wait_for(waiting, 60)
            assert code == 0, output
            await cluster.shape_network(Network())
        finally:
            await sync.close()
            await cluster.cleanup()

    asyncio.run(main())


LEAK_PEER = """\
import os, time
from composer_sdk import sync
sync.publish("members", os.environ["TEST_RUN"], timeout=30)
time.sleep(3600)
"""
#: the topic's first messages, replayed from its start, must be this timeline's own
LEAK_DRIVER = """\
#!/bin/sh
set -e
composer-sync subscribe members --count 2 --timeout 30 > "$COMPOSER_DATA/members"
[ "$(grep -c "\\"$TEST_RUN\\"" "$COMPOSER_DATA/members")" = 2 ] || exit 1
"""


def test_a_timeline_never_sees_the_states_or_topics_of_another(tmp_path):
    project = _project(tmp_path, 2, LEAK_PEER, LEAK_DRIVER)
    result = composer(project, "explore", "--duration", "25s", "--seed", "3", "--quiet")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    timelines = _timelines(project)
    assert len(timelines) >= 2
    runs = set()
    for timeline in timelines:
        members = [json.loads(line) for line in
                   (timeline / "nodes" / "client-1" / "data" / "members").read_text().split()]
        assert len(set(members)) == 1
        runs |= set(members)
    assert len(runs) == len(timelines)


FILTER_PEER = """\
import os, socket, time
import composer_sdk as sdk
from composer_sdk import sync

host = os.environ["COMPOSER_HOST"]
server = socket.create_server((host, 7500))
n = int(os.environ["TEST_INSTANCE_COUNT"])
seq = sync.signal_and_wait("serving", n, timeout=60)
peers = sorted(a for a in os.environ["COMPOSER_HOSTS_PEER"].split(",") if a != host)

def reaches(address):
    try:
        socket.create_connection((address, 7500), timeout=1).close()
        return True
    except OSError:
        return False

if seq == 1:
    sync.configure_network(rules=[{"subnet": peers[0] + "/32", "filter": "drop"},
                                  {"subnet": peers[1] + "/32", "filter": "reject"}])
    sdk.always(not reaches(peers[0]) and not reaches(peers[1]), "the filters cut both peers")
    try:
        sync.configure_network(rules=[{"subnet": peers[0] + "/32", "bandwidth": 8000}])
        refused = ""
    except sync.SyncError as error:
        refused = str(error)
    sdk.always("rules[0].bandwidth" in refused, "an unsupported field is refused by name",
               {"error": refused})
    sync.configure_network()
    sdk.always(reaches(peers[0]) and reaches(peers[1]), "an empty link restores both")
    sdk.setup_complete()
while True:
    time.sleep(3600)
"""


def test_configure_network_filters_peers_refuses_by_field_and_restores(tmp_path):
    need("netns", "latency")
    project = _project(tmp_path, 3, FILTER_PEER, "#!/bin/sh\ntrue\n",
                       '\n[setup]\nsdk = true\ntimeout = "60s"\n')
    result = composer(project, "run", "--cluster", "netns", "--faults", "kill")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for prop in ("the filters cut both peers", "an unsupported field is refused by name",
                 "an empty link restores both"):
        assert any(line.startswith("  PASS") and line.endswith(prop)
                   for line in result.stdout.splitlines()), result.stdout[-3000:]


def test_processes_on_agent_nodes_reach_the_sync_service_through_their_agents(
        agents_file, tmp_path):
    """The service is on composer's machine; each agent listens on its node's address
    and hands the connection over its own TLS port (no route back is needed)."""

    async def main() -> None:
        cluster = clusters.create("agents", tmp_path / "run", agents=agents_file)
        names = ["a", "b", "c"]
        sync = TimelineSync(cluster, "plan", "case", dict.fromkeys(names, "peer"))
        try:
            nodes = {n.name: n for n in await cluster.new_nodes(names)}
            await sync.start()
            env = sync.environment(names)
            assert env["b"]["SYNC_SERVICE_HOST"] == nodes["b"].address

            async def run(node: str) -> str:
                spec = ProcessSpec(
                    argv=(sys.executable, "-m", "composer_sdk.sync_cli", "--timeout", "60",
                          "signal-and-wait", "all", "3"), env={**os.environ, **env[node]},
                    cwd=tmp_path, stdout=tmp_path / f"{node}.out", stderr=tmp_path / f"{node}.err")
                code = await (await nodes[node].start(spec)).wait()
                assert code == 0, spec.stderr.read_text()
                return spec.stdout.read_text().strip()

            assert sorted(await asyncio.gather(*map(run, names))) == ["1", "2", "3"]
        finally:
            await sync.close()
            await cluster.cleanup()

    asyncio.run(main())
