"""Fault kinds as data, the capability set a backend declares, and network state.

Imports only the standard library. Backends apply faults; schedules draw them from a
``Capabilities`` value and never see a cluster. Network faults compose: the runner keeps
the faults in effect and asks ``network_of`` for the one ``Network`` a backend must
enforce, so overlapping partitions, loss and limits never undo each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["PROCESS_FAULTS", "PACKET_FAULTS", "NETWORK_FAULTS", "FAULT_KINDS", "ALL_FAULTS", "PARTITION_SHAPES", "AMOUNTS",
           "Capabilities", "Network", "network_of", "describe_fault"]

#: Faults applied to a node's service processes by signals: kill (SIGKILL, restart at
#: heal), stop (SIGTERM, restart at heal), pause (SIGSTOP, SIGCONT at heal).
PROCESS_FAULTS = frozenset({"kill", "stop", "pause"})
#: Faults on what a node sends, one packet at a time: delayed (with jitter), reordered,
#: duplicated, corrupted. netem where the kernel has it, else composer's packet shaper.
PACKET_FAULTS = frozenset({"latency", "reorder", "duplicate", "corrupt"})
#: Faults applied to a node's network.
NETWORK_FAULTS = frozenset({"partition", "loss", "bandwidth"}) | PACKET_FAULTS
#: Every fault kind, in the order help and errors list them (the one source of the names).
FAULT_KINDS = ("partition", "loss", "latency", "reorder", "duplicate", "corrupt", "bandwidth",
               "kill", "stop", "pause", "clock")
ALL_FAULTS = frozenset(FAULT_KINDS)
assert ALL_FAULTS == PROCESS_FAULTS | NETWORK_FAULTS | {"clock"}

#: How a partition splits the fault targets P, given the fault's own targets A:
#: halves: A | P-A; isolate: each of A alone; bridge: the rest of P in two halves that
#: only A still joins; one-way: A's packets to P-A are dropped, the other way passes.
PARTITION_SHAPES = ("halves", "isolate", "bridge", "one-way")
#: a partition cutting exactly its targets, directed pairs "a>b" (what a fixture's
#: ``control partition`` asks for; never drawn by the search)
PAIRS = "pairs"

#: The amounts a schedule draws for each parameterised kind: loss, reorder, duplicate and
#: corrupt in percent of the target's packets, bandwidth in kbit/s, latency in ms (with a
#: tenth of it as jitter), clock offset in seconds.
AMOUNTS: Mapping[str, tuple[int, ...]] = {
    "loss": (10, 30, 50, 90),
    "bandwidth": (64, 512, 4096),
    "latency": (20, 200, 1000),
    "reorder": (10, 25, 50),
    "duplicate": (1, 10, 25),
    "corrupt": (1, 5, 10),
    "clock": (-3600, -300, -30, -5, 5, 30, 300, 3600),
}
#: jitter a latency fault adds, as a share of its latency
LATENCY_JITTER = 0.1
_UNITS = {"loss": "%", "bandwidth": "kbit/s", "latency": "ms", "clock": "s", "reorder": "%",
          "duplicate": "%", "corrupt": "%"}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a schedule may draw for one cluster: fault kinds, their targets, driver nodes."""

    #: fault kinds the backend supports and the project allows
    faults: frozenset[str]
    #: nodes that run a service, so a fault on them means something
    fault_targets: tuple[str, ...]
    #: nodes that drivers run on
    driver_nodes: tuple[str, ...]
    #: most parallel_driver copies at once
    max_parallel: int

    def restricted(self, allowed: tuple[str, ...] | None) -> Capabilities:
        """Return these capabilities with faults limited to ``allowed`` (None: no limit)."""
        if allowed is None:
            return self
        return dataclasses.replace(self, faults=self.faults & frozenset(allowed))


class FaultLike(Protocol):
    kind: str
    targets: tuple[str, ...]
    shape: str | None
    amount: float | None


