"""The directory of a live fixture (``composer up --fixture DIR``): cthulhu's layout.

Imports ``composer.fixture_client`` (its source becomes ``DIR/control``) and the standard
library. What a shell test finds there once the cluster is ready::

    DIR/control                    the whole cluster: faults, heal, status, down
    DIR/topology.json              the nodes and their addresses
    DIR/kv-1 -> 10.77.3.2          a link per node name
    DIR/10.77.3.2/control          this node: start, stop, kill, pause, resume,
                                   restart, status, exec COMMAND...
    DIR/10.77.3.2/pid.txt          its service's process id (rewritten at each start)
    DIR/10.77.3.2/etc/command      its service's command line, placeholders filled in
    DIR/10.77.3.2/etc/environment  its service's environment, KEY=VALUE per line
    DIR/10.77.3.2/var -> ...       its logs (in the run's directory, kept after down)
    DIR/10.77.3.2/data -> ...      its data directory (where it is on this machine)

``DIR/.composer-fixture`` (JSON) names the conductor's pid, its socket, the project and
the run's directory: what ``control``, ``composer down`` and ``gc`` read.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from composer import fixture_client
from composer.errors import ConfigError

__all__ = ["FixtureLayout", "MARKER"]

MARKER = fixture_client.MARKER


class FixtureLayout:
    """Writes and updates one fixture directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.marker = self.directory / MARKER

    def claim(self, **facts: Any) -> None:
        """Make the directory (absent or empty before) and mark it as a fixture's;
        ``ConfigError`` if it holds anything, a live fixture above all."""
        if self.marker.exists():
            pid = self.read().get("pid")
            raise ConfigError(f"{self.directory} is already a fixture (conductor pid {pid}): "
                              f"composer down {self.directory} first, or choose another "
                              "--fixture directory")
        if self.directory.exists() and (not self.directory.is_dir()
                                        or any(self.directory.iterdir())):
            raise ConfigError(f"--fixture {self.directory}: not an empty directory; give a "
                              "new path (composer up makes it, composer down removes it)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.update(**facts)

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return {}

    def update(self, **facts: Any) -> None:
        """Merge ``facts`` into the marker (atomically: ``control`` may read it now)."""
        data = {**self.read(), **facts}
        temporary = self.marker.with_name(MARKER + ".new")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(temporary, self.marker)

    def write(self, nodes: Mapping[str, Any], services: Mapping[str, Any], topology: Path,
              logs: Path) -> None:
        """Lay out every node (``nodes``: name -> cluster node; ``services``: name ->
        ``ServiceNode`` of those running a service), the topology and the controls."""
        top = self.directory / "control"
        source = Path(fixture_client.__file__).read_text()
        top.write_text(f"#!{sys.executable}\n{source}")
        top.chmod(0o755)
        (self.directory / "topology.json").write_bytes(topology.read_bytes())
        for name, node in nodes.items():
            home = self.directory / node.address
            (home / "etc").mkdir(parents=True, exist_ok=True)
            control = home / "control"
            control.write_text(f"#!/bin/sh\nexec {shlex.quote(str(top))} --node {name} \"$@\"\n")
            control.chmod(0o755)
            _link(home / "var", logs / name)
            if Path(node.data_dir).is_dir():
                _link(home / "data", Path(node.data_dir))
            _link(self.directory / name, Path(node.address))
            service = services.get(name)
            if service is not None:
                self.service_started(name, node.address, service)

    def service_started(self, name: str, address: str, service: Any) -> None:
        """Write a node's pid.txt and etc/ for the process its service now runs."""
        home = self.directory / address
        spec, process = service.spec, service.process
        (home / "etc" / "command").write_text(shlex.join(spec.argv) + "\n")
        environment = spec.environment(os.environ)
        (home / "etc" / "environment").write_text(
            "".join(f"{k}={v}\n" for k, v in sorted(environment.items())))
        (home / "pid.txt").write_text(f"{process.pid}\n" if process is not None else "")


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
