"""configure_network as composer serves it: a config published on network:<host> is
applied, its callback state entered and an answer published, in order; a bad or
unsupported one is refused by field and the callback state is left alone."""

from __future__ import annotations

import asyncio

from composer.link_requests import serve_link_requests
from composer.sync_state import SyncState

PREFIX = "run:r:plan:p:case:c"


async def answers(state: SyncState, node: str, count: int) -> list[dict]:
    """The first ``count`` answers composer published for ``node``."""
    got = []
    async for answer in state.subscribe(f"{PREFIX}:topics:network-result:{node}"):
        got.append(answer)
        if len(got) == count:
            return got
    return got


def test_requests_are_applied_answered_and_signalled_in_order():
    async def main() -> None:
        state, applied, notes = SyncState(), [], []

        async def apply(node, link):
            applied.append((node, link.default.latency))

        server = asyncio.ensure_future(serve_link_requests(
            state, PREFIX, ["a", "b"], apply, {"latency"}, "netns", {},
            lambda what, **fields: notes.append((what, fields))))
        topic = f"{PREFIX}:topics:network:a"
        state.publish(topic, {"default": {"latency": 5_000_000}, "callback_state": "done"})
        state.publish(topic, {"default": {"latency": -1}, "callback_state": "done"})
        state.publish(topic, {"default": {"bandwidth": 8000}, "callback_state": "done"})
        got = await answers(state, "a", 3)
        server.cancel()
        assert applied == [("a", 5.0)]
        assert got[0] == {"seq": 1, "error": None}
        assert got[1]["seq"] == 2 and "default.latency" in got[1]["error"]
        assert got[2]["seq"] == 3 and "default.bandwidth: the netns backend cannot" in (
            got[2]["error"])
        assert state.signal_entry(f"{PREFIX}:states:done") == 2, "entered once, for the good one"
        assert [f.get("link") for _, f in notes] == ["latency 5ms", None, None]

    asyncio.run(main())


def test_a_failure_to_apply_is_an_answer_not_a_dead_server():
    async def main() -> None:
        state = SyncState()

        async def apply(node, link):
            raise RuntimeError("tc said no")

        server = asyncio.ensure_future(serve_link_requests(
            state, PREFIX, ["a"], apply, {"latency"}, "netns", {}, lambda *a, **k: None))
        for _ in range(2):
            state.publish(f"{PREFIX}:topics:network:a", {"default": {"latency": 1}})
        got = await answers(state, "a", 2)
        server.cancel()
        assert [a["error"] for a in got] == ["configure_network: a: tc said no"] * 2

    asyncio.run(main())
