"""What an agent's machine needs of composer's files for a whole project to run there.

Imports ``composer.project_bundle`` and the standard library; talks to agents through
their clients (``composer_agent.client``). Host and container backends see composer's
files at the same paths; an agent on another machine does not. So, per node whose agent
does not see the timeline's directory (tried with a probe file, never assumed):

- the project is unpacked at the same absolute path (commands and their working
  directory name it), once per content digest, and composer's SDK and workloads in the
  agent's root (with the official ``antithesis`` package where it is installed here),
  which ``environment`` puts on the node's PYTHONPATH and PATH (and the line coverage
  site beside them);
- files composer writes that processes read (``share``: topology.json, stop_faults.sh)
  are copied to the same path there;
- what processes write under the timeline's directory (SDK output, histories, the
  stop-faults requests) is brought back while the timeline runs (``pull``, a few times a
  second: faults that wait for a state need it promptly) and once more at its end, whole
  lines only, appended where composer reads them.

An agent that sees composer's files (one on this machine) gets none of this. A directory
composer did not make is never replaced: the agent refuses (it has no digest marker).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from composer import project_bundle

__all__ = ["Mirror"]

#: seconds between two pulls of what the nodes wrote
PULL_EVERY = 0.25
_SDK_PACKAGES = ("composer_sdk", "composer_drivers")
#: sent too where installed here: the official Antithesis SDK (pure Python, no
#: dependencies), which drivers written for Antithesis import
_OPTIONAL_PACKAGES = ("antithesis",)
#: the variable naming a node's copy of ``composer/linecover_site`` (line coverage)
COVERAGE_SITE = "COMPOSER_COVERAGE_SITE"


class Mirror:
    """The files of one timeline on the agents' machines that do not share ours."""

    def __init__(self, workdir: Path, shared: Sequence[Path]) -> None:
        self.workdir, self.shared = workdir, list(shared)
        #: node name -> (its agent client, the SDK directory on its machine)
        self._remote: dict[str, tuple[Any, str]] = {}
        self._pushed: set[str] = set()
        self._offsets: dict[tuple[str, str], int] = {}
        self._pulling = asyncio.Lock()

    async def attach(self, nodes: Sequence[Any]) -> None:
        """Find which nodes do not see our files; give those the project and the SDK."""
        probe = self.workdir / f".composer-probe-{os.urandom(8).hex()}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(probe.name.encode())
        try:
            seen = await asyncio.gather(*(_sees(n._client, probe) for n in nodes))
        finally:
            probe.unlink()
        apart = [n for n, shares in zip(nodes, seen) if not shares]
        if not apart:
            return
        trees = [(str(p), p) for p in self.shared]
        sdk = [(name, _package_dir(name)) for name in _SDK_PACKAGES] + [
            ("linecover_site", _package_dir("composer") / "linecover_site")] + [
            found for name in _OPTIONAL_PACKAGES for found in _installed(name)]
        digests = {local: project_bundle.digest(local) for _, local in trees + sdk}
        packed: dict[Path, project_bundle.Bundle] = {}  # only what some node lacks

        async def give(client: Any, where: str, local: Path) -> None:
            if (await client.tree(where))["digest"] == digests[local]:
                return
            if local not in packed:
                packed[local] = project_bundle.pack(local)
            await client.put_tree(where, packed[local].data, packed[local].digest)

        for node in apart:
            root = node.root.parent.parent  # <agent root>/composer-<run>/<node>
            home = f"{root}/sdk-{'-'.join(digests[local][:8] for _, local in sdk)}"
            for where, local in trees:
                await give(node._client, where, local)
            for name, local in sdk:
                await give(node._client, f"{home}/{name}", local)
            await node._client.put_file(str(self.workdir / "sdk" / ".keep"), b"")
            self._remote[node.name] = (node._client, home)

    def environment(self, node: str) -> dict[str, str]:
        """The node's SDK on its PYTHONPATH and PATH, and where its copy of the line
        coverage site is (nothing where it sees ours)."""
        if node not in self._remote:
            return {}
        home = self._remote[node][1]
        return {"PYTHONPATH": home, COVERAGE_SITE: f"{home}/linecover_site", "PATH": os.pathsep.join(
            [f"{home}/composer_sdk/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
             "/usr/bin", "/sbin", "/bin"])}

    async def share(self, path: Path) -> None:
        """Copy our file ``path`` to the same path on every node that does not see it
        (a directory: make it there)."""
        if path.is_dir():
            path, source = path / ".keep", b""
        else:
            source = path
        self._pushed.add(str(path))
        await asyncio.gather(*(client.put_file(str(path), source, 0o755 if os.access(
            path, os.X_OK) else 0o644) for client, _ in self._remote.values()))

    async def pull(self) -> None:
        """Append to our copies what the nodes wrote under the timeline's directory
        since the last pull (whole lines)."""
        async with self._pulling:
            await asyncio.gather(*(self._pull(name, client)
                                   for name, (client, _) in self._remote.items()))

    async def forget(self) -> None:
        """Remove the timeline's directory from the machines that got a copy (after the
        last pull): of a finished timeline, only the project's cached copy stays there."""

        async def remove(client: Any) -> None:
            process = await client.start(["rm", "-rf", str(self.workdir)], env=None, cwd="/")
            await process.wait()

        await asyncio.gather(*(remove(client) for client, _ in self._remote.values()))

    async def pull_while_running(self) -> None:
        """Pull every ``PULL_EVERY`` seconds until cancelled."""
        while True:
            await asyncio.sleep(PULL_EVERY)
            try:
                await self.pull()
            except Exception:  # an agent gone: the timeline's own checks say so
                pass

    async def _pull(self, name: str, client: Any) -> None:
        listing = await client.tree(str(self.workdir))
        for entry in listing["files"]:
            relative, size = entry["path"], entry["size"]
            local = self.workdir / relative
            key = (name, relative)
            offset = self._offsets.get(key, 0)
            if str(local) in self._pushed or relative.endswith(".keep") or size <= offset:
                continue
            data = await client.tail(str(local), offset)
            whole = data[:data.rfind(b"\n") + 1]
            if not whole:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "ab") as out:
                out.write(whole)
            self._offsets[key] = offset + len(whole)


async def _sees(client: Any, probe: Path) -> bool:
    try:
        return await client.tail(str(probe), 0) == probe.name.encode()
    except Exception:  # not there: another machine
        return False


def _installed(name: str) -> list[tuple[str, Path]]:
    """The package ``name`` and its ``.dist-info`` (which it may read its version from),
    as (directory name, local path); none when it is not installed here."""
    found = _package_dir(name)
    if found is None:
        return []
    try:
        info = next(f.parts[0] for f in importlib.metadata.distribution(name).files or ()
                    if f.parts[0].endswith(".dist-info"))
    except (importlib.metadata.PackageNotFoundError, StopIteration):
        return [(name, found)]
    return [(name, found), (info, found.parent / info)]


def _package_dir(name: str) -> Path | None:
    """The directory of package ``name`` here (None: not installed), found unimported."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()
