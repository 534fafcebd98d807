"""The composer node agent: an HTTPS server (mutual TLS) on every remote node, and its client.

The composer starts ``composer-agent serve`` on each node of a remote backend and drives
it with ``composer_agent.client.AgentClient``: heartbeat, file put/get, streamed processes,
signals and a TCP proxy to node-local ports. Modules, one concept each:

- ``certs``: the run's CA, short-lived certificates, and the TLS contexts;
- ``protocol``: the WebSocket wire protocols (exec and dial), written down once;
- ``server``: the route table and ``serve``; ``files``, ``streaming`` and ``dial``
  hold its handlers, ``processes`` the table of started processes, ``heartbeat`` the
  watchdog;
- ``client``, ``remote`` and ``tunnel``: the asyncio client, ``errors`` its exceptions;
- ``cli``: the ``composer-agent`` command.

Nothing here imports ``composer`` or ``hypothesis``: the agent runs alone on a node,
with the standard library, aiohttp and cryptography only.
"""
