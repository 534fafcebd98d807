"""Directory trees on the agent's node: a project unpacked once per content digest, a
timeline's files listed and read from where composer left off.

Imports aiohttp, ``composer_agent.protocol`` and the standard library. What composer
needs to run a whole project on a machine it does not share files with:

- ``PUT /v1/tree?path=DIR&digest=D`` (body: a gzipped tar) makes ``DIR`` hold exactly the
  archive, unpacked beside it and renamed into place, with ``DIR/.composer-digest`` = D;
  a second put of the same digest is a no-op, so a project is sent once per content.
  Members that would land outside ``DIR`` are refused (tarfile's ``data`` filter), and
  so is a directory with files that composer did not make (no digest marker).
- ``GET /v1/tree?path=DIR`` lists the files under ``DIR``: ``{"digest", "files":
  [{"path" (relative), "size"}]}`` (an empty list for a missing directory).
- ``GET /v1/tail?path=FILE&offset=N`` streams ``FILE`` from byte N: append-only files
  (SDK output, histories) come back a piece at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from composer_agent.protocol import CHUNK

__all__ = ["DIGEST_FILE", "put_tree", "list_tree", "tail"]

DIGEST_FILE = ".composer-digest"
#: the most a tree archive may hold, unpacked (a mistake must not fill the disk)
_MAX_BYTES = 1 << 30


async def put_tree(request: web.Request) -> web.Response:
    path, digest = _path(request), request.query.get("digest", "")
    if not digest.isalnum():
        raise web.HTTPBadRequest(reason=f"digest={digest!r}: give the archive's hex digest")
    found = _digest_of(path)
    if found == digest:
        async for _ in request.content.iter_chunked(CHUNK):  # the body still has to go
            pass
        return web.json_response({"ok": True, "unpacked": False})
    if found is None and path.exists() and any(path.iterdir()):
        raise web.HTTPConflict(reason=f"will not replace {path}: composer did not make it "
                                      f"(no {DIGEST_FILE}); move it away or use another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent) as body:  # streamed: any size
            async for chunk in request.content.iter_chunked(CHUNK):
                await asyncio.to_thread(body.write, chunk)
            body.seek(0)
            await asyncio.to_thread(_replace, path, body, digest)
    except (tarfile.TarError, ValueError, EOFError) as exc:
        raise web.HTTPBadRequest(reason=f"{path}: not a usable gzipped tar: {exc}")
    except OSError as exc:
        raise web.HTTPForbidden(reason=f"cannot write {path}: {exc.strerror or exc}")
    return web.json_response({"ok": True, "unpacked": True})


def _replace(path: Path, body: BinaryIO, digest: str) -> None:
    fresh = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        with tarfile.open(fileobj=body, mode="r:gz") as archive:
            if sum(m.size for m in archive.getmembers()) > _MAX_BYTES:
                raise ValueError(f"more than {_MAX_BYTES >> 20} MiB unpacked")
            archive.extractall(fresh, filter="data")
        (fresh / DIGEST_FILE).write_text(digest)
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        if path.exists():
            os.rename(path, old)
        os.rename(fresh, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


async def list_tree(request: web.Request) -> web.Response:
    path = _path(request)
    files = await asyncio.to_thread(_files, path)
    return web.json_response({"digest": _digest_of(path), "files": files})


def _files(root: Path) -> list[dict]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            full = Path(directory) / name
            try:
                size = full.stat().st_size
            except OSError:
                continue  # gone meanwhile
            found.append({"path": str(full.relative_to(root)), "size": size})
    return found


async def tail(request: web.Request) -> web.StreamResponse:
    path = _path(request)
    try:
        offset = int(request.query.get("offset", "0"))
        if offset < 0:
            raise ValueError
    except ValueError:
        raise web.HTTPBadRequest(reason=f"offset={request.query.get('offset')!r}: give a byte "
                                        "count of at least 0")
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise web.HTTPNotFound(reason=f"{path}: no such file")
    except OSError as exc:
        raise web.HTTPForbidden(reason=f"{path}: {exc.strerror}")
    response = web.StreamResponse()
    with file, contextlib.suppress(ConnectionError):  # composer may stop reading at once
        file.seek(offset)
        await response.prepare(request)
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
    return response


def _digest_of(path: Path) -> str | None:
    try:
        return (path / DIGEST_FILE).read_text().strip()
    except OSError:
        return None


def _path(request: web.Request) -> Path:
    text = request.query.get("path", "")
    if not os.path.isabs(text):
        raise web.HTTPBadRequest(reason=f"path={text!r}: give an absolute path")
    return Path(text)
