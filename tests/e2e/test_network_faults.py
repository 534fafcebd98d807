"""Network faults with real traffic and real rules, on every backend that has them
(docker: between containers, rules inside each container's namespace):
a partition drops exactly the chosen pairs, one-way drops one direction only, heal
restores all, loss drops about the asked share, bandwidth caps throughput."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from composer import clusters
from composer.clusters.base import ProcessSpec
from composer.faults import Network, network_of
from composer.timeline import Fault
from tests.conftest import need

PROBE = str(Path(__file__).with_name("netprobe.py"))
PORT = 7000
NODES = ["n-1", "n-2", "n-3", "n-4"]


class Probed:
    """A cluster of NODES, each serving netprobe on PORT."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.cluster = clusters.create(backend, tmp_path)
        # containers have their own python3; this one's venv is a host path
        self.python = "python3" if backend == "docker" else sys.executable
        self.tmp = tmp_path
        self.runs = 0

    async def up(self) -> None:
        self.nodes = {n.name: n for n in await self.cluster.new_nodes(NODES)}
        self.servers = {name: await self.start(name, "serve", self.nodes[name].address, str(PORT))
                        for name in NODES}
        for node in self.nodes.values():
            while not await node.probe(PORT, 0.5):
                await asyncio.sleep(0.02)

    async def start(self, name: str, *args: str):
        self.runs += 1
        spec = ProcessSpec(argv=(self.python, PROBE, *args), env=dict(os.environ),
                           cwd=self.tmp, stdout=self.tmp / f"{self.runs}-{name}.out",
                           stderr=self.tmp / f"{self.runs}-{name}.err")
        process = await self.nodes[name].start(spec)
        process.spec = spec
        return process

    async def output(self, name: str, *args: str) -> str:
        process = await self.start(name, *args)
        await process.wait()
        return process.spec.stdout.read_text()

    def target(self, name: str) -> str:
        return f"{self.nodes[name].address}:{PORT}"

    async def tcp_reachable(self) -> set[tuple[str, str]]:
        """Return the (from, to) pairs between which a TCP connection opens."""
        outputs = await asyncio.gather(*(
            self.output(a, "tcp", *(self.target(b) for b in NODES if b != a)) for a in NODES))
        by_address = {n.address: n.name for n in self.nodes.values()}
        return {(a, by_address[line.split()[1]]) for a, out in zip(NODES, outputs)
                for line in out.splitlines() if line.startswith("ok")}

    def received(self) -> dict[str, list[str]]:
        return {name: [line.split()[1] for line in p.spec.stdout.read_text().splitlines()
                       if line.startswith("udp")] for name, p in self.servers.items()}

    async def udp_arrived(self) -> set[tuple[str, str]]:
        """Return the (from, to) pairs between which UDP datagrams arrive."""
        before = {n: len(r) for n, r in self.received().items()}
        await asyncio.gather(*(self.output(a, "udp", "3", "0.01", a,
                                           *(self.target(b) for b in NODES if b != a))
                               for a in NODES))
        await asyncio.sleep(0.3)
        return {(source, name) for name, lines in self.received().items()
                for source in lines[before[name]:]}


def _all_pairs() -> set[tuple[str, str]]:
    return {(a, b) for a in NODES for b in NODES if a != b}


def _with(tmp_path: Path, backend: str, test) -> None:
    async def main():
        probed = Probed(backend, tmp_path)
        try:
            await probed.up()
            await test(probed)
        finally:
            await probed.cluster.cleanup()

    asyncio.run(main())


BACKENDS = ["local", "netns", "docker"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, targets", [
    ("halves", ("n-1", "n-2")), ("isolate", ("n-3",)), ("bridge", ("n-1",)),
    ("one-way", ("n-1", "n-2")),
])
def test_partition_drops_exactly_the_chosen_pairs_and_heal_restores_all(
        tmp_path, backend, shape, targets):
    need(backend, "partition")
    network = network_of([Fault(0, "partition", targets, 1, shape=shape)], NODES)
    assert network.blocked  # every case cuts something

    async def test(probed: Probed) -> None:
        assert await probed.tcp_reachable() == _all_pairs()
        await probed.cluster.shape_network(network)
        blocked = network.blocked
        assert await probed.udp_arrived() == _all_pairs() - blocked
        # TCP needs both directions: a connection opens only where neither is cut
        assert await probed.tcp_reachable() == {
            (a, b) for a, b in _all_pairs() if (a, b) not in blocked and (b, a) not in blocked}
        await probed.cluster.shape_network(Network())
        assert await probed.tcp_reachable() == _all_pairs()
        assert await probed.udp_arrived() == _all_pairs()

    _with(tmp_path, backend, test)


