"""The exceptions of the agent client.

Imports nothing. ``AgentError`` is what callers catch; ``AgentUnreachable`` narrows it
to "no answer at all", which a caller may retry or report as an infrastructure fault.
"""

from __future__ import annotations

__all__ = ["AgentError", "AgentUnreachable"]


class AgentError(Exception):
    """The agent answered with an error, refused the request, or the connection broke.

    The message carries the agent's own ``{"error": ...}`` text where there is one;
    ``status`` is the HTTP status of the agent's answer (404: no such file or process),
    None when there was no answer with a status.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AgentUnreachable(AgentError):
    """The agent could not be reached, or the TLS handshake failed.

    Causes: nothing listening at the URL, a network fault, a timeout, an agent whose
    certificate is not from the run's CA or does not name the dialled address, or an
    agent refusing the client's certificate (with TLS 1.3 that shows only on the first
    read, as a broken connection). The original exception is chained as ``__cause__``.
    Remedy: check the URL, that the agent runs, and that both sides use the same run's
    certificates.
    """
