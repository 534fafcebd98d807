"""Mutual TLS: only the run's composer reaches an agent, and only the run's agents are
believed. Every check runs against a real agent in its own network namespace."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from composer_agent.certs import Authority
from composer_agent.client import AgentClient, AgentError, AgentUnreachable
from composer_agent.protocol import VERSION
from tests.agent.support import aio


@aio
async def test_a_client_with_the_runs_certificate_is_served(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        beat = await client.heartbeat()
    assert beat["ok"] is True and beat["pid"] == agent.pid and beat["version"] == VERSION


@aio
async def test_a_client_without_a_certificate_is_refused(agent, client_credentials):
    # The client trusts the agent, but has no certificate to show.
    context = ssl.create_default_context(cafile=str(client_credentials.ca))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{agent.url}/v1/heartbeat", ssl=context) as response:
                await response.read()
                pytest.fail(f"the agent answered {response.status}")
    await _still_serves(agent, client_credentials)


@aio
async def test_a_client_certificate_from_another_ca_is_refused(agent, client_credentials,
                                                              tmp_path):
    other = Authority.create(tmp_path / "other").issue(tmp_path / "other", "client",
                                                        server=False)
    # It trusts the right CA (so the agent is believed) but shows a stranger's certificate.
    stranger = type(other)(ca=client_credentials.ca, cert=other.cert, key=other.key)
    async with AgentClient(agent.url, stranger, timeout=10) as client:
        with pytest.raises(AgentUnreachable) as refused:
            await client.heartbeat()
    assert isinstance(refused.value, AgentError)
    await _still_serves(agent, client_credentials)


@aio
async def test_an_agent_certificate_from_another_ca_is_refused(agents, namespace,
                                                              client_credentials, tmp_path):
    impostor = Authority.create(tmp_path / "impostor").issue(
        tmp_path / "impostor", "server", server=True, hosts=[namespace.address])
    agent = agents(server=impostor)
    async with AgentClient(agent.url, client_credentials, timeout=10) as client:
        with pytest.raises(AgentUnreachable, match="certificate verify failed"):
            await client.heartbeat()


@aio
async def test_an_agent_certificate_for_another_address_is_refused(agents, authority,
                                                                  client_credentials, tmp_path):
    elsewhere = authority.issue(tmp_path / "elsewhere", "server", server=True,
                                hosts=["10.255.255.254", "node-b"])
    agent = agents(server=elsewhere)
    async with AgentClient(agent.url, client_credentials, timeout=10) as client:
        with pytest.raises(AgentUnreachable, match="IP address mismatch|hostname"):
            await client.heartbeat()


async def _still_serves(agent, credentials) -> None:
    """The refusal was about the certificate: the same agent serves the run's client."""
    async with AgentClient(agent.url, credentials) as client:
        assert (await client.heartbeat())["ok"] is True
