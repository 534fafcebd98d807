"""Streamed processes on a real agent: stdin, output, signals, exit codes, detach."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap

import pytest

from composer_agent.client import AgentClient, AgentError
from tests.agent.support import aio, alive, eventually, peak_rss_mib

_USR1 = textwrap.dedent("""
    import signal, sys, time
    def got(number, frame):
        print("got", signal.Signals(number).name, flush=True)
        sys.exit(0)
    signal.signal(signal.SIGUSR1, got)
    print("ready", flush=True)
    time.sleep(300)
""")


@aio
async def test_stdin_streamed_to_cat_comes_back(agent, client_credentials, tmp_path):
    data = os.urandom(1 << 20)  # more than the pipes hold: both directions must flow
    async with AgentClient(agent.url, client_credentials) as client:
        cat = await client.start(["cat"], stdin=True)
        for at in range(0, len(data), 50_000):
            await cat.write_stdin(data[at:at + 50_000])
        await cat.close_stdin()
        assert await cat.wait() == 0
        assert cat.stdout_bytes == data and cat.stderr_bytes == b""

        out = tmp_path / "cat.out"
        cat = await client.start(["cat"], stdin=True, stdout=out)
        await cat.write_stdin(b"to a file\n")
        await cat.close_stdin()
        assert await cat.wait() == 0
    assert out.read_bytes() == b"to a file\n" and cat.stdout_bytes == b""


@aio
async def test_exit_codes_and_streams_are_reported(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        process = await client.start(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert await process.wait() == 3
        assert process.returncode == 3 and process.seconds >= 0
        assert (process.stdout_bytes, process.stderr_bytes) == (b"out\n", b"err\n")
        assert await (await client.start(["true"])).wait() == 0


@aio
async def test_signals_reach_the_process(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        sleeper = await client.start(["sleep", "300"])
        sleeper.signal(signal.SIGTERM)
        assert await sleeper.wait() == -signal.SIGTERM

        handler = await client.start([sys.executable, "-c", _USR1])
        await eventually(lambda: b"ready" in handler.stdout_bytes, what="handler ready")
        handler.signal(signal.SIGUSR1)
        assert await handler.wait() == 0
        assert handler.stdout_bytes == b"ready\ngot SIGUSR1\n"
        handler.signal(signal.SIGKILL)  # after the exit: a no-op


@aio
async def test_a_signal_reaches_the_whole_process_group(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        shell = await client.start(["sh", "-c", "sleep 300 & echo $!; wait"])
        await eventually(lambda: shell.stdout_bytes.endswith(b"\n"), what="child pid")
        child = int(shell.stdout_bytes)
        assert alive(child)
        shell.signal(signal.SIGTERM)
        assert await shell.wait() == -signal.SIGTERM
        await eventually(lambda: not alive(child), what=f"child {child} gone")


@aio
async def test_a_grandchild_holding_the_output_does_not_hold_the_exit(agent,
                                                                     client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        shell = await client.start(["sh", "-c", "sleep 300 & echo $!"])
        assert await shell.wait() == 0  # though the orphan keeps stdout open
        orphan = int(shell.stdout_bytes)
        assert alive(orphan)
        await client.signal(shell.pid, signal.SIGKILL)  # the group outlives its leader
        await eventually(lambda: not alive(orphan), what=f"orphan {orphan} killed")


@aio
async def test_what_a_process_left_running_is_ended_after_its_exit(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        shell = await client.start(["sh", "-c", "sleep 300 & echo $!"])
        assert await shell.wait() == 0
        orphan = int(shell.stdout_bytes)
        assert await shell.end_leftovers() is True
        await eventually(lambda: not alive(orphan), what=f"orphan {orphan} killed")
        alone = await client.start(["true"])
        assert await alone.wait() == 0
        assert await alone.end_leftovers() is False  # nothing was left


@aio
async def test_env_and_cwd(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        env = await client.start(["/usr/bin/env"], env={"ONLY": "this"})
        assert await env.wait() == 0
        assert env.stdout_bytes == b"ONLY=this\n"  # replaced, not merged
        pwd = await client.start(["pwd"], cwd="/usr")
        assert await pwd.wait() == 0 and pwd.stdout_bytes == b"/usr\n"
        added = await client.start(["/usr/bin/env"], env={"A": "1", "B": "2"},
                                   env_add={"B": "3", "C": "4"})
        assert await added.wait() == 0
        assert sorted(added.stdout_bytes.split()) == [b"A=1", b"B=3", b"C=4"]
        extended = await client.start(["sh", "-c", 'echo "$EXTRA:$PATH"'],
                                      env_add={"EXTRA": "x"})  # over the agent's own
        assert await extended.wait() == 0
        extra, path = extended.stdout_bytes.decode().strip().split(":", 1)
        assert extra == "x" and "/bin" in path


@aio
async def test_what_cannot_start_raises(agent, client_credentials, tmp_path):
    async with AgentClient(agent.url, client_credentials) as client:
        with pytest.raises(AgentError, match="cannot start '/no/such/program'"):
            await client.start(["/no/such/program"])
        with pytest.raises(AgentError, match="No such file"):
            await client.start(["true"], cwd="/no/such/directory")
        with pytest.raises(AgentError, match="argv"):
            await client.start([])
        with pytest.raises(FileNotFoundError):  # a local output file that cannot be made
            await client.start(["sleep", "300"], stdout=tmp_path / "no" / "such" / "dir")
        await eventually(lambda: agent.namespace.pids() == [agent.pid], what="sleep killed")
        with pytest.raises(AgentError, match="404") as refused:
            await client.signal(1, signal.SIGTERM)  # not started by this agent
        assert refused.value.status == 404
        assert (await client.heartbeat())["ok"]  # and the agent serves on


@aio
async def test_output_beyond_the_log_limit_is_dropped(agent, client_credentials, tmp_path):
    argv = ["head", "-c", "1000000", "/dev/zero"]
    async with AgentClient(agent.url, client_credentials) as client:
        memory = await client.start(argv, log_limit=1000)
        assert await memory.wait() == 0 and memory.stdout_bytes == bytes(1000)
        out = tmp_path / "zeros"
        file = await client.start(argv, stdout=out, log_limit=1000)
        assert await file.wait() == 0
    assert out.read_bytes() == bytes(1000)


@aio
async def test_detached_processes_outlive_the_connection(agent, client_credentials, tmp_path):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        process = await client.start(["sh", "-c", "echo hello; exec sleep 300"], detach=True)
        assert process.detached  # its WebSocket is closed
        listed = {p["pid"]: p for p in await client.processes()}
        assert listed[process.pid] == {
            "pid": process.pid, "argv": ["sh", "-c", "echo hello; exec sleep 300"],
            "running": True, "returncode": None, "detached": True}
        log = tmp_path / "root" / "logs" / f"{process.pid}.stdout"
        assert str(log).startswith(root)
        await eventually(lambda: log.exists() and log.read_bytes() == b"hello\n", what="log")
        assert alive(process.pid)
        await client.signal(process.pid, signal.SIGTERM)
        assert await process.wait() == -signal.SIGTERM
        listed = {p["pid"]: p for p in await client.processes()}
        assert listed[process.pid]["returncode"] == -signal.SIGTERM
    assert not alive(process.pid)
    with pytest.raises(AgentError, match="closed"):
        await client.heartbeat()


@aio
async def test_an_attached_process_dies_with_its_connection(agent, client_credentials):
    first = AgentClient(agent.url, client_credentials)
    process = await first.start(["sleep", "300"])
    assert alive(process.pid)
    await first.close()
    async with AgentClient(agent.url, client_credentials) as client:
        async def killed() -> bool:
            listed = {p["pid"]: p for p in await client.processes()}
            return listed[process.pid]["returncode"] == -signal.SIGKILL
        await eventually(killed, what="process killed with its connection")
    with pytest.raises(AgentError, match="lost the connection"):
        await process.wait()


@aio
async def test_a_silent_process_outlasts_the_client_timeout(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials, timeout=0.5) as client:
        process = await client.start(["sleep", "1.5"])
        assert await process.wait() == 0


@aio
async def test_stdin_needs_an_attached_process_asking_for_it(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        process = await client.start(["sleep", "300"])
        with pytest.raises(AgentError, match="stdin=True"):
            await process.write_stdin(b"x")
        process.signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
        with pytest.raises(ValueError, match="detached"):
            await client.start(["cat"], stdin=True, detach=True)


@pytest.mark.slow
@aio
async def test_output_is_forwarded_with_backpressure(agent, client_credentials, tmp_path):
    size = 300 << 20  # far more than the agent could buffer under its memory bound
    out = tmp_path / "zeros"
    async with AgentClient(agent.url, client_credentials) as client:
        process = await client.start(["head", "-c", str(size), "/dev/zero"], stdout=out,
                                     log_limit=size)
        assert await process.wait() == 0
    assert out.stat().st_size == size
    assert peak_rss_mib(agent.pid) < 100


def test_the_exec_request_is_strict():
    from composer_agent.streaming import _parse

    assert _parse(json.dumps({"argv": ["x"]}))["env"] is None
    for bad in ({"argv": "ls"}, {"argv": ["x"], "shell": True},
                {"argv": ["x"], "env": {"A": 1}}, {"argv": ["x"], "env_add": ["A"]},
                {"argv": ["x"], "stdin": "yes"}, {"argv": ["x"], "stdin": True, "detach": True}):
        with pytest.raises(ValueError):
            _parse(json.dumps(bad))
