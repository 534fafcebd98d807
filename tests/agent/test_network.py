"""Network faults applied by the agent on its own machine: partitions and loss cut
traffic with the named peers only, shaping lands on the peers' device, a heal or the
agent's exit leaves no rule and no qdisc behind.

The agent's namespace stands for its machine. The test process is two parties in the
root namespace: the composer (the veth's first address, which every control call uses)
and a peer node (a second address on the same veth, which the probes bind to).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap

from composer_agent.client import AgentClient, AgentError
from composer_agent.network import NodeNetwork
from tests.agent.support import aio, eventually, ip

_SERVER = textwrap.dedent("""
    import socket, sys
    server = socket.create_server((sys.argv[1], 9000))
    print("ready", flush=True)
    while True:
        server.accept()[0].close()
""")


def _peer_address(namespace) -> str:
    """Add a second address to the root side of the veth: the peer node's."""
    peer = namespace.spare.pop()
    ip("addr", "add", f"{peer}/28", "dev", namespace.veth)
    return peer


async def _connects(source: str, destination: str) -> bool:
    def attempt() -> bool:
        with socket.socket() as sock:
            sock.bind((source, 0))
            sock.settimeout(1.0)
            try:
                sock.connect((destination, 9000))
                return True
            except OSError:
                return False
    return await asyncio.to_thread(attempt)


def _in_namespace(namespace, *argv: str) -> str:
    return ip("netns", "exec", namespace.name, *argv).stdout


@aio
async def test_partition_loss_and_bandwidth_cut_only_the_peers_and_heal(agent, namespace,
                                                                        client_credentials):
    peer, composer = _peer_address(namespace), namespace.host_address
    async with AgentClient(agent.url, client_credentials) as client:
        assert {"partition", "loss", "bandwidth"} <= set((await client.heartbeat())["faults"])
        server = await client.start([sys.executable, "-c", _SERVER, namespace.address])
        await eventually(lambda: server.stdout_bytes == b"ready\n", what="server")
        assert await _connects(peer, namespace.address)

        for view in (NodeNetwork(peers=(peer,), drop_from=(peer,)),  # nothing comes in
                     NodeNetwork(peers=(peer,), loss_from=((peer, 100),))):
            await client.shape_network(view)
            assert not await _connects(peer, namespace.address), view
            assert await _connects(composer, namespace.address), view  # not a peer
            await client.heartbeat()  # the control connection is never cut
            await client.shape_network(NodeNetwork(peers=(peer,)))
            assert await _connects(peer, namespace.address), f"not healed after {view}"

        await client.shape_network(NodeNetwork(peers=(peer,), bandwidth=512))
        assert "tbf" in _in_namespace(namespace, "tc", "qdisc", "show", "dev", "eth0")
        await client.shape_network(NodeNetwork(peers=(peer,)))
        assert "tbf" not in _in_namespace(namespace, "tc", "qdisc", "show", "dev", "eth0")

        await client.shape_network(NodeNetwork(peers=(peer,), drop_from=(peer,), bandwidth=512))
        assert "composer_agent" in _in_namespace(namespace, "nft", "list", "tables")
    assert agent.stop() == 0  # the agent's exit removes what was in force
    assert "composer_agent" not in _in_namespace(namespace, "nft", "list", "tables")
    assert "tbf" not in _in_namespace(namespace, "tc", "qdisc", "show", "dev", "eth0")


@aio
async def test_a_malformed_network_is_refused_and_changes_nothing(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        for body in ({"peers": ["not-an-address"]}, {"loss_from": [["10.0.0.1", -5]]},
                     {"bandwidth": -1}, {"colour": "red"}, [1]):
            try:
                await client._call("POST", "/v1/network", json=body)
            except AgentError as exc:
                assert exc.status == 400 and "network:" in str(exc)
            else:
                raise AssertionError(f"{body} was accepted")


@aio
async def test_a_clock_offset_moves_only_the_wall_clock_of_that_process(agent, tmp_path,
                                                                        client_credentials):
    probe = ("import time\n"
             "for _ in range(3):\n"
             "    time.sleep(0.05)  # libfaketime 0.9.10 broke sleeps: agent.clock fixes them\n"
             "print(round(time.time()))\n")
    offset = tmp_path / "clock"
    async with AgentClient(agent.url, client_credentials) as client:
        assert "clock" in (await client.heartbeat())["faults"]
        await client.put_file(str(offset), b"-3600\n")
        moved = await client.start([sys.executable, "-c", probe], clock=str(offset))
        plain = await client.start([sys.executable, "-c", probe])
        assert (await moved.wait(), await plain.wait()) == (0, 0)
        assert int(plain.stdout_bytes) - int(moved.stdout_bytes) in range(3595, 3606)
        try:
            await client.start(["true"], clock=5)  # type: ignore[arg-type]
        except AgentError as exc:
            assert "clock=5" in str(exc)
        else:
            raise AssertionError("a clock that is not a path was accepted")
