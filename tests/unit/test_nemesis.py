"""Fault families against a fake cluster: a heal runs to its end even when the fault's
task is cancelled in the middle of it (a fault whose planned end is the end of the driver
phase starts healing just as heal_all cancels it)."""

from __future__ import annotations

import asyncio
import time

import pytest

from composer.faults import network_of
from composer.nemesis.family import to_the_end
from composer.nemesis.network import NetworkFaults
from composer.timeline import Fault


class GatedCluster:
    """Records every network it is asked to enforce; a gate can hold a reshape."""

    def __init__(self) -> None:
        self.shapes: list = []
        self.gate: asyncio.Event | None = None

    async def shape_network(self, network) -> None:
        self.shapes.append(network)
        if self.gate is not None:
            await self.gate.wait()


async def _until(condition) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def test_a_heal_cancelled_halfway_still_removes_the_partition_and_says_so():
    async def scenario():
        cluster, notes = GatedCluster(), []
        faults = NetworkFaults(cluster, ["a", "b"], time.monotonic(),
                               lambda what, **f: notes.append(what))
        fault = Fault(0.0, "partition", ("a",), 0.01, shape="halves")
        cluster.gate = asyncio.Event()
        task = asyncio.ensure_future(faults.hold(fault, time.monotonic()))
        await _until(lambda: len(cluster.shapes) == 1)
        cluster.gate.set()  # applied
        await _until(lambda: notes == ["fault"])
        cluster.gate = asyncio.Event()  # hold the heal's reshape ...
        await _until(lambda: len(cluster.shapes) == 2)
        task.cancel()  # ... and cancel the fault in the middle of it, as heal_all does
        await asyncio.sleep(0)
        cluster.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert notes == ["fault", "heal"]  # before the fix: the heal was cut, no note
        assert cluster.shapes[-1] == network_of([], ["a", "b"])
    asyncio.run(scenario())


def test_to_the_end_passes_errors_and_a_plain_run_on():
    async def scenario():
        async def fails():
            raise ValueError("boom")
        with pytest.raises(ValueError):
            await to_the_end(fails())
        done = []

        async def works():
            done.append(1)
        await to_the_end(works())
        assert done == [1]
    asyncio.run(scenario())


class SlowFirstWrite:
    """A node whose first file write takes longer than the next (a thread, an agent's
    round trip): the order writes land in is not the order they began."""

    def __init__(self) -> None:
        self.files: dict = {}
        self.writes = 0

    async def send_file(self, path, data: bytes, mode: int = 0o644) -> None:
        self.writes += 1
        await asyncio.sleep(0.05 if self.writes == 1 else 0)
        self.files[path] = data


def test_two_clock_heals_at_once_leave_the_offset_of_what_is_left():
    from types import SimpleNamespace

    from composer.nemesis.clock import ClockFaults

    async def scenario():
        node = SlowFirstWrite()
        service = SimpleNamespace(name="db-2", clock_file="clock", node=node)
        clock = ClockFaults({"db-2": service}, time.monotonic(), lambda *a, **k: None)
        clock.offsets["db-2"] = [-3600.0, 30.0]
        clock.offsets["db-2"].remove(-3600.0)  # the first heal: writes +30, slowly
        first = asyncio.ensure_future(clock.set_clock(service))
        await asyncio.sleep(0)
        clock.offsets["db-2"].remove(30.0)  # the second: 0, at once
        await asyncio.gather(first, clock.set_clock(service))
        return node.files["clock"]

    assert asyncio.run(scenario()) == b"+0\n"
