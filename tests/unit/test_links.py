"""configure_network's requests: Testground's network.Config as its Go SDK marshals it,
errors that name the field, refusals of what a backend cannot apply, and the packet
shaper's configuration once faults are added to a node's own link."""

from __future__ import annotations

import pytest

from composer.faults import Network, network_of
from composer.links import Link, Shape, check_supported, parse_config, shaper_config
from composer.timeline import Fault
from composer_sdk.sync import _link_shape

#: ``network.Config`` as sdk-go's encoding/json writes it (sdk-go network/types.go:
#: durations in nanoseconds, net.IPNet as {"IP", "Mask"} with the mask in base64)
GO_CONFIG = {
    "network": "default",
    "IPv4": None, "IPv6": None,
    "enable": True,
    "default": {"latency": 100_000_000, "jitter": 10_000_000, "bandwidth": 1_000_000,
                "filter": 0, "loss": 0, "corrupt": 0, "corrupt_corr": 0, "reorder": 0,
                "reorder_corr": 0, "duplicate": 0, "duplicate_corr": 0},
    "rules": [{"latency": 0, "jitter": 0, "bandwidth": 0, "filter": 2, "loss": 0,
               "corrupt": 0, "corrupt_corr": 0, "reorder": 0, "reorder_corr": 0,
               "duplicate": 0, "duplicate_corr": 0,
               "subnet": {"IP": "10.77.3.0", "Mask": "////AA=="}}],
    "callback_state": "network-configured",
    "routing_policy": "deny_all",
}


def test_a_go_sdk_config_parses_into_milliseconds_kbits_and_filters():
    link = parse_config(GO_CONFIG)
    assert link.default == Shape(latency=100.0, jitter=10.0, bandwidth=1000.0)
    assert link.rules == (("10.77.3.0/24", Shape(filter="drop")),)
    assert link.enabled and link.callback_state == "network-configured"


def test_the_python_client_writes_what_the_go_sdk_writes():
    shape = _link_shape({"latency": 0.1, "jitter": 0.01, "bandwidth": 1_000_000})
    assert {k: GO_CONFIG["default"][k] for k in shape} == shape
    assert parse_config({"default": shape}).default == parse_config(GO_CONFIG).default


@pytest.mark.parametrize("config, field", [
    ({"default": {"latency": -1}}, "default.latency"),
    ({"default": {"loss": 150}}, "default.loss"),
    ({"default": {"filter": 7}}, "default.filter"),
    ({"rules": [{"subnet": "not a subnet"}]}, "rules[0].subnet"),
    ({"rules": [{}, {"subnet": "10.0.0.0/8", "jitter": "x"}]}, "rules[0].subnet"),
    ({"enable": "yes"}, "enable"),
    ([1, 2], "JSON object"),
])
def test_a_bad_config_names_its_field(config, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_config(config)


def test_what_the_backend_cannot_apply_is_refused_by_field_with_the_reason():
    link = parse_config({"default": {"latency": 50_000_000}})
    with pytest.raises(ValueError, match=r"default\.latency: the local backend cannot apply "
                                         r"it here \(one loopback\)"):
        check_supported(link, {"kill", "partition"}, "local", {"latency": "one loopback"})
    check_supported(link, {"latency"}, "netns", {})
    per_rule = parse_config({"rules": [{"subnet": "10.0.0.0/8", "bandwidth": 8000}]})
    with pytest.raises(ValueError, match=r"rules\[0\]\.bandwidth"):
        check_supported(per_rule, {"latency", "bandwidth"}, "netns", {})


def test_faults_add_to_a_nodes_own_link_and_the_harsher_value_wins():
    link = Link(default=Shape(latency=300.0, reorder=5.0),
                rules=(("10.77.3.2/32", Shape(filter="reject")),))
    faults = [Fault(kind="latency", targets=("a",), at=0, duration=1, amount=200),
              Fault(kind="duplicate", targets=("a",), at=0, duration=1, amount=10)]
    network = network_of(faults, ["a", "b"], {"a": link})
    config = shaper_config(network.links["a"], network.packets("a"))
    assert config == {"default": {"latency": 300.0, "jitter": 20.0, "reorder": 5.0,
                                  "duplicate": 10.0},
                      "rules": [{"subnet": "10.77.3.2/32", "latency": 200.0, "jitter": 20.0,
                                 "duplicate": 10.0, "filter": "reject"}]}
    assert shaper_config(None, network.packets("b")) is None


def test_a_disabled_link_drops_everything_it_sends():
    config = shaper_config(parse_config({"enable": False}), {})
    assert config == {"default": {"filter": "drop"}, "rules": []}


def test_bandwidth_alone_needs_no_shaper():
    assert shaper_config(Link(default=Shape(bandwidth=512.0)), {}) is None
    assert not Network() and Network(links={"a": Link()})


def test_a_link_reads_in_a_line():
    assert parse_config(GO_CONFIG).describe() == (
        "latency 100ms jitter 10ms bandwidth 1000kbit/s; to 10.77.3.0/24: drop")
    assert Link().describe() == "as is" and Link(enabled=False).describe() == "disabled"
