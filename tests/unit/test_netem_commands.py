"""Where the kernel has netem, packet faults become one netem qdisc (with tbf beneath it
for bandwidth); per-subnet rules and filters need the packet shaper. This machine has no
netem, so the commands themselves are what is checked here."""

from __future__ import annotations

from composer_agent import network
from composer_agent.network import netem_arguments, netem_can, qdisc_commands


def test_a_shape_becomes_netems_words():
    assert netem_arguments({"latency": 200, "jitter": 20, "duplicate": 10, "corrupt": 1}) == [
        "delay", "200ms", "20ms", "duplicate", "10%", "corrupt", "1%"]
    assert netem_arguments({"reorder": 25}) == ["delay", "10ms", "0ms", "reorder", "25%"]
    assert netem_arguments({"loss": 5}) == ["loss", "5%"]


def test_bandwidth_goes_beneath_netem_and_alone_is_tbf():
    remove, root, child = qdisc_commands("eth0", 512, {"latency": 100})
    assert remove == ["qdisc", "del", "dev", "eth0", "root"]
    assert root[:8] == ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem"]
    assert child[:7] == ["qdisc", "add", "dev", "eth0", "parent", "1:1", "handle"]
    assert "512kbit" in child
    assert qdisc_commands("eth0", 512)[1][5] == "tbf"


def test_rules_and_filters_need_the_shaper(monkeypatch):
    monkeypatch.setattr(network, "_netem", True)
    assert netem_can({"default": {"latency": 50}, "rules": []})
    assert not netem_can({"default": {"latency": 50}, "rules": [{"subnet": "10.0.0.0/8"}]})
    assert not netem_can({"default": {"filter": "drop"}, "rules": []})
    monkeypatch.setattr(network, "_netem", False)
    assert not netem_can({"default": {"latency": 50}, "rules": []})
