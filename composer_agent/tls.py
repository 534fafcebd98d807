"""Mutual TLS 1.3 between the composer and its agents: the credentials and contexts.

Imports only the standard library. The agent accepts only clients with a certificate
from the run's CA; the client accepts only an agent whose certificate from that CA
names the address it dialled (``composer_agent.certs`` makes them).
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

__all__ = ["Credentials", "server_context", "client_context"]


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What one party needs for mutual TLS: the CA it trusts, its certificate and key."""

    ca: Path
    cert: Path
    key: Path


def server_context(credentials: Credentials) -> ssl.SSLContext:
    """Return the agent's context: TLS 1.3, a client certificate from the CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(credentials.ca))
    context.load_cert_chain(str(credentials.cert), str(credentials.key))
    return context


def client_context(credentials: Credentials) -> ssl.SSLContext:
    """Return the composer's context: TLS 1.3, the agent verified against the CA and the
    address dialled checked against its SubjectAltName."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=str(credentials.ca))
    context.load_cert_chain(str(credentials.cert), str(credentials.key))
    return context
