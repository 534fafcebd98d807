"""File put and get on the agent's node, streamed both ways.

Imports aiohttp, ``composer_agent.protocol`` and the standard library. A put never holds the file
in memory: the body goes chunk by chunk into a temporary file next to the target, which
is renamed over it only once complete, so a reader never sees half a file and a broken
upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from composer_agent.protocol import CHUNK

__all__ = ["put", "get"]


async def put(request: web.Request) -> web.Response:
    """Write the body to ``?path=`` (absolute) with ``?mode=`` (octal, default 644)."""
    path = _path(request)
    text = request.query.get("mode", "644")
    try:
        mode = int(text, 8)
        if not 0 <= mode <= 0o7777:
            raise ValueError
    except ValueError:
        raise web.HTTPBadRequest(reason=f"mode={text!r}: give octal permissions such as 644")
    if path.is_dir():
        raise web.HTTPConflict(reason=f"{path} is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise web.HTTPForbidden(reason=f"cannot write {path}: {exc.strerror}")
    size = 0
    try:
        with os.fdopen(fd, "wb") as file:
            async for chunk in request.content.iter_chunked(CHUNK):
                await asyncio.to_thread(file.write, chunk)
                size += len(chunk)
            os.fchmod(file.fileno(), mode)
        os.replace(temp, path)
    except (ConnectionError, HttpProcessingError) as exc:  # the client went away
        os.unlink(temp)
        raise web.HTTPBadRequest(reason=f"the upload of {path} broke off after {size} "
                                        f"bytes: {exc!r}")
    except BaseException:
        os.unlink(temp)
        raise
    return web.json_response({"ok": True, "path": str(path), "bytes": size})


async def get(request: web.Request) -> web.StreamResponse:
    """Stream the file at ``?path=`` back; 404 if there is none."""
    path = _path(request)
    if not path.is_file():
        raise web.HTTPNotFound(reason=f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise web.HTTPForbidden(reason=f"{path}: not readable")
    return web.FileResponse(path, chunk_size=CHUNK)


def _path(request: web.Request) -> Path:
    text = request.query.get("path", "")
    if not os.path.isabs(text):
        raise web.HTTPBadRequest(reason=f"path={text!r}: give an absolute path")
    return Path(text)
