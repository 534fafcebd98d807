"""The prefix rules and the driver-phase interpreter, against fake nodes (no subprocess).

Fake processes end only when the test releases them, so each assertion follows from the
rules, not from how fast the machine is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from composer.driver_phase import may_start, run_driver_phase
from composer.invocations import Invocations
from composer.run_record import RunRecord
from composer.templates import Command, Template
from composer.timeline import Start, Timeline


@pytest.mark.parametrize("kind, running, allowed", [
    ("parallel_driver", [], True),
    ("parallel_driver", ["parallel_driver"], True),
    ("parallel_driver", ["parallel_driver", "parallel_driver"], False),  # max_parallel 2
    ("parallel_driver", ["serial_driver"], False),
    ("parallel_driver", ["singleton_driver"], False),
    ("parallel_driver", ["anytime", "first"], True),  # only drivers count
    ("serial_driver", [], True),
    ("serial_driver", ["parallel_driver"], False),
    ("serial_driver", ["serial_driver"], False),
    ("singleton_driver", ["anytime"], True),
    ("singleton_driver", ["parallel_driver"], False),
    ("anytime", ["serial_driver", "parallel_driver"], True),
])
def test_prefix_rules(kind, running, allowed):
    assert may_start(kind, running, max_parallel=2) is allowed


class FakeProcess:
    def __init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()

    @property
    def returncode(self) -> int | None:
        return self.done.result() if self.done.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self.done)

    def signal(self, sig: int) -> None:
        if not self.done.done():
            self.done.set_result(-sig)

    async def end_leftovers(self) -> bool:
        return False

    def end(self) -> None:
        self.done.set_result(0)


class FakeNode:
    name = "client-1"
    address = "127.0.0.1"

    def __init__(self) -> None:
        self.processes: dict[str, FakeProcess] = {}

    async def start(self, spec) -> FakeProcess:
        process = FakeProcess()
        self.processes[Path(spec.stdout).stem.split("-", 1)[1]] = process
        return process


class FakeEnv:
    def for_process(self, node, seed: int, label: str) -> dict[str, str]:
        return {}


class NoFaults:
    def start(self, faults, start: float, length: float) -> None:
        assert not faults


def phase(tmp_path: Path, names: list[str], length: float, at: float = 0.0):
    """A driver phase starting ``names`` (file names tell their kind) at ``at`` s."""
    started: dict[str, asyncio.Event] = {n: asyncio.Event() for n in names}
    record = RunRecord(tmp_path, lambda e: e["what"] == "start" and started[e["command"]].set())
    node = FakeNode()
    commands = Invocations(record, {"client-1": node}, FakeEnv(), tmp_path, timeout=60,
                           check_exit=True)
    kinds = {n: n.rsplit("_", 1)[0] for n in names}
    template = Template("main", tmp_path, tuple(Command(n, kinds[n], tmp_path / n)
                                                for n in names))
    timeline = Timeline("main", length, 1, events=tuple(
        Start(at, n, "client-1", i) for i, n in enumerate(names)))
    task = asyncio.ensure_future(run_driver_phase(timeline, template, commands, NoFaults(),
                                                  2, record))
    return task, node, started, record


def test_waiting_starts_go_as_soon_as_the_rules_allow_each(tmp_path):
    """max_parallel 2: the third parallel driver goes when one of the first two ends, the
    serial driver (planned before it) only when no parallel driver runs any more."""
    async def scenario():
        names = ["parallel_driver_a", "parallel_driver_b", "serial_driver_s",
                 "parallel_driver_c"]
        task, node, started, record = phase(tmp_path, names, length=600)
        await started["parallel_driver_a"].wait()
        await started["parallel_driver_b"].wait()
        node.processes["parallel_driver_a"].end()
        await started["parallel_driver_c"].wait()
        assert not started["serial_driver_s"].is_set()
        node.processes["parallel_driver_b"].end()
        node.processes["parallel_driver_c"].end()
        await started["serial_driver_s"].wait()
        order = [e["command"] for e in record.log if e["what"] == "start"]
        assert order == ["parallel_driver_a", "parallel_driver_b", "parallel_driver_c",
                         "serial_driver_s"]
        task.cancel()
        record.close()
    asyncio.run(scenario())


def test_a_start_the_rules_hold_back_to_the_end_of_the_phase_is_skipped_and_said(tmp_path):
    async def scenario():
        task, node, started, record = phase(
            tmp_path, ["serial_driver_s", "parallel_driver_p"], length=0.2)
        await task  # the serial driver never ends: the parallel one cannot start
        skips = [e for e in record.log if e["what"] == "skip"]
        assert [e["command"] for e in skips] == ["parallel_driver_p"]
        assert "prefix rules" in skips[0]["reason"]
        assert record.log[-1]["what"] == "driver phase over"
        assert not started["parallel_driver_p"].is_set()
        record.close()
    asyncio.run(scenario())
