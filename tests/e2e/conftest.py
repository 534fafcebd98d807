"""The agent fixtures serve the e2e tests of the ``agents`` backend too: agents in a
network namespace, listed in an agents file (see ``tests/agent/conftest.py``)."""

from tests.agent.conftest import (agent_hosts_file, agents, agents_file, authority,
                                  client_credentials, namespace, remote_agents_file)

__all__ = ["agent_hosts_file", "agents", "agents_file", "authority", "client_credentials",
           "namespace", "remote_agents_file"]
