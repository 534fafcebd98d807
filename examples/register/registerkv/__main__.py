"""registerkv: one primary (the first of --peers) owns every register; backups forward
writes to it. Each acknowledged write is on the primary's disk first, then pushed to
the backups in the background (retried until they take it).

The planted bug (REGISTER_BUG=1, the default): a backup answers reads from its own copy,
which lags while a push has not reached it (a paused or restarted backup: seconds).
REGISTER_BUG=0 is the fixed twin: backups forward reads to the primary too.

Protocol: one JSON object per line, both ways. {"f": "read"|"write"|"cas", "key": K,
"value": V} -> {"type": "ok", "value": ...} or {"type": "fail", "error": ...}; between
nodes {"f": "replicate", "key": K, "value": V, "version": N}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

PORT = 7300
BUG = os.environ.get("REGISTER_BUG", "1") != "0"


class Node:
    def __init__(self, me: str, peers: list[str], data: Path) -> None:
        self.me, self.peers, self.data = me, peers, data
        self.primary = peers[0]
        self.state_file = data / "registers.json"
        saved = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.values: dict[str, object] = saved.get("values", {})
        self.versions: dict[str, int] = saved.get("versions", {})
        self.lock = asyncio.Lock()
        self.pushes: dict[str, asyncio.Task] = {}

    @property
    def is_primary(self) -> bool:
        return self.me == self.primary

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"values": self.values, "versions": self.versions}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    async def handle(self, request: dict) -> dict:
        f, key = request.get("f"), str(request.get("key"))
        if f == "replicate":
            if request["version"] > self.versions.get(key, 0):
                self.values[key], self.versions[key] = request["value"], request["version"]
                self.save()
            return {"type": "ok"}
        if not self.is_primary and (f != "read" or not BUG):
            return await ask(self.primary, request, timeout=2.0)
        if f == "read":
            return {"type": "ok", "value": self.values.get(key)}
        async with self.lock:
            if f == "write":
                new = request.get("value")
            elif f == "cas":
                old, new = request.get("value")
                if self.values.get(key) != old:
                    return {"type": "fail", "error": "value is not the expected one"}
            else:
                return {"type": "fail", "error": f"unknown f {f!r}"}
            self.values[key] = new
            self.versions[key] = self.versions.get(key, 0) + 1
            self.save()
            for peer in self.peers[1:]:
                self.push(peer, key)
        return {"type": "ok"}

    def push(self, peer: str, key: str) -> None:
        """Send the register's latest value to ``peer``, retrying until it takes it."""
        name = f"{peer}/{key}"
        if name in self.pushes and not self.pushes[name].done():
            return  # the running push sends the latest value when it next tries

        async def send() -> None:
            while True:
                message = {"f": "replicate", "key": key, "value": self.values[key],
                           "version": self.versions[key]}
                answer = await ask(peer, message, timeout=1.0)
                if answer.get("type") == "ok" and self.versions[key] == message["version"]:
                    return
                await asyncio.sleep(0.5)
        self.pushes[name] = asyncio.ensure_future(send())


async def ask(host: str, request: dict, timeout: float) -> dict:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, PORT), timeout)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()
        return json.loads(line) if line else {"type": "info", "error": "connection closed"}
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        return {"type": "info", "error": f"{host}: {exc!r}"}


async def serve(node: Node, host: str) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                answer = await node.handle(json.loads(line))
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, host, PORT)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="registerkv")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--data", required=True, type=Path)
    args = parser.parse_args()
    host = args.listen.rsplit(":", 1)[0]
    args.data.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(Node(host, args.peers.split(","), args.data), host))


if __name__ == "__main__":
    main()
