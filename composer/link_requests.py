"""Serves ``configure_network`` requests of one timeline, as Testground's sidecar does.

A node publishes its wanted link (Testground's ``network.Config``) on the topic
``network:<hostname>`` of its run's scope and waits on the config's ``callback_state``.
Composer reads each such topic in-process, checks the config against what the backend
can apply, has the nemesis enforce it (faults keep adding to it), enters the callback
state, and answers on ``network-result:<hostname>`` with ``{"seq", "error"}`` so that
composer's own client can raise an error naming the field instead of waiting out its
timeout. A refused config leaves the callback state alone (Testground clients then time
out) and is noted in the timeline's log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from composer.links import Link, check_supported, parse_config
from composer.sync_state import SyncError, SyncState

__all__ = ["serve_link_requests"]

Apply = Callable[[str, Link], Awaitable[None]]
Note = Callable[..., None]


async def serve_link_requests(state: SyncState, prefix: str, nodes: Sequence[str],
                              apply: Apply, kinds: Collection[str], backend: str,
                              why: Mapping[str, str], note: Note) -> None:
    """Serve every node's requests until cancelled (when the timeline ends)."""
    await asyncio.gather(*(_serve(state, prefix, node, apply, kinds, backend, why, note)
                           for node in nodes))


async def _serve(state: SyncState, prefix: str, node: str, apply: Apply,
                 kinds: Collection[str], backend: str, why: Mapping[str, str],
                 note: Note) -> None:
    seq = 0
    try:
        async for request in state.subscribe(f"{prefix}:topics:network:{node}"):
            seq += 1
            error = None
            try:
                link = parse_config(request)
                check_supported(link, kinds, backend, why)
                await apply(node, link)
            except ValueError as exc:
                error = f"configure_network: {exc}"
            except Exception as exc:  # the backend failed to apply it
                error = f"configure_network: {node}: {exc}"
            note("configure network", node=node, seq=seq,
                 **({"error": error} if error else {"link": link.describe()}))
            if error is None and link.callback_state:
                state.signal_entry(f"{prefix}:states:{link.callback_state}")
            state.publish(f"{prefix}:topics:network-result:{node}",
                          {"seq": seq, "error": error})
    except SyncError:
        return  # the timeline's scope ended
