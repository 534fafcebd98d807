"""The backends whose nodes live on this host (local, netns), with real processes:
addresses, process faults and heals, data that survives a kill, and clusters that never
share an address."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from composer import clusters, config
from composer.clusters.local import LocalCluster
from composer.services import Environment, ServiceNode
from tests.conftest import need


@pytest.fixture(params=["local", "netns"])
def backend(request) -> str:
    need(request.param)
    return request.param

LISTENER = "python3 -c 'import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 7000)); s.listen(); time.sleep(600)' {host}"


def _project(tmp_path: Path, replicas: int = 2) -> config.Project:
    (tmp_path / "composer.toml").write_text(textwrap.dedent(f"""
        [services.db]
        replicas = {replicas}
        command = "{LISTENER}"
        ready = {{ tcp = 7000 }}
    """))
    return config.load(tmp_path)


async def _up(tmp_path: Path, cluster: clusters.Cluster, project: config.Project):
    service = project.service("db")
    names = [n for s in project.services for n in s.node_names()]
    nodes = {n.name: n for n in await cluster.new_nodes(names)}
    env = Environment(project, nodes, tmp_path / "timeline")
    services = [ServiceNode(nodes[name], service, i, env, tmp_path / "timeline")
                for i, name in enumerate(service.node_names(), start=1)]
    for s in services:
        await s.start()
    await asyncio.gather(*(s.wait_ready(asyncio.get_running_loop().time() + 30) for s in services))
    return services


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]


def test_each_node_listens_on_its_own_loopback_address(tmp_path):
    async def main():
        cluster = LocalCluster(tmp_path)
        try:
            services = await _up(tmp_path, cluster, _project(tmp_path, replicas=3))
            addresses = [s.node.address for s in services]
            assert len(set(addresses)) == 3
            assert all(a.startswith(f"127.0.{cluster.block}.") for a in addresses)
            for address in addresses:  # the same port on every node: separate addresses
                _, writer = await asyncio.open_connection(address, 7000)
                writer.close()
        finally:
            await cluster.cleanup()

    asyncio.run(main())


def test_pause_stops_the_process_and_heal_continues_it(tmp_path, backend):
    async def main():
        cluster = clusters.create(backend, tmp_path)
        try:
            service = (await _up(tmp_path, cluster, _project(tmp_path, replicas=1)))[0]
            pid = service.process.pid
            assert await service.apply("pause")
            await asyncio.sleep(0.1)
            assert _state(pid) == "T"
            await service.heal()
            await asyncio.sleep(0.1)
            assert _state(pid) in "SR"
        finally:
            await cluster.cleanup()

    asyncio.run(main())


def test_kill_and_stop_end_the_process_and_heal_restarts_it_with_its_data(tmp_path, backend):
    async def main():
        cluster = clusters.create(backend, tmp_path)
        try:
            service = (await _up(tmp_path, cluster, _project(tmp_path, replicas=1)))[0]
            (service.node.data_dir / "state").write_text("kept")
            for kind, code in (("kill", -9), ("stop", -15)):
                old = service.process
                assert await service.apply(kind)
                assert await old.wait() == code  # a stop returns at once, its exit follows
                assert not await service.apply(kind)  # already down: nothing to do
                await service.heal()
                assert service.process is not old and service.process.returncode is None
                await service.wait_ready(asyncio.get_running_loop().time() + 30)
            assert (service.node.data_dir / "state").read_text() == "kept"
        finally:
            await cluster.cleanup()
        assert service.process.returncode == -9

    asyncio.run(main())


def test_concurrent_clusters_never_share_an_address_block(tmp_path):
    claimed = [LocalCluster(tmp_path / str(i)) for i in range(20)]
    try:
        assert len({c.block for c in claimed}) == 20
    finally:
        for c in claimed:
            asyncio.run(c.cleanup())
    again = LocalCluster(tmp_path / "again")  # released blocks can be claimed again
    asyncio.run(again.cleanup())


async def _output(node, tmp_path: Path, *argv: str) -> str:
    from composer.clusters.base import ProcessSpec

    out = tmp_path / f"{node.name}-{len(list(tmp_path.glob('*.out')))}.out"
    process = await node.start(ProcessSpec(argv=argv, env={"PATH": "/usr/bin:/bin:/usr/sbin"},
                                           cwd=tmp_path, stdout=out, stderr=out.with_suffix(".err")))
    await process.wait()
    return out.read_text() + out.with_suffix(".err").read_text()


def test_netns_node_has_its_hostname_names_of_peers_loopback_and_own_address(tmp_path):
    need("netns")

    async def main():
        cluster = clusters.create("netns", tmp_path)
        try:
            a, b = await cluster.new_nodes(["kv-1", "kv-2"])
            assert a.address != b.address and a.data_dir != b.data_dir
            assert (await _output(a, tmp_path, "hostname")).strip() == "kv-1"
            assert (await _output(a, tmp_path, "getent", "hosts", "kv-2")).split()[0] == b.address
            addresses = await _output(a, tmp_path, "ip", "-brief", "address")
            assert "lo" in addresses and "UNKNOWN" in addresses or "UP" in addresses
            assert a.address in addresses and b.address not in addresses
            assert "0% packet loss" in await _output(a, tmp_path, "ping", "-c1", "-W2", "kv-2")
            assert "0% packet loss" in await _output(a, tmp_path, "ping", "-c1", "-W2", "127.0.0.1")
        finally:
            await cluster.cleanup()

    asyncio.run(main())


def test_two_netns_runs_at_once_do_not_see_each_other(tmp_path):
    need("netns")

    async def main():
        one = clusters.create("netns", tmp_path / "one")
        two = clusters.create("netns", tmp_path / "two")
        try:
            (a,) = await one.new_nodes(["kv-1"])
            (b,) = await two.new_nodes(["kv-1"])  # the same node name in both runs
            assert one.block != two.block and a.address != b.address
            assert (await _output(a, tmp_path, "getent", "hosts", "kv-1")).split()[0] == a.address
            assert (await _output(b, tmp_path, "getent", "hosts", "kv-1")).split()[0] == b.address
            cross = await _output(a, tmp_path, "ping", "-c1", "-W1", b.address)
            assert "100% packet loss" in cross or "unreachable" in cross, cross
        finally:
            await one.cleanup()
            await two.cleanup()

    asyncio.run(main())