def test_one_way_partition_passes_the_other_direction():
    network = network_of([Fault(0, "partition", ("n-1",), 1, shape="one-way")], NODES)
    assert ("n-1", "n-2") in network.blocked and ("n-2", "n-1") not in network.blocked


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_drops_about_the_asked_share_of_packets(tmp_path, backend):
    need(backend, "loss")
    sent = 600

    async def test(probed: Probed) -> None:
        await probed.cluster.shape_network(
            network_of([Fault(0, "loss", ("n-1",), 1, amount=30)], NODES))
        await probed.output("n-1", "udp", str(sent), "0.001", "n-1", probed.target("n-2"))
        await probed.output("n-3", "udp", str(sent // 3), "0.001", "n-3", probed.target("n-2"))
        await asyncio.sleep(0.3)
        received = probed.received()["n-2"]
        lost = 1 - received.count("n-1") / sent
        assert 0.2 <= lost <= 0.4, f"lost {lost:.0%} of n-1's packets, asked 30%"
        assert received.count("n-3") == sent // 3  # other senders keep every packet

    _with(tmp_path, backend, test)


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_bandwidth_limit_caps_throughput(tmp_path, backend):
    need(backend, "bandwidth")
    size = 96 * 1024  # 0.79 Mbit: at least 1.5 s at 512 kbit/s, milliseconds unlimited

    async def test(probed: Probed) -> None:
        free = float(await probed.output("n-1", "send", str(size), probed.target("n-2")))
        await probed.cluster.shape_network(
            network_of([Fault(0, "bandwidth", ("n-1",), 1, amount=512)], NODES))
        limited = float(await probed.output("n-1", "send", str(size), probed.target("n-2")))
        other = float(await probed.output("n-3", "send", str(size), probed.target("n-2")))
        # Lower bounds only: a busy machine makes transfers slower, never faster.
        assert limited >= 1.0, (free, limited)
        await probed.cluster.shape_network(Network())
        healed = float(await probed.output("n-1", "send", str(size), probed.target("n-2")))
        assert limited > 3 * min(healed, other, free), (free, limited, healed, other)

    _with(tmp_path, backend, test)


def test_netns_applies_packet_faults_with_netem_or_the_packet_shaper_or_says_why_not():
    need("netns", "partition")
    from composer_agent.network import PACKET_KINDS, packet_faults_missing

    if packet_faults_missing() is None:
        assert set(PACKET_KINDS) <= clusters.capabilities("netns")
    else:
        assert not set(PACKET_KINDS) & clusters.capabilities("netns")
        assert "NFQUEUE" in clusters.limitations("netns")["latency"]


def _median(text: str) -> float:
    values = sorted(float(line) for line in text.split())
    return values[len(values) // 2]


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_latency_delays_what_its_target_sends_and_heal_restores_it(tmp_path, backend):
    """200 ms on n-1's packets: a connect from n-1 (its SYN delayed) takes 200 ms more,
    one from n-3 does not; without netem this is the packet shaper's doing."""
    need(backend, "latency")

    async def test(probed: Probed) -> None:
        base = _median(await probed.output("n-1", "rtt", "5", probed.target("n-2")))
        await probed.cluster.shape_network(
            network_of([Fault(0, "latency", ("n-1",), 1, amount=200)], NODES))
        slow = _median(await probed.output("n-1", "rtt", "7", probed.target("n-2")))
        other = _median(await probed.output("n-3", "rtt", "5", probed.target("n-2")))
        assert 0.16 <= slow - base <= 0.24, (base, slow)
        assert other < 0.1, other
        await probed.cluster.shape_network(Network())
        healed = _median(await probed.output("n-1", "rtt", "5", probed.target("n-2")))
        assert healed < 0.1, (base, slow, healed)

    _with(tmp_path, backend, test)


@pytest.mark.parametrize("kind", ["reorder", "duplicate"])
def test_reorder_and_duplicate_show_in_a_udp_sequence(tmp_path, kind):
    need("netns", kind)
    sent = 300

    async def test(probed: Probed) -> None:
        await probed.cluster.shape_network(
            network_of([Fault(0, kind, ("n-1",), 1, amount=25)], NODES))
        # numbered datagrams, sent in order 2 ms apart from one socket
        await probed.output("n-1", "udp", str(sent), "0.002", "s{i}", probed.target("n-2"))
        await asyncio.sleep(0.3)
        numbers = [int(name[1:]) for name in probed.received()["n-2"] if name.startswith("s")]
        late = sum(1 for a, b in zip(numbers, numbers[1:]) if b < a)
        if kind == "duplicate":
            assert sent * 1.1 <= len(numbers) <= sent * 1.4, len(numbers)
            assert set(numbers) == set(range(sent))
        else:
            assert sorted(numbers) == list(range(sent)) and late >= sent * 0.05, late
        await probed.cluster.shape_network(Network())
        before = len(probed.received()["n-2"])
        await probed.output("n-1", "udp", "50", "0.002", "h{i}", probed.target("n-2"))
        await asyncio.sleep(0.3)
        healed = [int(n[1:]) for n in probed.received()["n-2"][before:] if n.startswith("h")]
        assert healed == list(range(50))

    _with(tmp_path, backend="netns", test=test)