def describe_fault(fault: FaultLike) -> str:
    """Return ``fault`` in a few words: "partition isolate kv-1", "loss 30% kv-2,kv-3"."""
    targets = ",".join(fault.targets)
    if fault.kind == "partition":
        return f"partition {fault.shape or 'halves'} {targets}"
    if fault.amount is not None:
        sign = "+" if fault.kind == "clock" and fault.amount > 0 else ""
        return f"{fault.kind} {sign}{fault.amount:g}{_UNITS.get(fault.kind, '')} {targets}"
    return f"{fault.kind} {targets}"


@dataclasses.dataclass(frozen=True)
class Network:
    """What a backend must make the network between nodes do; empty means healthy."""

    #: (source, destination) node pairs whose packets are dropped
    blocked: frozenset[tuple[str, str]] = frozenset()
    #: node -> percent of the packets it sends that are dropped
    loss: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: node -> kbit/s its sending is limited to
    bandwidth: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: node -> ms of delay added to what it sends (jitter: ``LATENCY_JITTER`` of it)
    latency: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: node -> percent of what it sends that is reordered, duplicated, corrupted
    reorder: Mapping[str, float] = dataclasses.field(default_factory=dict)
    duplicate: Mapping[str, float] = dataclasses.field(default_factory=dict)
    corrupt: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: node -> the link it asked for itself (``sdk.sync.configure_network``), which the
    #: faults above add to: a ``composer.links.Link``
    links: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in dataclasses.fields(self))

    def packets(self, node: str) -> dict[str, float]:
        """The packet faults on what ``node`` sends (``composer_agent.packet_shaper``'s
        shape: latency, jitter, reorder, duplicate, corrupt); empty: none."""
        shape = {kind: getattr(self, kind)[node] for kind in sorted(PACKET_FAULTS)
                 if node in getattr(self, kind)}
        if "latency" in shape:
            shape["jitter"] = shape["latency"] * LATENCY_JITTER
        return shape


def network_of(faults: Iterable[FaultLike], participants: Sequence[str],
               links: Mapping[str, Any] | None = None) -> Network:
    """Combine the network ``faults`` in effect over the nodes ``participants`` may cut,
    on top of the ``links`` nodes configured for themselves.

    Partitions add up (the union of blocked pairs); for the other kinds on one node the
    harshest fault wins.
    """
    blocked: set[tuple[str, str]] = set()
    harshest: dict[str, dict[str, float]] = {
        kind: {} for kind in ("loss", "bandwidth", *sorted(PACKET_FAULTS))}
    for fault in faults:
        if fault.kind == "partition":
            blocked |= _partition(fault.shape or "halves", fault.targets, participants)
        elif fault.kind in harshest:
            amount = float(fault.amount if fault.amount is not None else AMOUNTS[fault.kind][0])
            worst = min if fault.kind == "bandwidth" else max
            for node in fault.targets:
                old = harshest[fault.kind].get(node)
                harshest[fault.kind][node] = amount if old is None else worst(old, amount)
    return Network(frozenset(blocked), **harshest, links=dict(links or {}))


def _partition(shape: str, targets: Sequence[str], participants: Sequence[str]
               ) -> set[tuple[str, str]]:
    if shape == PAIRS:  # a fixture's "partition A B": exactly the pairs named, "a>b"
        return {tuple(t.split(">", 1)) for t in targets}  # type: ignore[misc]
    side = [n for n in participants if n in targets]
    rest = [n for n in participants if n not in targets]
    if shape == "isolate":
        return {(a, b) for a in side for b in participants if a != b} | {
            (b, a) for a in side for b in participants if a != b}
    if shape == "one-way":
        return {(a, b) for a in side for b in rest}
    if shape == "bridge":
        left, right = rest[: len(rest) // 2], rest[len(rest) // 2:]
        return {(a, b) for a in left for b in right} | {(b, a) for a in left for b in right}
    if shape == "halves":
        return {(a, b) for a in side for b in rest} | {(b, a) for a in side for b in rest}
    raise ValueError(f"unknown partition shape {shape!r}; known: {', '.join(PARTITION_SHAPES)}")
