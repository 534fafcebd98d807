"""nftables and tc for network faults: a ``Network`` becomes drop rules and qdiscs.

Imports ``composer_agent.network`` (the chain and qdisc helpers the node agent uses too),
``composer.faults``, ``composer.errors`` and the standard library. Every change replaces
a chain's rules in one ``nft -f`` transaction, so traffic never sees a half-applied
partition. Rules match on wire addresses: each node sends from its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from composer_agent.network import have_netem, qdisc_commands, replace_chain
from composer.errors import InfraError
from composer.faults import Network

__all__ = ["drop_rules", "replace_chain", "run", "qdisc_commands", "have_netem"]


def drop_rules(network: Network, address: Mapping[str, str], tracked: bool = False) -> list[str]:
    """Return nft rule bodies that drop the blocked pairs and the lost share of packets.

    ``tracked``: name a packet's ends by its connection's conntrack tuples instead of
    its header, for loopback, where NAT rewrites replies before any hook sees them with
    both node addresses. The originator of a connection is the destination of its reply
    tuple; the responder is the destination of its original tuple.
    """
    def sent_by(node: str) -> list[str]:
        if not tracked:
            return [f"ip saddr {address[node]}"]
        return [f"ct direction original ct reply ip daddr {address[node]}",
                f"ct direction reply ct original ip daddr {address[node]}"]

    def to(destinations: str, match: str) -> str:
        if not tracked:
            return f"ip daddr {destinations}"
        return ("ct original ip daddr " if "direction original" in match
                else "ct reply ip daddr ") + destinations

    rules = []
    by_source: dict[str, list[str]] = {}
    for source, destination in sorted(network.blocked):
        by_source.setdefault(source, []).append(address[destination])
    for source, destinations in by_source.items():
        for match in sent_by(source):
            rules.append(f"{match} {to('{ ' + ', '.join(destinations) + ' }', match)} drop")
    for node, percent in sorted(network.loss.items()):
        rules += [f"{match} numgen random mod 100 < {round(percent)} drop" for match in sent_by(node)]
    return rules


async def run(argv: Sequence[str], stdin: str | None = None, what: str = "") -> str:
    """Run a network command; ``InfraError`` with its stderr if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise InfraError(f"{what or argv[0]}: {' '.join(argv)} failed: {err.decode().strip()}")
    return out.decode()
