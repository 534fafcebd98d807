"""Fixtures of the agent tests: a CA per test, a network namespace per test, agents in it.

Teardown checks that nothing leaks: every agent exits 0 on SIGTERM without a traceback
on its stderr, no process is left in the namespace, and the namespace and its veth are
gone.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from composer_agent.certs import Authority, Credentials
from tests.agent.support import Agent, Hosts, Namespace, start_agent, write_agents_file


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority.create(tmp_path / "ca")


@pytest.fixture
def client_credentials(authority: Authority, tmp_path: Path) -> Credentials:
    return authority.issue(tmp_path / "client", "client", server=False)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    missing = [tool for tool in ("ip",) if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        reason = f"needs root and {missing}" if missing else "needs root (ip netns)"
        if os.environ.get("COMPOSER_REQUIRE_NETWORK"):
            pytest.fail(f"agent tests: {reason} (COMPOSER_REQUIRE_NETWORK is set)")
        pytest.skip(f"agent tests: {reason}")
    made = Namespace.create()
    yield made
    leaks = made.delete()
    assert not leaks, f"left behind: {leaks}"


@pytest.fixture
def agents(namespace: Namespace, authority: Authority,
           tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Return ``start(server=None, heartbeat_timeout=120, root=None, address=None) -> Agent``;
    the default server certificate is from the test's CA and names the agent's address
    (the namespace's first unless ``address`` says otherwise, see ``add_address``)."""
    started: list[Agent] = []

    def start(*, server: Credentials | None = None, heartbeat_timeout: float = 120,
              root: Path | None = None, address: str | None = None,
              hide: Path | tuple[Path, ...] | None = None) -> Agent:
        address = address or namespace.address
        if server is None:
            server = authority.issue(tmp_path / f"server-{address}", "server", server=True,
                                     hosts=[address])
        agent = start_agent(namespace, server, tmp_path / f"agent-{len(started)}.stderr",
                            heartbeat_timeout=heartbeat_timeout, root=root, address=address,
                            hide=hide)
        started.append(agent)
        return agent

    yield start
    problems = []
    for agent in started:
        status = agent.stop()
        errors = agent.stderr.read_text()
        if status != 0 or "Traceback" in errors or "never retrieved" in errors:
            problems.append(f"agent {agent.pid} exited {status}:\n{errors}")
    deadline = time.monotonic() + 5
    while namespace.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    if namespace.pids():
        problems.append(f"processes outlived their agent: {namespace.pids()}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def agent(agents: Callable[..., Agent], tmp_path: Path) -> Agent:
    return agents(root=tmp_path / "root")


@pytest.fixture
def agents_file(agents: Callable[..., Agent], namespace: Namespace,
                client_credentials: Credentials, tmp_path: Path) -> Path:
    """An agents file (the ``agents`` backend's) listing three agents, each on an
    address and with a root of its own, like three hosts on one network."""
    addresses = [namespace.address, namespace.add_address(), namespace.add_address()]
    started = [agents(address=a, root=tmp_path / f"root-{a}") for a in addresses]
    path = tmp_path / "agents.toml"
    write_agents_file(path, client_credentials, started)
    return path


@pytest.fixture
def remote_agents_file(agents: Callable[..., Agent], namespace: Namespace,
                       client_credentials: Credentials, tmp_path: Path) -> Callable[..., Path]:
    """Return ``make(count, hidden, also_hide=()) -> agents file``: ``count`` agents, each
    on an address of its own and with an empty private tmpfs over ``hidden`` (its root
    inside it) and ``also_hide``, like machines that share none of the files there with
    composer (the project, its runs; composer's own sources)."""

    def make(count: int, hidden: Path, also_hide: tuple[Path, ...] = ()) -> Path:
        hidden.mkdir(parents=True, exist_ok=True)
        addresses = [namespace.address] + [namespace.add_address() for _ in range(count - 1)]
        started = [agents(address=a, root=hidden / f"agent-root-{a}", hide=(hidden, *also_hide))
                   for a in addresses]
        path = tmp_path / "remote-agents.toml"
        write_agents_file(path, client_credentials, started)
        return path

    return make


@pytest.fixture
def agent_hosts_file(authority: Authority, client_credentials: Credentials,
                     tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Return ``make(count, hidden=None) -> agents file``: ``count`` agents, each in a
    network namespace of its own (``Hosts``: its own firewall and addresses, like a
    machine), optionally with an empty private tmpfs over ``hidden``. Teardown stops
    them, checks each exited cleanly, and that no process, namespace or veth stayed."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        (pytest.fail if os.environ.get("COMPOSER_REQUIRE_NETWORK") else pytest.skip)(
            "agent hosts need root and ip")
    made: list[tuple[Hosts, list[Agent]]] = []

    def make(count: int, hidden: Path | None = None) -> Path:
        hosts = Hosts.create(count)
        started: list[Agent] = []
        made.append((hosts, started))
        if hidden is not None:
            hidden.mkdir(parents=True, exist_ok=True)
        for index, host in enumerate(hosts.hosts):
            server = authority.issue(tmp_path / f"host-{host.address}", "server", server=True,
                                     hosts=[host.address])
            root = (hidden or tmp_path) / f"host-root-{index}"
            started.append(start_agent(host, server, tmp_path / f"host-agent-{index}.stderr",
                                       root=root, hide=hidden))
        path = tmp_path / "hosts-agents.toml"
        write_agents_file(path, client_credentials, started)
        return path

    yield make
    problems = []
    for hosts, started in made:
        for agent in started:
            status = agent.stop()
            errors = agent.stderr.read_text()
            if status != 0 or "Traceback" in errors:
                problems.append(f"agent {agent.pid} exited {status}:\n{errors}")
        problems += hosts.delete()
    assert not problems, "\n".join(problems)
