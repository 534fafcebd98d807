"""The agents backend's pure parts: reading an agents file, and splitting a cluster's
network into what each agent enforces on its own machine."""

from __future__ import annotations

import pytest

from composer_agent.network import NodeNetwork
from composer.clusters.agents import load_agents_file, node_views
from composer.errors import ConfigError
from composer.faults import Network

ADDRESS = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}


def test_a_one_way_cut_is_dropped_where_it_arrives():
    views = node_views(Network(blocked=frozenset({("a", "b")})), ADDRESS)
    assert views["a"] == NodeNetwork(peers=("10.0.0.2", "10.0.0.3"))
    assert views["b"] == NodeNetwork(peers=("10.0.0.1", "10.0.0.3"), drop_from=("10.0.0.1",))
    assert views["c"] == NodeNetwork(peers=("10.0.0.1", "10.0.0.2"))


def test_limits_go_to_their_node_only_and_a_healthy_network_clears_everything():
    views = node_views(Network(loss={"c": 30}, bandwidth={"a": 512}, latency={"b": 50}), ADDRESS)
    assert views["a"].loss_from == views["b"].loss_from == (("10.0.0.3", 30),)
    assert views["c"].loss_from == ()  # c's own packets are lost by their receivers
    assert views["a"].bandwidth == 512
    assert views["b"].packets == {"default": {"latency": 50, "jitter": 5}, "rules": []}
    assert views["c"].bandwidth is None and views["c"].packets is None
    healthy = node_views(Network(), ADDRESS)
    assert all(v == NodeNetwork(peers=v.peers) for v in healthy.values())


def _credentials(tmp_path):
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("x")
    return 'ca = "ca.pem"\ncert = "client.pem"\nkey = "client.key"\n'


def test_agents_file_in_toml_and_json(tmp_path):
    path = tmp_path / "agents.toml"
    path.write_text(_credentials(tmp_path) + '[[agents]]\nurl = "https://10.0.0.2:7800"\n'
                    '[[agents]]\nurl = "https://h:7800"\naddress = "10.0.0.3"\n')
    loaded = load_agents_file(path)
    assert loaded.urls == ("https://10.0.0.2:7800", "https://h:7800")
    assert loaded.addresses == ("10.0.0.2", "10.0.0.3")
    assert loaded.ca == tmp_path / "ca.pem"
    as_json = tmp_path / "agents.json"
    as_json.write_text('{"ca": "ca.pem", "cert": "client.pem", "key": "client.key", '
                       '"agents": [{"url": "https://10.0.0.2:7800"}]}')
    assert load_agents_file(as_json).urls == ("https://10.0.0.2:7800",)


@pytest.mark.parametrize("body, message", [
    ("", "ca = "),
    ('ca = "missing.pem"\ncert = "client.pem"\nkey = "client.key"\n', "missing.pem.*no such file"),
    ("CREDENTIALS", "list the agents"),
    ('CREDENTIALS[[agents]]\nurl = "http://10.0.0.2:7800"\n', "agent 1: url"),
    ("ca = [", "not valid toml"),
])
def test_a_bad_agents_file_says_what_is_wrong(tmp_path, body, message):
    path = tmp_path / "agents.toml"
    path.write_text(body.replace("CREDENTIALS", _credentials(tmp_path)))
    with pytest.raises(ConfigError, match=message):
        load_agents_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_agents_file(tmp_path / "nowhere.toml")


def test_clusters_at_once_hold_agents_of_their_own_until_cleanup(tmp_path):
    """--jobs N runs N clusters over one agents file: no agent serves two at once."""
    import asyncio

    from composer.clusters.agents import AgentsCluster
    from composer.errors import InfraError

    path = tmp_path / "agents.toml"
    path.write_text(_credentials(tmp_path) + "".join(
        f'[[agents]]\nurl = "https://10.0.0.{i}:7800"\n' for i in range(1, 6)))
    first, second = AgentsCluster(tmp_path / "a", path), AgentsCluster(tmp_path / "b", path)
    assert first._lease(2) == [0, 1]
    assert second._lease(2) == [2, 3]
    with pytest.raises(InfraError, match=r"2 more node\(s\) asked, but 1 of the 5 agents.*--jobs"):
        AgentsCluster(tmp_path / "c", path)._lease(2)
    asyncio.run(first.cleanup())
    assert AgentsCluster(tmp_path / "d", path)._lease(3) == [0, 1, 4]
