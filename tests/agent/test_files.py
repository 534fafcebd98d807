"""File put and get through a real agent: streamed, atomic, with the mode asked for."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat

import aiohttp
import pytest

from composer_agent.certs import client_context
from composer_agent.client import AgentClient, AgentError
from tests.agent.support import aio, eventually, peak_rss_mib


@pytest.mark.slow
@aio
async def test_a_200_mb_file_round_trips_in_bounded_memory(agent, client_credentials,
                                                           tmp_path):
    source, back = tmp_path / "source.bin", tmp_path / "back.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as file:
        block = os.urandom(1 << 20)
        for index in range(200):  # 200 distinct MiB: a shifted block would repeat
            chunk = index.to_bytes(4, "big") + block[4:]
            digest.update(chunk)
            file.write(chunk)
    async with AgentClient(agent.url, client_credentials) as client:
        remote = f"{(await client.heartbeat())['root']}/in/big.bin"
        await client.put_file(remote, source, mode=0o600)
        assert stat.S_IMODE(os.stat(remote).st_mode) == 0o600
        os.unlink(source)  # so what comes back cannot be the local file
        await client.get_file(remote, back)
    assert back.stat().st_size == 200 << 20
    with open(back, "rb") as file:
        assert hashlib.file_digest(file, "sha256").hexdigest() == digest.hexdigest()
    assert peak_rss_mib(agent.pid) < 100


@aio
async def test_small_files_and_modes(agent, client_credentials, tmp_path):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        await client.put_file(f"{root}/a/b/script.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
        assert stat.S_IMODE(os.stat(f"{root}/a/b/script.sh").st_mode) == 0o755
        run = await client.start([f"{root}/a/b/script.sh"])
        assert await run.wait() == 0 and run.stdout_bytes == b"hi\n"
        await client.put_file(f"{root}/a/b/script.sh", b"replaced")  # default mode 644
        assert await client.read_file(f"{root}/a/b/script.sh") == b"replaced"
        assert stat.S_IMODE(os.stat(f"{root}/a/b/script.sh").st_mode) == 0o644
        await client.put_file(f"{root}/empty", b"")
        await client.get_file(f"{root}/empty", tmp_path / "empty")
        assert (tmp_path / "empty").read_bytes() == b""
    assert sorted(os.listdir(f"{root}/a/b")) == ["script.sh"]  # no temporary file left


@aio
async def test_file_errors_are_reported(agent, client_credentials, tmp_path):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        with pytest.raises(AgentError, match="404.*no such file") as missing:
            await client.read_file(f"{root}/missing")
        assert missing.value.status == 404
        with pytest.raises(AgentError, match="404"):
            await client.get_file(f"{root}/missing", tmp_path / "missing")
        assert not (tmp_path / "missing").exists()
        assert list(tmp_path.glob(".missing*")) == []
        with pytest.raises(AgentError, match="400.*absolute"):
            await client.put_file("relative/path", b"x")
        with pytest.raises(AgentError, match="400.*octal"):
            await client.put_file(f"{root}/y", b"x", mode=0o10000)
        with pytest.raises(AgentError, match="409.*directory"):
            await client.put_file(root, b"x")
        with pytest.raises(FileNotFoundError):
            await client.put_file(f"{root}/z", tmp_path / "no-such-source")
        assert not os.path.exists(f"{root}/z")


@aio
async def test_a_broken_upload_leaves_nothing_behind(agent, client_credentials, tmp_path):
    directory = tmp_path / "root" / "uploads"
    directory.mkdir(parents=True)
    (directory / "kept").write_bytes(b"old")

    async def breaking():
        yield os.urandom(1 << 20)
        raise RuntimeError("the source broke")

    async with aiohttp.ClientSession() as session:
        with pytest.raises(Exception, match="the source broke"):
            await session.put(f"{agent.url}/v1/files", params={"path": str(directory / "kept")},
                              data=breaking(), ssl=client_context(client_credentials))
    await eventually(lambda: os.listdir(directory) == ["kept"], what="temporary file removed")
    assert (directory / "kept").read_bytes() == b"old"  # not replaced by half a file
    await asyncio.sleep(0.5)  # not a measure: lets the aborted TLS connection close in peace
