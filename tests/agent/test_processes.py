"""The agent's process table, in-process: reaping, groups, detached logs (no network)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from composer_agent.processes import ProcessTable
from tests.agent.support import aio, alive, eventually


@pytest.fixture(params=["pidfd", "thread"])
def reaper(request, monkeypatch):
    """Both ways of reaping: a pidfd per child, or a thread where pidfds are missing."""
    if request.param == "thread":
        monkeypatch.delattr(os, "pidfd_open")
    return request.param


@aio
async def test_exit_codes_are_reaped_while_a_grandchild_holds_the_pipes(reaper, tmp_path):
    table = ProcessTable(tmp_path)
    started = await table.start(["sh", "-c", "sleep 300 & echo $!; exit 5"])
    assert await asyncio.wait_for(started.wait(), 30) == 5  # the pipes are still open
    orphan = int(await started.stdout.readline())
    assert started.describe()["running"] is False and alive(orphan)
    assert table.kill_all() == 0  # none running, but the group is killed all the same
    await eventually(lambda: not alive(orphan), what="orphan killed")
    started.close_pipes()


@aio
async def test_kill_all_and_signals_reach_process_groups(tmp_path):
    table = ProcessTable(tmp_path)
    attached = await table.start(["sleep", "300"], stdin=True)
    detached = await table.start(["sh", "-c", "echo out; echo err >&2; exec sleep 300"],
                                 detach=True)
    assert table.signal(attached, signal.SIGTERM)
    assert await attached.wait() == -signal.SIGTERM
    assert table.signal(attached, signal.SIGTERM) is False  # reaped, its group empty
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [f"{detached.pid}.stderr",
                                                      f"{detached.pid}.stdout"]
    await eventually(lambda: (logs / f"{detached.pid}.stderr").read_text() == "err\n",
                     what="detached output in its logs")
    assert (logs / f"{detached.pid}.stdout").read_text() == "out\n"
    assert table.kill_all() == 1
    await table.wait_all(timeout=30)
    assert detached.returncode == -signal.SIGKILL and detached.seconds >= 0
    assert [p["pid"] for p in table.describe()] == [attached.pid, detached.pid]
    attached.close_pipes()


@aio
async def test_what_cannot_start_leaves_no_trace(tmp_path):
    table = ProcessTable(tmp_path)
    for detach in (False, True):
        with pytest.raises(FileNotFoundError):
            await table.start(["/no/such/program"], detach=detach)
    assert table.describe() == [] and list((tmp_path / "logs").iterdir()) == []
