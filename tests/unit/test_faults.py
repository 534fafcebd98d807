"""Network faults compose into one ``Network``: partition shapes cut exactly their pairs,
overlapping faults add up, the harshest loss or limit wins, and healing is the empty
network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.faults import PARTITION_SHAPES, Network, describe_fault, network_of
from composer.timeline import Fault

NODES = ["a", "b", "c", "d", "e"]


def cut(*faults: Fault) -> set[tuple[str, str]]:
    return set(network_of(faults, NODES).blocked)


def both(x: set[str], y: set[str]) -> set[tuple[str, str]]:
    return {(a, b) for a in x for b in y} | {(b, a) for a in x for b in y}


def test_halves_cut_both_ways_between_the_sides():
    assert cut(Fault(0, "partition", ("a", "b"), 1, shape="halves")) == both({"a", "b"},
                                                                             {"c", "d", "e"})


def test_isolate_cuts_each_target_from_every_other_node():
    assert cut(Fault(0, "partition", ("c",), 1, shape="isolate")) == both({"c"}, {"a", "b", "d", "e"})
    two = cut(Fault(0, "partition", ("a", "b"), 1, shape="isolate"))
    assert ("a", "b") in two and ("b", "a") in two


def test_bridge_splits_the_rest_and_only_the_bridge_sees_both_halves():
    blocked = cut(Fault(0, "partition", ("c",), 1, shape="bridge"))
    assert blocked == both({"a", "b"}, {"d", "e"})
    assert not {p for p in blocked if "c" in p}


def test_one_way_drops_only_the_targets_packets_to_the_rest():
    blocked = cut(Fault(0, "partition", ("a",), 1, shape="one-way"))
    assert blocked == {("a", x) for x in "bcde"}


def test_nodes_outside_the_participants_are_never_cut():
    blocked = cut(Fault(0, "partition", ("a", "client-1"), 1, shape="isolate"))
    assert not any("client-1" in pair for pair in blocked)


def test_overlapping_partitions_add_up_and_the_harshest_limit_wins():
    network = network_of([
        Fault(0, "partition", ("a",), 1, shape="isolate"),
        Fault(0, "partition", ("e",), 1, shape="one-way"),
        Fault(0, "loss", ("a", "b"), 1, amount=10),
        Fault(0, "loss", ("b",), 1, amount=50),
        Fault(0, "bandwidth", ("c",), 1, amount=4096),
        Fault(0, "bandwidth", ("c",), 1, amount=64),
        Fault(0, "latency", ("d",), 1, amount=20),
        Fault(0, "kill", ("d",), 1),
    ], NODES)
    assert ("a", "b") in network.blocked and ("e", "b") in network.blocked
    assert ("b", "e") not in network.blocked
    assert network.loss == {"a": 10, "b": 50}
    assert network.bandwidth == {"c": 64}
    assert network.latency == {"d": 20}


def test_no_faults_is_a_healthy_network():
    assert not network_of([], NODES) and network_of([], NODES) == Network()
    assert network_of([Fault(0, "kill", ("a",), 1)], NODES) == Network()


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="one-way"):
        network_of([Fault(0, "partition", ("a",), 1, shape="zigzag")], NODES)


@given(st.sampled_from(PARTITION_SHAPES), st.lists(st.sampled_from(NODES), unique=True))
def test_a_partition_never_cuts_a_node_from_itself_or_leaves_the_participants(shape, targets):
    for a, b in cut(Fault(0, "partition", tuple(targets), 1, shape=shape)):
        assert a != b and a in NODES and b in NODES


def test_describe_fault():
    assert describe_fault(Fault(0, "partition", ("a", "b"), 1, shape="bridge")) == "partition bridge a,b"
    assert describe_fault(Fault(0, "loss", ("a",), 1, amount=30)) == "loss 30% a"
    assert describe_fault(Fault(0, "clock", ("a",), 1, amount=300)) == "clock +300s a"
    assert describe_fault(Fault(0, "clock", ("a",), 1, amount=-5)) == "clock -5s a"
    assert describe_fault(Fault(0, "bandwidth", ("a",), 1, amount=64)) == "bandwidth 64kbit/s a"
    assert describe_fault(Fault(0, "kill", ("a",), 1)) == "kill a"
