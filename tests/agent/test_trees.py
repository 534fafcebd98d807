"""Directory trees through a real agent: a project unpacked once per digest and
replaced whole, a timeline's files listed, append-only files read from an offset."""

from __future__ import annotations

import io
import tarfile

import pytest

from composer_agent.client import AgentClient, AgentError
from composer_agent.trees import DIGEST_FILE
from tests.agent.support import aio


def archive(files: dict[str, bytes], evil: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in {**files, **({evil: b"x"} if evil else {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@aio
async def test_a_tree_is_unpacked_once_per_digest_and_replaced_whole(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        where = f"{root}/projects/kv"
        assert await client.put_tree(where, archive({"a.txt": b"1", "d/b.txt": b"22"}), "d1")
        assert not await client.put_tree(where, archive({"other": b"?"}), "d1"), "same digest"
        listing = await client.tree(where)
        assert listing["digest"] == "d1"
        assert sorted((f["path"], f["size"]) for f in listing["files"]) == [
            (DIGEST_FILE, 2), ("a.txt", 1), ("d/b.txt", 2)]
        assert await client.put_tree(where, archive({"c.txt": b"333"}), "d2")
        assert sorted(f["path"] for f in (await client.tree(where))["files"]) == [
            DIGEST_FILE, "c.txt"], "the old tree is gone, not merged"
        assert (await client.tree(f"{root}/nothing")) == {"digest": None, "files": []}


@aio
async def test_members_outside_the_tree_and_garbage_are_refused(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        with pytest.raises(AgentError, match="not a usable gzipped tar"):
            await client.put_tree(f"{root}/p", archive({"ok": b"1"}, evil="../escape"), "d3")
        with pytest.raises(AgentError, match="not a usable gzipped tar"):
            await client.put_tree(f"{root}/p", b"not a tar", "d4")
        assert (await client.tree(f"{root}/p"))["files"] == []
        await client.put_file(f"{root}/mine/notes.txt", b"the user's")
        with pytest.raises(AgentError, match="will not replace .*composer did not make it"):
            await client.put_tree(f"{root}/mine", archive({"x": b"1"}), "d6")
        assert await client.read_file(f"{root}/mine/notes.txt") == b"the user's"
        with pytest.raises(AgentError, match="absolute path"):
            await client.put_tree("relative/p", archive({}), "d5")


@aio
async def test_an_append_only_file_comes_back_from_where_it_was_left(agent, client_credentials):
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        path = f"{root}/sdk/a.jsonl"
        await client.put_file(path, b'{"n": 1}\n')
        first = await client.tail(path, 0)
        with open(path, "ab") as out:  # the agent's node is this machine in the tests
            out.write(b'{"n": 2}\n')
        assert first + await client.tail(path, len(first)) == b'{"n": 1}\n{"n": 2}\n'
        assert await client.tail(path, 100) == b""
        with pytest.raises(AgentError, match="no such file"):
            await client.tail(f"{root}/sdk/none.jsonl", 0)


@aio
async def test_a_tree_larger_than_a_request_body_limit_arrives_whole(agent, client_credentials):
    """The body is streamed to disk: aiohttp's 1 MiB default limit on read bodies once
    refused every project over 1 MiB."""
    import os

    blob = os.urandom(3 << 20)
    async with AgentClient(agent.url, client_credentials) as client:
        root = (await client.heartbeat())["root"]
        assert await client.put_tree(f"{root}/big", archive({"blob.bin": blob}), "d7")
        assert await client.tail(f"{root}/big/blob.bin", 0) == blob
